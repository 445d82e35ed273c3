"""The balancing baselines (trainers/balancing.py, trainers/mmpareto.py) do what their papers say, on constructed
cases: the gradients they apply are checked against plain training of the same model on the same batch (SGD, no
clipping, so an update is −lr × the gradient)."""

import math

import numpy as np
import pytest
import torch

from synib_hf import (
    BalancingConfig,
    MLBTrainer,
    MMParetoTrainer,
    MultilossTrainer,
    OGMGETrainer,
    SynIBConfig,
    SynIBTrainer,
    UnimodalEnsembleTrainer,
)
from synib_hf.balancing import true_class_probability
from synib_hf.tasks import classification_loss as task_loss
from tiny_models import CLIPWithHead, LinearFusion, as_dataset, mlp_fusion, vector_xor


LR = 0.5
STEP = dict(report_to="none", use_cpu=True, max_steps=1, disable_tqdm=True, save_strategy="no", logging_steps=1,
            per_device_train_batch_size=16, learning_rate=LR, optim="sgd", max_grad_norm=0.0, seed=0,
            train_sampling_strategy="sequential")


def balancing_args(tmp_path, **kwargs):
    return BalancingConfig(output_dir=str(tmp_path), **{**STEP, **kwargs})


def synib_args(tmp_path, **kwargs):
    return SynIBConfig(output_dir=str(tmp_path), **{**STEP, "synib_weight": 0.0, **kwargs})


def params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def updates(trainer_class, args, build, columns):
    """Train one SGD step; the parameter changes, the first log line and the trainer."""
    model = build()
    before = params(model)
    trainer = trainer_class(model=model, args=args, train_dataset=as_dataset(columns))
    trainer.train()
    return {k: v - before[k] for k, v in params(model).items()}, trainer.state.log_history[0], trainer


def all_ones(n=16):
    return {**vector_xor(n), "labels": np.ones(n, dtype=np.int64)}


def lopsided(seed=0, **overrides):
    """The x1 head is sure of class 1 and the x2 head of class 0: on all-ones labels x1 is far ahead (ρ ≈ 20)."""
    model = mlp_fusion(seed=seed, **overrides)
    with torch.no_grad():
        for modality, bias in (("x1", [0.0, 3.0]), ("x2", [3.0, 0.0])):
            head = model.unimodal[modality]
            head.weight.mul_(0.1)  # non-zero, so multi-loss objectives still reach the encoders
            head.bias.copy_(torch.tensor(bias))
    return model


def scores(build, columns):
    """s_m = Σ_i p_m(y_i | x_i) of the unimodal heads at the initial weights."""
    batch = {k: torch.as_tensor(v) for k, v in columns.items()}
    with torch.no_grad():
        unimodal = build()(**batch, output_unimodal_logits=True).unimodal_logits
    return torch.stack([true_class_probability(u, batch["labels"]).sum() for u in unimodal])


def assert_scaled(modulated, plain, prefix, coefficient):
    keys = [k for k in plain if k.startswith(prefix)]
    assert keys
    for key in keys:
        torch.testing.assert_close(modulated[key], coefficient * plain[key], rtol=1e-5, atol=1e-7)


# ---- OGM-GE -----------------------------------------------------------------------------------------------------------

def test_ogm_scales_the_dominant_encoder_by_one_minus_tanh_alpha_rho_and_leaves_the_other(tmp_path):
    alpha, columns = 0.01, all_ones()
    s1, s2 = scores(lopsided, columns).tolist()
    expected = 1 - math.tanh(alpha * s1 / s2)
    assert s1 / s2 > 15 and expected < 0.85  # a case where the coefficient is far from 1
    plain, _, _ = updates(SynIBTrainer, synib_args(tmp_path / "plain"), lopsided, columns)
    modulated, log, _ = updates(OGMGETrainer, balancing_args(tmp_path / "ogm", ogm_alpha=alpha,
                                                             ogm_gradient_noise=False), lopsided, columns)
    assert log["synib/coefficient_x1"] == pytest.approx(expected, rel=1e-6) and log["synib/coefficient_x2"] == 1.0
    assert_scaled(modulated, plain, "encoders.x1.", expected)
    assert_scaled(modulated, plain, "encoders.x2.", 1.0)
    for head in ("fusion.", "classifier.", "unimodal."):  # only the encoders are modulated
        assert_scaled(modulated, plain, head, 1.0)


