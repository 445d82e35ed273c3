"""SynIB inside TRL's SFTTrainer: fine-tune a vision-language model on a conversational data set with LoRA.

TRL's data as they come (`messages` with an image placeholder and `images`), TRL's own vision collator, `SFTConfig`'s
options; `SynIBSFTConfig` adds SynIB's fields and `SynIBSFTTrainer` its masked views: the image view and the text view
(the user's question) are penalised for staying confident about the answer, read over `answer_candidates` at the
position before the assistant's reply (`assistant_only_loss=True` marks it).

    python examples/trl_sft_vlm.py --output_dir runs/trl-sft-synib            # offline, a tiny LLaVA, ~20 s on a CPU
    python examples/trl_sft_vlm.py --model_name_or_path HuggingFaceTB/SmolVLM-256M-Instruct \\
        --dataset_name <Hub data set with messages + images columns> --answer_candidates yes no \\
        --output_dir runs/smolvlm-synib --bf16 true --per_device_train_batch_size 8 --max_steps 500

Without `--model_name_or_path` the model is LLaVA built tiny from its config (CLIP-vision + Llama, width 32) with a
word-level tokenizer and a LLaVA-style chat template, and the data set is synthetic: the answer is "yes" iff the image
is bright XOR the question says "red", so neither modality alone predicts it; a few dozen LoRA steps on random weights
show the pipeline (SynIB's metrics, the adapter and its card), not learning. Any `SynIBSFTConfig` field is a flag
(`--synib_weight`, `--mask_type`, `--drop_masked_image`, `--max_steps`, ...); the defaults set below supervise only
the assistant's reply (`--assistant_only_loss true`), mask whole modalities and drop the masked image.
"""

import json
from dataclasses import dataclass, field
from typing import Optional

import torch
from transformers import HfArgumentParser

from synib_hf import SynIBSFTConfig, SynIBSFTTrainer, vlm_lora_config


SPECIAL = ["<pad>", "<unk>", "<s>", "</s>", "<image>"]
WORDS = ["USER:", "ASSISTANT:", "nl", "the", "square", "is", "red", "blue", ".", "answer", "yes", "or", "no"]
TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'user' %}USER: {% for p in m['content'] %}"
            "{% if p['type'] == 'image' %}<image> nl {% else %}{{ p['text'] }}{% endif %}{% endfor %} "
            "{% else %}ASSISTANT: {% generation %}{% for p in m['content'] %}{{ p['text'] }}{% endfor %} </s>"
            "{% endgeneration %} {% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT: {% endif %}")


@dataclass
class ScriptArguments:
    model_name_or_path: Optional[str] = field(default=None, metadata={"help": "Hub id or folder; default: tiny LLaVA"})
    dataset_name: Optional[str] = field(default=None, metadata={"help": "Hub id or folder; default: synthetic"})
    dataset_train_split: str = field(default="train")
    dataset_test_split: str = field(default="test")
    lora: bool = field(default=True, metadata={"help": "LoRA on the language model (vlm_lora_config)"})


def tiny_llava():
    """A tiny random LLaVA and its processor (8 px images → 16 image tokens), built offline from configs."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import (CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor,
                              PreTrainedTokenizerFast)

    vocab = {token: index for index, token in enumerate(SPECIAL + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>",
                                        bos_token="<s>", eos_token="</s>", additional_special_tokens=["<image>"],
                                        chat_template=TEMPLATE)
    images = CLIPImageProcessor(size={"shortest_edge": 8}, crop_size={"height": 8, "width": 8})
    processor = LlavaProcessor(image_processor=images, tokenizer=tokenizer, patch_size=2, num_additional_image_tokens=1,
                               vision_feature_select_strategy="default", chat_template=TEMPLATE)
    text = dict(model_type="llama", vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, pad_token_id=vocab["<pad>"],
                bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"])
    vision = dict(model_type="clip_vision_model", image_size=8, patch_size=2, hidden_size=32, intermediate_size=37,
                  num_hidden_layers=2, num_attention_heads=4, projection_dim=32)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=vocab["<image>"],
                         vision_feature_layer=-1, vision_feature_select_strategy="default")
    torch.manual_seed(0)
    return LlavaForConditionalGeneration(config), processor


def synthetic_split(n: int, seed: int):
    """Conversational rows in TRL's format: answer "yes" iff the image is bright XOR the question says "red"."""
    from datasets import Dataset
    from PIL import Image

    generator = torch.Generator().manual_seed(seed)
    bright, red = torch.randint(0, 2, (2, n), generator=generator).tolist()
    rows = []
    for is_bright, is_red in zip(bright, red):
        level = int(torch.randint(160, 256, (1,), generator=generator)) if is_bright else \
            int(torch.randint(0, 96, (1,), generator=generator))
        question = f"the square is {'red' if is_red else 'blue'} . answer yes or no"
        rows.append({"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]},
                                  {"role": "assistant", "content": [{"type": "text",
                                                                     "text": "yes" if is_bright ^ is_red else "no"}]}],
                     "images": [Image.new("RGB", (8, 8), (level, level, level))]})
    return Dataset.from_list(rows)


def main(argv=None) -> dict:
    parser = HfArgumentParser((ScriptArguments, SynIBSFTConfig))
    parser.set_defaults(  # SynIB needs an unsupervised prompt: supervise the assistant's reply only
        assistant_only_loss=True, answer_candidates=["yes", "no"], max_length=None, mask_type="full",
        drop_masked_image=True, learning_rate=2e-4, logging_steps=10, eval_strategy="no", report_to="none",
        bf16=torch.cuda.is_available(), use_cpu=not torch.cuda.is_available(),
    )
    script, args = parser.parse_args_into_dataclasses(args=argv)
    if script.model_name_or_path is None:
        model, processor = tiny_llava()
    else:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        model = AutoModelForImageTextToText.from_pretrained(script.model_name_or_path)
        processor = AutoProcessor.from_pretrained(script.model_name_or_path)
    if script.dataset_name is None:
        train, test = synthetic_split(256, seed=0), synthetic_split(64, seed=1)
    else:
        from datasets import load_dataset

        data = load_dataset(script.dataset_name)
        train, test = data[script.dataset_train_split], data[script.dataset_test_split]
    trainer = SynIBSFTTrainer(model, args, train_dataset=train, eval_dataset=test, processing_class=processor,
                              peft_config=vlm_lora_config(model) if script.lora else None)
    trainer.train()
    metrics = trainer.evaluate()
    trainer.save_model()
    print(json.dumps({k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}))
    return metrics


if __name__ == "__main__":
    main()
