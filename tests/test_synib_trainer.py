import numpy as np
import pytest
import torch
from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.modeling_outputs import SequenceClassifierOutput

from synib_hf import SynIBConfig, SynIBTrainer
from synib_hf.data.xor import GaussianXOR
from tiny_models import CLIPWithHead, as_dataset, image_text_rows, layoutlmv3, mlp_fusion, tiny_tokenizer, vector_xor


IMAGE_TEXT = {"image": ["pixel_values"], "text": ["input_ids", "attention_mask"]}
LAYOUT = {"image": ["pixel_values"], "text": ["input_ids", "attention_mask", "bbox"]}
COMMON = dict(report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0, logging_steps=1)


def synib_args(tmp_path, **kwargs):
    return SynIBConfig(output_dir=str(tmp_path), **{**COMMON, **kwargs})


def plain_args(tmp_path, **kwargs):
    return TrainingArguments(output_dir=str(tmp_path), **{**COMMON, **kwargs})


def params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def assert_params_equal(a, b, **tolerance):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=lambda m: f"{key}: {m}", **tolerance)


def xor_data(n=64):
    return as_dataset(vector_xor(n))


def layout_data(n=16):
    return as_dataset(image_text_rows(n, image_size=28, bbox=True))


def image_text_data(n=16):
    return as_dataset(image_text_rows(n))


# ---- λ = 0 is plain training ----------------------------------------------------------------------------------------

CASES = {
    "native-mlp": (lambda: mlp_fusion(), xor_data, None, None),
    "native-mlp-one-logit": (lambda: mlp_fusion(num_labels=1, normalize_features=False, encoder_output_activation=True,
                                                 fusion_hidden_sizes=[8, 8]), xor_data, None, None),
    "generic-clip": (lambda: CLIPWithHead(), image_text_data, IMAGE_TEXT, tiny_tokenizer),
    "generic-layoutlmv3": (lambda: layoutlmv3(), layout_data, LAYOUT, tiny_tokenizer),
}


@pytest.mark.parametrize("eval_masked_views", [None, True])
@pytest.mark.parametrize("case", list(CASES))
def test_lambda_zero_reproduces_plain_trainer(tmp_path, case, eval_masked_views):
    build, data, keys, tokenizer = CASES[case]
    train = data()
    steps = dict(per_device_train_batch_size=8, max_steps=4, learning_rate=1e-2, eval_strategy="steps", eval_steps=2,
                 remove_unused_columns=False)  # plain Trainer would drop the MLP model's **inputs
    plain_model = build()
    plain = Trainer(model=plain_model, args=plain_args(tmp_path / "p", **steps), train_dataset=train, eval_dataset=train)
    plain.train()
    synib_model = build()
    synib = SynIBTrainer(
        model=synib_model,
        args=synib_args(tmp_path / "s", synib_weight=0.0, modality_keys=keys, eval_masked_views=eval_masked_views,
                        **steps),
        train_dataset=train,
        eval_dataset=train,
        processing_class=tokenizer() if tokenizer else None,
    )
    synib.train()
    plain_losses = [h["loss"] for h in plain.state.log_history if "loss" in h]
    synib_losses = [h["loss"] for h in synib.state.log_history if "loss" in h]
    assert len(plain_losses) == 4 and plain_losses == synib_losses
    assert_params_equal(params(plain_model), params(synib_model), rtol=0, atol=0)
    evaluations = [[h for h in t.state.log_history if "eval_loss" in h] for t in (plain, synib)]
    masked = [any(k.startswith("eval_synib/") for k in h) for h in evaluations[1]]
    if eval_masked_views:  # the evaluations in between ran SynIB's masked views, without disturbing training
        assert len(masked) == 2 and all(masked)
    else:  # λ = 0 evaluation is plain evaluation: the model's own loss, no masked view
        assert [h["eval_loss"] for h in evaluations[0]] == [h["eval_loss"] for h in evaluations[1]]
        assert not any(masked)
        plain_prediction, synib_prediction = plain.predict(train), synib.predict(train)
        np.testing.assert_array_equal(plain_prediction.predictions, synib_prediction.predictions)
        assert plain_prediction.metrics["test_loss"] == synib_prediction.metrics["test_loss"]