def test_ogm_ge_noise_has_each_gradients_spread_on_both_encoders_only(tmp_path):
    build = lambda: lopsided(hidden_size=64)  # noqa: E731 - 64×64 weights: enough entries to measure a spread
    columns = all_ones()
    plain, _, _ = updates(SynIBTrainer, synib_args(tmp_path / "plain"), build, columns)
    quiet, _, _ = updates(OGMGETrainer, balancing_args(tmp_path / "ogm", ogm_gradient_noise=False), build, columns)
    noisy, _, _ = updates(OGMGETrainer, balancing_args(tmp_path / "ge"), build, columns)
    again, _, _ = updates(OGMGETrainer, balancing_args(tmp_path / "ge2"), build, columns)
    for key in noisy:
        if key.startswith("encoders."):
            noise = (quiet[key] - noisy[key]) / LR  # update = −lr·(k·g + ε)
            assert noise.std(correction=0).item() == pytest.approx((plain[key] / LR).std(correction=0).item(),
                                                                   rel=0.1 if noise.numel() > 1000 else 0.5)
        else:
            torch.testing.assert_close(noisy[key], quiet[key], rtol=0, atol=0)
        torch.testing.assert_close(noisy[key], again[key], rtol=0, atol=0)  # the noise is seeded


# ---- MLB ----------------------------------------------------------------------------------------------------------

def test_mlb_scales_each_encoder_of_the_multiloss_gradient_by_its_coefficient(tmp_path):
    alpha, columns = 0.5, all_ones()
    s1, s2 = scores(lopsided, columns).tolist()
    k1, k2 = 1 + math.tanh(alpha * (s2 / s1 - 1)), 1 + math.tanh(alpha * (s1 / s2 - 1))
    assert k1 < 0.7 and k2 > 1.5  # x1 (ahead) slowed down, x2 sped up
    plain, _, _ = updates(MultilossTrainer, balancing_args(tmp_path / "multiloss"), lopsided, columns)
    modulated, log, _ = updates(MLBTrainer, balancing_args(tmp_path / "mlb", mlb_alpha=alpha), lopsided, columns)
    assert log["synib/coefficient_x1"] == pytest.approx(k1, rel=1e-6)
    assert log["synib/coefficient_x2"] == pytest.approx(k2, rel=1e-6)
    assert_scaled(modulated, plain, "encoders.x1.", k1)
    assert_scaled(modulated, plain, "encoders.x2.", k2)
    for head in ("fusion.", "classifier.", "unimodal."):
        assert_scaled(modulated, plain, head, 1.0)


# ---- MMPareto -------------------------------------------------------------------------------------------------------

def conflicting(seed=0):
    """Linear fusion wired against the unimodal heads (fused logits = −(u1 + u2)), so that the multimodal and the
    unimodal gradient on an encoder can point in opposite directions (with this seed: x2's do, x1's do not)."""
    model = LinearFusion(seed=seed)
    with torch.no_grad():
        model.fusion.weight.copy_(-torch.cat([model.unimodal["x1"].weight, model.unimodal["x2"].weight], dim=1))
        model.fusion.bias.copy_(-(model.unimodal["x1"].bias + model.unimodal["x2"].bias))
    return model


def test_mmpareto_combines_conflicting_gradients_by_min_norm_and_sums_agreeing_ones(tmp_path):
    gamma, columns = 1.5, vector_xor(16)
    batch = {k: torch.as_tensor(v) for k, v in columns.items()}
    reference = conflicting()
    reference.synib_detach_unimodal_heads = False  # as MMPareto trains it: the unimodal losses reach the encoders
    outputs = reference(**batch, output_unimodal_logits=True)
    multimodal = task_loss(outputs.logits, batch["labels"])
    applied, log, _ = updates(MMParetoTrainer, balancing_args(tmp_path, mmpareto_gamma=gamma,
                                                              remove_unused_columns=False), conflicting, columns)
    conflicts = []
    for index, modality in enumerate(("x1", "x2")):
        encoder = list(reference.encoders[modality].parameters())
        unimodal = task_loss(outputs.unimodal_logits[index], batch["labels"])
        g_mm = torch.cat([g.flatten() for g in torch.autograd.grad(multimodal, encoder, retain_graph=True)])
        g_u = torch.cat([g.flatten() for g in torch.autograd.grad(unimodal, encoder, retain_graph=True)])
        cosine = torch.nn.functional.cosine_similarity(g_mm, g_u, dim=0).item()
        assert log[f"synib/pareto_cosine_{modality}"] == pytest.approx(cosine, abs=1e-5)
        step = -torch.cat([applied[f"encoders.{modality}.{name}"].flatten() for name in ("weight", "bias")]) / LR
        if cosine > 0:  # no conflict: the plain sum, times γ
            torch.testing.assert_close(step, gamma * (g_mm + g_u), rtol=1e-4, atol=1e-6)
            continue
        conflicts.append(modality)
        assert 0 < log[f"synib/pareto_weight_{modality}"] < 1
        assert (g_mm + g_u) @ g_mm < 0 or (g_mm + g_u) @ g_u < 0  # the plain sum would increase one loss...
        assert step @ g_mm >= 0 and step @ g_u >= 0  # ...the combined step increases neither, to first order
        assert step.norm().item() == pytest.approx(gamma * (g_mm + g_u).norm().item(), rel=1e-4)
    assert conflicts == ["x2"]  # the constructed case has one conflict and one agreement
    fusion_gradient = torch.autograd.grad(multimodal, reference.fusion.weight)[0]
    torch.testing.assert_close(applied["fusion.weight"], -LR * fusion_gradient)  # heads keep their plain gradient


