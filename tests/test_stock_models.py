"""SynIB on stock transformers multimodal classifiers, built tiny from their configs (no downloads): each trains with
λ > 0 in both view batchings, each masked input follows the rule of its kind (the masked modality changes as the rule
says, everything else is bit-identical), and λ = 0 is `Trainer` in training and in evaluation.

| case                 | class                                   | what it covers                                         |
|----------------------|-----------------------------------------|--------------------------------------------------------|
| bridgetower-itm      | BridgeTowerForImageAndTextRetrieval     | image + text classifier, `pixel_mask` companion        |
| vilt-nlvr2           | ViltForImagesAndTextClassification      | multi-image `(B, N, C, H, W)`                          |
| visualbert-nlvr2     | VisualBertForVisualReasoning            | image + text, region features `(B, R, D)` + their mask |
| vilt-vqa             | ViltForQuestionAnswering                | soft-label VQA head (multi-label BCE)                  |
| layoutlmv3-multilabel| LayoutLMv3ForSequenceClassification     | document with `bbox`, multi-label head                 |
| lxmert-vqa           | LxmertForQuestionAnswering              | scores named `question_answering_score`, `visual_pos`  |
"""

import numpy as np
import pytest
import torch
from transformers import (
    BridgeTowerConfig,
    BridgeTowerForImageAndTextRetrieval,
    LayoutLMv3Config,
    LayoutLMv3ForSequenceClassification,
    LxmertConfig,
    LxmertForQuestionAnswering,
    Trainer,
    TrainingArguments,
    ViltConfig,
    ViltForImagesAndTextClassification,
    ViltForQuestionAnswering,
    VisualBertConfig,
    VisualBertForVisualReasoning,
)

from synib_hf import SynIBConfig, SynIBTrainer
from synib_hf.trainers.preflight import first_training_batch
from tiny_models import as_dataset, tiny_tokenizer


SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
IMAGE, TOKENS, REGIONS, FEATURE = 30, 8, 6, 12


def text_columns(rng, n):
    lengths = rng.integers(3, TOKENS, size=n)
    ids = np.zeros((n, TOKENS), dtype=np.int64)  # [PAD] = 0
    for row, length in enumerate(lengths):
        ids[row, 0], ids[row, 1:length - 1], ids[row, length - 1] = 2, rng.integers(5, 64, size=length - 2), 3
    return {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64)}


def bridgetower():
    config = BridgeTowerConfig(
        text_config=dict(vocab_size=64, hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                         intermediate_size=37, max_position_embeddings=32),
        vision_config=dict(hidden_size=64, num_hidden_layers=1, num_attention_heads=4, image_size=IMAGE, patch_size=6,
                           intermediate_size=37),
        hidden_size=64, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37,
        share_cross_modal_transformer_layers=True)
    return BridgeTowerForImageAndTextRetrieval(config)


def bridgetower_rows(rng, n):
    return {**text_columns(rng, n), "pixel_values": rng.normal(size=(n, 3, IMAGE, IMAGE)).astype(np.float32),
            "pixel_mask": np.ones((n, IMAGE, IMAGE), dtype=np.int64), "labels": rng.integers(0, 2, size=n)}


def vilt_config(**kwargs):
    return ViltConfig(vocab_size=64, image_size=IMAGE, patch_size=6, max_image_length=-1, max_position_embeddings=16,
                      **SMALL, **kwargs)


def vilt_nlvr2_rows(rng, n):
    return {**text_columns(rng, n), "pixel_values": rng.normal(size=(n, 2, 3, IMAGE, IMAGE)).astype(np.float32),
            "pixel_mask": np.ones((n, 2, IMAGE, IMAGE), dtype=np.int64), "labels": rng.integers(0, 2, size=n)}


def vilt_vqa_rows(rng, n):
    scores = np.zeros((n, 5), dtype=np.float32)  # VQA soft scores: min(#annotators / 3, 1) of a few answers
    for row in range(n):
        scores[row, rng.choice(5, size=2, replace=False)] = rng.choice([0.3, 0.6, 1.0], size=2)
    return {**text_columns(rng, n), "pixel_values": rng.normal(size=(n, 3, IMAGE, IMAGE)).astype(np.float32),
            "pixel_mask": np.ones((n, IMAGE, IMAGE), dtype=np.int64), "labels": scores}