def test_penalty_window_is_plain_training_outside_it(tmp_path):
    class SnapshotAt(TrainerCallback):
        def __init__(self):
            self.params = None

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step == 2:
                self.params = params(model)

    train = xor_data()
    steps = dict(per_device_train_batch_size=8, max_steps=4, learning_rate=1e-2, remove_unused_columns=False)
    plain_snapshot, late_snapshot = SnapshotAt(), SnapshotAt()
    Trainer(model=mlp_fusion(), args=plain_args(tmp_path / "p", **steps), train_dataset=train,
            callbacks=[plain_snapshot]).train()
    late = SynIBTrainer(model=mlp_fusion(), args=synib_args(tmp_path / "l", synib_weight=1.0, synib_start_step=2,
                                                            **steps),
                        train_dataset=train, callbacks=[late_snapshot])
    late.train()
    assert_params_equal(plain_snapshot.params, late_snapshot.params, rtol=0, atol=0)  # steps 1-2: plain training
    weights = [h.get("synib/weight") for h in late.state.log_history if "loss" in h]
    assert weights == [None, None, 1.0, 1.0]
    never = SynIBTrainer(model=mlp_fusion(), args=synib_args(tmp_path / "n", synib_weight=1.0, synib_start_step=4,
                                                             **steps), train_dataset=train)
    with pytest.raises(ValueError, match=r"synib_start_step=4 is at or after the run's last optimizer step \(4\)"):
        never.train()  # a window after the run would silently be plain training


# ---- gradient accumulation ------------------------------------------------------------------------------------------

GA_CASES = {
    "native": (lambda: mlp_fusion(), xor_data, None, None, {}),
    "generic-concatenated": (lambda: CLIPWithHead(), image_text_data, IMAGE_TEXT, tiny_tokenizer, {}),
    "generic-sequential": (lambda: CLIPWithHead(), image_text_data, IMAGE_TEXT, tiny_tokenizer,
                           {"view_batching": "sequential"}),
    # LayoutLMv3's forward takes **kwargs, so the Trainer would treat its loss as normalised by num_items_in_batch
    "generic-loss-kwargs-model": (lambda: layoutlmv3(), layout_data, LAYOUT, tiny_tokenizer, {}),
}


