"""The third round of the bad-input matrix (issue 22): inputs nobody had tried, each now a clear error that names the
field, column, rows or file and the fix, or a documented behaviour. Rows (input → what happens):

Listed in the issue
  1. empty training set                        → "The training set has no samples"
  2. None in a column for some rows            → the column, how many rows and which (Arrow null counts), the fix
  3. mask_patch_size leaving images whole      → the patch and image sizes, the share left untouched, a size that fits
  4. synib_start_step after the last step      → refused before training (it would silently be plain training)
  5. class id out of range at λ = 0            → named against the config's num_labels before the first step
  6. predict on unlabelled rows (λ > 0)        → no `test_loss` (was 0.0)
  7. images with the wrong number of channels  → `pixel_values`, its shape and the config's num_channels
  8. output_dir that is an existing file       → refused when the arguments are built
  9. a full disk while writing a checkpoint    → an OSError naming the checkpoint folder and the free space
 10. a named checkpoint with truncated weights or optimizer state → the file, before anything loads
 11. the public names the README promises      → importable from synib_hf
Our own
 12. streaming data without max_steps          → the Trainer's own error, before anything trains
 13. a modality missing from a later batch     → the key and the batch keys, at that step
 14. images of several sizes in one batch      → the column and the shapes with their rows
 15. bf16 weights, float32 inputs, no autocast → the inputs' and weights' dtypes and the fix
 16. LoRA target_modules that match nothing    → PEFT's error naming the modules, before training
 17. resuming from another model's checkpoint  → both model types named (the Trainer would load nothing, silently)
 18. an evaluation interrupted half-way        → the next evaluation has no stale rows
 19. masked_modalities listing one twice       → refused (its penalty would count twice)
 20. logits_key naming a non-tensor output     → the field and its type
 21. compute_loss_func returning a vector      → "must return the batch's loss as a scalar"
 22. every row of the first batch ignored      → refused (it would train on nothing)
 23. a read-only output_dir                    → refused before training when the run saves
 24. a truncated synib_state.pt                → named before resuming
 25. uint8 (unprocessed) images                → "not run through the image processor"
 26. string labels                             → the column and the fix (label2id)
 27. resume_from_checkpoint naming no folder   → the Trainer's error naming the path
 28. a named checkpoint without trainer_state.json → named
 29. None in a column the model never sees     → trains (only the model's columns are checked)
 30. a corrupt config.json in a checkpoint     → named
 31. float labels for a single-label classifier at λ = 0 → the dtype and the cast to make
 32. resuming with another number of processes → a warning naming the saved states
 33. token rows with only special tokens       → the rows (their text view would equal the clean one)
 34. oracle_coordinates naming an unmapped key → refused (an oracle of a misspelt key destroys nothing)
 35. resume_from_checkpoint=True, no output_dir yet → the Trainer's words (not a FileNotFoundError)
 36. a training set smaller than one dropped batch → refused (it would train no step)
 37. PIL images for the default collator       → the column, the type and the processor to use
 38. token ids beyond a stock model's vocabulary → the inputs' shapes and the vocabulary size, the fix
 39. a model returning a plain tuple           → "return_dict=True"
 40. boolean labels                            → the cast to make
 41. a model with nothing to train             → refused before the first step (λ = 0 too)
"""

import math
import os
import stat

import numpy as np
import pytest
import torch
from torch import nn
from transformers import PretrainedConfig, TrainerCallback
from transformers.modeling_outputs import SequenceClassifierOutput

from synib_hf import MLPFusionConfig, MLPFusionForClassification, SynIBConfig, SynIBTrainer
from tiny_models import CLIPWithHead, as_dataset, image_text_rows, mlp_fusion, tiny_tokenizer, vector_xor


COMMON = dict(report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, logging_steps=1,
              per_device_train_batch_size=4, per_device_eval_batch_size=4, remove_unused_columns=False, max_steps=1)
AB = {"left": ["a"], "right": ["b"]}
IMAGE_TEXT = {"image": ["pixel_values"], "text": ["input_ids", "attention_mask"]}


def args(tmp_path, **kwargs):
    return SynIBConfig(output_dir=str(tmp_path), **{**COMMON, **kwargs})


