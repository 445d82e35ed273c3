"""Client of the token-leak test, run in a subprocess with HF_ENDPOINT pointing at the local Hub server: trains with
checkpoints and pushes with the token given only in the SynIB config (`hub_token`), for one `hub_strategy`.

    python hub_token_client.py OUT REPO_ID HUB_STRATEGY TOKEN
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from synib_hf import SynIBConfig, SynIBTrainer  # noqa: E402
from tiny_models import as_dataset, mlp_fusion, vector_xor  # noqa: E402


def main(out, repo_id, strategy, token):
    args = SynIBConfig(output_dir=out, report_to="none", use_cpu=True, max_steps=4, save_strategy="steps",
                       save_steps=2, synib_weight=0.5, per_device_train_batch_size=8, disable_tqdm=True,
                       push_to_hub=True, hub_model_id=repo_id, hub_strategy=strategy, hub_token=token,
                       eval_strategy="steps", eval_steps=2)
    trainer = SynIBTrainer(model=mlp_fusion(), args=args, train_dataset=as_dataset(vector_xor(32)),
                           eval_dataset=as_dataset(vector_xor(16, seed=1)))
    trainer.train()
    trainer.push_to_hub(commit_message="final", blocking=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