@pytest.mark.parametrize("case", list(GA_CASES))
def test_gradient_accumulation_1xN_equals_Nx1(tmp_path, case):
    build, data, keys, tokenizer, extra = GA_CASES[case]
    train = data(16)
    results = []
    for batch, accumulation in ((8, 1), (2, 4)):
        model = build()
        if case == "generic-loss-kwargs-model":
            model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = 0.0
            for module in model.modules():
                if isinstance(module, nn.Dropout):
                    module.p = 0.0
        # SGD, not Adam: Adam's normalisation would hide a wrongly scaled gradient.
        args = synib_args(
            tmp_path / f"{batch}", synib_weight=1.0, mask_type="full", mask_fill="zero", modality_keys=keys,
            per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation, max_steps=2,
            learning_rate=0.5, optim="sgd", train_sampling_strategy="sequential", **extra,
        )
        trainer = SynIBTrainer(model=model, args=args, train_dataset=train,
                               processing_class=tokenizer() if tokenizer else None)
        trainer.train()
        results.append((params(model), [h["loss"] for h in trainer.state.log_history if "loss" in h]))
    (full, full_losses), (accumulated, accumulated_losses) = results
    assert_params_equal(full, accumulated, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(full_losses, accumulated_losses, rtol=1e-4)


def test_sequential_views_give_the_concatenated_gradient(tmp_path):
    train = image_text_data(8)
    results = []
    for batching in ("concatenated", "sequential"):
        model = CLIPWithHead()
        args = synib_args(
            tmp_path / batching, synib_weight=2.0, mask_type="full", mask_fill="zero", modality_keys=IMAGE_TEXT,
            view_batching=batching, per_device_train_batch_size=8, max_steps=1, learning_rate=0.5, optim="sgd",
        )
        trainer = SynIBTrainer(model=model, args=args, train_dataset=train, processing_class=tiny_tokenizer())
        trainer.train()
        results.append((params(model), trainer.state.log_history[0]))
    assert_params_equal(results[0][0], results[1][0], rtol=1e-4, atol=1e-6)
    for key in ("loss", "synib/penalty_image", "synib/penalty_text", "synib/masked_max_prob_text"):
        assert results[0][1][key] == pytest.approx(results[1][1][key], rel=1e-4)


# ---- both paths train and log what they should --------------------------------------------------------------------

@pytest.mark.parametrize("case", ["generic-clip", "generic-layoutlmv3", "native-mlp"])
def test_training_changes_parameters_and_logs_synib_metrics(tmp_path, case):
    build, data, keys, tokenizer = CASES[case]
    model = build()
    before = params(model)
    seen_logits = []

    def compute_metrics(prediction):
        seen_logits.append(prediction.predictions)
        return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}

    trainer = SynIBTrainer(
        model=model,
        args=synib_args(tmp_path, synib_weight=0.5, modality_keys=keys, per_device_train_batch_size=8,
                        per_device_eval_batch_size=5, max_steps=3, learning_rate=1e-2),
        train_dataset=data(16),
        eval_dataset=data(16),
        processing_class=tokenizer() if tokenizer else None,
        compute_metrics=compute_metrics,
    )
    trainer.train()
    after = params(model)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    modalities = list(keys) if keys else ["x1", "x2"]
    log = trainer.state.log_history[0]
    for m in modalities:
        assert log[f"synib/penalty_{m}"] >= 0
        assert 0.5 <= log[f"synib/masked_max_prob_{m}"] <= 1.0
        assert 0 <= log[f"synib/masked_entropy_{m}"] <= np.log(2) + 1e-6
    assert log["synib/weight"] == 0.5 and "synib/task_loss" in log
    metrics = trainer.evaluate()
    assert seen_logits[-1].shape == (16, 2)  # clean logits only, every example once (uneven last batch)
    for m in modalities:
        assert 0.0 <= metrics[f"eval_synib/masked_accuracy_{m}"] <= 1.0
    assert "eval_accuracy" in metrics and "eval_synib/task_loss" in metrics
    predicted = trainer.predict(data(16))
    assert f"test_synib/masked_accuracy_{modalities[0]}" in predicted.metrics


def test_native_path_runs_encoders_once_per_step(tmp_path):
    model = mlp_fusion()
    calls = {m: 0 for m in model.synib_modalities}
    for modality, encoder in model.encoders.items():
        encoder.register_forward_hook(lambda *_, m=modality: calls.__setitem__(m, calls[m] + 1))
    forwards = []
    model.register_forward_hook(lambda *_: forwards.append(1))

    class CountSteps(TrainerCallback):  # from the first step on: the first-batch check runs one forward before it
        def on_train_begin(self, *args, **kwargs):
            calls.update({m: 0 for m in calls})
            forwards.clear()

    trainer = SynIBTrainer(model=model, args=synib_args(tmp_path, synib_weight=1.0, mask_type="random",
                                                        per_device_train_batch_size=8, max_steps=3),
                           train_dataset=xor_data(), callbacks=[CountSteps()])
    assert trainer.view_builder.name == "native"
    trainer.train()
    assert calls == {"x1": 3, "x2": 3} and len(forwards) == 3


def test_native_model_keeps_its_columns_with_remove_unused_columns(tmp_path):
    trainer = SynIBTrainer(model=mlp_fusion(), args=synib_args(tmp_path, max_steps=1, remove_unused_columns=True),
                           train_dataset=as_dataset({**vector_xor(16), "unused": np.zeros(16)}))
    trainer.train()  # without SynIB's signature columns, x1 and x2 would be dropped (forward takes **inputs)
    assert {"x1", "x2"} <= set(trainer._signature_columns) and "unused" not in trainer._signature_columns


def test_mapped_columns_survive_remove_unused_columns(tmp_path):
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 2), nn.Linear(3, 2)

        def forward(self, labels=None, **inputs):
            return SequenceClassifierOutput(logits=self.a(inputs["left"]) + self.b(inputs["right"]))

    rng = np.random.default_rng(0)
    data = as_dataset({"left": rng.normal(size=(8, 3)).astype(np.float32),
                       "right": rng.normal(size=(8, 3)).astype(np.float32),
                       "labels": np.arange(8) % 2, "noise": np.zeros(8)})
    trainer = SynIBTrainer(model=TwoInputs(), args=synib_args(tmp_path, max_steps=1, modality_keys={"l": ["left"], "r": ["right"]}),
                           train_dataset=data)
    trainer.train()
    assert {"left", "right"} <= set(trainer._signature_columns) and "noise" not in trainer._signature_columns


