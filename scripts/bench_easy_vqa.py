"""easy-VQA with real pretrained weights: the pretrained all-MiniLM-L6-v2 text tower fine-tuned with LoRA and a small
ResNet trained from scratch (the `easy_vqa_minilm_lora` recipe), at several training synergy rates (the share of
yes/no questions in training); CE-only, modality dropout, SynIB random (both fills) and learned; λ chosen on
validation accuracy at the first seed of each rate and kept for the others (a full grid per seed does not fit the
40 CPU-minute budget); several seeds.

    python scripts/bench_easy_vqa.py --output_dir docs/benchmarks/easy_vqa       # the full run (~38 CPU-minutes)
    python scripts/bench_easy_vqa.py --quick --output_dir runs/easy-vqa-quick     # 1.6 CPU-minutes
    python scripts/bench_easy_vqa.py --render a/results.json b/results.json --output_dir out   # merge, re-draw

Reported per run (test split, natural yes/no share): overall accuracy, accuracy per question type, the yes/no slice
(the ground-truth synergy slice: neither the image nor the question alone answers it), the synergy subset (test
questions both unimodal predictors get wrong) beside its chance reference, and accuracy with each modality replaced
by another test example's (the whole image, or the whole question). Needs the `vqa` extra.
"""

import argparse
import json
import os
import sys
import tempfile
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench_common, beside this script

import bench_common  # noqa: E402


RECIPE = "easy_vqa_minilm_lora"
NATURAL = 1.0  # --rates value that keeps the natural yes/no share (about 74 %)
# name → (a trainer exported by synib_hf, its arguments, the argument searched on validation or None): SynIB's
# methods with each fill, and the balancing baselines of the shared method table (bench_common) with their grids.
METHODS = {
    "ce": ("SynIBTrainer", {"synib_weight": 0.0}, None),
    "dropout": ("ModalityDropoutTrainer", {"synib_weight": 1.0, "mask_type": "random", "mask_ratio": 0.3,
                                           "mask_fill": "shuffle"}, None),
    "synib_random_ema_noise": ("SynIBTrainer", {"mask_type": "random", "mask_ratio": 0.3, "mask_fill": "ema_noise"},
                               "synib_weight"),
    "synib_random_shuffle": ("SynIBTrainer", {"mask_type": "random", "mask_ratio": 0.3, "mask_fill": "shuffle"},
                             "synib_weight"),
    "synib_learned": ("SynIBTrainer", {"mask_type": "learned", "mask_fill": "shuffle"}, "synib_weight"),
    **{name: bench_common.METHODS[name] for name in ("ensemble", "multiloss", "ogm_ge", "mmpareto", "mlb")},
}
ISSUE_14_METHODS = ["ce", "dropout", "synib_random_ema_noise", "synib_random_shuffle", "synib_learned"]
QUICK = dict(rates=[0.2], seeds=[0], lambdas=[1.0], epochs=3, train_questions=800, validation_questions=150,
             test_questions=600, swapped_questions=300, learning_rate=3e-3)
FULL = dict(rates=[0.05, 0.2, NATURAL], seeds=[0, 1, 2], lambdas=[0.3, 3.0], epochs=4, train_questions=1600,
            validation_questions=300, test_questions=2500, swapped_questions=1000, learning_rate=3e-3)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="docs/benchmarks/easy_vqa")
    parser.add_argument("--quick", action="store_true", help=f"one rate, one seed, one λ, small splits: {QUICK}")
    parser.add_argument("--chosen_from", default=None, metavar="RESULTS_JSON",
                        help="take each (rate, method)'s λ/α from an earlier run's results (its first seed's choice) "
                             "instead of searching again: adds seeds to a run under the same selection protocol")
    parser.add_argument("--render", nargs="+", default=None, metavar="RESULTS_JSON",
                        help="do not train: merge these results.json files and write the table and plot")
    parser.add_argument("--rates", nargs="+", type=float, default=None,
                        help=f"training yes/no shares; {NATURAL} keeps the natural share (full run: {FULL['rates']})")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=ISSUE_14_METHODS,
                        help="default: CE, dropout and the SynIB methods; add ensemble multiloss ogm_ge mmpareto mlb "
                        "for the balancing baselines")
    for name in ("seeds", "lambdas"):
        parser.add_argument(f"--{name}", nargs="+", type=int if name == "seeds" else float, default=None,
                            help=f"full run: {FULL[name]}")
    for name in ("epochs", "train_questions", "validation_questions", "test_questions", "swapped_questions"):
        parser.add_argument(f"--{name}", type=int, default=None, help=f"full run: {FULL[name]}")
    parser.add_argument("--learning_rate", type=float, default=None, help=f"full run: {FULL['learning_rate']}")
    return parser


