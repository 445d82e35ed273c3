"""Command-line plumbing shared by the `synib-hf` commands: recipes (YAML/JSON files of options, or the name of a
shipped recipe), an `HfArgumentParser` whose help leads with SynIB's fields, and one-line errors for user mistakes."""

import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path

from transformers import HfArgumentParser, TrainingArguments


RECIPES = Path(__file__).parent / "recipes"
RECIPE_SUFFIXES = (".yaml", ".yml", ".json")


def shipped_recipes() -> list[str]:
    """Names of the recipes installed with the package (`synib-hf train tiny`)."""
    return sorted(path.stem for path in RECIPES.glob("*.yaml"))


def resolve_recipe(name_or_path: str) -> Path:
    """A recipe file: the path as given, or a shipped recipe by name."""
    path = Path(name_or_path)
    if path.suffix in RECIPE_SUFFIXES:
        if not path.is_file():
            raise FileNotFoundError(f"recipe {name_or_path!r} not found (working directory: {Path.cwd()}).")
        return path
    if name_or_path in shipped_recipes():
        return RECIPES / f"{name_or_path}.yaml"
    raise ValueError(
        f"{name_or_path!r} is neither a recipe file ({', '.join(RECIPE_SUFFIXES)}) nor a shipped recipe "
        f"({', '.join(shipped_recipes())})."
    )


def recipe_to_argv(path) -> list:
    """A YAML/JSON recipe as command-line arguments, so later `--key value` arguments override it.

    Raises:
        ValueError: the file does not parse, or is not a mapping of option names to values.
    """
    import yaml

    path = Path(path)
    text = path.read_text()
    try:
        recipe = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as error:
        raise ValueError(f"recipe {path} does not parse: {error}") from None
    if not isinstance(recipe, dict):
        raise ValueError(f"recipe {path} must be a mapping of option names to values, got {type(recipe).__name__}.")
    argv = []
    for key, value in recipe.items():
        if isinstance(value, (list, tuple)):
            argv += [f"--{key}", *map(str, value)]
        elif isinstance(value, dict):
            argv += [f"--{key}", json.dumps(value)]
        elif value is not None:
            argv += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return argv


def expand_recipe(parser: HfArgumentParser, argv=None) -> list:
    """`argv` with its recipe (the one positional argument, wherever it stands) replaced by the recipe's options,
    placed first so that options on the command line override it.

    Raises:
        ValueError: more than one positional argument, an unknown recipe, or a recipe key no option knows.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    flags = {option for action in parser._actions for option in action.option_strings}
    takes_value = {option for action in parser._actions if action.nargs != 0 for option in action.option_strings}
    takes_values = {option for action in parser._actions if action.nargs in ("+", "*")
                    for option in action.option_strings}
    positional, rest, index = [], [], 0
    while index < len(argv):
        token = argv[index]
        rest_of = argv[index + 1] if index + 1 < len(argv) else None
        if token.startswith("-") and "=" not in token:
            rest.append(token)
            # an option's value follows it, unless the option is a flag or the next token is another option
            if token in takes_value and rest_of is not None and not rest_of.startswith("--"):
                rest.append(rest_of)
                index += 1
                # a list option (masked_modalities, report_to, ...) takes every value up to the next option
                while token in takes_values and index + 1 < len(argv) and not argv[index + 1].startswith("-"):
                    rest.append(argv[index + 1])
                    index += 1
        elif token.startswith("-"):
            rest.append(token)
        else:
            positional.append(token)
        index += 1
    if len(positional) > 1:
        raise ValueError(f"expected one recipe, got {len(positional)} positional arguments: {positional}.")
    if not positional:
        return rest
    recipe_argv = recipe_to_argv(resolve_recipe(positional[0]))
    unknown = sorted({token for token in recipe_argv if token.startswith("--")} - flags)
    if unknown:
        raise ValueError(
            f"recipe {positional[0]} sets {', '.join(k[2:] for k in unknown)}, which no option of this command "
            "knows; check the spelling against --help."
        )
    return recipe_argv + rest


class SynIBArgumentParser(HfArgumentParser):
    """`HfArgumentParser` whose help reads in order: the recipe, the SynIB fields, the script's own options, then the
    inherited `TrainingArguments` fields (under their own headings)."""

    def __init__(self, dataclass_types, **kwargs):
        kwargs.setdefault("usage", f"{kwargs.get('prog', 'synib-hf')} [RECIPE] [--option value ...]")
        super().__init__(dataclass_types, **kwargs)
        self.add_argument(
            "recipe", nargs="?", metavar="RECIPE",
            help=f"a YAML/JSON file of options, or a shipped recipe: {', '.join(shipped_recipes())}",
        )
        # argparse prints groups in the order they were made: SynIB's fields go first, after the recipe
        synib = [group for group in self._action_groups if (group.title or "").endswith("(SynIB)")]
        others = [group for group in self._action_groups if group not in synib]
        self._action_groups[:] = others[:2] + synib + others[2:]

    def _add_dataclass_arguments(self, dtype):
        if not (isinstance(dtype, type) and issubclass(dtype, TrainingArguments) and dtype is not TrainingArguments):
            group = self.add_argument_group(f"{dtype.__name__} options")
            for field in _init_fields(dtype):
                self._parse_dataclass_field(group, field)
            return
        inherited = {field.name for field in dataclasses.fields(TrainingArguments)}
        own = self.add_argument_group(f"{dtype.__name__} options (SynIB)")
        trainer = self.add_argument_group("TrainingArguments options (inherited from transformers)")
        for field in _init_fields(dtype):
            self._parse_dataclass_field(trainer if field.name in inherited else own, field)


def _init_fields(dtype):
    from typing import get_type_hints

    hints = get_type_hints(dtype)
    for field in dataclasses.fields(dtype):
        if field.init:
            field.type = hints[field.name]
            yield field


@contextlib.contextmanager
def exit_on_user_error(command: str):
    """Turn the errors a user's recipe or options cause into `command: error: ...` and exit status 2 (with
    `SYNIB_HF_TRACEBACK=1` in the environment, the full traceback instead)."""
    try:
        yield
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        if os.environ.get("SYNIB_HF_TRACEBACK"):
            raise
        print(f"{command}: error: {error} (SYNIB_HF_TRACEBACK=1 shows where)", file=sys.stderr)
        raise SystemExit(2) from None
