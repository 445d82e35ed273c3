"""SynIB on a tiny LLaVA, pure-synergy task (answer = bright image XOR "red" in the prompt; each modality alone is at
chance), full fine-tuning: the penalty brings the masked views' confidence over the candidates to ~1/C while the clean
accuracy and the LM stay intact; without it the masked views stay confident. (~20 s on one CPU core.)"""

import pytest
import torch

from synib_hf.generative import candidate_token_ids
from synib_hf.masking import MaskRandomness, MaskSpec
from synib_hf.models.vlm import VLMViews
from synib_hf.penalties import kl_uniform, max_probability
from tiny_vlms import CANDIDATES, VOCAB, sft_batch, tiny_vlm, tiny_vlm_tokenizer


def synergy_batch(n, seed):
    generator = torch.Generator().manual_seed(seed)
    bright, red = torch.randint(0, 2, (2, n), generator=generator)
    pixels = (2.0 * bright - 1.0)[:, None, None, None] + 0.3 * torch.randn(n, 3, 8, 8, generator=generator)
    fillers = torch.randint(VOCAB["w0"], VOCAB["w0"] + 40, (n, 2), generator=generator).tolist()
    prompts = [[a, VOCAB["red"] if r else VOCAB["blue"], b] for (a, b), r in zip(fillers, red.tolist())]
    answers = ["yes" if b ^ r else "no" for b, r in zip(bright.tolist(), red.tolist())]
    return sft_batch("llava", prompts, answers, pixels)


def train_and_evaluate(weight, steps=150, lr=6e-3):
    tokenizer = tiny_vlm_tokenizer()
    candidates = candidate_token_ids(tokenizer, CANDIDATES)
    model = tiny_vlm("llava").train()
    views = VLMViews(model, MaskSpec(mask_type="full", mask_fill="zero"), MaskRandomness(0), tokenizer.all_special_ids)
    train, test = synergy_batch(256, seed=1), synergy_batch(128, seed=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(0)
    for _ in range(steps):
        rows = torch.randint(0, 256, (16,), generator=order)
        readout = views.generative(model, {k: v[rows] for k, v in train.items()}, candidates, (None, "image", "text"),
                                   training=True)
        penalty = sum(kl_uniform(view).mean() for view in readout.masked_logits)
        (readout.task_loss + weight * penalty).backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        readout = views.generative(model, test, candidates, (None, "image", "text"), training=False)
    accuracy = (readout.logits.argmax(-1) == readout.classes).float().mean().item()
    confidence = [max_probability(view).mean().item() for view in readout.masked_logits]
    return accuracy, confidence, readout.task_loss.item()


@pytest.fixture(scope="module")
def runs():
    return {weight: train_and_evaluate(weight) for weight in (0.0, 1.0)}


def test_without_the_penalty_masked_views_stay_confident(runs):
    accuracy, confidence, lm_loss = runs[0.0]
    assert accuracy >= 0.95 and lm_loss < 0.1
    assert min(confidence) > 0.8, confidence  # each view still answers although it cannot know


def test_the_penalty_brings_masked_views_to_chance_and_keeps_the_clean_answer(runs):
    accuracy, confidence, lm_loss = runs[1.0]
    assert accuracy >= 0.95 and lm_loss < 0.1
    assert max(confidence) < 0.6, confidence  # 1/C = 0.5
