"""`SynIBTrainer` on vision-language models (the embedding path): auto-detection, λ = 0 is `Trainer` in training and
evaluation, gradient accumulation, sequential = concatenated, evaluation metrics over the answer candidates, LoRA
presets, the classification variant, and clear errors."""

import numpy as np
import pytest
import torch
from transformers import Trainer, TrainingArguments

from synib_hf import SynIBConfig, SynIBTrainer, VLMClassificationConfig, VLMForSequenceClassification, vlm_lora_config
from synib_hf.models.vlm.families import vision_module_names
from tiny_vlms import VLMRows, random_batch, tiny_vlm, tiny_vlm_config, tiny_vlm_tokenizer, vlm_collator


COMMON = dict(report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0, logging_steps=1)
CANDIDATES = ["yes", "no"]


def synib_args(tmp_path, **kwargs):
    return SynIBConfig(output_dir=str(tmp_path), **{**COMMON, "answer_candidates": CANDIDATES, **kwargs})


def params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def assert_params_equal(a, b, **tolerance):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=lambda m: f"{key}: {m}", **tolerance)


def rows(family, n=8, seed=0, **kwargs):
    return VLMRows(random_batch(family, n, seed=seed, **kwargs))


def trainer(model, tmp_path, data, **kwargs):
    return SynIBTrainer(model=model, args=synib_args(tmp_path, **kwargs), train_dataset=data, eval_dataset=data,
                        data_collator=vlm_collator, processing_class=tiny_vlm_tokenizer())


@pytest.mark.parametrize("family", ["llava", "qwen2_vl"])
def test_lambda_zero_is_trainer_in_training_and_evaluation(tmp_path, family):
    data = rows(family)
    steps = dict(per_device_train_batch_size=4, max_steps=3, learning_rate=1e-2, eval_strategy="steps", eval_steps=3)
    plain_model, synib_model = tiny_vlm(family).train(), tiny_vlm(family).train()
    plain = Trainer(model=plain_model, args=TrainingArguments(output_dir=str(tmp_path / "p"), **COMMON, **steps),
                    train_dataset=data, eval_dataset=data, data_collator=vlm_collator)
    plain.train()
    # the same rows plus SynIB's own synib_text_mask column, which must not reach the model
    synib = trainer(synib_model, tmp_path / "s", rows(family, text_mask=True), synib_weight=0.0, **steps)
    assert synib.view_builder.name == "embedding"
    seen = set()
    synib_model.register_forward_pre_hook(lambda module, args, kwargs: seen.update(kwargs), with_kwargs=True)
    synib.train()
    assert "input_ids" in seen and "synib_text_mask" not in seen
    losses = [[h["loss"] for h in t.state.log_history if "loss" in h] for t in (plain, synib)]
    assert len(losses[0]) == 3 and losses[0] == losses[1]
    assert_params_equal(params(plain_model), params(synib_model), rtol=0, atol=0)
    evaluations = [[h["eval_loss"] for h in t.state.log_history if "eval_loss" in h] for t in (plain, synib)]
    assert evaluations[0] == evaluations[1] and len(evaluations[0]) == 1
    # the image encoder's outputs are not predictions (Trainer cannot gather them): keep the logits
    others = ["cache", "past_key_values", "image_outputs", "image_hidden_states", "rope_deltas"]
    plain_prediction, synib_prediction = plain.predict(data, others), synib.predict(data, others)
    np.testing.assert_array_equal(plain_prediction.predictions, synib_prediction.predictions)  # (N, T, V)
    assert plain_prediction.predictions.shape[:1] == (8,)


