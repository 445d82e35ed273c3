"""`SynIBMixin` composes with any `Trainer` subclass, and `SynIBTrainer` is a drop-in for `Trainer`: its positional
order, plain `TrainingArguments` accepted, the Trainer's wording without a checkpoint, and at λ = 0 the Trainer's files
plus the model card."""

import logging
import os

import pytest
import torch
from transformers import Trainer, TrainingArguments, default_data_collator

from synib_hf import SynIBConfig, SynIBMixin, SynIBTrainer
from tiny_models import as_dataset, mlp_fusion, vector_xor


COMMON = dict(report_to="none", use_cpu=True, disable_tqdm=True, seed=0, logging_steps=1, save_strategy="no",
              per_device_train_batch_size=8, max_steps=3, learning_rate=0.1, remove_unused_columns=False)


class CountingTrainer(Trainer):
    """A project's own Trainer subclass: its own `training_step` and `log`."""

    def training_step(self, model, inputs, num_items_in_batch=None):
        self.steps_seen = getattr(self, "steps_seen", 0) + 1
        return super().training_step(model, inputs, num_items_in_batch)

    def log(self, logs, start_time=None):
        logs["custom/marker"] = 1.0
        super().log(logs, start_time)


class SynIBCountingTrainer(SynIBMixin, CountingTrainer):
    pass


def test_the_mixin_keeps_a_custom_trainers_behaviour_and_adds_synib(tmp_path):
    trained = {}
    for name, trainer_class in (("custom", SynIBCountingTrainer), ("reference", SynIBTrainer)):
        model = mlp_fusion()
        trainer = trainer_class(model=model, args=SynIBConfig(output_dir=str(tmp_path / name), synib_weight=1.0,
                                                              **COMMON), train_dataset=as_dataset(vector_xor(32)))
        trainer.train()
        trained[name] = (trainer, {k: v.detach().clone() for k, v in model.state_dict().items()})
    custom, reference = trained["custom"][0], trained["reference"][0]
    assert custom.steps_seen == 3  # its training_step ran every step
    logs = [h for h in custom.state.log_history if "loss" in h]
    assert len(logs) == 3 and all(h["custom/marker"] == 1.0 and "synib/penalty_x1" in h for h in logs)
    assert [h["loss"] for h in logs] == [h["loss"] for h in reference.state.log_history if "loss" in h]
    for key, value in trained["reference"][1].items():  # the same SynIB training, parameter for parameter
        assert torch.equal(trained["custom"][1][key], value), key


def test_positional_arguments_follow_the_trainers_order(tmp_path):
    data = as_dataset(vector_xor(16))
    args = SynIBConfig(output_dir=str(tmp_path), **COMMON)
    trainer = SynIBTrainer(mlp_fusion(), args, default_data_collator, data, data)
    plain = Trainer(mlp_fusion(), TrainingArguments(output_dir=str(tmp_path), **COMMON), default_data_collator, data,
                    data)
    assert trainer.data_collator is plain.data_collator is default_data_collator
    assert trainer.train_dataset is data and trainer.eval_dataset is data and trainer.processing_class is None


def test_plain_training_arguments_are_converted_with_synibs_defaults(tmp_path, caplog):
    plain = TrainingArguments(output_dir=str(tmp_path), hub_token="not-a-real-token", **COMMON)
    with caplog.at_level(logging.INFO, logger="synib_hf"):
        trainer = SynIBTrainer(mlp_fusion(), plain, train_dataset=as_dataset(vector_xor(16)))
    assert type(trainer.args) is SynIBConfig
    assert (trainer.args.learning_rate, trainer.args.max_steps, trainer.args.hub_token) == (0.1, 3, "not-a-real-token")
    assert (trainer.args.synib_weight, trainer.args.mask_type) == (0.1, "random")  # SynIB's defaults
    notices = [r.getMessage() for r in caplog.records if "converted to SynIBConfig" in r.getMessage()]
    assert len(notices) == 1 and "synib_weight=0.1" in notices[0]


def test_an_arguments_class_with_its_own_fields_is_refused_with_the_fix(tmp_path):
    from dataclasses import dataclass, field

    @dataclass
    class ProjectArguments(TrainingArguments):
        project_option: int = field(default=3)

    with pytest.raises(TypeError, match=r"class MyArguments\(synib_hf.SynIBArguments, ProjectArguments\)"):
        SynIBTrainer(mlp_fusion(), ProjectArguments(output_dir=str(tmp_path), report_to="none"))


def test_no_checkpoint_is_reported_in_the_trainers_words(tmp_path):
    data = as_dataset(vector_xor(16))
    messages = []
    for trainer_class, args_class in ((Trainer, TrainingArguments), (SynIBTrainer, SynIBConfig)):
        trainer = trainer_class(mlp_fusion(), args_class(output_dir=str(tmp_path), **COMMON), train_dataset=data)
        with pytest.raises(ValueError) as error:
            trainer.train(resume_from_checkpoint=True)
        messages.append(str(error.value))
    assert messages[0] == messages[1] == f"No valid checkpoint found in output directory ({tmp_path})"


def files_written(folder) -> set:
    return {os.path.relpath(os.path.join(root, name), folder) for root, _, names in os.walk(folder) for name in names}


def test_at_lambda_zero_it_writes_the_trainers_files_plus_the_model_card(tmp_path):
    data = as_dataset(vector_xor(32))
    options = {**COMMON, "save_strategy": "steps", "save_steps": 2}
    for trainer_class, args in ((Trainer, TrainingArguments(output_dir=str(tmp_path / "plain"), **options)),
                                (SynIBTrainer, SynIBConfig(output_dir=str(tmp_path / "synib"), synib_weight=0.0,
                                                           **options))):
        trainer = trainer_class(mlp_fusion(), args, train_dataset=data)
        trainer.train()
        trainer.save_model()
    plain, synib = files_written(tmp_path / "plain"), files_written(tmp_path / "synib")
    card = {os.path.join(folder, name) for folder in ("", "checkpoint-2", "checkpoint-3")
            for name in ("README.md", "synib_card.json")}
    assert synib == plain | {os.path.normpath(path) for path in card}
