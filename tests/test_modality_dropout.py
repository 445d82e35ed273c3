import pytest
import torch

from synib_hf import ModalityDropoutTrainer, SynIBConfig
from synib_hf.tasks import classification_task
from tiny_models import as_dataset, mlp_fusion, vector_xor


def args(tmp_path, **kwargs):
    defaults = dict(output_dir=str(tmp_path), report_to="none", use_cpu=True, max_steps=1, disable_tqdm=True,
                    save_strategy="no", per_device_train_batch_size=16, logging_steps=1, learning_rate=0.5,
                    optim="sgd", max_grad_norm=0.0)
    return SynIBConfig(**{**defaults, **kwargs})


def test_modality_dropout_trains_the_masked_views_on_the_label(tmp_path):
    data = as_dataset(vector_xor(16))
    model = mlp_fusion(unimodal_heads=False)
    trainer = ModalityDropoutTrainer(model=model, args=args(tmp_path, synib_weight=1.0, mask_type="full", mask_fill="zero"),
                                     train_dataset=data)
    # the same views as SynIB: a full zero mask of x1 is the fusion head on (0, features of x2)
    batch = {k: torch.as_tensor(v) for k, v in vector_xor(16).items()}
    with torch.no_grad():
        features = {"x1": torch.zeros(16, 16), "x2": model.synib_encode("x2", batch)}
        logits = model.synib_fuse(features)[0]
        expected = classification_task(logits).losses(logits, batch["labels"]).mean()
    trainer.train()
    assert trainer.state.log_history[0]["synib/penalty_x1"] == pytest.approx(expected.item(), rel=1e-5)


def test_modality_dropout_refuses_a_penalty_it_would_ignore(tmp_path):
    with pytest.raises(ValueError, match=r"trains its masked views with cross_entropy, so synib_penalty \('gaussian'\)"):
        ModalityDropoutTrainer(model=mlp_fusion(), args=args(tmp_path, synib_penalty="gaussian"),
                               train_dataset=as_dataset(vector_xor(16)))