def uneven_rows(n=8):
    """Rows whose answers differ in length: the first half supervises the answer token only, the rest answer + EOS."""
    batch = random_batch("llava", n)
    batch["labels"][: n // 2, -1] = -100
    return VLMRows(batch)


@pytest.mark.parametrize("weight", [0.0, 1.0])
@pytest.mark.parametrize("batching", ["concatenated", "sequential"])
@pytest.mark.parametrize("answers", ["even", "uneven"])
def test_gradient_accumulation_1xN_equals_Nx1(tmp_path, batching, answers, weight):
    """LLaVA takes loss kwargs: like Trainer, SynIB divides its token loss by the accumulated batch's token count, so
    micro-batches with answers of different lengths still add up to the full batch (λ = 0 is the control)."""
    data = rows("llava", 8) if answers == "even" else uneven_rows(8)
    results = []
    for batch, accumulation in ((8, 1), (2, 4)):
        model = tiny_vlm("llava").train()
        # SGD, not Adam: Adam's normalisation would hide a wrongly scaled gradient.
        synib = trainer(model, tmp_path / f"{batch}", data, synib_weight=weight, mask_type="full", mask_fill="zero",
                        per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation, max_steps=2,
                        learning_rate=0.5, optim="sgd", train_sampling_strategy="sequential", view_batching=batching)
        synib.train()
        results.append((params(model), [h["loss"] for h in synib.state.log_history if "loss" in h]))
    (full, full_losses), (accumulated, accumulated_losses) = results
    assert_params_equal(full, accumulated, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(full_losses, accumulated_losses, rtol=1e-5)


def test_sequential_views_give_the_concatenated_gradient(tmp_path):
    data = rows("qwen3_vl", 4)
    results = []
    for batching in ("concatenated", "sequential"):
        model = tiny_vlm("qwen3_vl").train()
        synib = trainer(model, tmp_path / batching, data, synib_weight=1.0, mask_type="full", mask_fill="zero",
                        per_device_train_batch_size=4, max_steps=1, learning_rate=0.5, optim="sgd",
                        view_batching=batching)
        synib.train()
        results.append(params(model))
    assert_params_equal(*results, rtol=1e-4, atol=1e-6)


def test_evaluation_reports_masked_and_clean_answer_accuracy_and_keeps_the_models_predictions(tmp_path):
    data = rows("smolvlm", 8, text_mask=True)
    seen = {}

    def metrics(prediction):
        seen["shape"] = prediction.predictions.shape
        return {}

    synib = SynIBTrainer(model=tiny_vlm("smolvlm"), args=synib_args(tmp_path, synib_weight=0.5,
                                                                    per_device_eval_batch_size=4),
                         eval_dataset=data, data_collator=vlm_collator, processing_class=tiny_vlm_tokenizer(),
                         compute_metrics=metrics)
    result = synib.evaluate(ignore_keys=["cache", "image_hidden_states", "image_outputs"])
    for name in ("image", "text"):
        assert 0.0 <= result[f"eval_synib/masked_accuracy_{name}"] <= 1.0
        assert 0.5 <= result[f"eval_synib/masked_max_prob_{name}"] <= 1.0  # over the two candidates
    assert 0.0 <= result["eval_synib/clean_accuracy"] <= 1.0
    plain_loss = Trainer(model=synib.model, args=TrainingArguments(output_dir=str(tmp_path / "p"), **COMMON),
                         data_collator=vlm_collator).evaluate(data, ["cache", "image_hidden_states",
                                                                     "image_outputs"])["eval_loss"]
    penalty = result["eval_synib/penalty_image"] + result["eval_synib/penalty_text"]
    assert result["eval_loss"] == pytest.approx(plain_loss + 0.5 * penalty, rel=1e-5)
    assert seen["shape"][0] == 8 and seen["shape"][2] == 64  # compute_metrics gets the model's (N, T, V) logits


def test_lora_preset_through_the_trainer_trains_adapters_and_leaves_the_vision_tower(tmp_path):
    base = tiny_vlm("paligemma").train()
    before = params(base)
    vision = tuple(vision_module_names(base))
    synib = SynIBTrainer(model=base, args=synib_args(tmp_path, synib_weight=1.0, per_device_train_batch_size=4,
                                                     max_steps=2, learning_rate=5e-2),
                         train_dataset=rows("paligemma"), data_collator=vlm_collator,
                         processing_class=tiny_vlm_tokenizer(), peft_config=vlm_lora_config(base, r=4))
    assert synib.view_builder.name == "embedding"
    synib.train()
    after = {k.replace(".base_layer", ""): v for k, v in synib.model.get_base_model().named_parameters()}
    for key, value in before.items():
        assert torch.equal(after[key], value), key  # no base weight moved, the vision side included
    assert any(k.startswith(vision) for k in before)
    assert any(v.abs().sum() > 0 for k, v in after.items() if "lora_B" in k)


@pytest.mark.parametrize("family", ["gemma3", "qwen2_vl"])
def test_classification_variant_trains_with_the_gaussian_penalty(tmp_path, family):
    torch.manual_seed(0)
    model = VLMForSequenceClassification(VLMClassificationConfig(vlm_config=tiny_vlm_config(family),
                                                                 logvar_head=True, num_labels=2))
    batch = random_batch(family, 8)
    batch["labels"] = torch.arange(8) % 2
    before = params(model)
    synib = SynIBTrainer(model=model, args=synib_args(tmp_path, answer_candidates=None, synib_weight=1.0,
                                                      synib_penalty="gaussian", per_device_train_batch_size=4,
                                                      max_steps=2, eval_strategy="steps", eval_steps=2),
                         train_dataset=VLMRows(batch), eval_dataset=VLMRows(batch), data_collator=vlm_collator,
                         processing_class=tiny_vlm_tokenizer())
    assert synib.view_builder.name == "embedding"
    synib.train()
    assert not torch.equal(params(model)["logvar.weight"], before["logvar.weight"])  # the penalty reached its head
    evaluation = [h for h in synib.state.log_history if "eval_loss" in h][-1]
    assert "eval_synib/masked_accuracy_image" in evaluation and "eval_synib/penalty_text" in evaluation


def test_errors_name_the_field_and_the_fix(tmp_path):
    data = rows("llava", 4)
    with pytest.raises(ValueError, match="set answer_candidates"):
        trainer(tiny_vlm("llava"), tmp_path, data, answer_candidates=None)
    with pytest.raises(ValueError, match="synib_penalty='gaussian' is not available"):
        trainer(tiny_vlm("llava"), tmp_path, data, synib_penalty="gaussian", logvar_key="logvar")
    with pytest.raises(ValueError, match="'yes' and 'yes red' share their first token"):
        trainer(tiny_vlm("llava"), tmp_path, data, answer_candidates=["yes", "yes red"])
    with pytest.raises(ValueError, match="answer_candidates must list at least two"):
        synib_args(tmp_path, answer_candidates=["yes", "yes"])
    with pytest.raises(ValueError, match="mask_type='learned' is not available for embedding-level masking"):
        trainer(tiny_vlm("llava"), tmp_path, data, mask_type="learned")
    from tiny_models import mlp_fusion

    with pytest.raises(ValueError, match="synib_path='embedding' masks a vision-language model"):
        SynIBTrainer(model=mlp_fusion(), args=synib_args(tmp_path, synib_path="embedding"))
    with pytest.raises(ValueError, match=r"answer_candidates=\[.yes., .no.\] is read by the embedding path"):
        SynIBTrainer(model=mlp_fusion(), args=synib_args(tmp_path))
    classifier = VLMForSequenceClassification(VLMClassificationConfig(vlm_config=tiny_vlm_config("llava")))
    with pytest.raises(ValueError, match="has a classification head whose labels are class ids"):
        trainer(classifier, tmp_path, data)
    wrong = trainer(tiny_vlm("llava"), tmp_path, data, answer_candidates=["red", "blue"], synib_weight=1.0,
                    max_steps=1, per_device_train_batch_size=4)
    with pytest.raises(ValueError, match="not the first token of any of answer_candidates"):
        wrong.train()  # the first batch is checked before any step


def test_the_text_mask_column_reaches_the_views_and_bf16_runs(tmp_path):
    data = rows("idefics3", 4, text_mask=True)
    synib = trainer(tiny_vlm("idefics3"), tmp_path, data, synib_weight=1.0, per_device_train_batch_size=4,
                    max_steps=1, bf16=True)
    seen = []
    positions = synib.view_builder.positions
    synib.view_builder.positions = lambda batch, **kwargs: seen.append(positions(batch, **kwargs)) or seen[-1]
    synib.train()
    expected = data.batch["synib_text_mask"].bool()
    assert seen and all(torch.equal(p["text"].cpu(), expected) for p in seen)
    losses = [h["loss"] for h in synib.state.log_history if "loss" in h]
    assert len(losses) == 1 and np.isfinite(losses[0])


def test_saved_checkpoint_loads_with_the_class_its_card_names(tmp_path):
    from transformers import AutoModelForImageTextToText

    synib = trainer(tiny_vlm("qwen2_5_vl"), tmp_path, rows("qwen2_5_vl", 4), synib_weight=1.0,
                    per_device_train_batch_size=4, max_steps=1)
    synib.train()
    synib.save_model(str(tmp_path / "final"))
    card = (tmp_path / "final" / "README.md").read_text()
    assert "(embedding path)" in card and 'AutoModelForImageTextToText.from_pretrained("<your-namespace>/' in card
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path / "final").eval()
    batch = {k: v for k, v in random_batch("qwen2_5_vl", 2).items() if k != "labels"}
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, synib.model.eval()(**batch).logits, rtol=0, atol=0)


