import os

# No test may reach the Hub; the Hub tests unset this themselves.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

import transformers  # noqa: E402

transformers.logging.set_verbosity_error()
