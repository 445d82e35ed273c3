import math

import numpy as np
import pytest
import evaluate

from synib_hf import SynIBConfig, SynIBTrainer
from synib_hf.synergy import (
    SYNERGY_SUBSET_METRIC,
    synergy_compute_metrics,
    synergy_subset_scores,
    train_unimodal_predictors,
)
from tiny_models import as_dataset, mlp_fusion, vector_xor


def test_metric_loads_by_path_offline_and_groups_by_hand():
    metric = evaluate.load(SYNERGY_SUBSET_METRIC)
    references = [1, 1, 0, 0, 1, 0, 1, 0]
    unimodal_1 = [0, 0, 0, 1, 1, 1, 1, 0]  # right on 2, 4, 6, 7
    unimodal_2 = [0, 1, 1, 1, 0, 1, 1, 1]  # right on 1, 6
    predictions = [1, 0, 0, 1, 1, 1, 1, 0]  # right on 0, 2, 4, 6, 7
    # synergy = {0, 3, 5}; cue_1 = {2, 4, 7}; cue_2 = {1}; coexistence = {6}
    scores = metric.compute(predictions=predictions, references=references, unimodal_1=unimodal_1,
                            unimodal_2=unimodal_2)
    assert scores["synergy_size"] == 3 and scores["synergy_accuracy"] == pytest.approx(1 / 3)
    assert scores["cue_1_size"] == 3 and scores["cue_1_accuracy"] == 1.0
    assert scores["cue_2_size"] == 1 and scores["cue_2_accuracy"] == 0.0
    assert scores["coexistence_size"] == 1 and scores["coexistence_accuracy"] == 1.0
    assert scores["accuracy"] == pytest.approx(5 / 8)


def test_empty_groups_are_nan_and_names_are_used():
    scores = synergy_subset_scores(np.array([1, 0]), np.array([1, 0]), {"image": np.array([1, 0]),
                                                                         "text": np.array([1, 0])}, prefix="eval_")
    assert scores["eval_coexistence_accuracy"] == 1.0 and math.isnan(scores["eval_synergy_accuracy"])
    assert scores["eval_cue_image_size"] == 0 and "eval_cue_text_accuracy" in scores
    with pytest.raises(ValueError, match="aligned with the evaluation set"):
        synergy_subset_scores(np.array([1, 0]), np.array([1, 0]), {"a": np.array([1]), "b": np.array([1, 0])})


def test_unimodal_predictors_are_at_chance_on_pure_xor():
    train, test = vector_xor(400, seed=0), vector_xor(400, seed=1)
    predictors = train_unimodal_predictors({"x1": train["x1"], "x2": train["x2"]}, train["labels"])
    for modality, predictor in predictors.items():
        assert 0.4 < (predictor.predict(test[modality]) == test["labels"]).mean() < 0.6


def test_compute_metrics_reports_the_groups_of_the_evaluation_set(tmp_path):
    data = vector_xor(24, seed=2)
    unimodal = {"x1": (data["x1"][:, 0] > 0).astype(int), "x2": np.zeros(24, dtype=int)}
    trainer = SynIBTrainer(
        model=mlp_fusion(),
        args=SynIBConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, max_steps=2, disable_tqdm=True,
                         per_device_eval_batch_size=7, save_strategy="no"),
        train_dataset=as_dataset(vector_xor(16)), eval_dataset=as_dataset(data),
        compute_metrics=synergy_compute_metrics(unimodal),
    )
    trainer.train()
    metrics = trainer.evaluate()
    predicted = trainer.predict(as_dataset(data)).predictions.argmax(-1)
    expected = synergy_subset_scores(predicted, data["labels"], unimodal, prefix="eval_")
    keys = [k for k in metrics if k.startswith("eval_") and ("_size" in k or "_accuracy" in k) and "synib" not in k]
    assert "eval_synergy_accuracy" in keys and "eval_cue_x1_size" in keys
    assert sum(metrics[k] for k in keys if k.endswith("_size")) == 24
    for key in keys:
        assert metrics[key] == pytest.approx(expected[key], nan_ok=True), key
    assert trainer.state.log_history[-1]["eval_synergy_size"] == metrics["eval_synergy_size"]


def _prediction(logits, labels):
    from transformers import EvalPrediction

    return EvalPrediction(predictions=np.asarray(logits, dtype=np.float32), label_ids=np.asarray(labels))


