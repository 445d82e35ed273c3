"""The training side of the bad-input matrix: each case is a bad config, model or batch that used to train (or fail
vaguely) and now raises an error naming the field and the fix, or behaves as documented. (The data, model, card, Hub
and CLI side is `test_bad_inputs_io.py`; `test_synib_config.py` and `test_synib_trainer_errors.py` hold earlier
cases.)"""

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from transformers import PretrainedConfig

from synib_hf import MLPFusionConfig, MLPFusionForClassification, SynIBConfig, SynIBTrainer
from tiny_models import as_dataset, mlp_fusion, tiny_tokenizer, vector_xor


def args(tmp_path, **kwargs):
    defaults = dict(output_dir=str(tmp_path), report_to="none", use_cpu=True, save_strategy="no", max_steps=1,
                    per_device_train_batch_size=4, per_device_eval_batch_size=4, disable_tqdm=True, logging_steps=1,
                    remove_unused_columns=False)
    return SynIBConfig(**{**defaults, **kwargs})


class Heads(nn.Module):
    """Scores from a float input `a` and any other inputs; `num_outputs` columns, under `output_name`."""

    def __init__(self, num_outputs=2, output_name="logits", problem_type=None):
        super().__init__()
        self.linear = nn.Linear(3, num_outputs)
        self.config = PretrainedConfig(problem_type=problem_type)  # what transformers' heads say of their task
        self.output_name = output_name

    def forward(self, a=None, labels=None, **others):
        scores = self.linear(a)
        for value in others.values():
            if torch.is_tensor(value) and value.is_floating_point():
                scores = scores + value.flatten(1).sum(-1, keepdim=True)
        return {self.output_name: scores}


def rows(n=8, labels=None, **columns):
    rng = np.random.default_rng(0)
    data = {"a": rng.normal(size=(n, 3)).astype(np.float32), "b": rng.normal(size=(n, 3)).astype(np.float32)}
    data["labels"] = np.arange(n) % 2 if labels is None else labels
    data.update(columns)
    return as_dataset(data)


AB = {"left": ["a"], "right": ["b"]}


def train(tmp_path, model=None, data=None, tokenizer=None, **kwargs):
    trainer = SynIBTrainer(model=model if model is not None else Heads(), args=args(tmp_path, **kwargs),
                           train_dataset=data if data is not None else rows(), processing_class=tokenizer)
    trainer.train()
    return trainer


def one_logit_native():
    return mlp_fusion(num_labels=1, normalize_features=False, encoder_output_activation=True)


# ---- bad configuration: rejected at construction -------------------------------------------------------------------

