"""Story 2: fine-tune a CLIP vision tower + DeBERTa text tower with LoRA and SynIB (the paper's Hateful Memes setup).

Offline by default: tiny random CLIP-vision and DeBERTa-v2 towers built from their configs, a word-level tokenizer of
the captions (deterministic), and a synthetic data set in the Hateful Memes format (label = bright image XOR "not" in
the caption: neither modality alone predicts it). With `--real_towers` on a machine with network, the same script
loads `openai/clip-vit-base-patch32` + `microsoft/deberta-v3-base` instead (see `real_towers`); point `--data_dir`
at the real data set (img/ + train.jsonl, dev_seen.jsonl, test_seen.jsonl) and drop the fixture.

    python examples/02_clip_deberta_lora.py --output_dir runs/examples/clip-deberta
"""

import argparse
import os

import torch

from synib_hf import (
    FusionForSequenceClassification,
    ImageTextCollator,
    SynIBConfig,
    SynIBTrainer,
    load_hateful_memes,
    lora_config_for,
    write_memes_fixture,
)
from synib_hf.data.hateful_memes import HATEFUL_LABELS
from synib_hf.models.adapter_checkpoints import save_base_reference
from synib_hf.models.fusion.tiny_towers import tiny_fusion_config, tiny_fusion_processor


ID2LABEL = dict(enumerate(HATEFUL_LABELS))


def tiny_towers(captions):
    """Offline: tiny random towers and a tokenizer built from the training captions."""
    processor = tiny_fusion_processor(captions, image_size=32)
    config = tiny_fusion_config(processor.tokenizer, image_size=32, id2label=ID2LABEL, projection_dim=32,
                                fusion_hidden_size=64)
    return FusionForSequenceClassification(config), processor


def real_towers():
    """The lines to use instead on a machine with network: the paper's pretrained towers and their processors."""
    from transformers import AutoTokenizer, CLIPImageProcessor

    from synib_hf import FusionProcessor

    model = FusionForSequenceClassification.from_vision_text_pretrained(
        "openai/clip-vit-base-patch32", "microsoft/deberta-v3-base", projection_dim=256, fusion_hidden_size=512,
        id2label=ID2LABEL, label2id={name: index for index, name in ID2LABEL.items()})
    processor = FusionProcessor(image_processor=CLIPImageProcessor.from_pretrained("openai/clip-vit-base-patch32"),
                                tokenizer=AutoTokenizer.from_pretrained("microsoft/deberta-v3-base"))
    return model, processor


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="runs/examples/clip-deberta")
    parser.add_argument("--data_dir", default=None, help="a Hateful Memes folder; default: a synthetic one")
    parser.add_argument("--real_towers", action="store_true", help="load the pretrained towers (needs network)")
    args = parser.parse_args(argv)

    data_dir = args.data_dir or write_memes_fixture(os.path.join(args.output_dir, "fixture"), rows_per_split=128)
    data = load_hateful_memes(data_dir)  # DatasetDict: train / validation / test, columns id, image, text, label
    torch.manual_seed(0)  # the towers' and heads' initial weights
    model, processor = real_towers() if args.real_towers else tiny_towers(data["train"]["text"])

    config = SynIBConfig(
        output_dir=os.path.join(args.output_dir, "model"),
        synib_weight=0.1,                 # λ: the penalty on confident masked views
        mask_type="random", mask_ratio=0.5,
        num_train_epochs=10, per_device_train_batch_size=16, learning_rate=1e-2,
        eval_strategy="no", logging_strategy="no", save_strategy="no",
        remove_unused_columns=False,      # the collator reads the raw image and text columns
        use_cpu=not args.real_towers, bf16=args.real_towers and torch.cuda.is_available(),
        report_to="none", disable_tqdm=True, seed=0,
    )
    trainer = SynIBTrainer(
        model=model, args=config, train_dataset=data["train"], eval_dataset=data["validation"],
        processing_class=processor, data_collator=ImageTextCollator(processor, max_length=64),
        compute_metrics=lambda p: {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())},
        peft_config=lora_config_for(model, r=4),   # adapters on both towers' attention, the heads trained in full
    )
    trainer.train()
    metrics = trainer.evaluate(data["test"], metric_key_prefix="test")

    # The adapters (a few MB for the real towers) with what rebuilds their base: here the base config; the tiny
    # random towers' weights are saved too, since no checkpoint holds them.
    trainer.save_model(config.output_dir)
    save_base_reference(trainer.model, config.output_dir)
    reloaded = FusionForSequenceClassification.from_pretrained(config.output_dir)  # base + adapters, merged
    rows = [data["test"][i] for i in range(4)]
    batch = ImageTextCollator(processor)(rows)
    batch.pop("labels")
    with torch.no_grad():
        predicted = [reloaded.config.id2label[int(i)] for i in reloaded(**batch).logits.argmax(-1)]
    print(f"test accuracy {metrics['test_accuracy']:.3f}; with the image masked "
          f"{metrics['test_synib/masked_accuracy_image']:.3f}, the text masked "
          f"{metrics['test_synib/masked_accuracy_text']:.3f} (random masks, half of each modality's features)")
    print(f"reloaded from {os.path.abspath(config.output_dir)}: {list(zip([r['text'] for r in rows], predicted))}")
    return metrics


if __name__ == "__main__":
    main()