class CachedSplit:
    """A split as model inputs, made once: decoded, processed images (one tensor per image, shared by its questions)
    and tokenised questions (107 distinct strings, padded to one length), so training reads tensors only."""

    def __init__(self, split, images: dict, tokens: dict):
        import torch

        keys = [row["path"] for row in split.cast_column("image", _raw_image())["image"]]
        self.pixel_values = torch.stack([images[key] for key in dict.fromkeys(keys)])  # (I, 3, 64, 64)
        position = {key: i for i, key in enumerate(dict.fromkeys(keys))}
        self.image_index = torch.tensor([position[key] for key in keys])
        self.questions = list(split["question"])
        self.input_ids = torch.stack([tokens[q]["input_ids"] for q in self.questions])  # (N, T)
        self.attention_mask = torch.stack([tokens[q]["attention_mask"] for q in self.questions])
        self.labels = torch.tensor(split["label"])
        self.question_type = torch.tensor(split["question_type"])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"pixel_values": self.pixel_values[self.image_index[i]], "input_ids": self.input_ids[i],
                "attention_mask": self.attention_mask[i], "labels": self.labels[i]}

    def swapped(self, modality: str, count: int, seed: int = 0) -> "CachedSplit":
        """The first `count` rows of this split with one modality taken from another of them (a fixed permutation):
        the whole image, or the whole question, replaced by one that belongs to a different row."""
        import copy

        import torch

        count = min(count, len(self))
        permutation = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
        swapped = copy.copy(self)
        swapped.labels, swapped.question_type = self.labels[:count], self.question_type[:count]
        swapped.questions, swapped.image_index = self.questions[:count], self.image_index[:count]
        swapped.input_ids, swapped.attention_mask = self.input_ids[:count], self.attention_mask[:count]
        if modality == "image":
            swapped.image_index = swapped.image_index[permutation]
        else:
            swapped.input_ids = swapped.input_ids[permutation]
            swapped.attention_mask = swapped.attention_mask[permutation]
        return swapped


def _raw_image():
    from datasets import Image

    return Image(decode=False)


def tokenise_questions(tokenizer) -> dict:
    """Every easy-VQA question (107 distinct strings over both splits) tokenised once, padded to the longest."""
    import easy_vqa

    questions = sorted(set(easy_vqa.get_train_questions()[0]) | set(easy_vqa.get_test_questions()[0]))
    encoded = tokenizer(questions, padding=True, return_tensors="pt")
    return {q: {"input_ids": encoded["input_ids"][i], "attention_mask": encoded["attention_mask"][i]}
            for i, q in enumerate(questions)}


def cache_inputs(data, image_processor, images: dict, tokens: dict) -> dict:
    """`{split: CachedSplit}`; `images` (image path → pixel tensor) fills up across calls: each image is decoded and
    processed once per benchmark."""
    for split in data.values():
        raw = split.cast_column("image", _raw_image())["image"]
        needed = {row["path"]: i for i, row in enumerate(raw) if row["path"] not in images}
        if needed:
            decoded = [split[i]["image"].convert("RGB") for i in needed.values()]
            images.update(zip(needed, image_processor(images=decoded, return_tensors="pt")["pixel_values"]))
    return {name: CachedSplit(split, images, tokens) for name, split in data.items()}


def unimodal_predictions(cached: dict, text_features: dict, seed: int) -> dict:
    """Test predictions of one scikit-learn MLP per modality, trained on the training split alone: the image
    (pixels averaged over 4×4 blocks, 768 values) and the question (the pretrained MiniLM's frozen mean-pooled
    embedding)."""
    import torch

    from synib_hf.synergy import train_unimodal_predictors

    def columns(split):
        pixels = torch.nn.functional.avg_pool2d(split.pixel_values, 4)[split.image_index].flatten(1)
        return {"image": pixels.numpy(), "text": torch.stack([text_features[q] for q in split.questions]).numpy()}

    predictors = train_unimodal_predictors(columns(cached["train"]), cached["train"].labels.numpy(), seed)
    test = columns(cached["test"])
    return {m: predictor.predict(test[m]) for m, predictor in predictors.items()}