# ---- unimodal ensemble ------------------------------------------------------------------------------------------

def test_ensemble_trains_each_modality_alone_and_predicts_with_the_sum_of_the_heads(tmp_path):
    columns = vector_xor(32)
    swapped = {**columns, "x2": columns["x2"][::-1].copy()}  # x2 changed, x1 and the labels not
    first, _, trainer = updates(UnimodalEnsembleTrainer, balancing_args(tmp_path / "a", max_steps=2), mlp_fusion,
                                columns)
    second, _, _ = updates(UnimodalEnsembleTrainer, balancing_args(tmp_path / "b", max_steps=2), mlp_fusion, swapped)
    for key in first:
        if key.startswith(("fusion.", "classifier.")):
            assert not first[key].any()  # the fusion head is not trained
        if key.startswith(("encoders.x1.", "unimodal.x1.")):
            torch.testing.assert_close(first[key], second[key], rtol=0, atol=0)  # x1 never sees x2
        if key.startswith("encoders.x2."):
            assert not torch.equal(first[key], second[key])
    test = as_dataset(vector_xor(8, seed=1))
    predicted = trainer.predict(test)
    batch = {k: torch.as_tensor(np.asarray(v)) for k, v in vector_xor(8, seed=1).items()}
    with torch.no_grad():
        expected = trainer.model(**batch, output_unimodal_logits=True).unimodal_logits.sum(dim=0)
    np.testing.assert_allclose(predicted.predictions, expected.numpy(), rtol=1e-6)
    assert predicted.metrics["test_loss"] == pytest.approx(task_loss(expected, batch["labels"]).item(), rel=1e-5)


# ---- every method: accumulation, evaluation, errors -----------------------------------------------------------------

METHODS = {
    "ogm_ge": (OGMGETrainer, {"ogm_alpha": 0.5}),
    "mlb": (MLBTrainer, {"mlb_alpha": 1.0}),
    "mmpareto": (MMParetoTrainer, {}),
    "ensemble": (UnimodalEnsembleTrainer, {}),
}


@pytest.mark.parametrize("method", list(METHODS))
def test_gradient_accumulation_1xN_equals_Nx1(tmp_path, method):
    """The rules read the whole optimizer step (scores and gradients summed over micro-batches), so accumulating
    4 × 2 examples is the same step as 1 × 8 — OGM-GE's noise included."""
    trainer_class, extra = METHODS[method]
    results = []
    for batch, accumulation in ((8, 1), (2, 4)):
        args = balancing_args(tmp_path / str(batch), per_device_train_batch_size=batch,
                              gradient_accumulation_steps=accumulation, max_steps=2, **extra)
        model = mlp_fusion()
        trainer = trainer_class(model=model, args=args, train_dataset=as_dataset(vector_xor(16)))
        trainer.train()
        results.append((params(model), [h["loss"] for h in trainer.state.log_history if "loss" in h]))
    (full, full_losses), (accumulated, accumulated_losses) = results
    for key in full:
        torch.testing.assert_close(full[key], accumulated[key], rtol=1e-4, atol=1e-5, msg=key)
    np.testing.assert_allclose(full_losses, accumulated_losses, rtol=1e-4)


@pytest.mark.parametrize("method", ["ogm_ge", "mlb", "mmpareto"])
def test_evaluation_is_the_trainers_own(tmp_path, method):
    """Evaluation runs the model's own forward and loss, as `Trainer` does (no masked views: they are SynIB's)."""
    trainer_class, extra = METHODS[method]
    data = as_dataset(vector_xor(16))
    trainer = trainer_class(model=mlp_fusion(), args=balancing_args(tmp_path, **extra), train_dataset=data,
                            eval_dataset=data)
    trainer.train()
    metrics = trainer.evaluate()
    model = trainer.model.eval()
    with torch.no_grad():
        expected = model(**{k: torch.as_tensor(v) for k, v in vector_xor(16).items()}).loss
    assert metrics["eval_loss"] == pytest.approx(expected.item(), rel=1e-6)
    assert not any("synib" in key for key in metrics)


