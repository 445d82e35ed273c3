"""Metrics reach every `report_to` integration: the synergy-subset groups (through compute_metrics) arrive in the
callbacks' `on_log` with the evaluation, and the `synib/*` scalars are written to TensorBoard."""

import numpy as np
from transformers import TrainerCallback

from synib_hf import SynIBConfig, SynIBTrainer
from synib_hf.synergy import synergy_compute_metrics
from tiny_models import as_dataset, mlp_fusion, vector_xor


class Recorder(TrainerCallback):
    """What a reporting integration (TensorBoard, W&B…) is handed: every `on_log`."""

    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs))


def config(tmp_path, **kwargs):
    defaults = dict(output_dir=str(tmp_path), report_to="none", use_cpu=True, max_steps=2, disable_tqdm=True,
                    per_device_train_batch_size=8, per_device_eval_batch_size=5, save_strategy="no",
                    eval_strategy="steps", eval_steps=1, logging_steps=1)
    return SynIBConfig(**{**defaults, **kwargs})


def test_a_reporting_callback_receives_the_synergy_accuracy(tmp_path):
    data = vector_xor(23, seed=2)
    unimodal = {"x1": (data["x1"][:, 0] > 0).astype(int), "x2": np.zeros(23, dtype=int)}
    recorder = Recorder()
    trainer = SynIBTrainer(model=mlp_fusion(), args=config(tmp_path), train_dataset=as_dataset(vector_xor(16)),
                           eval_dataset=as_dataset(data), callbacks=[recorder],
                           compute_metrics=synergy_compute_metrics(unimodal))
    trainer.train()
    evaluations = [log for log in recorder.logs if "eval_loss" in log]
    assert len(evaluations) == 2
    for log in evaluations:
        assert 0 <= log["eval_synergy_accuracy"] <= 1
        assert log["eval_synergy_size"] + log["eval_cue_x1_size"] + log["eval_cue_x2_size"] + \
            log["eval_coexistence_size"] == 23


def test_synib_scalars_are_written_to_tensorboard(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    data = vector_xor(16, seed=2)
    unimodal = {"x1": np.zeros(16, dtype=int), "x2": np.ones(16, dtype=int)}
    trainer = SynIBTrainer(
        model=mlp_fusion(), args=config(tmp_path, report_to="tensorboard"),
        train_dataset=as_dataset(vector_xor(16)), eval_dataset=as_dataset(data),
        compute_metrics=synergy_compute_metrics(unimodal))
    trainer.train()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for tag in ("train/synib/penalty_x1", "train/synib/masked_max_prob_x2", "train/synib/fused_loss",
                "eval/synib/masked_accuracy_x1", "eval/synergy_accuracy"):
        assert tag in tags, sorted(tags)
    assert len(events.Scalars("train/synib/penalty_x1")) == 2


def test_the_synergy_metrics_compose_with_a_plain_trainer_and_another_compute_metrics(tmp_path):
    from transformers import Trainer, TrainingArguments

    def accuracy(prediction):
        return {"accuracy_too": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}

    unimodal = {"x1": np.zeros(8, dtype=int), "x2": np.ones(8, dtype=int)}
    trainer = Trainer(model=mlp_fusion(), args=TrainingArguments(output_dir=str(tmp_path), report_to="none",
                                                                 use_cpu=True, remove_unused_columns=False),
                      eval_dataset=as_dataset(vector_xor(8)),
                      compute_metrics=synergy_compute_metrics(unimodal, compute_metrics=accuracy))
    metrics = trainer.evaluate()
    assert metrics["eval_accuracy"] == metrics["eval_accuracy_too"]
    assert metrics["eval_synergy_size"] + metrics["eval_cue_x1_size"] + metrics["eval_cue_x2_size"] + \
        metrics["eval_coexistence_size"] == 8
