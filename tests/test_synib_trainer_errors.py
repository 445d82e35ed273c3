"""Every bad input is a clear error that names the field and the fix; nothing trains silently on wrong data."""

import numpy as np
import pytest
import torch
from torch import nn

from synib_hf import SynIBConfig, SynIBTrainer
from tiny_models import CLIPWithHead, as_dataset, image_text_rows, mlp_fusion, vector_xor


IMAGE_TEXT = {"image": ["pixel_values"], "text": ["input_ids", "attention_mask"]}


def args(tmp_path, **kwargs):
    return SynIBConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, save_strategy="no", max_steps=1,
                       per_device_train_batch_size=4, disable_tqdm=True, **kwargs)


class Pair(nn.Module):
    """Logits from two vector inputs; the second logit is 1/|b|, infinite when `b` is zeroed."""

    def __init__(self, output="logits"):
        super().__init__()
        self.linear = nn.Linear(3, 1)
        self.output = output

    def forward(self, a=None, b=None, labels=None):
        logits = torch.cat([self.linear(a), 1.0 / b.abs().sum(-1, keepdim=True)], dim=-1)
        return {self.output: logits}


def pair_data(n=8, with_labels=True):
    rng = np.random.default_rng(0)
    columns = {"a": rng.normal(size=(n, 3)).astype(np.float32), "b": rng.normal(size=(n, 3)).astype(np.float32)}
    if with_labels:
        columns["labels"] = np.arange(n) % 2
    return as_dataset(columns)


PAIR_KEYS = {"left": ["a"], "right": ["b"]}


def test_mapped_key_missing_from_the_batch(tmp_path):
    trainer = SynIBTrainer(model=Pair(), args=args(tmp_path, modality_keys={"left": ["a"], "right": ["c"]},
                                                   remove_unused_columns=False),
                           train_dataset=pair_data())
    with pytest.raises(ValueError, match=r"modality_keys maps 'right' to \['c'\], but the batch has no such key"):
        trainer.train()


def test_unknown_masked_modality(tmp_path):
    with pytest.raises(ValueError, match=r"masked_modalities names \['audio'\], but the modalities are \['left', 'right'\]"):
        SynIBTrainer(model=Pair(), args=args(tmp_path, modality_keys=PAIR_KEYS, masked_modalities=["audio"]),
                     train_dataset=pair_data())
    with pytest.raises(ValueError, match=r"masked_modalities names \['text'\], but the modalities are \['x1', 'x2'\]"):
        SynIBTrainer(model=mlp_fusion(), args=args(tmp_path, masked_modalities=["text"]), train_dataset=pair_data())


def test_default_map_needs_two_modalities(tmp_path):
    trainer = SynIBTrainer(model=Pair(), args=args(tmp_path), train_dataset=pair_data())
    with pytest.raises(ValueError, match="Pass modality_keys"):
        trainer.train()


def test_training_batch_without_labels(tmp_path):
    trainer = SynIBTrainer(model=Pair(), args=args(tmp_path, modality_keys=PAIR_KEYS),
                           train_dataset=pair_data(with_labels=False))
    with pytest.raises(ValueError, match="needs `labels` in every batch, but the first training batch has only"):
        trainer.train()


def test_non_finite_logits_name_the_step_and_the_view(tmp_path):
    trainer = SynIBTrainer(model=Pair(), args=args(tmp_path, modality_keys=PAIR_KEYS, mask_type="full", mask_fill="zero"),
                           train_dataset=pair_data())
    with pytest.raises(ValueError, match=r"Non-finite logits at step 0 \(train\) in the masked-right view"):
        trainer.train()


def test_model_output_without_logits(tmp_path):
    trainer = SynIBTrainer(model=Pair(output="scores"), args=args(tmp_path, modality_keys=PAIR_KEYS),
                           train_dataset=pair_data())
    with pytest.raises(ValueError, match=r"reads the scores from the output field 'logits' \(logits_key\), but the "
                       r"model's output has \['scores'\]. Set SynIBConfig.logits_key"):
        trainer.train()


def test_native_path_on_a_model_without_the_protocol(tmp_path):
    with pytest.raises(ValueError, match="synib_path='native' but Pair does not implement the native protocol"):
        SynIBTrainer(model=Pair(), args=args(tmp_path, synib_path="native", modality_keys=PAIR_KEYS),
                     train_dataset=pair_data())


