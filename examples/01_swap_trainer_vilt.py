"""Story 1: you have a working `Trainer` script; SynIB is two names away.

A visual question answering model (ViLT, as in the transformers VQA guide) is trained with `transformers.Trainer`,
then with `synib_hf.SynIBTrainer`. The diff between the two runs is:

    -from transformers import Trainer, TrainingArguments
    +from synib_hf import SynIBConfig, SynIBTrainer
    -args = TrainingArguments(**common)
    +args = SynIBConfig(**common, synib_weight=0.1, modality_keys=MODALITIES)   # which inputs are which modality
    -trainer = Trainer(model=model, args=args, ...)
    +trainer = SynIBTrainer(model=model, args=args, ...)

The model is ViLT built tiny from its config and the data is synthetic (a bright or dark picture, "is the picture
bright/dark?"; the answer needs both), so it runs offline on a CPU in seconds. On a machine with network, replace
`tiny_vilt()` and `processor` with `ViltForQuestionAnswering.from_pretrained("dandelin/vilt-b32-mlm", ...)` and
`ViltProcessor.from_pretrained("dandelin/vilt-b32-mlm")`, and the data with yours.

    python examples/01_swap_trainer_vilt.py --output_dir runs/examples/vilt
"""

import argparse

import numpy as np
import torch
from PIL import Image
from transformers import Trainer, TrainingArguments, ViltConfig, ViltForQuestionAnswering, ViltImageProcessorPil, \
    ViltProcessor

from synib_hf import SynIBConfig, SynIBTrainer
from synib_hf.models.fusion.tiny_towers import word_level_tokenizer


ANSWERS = ["yes", "no"]
QUESTIONS = ["is the picture bright ?", "is the picture dark ?"]
MODALITIES = {"image": ["pixel_values", "pixel_mask"], "text": ["input_ids", "attention_mask"]}


def synthetic_vqa(n: int, seed: int) -> list:
    """Rows of (image, question, answer): the answer needs both the picture's brightness and the question."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        bright, asks_bright = int(rng.integers(0, 2)), int(rng.integers(0, 2))
        pixels = np.clip(rng.normal(190 if bright else 60, 25, size=(32, 32, 3)), 0, 255).astype(np.uint8)
        rows.append({"image": Image.fromarray(pixels), "question": QUESTIONS[1 - asks_bright],
                     "answer": "yes" if bright == asks_bright else "no"})
    return rows


def tiny_vilt() -> ViltForQuestionAnswering:
    """ViLT with 2 layers of width 32, 32×32 images in 8×8 patches, a yes/no answer head."""
    config = ViltConfig(vocab_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, image_size=32, patch_size=8, max_image_length=-1,
                        max_position_embeddings=16, pad_token_id=0, num_labels=len(ANSWERS),
                        id2label=dict(enumerate(ANSWERS)), label2id={a: i for i, a in enumerate(ANSWERS)})
    return ViltForQuestionAnswering(config)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="runs/examples/vilt")
    args = parser.parse_args(argv)

    processor = ViltProcessor(image_processor=ViltImageProcessorPil(size={"shortest_edge": 32}, size_divisor=32),
                              tokenizer=word_level_tokenizer(QUESTIONS, vocab_size=32, model_max_length=16))
    train, test = synthetic_vqa(256, seed=0), synthetic_vqa(128, seed=1)

    def collate(rows):
        batch = processor(images=[r["image"] for r in rows], text=[r["question"] for r in rows], padding=True,
                          return_tensors="pt")
        # VQA soft scores, as in the transformers guide: 1.0 for the answer given
        batch["labels"] = torch.nn.functional.one_hot(
            torch.tensor([ANSWERS.index(r["answer"]) for r in rows]), len(ANSWERS)).float()
        return batch

    common = dict(num_train_epochs=12, per_device_train_batch_size=32, learning_rate=3e-3, report_to="none",
                  save_strategy="no", logging_strategy="no", disable_tqdm=True, use_cpu=True, seed=0,
                  remove_unused_columns=False)
    results = {}
    for name in ("Trainer", "SynIBTrainer"):
        torch.manual_seed(0)  # both runs start from the same weights
        model = tiny_vilt()
        if name == "Trainer":
            run_args = TrainingArguments(output_dir=f"{args.output_dir}/plain", **common)
            trainer = Trainer(model=model, args=run_args, train_dataset=train, data_collator=collate,
                              processing_class=processor)
        else:
            run_args = SynIBConfig(output_dir=f"{args.output_dir}/synib", **common, synib_weight=0.1,
                                   modality_keys=MODALITIES)
            trainer = SynIBTrainer(model=model, args=run_args, train_dataset=train, data_collator=collate,
                                   processing_class=processor)  # its tokenizer's ids for masking text
        trainer.train()
        prediction = trainer.predict(test)
        answers = [model.config.id2label[int(i)] for i in prediction.predictions.argmax(-1)]
        results[name] = float(np.mean([a == r["answer"] for a, r in zip(answers, test)]))
        print(f"{name:<13} test accuracy {results[name]:.3f}   first answers: {answers[:4]}")
    return results


if __name__ == "__main__":
    main()