CONFIG_CASES = {
    "infinite-weight": ({"synib_weight": math.inf}, r"synib_weight must be a finite number >= 0 \(0 disables SynIB\), got inf"),
    "negative-patch": ({"mask_patch_size": 0}, "mask_patch_size must be an integer >= 1"),
    "unknown-input-kind": ({"input_kinds": {"a": "pixels"}}, "input_kinds: 'pixels' names no kind"),
    "partner-on-content": ({"input_kinds": {"a": "sequence:b"}}, "only 'attention' and 'boxes' companions name"),
    "negative-oracle": ({"mask_type": "oracle", "oracle_coordinates": {"a": [-1]}},
                        r"oracle_coordinates\['a'\] must be a list of non-negative .* silently count from the end"),
    "string-oracle": ({"mask_type": "oracle", "oracle_coordinates": {"a": "0,1"}}, r"oracle_coordinates\['a'\]"),
    "unknown-problem-type": ({"problem_type": "ranking"}, "problem_type='ranking' is not a valid choice"),
    "empty-logits-key": ({"logits_key": ""}, "logits_key must name an output field"),
    "infinite-learned-lr": ({"learned_mask_lr": math.inf}, "learned_mask_lr must be a finite number > 0"),
    "input-kinds-not-json": ({"input_kinds": "{a: image"}, "input_kinds must be a dict or a JSON object string"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_configuration(tmp_path, case):
    kwargs, message = CONFIG_CASES[case]
    with pytest.raises(ValueError, match=message):
        args(tmp_path, **kwargs)


# ---- bad model or batch: an error before (or at) the first step ----------------------------------------------------

def error_cases():
    def native_one_modality(tmp_path):
        model = MLPFusionForClassification(MLPFusionConfig(modality_dims={"x1": 6}, hidden_size=8))
        SynIBTrainer(model=model, args=args(tmp_path))

    def one_logit_label_two(tmp_path):
        train(tmp_path, one_logit_native(), as_dataset({**vector_xor(8), "labels": np.array([0, 1, 2, 0] * 2)}))

    def label_out_of_range(tmp_path):
        train(tmp_path, data=rows(labels=np.array([0, 1, 5, 0] * 2)), modality_keys=AB)

    def negative_label(tmp_path):
        train(tmp_path, data=rows(labels=np.array([0, -3, 1, 0] * 2)), modality_keys=AB)

    def float_labels_native(tmp_path):
        train(tmp_path, mlp_fusion(), as_dataset({**vector_xor(8), "labels": np.linspace(0, 1, 8).astype(np.float32)}))

    def all_padding_text(tmp_path):
        ids = np.array([[2, 7, 3, 0]] * 8)
        attention = (ids != 0).astype(np.int64)
        attention[1] = 0
        train(tmp_path, data=rows(input_ids=ids, attention_mask=attention), tokenizer=tiny_tokenizer(),
              modality_keys={"left": ["a"], "text": ["input_ids", "attention_mask"]})

    def categorical_ids(tmp_path):
        train(tmp_path, data=rows(category=np.arange(8) % 3), modality_keys={"left": ["a"], "right": ["b", "category"]})

    def only_companions(tmp_path):
        train(tmp_path, data=rows(category=np.arange(8) % 3), modality_keys={"left": ["a"], "right": ["category"]},
              input_kinds={"category": "unchanged"})

    def orphan_attention_mask(tmp_path):
        train(tmp_path, data=rows(extra_attention_mask=np.ones((8, 5), dtype=np.int64)),
              modality_keys={"left": ["a"], "right": ["b", "extra_attention_mask"]})

    def oracle_out_of_range(tmp_path):
        train(tmp_path, modality_keys=AB, mask_type="oracle", oracle_coordinates={"a": [1, 9]})

    def shuffle_with_batches_of_one(tmp_path):
        train(tmp_path, modality_keys=AB, mask_fill="shuffle", per_device_train_batch_size=1)

    def shuffle_with_eval_batches_of_one(tmp_path):
        train(tmp_path, modality_keys=AB, mask_fill="shuffle", per_device_eval_batch_size=1)

    def shuffle_starts_with_a_batch_of_one(tmp_path):
        from synib_hf.masking import Filler, MaskRandomness, MaskSpec

        Filler(MaskSpec(mask_fill="shuffle"), MaskRandomness(0))("x1", torch.ones(1, 4))

    def regression_head_with_kl(tmp_path):
        train(tmp_path, Heads(num_outputs=1), modality_keys=AB)

    def integer_multilabel_targets(tmp_path):
        train(tmp_path, Heads(num_outputs=2, problem_type="multi_label_classification"),
              rows(labels=np.eye(2, dtype=np.int64)[np.arange(8) % 2]), modality_keys=AB)

    def multilabel_width(tmp_path):
        train(tmp_path, Heads(num_outputs=2), rows(labels=np.zeros((8, 3), dtype=np.float32)), modality_keys=AB)

    def scores_under_another_name(tmp_path):
        train(tmp_path, Heads(output_name="question_answering_score"), modality_keys=AB)

    def sequence_logits(tmp_path):
        class Tokens(Heads):
            def forward(self, a=None, labels=None, **others):
                return {"logits": self.linear(a)[:, None].expand(-1, 4, -1)}

        train(tmp_path, Tokens(), modality_keys=AB)

    def six_dimensional_input(tmp_path):
        train(tmp_path, data=rows(video=np.zeros((8, 1, 1, 1, 1, 2), dtype=np.float32)),
              modality_keys={"left": ["a"], "right": ["video"]})

    def declared_kind_mismatch(tmp_path):
        train(tmp_path, modality_keys=AB, input_kinds={"b": "image"})

    def label_smoothing_multilabel(tmp_path):
        train(tmp_path, Heads(num_outputs=2), rows(labels=np.zeros((8, 2), dtype=np.float32)), modality_keys=AB,
              label_smoothing_factor=0.1)

    def evaluate_without_labels(tmp_path):
        trainer = SynIBTrainer(model=Heads(), args=args(tmp_path, modality_keys=AB), train_dataset=rows())
        trainer.evaluate(rows().remove_columns("labels"))

    def compute_loss_func_on_the_native_path(tmp_path):
        SynIBTrainer(model=mlp_fusion(), args=args(tmp_path), compute_loss_func=lambda *a, **k: 0)

    def label_smoothing_on_the_native_path(tmp_path):
        SynIBTrainer(model=mlp_fusion(), args=args(tmp_path, label_smoothing_factor=0.1))

    def generic_field_on_the_native_path(tmp_path):
        SynIBTrainer(model=mlp_fusion(), args=args(tmp_path, logits_key="scores"))

    def non_finite_inputs(tmp_path):
        data = {**vector_xor(8)}
        data["x1"] = data["x1"].copy()
        data["x1"][2, 0] = np.nan
        train(tmp_path, mlp_fusion(), as_dataset(data), train_sampling_strategy="sequential")

    return {
        "native-model-with-one-modality": (native_one_modality, "declares 1 modality .* needs at least two"),
        "one-logit-head-label-2": (one_logit_label_two, r"class ids must be in \[0, 1\] .* got \[2\]"),
        "label-out-of-range": (label_out_of_range, r"class ids must be in \[0, 1\] .* got \[5\]"),
        "negative-label": (negative_label, r"class ids must be in \[0, 1\] \(or -100 to ignore a row\), got \[-3\]"),
        "float-labels-for-a-classifier": (float_labels_native, "needs one integer class id per example"),
        "all-padding-text": (all_padding_text, r"rows \[1\] of 'attention_mask' attend to no position"),
        "categorical-integer-input": (categorical_ids, "'category' holds integers .* Declare it in SynIBConfig.input_kinds"),
        "modality-with-nothing-to-mask": (only_companions, "modality 'right' has no input SynIB can mask"),
        "attention-mask-without-partner": (orphan_attention_mask, "'extra_attention_mask' .* must follow the positions"),
        "oracle-coordinate-out-of-range": (oracle_out_of_range, r"oracle_coordinates\['a'\] must be indices in \[0, 2\]"),
        "shuffle-with-batches-of-one": (shuffle_with_batches_of_one, "per_device_train_batch_size must be at least 2"),
        "shuffle-with-eval-batches-of-one": (shuffle_with_eval_batches_of_one,
                                             "per_device_eval_batch_size must be at least 2 .* eval_masked_views=False"),
        "shuffle-starts-with-a-batch-of-one": (shuffle_starts_with_a_batch_of_one,
                                               "this batch has one example and no earlier batch"),
        "regression-head-with-kl-uniform": (regression_head_with_kl, "is a regression head .* synib_penalty='gaussian'"),
        "integer-multi-label-targets": (integer_multilabel_targets, r"multi-label targets must be floats"),
        "multi-label-targets-of-the-wrong-width": (multilabel_width, r"needs targets of shape \(4, 2\), got \(4, 3\)"),
        "scores-under-another-output-name": (scores_under_another_name,
                                             r"output has \['question_answering_score'\]. Set SynIBConfig.logits_key"),
        "token-level-logits": (sequence_logits, "use synib_path='embedding'"),
        "input-with-no-masking-rule": (six_dimensional_input, "no masking rule for 6-D floats"),
        "declared-kind-that-does-not-fit": (declared_kind_mismatch, "'b' is masked as 'image', which needs 4-D floats"),
        "label-smoothing-on-a-multi-label-head": (label_smoothing_multilabel, "label_smoothing_factor applies to"),
        "evaluate-without-labels": (evaluate_without_labels, r"evaluate\(\) needs labels .* trainer.predict\(\)"),
        "non-finite-inputs": (non_finite_inputs, r"Non-finite logits at step 0 \(train\)"),
        "generic-only-field-on-the-native-path": (generic_field_on_the_native_path,
                                                  "logits_key='scores' is read by the generic path.* remove logits_key"),
        "compute-loss-func-on-the-native-path": (compute_loss_func_on_the_native_path,
                                                 "compute_loss_func is not used on the native path"),
        "label-smoothing-on-the-native-path": (label_smoothing_on_the_native_path,
                                               "label_smoothing_factor is not used on the native path"),
    }


ERROR_CASES = error_cases()


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_bad_model_or_batch(tmp_path, case):
    build, message = ERROR_CASES[case]
    with pytest.raises(ValueError, match=message):
        build(tmp_path)


# ---- defined behaviours ------------------------------------------------------------------------------------------

def test_ignored_rows_count_in_no_loss_penalty_or_logged_mean(tmp_path):
    """Rows labelled -100 change nothing: the batch with them trains exactly as the batch without them."""
    base = vector_xor(8)
    ignored = {k: np.concatenate([v, v[:4]]) for k, v in base.items()}
    ignored["labels"][8:] = -100
    results = []
    for data, batch in ((base, 8), (ignored, 12)):
        model = mlp_fusion()
        trainer = train(tmp_path / str(batch), model, as_dataset(data), synib_weight=1.0, mask_type="full",
                        mask_fill="zero", per_device_train_batch_size=batch, train_sampling_strategy="sequential",
                        optim="sgd", learning_rate=0.5)
        results.append((trainer.state.log_history[0], {k: v.clone() for k, v in model.state_dict().items()}))
    (log, weights), (ignored_log, ignored_weights) = results
    for key in ("loss", "synib/task_loss", "synib/penalty_x1", "synib/masked_max_prob_x2"):
        assert ignored_log[key] == pytest.approx(log[key], rel=1e-5), key
    for key in weights:
        torch.testing.assert_close(ignored_weights[key], weights[key])


def test_a_batch_of_only_ignored_rows_costs_nothing_and_a_first_one_is_refused(tmp_path):
    from transformers import TrainerCallback

    class Snapshot(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            steps.append({k: v.detach().clone() for k, v in model.named_parameters()})

    steps = []
    labels = np.concatenate([np.arange(4) % 2, np.full(4, -100)])  # batch 1 labelled, batch 2 all ignored
    trainer = SynIBTrainer(model=mlp_fusion(), args=args(tmp_path, optim="sgd", learning_rate=0.5, max_grad_norm=0.0,
                                                         max_steps=2, train_sampling_strategy="sequential"),
                           train_dataset=as_dataset({**vector_xor(8), "labels": labels}), callbacks=[Snapshot()])
    trainer.train()
    assert trainer.state.log_history[1]["loss"] == 0.0
    assert all(torch.equal(steps[0][k], v) for k, v in steps[1].items())  # the ignored batch changed nothing
    assert "synib/penalty_x1" not in trainer.state.log_history[1]  # no row counted: no mean to log
    with pytest.raises(ValueError, match="Every row of the first training batch is labelled -100"):
        train(tmp_path, mlp_fusion(), as_dataset({**vector_xor(4), "labels": np.full(4, -100)}))


def test_shuffle_fills_a_last_batch_of_one_from_the_previous_batch(tmp_path):
    """An epoch (or evaluation set) ending in a batch of one trains (evaluates): its fill is an example of the batch
    before, never itself."""
    from synib_hf.masking import Filler, MaskRandomness, MaskSpec

    filler = Filler(MaskSpec(mask_fill="shuffle"), MaskRandomness(0))
    previous = torch.arange(12.0).view(3, 4)
    filler("x1", previous)
    fill = filler("x1", torch.full((1, 4), -1.0))
    assert any(torch.equal(fill[0], row) for row in previous)
    trainer = train(tmp_path, data=rows(n=5), modality_keys=AB, mask_fill="shuffle", max_steps=-1,
                    num_train_epochs=1, train_sampling_strategy="sequential")
    assert trainer.state.global_step == 2  # batches of 4 and 1


def test_ema_noise_with_batches_of_one_warns_then_builds_a_variance(tmp_path):
    with pytest.warns(UserWarning, match="has no variance yet"):
        trainer = train(tmp_path, mlp_fusion(), as_dataset(vector_xor(8)), per_device_train_batch_size=1,
                        max_steps=6, mask_fill="ema_noise")
    statistics = trainer.view_builder.masker.fill.statistics
    _, variance = statistics.moments("x1", torch.zeros(1, 16))
    assert (variance > 0).all()


def test_a_non_finite_batch_leaves_the_fill_statistics_finite(tmp_path):
    data = {**vector_xor(16)}
    data["x1"] = data["x1"].copy()
    data["x1"][4:8] = np.nan  # the second batch
    trainer = SynIBTrainer(model=mlp_fusion(), args=args(tmp_path, max_steps=2, train_sampling_strategy="sequential",
                                                         mask_fill="ema_noise"), train_dataset=as_dataset(data))
    with pytest.raises(ValueError, match=r"Non-finite logits at step 1"):
        trainer.train()
    statistics = trainer.view_builder.masker.fill.statistics
    assert all(torch.isfinite(v).all() for v in [*statistics.mean.values(), *statistics.second.values()])


@pytest.mark.parametrize("with_labels", [True, False])
def test_predictions_are_one_array_with_and_without_labels(tmp_path, with_labels):
    trainer = SynIBTrainer(model=mlp_fusion(), args=args(tmp_path), train_dataset=as_dataset(vector_xor(8)))
    data = as_dataset(vector_xor(6)) if with_labels else as_dataset(vector_xor(6)).remove_columns("labels")
    prediction = trainer.predict(data)
    assert isinstance(prediction.predictions, np.ndarray) and prediction.predictions.shape == (6, 2)
    assert (prediction.label_ids is not None) == with_labels


def test_multi_label_head_uses_bce_and_the_bernoulli_penalty(tmp_path):
    """Soft targets train a multi-label head: the task loss is BCE, the penalty the per-label KL to 1/2."""
    labels = np.tile(np.array([[0.3, 1.0], [0.0, 0.6]], dtype=np.float32), (4, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about
        trainer = train(tmp_path, Heads(num_outputs=2), rows(labels=labels), modality_keys=AB, mask_type="full",
                        mask_fill="zero", synib_weight=1.0)
    assert trainer.view_builder.task.problem_type == "multi_label_classification"
    log = trainer.state.log_history[0]
    assert 0 <= log["synib/penalty_left"] <= math.log(2) and 0.5 <= log["synib/masked_max_prob_left"] <= 1