def test_the_chance_reference_is_one_over_the_number_of_classes():
    labels = np.array([0, 1, 2, 2, 1, 0])
    unimodal = {"a": np.zeros(6, dtype=int), "b": np.ones(6, dtype=int)}
    three = synergy_compute_metrics(unimodal)(_prediction(np.eye(3)[labels], labels))
    assert three["synergy_chance"] == pytest.approx(1 / 3) and three["synergy_accuracy"] == 1.0
    # a one-logit (sigmoid) head decides between two classes; an explicit count wins over the logits' width
    binary = np.array([1, 0, 1, 1])
    one_logit = synergy_compute_metrics({"a": np.zeros(4, dtype=int), "b": np.zeros(4, dtype=int)})(
        _prediction((2.0 * binary - 1.0)[:, None], binary))
    assert one_logit["synergy_chance"] == 0.5
    explicit = synergy_compute_metrics(unimodal, num_classes=11)(_prediction(np.eye(3)[labels], labels))
    assert explicit["synergy_chance"] == pytest.approx(1 / 11)
    # without a class count the scores are what they were (the bench scripts pass predicted classes only)
    assert "synergy_chance" not in synergy_subset_scores(labels, labels, unimodal)
    with pytest.raises(ValueError, match="at least 2"):
        synergy_subset_scores(labels, labels, unimodal, num_classes=1)


def test_the_ground_truth_slice_is_scored_on_its_own_rows():
    references = np.array([0, 1, 1, 0, 1, 0, 1, 0])
    predictions = np.array([0, 1, 0, 0, 0, 1, 1, 0])  # right on 0, 1, 3, 6, 7
    unimodal = {"a": 1 - references, "b": 1 - references}  # every example in the synergy subset
    mask = np.array([False, False, True, True, True, False, False, False])  # right on 3 only
    scores = synergy_subset_scores(predictions, references, unimodal, prefix="eval_", num_classes=2,
                                   ground_truth=mask)
    assert scores["eval_synergy_accuracy"] == pytest.approx(5 / 8) and scores["eval_synergy_size"] == 8
    assert scores["eval_ground_truth_synergy_accuracy"] == pytest.approx(1 / 3)
    assert scores["eval_ground_truth_synergy_size"] == 3
    named = synergy_subset_scores(predictions, references, unimodal,
                                  ground_truth={"irony_class": mask, "empty": np.zeros(8, dtype=bool)})
    assert named["ground_truth_irony_class_accuracy"] == pytest.approx(1 / 3)
    assert named["ground_truth_irony_class_size"] == 3
    assert math.isnan(named["ground_truth_empty_accuracy"]) and named["ground_truth_empty_size"] == 0
    # the references stand beside the subset's own figures, before the other groups
    assert list(scores)[:6] == ["eval_accuracy", "eval_synergy_accuracy", "eval_synergy_size", "eval_synergy_chance",
                                "eval_ground_truth_synergy_accuracy", "eval_ground_truth_synergy_size"]
    with pytest.raises(ValueError, match="ground-truth slice 'synergy' cover 3 examples.*aligned"):
        synergy_subset_scores(predictions, references, unimodal, ground_truth=mask[:3])


def test_compute_metrics_reports_the_ground_truth_slice_of_the_evaluation_set(tmp_path):
    data = vector_xor(24, seed=2)
    unimodal = {"x1": (data["x1"][:, 0] > 0).astype(int), "x2": np.zeros(24, dtype=int)}
    slice_ = data["x1"][:, 1] > 0
    trainer = SynIBTrainer(
        model=mlp_fusion(),
        args=SynIBConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, max_steps=2, disable_tqdm=True,
                         per_device_eval_batch_size=7, save_strategy="no"),
        train_dataset=as_dataset(vector_xor(16)), eval_dataset=as_dataset(data),
        compute_metrics=synergy_compute_metrics(unimodal, ground_truth={"slice": slice_}),
    )
    trainer.train()
    metrics = trainer.evaluate()
    correct = trainer.predict(as_dataset(data)).predictions.argmax(-1) == data["labels"]
    assert metrics["eval_ground_truth_slice_accuracy"] == pytest.approx(correct[slice_].mean())
    assert metrics["eval_ground_truth_slice_size"] == int(slice_.sum()) and metrics["eval_synergy_chance"] == 0.5
