"""Story 4: fine-tune a generative vision-language model (LLaVA) with LoRA and SynIB, reading the answer as a choice
among `answer_candidates`.

The data are SFT rows: `<bos> <image>×16 prompt ASSISTANT: answer <eos>`, labels −100 everywhere but the answer.
The task loss stays the model's own language-model loss; SynIB adds views with the image (or the prompt) overwritten
in the merged input embeddings and pushes the answer position's distribution over the candidates' first tokens
("yes", "no") to uniform in them. The answer here is "yes" iff the image is bright XOR the prompt says "red": it needs
both.

The model is LLaVA built tiny from its config (CLIP-vision + Llama, width 32) with a word-level tokenizer, so it runs
offline on a CPU. With a real model (network, a GPU), keep everything below `model, tokenizer = ...` and load
`LlavaForConditionalGeneration.from_pretrained("llava-hf/llava-1.5-7b-hf")` with its `AutoProcessor`, building the rows
with the processor's chat template.

    python examples/04_vlm_lora_answer_candidates.py --output_dir runs/examples/vlm
"""

import argparse

import torch
from transformers import LlavaConfig, LlavaForConditionalGeneration, PreTrainedTokenizerFast

from synib_hf import SynIBConfig, SynIBTrainer, vlm_lora_config


SPECIAL = ["<pad>", "<unk>", "<bos>", "<eos>", "<image>"]
WORDS = [f"w{i}" for i in range(20)] + ["yes", "no", "red", "blue", "ASSISTANT:"]
VOCAB = {token: index for index, token in enumerate(SPECIAL + WORDS)}
IMAGE_TOKENS = 16  # (8 px / 2 px patches)² image positions in the sequence


def tiny_llava():
    """LLaVA from its config: a CLIP-vision tower (8×8 images, patch 2) and a 2-layer Llama of width 32; and a
    word-level tokenizer over the same vocabulary."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    text = dict(model_type="llama", vocab_size=len(VOCAB), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, pad_token_id=VOCAB["<pad>"],
                bos_token_id=VOCAB["<bos>"], eos_token_id=VOCAB["<eos>"])
    vision = dict(model_type="clip_vision_model", image_size=8, patch_size=2, hidden_size=32, intermediate_size=37,
                  num_hidden_layers=2, num_attention_heads=4, projection_dim=32)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=VOCAB["<image>"],
                         image_seq_length=IMAGE_TOKENS, vision_feature_layer=-1)
    backend = Tokenizer(models.WordLevel(vocab=VOCAB, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>",
                                        bos_token="<bos>", eos_token="<eos>", additional_special_tokens=["<image>"])
    return LlavaForConditionalGeneration(config), tokenizer


class SynergyRows(torch.utils.data.Dataset):
    """SFT rows: answer "yes" iff bright image XOR "red" in the prompt (each alone is at chance)."""

    def __init__(self, n: int, seed: int):
        generator = torch.Generator().manual_seed(seed)
        bright, red = torch.randint(0, 2, (2, n), generator=generator)
        self.pixels = (2.0 * bright - 1.0)[:, None, None, None] + 0.3 * torch.randn(n, 3, 8, 8, generator=generator)
        filler = torch.randint(VOCAB["w0"], VOCAB["w0"] + 20, (n, 2), generator=generator)
        self.rows = []
        for (a, b), is_red, is_bright in zip(filler.tolist(), red.tolist(), bright.tolist()):
            prefix = [VOCAB["<bos>"]] + [VOCAB["<image>"]] * IMAGE_TOKENS + [a, VOCAB["red" if is_red else "blue"],
                                                                              b, VOCAB["ASSISTANT:"]]
            answer = [VOCAB["yes" if is_bright ^ is_red else "no"], VOCAB["<eos>"]]
            self.rows.append((prefix + answer, [-100] * len(prefix) + answer))

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        ids, labels = self.rows[index]
        return {"input_ids": torch.tensor(ids), "attention_mask": torch.ones(len(ids), dtype=torch.long),
                "labels": torch.tensor(labels), "pixel_values": self.pixels[index]}


def collate(rows):
    return {key: torch.stack([row[key] for row in rows]) for key in rows[0]}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="runs/examples/vlm")
    parser.add_argument("--max_steps", type=int, default=200)
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    model, tokenizer = tiny_llava()
    config = SynIBConfig(
        output_dir=args.output_dir,
        synib_weight=1.0,
        answer_candidates=["yes", "no"],   # the verbalizer: the penalty reads these answers' first tokens
        mask_type="full", mask_fill="zero",
        eval_masked_views=True,
        max_steps=args.max_steps, per_device_train_batch_size=16, per_device_eval_batch_size=64, learning_rate=2e-2,
        remove_unused_columns=False, save_strategy="no", logging_strategy="no", report_to="none", disable_tqdm=True,
        use_cpu=True, seed=0,
    )
    trainer = SynIBTrainer(
        model=model, args=config, train_dataset=SynergyRows(256, seed=0), eval_dataset=SynergyRows(128, seed=1),
        data_collator=collate, processing_class=tokenizer,
        peft_config=vlm_lora_config(model, r=16),   # adapters on the language model only; the vision tower stays frozen
    )
    trainer.train()
    metrics = trainer.evaluate()
    print(f"answer accuracy over the candidates {metrics['eval_synib/clean_accuracy']:.3f}; confidence with the "
          f"image masked {metrics['eval_synib/masked_max_prob_image']:.3f}, the prompt masked "
          f"{metrics['eval_synib/masked_max_prob_text']:.3f} (0.5 = uniform over yes/no)")
    trainer.save_model(args.output_dir)  # the LoRA adapters, base_model_name_or_path recorded by PEFT where known
    return metrics


if __name__ == "__main__":
    main()
