"""`synib-hf demo`, the main job: plain training vs SynIB on the built-in Gaussian-XOR synergy data set, side by side.

Trains the same MLP fusion model twice with `SynIBTrainer` (λ = 0 is plain `Trainer` training, step for step, then
λ > 0), prints overall, synergy-slice and masked-modality accuracies, and saves the SynIB checkpoint with its card.
The default is the paper's setting: the authors' XOR network on red .8 / syn .2, where plain training stays at chance
on the synergy slice.

    synib-hf demo --output_dir runs/synergy-demo
"""

import argparse
import json
import os
import tempfile


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synib-hf demo", description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="runs/synergy-demo", help="where the SynIB checkpoint and card go")
    parser.add_argument("--mixture", default="0,0,0.8,0.2", help="p_u1,p_u2,p_red,p_syn of the Gaussian-XOR data")
    parser.add_argument("--model", default="authors", choices=["authors", "layernorm"],
                        help="the authors' XOR network (MLPFusionConfig.authors_xor) or MLPFusionConfig's default")
    parser.add_argument("--synib_weight", type=float, default=10.0, help="λ of the SynIB run")
    parser.add_argument("--mask_type", default="random", choices=["full", "random", "learned", "oracle"])
    parser.add_argument("--mask_ratio", type=float, default=0.3)
    parser.add_argument("--mask_fill", default="shuffle", choices=["shuffle", "ema_noise", "zero"],
                        help="shuffle keeps masked features in distribution (the benchmark's choice)")
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true",
                        help="print every epoch's training and validation metrics instead of a progress bar")
    return parser


def run_bar(description: str):
    """A training progress bar named for the run, printing no metric dicts (the table says what matters)."""
    from tqdm.auto import tqdm
    from transformers import ProgressCallback

    class RunBar(ProgressCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.training_bar = tqdm(total=state.max_steps, desc=description, dynamic_ncols=True)
            self.current_step = 0

        def on_prediction_step(self, *args, **kwargs):  # no bar for the evaluation passes
            return

        def on_log(self, *args, **kwargs):  # no metric dicts
            return

    return RunBar()


def demo(argv=None) -> dict:
    """Train plain and SynIB, print the table, save the SynIB checkpoint; returns `{"plain": …, "synib": …}`."""
    args = make_parser().parse_args(argv)
    import numpy as np
    from transformers import ProgressCallback, set_seed
    from transformers.utils import logging

    from synib_hf import MLPFusionConfig, MLPFusionForClassification, SynIBConfig, SynIBTrainer, predicted_classes
    from synib_hf.data.xor import GaussianXOR

    logging.set_verbosity_error()
    logging.disable_progress_bar()  # the model-shard writer's bar
    mixture = tuple(float(p) for p in args.mixture.split(","))
    generator = GaussianXOR(mixture=mixture, seed=args.seed)
    data = generator.datasets()
    synergy = np.asarray(data["test"]["source"]) == 3
    columns = {name: split.remove_columns("source") for name, split in data.items()}

    def accuracy(prediction):
        correct = predicted_classes(prediction.predictions) == prediction.label_ids
        return {"accuracy": float(correct.mean())}

    results = {}
    # the runs save nothing while training: their Trainer's output folder is a temporary one, so no empty plain/ and
    # synib/ folders are left beside the checkpoint
    scratch = tempfile.TemporaryDirectory(prefix="synib-demo-")
    for name, weight in (("plain", 0.0), ("synib", args.synib_weight)):
        set_seed(args.seed)  # both runs start from the same weights
        dims = {"x1": 32, "x2": 32}
        model_config = (MLPFusionConfig.authors_xor(dims) if args.model == "authors"
                        else MLPFusionConfig(modality_dims=dims, hidden_size=256))
        model = MLPFusionForClassification(model_config)
        config = SynIBConfig(
            output_dir=os.path.join(scratch.name, name),
            synib_weight=weight,
            mask_type=args.mask_type,
            mask_ratio=args.mask_ratio,
            mask_fill=args.mask_fill,
            oracle_coordinates=generator.synergy_coordinates if args.mask_type == "oracle" else None,
            learning_rate=3e-4,
            weight_decay=1e-5,
            num_train_epochs=args.epochs,
            per_device_train_batch_size=64,
            per_device_eval_batch_size=1000,
            eval_strategy="epoch" if args.verbose else "no",
            eval_masked_views=True,  # both runs report accuracy with each modality masked
            save_strategy="no",
            logging_strategy="epoch" if args.verbose else "no",
            report_to="none",
            disable_tqdm=args.verbose,
            dataloader_pin_memory=False,
            seed=args.seed,
        )
        trainer = SynIBTrainer(
            model=model, args=config, train_dataset=columns["train"], eval_dataset=columns["validation"],
            compute_metrics=accuracy,
        )
        if not args.verbose:
            trainer.remove_callback(ProgressCallback)
            trainer.add_callback(run_bar(f"{name} (λ={weight:g})"))
        trainer.train()
        test = trainer.predict(columns["test"])
        correct = predicted_classes(test.predictions) == test.label_ids
        results[name] = {
            "overall": float(correct.mean()),
            "synergy slice": float(correct[synergy].mean()),
            "x1 masked": test.metrics["test_synib/masked_accuracy_x1"],
            "x2 masked": test.metrics["test_synib/masked_accuracy_x2"],
            "masked confidence": (test.metrics["test_synib/masked_max_prob_x1"]
                                  + test.metrics["test_synib/masked_max_prob_x2"]) / 2,
        }
        if name == "synib":
            trainer.save_model(args.output_dir)
            test_metrics = {k.replace("test_", "eval_", 1): v for k, v in test.metrics.items()}
            trainer.create_model_card(
                dataset_name=f"Gaussian-XOR {args.mixture} (test split)",
                output_dir=args.output_dir,
                eval_metrics={**test_metrics, "eval_accuracy": results[name]["overall"],
                              "eval_synergy_accuracy": results[name]["synergy slice"]},
            )

    scratch.cleanup()
    header = f"{'test metric':<20}{'plain':>10}{'SynIB':>10}"
    lines = [header, "-" * len(header)]
    for metric in results["plain"]:
        lines.append(f"{metric:<20}{results['plain'][metric]:>10.3f}{results['synib'][metric]:>10.3f}")
    print(f"Gaussian-XOR mixture (p_u1, p_u2, p_red, p_syn) = {mixture}, model {args.model}; SynIB: "
          f"λ={args.synib_weight}, mask={args.mask_type}, fill={args.mask_fill}")
    print("\n".join(lines))
    with open(os.path.join(args.output_dir, "demo_results.json"), "w") as f:
        json.dump(results, f, indent=2)
    folder = os.path.abspath(args.output_dir)
    print(f"Outputs:\n  SynIB checkpoint  {folder}\n  model card        {os.path.join(folder, 'README.md')}\n"
          f"  results           {os.path.join(folder, 'demo_results.json')}")
    return results


def main(argv=None) -> int:
    demo(argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