def frozen_text_features(text_path: str, tokens: dict) -> dict:
    """question → the pretrained MiniLM's attention-masked mean of its last hidden states (as sentence-transformers
    pools it)."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(text_path).eval()
    questions = list(tokens)
    ids = torch.stack([tokens[q]["input_ids"] for q in questions])
    mask = torch.stack([tokens[q]["attention_mask"] for q in questions])
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state  # (Q, T, 384)
    pooled = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
    return dict(zip(questions, pooled))


def scores(predicted, split, unimodal=None) -> dict:
    """Accuracy overall, per question type, on the yes/no questions with each question's prior taken out
    (`yes_no_balanced_acc`: the ground-truth synergy slice, at most 0.5 for anything blind to the image) and, with
    unimodal test predictions, on the synergy subset with its size, its chance reference and its yes/no share."""
    import numpy as np

    from synib_hf.data.easy_vqa import QUESTION_TYPES, answers, question_type, yes_no_balanced_accuracy

    labels, types = split.labels.numpy(), split.question_type.numpy()
    correct = np.asarray(predicted) == labels
    result = {"acc": float(correct.mean()),
              "yes_no_balanced_acc": yes_no_balanced_accuracy(predicted, labels, split.questions)}
    for index, name in enumerate(QUESTION_TYPES):
        result[f"{name.replace('/', '_')}_acc"] = float(correct[types == index].mean())
    if unimodal is not None:
        subset = np.logical_and.reduce([u != labels for u in unimodal.values()])
        # chance: a guess among the answers of the question's type (which the question's wording gives away)
        per_type = {t: sum(question_type(a) == t for a in answers()) for t in QUESTION_TYPES}
        chance = np.array([1 / per_type[QUESTION_TYPES[t]] for t in types])
        result.update(synergy_acc=float(correct[subset].mean()) if subset.any() else float("nan"),
                      synergy_size=int(subset.sum()), synergy_chance=float(chance[subset].mean()),
                      synergy_yes_no_share=float((types[subset] == 0).mean()))
    return result


def train_one(method, weight, seed, settings, cached, model_args, training_args, unimodal) -> dict:
    """Train one method (at λ = `weight` where it is searched) from the recipe's model and score it."""
    import numpy as np
    from transformers import PrinterCallback, default_data_collator, set_seed

    import synib_hf
    from synib_hf import lora_config_for, predicted_classes
    from synib_hf.cli.train import build_pretrained

    trainer_name, overrides, searched = METHODS[method]
    overrides = {**overrides, **({searched: weight} if searched is not None else {})}
    trainer_class = getattr(synib_hf, trainer_name)
    set_seed(seed)  # the initial weights of the vision tower and the heads
    model, _ = build_pretrained(model_args, num_labels=13)
    peft_config = lora_config_for(model, r=model_args.lora_r, lora_alpha=model_args.lora_alpha,
                                  lora_dropout=model_args.lora_dropout, towers=("text",), trained_in_full=("vision",),
                                  layers=model_args.lora_layers)
    with tempfile.TemporaryDirectory(prefix="bench-easy-vqa-") as scratch:
        args = trainer_class.args_class(
            output_dir=scratch, learning_rate=settings["learning_rate"], weight_decay=training_args.weight_decay,
            num_train_epochs=settings["epochs"], per_device_train_batch_size=training_args.per_device_train_batch_size,
            per_device_eval_batch_size=512, seed=seed, report_to="none", save_strategy="no", eval_strategy="no",
            logging_strategy="no", disable_tqdm=True, dataloader_pin_memory=False, use_cpu=True, **overrides,
        )
        trainer = trainer_class(model=model, args=args, train_dataset=cached["train"],
                                data_collator=default_data_collator, peft_config=peft_config)
        trainer.remove_callback(PrinterCallback)
        trainer.train()

        def predict(split):
            return predicted_classes(np.asarray(trainer.predict(split).predictions))

        result = {"val_acc": scores(predict(cached["validation"]), cached["validation"])["acc"]}
        result.update(scores(predict(cached["test"]), cached["test"], unimodal))
        for modality in ("image", "text"):
            swapped = cached["test"].swapped(modality, settings["swapped_questions"])
            result[f"acc_{modality}_swapped"] = scores(predict(swapped), swapped)["acc"]
    return result


