"""`synib-hf release`: train, evaluate and release the reference SynIB checkpoints as Hub-ready folders, and push them.

    synib-hf release --organization synib-hf --endpoint https://huggingface.co
    synib-hf release --no-push --cards_dir model_cards/released     # build and render only

Models: `xor-synib` (Gaussian-XOR red .8 / syn .2, the authors' XOR network: the paper's setting),
`irony-digits-synib` (scikit-learn digits with the irony class),
`tiny-clip-deberta-synib` (the tiny CLIP-vision + DeBERTa-v2 LoRA demo),
`minilm-easyvqa-synib` (easy-VQA: the pretrained all-MiniLM-L6-v2 fine-tuned with LoRA beside a small ResNet trained
from scratch; the `easy_vqa_minilm_lora` recipe, needs the `vqa` extra). Each folder holds weights, config, processor
(where there is one) and a card with the metrics measured here; a LoRA model also its adapters (`adapter/`).
"""

import argparse
import json
import os
import shutil


MODELS = ("xor-synib", "irony-digits-synib", "tiny-clip-deberta-synib", "minilm-easyvqa-synib")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "config.json")
PROCESSOR_FILES = ("processor_config.json", "tokenizer_config.json")
SHIPPED_ADAPTERS = ("minilm-easyvqa-synib",)  # with --cards_dir, also written as a loadable <name>-adapter/ folder
SUMMARY = (
    "Answers easy-VQA questions (64×64 images of one coloured shape; 13 answers) from the image and the question. "
    "Text tower: the pretrained all-MiniLM-L6-v2, fine-tuned with LoRA (r 8) on query/key/value of its top two "
    "layers; vision tower: a small ResNet trained from scratch; late fusion. Trained with SynIB (random feature "
    "masks, 30 %, shuffle fill, λ 1, not tuned) on 4,000 training questions of which 10 % are yes/no (the "
    "rare-synergy regime of docs/benchmarks/easy_vqa); evaluated on the whole test split at its natural share. Read "
    "the ground-truth row: 0.50 there means the model answers yes/no questions from their wording alone and has not "
    "learned to compare question and image (the wording alone answers 82.5 % of them). A reference model for "
    "starting points and tests, not a general VQA model."
)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synib-hf release", description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="runs/release")
    parser.add_argument("--organization", default="synib-hf")
    parser.add_argument("--endpoint", default=None, help="Hub-compatible endpoint (default: HF_ENDPOINT or the Hub)")
    parser.add_argument("--no-push", action="store_true", help="build the folders only")
    parser.add_argument("--cards_dir", default=None,
                        help="also write each rendered card here as <name>.md (and minilm-easyvqa-synib's LoRA "
                        "adapters as a folder that loads by itself, <name>-adapter/)")
    parser.add_argument("--quick", action="store_true", help="few epochs (smoke tests)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    return parser


def _vector_release(name, splits, num_labels, epochs, output_dir, dataset_name, synib=None, model_options=None,
                    learning_rate=1e-3, ground_truth=None):
    """Train and evaluate a vector model; the evaluation reports the synergy subset beside its chance reference (1/C)
    and, with `ground_truth` (`{name: boolean mask over the test split}`), the accuracy on each ground-truth synergy
    slice."""
    import numpy as np

    from synib_hf.data.irony import as_datasets

    from .vector import train_vector_model
    from synib_hf.synergy import synergy_compute_metrics, train_unimodal_predictors

    train, test = splits["train"], splits["test"]
    predictors = train_unimodal_predictors({"x1": train["x1"], "x2": train["x2"]}, train["labels"])
    unimodal = {m: p.predict(test[m]) for m, p in predictors.items()}
    data = as_datasets(splits)
    dims = {"x1": train["x1"].shape[1], "x2": train["x2"].shape[1]}
    folder = os.path.join(output_dir, name)
    synib = synib or {"synib_weight": 0.1, "mask_type": "random", "mask_ratio": 0.3}
    trainer = train_vector_model("SynIBTrainer", synib, dims, num_labels, data["train"], seed=0, epochs=epochs,
                                 learning_rate=learning_rate, hidden_size=256, output_dir=folder,
                                 model_options=model_options)
    classes = max(2, num_labels)  # a one-logit head decides between two classes
    trainer.compute_metrics = synergy_compute_metrics(unimodal, num_classes=classes, ground_truth=ground_truth)
    metrics = trainer.evaluate(data["test"])
    trainer.save_model(folder)
    trainer.create_model_card(dataset_name=dataset_name, output_dir=folder, eval_metrics=metrics,
                              tags=["synergy", "tabular"])
    return folder, {k: v for k, v in metrics.items() if isinstance(v, float) and not np.isnan(v)}


def _easy_vqa_release(name, output_dir, quick):
    """Train the easy-VQA recipe, then evaluate the weights *as released* (re-loaded from the folder) on the whole
    test split and render the card from that evaluation, so its numbers are the released model's."""
    from transformers import AutoModelForSequenceClassification, AutoProcessor

    from synib_hf.data.easy_vqa import evaluate_on_easy_vqa, load_easy_vqa
    from synib_hf.model_card import CARD_INPUTS_NAME, build_model_card, save_card_inputs

    from .train import train

    folder = os.path.join(output_dir, name)
    test_questions = 64 if quick else None
    extra = ["--train_questions", "64", "--validation_questions", "16", "--max_steps", "4"] if quick else []
    train(["easy_vqa_minilm_lora", "--output_dir", folder, "--disable_tqdm", "true", *extra,
           *(["--test_questions", str(test_questions)] if quick else [])])
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    test = load_easy_vqa(test_questions=test_questions)["test"]
    metrics = {f"eval_{k}": v for k, v in evaluate_on_easy_vqa(model, AutoProcessor.from_pretrained(folder),
                                                                 test).items()}
    with open(os.path.join(folder, CARD_INPUTS_NAME)) as f:
        card_inputs = {**json.load(f), "eval_metrics": metrics, "tags": ["synergy", "vqa", "lora"],
                       "dataset_name": f"easy-VQA test split ({len(test)} questions)",
                       "summary": SUMMARY}
    build_model_card(**card_inputs).save(os.path.join(folder, "README.md"))
    save_card_inputs(card_inputs, folder)
    return folder, metrics


def copy_adapter_folder(folder: str, destination: str) -> None:
    """`folder/adapter` as a folder that loads by itself with `from_pretrained(destination)`, offline when its text
    tower ships in a package: the adapters, the base's `config.json` (its label names, the checkpoint its text tower
    comes from) and the processor, whose tokenizer is the text checkpoint's `vocab.txt` where it has one (a third of
    `tokenizer.json`'s size)."""
    from synib_hf import FusionConfig
    from synib_hf.models.packaged import local_copy

    os.makedirs(destination, exist_ok=True)
    for filename in (*ADAPTER_FILES, "model.safetensors"):  # the base's weights, where no checkpoint holds them
        if os.path.isfile(os.path.join(folder, "adapter", filename)):
            shutil.copy(os.path.join(folder, "adapter", filename), os.path.join(destination, filename))
    for filename in PROCESSOR_FILES:
        shutil.copy(os.path.join(folder, filename), os.path.join(destination, filename))
    text_checkpoint = local_copy(FusionConfig.from_pretrained(folder).text_name_or_path or "")
    vocabulary = os.path.join(text_checkpoint, "vocab.txt")
    if os.path.isfile(vocabulary):
        shutil.copy(vocabulary, os.path.join(destination, "vocab.txt"))
    else:
        shutil.copy(os.path.join(folder, "tokenizer.json"), os.path.join(destination, "tokenizer.json"))


def build(name, output_dir, quick):
    if name == "xor-synib":
        from synib_hf.data.xor import SOURCES, GaussianXOR
        from synib_hf.models.mlp_fusion import AUTHORS_XOR_MODEL

        splits = GaussianXOR(mixture=(0.0, 0.0, 0.8, 0.2), seed=0).splits()
        synib = {"synib_weight": 10.0, "mask_type": "random", "mask_ratio": 0.3, "mask_fill": "shuffle"}
        synergy_source = splits["test"]["source"] == SOURCES.index("synergy")  # the only active source is synergy
        return _vector_release(name, splits, AUTHORS_XOR_MODEL["num_labels"], 2 if quick else 30, output_dir,
                               "Gaussian-XOR red .8 syn .2 (test split)", synib=synib, model_options=AUTHORS_XOR_MODEL,
                               learning_rate=3e-4, ground_truth={"synergy_source": synergy_source})
    if name == "irony-digits-synib":
        from synib_hf.data.irony import irony_splits

        splits = irony_splits("digits", rate=0.3, seed=0)
        return _vector_release(name, splits, 11, 3 if quick else 40, output_dir,
                               "scikit-learn digits, top/bottom halves, irony rate 0.3 (test split)",
                               ground_truth={"irony_class": splits["test"]["is_irony"]})
    if name == "minilm-easyvqa-synib":
        return _easy_vqa_release(name, output_dir, quick)
    from .train import train

    folder = os.path.join(output_dir, name)
    extra = ["--num_train_epochs", "2"] if quick else []
    metrics, _ = train(["tiny", "--output_dir", folder, "--data_dir", os.path.join(output_dir, "tiny-data"),
                        "--disable_tqdm", "true", *extra])
    return folder, {f"eval_{key.removeprefix('test_')}": value for key, value in metrics.items()}


def release(argv=None) -> dict:
    """Build (and push) the reference models; returns `{repo_id: {"folder", "metrics"}}`."""
    args = make_parser().parse_args(argv)
    from transformers.utils import logging

    from . import push

    from synib_hf.model_card import render_card_for_repo

    logging.set_verbosity_error()
    released = {}
    for name in args.models:
        folder, metrics = build(name, args.output_dir, args.quick)
        repo_id = f"{args.organization}/{name}"
        if args.cards_dir:
            os.makedirs(args.cards_dir, exist_ok=True)
            local = folder if not os.path.isabs(folder) else name  # a card never shows an absolute path
            if name in SHIPPED_ADAPTERS:
                local = os.path.join(args.cards_dir, f"{name}-adapter")
                copy_adapter_folder(folder, local)
            card = render_card_for_repo(folder, repo_id, published=not args.no_push, local_path=local)
            card.save(os.path.join(args.cards_dir, f"{name}.md"))
        if not args.no_push:
            endpoint = ["--endpoint", args.endpoint] if args.endpoint else []
            if push.main([folder, "--repo-id", repo_id, *endpoint,
                                 "--commit-message", f"Release {name}"]) != 0:
                raise SystemExit(f"pushing {repo_id} failed; see the message above.")
        released[repo_id] = {"folder": folder, "metrics": metrics}
        print(f"{repo_id}: accuracy {metrics.get('eval_accuracy', float('nan')):.4f}", flush=True)
    return released


def main(argv=None) -> int:
    release(argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
