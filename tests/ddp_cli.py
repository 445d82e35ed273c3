"""`synib-hf train` under `accelerate launch --multi_gpu --num_processes 2`, with its saves recorded per rank:
`python ddp_cli.py RECORD_DIR [train arguments...]` writes RECORD_DIR/rank-<r>.json."""

import hashlib
import json
import os
import sys


def main(record_dir, argv):
    import transformers
    from peft import PeftModel
    from transformers import PreTrainedModel, ProcessorMixin

    import synib_hf.data.hateful_memes as hateful_memes
    from synib_hf.cli import train
    from synib_hf.trainers import synib_trainer

    rank = int(os.environ.get("RANK", "0"))
    record = {"saves": [], "fixtures": 0, "tokenizers_trained": 0, "vocab": None}

    def recording(owner, name, kind):
        original = getattr(owner, name)

        def wrapper(self, save_directory, *args, **kwargs):
            if kwargs.get("is_main_process", True):  # a call that writes files
                record["saves"].append([kind, os.path.relpath(str(save_directory), record_dir)])
            return original(self, save_directory, *args, **kwargs)

        setattr(owner, name, wrapper)

    recording(PreTrainedModel, "save_pretrained", "model")
    recording(PeftModel, "save_pretrained", "adapter")
    recording(ProcessorMixin, "save_pretrained", "processor")
    write_fixture, train_processor = hateful_memes.write_memes_fixture, train.train_tiny_processor

    def fixture(*args, **kwargs):
        record["fixtures"] += 1
        return write_fixture(*args, **kwargs)

    def tokenizer(*args, **kwargs):
        record["tokenizers_trained"] += 1
        return train_processor(*args, **kwargs)

    hateful_memes.write_memes_fixture, train.train_tiny_processor = fixture, tokenizer
    original_init = synib_trainer.SynIBTrainer.__init__

    def init(self, *args, processing_class=None, **kwargs):
        vocab = json.dumps(sorted(processing_class.tokenizer.get_vocab().items()))
        record["vocab"] = hashlib.sha256(vocab.encode()).hexdigest()
        original_init(self, *args, processing_class=processing_class, **kwargs)

    synib_trainer.SynIBTrainer.__init__ = init
    transformers.logging.set_verbosity_error()
    status = train.main(argv)
    with open(os.path.join(record_dir, f"rank-{rank}.json"), "w") as f:
        json.dump(record, f)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # as tests/ddp_train.py: gloo's teardown on CPU may abort or hang at a normal exit


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