def run(args) -> list:
    from transformers.utils import logging

    from synib_hf.cli.train import parse
    from synib_hf.data.easy_vqa import load_easy_vqa
    from synib_hf.extras import require
    from synib_hf.models.packaged import resolve_checkpoint

    require("easy_vqa", "bench_easy_vqa.py")
    logging.set_verbosity_error()
    settings = {key: getattr(args, key) if getattr(args, key) is not None else (QUICK if args.quick else FULL)[key]
                for key in FULL}
    with tempfile.TemporaryDirectory() as scratch:
        _, model_args, training_args = parse([RECIPE, "--output_dir", scratch])
    from transformers import AutoTokenizer, ViTImageProcessorPil

    text_path = resolve_checkpoint(model_args.text_model_name_or_path)
    tokens = tokenise_questions(AutoTokenizer.from_pretrained(text_path))
    text_features = frozen_text_features(text_path, tokens)
    image_processor = ViTImageProcessorPil(size={"height": model_args.image_size, "width": model_args.image_size})
    images, rows, chosen_lambda = {}, [], {}
    if args.chosen_from:
        earlier = json.load(open(args.chosen_from))
        for row in sorted(earlier, key=lambda r: r["seed"], reverse=True):  # the first seed's choice wins
            if METHODS[row["method"]][2] is not None:  # `lambda` holds the chosen λ, α or γ
                chosen_lambda[(row["rate"], row["method"])] = row["lambda"]
    for rate in settings["rates"]:
        for seed in settings["seeds"]:
            data = load_easy_vqa(synergy_rate=None if rate == NATURAL else rate,
                                 train_questions=settings["train_questions"],
                                 validation_questions=settings["validation_questions"],
                                 test_questions=settings["test_questions"], seed=seed)
            cached = cache_inputs(data, image_processor, images, tokens)
            unimodal = unimodal_predictions(cached, text_features, seed)
            reference = {f"unimodal_{m}": scores(p, cached["test"]) for m, p in unimodal.items()}
            for method in args.methods:
                start = time.time()
                searched = METHODS[method][2]
                grid = ([None] if searched is None else settings["lambdas"] if searched == "synib_weight"
                        else bench_common.GRIDS[searched])
                grid = [chosen_lambda[(rate, method)]] if (rate, method) in chosen_lambda else grid
                runs = {str(w): train_one(method, w, seed, settings, cached, model_args, training_args, unimodal)
                        for w in grid}
                chosen = max(runs, key=lambda w: runs[w]["val_acc"])  # ties: the first (smallest) λ
                chosen_lambda[(rate, method)] = None if chosen == "None" else float(chosen)
                row = {"rate": rate, "method": method, "seed": seed, "train_yes_no": int(
                    (cached["train"].question_type == 0).sum()), "searched": searched,
                    "lambda": float(chosen) if chosen != "None" else METHODS[method][1].get("synib_weight"),
                    **runs[chosen], **reference, "grid": runs,
                    "seconds": round(time.time() - start, 1),
                    "settings": {k: v for k, v in settings.items() if k not in ("rates", "seeds")}}
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k not in ("grid", "settings")}), flush=True)
    return rows


def _mean_std(rows, key) -> str:
    from bench_common import mean_std

    return mean_std([r[key] for r in rows])  # the sample std (ddof = 1)


def rate_name(rate) -> str:
    return "natural (≈74 %)" if rate == NATURAL else f"{rate:.0%}"


def method_table(title, rates, methods, cell, group) -> list:
    """Markdown lines of a table with a row per training rate and a column per method, `cell(rows of that cell)`."""
    lines = ["", title, "", "| training yes/no share | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    return lines + [f"| {rate_name(rate)} | " + " | ".join(cell(group[(rate, m)]) for m in methods) + " |"
                    for rate in rates]