def test_native_model_forward_that_ignores_synib_views(tmp_path):
    model = mlp_fusion()
    model.forward = lambda labels=None, synib_views=None, **inputs: model.synib_forward(inputs, labels, None)
    trainer = SynIBTrainer(model=model, args=args(tmp_path), train_dataset=as_dataset(vector_xor(8)))
    with pytest.raises(ValueError, match="did not return `masked_logits`"):
        trainer.train()


def test_token_inputs_need_a_tokenizer(tmp_path):
    trainer = SynIBTrainer(model=CLIPWithHead(), args=args(tmp_path, modality_keys=IMAGE_TEXT),
                           train_dataset=as_dataset(image_text_rows(8)))
    with pytest.raises(ValueError, match="processing_class=tokenizer"):
        trainer.train()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"synib_penalty": "gaussian"}, "on the generic path reads log-variances from an output field: set logvar_key"),
        ({"synib_penalty": "unimodal_anchor"}, "needs unimodal heads, which only native models have"),
        ({"mask_type": "learned"}, "mask_type='learned' optimises gates against a unimodal head"),
        ({"detach_masked_features": True}, "which only the native path has"),
    ],
)
def test_native_only_options_on_the_generic_path(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        SynIBTrainer(model=Pair(), args=args(tmp_path, modality_keys=PAIR_KEYS, **kwargs), train_dataset=pair_data())


def test_penalties_that_need_missing_heads(tmp_path):
    with pytest.raises(ValueError, match="needs a logvar head"):
        SynIBTrainer(model=mlp_fusion(), args=args(tmp_path, synib_penalty="gaussian"))
    with pytest.raises(ValueError, match="needs exactly two modalities with unimodal heads"):
        SynIBTrainer(model=mlp_fusion(unimodal_heads=False), args=args(tmp_path, synib_penalty="unimodal_anchor"))


def test_learned_mask_needs_a_unimodal_head(tmp_path):
    trainer = SynIBTrainer(model=mlp_fusion(unimodal_heads=False), args=args(tmp_path, mask_type="learned"),
                           train_dataset=as_dataset(vector_xor(8)))
    with pytest.raises(ValueError, match=r"needs a unimodal head for 'x1'"):
        trainer.train()


def test_compute_loss_func_is_the_clean_task_loss(tmp_path):
    """The user's loss function scores the clean rows (not the masked ones) and is the task term of the loss."""
    seen = []

    def loss_func(outputs, labels, num_items_in_batch=None):
        seen.append((outputs["logits"].shape, labels.shape, num_items_in_batch))
        return outputs["logits"].float().pow(2).mean()

    trainer = SynIBTrainer(model=Pair(), args=args(tmp_path, modality_keys=PAIR_KEYS, mask_fill="shuffle",
                                                   logging_steps=1),
                           train_dataset=pair_data(), compute_loss_func=loss_func)
    trainer.train()
    # the first-batch check (two rows: is the loss a scalar?), then the step: 4 clean rows of a 12-row forward
    assert seen == [(torch.Size([2, 2]), torch.Size([2]), None), (torch.Size([4, 2]), torch.Size([4]), None)]
    assert trainer.state.log_history[0]["synib/task_loss"] > 0


def test_concatenated_views_need_batch_shaped_inputs(tmp_path):
    class WithScale(Pair):
        def forward(self, a=None, b=None, scale=None, labels=None):
            return {"logits": torch.cat([self.linear(a), self.linear(b)], -1) * scale[0]}

    trainer = SynIBTrainer(model=WithScale(), args=args(tmp_path, modality_keys=PAIR_KEYS, remove_unused_columns=False),
                           train_dataset=pair_data(), data_collator=lambda rows: {
                               "a": torch.stack([r["a"] for r in rows]), "b": torch.stack([r["b"] for r in rows]),
                               "labels": torch.stack([r["labels"] for r in rows]), "scale": torch.tensor([1.0, 2.0])})
    with pytest.raises(ValueError, match="input 'scale' is not a tensor with batch size 4 first"):
        trainer.train()


def test_integer_labels_for_a_multilabel_head_name_the_fix(tmp_path):
    data = pair_data().map(lambda row: {"labels": [1, 0]})
    trainer = SynIBTrainer(model=Pair(), args=args(tmp_path, modality_keys={"left": ["a"], "right": ["b"]},
                                                   problem_type="multi_label_classification"),
                           train_dataset=data)
    with pytest.raises(ValueError, match=r"multi-label targets must be floats .* cast them with `.float\(\)`"):
        trainer.train()
