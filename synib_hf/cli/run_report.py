"""What the `synib-hf` commands show while they run and when they end: a tqdm bar with one compact metrics line per
log, and a closing list of every output with its absolute path."""

import os

from transformers import ProgressCallback


# counters and timings every Trainer log carries: not shown in the compact line
NOT_SHOWN = ("runtime", "samples_per_second", "steps_per_second", "total_flos", "epoch", "step", "grad_norm",
             "learning_rate", "synib/weight", "model_preparation_time")
# SynIB's diagnostics: the compact line shows the penalty per modality (training) and masked accuracy (evaluation)
DIAGNOSTICS = ("synib/task_loss", "synib/fused_loss", "synib/masked_max_prob_", "synib/masked_entropy_")


def compact_metrics(logs: dict) -> str:
    """A log dict as one short line: losses and scores with 4 significant digits, the per-modality metrics grouped.

    Example:

    ```python
    >>> compact_metrics({"eval_loss": 0.51, "eval_accuracy": 0.9, "eval_synib/masked_accuracy_image": 0.5,
    ...                  "eval_synib/masked_accuracy_text": 0.55, "eval_runtime": 0.1, "epoch": 2.0})
    'epoch 2  loss 0.51  accuracy 0.9  masked accuracy: image 0.5, text 0.55'
    ```
    """
    parts = [f"epoch {logs['epoch']:.3g}"] if isinstance(logs.get("epoch"), (int, float)) else []
    grouped = {}
    for key, value in logs.items():
        name = key.split("_", 1)[1] if key.startswith(("eval_", "test_", "train_")) else key
        if name in NOT_SHOWN or name.startswith(DIAGNOSTICS) or not isinstance(value, (int, float)):
            continue
        for prefix, label in (("synib/masked_accuracy_", "masked accuracy"), ("synib/penalty_", "penalty"),
                              ("synib/full_mask_accuracy_", "accuracy with it removed")):
            if name.startswith(prefix):
                grouped.setdefault(label, []).append(f"{name.removeprefix(prefix)} {value:.4g}")
                break
        else:
            parts.append(f"{name} {value:.4g}")
    parts += [f"{label}: {', '.join(values)}" for label, values in grouped.items()]
    return "  ".join(parts)


class CompactProgressCallback(ProgressCallback):
    """Trainer's progress bar, with each log written under it as one [`compact_metrics`] line (evaluations marked
    `eval`) instead of the whole dict."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs:
            evaluation = any(key.startswith("eval_") for key in logs)
            step = f"step {state.global_step}/{state.max_steps}"
            self.training_bar.write(f"{'eval' if evaluation else 'train'} {step}  {compact_metrics(logs)}")


def outputs_report(written: dict) -> str:
    """The closing lines: `{what: path}` as aligned `what  /absolute/path` lines, paths that do not exist left out."""
    shown = {what: os.path.abspath(path) for what, path in written.items() if path and os.path.exists(path)}
    width = max(map(len, shown), default=0)
    return "Outputs:\n" + "\n".join(f"  {what:<{width}}  {path}" for what, path in shown.items())