@pytest.mark.parametrize("penalty, overrides", [("gaussian", {"logvar_head": True}), ("unimodal_anchor", {})])
@pytest.mark.parametrize("mask_type", ["full", "random", "learned"])
def test_native_penalties_and_masks_train(tmp_path, penalty, overrides, mask_type):
    model = mlp_fusion(**overrides)
    before = params(model)
    trainer = SynIBTrainer(model=model, args=synib_args(tmp_path, synib_weight=1.0, synib_penalty=penalty,
                                                        mask_type=mask_type, max_steps=2, learning_rate=1e-2),
                           train_dataset=xor_data())
    trainer.train()
    assert np.isfinite(trainer.state.log_history[0]["synib/penalty_x1"])
    assert not torch.equal(before["classifier.weight"], model.classifier.weight)


def test_detached_masked_features_leave_encoders_to_the_task_loss(tmp_path):
    """With detach_masked_features, Ω's gradient reaches only the fusion head: encoders move exactly as with λ=0."""
    results = []
    for weight in (0.0, 5.0):
        model = mlp_fusion(unimodal_heads=False)
        trainer = SynIBTrainer(model=model, args=synib_args(
            tmp_path / str(weight), synib_weight=weight, mask_type="full", mask_fill="zero", detach_masked_features=True,
            max_steps=1, learning_rate=0.5, optim="sgd", max_grad_norm=0.0, per_device_train_batch_size=16),
            train_dataset=xor_data())
        trainer.train()
        results.append(params(model))
    for key in results[0]:
        if key.startswith("encoders."):
            torch.testing.assert_close(results[0][key], results[1][key])
    assert not torch.allclose(results[0]["classifier.weight"], results[1]["classifier.weight"])


@pytest.mark.parametrize("path", ["native", "generic"])
def test_bf16_on_cpu(tmp_path, path):
    if path == "native":
        model, data, keys, tokenizer = mlp_fusion(), xor_data(), None, None
    else:
        model, data, keys, tokenizer = CLIPWithHead(), image_text_data(), IMAGE_TEXT, tiny_tokenizer()
    before = params(model)
    trainer = SynIBTrainer(model=model, args=synib_args(tmp_path, bf16=True, synib_weight=1.0, modality_keys=keys,
                                                        max_steps=2, learning_rate=1e-2),
                           train_dataset=data, processing_class=tokenizer)
    trainer.train()
    log = trainer.state.log_history[0]
    assert np.isfinite(log["loss"]) and np.isfinite(log[f"synib/penalty_{'x1' if keys is None else 'text'}"])
    assert any(not torch.equal(before[k], v) for k, v in params(model).items())


# ---- behaviour: the penalty does what it says -----------------------------------------------------------------------

def test_synib_lowers_masked_confidence_without_hurting_accuracy(tmp_path):
    data = GaussianXOR(mixture=(0.0, 0.0, 0.7, 0.3), seed=0, n_train=600, n_test=600).datasets()
    data = {k: v.remove_columns("source") for k, v in data.items()}
    results = {}
    for weight in (0.0, 1.0):
        model = mlp_fusion(modality_dims={"x1": 32, "x2": 32}, hidden_size=64)
        trainer = SynIBTrainer(model=model, args=synib_args(
            tmp_path / str(weight), synib_weight=weight, mask_type="full", num_train_epochs=15, eval_masked_views=True,
            per_device_train_batch_size=32, per_device_eval_batch_size=600, learning_rate=3e-3, logging_steps=50),
            train_dataset=data["train"], eval_dataset=data["test"],
            compute_metrics=lambda p: {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())})
        trainer.train()
        results[weight] = trainer.evaluate()
    plain, synib = results[0.0], results[1.0]
    for m in ("x1", "x2"):
        assert synib[f"eval_synib/masked_max_prob_{m}"] < plain[f"eval_synib/masked_max_prob_{m}"] - 0.05
    assert synib["eval_accuracy"] >= plain["eval_accuracy"] - 0.01  # within a few of the 600 test examples