def visualbert_rows(rng, n):
    return {**text_columns(rng, n), "visual_embeds": rng.normal(size=(n, REGIONS, FEATURE)).astype(np.float32),
            "visual_attention_mask": np.ones((n, REGIONS), dtype=np.int64),
            "visual_token_type_ids": np.ones((n, REGIONS), dtype=np.int64), "labels": rng.integers(0, 2, size=n)}


def layoutlmv3():
    config = LayoutLMv3Config(
        vocab_size=64, max_position_embeddings=TOKENS + 4, input_size=28, patch_size=4, max_2d_position_embeddings=64,
        coordinate_size=6, shape_size=4, num_labels=3, problem_type="multi_label_classification", pad_token_id=0,
        has_relative_attention_bias=False, has_spatial_attention_bias=False, **SMALL)
    return LayoutLMv3ForSequenceClassification(config)


def layoutlmv3_rows(rng, n):
    corners = rng.integers(0, 30, size=(n, TOKENS, 2))
    boxes = np.concatenate([corners, corners + rng.integers(1, 30, size=(n, TOKENS, 2))], axis=-1)
    return {**text_columns(rng, n), "bbox": boxes.astype(np.int64),
            "pixel_values": rng.normal(size=(n, 3, 28, 28)).astype(np.float32),
            "labels": rng.integers(0, 2, size=(n, 3)).astype(np.float32)}


def lxmert():
    return LxmertForQuestionAnswering(LxmertConfig(
        vocab_size=64, hidden_size=32, num_attention_heads=4, intermediate_size=37, l_layers=1, x_layers=1, r_layers=1,
        visual_feat_dim=FEATURE, visual_pos_dim=4, num_qa_labels=5, max_position_embeddings=32))


def lxmert_rows(rng, n):
    return {**text_columns(rng, n), "visual_feats": rng.normal(size=(n, REGIONS, FEATURE)).astype(np.float32),
            "visual_pos": rng.uniform(size=(n, REGIONS, 4)).astype(np.float32), "labels": rng.integers(0, 5, size=n)}


TEXT = ["input_ids", "attention_mask"]
CASES = {  # name → (model builder, rows, modality keys, SynIBConfig options)
    "bridgetower-itm": (bridgetower, bridgetower_rows, {"image": ["pixel_values", "pixel_mask"], "text": TEXT}, {}),
    "vilt-nlvr2": (lambda: ViltForImagesAndTextClassification(vilt_config(num_labels=2, num_images=2,
                                                                         modality_type_vocab_size=3)),
                   vilt_nlvr2_rows, {"image": ["pixel_values", "pixel_mask"], "text": TEXT}, {}),
    "visualbert-nlvr2": (lambda: VisualBertForVisualReasoning(VisualBertConfig(
                             vocab_size=64, visual_embedding_dim=FEATURE, num_labels=2, max_position_embeddings=32,
                             **SMALL)),
                         visualbert_rows,
                         {"image": ["visual_embeds", "visual_attention_mask", "visual_token_type_ids"], "text": TEXT},
                         {}),
    "vilt-vqa": (lambda: ViltForQuestionAnswering(vilt_config(num_labels=5)), vilt_vqa_rows,
                 {"image": ["pixel_values", "pixel_mask"], "text": TEXT}, {}),
    "layoutlmv3-multilabel": (layoutlmv3, layoutlmv3_rows, {"image": ["pixel_values"], "text": [*TEXT, "bbox"]}, {}),
    "lxmert-vqa": (lxmert, lxmert_rows, {"image": ["visual_feats", "visual_pos"], "text": TEXT},
                   {"logits_key": "question_answering_score"}),
}
COMMON = dict(report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0, logging_steps=1,
              per_device_train_batch_size=4, per_device_eval_batch_size=4, remove_unused_columns=False)


def build(case, seed=0):
    torch.manual_seed(seed)
    builder, rows, keys, options = CASES[case]
    return builder(), as_dataset(rows(np.random.default_rng(seed), 8)), keys, options