def test_clear_errors_at_construction(tmp_path):
    with pytest.raises(TypeError, match="BalancingConfig"):
        OGMGETrainer(model=mlp_fusion(), args=synib_args(tmp_path))
    with pytest.raises(ValueError, match="needs a native model"):
        MLBTrainer(model=CLIPWithHead(), args=balancing_args(tmp_path))
    with pytest.raises(ValueError, match="needs unimodal heads"):
        MMParetoTrainer(model=mlp_fusion(unimodal_heads=False), args=balancing_args(tmp_path))
    with pytest.raises(TypeError, match="unexpected keyword argument 'synib_weight'"):
        balancing_args(tmp_path, synib_weight=0.1)  # the balancing config holds only its own fields
    with pytest.raises(ValueError, match="compares two modalities"):
        OGMGETrainer(model=mlp_fusion(modality_dims={"a": 6, "b": 6, "c": 6}), args=balancing_args(tmp_path))
    with pytest.raises(ValueError, match="ogm_alpha must be a positive"):
        balancing_args(tmp_path, ogm_alpha=0.0)

    class Opaque(LinearFusion):
        synib_encoder_parameters = LinearFusion.__mro__[1].synib_encoder_parameters  # the mixin's: not implemented

    with pytest.raises(NotImplementedError, match="implement synib_encoder_parameters"):
        MLBTrainer(model=Opaque(), args=balancing_args(tmp_path))
    frozen = mlp_fusion()
    frozen.encoders["x2"].requires_grad_(False)
    with pytest.raises(ValueError, match=r"no trainable parameters for \['x2'\]"):
        OGMGETrainer(model=frozen, args=balancing_args(tmp_path))


def test_cards_record_the_baselines_own_settings(tmp_path):
    from synib_hf import BalancingConfig

    args = BalancingConfig(output_dir=str(tmp_path), ogm_alpha=0.8, mlb_alpha=3.0, use_cpu=True)
    assert args.method_changes() == {"ogm_alpha": 0.8, "mlb_alpha": 3.0}  # not synib_weight, which is 0 by default


@pytest.mark.parametrize("method", list(METHODS))
def test_ddp_probe_step_changes_nothing_of_the_run(tmp_path, method):
    import random

    trainer_class, extra = METHODS[method]
    model = mlp_fusion()
    model.register_buffer("forward_calls", torch.zeros(()))  # stands for BatchNorm running statistics
    model.register_forward_pre_hook(lambda module, args: module.forward_calls.add_(1) and None)
    trainer = trainer_class(model=model, args=balancing_args(tmp_path, **extra), train_dataset=as_dataset(vector_xor(16)))
    before = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state(), params(model))
    unused = trainer._unused_parameters()
    assert model.forward_calls.item() == 0  # the probe ran forwards, and its buffer updates were put back
    assert random.getstate() == before[0] and np.array_equal(np.random.get_state()[1], before[1])
    assert torch.equal(torch.get_rng_state(), before[2])
    assert all(p.grad is None for p in model.parameters())
    for key, value in params(model).items():
        torch.testing.assert_close(value, before[3][key], rtol=0, atol=0)
    assert not any(name.startswith(("encoders.", "unimodal.")) for name in unused)  # every method trains these


def test_multiloss_heads_train_the_encoders(tmp_path):
    """Unimodal CE reaches the encoders under multiloss, not under plain training of the same model."""
    results = {}
    for name, trainer_class, arguments in (("plain", SynIBTrainer, synib_args), ("multiloss", MultilossTrainer,
                                                                               balancing_args)):
        model = mlp_fusion()
        before = model.encoders["x1"][0].weight.clone()
        trainer = trainer_class(model=model, args=arguments(tmp_path / name), train_dataset=as_dataset(vector_xor(16)))
        trainer.train()
        results[name] = model.encoders["x1"][0].weight - before
    assert not torch.allclose(results["plain"], results["multiloss"])


def test_multiloss_takes_the_family_config_and_needs_unimodal_heads(tmp_path):
    with pytest.raises(TypeError, match="MultilossTrainer needs `args` to carry its method's fields \\(BalancingConfig\\)"):
        MultilossTrainer(model=mlp_fusion(), args=synib_args(tmp_path))
    with pytest.raises(ValueError, match="needs unimodal heads"):
        MultilossTrainer(model=mlp_fusion(unimodal_heads=False), args=balancing_args(tmp_path))
