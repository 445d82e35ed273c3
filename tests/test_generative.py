import pytest
import torch
from transformers.loss.loss_utils import ForCausalLMLoss

from synib_hf.generative import (
    answer_classes,
    answer_positions,
    candidate_logits,
    candidate_token_ids,
    causal_lm_loss,
    lean_logits_mask,
    split_lean_logits,
    supervised_positions,
)
from tiny_vlms import VOCAB, tiny_vlm_tokenizer


LABELS = torch.tensor([[-100, -100, -100, 7, 3, -100],
                       [-100, 9, 3, -100, -100, -100]])


def test_answer_position_is_the_one_before_the_first_supervised_token():
    assert answer_positions(LABELS).tolist() == [2, 0]
    with pytest.raises(ValueError, match=r"Examples \[1\] have no supervised label token"):
        answer_positions(torch.tensor([[-100, 5], [-100, -100]]))
    with pytest.raises(ValueError, match="at position 0"):
        answer_positions(torch.tensor([[5, 6]]))


def test_candidates_resolve_through_the_tokenizer_or_a_processor():
    tokenizer = tiny_vlm_tokenizer()
    assert candidate_token_ids(tokenizer, ["yes", "no"]) == (VOCAB["yes"], VOCAB["no"])

    class Processor:
        pass

    processor = Processor()
    processor.tokenizer = tokenizer
    assert candidate_token_ids(processor, ["red", "blue", "no"]) == (VOCAB["red"], VOCAB["blue"], VOCAB["no"])


def test_candidates_sharing_a_first_token_are_refused():
    with pytest.raises(ValueError, match="'yes' and 'yes red' share their first token"):
        candidate_token_ids(tiny_vlm_tokenizer(), ["yes", "yes red"])
    with pytest.raises(ValueError, match="at least two"):
        candidate_token_ids(tiny_vlm_tokenizer(), ["yes"])
    with pytest.raises(ValueError, match="processing_class"):
        candidate_token_ids(None, ["yes", "no"])


def test_answer_classes_and_a_clear_error_for_an_answer_outside_the_candidates():
    assert answer_classes(LABELS, answer_positions(LABELS), (9, 7)).tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"examples \[0\] start with token ids \[7\].*mind a leading space"):
        answer_classes(LABELS, answer_positions(LABELS), (9, 8))


def test_lean_mask_keeps_supervised_positions_in_the_clean_block_and_the_answer_in_masked_blocks():
    mask = lean_logits_mask(LABELS, (None, "image", "text"))
    assert mask.int().tolist() == [[0, 0, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0],
                                   [0, 0, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0],
                                   [0, 0, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]]
    assert torch.equal(lean_logits_mask(LABELS, ("text",)), mask[4:])


def test_split_lean_logits_matches_indexing_the_full_logits():
    full = torch.randn(6, 6, 11)  # (3 blocks · B, T, V)
    clean, clean_answer, masked = split_lean_logits(full[lean_logits_mask(LABELS, (None, "image", "text"))], LABELS,
                                                    (None, "image", "text"))
    rows, answer = torch.arange(2), answer_positions(LABELS)
    assert torch.equal(clean, full[:2][supervised_positions(LABELS)])
    assert torch.equal(clean_answer, full[:2][rows, answer])
    assert torch.equal(masked, torch.stack([full[2:4][rows, answer], full[4:][rows, answer]]))
    assert torch.equal(candidate_logits(masked, (3, 5)), masked[..., [3, 5]])
    none, none_answer, only = split_lean_logits(full[2:4][lean_logits_mask(LABELS, ("image",))], LABELS, ("image",))
    assert none is None and none_answer is None and torch.equal(only[0], full[2:4][rows, answer])


@pytest.mark.parametrize("num_items", [None, torch.tensor(9)])
def test_causal_lm_loss_from_kept_positions_equals_transformers_loss(num_items):
    logits = torch.randn(2, 6, 11)
    labels = torch.tensor([[-100, -100, -100, 7, 3, -100], [-100, 9, 3, 1, 5, -100]])
    expected = ForCausalLMLoss(logits, labels, vocab_size=11, num_items_in_batch=num_items)
    kept = logits[supervised_positions(labels)]
    torch.testing.assert_close(causal_lm_loss(kept, labels, num_items), expected, rtol=1e-6, atol=1e-7)