def test_a_task_loss_of_its_own_is_refused_on_the_embedding_path(tmp_path):
    """The model's own LM loss is the task: compute_loss_func / label smoothing would apply in one view batching only."""
    with pytest.raises(ValueError, match="compute_loss_func is not used on the embedding path"):
        SynIBTrainer(model=tiny_vlm("llava"), args=synib_args(tmp_path, synib_weight=1.0),
                     processing_class=tiny_vlm_tokenizer(), compute_loss_func=lambda *a, **k: 0)
    with pytest.raises(ValueError, match="label_smoothing_factor is not used on the embedding path"):
        SynIBTrainer(model=tiny_vlm("llava"), args=synib_args(tmp_path, synib_weight=1.0, label_smoothing_factor=0.1),
                     processing_class=tiny_vlm_tokenizer())


def test_the_best_model_loads_back_with_converted_keys(tmp_path):
    """transformers 5.24 saves LLaVA under legacy key names (huggingface/transformers#43701): load_best_model_at_end
    must still load the best checkpoint's weights, not keep the last ones."""
    from transformers import LlavaForConditionalGeneration

    model = tiny_vlm("llava").train()
    synib = trainer(model, tmp_path, rows("llava", 8), synib_weight=1.0, per_device_train_batch_size=4, max_steps=3,
                    learning_rate=0.5, optim="sgd", eval_strategy="steps", eval_steps=1, save_strategy="steps",
                    save_steps=1, load_best_model_at_end=True, metric_for_best_model="loss", greater_is_better=True)
    synib.train()
    best = synib.state.best_model_checkpoint
    assert best is not None and not best.endswith("checkpoint-3")  # the highest evaluation loss: not the last step
    saved = LlavaForConditionalGeneration.from_pretrained(best)
    for (name, a), b in zip(saved.named_parameters(), model.parameters()):
        assert torch.equal(a, b), name


