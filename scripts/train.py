"""Fine-tune a vision + text fusion model (CLIP + DeBERTa by default) with SynIB, from one YAML recipe.

    python scripts/train.py scripts/recipes/tiny.yaml                      # offline, under a minute on 2 CPU cores
    python scripts/train.py scripts/recipes/tiny.yaml --synib_weight 1.0   # a recipe, with overrides
    python scripts/train.py --help                                         # every option

Writes to `output_dir`: the model (LoRA merged into the weights; the adapters alone in `adapter/`), its processor
and its model card, loadable with `AutoModelForSequenceClassification.from_pretrained` after `import synib_hf`.
"""

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Optional



@dataclass
class ScriptArguments:
    data_dir: str = field(
        metadata={"help": "Hateful Memes folder: img/ plus train.jsonl, dev_seen.jsonl and test_seen.jsonl."}
    )
    make_fixture: bool = field(
        default=False,
        metadata={"help": "First write a small synthetic data set in that format into data_dir (offline runs)."},
    )
    fixture_rows: int = field(default=64, metadata={"help": "Rows per split of the synthetic data set."})
    max_length: int = field(default=64, metadata={"help": "Captions are truncated to this many tokens."})


@dataclass
class ModelArguments:
    vision_model_name_or_path: str = field(
        default="openai/clip-vit-base-patch32", metadata={"help": "Vision tower: a Hub id or a local folder."}
    )
    text_model_name_or_path: str = field(
        default="microsoft/deberta-v3-base", metadata={"help": "Text tower: a Hub id or a local folder."}
    )
    tiny_towers: bool = field(
        default=False,
        metadata={
            "help": "Build tiny random CLIP-vision and DeBERTa-v2 towers from configs and train a tiny tokenizer "
            "on the training captions, instead of loading the two checkpoints (offline smoke runs)."
        },
    )
    projection_dim: int = field(default=256, metadata={"help": "Width of each projected modality feature."})
    fusion_hidden_size: int = field(default=512, metadata={"help": "Hidden width of the fusion MLP."})
    image_size: Optional[int] = field(default=None, metadata={"help": "Resize/crop images to this size (tiny towers)."})
    use_lora: bool = field(default=False, metadata={"help": "Train LoRA adapters on the towers instead of full weights."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_towers: list[str] = field(
        default_factory=lambda: ["vision", "text"],
        metadata={"help": "Towers that get adapters.", "choices": ["vision", "text"]},
    )


def make_parser():
    from transformers import HfArgumentParser

    from synib_hf import SynIBConfig

    return HfArgumentParser((ScriptArguments, ModelArguments, SynIBConfig))


def recipe_to_argv(path: str) -> list:
    """A YAML/JSON recipe as command-line arguments, so later `--key value` arguments override it."""
    import yaml

    with open(path) as f:
        recipe = yaml.safe_load(f) if path.endswith((".yaml", ".yml")) else json.load(f)
    argv = []
    for key, value in recipe.items():
        if isinstance(value, (list, tuple)):
            argv += [f"--{key}", *map(str, value)]
        elif isinstance(value, dict):
            argv += [f"--{key}", json.dumps(value)]
        elif value is not None:
            argv += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return argv


def build_tiny(script_args, model_args, captions):
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, DebertaV2Config, DebertaV2Tokenizer

    from synib_hf import FusionConfig, FusionForSequenceClassification, FusionProcessor

    size = model_args.image_size or 32
    tokenizer = DebertaV2Tokenizer().train_new_from_iterator(captions, vocab_size=256)
    processor = FusionProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size}),
        tokenizer=tokenizer,
    )
    config = FusionConfig(
        vision_config=CLIPVisionConfig(image_size=size, patch_size=4, hidden_size=32, intermediate_size=37,
                                       num_hidden_layers=2, num_attention_heads=4),
        text_config=DebertaV2Config(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=4, intermediate_size=37,
                                    max_position_embeddings=script_args.max_length, pad_token_id=tokenizer.pad_token_id),
        projection_dim=model_args.projection_dim,
        fusion_hidden_size=model_args.fusion_hidden_size,
        text_pooling="mean",  # random tiny towers: a mean over tokens keeps every word's signal
    )
    return FusionForSequenceClassification(config), processor


def build_pretrained(model_args):
    from transformers import AutoImageProcessor, AutoTokenizer

    from synib_hf import FusionForSequenceClassification, FusionProcessor

    model = FusionForSequenceClassification.from_vision_text_pretrained(
        model_args.vision_model_name_or_path,
        model_args.text_model_name_or_path,
        projection_dim=model_args.projection_dim,
        fusion_hidden_size=model_args.fusion_hidden_size,
    )
    processor = FusionProcessor(
        image_processor=AutoImageProcessor.from_pretrained(model_args.vision_model_name_or_path),
        tokenizer=AutoTokenizer.from_pretrained(model_args.text_model_name_or_path),
    )
    return model, processor


def main(argv=None):
    """Train, evaluate on the test split, save; returns `(test metrics, the trained model as saved)`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith((".yaml", ".yml", ".json")):
        argv = recipe_to_argv(argv[0]) + argv[1:]
    script_args, model_args, training_args = make_parser().parse_args_into_dataclasses(argv)
    from transformers import set_seed

    from synib_hf import ImageTextCollator, SynIBTrainer, lora_config_for, predicted_classes
    from synib_hf.data.hateful_memes import load_hateful_memes, write_memes_fixture

    if training_args.remove_unused_columns:
        raise ValueError(
            "The image/text collator reads the raw 'image' and 'text' columns, which remove_unused_columns would drop: "
            "set remove_unused_columns: false in the recipe."
        )
    if script_args.make_fixture:
        write_memes_fixture(script_args.data_dir, rows_per_split=script_args.fixture_rows,
                            image_size=model_args.image_size or 32, seed=training_args.seed)
    data = load_hateful_memes(script_args.data_dir)
    set_seed(training_args.seed)  # the new heads' (and tiny towers') initial weights; the Trainer seeds only later
    if model_args.tiny_towers:
        model, processor = build_tiny(script_args, model_args, data["train"]["text"])
    else:
        model, processor = build_pretrained(model_args)
    peft_config = None
    if model_args.use_lora:
        peft_config = lora_config_for(model, r=model_args.lora_r, lora_alpha=model_args.lora_alpha,
                                      lora_dropout=model_args.lora_dropout, towers=model_args.lora_towers)

    def accuracy(prediction):
        return {"accuracy": float((predicted_classes(prediction.predictions) == prediction.label_ids).mean())}

    trainer = SynIBTrainer(
        model=model,
        args=training_args,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=processor,
        data_collator=ImageTextCollator(processor, max_length=script_args.max_length),
        compute_metrics=accuracy,
        peft_config=peft_config,
    )
    trainer.train()
    metrics = trainer.evaluate(data["test"], metric_key_prefix="eval")
    output_dir = training_args.output_dir
    if model_args.use_lora:
        trainer.model.save_pretrained(os.path.join(output_dir, "adapter"))
        final_model = trainer.model.merge_and_unload()
        final_model.save_pretrained(output_dir)
        processor.save_pretrained(output_dir)
    else:
        trainer.save_model(output_dir)
        final_model = trainer.model
    dataset_name = "Hateful Memes format (synthetic fixture)" if script_args.make_fixture else "Hateful Memes"
    trainer.create_model_card(dataset_name=f"{dataset_name}, test_seen", output_dir=output_dir, eval_metrics=metrics)
    with open(os.path.join(output_dir, "test_results.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    print("test metrics:", json.dumps({k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}))
    return metrics, final_model


if __name__ == "__main__":
    main()
