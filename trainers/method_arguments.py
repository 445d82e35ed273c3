"""[`MethodArguments`]: what every method's arguments dataclass shares (SynIB's, the balancing baselines'), mixed into
a `TrainingArguments` class (`SynIBConfig = SynIBArguments + TrainingArguments`, `SynIBSFTConfig = SynIBArguments +
trl.SFTConfig`): its own fields listed for model cards, and pickling that never writes a token."""

import copy
import os
from dataclasses import MISSING, dataclass, fields


SECRET_SUFFIXES = ("hub_token", "auth_token", "api_token", "api_key")  # fields that hold credentials


@dataclass
class MethodArguments:
    """Base of a method's arguments: a dataclass of the method's own fields (all with defaults) that a
    `TrainingArguments` subclass mixes in before its `TrainingArguments` base.

    Subclasses validate their fields in `__post_init__` and end it with `super().__post_init__()`, which reaches the
    `TrainingArguments` base's.
    """

    def __post_init__(self):
        output_dir = getattr(self, "output_dir", None)
        if output_dir is not None and os.path.isfile(output_dir):
            raise ValueError(
                f"output_dir={output_dir!r} is an existing file, not a folder: name a folder for the checkpoints and "
                "the model (it is created if missing)."
            )
        parent = getattr(super(), "__post_init__", None)
        if parent is not None:  # the TrainingArguments base (absent when the arguments are used alone)
            parent()

    @classmethod
    def method_fields(cls) -> list:
        """The fields the method declares (those of its `MethodArguments` classes, not of the `TrainingArguments` class
        they are mixed into), in order."""
        from transformers import TrainingArguments

        names = {name for base in cls.__mro__ if issubclass(base, MethodArguments)
                 and not issubclass(base, TrainingArguments) for name in vars(base).get("__annotations__", {})}
        return [f for f in fields(cls) if f.name in names]

    def method_changes(self) -> dict:
        """The method's fields whose value differs from their default (what a model card lists)."""
        changed = {}
        for f in self.method_fields():
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            if getattr(self, f.name) != default:
                changed[f.name] = getattr(self, f.name)
        return changed

    # Why: the Trainer pickles its arguments into training_args.bin (in every checkpoint, and pushed to the Hub); no
    # token may travel with them. Copies made in memory keep it.
    def __getstate__(self):
        state = dict(self.__dict__)
        for name in state:
            if name.endswith(SECRET_SUFFIXES):  # hub_token and friends, not TRL's eos_token / pad_token
                state[name] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __deepcopy__(self, memo):
        copied = copy.copy(self)
        memo[id(self)] = copied
        copied.__dict__.update({k: copy.deepcopy(v, memo) for k, v in self.__dict__.items()})
        return copied

    def __copy__(self):
        copied = object.__new__(type(self))
        copied.__dict__.update(self.__dict__)
        return copied
