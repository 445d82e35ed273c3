"""`SynIBSFTTrainer` on TRL's own data and collator (conversational rows with images, tiny random LLaVA, Qwen2-VL and
SmolVLM over word-level versions of their chat templates, offline): λ = 0 is `SFTTrainer` bit for bit (full
fine-tuning and LoRA), the views ignore their modality, the vision tower runs once per step, gradient accumulation and
resuming are exact, and the options that cannot carry views are refused with the reason."""

import copy
import os

import pytest
import torch


trl = pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402

from synib_hf import SynIBSFTConfig, SynIBSFTTrainer, vlm_lora_config  # noqa: E402
from synib_hf.trainers.trainer_compat import TRL_CHECKED_AGAINST, TRL_PRIVATE_MEMBERS  # noqa: E402
from tiny_vlms import CHAT_FAMILIES, CHAT_VOCAB, chat_rows, tiny_chat_processor, tiny_chat_vlm  # noqa: E402


VISION = {"llava": "vision_tower", "qwen2_vl": "visual", "smolvlm": "vision_model"}


def dataset(n=8, seed=0):
    return Dataset.from_list(chat_rows(n, seed=seed))


def config(tmp_path, **overrides):
    values = dict(output_dir=str(tmp_path), report_to="none", use_cpu=True, bf16=False, max_length=None,
                  per_device_train_batch_size=4, max_steps=2, learning_rate=1e-2, logging_steps=1,
                  save_strategy="no", seed=0, assistant_only_loss=True, answer_candidates=["yes", "no"],
                  gradient_checkpointing=False, dataloader_drop_last=True, disable_tqdm=True)
    return {**values, **overrides}


def trainer(family, tmp_path, model=None, peft=False, synib=True, train=None, **overrides):
    model = model if model is not None else tiny_chat_vlm(family)
    kwargs = dict(processing_class=tiny_chat_processor(family), train_dataset=train or dataset(),
                  peft_config=vlm_lora_config(model) if peft else None)
    if synib:
        args = SynIBSFTConfig(**config(tmp_path, **overrides))
        return SynIBSFTTrainer(model, args, **kwargs)
    args = trl.SFTConfig(**{k: v for k, v in config(tmp_path, **overrides).items() if k != "answer_candidates"})
    return trl.SFTTrainer(model, args, **kwargs)