@pytest.mark.parametrize("view_batching", ["concatenated", "sequential"])
@pytest.mark.parametrize("case", list(CASES))
def test_trains_with_the_penalty(tmp_path, case, view_batching):
    model, data, keys, options = build(case)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainer = SynIBTrainer(model=model, args=SynIBConfig(
        output_dir=str(tmp_path), synib_weight=1.0, modality_keys=keys, view_batching=view_batching, max_steps=2,
        learning_rate=1e-2, **COMMON, **options), train_dataset=data, eval_dataset=data,
        processing_class=tiny_tokenizer())
    trainer.train()
    log = trainer.state.log_history[0]
    for modality in keys:
        assert np.isfinite(log[f"synib/penalty_{modality}"]) and log[f"synib/penalty_{modality}"] >= 0
    assert np.isfinite(log["loss"])
    assert any(not torch.equal(before[k], v) for k, v in model.named_parameters())
    metrics = trainer.evaluate()
    assert all(0 <= metrics[f"eval_synib/masked_accuracy_{m}"] <= 1 for m in keys)


def changed_positions(clean, masked, feature_axes):
    """Positions where the masked input differs, checked to change all of their features together."""
    changed = clean != masked
    for axis in feature_axes:
        assert torch.equal(changed.any(dim=axis), changed.all(dim=axis)), "features of a position masked apart"
    return changed.any(dim=feature_axes[0]) if feature_axes else changed


@pytest.mark.parametrize("case", list(CASES))
def test_masked_inputs_follow_the_rule_of_their_kind(tmp_path, case):
    model, data, keys, options = build(case)
    trainer = SynIBTrainer(model=model, args=SynIBConfig(output_dir=str(tmp_path), synib_weight=1.0,
                                                         modality_keys=keys, mask_ratio=0.5, **COMMON, **options),
                           train_dataset=data, processing_class=tiny_tokenizer())
    batch = first_training_batch(trainer)
    batch.pop("labels")
    path = trainer.view_builder
    kinds = path.kinds(batch, path.modality_keys(batch))
    for modality, mapped in keys.items():
        view = path.masker(batch, mapped, training=True, kinds=kinds)
        for key in batch:  # everything outside the masked modality, and companions without content, untouched
            if key not in mapped or kinds[key].kind == "unchanged":
                assert view[key] is batch[key], key
        for key in mapped:
            kind, clean, masked = kinds[key].kind, batch[key], view[key]
            if kind == "image":  # (B, C, H, W): a pixel's channels go together
                assert changed_positions(clean, masked, [1]).float().mean() == pytest.approx(0.5, abs=0.1)
            elif kind == "images":  # (B, N, C, H, W): channels together, each image its own mask
                changed = changed_positions(clean, masked, [2])
                assert not torch.equal(changed[:, 0], changed[:, 1])
            elif kind == "sequence":  # (B, T, D): whole regions
                changed = changed_positions(clean, masked, [2])
                assert 0 < changed.float().mean() < 1
            elif kind == "tokens":
                changed = masked != clean
                assert (masked[changed] == 4).all() and not (changed & (clean < 5)).any()  # [MASK]; specials kept
            partner = kinds[key].partner
            if kind == "attention":  # off exactly where its partner was masked, never noise
                masked_positions = changed_positions(batch[partner], view[partner], [2] if batch[partner].dim() == 3 else [])
                assert set(masked.unique().tolist()) <= {0, 1}
                assert torch.equal(masked.bool(), clean.bool() & ~masked_positions)
            elif kind == "boxes":  # the zero box where the partner's position was masked, else the same box
                masked_positions = changed_positions(batch[partner], view[partner], [2] if batch[partner].dim() == 3 else [])
                assert (masked[masked_positions] == 0).all()
                assert torch.equal(masked[~masked_positions], clean[~masked_positions])
                assert masked_positions.any()