class Pair(nn.Module):
    """Scores from two float inputs `a` and `b`; its own loss is the cross-entropy of its scores."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.config = PretrainedConfig()

    def forward(self, a=None, b=None, labels=None):
        logits = self.linear(a) + self.linear(b)
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def pair_columns(n=8, **columns):
    rng = np.random.default_rng(0)
    return {"a": rng.normal(size=(n, 3)).astype(np.float32), "b": rng.normal(size=(n, 3)).astype(np.float32),
            "labels": np.arange(n) % 2, **columns}


def synib(tmp_path, model=None, data=None, tokenizer=None, **kwargs):
    options = {"modality_keys": AB} if model is None else {}
    return SynIBTrainer(model=model if model is not None else Pair(), args=args(tmp_path, **{**options, **kwargs}),
                        train_dataset=data if data is not None else as_dataset(pair_columns()),
                        processing_class=tokenizer)


def saved_run(tmp_path, **kwargs):
    """A finished 2-step run of the native MLP with a checkpoint at each step; returns the trainer."""
    trainer = SynIBTrainer(model=mlp_fusion(), args=args(tmp_path, synib_weight=1.0, save_strategy="steps",
                                                         save_steps=1, max_steps=2, **kwargs),
                           train_dataset=as_dataset(vector_xor(16)))
    trainer.train()
    return trainer


# ---- the cases the issue lists --------------------------------------------------------------------------------------

def test_1_an_empty_training_set(tmp_path):
    from datasets import Dataset

    empty = Dataset.from_dict({"a": [], "b": [], "labels": []})
    with pytest.raises(ValueError, match="The training set has no samples"):
        synib(tmp_path, data=empty).train()


def test_2_none_in_a_column_names_the_column_and_rows(tmp_path):
    columns = pair_columns(12)
    a = [list(row) for row in columns["a"]]
    a[9] = None  # far from the first batch: it would fail mid-run
    with pytest.raises(ValueError, match=r"column 'a' is missing \(None\) in 1 rows \(e.g. \[9\]\)"):
        synib(tmp_path, data=as_dataset({**columns, "a": a})).train()


def test_3_a_patch_as_large_as_the_image(tmp_path):
    trainer = SynIBTrainer(model=CLIPWithHead(), args=args(tmp_path, modality_keys=IMAGE_TEXT, mask_patch_size=30),
                           train_dataset=as_dataset(image_text_rows(8)), processing_class=tiny_tokenizer())
    with pytest.raises(ValueError, match=r"mask_patch_size=30 cuts the 30×30 images of 'pixel_values' into 1 "
                                         r"patch\(es\), so at mask_ratio=0.5 a masked view leaves 50% of the images "
                                         r"untouched .* use mask_patch_size <= 14"):
        trainer.train()


def test_4_a_penalty_window_after_the_run(tmp_path):
    with pytest.raises(ValueError, match=r"synib_start_step=8 is at or after the run's last optimizer step \(2\)"):
        synib(tmp_path, synib_start_step=8, max_steps=-1, num_train_epochs=1).train()  # 8 rows / 4 = 2 steps


def test_5_a_class_id_out_of_range_at_lambda_zero(tmp_path):
    data = as_dataset({**vector_xor(8), "labels": np.array([0, 1, 0, 5, 1, 0, 1, 0])})
    with pytest.raises(ValueError, match=r"labels \(the model config's num_labels is 2\): class ids must be in "
                                         r"\[0, 1\] \(or -100 to ignore a row\), got \[5\]"):
        SynIBTrainer(model=mlp_fusion(), args=args(tmp_path, synib_weight=0.0), train_dataset=data).train()


def test_6_predict_on_unlabelled_rows_reports_no_loss(tmp_path):
    trainer = SynIBTrainer(model=mlp_fusion(), args=args(tmp_path, synib_weight=1.0),
                           train_dataset=as_dataset(vector_xor(8)))
    trainer.train()
    unlabelled = as_dataset({**vector_xor(8), "labels": np.full(8, -100)})  # a test split without labels
    output = trainer.predict(unlabelled)
    assert "test_loss" not in output.metrics and output.predictions.shape == (8, 2)


def test_7_images_with_another_number_of_channels(tmp_path):
    rows = image_text_rows(8)
    rows["pixel_values"] = rows["pixel_values"][:, :1]  # grayscale into an RGB tower
    for weight in (0.0, 1.0):
        trainer = SynIBTrainer(model=CLIPWithHead(), args=args(tmp_path, synib_weight=weight,
                                                                modality_keys=IMAGE_TEXT if weight else None),
                               train_dataset=as_dataset(rows), processing_class=tiny_tokenizer())
        with pytest.raises(ValueError, match=r"'pixel_values' has 1 channels \(shape \(4, 1, 30, 30\)\), but the "
                                             r"model's config expects num_channels=3"):
            trainer.train()


def test_8_output_dir_that_is_a_file(tmp_path):
    existing = tmp_path / "results.txt"
    existing.write_text("a user's file")
    with pytest.raises(ValueError, match=r"output_dir=.*results.txt' is an existing file, not a folder"):
        SynIBConfig(output_dir=str(existing), report_to="none")
    assert existing.read_text() == "a user's file"


def test_9_a_full_disk_while_writing_a_checkpoint(tmp_path, monkeypatch):
    import transformers.trainer as trainer_module

    def full_disk(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0: basic_ios::clear: "
                           "iostream error")

    trainer = SynIBTrainer(model=mlp_fusion(), args=args(tmp_path, synib_weight=1.0, save_strategy="steps",
                                                         save_steps=1), train_dataset=as_dataset(vector_xor(8)))
    monkeypatch.setattr(trainer_module.torch, "save", full_disk)
    with pytest.raises(OSError, match=r"Writing .*checkpoint-1 failed \(RuntimeError: .*iostream error\); "
                                      r"[0-9.]+ GiB are free on its disk.*resume_from_checkpoint=True"):
        trainer.train()


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.pt"])
def test_10_a_named_checkpoint_with_a_truncated_file(tmp_path, name):
    saved_run(tmp_path / "run")
    path = tmp_path / "run" / "checkpoint-1" / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    again = SynIBTrainer(model=mlp_fusion(), args=args(tmp_path / "run", synib_weight=1.0, max_steps=2),
                         train_dataset=as_dataset(vector_xor(16)))
    with pytest.raises(ValueError, match=rf"resume_from_checkpoint=.*checkpoint-1' cannot be resumed from: "
                                         rf"{name}.*(truncated|corrupt)"):
        again.train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-1"))


def test_11_every_name_the_readme_promises_is_exported():
    import synib_hf

    for name in ("GaussianXOR", "load_hateful_memes", "write_memes_fixture", "build_model_card", "load_easy_vqa",
                 "SynIBMixin", "SynIBArguments", "synib_objective", "InputViews"):
        assert name in synib_hf.__all__ and getattr(synib_hf, name) is not None


# ---- our own ----------------------------------------------------------------------------------------------------------

def test_12_streaming_data_without_max_steps(tmp_path):
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            columns = pair_columns()
            return iter([{k: v[i] for k, v in columns.items()} for i in range(8)])

    with pytest.raises(ValueError, match="max_steps has to be specified"):
        synib(tmp_path, data=Stream(), max_steps=-1)


def test_13_a_modality_missing_from_a_later_batch(tmp_path):
    calls = []

    def collate(rows):
        calls.append(1)
        batch = {k: torch.as_tensor(np.stack([row[k] for row in rows])) for k in rows[0]}
        if len(calls) > 2:  # the first-batch check and step 1 are fine; step 2 lost its `b`
            batch.pop("b")
        return batch

    trainer = SynIBTrainer(model=Pair(), args=args(tmp_path, modality_keys=AB, max_steps=2,
                                                   train_sampling_strategy="sequential"),
                           train_dataset=as_dataset(pair_columns()), data_collator=collate)
    with pytest.raises(ValueError, match=r"modality_keys maps 'right' to \['b'\], but the batch has no such key"):
        trainer.train()


def test_14_images_of_several_sizes_in_one_batch(tmp_path):
    rows = [{"a": np.zeros(3, np.float32), "b": np.zeros(3 if i % 2 else 4, np.float32), "labels": i % 2}
            for i in range(8)]

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return len(rows)

        def __getitem__(self, i):
            return rows[i]

    with pytest.raises(ValueError, match=r"column 'b' holds values of several shapes in one batch \(\(4,\) in rows "
                                         r"\[0, 2\]; \(3,\) in rows \[1, 3\]\)"):
        synib(tmp_path, data=Rows()).train()


def test_15_bf16_weights_with_float32_inputs_and_no_autocast(tmp_path):
    with pytest.raises(ValueError, match=r"Pair failed on the first training batch \(a \(4, 3\) float32.*The model's "
                                         r"weights are bfloat16 and the float inputs float32"):
        synib(tmp_path, model=Pair().to(torch.bfloat16), modality_keys=AB).train()


def test_16_lora_target_modules_that_match_nothing(tmp_path):
    from peft import LoraConfig

    with pytest.raises(ValueError, match="not_a_module"):
        SynIBTrainer(model=mlp_fusion(), args=args(tmp_path), train_dataset=as_dataset(vector_xor(8)),
                     peft_config=LoraConfig(target_modules=["not_a_module"]))


def test_17_resuming_from_another_models_checkpoint(tmp_path):
    from tiny_models import layoutlmv3

    saved_run(tmp_path / "mlp")
    other = SynIBTrainer(model=layoutlmv3(), args=args(tmp_path / "other", synib_weight=0.0),
                         train_dataset=as_dataset(image_text_rows(8, image_size=28, bbox=True)),
                         processing_class=tiny_tokenizer())
    with pytest.raises(ValueError, match=r"holds a 'synib_mlp_fusion' model, but this trainer trains a 'layoutlmv3' model"):
        other.train(resume_from_checkpoint=str(tmp_path / "mlp" / "checkpoint-2"))
    custom = synib(tmp_path / "custom")  # a model without a config: told by its weights' names
    with pytest.raises(ValueError, match=r"holds none of Pair's weights"):
        custom.train(resume_from_checkpoint=str(tmp_path / "mlp" / "checkpoint-2"))


def test_18_an_interrupted_evaluation_leaves_no_stale_rows(tmp_path):
    interrupted = []

    def metrics(prediction):
        if not interrupted:
            interrupted.append(1)
            raise KeyboardInterrupt
        return {}

    first, second = as_dataset(vector_xor(16, seed=1)), as_dataset(vector_xor(12, seed=2))
    deterministic = dict(synib_weight=1.0, mask_type="full", mask_fill="zero")
    trainer = SynIBTrainer(model=mlp_fusion(), args=args(tmp_path, **deterministic), train_dataset=first,
                           compute_metrics=metrics)
    with pytest.raises(KeyboardInterrupt):
        trainer.evaluate(first)  # stopped after its batches were read
    again = trainer.evaluate(second)
    fresh = SynIBTrainer(model=trainer.model, args=args(tmp_path / "fresh", **deterministic),
                         train_dataset=first).evaluate(second)
    for key in ("eval_loss", "eval_synib/penalty_x1", "eval_synib/masked_accuracy_x2"):
        assert again[key] == pytest.approx(fresh[key], rel=1e-6), key


def test_19_a_modality_listed_twice(tmp_path):
    with pytest.raises(ValueError, match=r"masked_modalities lists \['x1'\] more than once"):
        args(tmp_path, masked_modalities=["x1", "x1"])


def test_20_a_logits_key_naming_a_tuple(tmp_path):
    class Hidden(Pair):
        def forward(self, a=None, b=None, labels=None):
            return {"logits": self.linear(a) + self.linear(b), "hidden_states": (a, b)}

    with pytest.raises(ValueError, match=r"'hidden_states', which holds a tuple, not a \(batch, num_labels\) tensor"):
        synib(tmp_path, model=Hidden(), modality_keys=AB, logits_key="hidden_states").train()


def test_21_a_compute_loss_func_that_returns_a_vector(tmp_path):
    trainer = SynIBTrainer(model=Pair(), args=args(tmp_path, modality_keys=AB), train_dataset=as_dataset(pair_columns()),
                           compute_loss_func=lambda outputs, labels, num_items_in_batch=None: outputs["logits"][:, 0])
    with pytest.raises(ValueError, match=r"compute_loss_func must return the batch's loss as a scalar tensor, got "
                                         r"\(2,\)"):
        trainer.train()


def test_22_a_first_batch_of_ignored_rows(tmp_path):
    with pytest.raises(ValueError, match="Every row of the first training batch is labelled -100"):
        synib(tmp_path, data=as_dataset(pair_columns(labels=np.full(8, -100)))).train()


def test_23_a_read_only_output_dir(tmp_path, monkeypatch):
    import synib_hf.trainers.training_state as training_state

    monkeypatch.setattr(training_state.os, "access", lambda path, mode: False)  # root may write anywhere: simulate
    with pytest.raises(PermissionError, match=r"output_dir=.* cannot be written .*\(save_strategy='steps'\)"):
        synib(tmp_path / "out", save_strategy="steps", save_steps=1).train()


def test_24_a_truncated_synib_state(tmp_path):
    saved_run(tmp_path / "run")
    path = tmp_path / "run" / "checkpoint-1" / "synib_state.pt"
    path.write_bytes(path.read_bytes()[:100])
    again = SynIBTrainer(model=mlp_fusion(), args=args(tmp_path / "run", synib_weight=1.0, max_steps=2),
                         train_dataset=as_dataset(vector_xor(16)))
    with pytest.raises(ValueError, match=r"cannot be resumed from: synib_state.pt: truncated or not a torch file"):
        again.train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-1"))


def test_25_unprocessed_integer_images(tmp_path):
    rows = image_text_rows(8)
    rows["pixel_values"] = (rows["pixel_values"] * 50 + 128).clip(0, 255).astype(np.uint8)
    trainer = SynIBTrainer(model=CLIPWithHead(), args=args(tmp_path, modality_keys=IMAGE_TEXT),
                           train_dataset=as_dataset(rows), processing_class=tiny_tokenizer())
    with pytest.raises(ValueError, match=r"'pixel_values' holds torch.int64 values, not floats: the images were not "
                                         r"run through the image processor"):
        trainer.train()


def test_26_string_labels(tmp_path):
    with pytest.raises(ValueError, match=r"column 'labels' holds strings \('cat', \.\.\.\), which the data collator drops: "
                                         r"map them to class ids"):
        synib(tmp_path, data=as_dataset(pair_columns(labels=["cat", "dog"] * 4))).train()


def test_27_resume_from_a_folder_that_does_not_exist(tmp_path):
    with pytest.raises(ValueError, match=r"Can't find a valid checkpoint at .*nowhere"):
        synib(tmp_path).train(resume_from_checkpoint=str(tmp_path / "nowhere"))


def test_28_a_named_checkpoint_without_trainer_state(tmp_path):
    saved_run(tmp_path / "run")
    os.remove(tmp_path / "run" / "checkpoint-1" / "trainer_state.json")
    again = SynIBTrainer(model=mlp_fusion(), args=args(tmp_path / "run", synib_weight=1.0, max_steps=2),
                         train_dataset=as_dataset(vector_xor(16)))
    with pytest.raises(ValueError, match=r"cannot be resumed from: no trainer_state.json"):
        again.train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-1"))


def test_29_none_in_a_column_the_model_never_sees_is_fine(tmp_path):
    columns = pair_columns()
    note = ["x"] * 8
    note[5] = None
    trainer = synib(tmp_path, data=as_dataset({**columns, "note": note}), remove_unused_columns=True)
    trainer.train()
    assert trainer.state.global_step == 1


def test_30_a_corrupt_config_in_a_named_checkpoint(tmp_path):
    saved_run(tmp_path / "run")
    (tmp_path / "run" / "checkpoint-1" / "config.json").write_text("{not json")
    again = SynIBTrainer(model=mlp_fusion(), args=args(tmp_path / "run", synib_weight=1.0, max_steps=2),
                         train_dataset=as_dataset(vector_xor(16)))
    with pytest.raises(ValueError, match=r"cannot be resumed from: config.json: is not valid JSON"):
        again.train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-1"))


def test_31_float_labels_for_a_single_label_classifier_at_lambda_zero(tmp_path):
    model = MLPFusionForClassification(MLPFusionConfig(modality_dims={"x1": 6, "x2": 6}, hidden_size=16,
                                                       problem_type="single_label_classification"))
    data = as_dataset({**vector_xor(8), "labels": (np.arange(8) % 2).astype(np.float32)})
    with pytest.raises(ValueError, match=r"labels are floats \(torch.float32\), but MLPFusionForClassification is a "
                                         r"single-label classifier"):
        SynIBTrainer(model=model, args=args(tmp_path, synib_weight=0.0), train_dataset=data).train()


def test_32_resuming_with_another_number_of_processes(tmp_path):
    saved_run(tmp_path / "run")
    checkpoint = tmp_path / "run" / "checkpoint-1"
    os.rename(checkpoint / "synib_state.pt", checkpoint / "synib_state_0.pt")  # as two processes save it
    (checkpoint / "synib_state_1.pt").write_bytes((checkpoint / "synib_state_0.pt").read_bytes())
    again = SynIBTrainer(model=mlp_fusion(), args=args(tmp_path / "run", synib_weight=1.0, max_steps=2),
                         train_dataset=as_dataset(vector_xor(16)))
    with pytest.warns(UserWarning, match=r"holds SynIB's state of 2 process\(es\) \(synib_state_0.pt, "
                                         r"synib_state_1.pt\) and this run has 1"):
        again.train(resume_from_checkpoint=str(checkpoint))


def test_33_token_rows_with_only_special_tokens(tmp_path):
    rows = image_text_rows(8)
    rows["input_ids"][2, 1:] = 0  # [CLS] then padding: nothing to mask
    rows["input_ids"][2, 1] = 3  # [SEP]
    rows["attention_mask"][2] = (rows["input_ids"][2] != 0).astype(rows["attention_mask"].dtype)
    trainer = SynIBTrainer(model=CLIPWithHead(), args=args(tmp_path, modality_keys=IMAGE_TEXT),
                           train_dataset=as_dataset(rows), processing_class=tiny_tokenizer())
    with pytest.raises(ValueError, match=r"rows \[2\] of 'input_ids' hold only special tokens"):
        trainer.train()


def test_34_oracle_coordinates_of_an_unmapped_key(tmp_path):
    with pytest.raises(ValueError, match=r"oracle_coordinates names \['c'\], which no modality maps"):
        synib(tmp_path, mask_type="oracle", oracle_coordinates={"a": [0], "c": [1]}).train()


def test_35_resume_true_before_output_dir_exists(tmp_path):
    with pytest.raises(ValueError, match=r"^No valid checkpoint found in output directory \(.*not-yet\)$"):
        synib(tmp_path / "not-yet").train(resume_from_checkpoint=True)


def test_36_a_training_set_smaller_than_one_dropped_batch(tmp_path):
    for weight in (0.0, 0.1):
        with pytest.raises(ValueError, match=r"The training set has 3 rows, fewer than one batch \(4\), and "
                                             r"dataloader_drop_last=True drops"):
            synib(tmp_path, data=as_dataset(pair_columns(3)), synib_weight=weight, dataloader_drop_last=True).train()


def test_37_pil_images_for_the_default_collator(tmp_path):
    from PIL import Image

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return {"image": Image.new("RGB", (8, 8)), "a": np.zeros(3, np.float32), "labels": i % 2}

    with pytest.raises(ValueError, match=r"column 'image' holds Image objects, which the collator cannot make a tensor "
                                         r"of: run the processor"):
        synib(tmp_path, data=Rows()).train()


def test_38_token_ids_beyond_a_stock_models_vocabulary(tmp_path):
    rows = image_text_rows(8)
    rows["input_ids"] = rows["input_ids"] + 500 * (rows["input_ids"] > 4)  # the vocabulary has 64 tokens
    trainer = SynIBTrainer(model=CLIPWithHead(), args=args(tmp_path, modality_keys=IMAGE_TEXT),
                           train_dataset=as_dataset(rows), processing_class=tiny_tokenizer())
    with pytest.raises(ValueError, match=r"failed on the first training batch \(pixel_values \(4, 3, 30, 30\) float32, "
                                         r"input_ids \(4, 8\) int64.*beyond the model's vocabulary \(64 tokens\)"):
        trainer.train()


def test_39_a_model_returning_a_plain_tuple(tmp_path):
    class Tuple(Pair):
        def forward(self, a=None, b=None, labels=None):
            return (self.linear(a) + self.linear(b),)

    with pytest.raises(ValueError, match=r"The model returned a plain tuple \(1 items\), not named outputs.*"
                                         r"return_dict=True"):
        synib(tmp_path, model=Tuple(), modality_keys=AB).train()


def test_40_boolean_labels(tmp_path):
    data = as_dataset({**vector_xor(8), "labels": (np.arange(8) % 2).astype(bool)})
    with pytest.raises(ValueError, match=r"labels are booleans; the loss needs class ids"):
        SynIBTrainer(model=mlp_fusion(), args=args(tmp_path, synib_weight=1.0), train_dataset=data).train()


def test_41_a_model_with_nothing_to_train(tmp_path):
    model = mlp_fusion().requires_grad_(False)
    for weight in (0.0, 1.0):
        with pytest.raises(ValueError, match=r"No parameter of MLPFusionForClassification is trainable.*peft_config"):
            SynIBTrainer(model=model, args=args(tmp_path, synib_weight=weight),
                         train_dataset=as_dataset(vector_xor(8))).train()