def weights(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("peft", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("family", CHAT_FAMILIES)
def test_weight_zero_is_sft_trainer_bit_for_bit(family, peft, tmp_path):
    model = tiny_chat_vlm(family)
    runs = []
    for synib in (False, True):
        run = trainer(family, tmp_path / str(synib), model=copy.deepcopy(model), peft=peft, synib=synib,
                      **({"synib_weight": 0.0} if synib else {}))
        run.train()
        runs.append((run, weights(run.model)))
    (plain, plain_weights), (ours, our_weights) = runs
    losses = [[h["loss"] for h in run.state.log_history if "loss" in h] for run, _ in runs]
    assert losses[0] == losses[1] and len(losses[0]) == 2
    assert plain_weights.keys() == our_weights.keys()
    changed = [name for name in plain_weights if not torch.equal(plain_weights[name], weights(model).get(name,
                                                                                                      plain_weights[name]))]
    assert changed or peft  # the run trained something
    for name, value in plain_weights.items():
        assert torch.equal(value, our_weights[name]), name
    for key in ("entropy", "mean_token_accuracy", "num_tokens"):  # TRL's own metrics are logged as by SFTTrainer
        assert [h.get(key) for h in plain.state.log_history] == [h.get(key) for h in ours.state.log_history]


# ---- SynIB's views on TRL's batches ---------------------------------------------------------------------------------


def question_words(input_ids):
    words = sorted(i for token, i in CHAT_VOCAB.items() if token.startswith("w"))
    return torch.isin(input_ids, torch.tensor(words))


@pytest.mark.parametrize("family", CHAT_FAMILIES)
def test_views_read_trls_batches_and_ignore_their_modality(family, tmp_path):
    run = trainer(family, tmp_path, synib_weight=1.0, mask_type="full", mask_fill="zero")
    rows, other = chat_rows(4, seed=0), chat_rows(4, seed=7)
    new_images = [{**row, "images": o["images"]} for row, o in zip(rows, other)]
    new_questions = [{**row, "messages": [o["messages"][0], row["messages"][1]]} for row, o in zip(rows, other)]
    batches = [run.data_collator(copy.deepcopy(r)) for r in (rows, new_images, new_questions)]
    base = batches[0]
    assert not torch.equal(batches[2]["input_ids"], base["input_ids"])
    # the text view overwrites exactly the user's question, derived from TRL's labels and the chat template
    labels = base["labels"]
    answers = (labels != -100).int().argmax(dim=1) - 1
    positions = run.view_builder.positions(base, labels=labels, readout_positions=answers)
    assert positions["text"].equal(question_words(base["input_ids"]))
    model = run.model.eval()
    with torch.no_grad():
        image, new_image, new_question = (run.view_builder(model, batch, training=False).masked for batch in batches)
    torch.testing.assert_close(new_image[0], image[0], rtol=0, atol=1e-6)  # the image view ignores the image
    torch.testing.assert_close(new_question[1], image[1], rtol=0, atol=1e-6)  # the text view ignores the question
    assert (new_image[1] - image[1]).abs().max() > 1e-5 and (new_question[0] - image[0]).abs().max() > 1e-5


@pytest.mark.parametrize("share", [None, False], ids=["packed", "blocks"])
@pytest.mark.parametrize("family", CHAT_FAMILIES)
def test_the_vision_tower_runs_once_per_step_on_the_batchs_images(family, share, tmp_path):
    run = trainer(family, tmp_path, synib_weight=1.0, max_steps=3, share_view_prefix=share)
    seen = []
    tower = getattr(run.core_model().model, VISION[family])
    handle = tower.register_forward_pre_hook(lambda module, args, kwargs: seen.append(1), with_kwargs=True)
    try:
        run.train()
    finally:
        handle.remove()
    assert len(seen) == 3
    assert run.view_builder.share_prefix is (share is None)
    assert all(h["synib/penalty_image"] >= 0 for h in run.state.log_history if "loss" in h)


def test_gradient_accumulation_gives_the_full_batchs_step(tmp_path):
    model = tiny_chat_vlm("llava")
    options = dict(synib_weight=1.0, mask_type="full", mask_fill="zero", optim="sgd", learning_rate=0.1,
                   max_steps=2)
    runs = []
    for batch, steps in ((4, 1), (2, 2)):
        run = trainer("llava", tmp_path / str(batch), model=copy.deepcopy(model), per_device_train_batch_size=batch,
                      gradient_accumulation_steps=steps, **options)
        run.train()
        runs.append(weights(run.model))
    for name, value in runs[0].items():
        torch.testing.assert_close(runs[1][name], value, rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.parametrize("family, peft", [("llava", False), ("qwen2_vl", True), ("smolvlm", True)],
                         ids=["llava-full", "qwen2_vl-lora", "smolvlm-lora"])
def test_resuming_equals_an_uninterrupted_run(family, peft, tmp_path):
    model = tiny_chat_vlm(family)
    options = dict(synib_weight=1.0, max_steps=4, save_strategy="steps", save_steps=2)  # random masks, ema_noise
    straight = trainer(family, tmp_path / "straight", model=copy.deepcopy(model), peft=peft, **options)
    straight.train()
    resumed = trainer(family, tmp_path / "resumed", model=copy.deepcopy(model), peft=peft, **options)
    resumed.train(resume_from_checkpoint=str(tmp_path / "straight" / "checkpoint-2"))
    expected, got = weights(straight.model), weights(resumed.model)
    assert any(not torch.equal(expected[n], weights(model).get(n, expected[n])) for n in expected) or peft
    for name, value in expected.items():
        assert torch.equal(got[name], value), name
    losses = [[h["loss"] for h in run.state.log_history if "loss" in h] for run in (straight, resumed)]
    assert losses[1] == losses[0]  # the resumed run's history: the checkpoint's two steps, then its own two


def test_prompt_completion_rows_need_no_assistant_mask(tmp_path):
    rows = [{"prompt": [r["messages"][0]], "completion": [r["messages"][1]], "images": r["images"]}
            for r in chat_rows(8)]
    run = trainer("qwen2_vl", tmp_path, synib_weight=1.0, assistant_only_loss=False, train=Dataset.from_list(rows))
    batch = run.data_collator(copy.deepcopy(rows[:4]))
    labels = batch["labels"]
    answers = (labels != -100).int().argmax(dim=1) - 1
    positions = run.view_builder.positions(batch, labels=labels, readout_positions=answers)
    assert positions["text"].equal(question_words(batch["input_ids"]))
    run.train()
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in run.state.log_history if "loss" in h)


# ---- refusals -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option, why", [
    (dict(packing=True), "packing=True puts several examples in one row"),
    (dict(padding_free=True), "padding_free=True puts several examples in one row"),
    (dict(loss_type="dft"), "loss_type='dft': SynIB computes the clean view's causal-LM loss"),
])
def test_options_that_cannot_carry_views_are_refused(option, why, tmp_path):
    with pytest.raises(ValueError, match=why):
        SynIBSFTConfig(**config(tmp_path, **option))
    SynIBSFTConfig(**config(tmp_path, **option, synib_weight=0.0))  # plain SFT takes them (TRL decides)


