"""What the vector benchmarks share: training the MLP fusion model behind a trainer, writing the outputs."""

import json
import os


def train_vector_model(trainer_name, overrides, dims, num_labels, train_dataset, *, seed, epochs, learning_rate,
                       hidden_size, scratch_dir, model_options=None):
    """Train `MLPFusionForClassification` (`MLPFusionConfig(**model_options)`, which wins over the widths given) with
    `synib_hf.<trainer_name>` and `SynIBConfig(**overrides)`; returns the trainer (quiet: no per-step printing)."""
    from transformers import PrinterCallback, set_seed

    import synib_hf
    from synib_hf import MLPFusionConfig, MLPFusionForClassification, SynIBConfig

    set_seed(seed)  # the initial weights too: the model is built before the Trainer seeds anything
    model = MLPFusionForClassification(
        MLPFusionConfig(**{"modality_dims": dims, "hidden_size": hidden_size, "num_labels": num_labels,
                           **(model_options or {})})
    )
    args = SynIBConfig(
        output_dir=scratch_dir, learning_rate=learning_rate, weight_decay=1e-5, num_train_epochs=epochs,
        per_device_train_batch_size=64, per_device_eval_batch_size=2048, seed=seed, report_to="none",
        save_strategy="no", eval_strategy="no", logging_strategy="no", disable_tqdm=True, dataloader_pin_memory=False,
        **overrides,
    )
    trainer = getattr(synib_hf, trainer_name)(model=model, args=args, train_dataset=train_dataset)
    trainer.remove_callback(PrinterCallback)  # the benchmarks print one JSON line per result
    trainer.train()
    return trainer


def write_outputs(rows, output_dir, markdown, plot) -> str:
    """`results.json`, `results.md` (from `markdown(rows)`) and `results.png` (from `plot(rows, path)`)."""
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    table = markdown(rows)
    with open(os.path.join(output_dir, "results.md"), "w") as f:
        f.write(table)
    plot(rows, os.path.join(output_dir, "results.png"))
    return table
