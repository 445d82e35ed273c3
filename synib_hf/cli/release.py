"""`synib-hf release`: train, evaluate and release the reference SynIB checkpoints as Hub-ready folders, and push them.

    synib-hf release --organization synib-hf --endpoint https://huggingface.co
    synib-hf release --no-push --cards_dir model_cards/released     # build and render only

Models: `xor-synib` (Gaussian-XOR red .8 / syn .2, the authors' XOR network: the paper's setting),
`irony-digits-synib` (scikit-learn digits with the irony class),
`tiny-clip-deberta-synib` (the tiny CLIP-vision + DeBERTa-v2 LoRA demo). Each folder holds weights, config, processor
(where there is one) and a card with the metrics measured here.
"""

import argparse
import os


MODELS = ("xor-synib", "irony-digits-synib", "tiny-clip-deberta-synib")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synib-hf release", description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="runs/release")
    parser.add_argument("--organization", default="synib-hf")
    parser.add_argument("--endpoint", default=None, help="Hub-compatible endpoint (default: HF_ENDPOINT or the Hub)")
    parser.add_argument("--no-push", action="store_true", help="build the folders only")
    parser.add_argument("--cards_dir", default=None, help="also write each rendered card here as <name>.md")
    parser.add_argument("--quick", action="store_true", help="few epochs (smoke tests)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    return parser


def _vector_release(name, splits, num_labels, epochs, output_dir, dataset_name, synib=None, model_options=None,
                    learning_rate=1e-3):
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
    trainer.compute_metrics = synergy_compute_metrics(unimodal)
    metrics = trainer.evaluate(data["test"])
    trainer.save_model(folder)
    trainer.create_model_card(dataset_name=dataset_name, output_dir=folder, eval_metrics=metrics,
                              tags=["synergy", "tabular"])
    return folder, {k: v for k, v in metrics.items() if isinstance(v, float) and not np.isnan(v)}


def build(name, output_dir, quick):
    if name == "xor-synib":
        from synib_hf.data.xor import GaussianXOR
        from synib_hf.models.mlp_fusion import AUTHORS_XOR_MODEL

        splits = GaussianXOR(mixture=(0.0, 0.0, 0.8, 0.2), seed=0).splits()
        synib = {"synib_weight": 10.0, "mask_type": "random", "mask_ratio": 0.3, "mask_fill": "shuffle"}
        return _vector_release(name, splits, AUTHORS_XOR_MODEL["num_labels"], 2 if quick else 30, output_dir,
                               "Gaussian-XOR red .8 syn .2 (test split)", synib=synib, model_options=AUTHORS_XOR_MODEL,
                               learning_rate=3e-4)
    if name == "irony-digits-synib":
        from synib_hf.data.irony import irony_splits

        splits = irony_splits("digits", rate=0.3, seed=0)
        return _vector_release(name, splits, 11, 3 if quick else 40, output_dir,
                               "scikit-learn digits, top/bottom halves, irony rate 0.3 (test split)")
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
            render_card_for_repo(folder, repo_id).save(os.path.join(args.cards_dir, f"{name}.md"))
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