@pytest.mark.parametrize("case", list(CASES))
def test_lambda_zero_is_trainer_in_training_and_evaluation(tmp_path, case):
    steps = dict(max_steps=2, learning_rate=1e-2, eval_strategy="steps", eval_steps=1)
    plain_model, data, keys, options = build(case)
    plain = Trainer(model=plain_model, args=TrainingArguments(output_dir=str(tmp_path / "p"), **COMMON, **steps),
                    train_dataset=data, eval_dataset=data)
    plain.train()
    synib_model, _, _, _ = build(case)
    synib = SynIBTrainer(model=synib_model, args=SynIBConfig(output_dir=str(tmp_path / "s"), synib_weight=0.0,
                                                             modality_keys=keys, **COMMON, **steps, **options),
                         train_dataset=data, eval_dataset=data, processing_class=tiny_tokenizer())
    synib.train()
    for key in ("loss", "eval_loss"):
        assert [h[key] for h in plain.state.log_history if key in h] == [h[key] for h in synib.state.log_history
                                                                         if key in h]
    for (name, a), b in zip(plain_model.named_parameters(), synib_model.parameters()):
        assert torch.equal(a, b), name
    predictions = []
    for trainer in (plain, synib):
        torch.manual_seed(0)  # ViLT permutes its image patches with the global RNG, in evaluation too
        predictions.append(trainer.predict(data))
    plain_prediction, synib_prediction = predictions
    assert_nested_equal(plain_prediction.predictions, synib_prediction.predictions)


def assert_nested_equal(a, b):
    """Predictions are an array or a tuple (of tuples) of arrays: the same structure, bit for bit."""
    if isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list)) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_nested_equal(x, y)
    else:
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("view_batching", ["concatenated", "sequential"])
@pytest.mark.parametrize("case", list(CASES))
def test_the_first_step_loss_at_a_tiny_weight_is_the_models_own(tmp_path, case, view_batching):
    """At λ = 1e-8 the task term is the loss the model trains with at λ = 0 (ViLT's VQA loss is its BCE × num_labels:
    SynIB keeps it, from the model's own forward), to 1e-5 relative. Dropout is off: with it, the clean rows of a
    forward that also carries the views draw other dropout masks than a forward of the clean batch alone."""
    losses = {}
    for weight in (0.0, 1e-8):
        model, data, keys, options = build(case)
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        trainer = SynIBTrainer(model=model, args=SynIBConfig(
            output_dir=str(tmp_path / str(weight)), synib_weight=weight, modality_keys=keys, max_steps=1,
            view_batching=view_batching, mask_fill="zero", train_sampling_strategy="sequential", **COMMON, **options),
            train_dataset=data, processing_class=tiny_tokenizer())
        trainer.train()
        losses[weight] = trainer.state.log_history[0]["loss"]
    assert losses[1e-8] == pytest.approx(losses[0.0], rel=1e-5)


def test_a_scaled_own_loss_is_kept_and_said(tmp_path, caplog):
    """A model whose own loss is not the textbook loss of its scores (here ×10, as ViLT's BCE × num_labels): at λ > 0
    the task term is still the model's, and a warning says how SynIB computes it."""
    import logging

    from transformers.modeling_outputs import SequenceClassifierOutput

    class ScaledLoss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)

        def forward(self, a=None, b=None, labels=None):
            logits = self.a(a) + self.b(b)
            loss = None if labels is None else 10.0 * torch.nn.functional.cross_entropy(logits, labels)
            return SequenceClassifierOutput(loss=loss, logits=logits)

    rng = np.random.default_rng(0)
    data = as_dataset({"a": rng.normal(size=(8, 3)).astype(np.float32), "b": rng.normal(size=(8, 3)).astype(np.float32),
                       "labels": np.arange(8) % 2})
    losses = {}
    for weight in (0.0, 1e-8):
        torch.manual_seed(0)
        trainer = SynIBTrainer(model=ScaledLoss(), args=SynIBConfig(
            output_dir=str(tmp_path / str(weight)), synib_weight=weight, max_steps=1, mask_fill="zero",
            modality_keys={"left": ["a"], "right": ["b"]}, train_sampling_strategy="sequential", **COMMON),
            train_dataset=data)
        with caplog.at_level(logging.WARNING, logger="synib_hf"):
            trainer.train()
        losses[weight] = trainer.state.log_history[0]["loss"]
    assert losses[1e-8] == pytest.approx(losses[0.0], rel=1e-5)
    assert any("computes its own task loss differently" in r.getMessage() and "×" not in r.getMessage()
               for r in caplog.records)
    assert trainer.view_builder.clean_from_model