def markdown(rows) -> str:
    import numpy as np

    rates = sorted({r["rate"] for r in rows})  # natural (1.0) last
    methods = list(dict.fromkeys(r["method"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    settings = rows[0]["settings"]
    group = {}
    for row in rows:
        group.setdefault((row["rate"], row["method"]), []).append(row)
    lines = [
        f"easy-VQA, the `{RECIPE}` recipe's model (pretrained all-MiniLM-L6-v2 + LoRA, a ResNet trained from "
        f"scratch), {settings['train_questions']} training questions, {settings['epochs']} epochs, test "
        f"{settings['test_questions']} questions at the natural yes/no share; learning rate "
        f"{settings['learning_rate']}; mean ± sample std (ddof = 1) over seeds {seeds}; SynIB's λ from "
        f"{settings['lambdas']} (the baselines' α/γ from bench_common.GRIDS) by validation accuracy at seed "
        f"{seeds[0]}, kept for the other seeds.",
    ]
    lines += method_table(
        "**Ground-truth synergy slice: yes/no questions with each question's prior taken out** (per question, the "
        "mean of the accuracy on its yes and on its no answers; anything that ignores the image scores at most 0.5)",
        rates, methods, lambda g: _mean_std(g, "yes_no_balanced_acc"), group)
    lines += method_table(
        "**Overall / all yes/no questions** (the question's wording alone answers 82.5 % of the test yes/no "
        "questions)",
        rates, methods, lambda g: f"{_mean_std(g, 'acc')} / {_mean_std(g, 'yes_no_acc')}", group)
    lines += [
        "",
        "**Synergy subset (test questions both unimodal predictors get wrong): accuracy, beside its chance reference "
        "and its size.** The subset is selected by the unimodal predictors' mistakes, so a model that copies one "
        "modality scores *below* chance there; read it beside the yes/no slice above.",
        "",
        "| training yes/no share | subset size (yes/no share) | chance | " + " | ".join(methods) + " |",
        "|---|---|---|" + "---|" * len(methods),
    ]
    for rate in rates:
        first = group[(rate, methods[0])]
        size = np.mean([r["synergy_size"] for r in first])
        share = np.mean([r["synergy_yes_no_share"] for r in first])
        chance = np.mean([r["synergy_chance"] for r in first])
        cells = [_mean_std(group[(rate, m)], "synergy_acc") for m in methods]
        lines.append(f"| {rate_name(rate)} | {size:.0f} ({share:.0%}) | {chance:.3f} | " + " | ".join(cells) + " |")
    lines += method_table(
        "**Colour / shape questions, then accuracy with the image / the question swapped for another test "
        f"question's** (on the first {settings['swapped_questions']} test questions; lower = the model uses it more)",
        rates, methods, lambda g: " / ".join(f"{np.mean([r[k] for r in g]):.3f}" for k in
                                             ("color_acc", "shape_acc", "acc_image_swapped", "acc_text_swapped")),
        group)
    lines += [
        "",
        "**Unimodal predictors** (scikit-learn MLPs; image: 4×4-averaged pixels, question: frozen MiniLM embedding), "
        "test accuracy overall / all yes/no / balanced yes/no, and the training yes/no questions each row rests on:",
        "",
        "| training yes/no share | training yes/no questions | image only | question only | λ chosen (per method) |",
        "|---|---|---|---|---|",
    ]
    for rate in rates:
        first = group[(rate, methods[0])]
        image, text = (" / ".join(f"{np.nanmean([r[f'unimodal_{m}'][k] for r in first]):.3f}"
                                  for k in ("acc", "yes_no_acc", "yes_no_balanced_acc")) for m in ("image", "text"))
        chosen = ", ".join(f"{m}: {sorted(r['lambda'] for r in group[(rate, m)])}" for m in methods
                           if len(group[(rate, m)][0]["grid"]) > 1)
        lines.append(f"| {rate_name(rate)} | {np.mean([r['train_yes_no'] for r in first]):.0f} | {image} | {text} | "
                     f"{chosen or '-'} |")
    return "\n".join(lines) + "\n"


def plot(rows, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from bench_common import sample_std

    rates = sorted({r["rate"] for r in rows})  # natural (1.0) last
    methods = list(dict.fromkeys(r["method"] for r in rows))
    figure, axes = plt.subplots(1, 3, figsize=(16, 4))
    for axis, key, title in ((axes[0], "yes_no_balanced_acc", "balanced yes/no (ground-truth synergy)"),
                             (axes[1], "yes_no_acc", "all yes/no"), (axes[2], "acc", "overall")):
        for i, method in enumerate(methods):
            values = [[r[key] for r in rows if (r["rate"], r["method"]) == (rate, method)] for rate in rates]
            x = np.arange(len(rates)) + (i - len(methods) / 2) * 0.06
            axis.errorbar(x, [np.mean(v) for v in values], yerr=[sample_std(v) for v in values], marker="o",
                          capsize=3, label=method)
        axis.set_xticks(np.arange(len(rates)), [rate_name(r) for r in rates])
        axis.set_xlabel("share of yes/no questions in training")
        axis.set_ylabel("test accuracy")
        axis.set_title(f"easy-VQA, MiniLM + LoRA: {title}", fontsize=9)
    axes[0].axhline(0.5, color="gray", linestyle=":", linewidth=1)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv=None) -> list:
    args = make_parser().parse_args(argv)
    from bench_common import write_outputs

    if args.render:
        # one row per (rate, method, seed): a cell saved twice must agree, as in the other benchmarks
        rows = bench_common.merge((row for path in args.render for row in json.load(open(path))),
                                  lambda row: (row["rate"], row["method"], row["seed"]),
                                  compared=("acc", "yes_no_balanced_acc"))
    else:
        start = time.time()
        rows = run(args)
        print(f"benchmark time: {time.time() - start:.0f} s", flush=True)
    print(write_outputs(rows, args.output_dir, markdown, plot))
    return rows


if __name__ == "__main__":
    main()
