"""Training the MLP fusion model on vector data behind a trainer: what the release command and the vector benchmarks
(`scripts/bench_*.py`) share."""

import tempfile
from typing import Optional

def train_vector_model(trainer_name, overrides, dims, num_labels, train_dataset, *, seed, epochs, learning_rate,
                       hidden_size, output_dir: Optional[str] = None, model_options=None):
    """Train `MLPFusionForClassification` (`MLPFusionConfig(**model_options)`, which wins over the widths given) with
    `synib_hf.<trainer_name>` and its arguments class (`SynIBConfig`, or `BalancingConfig` for the balancing
    baselines) built from `overrides`; returns the trainer (quiet: no per-step printing).

    Without `output_dir` the trainer's output directory is a temporary folder, removed once training ends (nothing is
    saved during training; evaluation and prediction write nothing)."""
    from transformers import PrinterCallback, set_seed

    import synib_hf
    from synib_hf import MLPFusionConfig, MLPFusionForClassification

    set_seed(seed)  # the initial weights too: the model is built before the Trainer seeds anything
    model = MLPFusionForClassification(
        MLPFusionConfig(**{"modality_dims": dims, "hidden_size": hidden_size, "num_labels": num_labels,
                           **(model_options or {})})
    )
    if output_dir is None:
        with tempfile.TemporaryDirectory(prefix="synib-vector-") as scratch:
            return train_vector_model(trainer_name, overrides, dims, num_labels, train_dataset, seed=seed,
                                      epochs=epochs, learning_rate=learning_rate, hidden_size=hidden_size,
                                      output_dir=scratch, model_options=model_options)
    trainer_class = getattr(synib_hf, trainer_name)
    args = trainer_class.args_class(
        output_dir=output_dir, learning_rate=learning_rate, weight_decay=1e-5, num_train_epochs=epochs,
        per_device_train_batch_size=64, per_device_eval_batch_size=2048, seed=seed, report_to="none",
        save_strategy="no", eval_strategy="no", logging_strategy="no", disable_tqdm=True, dataloader_pin_memory=False,
        **overrides,
    )
    trainer = trainer_class(model=model, args=args, train_dataset=train_dataset)
    trainer.remove_callback(PrinterCallback)  # the benchmarks print one JSON line per result
    trainer.train()
    return trainer