def test_packed_views_and_the_dropped_image_through_the_trainer(tmp_path):
    """SynIBConfig's share_view_prefix and drop_masked_image reach the views; a packed run trains the same parameters
    as the views as blocks (the same computation); refusals name the field."""
    data = rows("llava", 8)
    steps = dict(per_device_train_batch_size=4, max_steps=2, learning_rate=1e-1, optim="sgd", synib_weight=1.0,
                 mask_type="full", mask_fill="zero")
    runs = {}
    for share in (True, False):
        model = tiny_vlm("llava").train()
        run = trainer(model, tmp_path / str(share), data, share_view_prefix=share, **steps)
        assert run.view_builder.share_prefix is share
        run.train()
        runs[share] = params(model)
    assert_params_equal(runs[True], runs[False], rtol=1e-5, atol=1e-7)
    dropped = trainer(tiny_vlm("llava").train(), tmp_path / "drop", data, drop_masked_image=True, **steps)
    assert dropped.view_builder.drop_image and dropped.view_builder.share_prefix
    dropped.train()
    with pytest.raises(ValueError, match="share_view_prefix=True, but .*prefix-LM"):
        trainer(tiny_vlm("paligemma"), tmp_path / "p", rows("paligemma"), share_view_prefix=True, **steps)
    with pytest.raises(ValueError, match="drop_masked_image=True drops the whole image .* mask_type='random'"):
        trainer(tiny_vlm("llava"), tmp_path / "r", data, drop_masked_image=True, mask_type="random")
