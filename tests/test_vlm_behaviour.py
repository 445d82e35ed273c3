"""SynIB through `SynIBTrainer` on a tiny LLaVA, pure-synergy task (answer "yes" iff bright image XOR "red" in the
prompt; each modality alone is at chance), full fine-tuning: the penalty brings the masked views' confidence over the
candidates to ~1/C while the clean answers stay right; without it the masked views stay confident. (~30 s on one CPU
core: two 150-step runs.)"""

import json
import os

from synib_hf import SynIBConfig, SynIBTrainer
from tiny_vlms import synergy_rows, tiny_vlm, tiny_vlm_tokenizer, vlm_collator


def test_the_penalty_brings_masked_views_to_chance_and_keeps_the_clean_answer(tmp_path):
    """Behaviour through the trainer on the pure-synergy task (tiny LLaVA, full fine-tuning, Adam): with λ = 1 the
    masked views' confidence over the two candidates falls to ~1/2 while clean answers stay right; with λ = 0 (views
    evaluated, not trained) the masked views stay confident."""
    train, test = synergy_rows("llava", 256, seed=1), synergy_rows("llava", 128, seed=2)
    results = {}
    for weight in (0.0, 1.0):
        synib = SynIBTrainer(model=tiny_vlm("llava").train(),
                             args=SynIBConfig(output_dir=str(tmp_path / str(weight)), report_to="none", use_cpu=True,
                                              save_strategy="no", disable_tqdm=True, seed=0, logging_steps=50,
                                              answer_candidates=["yes", "no"], synib_weight=weight,
                                              eval_masked_views=True, mask_type="full", mask_fill="zero",
                                              per_device_train_batch_size=16, per_device_eval_batch_size=64,
                                              max_steps=150, learning_rate=6e-3, lr_scheduler_type="constant"),
                             train_dataset=train, eval_dataset=test, data_collator=vlm_collator,
                             processing_class=tiny_vlm_tokenizer())
        synib.train()
        results[weight] = synib.evaluate()
    if os.environ.get("SYNIB_PRINT_BEHAVIOUR"):  # the numbers behind docs/vlm.md
        print(json.dumps(results, indent=1))
    for weight, result in results.items():
        assert result["eval_synib/clean_accuracy"] >= 0.95, (weight, result)
    confident = [results[0.0][f"eval_synib/masked_max_prob_{m}"] for m in ("image", "text")]
    uniform = [results[1.0][f"eval_synib/masked_max_prob_{m}"] for m in ("image", "text")]
    assert min(confident) > 0.8 and max(uniform) < 0.6, (confident, uniform)
