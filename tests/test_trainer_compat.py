"""The private `transformers.Trainer` (and accelerate) members the trainers touch are where `trainer_compat` says, with
the signatures it recorded; and the SynIB trainers override at most 8 Trainer methods."""

import inspect

import pytest
from accelerate import Accelerator
from transformers import Trainer, TrainingArguments

from synib_hf import (
    MLBTrainer,
    MMParetoTrainer,
    ModalityDropoutTrainer,
    MultilossTrainer,
    OGMGETrainer,
    SynIBTrainer,
    UnimodalEnsembleTrainer,
)
from synib_hf.trainers import trainer_compat
from synib_hf.trainers.trainer_compat import CHECKED_AGAINST, MISMATCHED_LOAD_MESSAGES, PRIVATE_MEMBERS
from tiny_models import mlp_fusion


OWNERS = {"Trainer": Trainer, "Accelerator": Accelerator}


@pytest.mark.parametrize("member", PRIVATE_MEMBERS, ids=lambda m: f"{m.owner}.{m.name}")
def test_each_private_member_has_the_recorded_signature(member, tmp_path):
    if member.owner == "Dataset":
        from datasets import Dataset

        assert hasattr(Dataset.from_dict({"a": [1, 2]}).select([1]), member.name), (
            f"datasets.Dataset.{member.name} no longer exists (checked against {CHECKED_AGAINST}); synib-hf uses it "
            f"for: {member.use}. Update synib_hf/trainers/trainer_compat.py."
        )
        return
    if member.parameters is None:  # an attribute, set on instances
        trainer = Trainer(model=mlp_fusion(), args=TrainingArguments(output_dir=str(tmp_path), report_to="none",
                                                                     use_cpu=True))
        owner = trainer if member.owner == "Trainer" else trainer.accelerator
        assert hasattr(owner, member.name), (
            f"{member.owner}.{member.name} no longer exists (checked against {CHECKED_AGAINST}); synib-hf uses it "
            f"for: {member.use}. Update synib_hf/trainers/trainer_compat.py."
        )
        return
    function = getattr(OWNERS[member.owner], member.name, None)
    assert function is not None, (
        f"{member.owner}.{member.name} no longer exists (checked against {CHECKED_AGAINST}); synib-hf uses it for: "
        f"{member.use}. Update synib_hf/trainers/trainer_compat.py."
    )
    parameters = tuple(inspect.signature(function).parameters)
    assert parameters == member.parameters, (
        f"{member.owner}.{member.name}{parameters} moved from the signature {member.parameters} checked against "
        f"{CHECKED_AGAINST}; synib-hf uses it for: {member.use}. Update synib_hf/trainers/trainer_compat.py."
    )


def test_the_mismatched_load_messages_are_still_the_trainers():
    source = inspect.getsource(Trainer._issue_warnings_after_load)
    for message in MISMATCHED_LOAD_MESSAGES:
        assert message in source, f"Trainer._issue_warnings_after_load no longer says {message!r}: update trainer_compat"


def test_every_private_trainer_access_lives_in_the_compatibility_module():
    """No other trainers module names a private Trainer member (a new one must be recorded in trainer_compat)."""
    import ast
    from pathlib import Path

    private = {name for name in dir(Trainer) if name.startswith("_") and not name.startswith("__")}
    private |= {"_signature_columns", "ddp_handler"}
    folder = Path(trainer_compat.__file__).parent
    for path in folder.glob("*.py"):
        if path.name == "trainer_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in private:
                defined = isinstance(node.value, ast.Call)  # super()._save_checkpoint(...) inside its override
                assert defined and node.attr == "_save_checkpoint", f"{path.name}:{node.lineno} uses {node.attr}"


TRAINERS = [SynIBTrainer, ModalityDropoutTrainer, OGMGETrainer, MLBTrainer, MMParetoTrainer, MultilossTrainer,
            UnimodalEnsembleTrainer]


@pytest.mark.parametrize("trainer_class", TRAINERS, ids=lambda c: c.__name__)
def test_at_most_eight_trainer_methods_are_overridden(trainer_class):
    """The Trainer methods our classes (the trainer and its synib_hf bases and mixins) define."""
    overridden = set()
    for klass in trainer_class.__mro__:
        if not klass.__module__.startswith("synib_hf"):
            continue
        overridden |= {name for name, value in vars(klass).items() if callable(value) and hasattr(Trainer, name)
                       and (name == "__init__" or not name.startswith("__"))}
    assert len(overridden) <= 8, sorted(overridden)
    assert {"__init__", "compute_loss"} <= overridden  # the check sees them