def test_a_fully_supervised_conversation_is_refused_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match="supervises the whole conversation .* assistant_only_loss=True"):
        trainer("llava", tmp_path, synib_weight=1.0, assistant_only_loss=False)


def test_a_plain_sft_config_is_converted_and_answers_are_asked_for(tmp_path):
    args = trl.SFTConfig(**{k: v for k, v in config(tmp_path).items() if k != "answer_candidates"})
    with pytest.raises(ValueError, match="answers in tokens: set answer_candidates"):
        SynIBSFTTrainer(tiny_chat_vlm("llava"), args, train_dataset=dataset(),
                        processing_class=tiny_chat_processor("llava"))


def test_a_missing_trl_names_the_extra(tmp_path):
    import subprocess
    import sys

    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['trl'] = None\n")
    code = "import synib_hf\ntry:\n    synib_hf.SynIBSFTTrainer\nexcept ImportError as e:\n    print(e)\n"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(blocker)},
                         capture_output=True, text=True, timeout=300)
    assert "pip install 'synib-hf[trl]'" in out.stdout, out.stderr[-2000:]


def test_trls_token_count_goes_on_while_the_views_compute_the_loss(tmp_path):
    logs = []
    for weight, batching in ((0.0, "concatenated"), (1.0, "concatenated"), (1.0, "sequential")):
        run = trainer("llava", tmp_path / f"{weight}{batching}", synib_weight=weight, max_steps=3,
                      view_batching=batching)
        run.train()
        logs.append([h["num_tokens"] for h in run.state.log_history if "loss" in h])
    assert logs[0] == logs[1] == logs[2] and logs[0][-1] > logs[0][0] > 0  # sequential: SFTTrainer's loss counts


# ---- the recipe and the compatibility records ---------------------------------------------------------------------


def test_the_trl_recipe_fine_tunes_a_tiny_vlm_with_lora_offline(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "examples" / "trl_sft_vlm.py"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(script), "--output_dir", str(tmp_path / "out"), "--max_steps", "12",
                             "--disable_tqdm", "true"], capture_output=True, text=True, timeout=300, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"eval_loss", "eval_synib/penalty_image", "eval_synib/penalty_text", "eval_synib/clean_accuracy"} <= set(
        metrics)
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "README.md"} <= written  # LoRA adapters and a card
    assert "synib" in (tmp_path / "out" / "README.md").read_text().lower()


@pytest.mark.parametrize("member", TRL_PRIVATE_MEMBERS, ids=lambda m: m.name)
def test_each_trl_private_member_has_the_recorded_signature(member, tmp_path):
    import inspect

    where = f"(checked against {TRL_CHECKED_AGAINST}); synib-hf uses it for: {member.use}. Update trainer_compat.py."
    if member.parameters is None:  # an attribute, set on instances
        run = trainer("llava", tmp_path, synib=False)
        assert hasattr(run, member.name), f"SFTTrainer.{member.name} no longer exists {where}"
        return
    function = getattr(trl.SFTTrainer, member.name, None)
    assert function is not None, f"SFTTrainer.{member.name} no longer exists {where}"
    assert tuple(inspect.signature(function).parameters) == member.parameters, f"SFTTrainer.{member.name} moved {where}"


def test_at_most_eight_trainer_methods_are_overridden():
    from transformers import Trainer

    overridden = set()
    for klass in SynIBSFTTrainer.__mro__:
        if klass.__module__.startswith("synib_hf"):
            overridden |= {name for name, value in vars(klass).items() if callable(value) and hasattr(Trainer, name)
                           and (name == "__init__" or not name.startswith("__"))}
    assert len(overridden) <= 8, sorted(overridden)
