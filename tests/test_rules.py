"""The plasticity rules against hand-computed cases and the papers' equations."""
from __future__ import annotations

import math

import pytest
import torch

from neurohebb import activations, rules


def test_linear_update_matches_hand_computed_two_neuron_case():
    # one sample x = [1, 2], two neurons; dW_k = y_k * (x - u_k * W_k)
    x = torch.tensor([[1.0, 2.0]])
    w = torch.tensor([[1.0, 0.0], [0.0, 0.5]])
    u = x @ w.t()  # [[1, 1]]
    y = torch.tensor([[0.75, 0.25]])
    dw = rules.linear_update(x, u, y, w)
    expected = torch.tensor([[0.75 * (1 - 1 * 1), 0.75 * (2 - 1 * 0)], [0.25 * (1 - 1 * 0), 0.25 * (2 - 1 * 0.5)]])
    assert torch.allclose(dw, expected)


def test_linear_update_sums_over_the_batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 7, generator=g)
    w = torch.randn(3, 7, generator=g)
    u = x @ w.t()
    y = torch.softmax(u, dim=1)
    per_sample = sum(rules.linear_update(x[i:i + 1], u[i:i + 1], y[i:i + 1], w) for i in range(5))
    assert torch.allclose(rules.linear_update(x, u, y, w), per_sample, atol=1e-5)


def test_softhebb_fixed_point_has_unit_norm():
    # Oja-like fixed point: E[y x] = E[y u] W  =>  ||W||^2 = W.E[yx]/E[yu] = 1 (Moraitis et al. 2022)
    g = torch.Generator().manual_seed(1)
    data = torch.rand(2000, 6, generator=g)
    w = torch.rand(1, 6, generator=g)  # starts away from unit norm
    for _ in range(400):
        u = data @ w.t()
        y = torch.ones_like(u)  # a single neuron always "wins"
        w = w + 0.05 * rules.linear_update(data, u, y, w) / data.shape[0]
    assert rules.neuron_norms(w).item() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1)])
def test_conv_update_equals_explicit_per_patch_sum(stride, padding):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 7, 7, generator=g)
    x = torch.nn.functional.pad(x, (padding,) * 4, mode="reflect") if padding else x
    w = torch.randn(4, 3, 3, 3, generator=g)
    u = torch.nn.functional.conv2d(x, w, stride=stride)
    y = activations.anti_hebbian_post(u, 0.7)
    fast = rules.conv_update(x, u, y, w, stride)
    slow = rules.conv_update_per_patch(x, u, y, w, stride)
    assert fast.shape == w.shape
    assert torch.allclose(fast, slow, atol=1e-4)


def test_normalize_update_scales_max_to_one():
    dw = torch.tensor([[0.5, -2.0], [1.0, 0.25]])
    out = rules.normalize_update(dw)
    assert out.abs().max().item() == pytest.approx(1.0)
    assert torch.allclose(out, dw / 2.0)


def test_adaptive_lr_follows_the_norm_distance():
    w = torch.tensor([[3.0, 4.0], [0.6, 0.8], [0.0, 0.0]])  # norms 5, 1, 0
    lr = rules.adaptive_lr(w, eta=0.1, power=0.5)
    assert lr[0].item() == pytest.approx(0.1 * 2.0)
    assert lr[1].item() == pytest.approx(0.1 * math.sqrt(1e-10), rel=1e-3)
    assert lr[2].item() == pytest.approx(0.1)


def test_bias_update_is_zero_when_prior_matches_mean_activity():
    y = torch.tensor([[0.2, 0.8], [0.4, 0.6]])  # mean responsibilities 0.3, 0.7
    t = 2.0
    bias = torch.log(torch.tensor([0.3, 0.7])) / t
    assert torch.allclose(rules.bias_update(y, bias, t), torch.zeros(2), atol=1e-6)
    # a prior below the observed activity grows
    assert (rules.bias_update(y, bias - 0.5, t) > 0).all()


@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("rule,schedule,normalize", [
    ("softhebb", "norm-adaptive", True), ("softhebb-anti", "constant", False), ("hard-wta", "norm-adaptive", True),
])
def test_fused_float_step_equals_the_explicit_role_by_role_step(kind, rule, schedule, normalize):
    from neurohebb.config import LayerConfig
    from neurohebb.layers import SoftWTAConv2d, SoftWTALinear

    cfg = LayerConfig(kind=kind, out_channels=6, kernel_size=3, padding=1, rule=rule, t_invert=2.0, lr=0.05,
                      lr_schedule=schedule, normalize_update=normalize, init_radius=3.0)
    make = (lambda: SoftWTALinear(12, cfg, torch.Generator().manual_seed(0))) if kind == "linear" else \
        (lambda: SoftWTAConv2d(2, cfg, torch.Generator().manual_seed(0)))
    from neurohebb import activations
    from neurohebb.steps import Float32Step

    fused, explicit = make(), make()
    x = torch.rand(4, 2, 3, 2) if kind == "linear" else torch.rand(4, 2, 5, 5)
    step = Float32Step()
    for _ in range(3):
        u_f = step.step(fused, x)
        # the rule written out term by term (rules.py), as the papers state it
        x_pre = explicit.pre(x)
        u_e = explicit(x)
        y = activations.post_synaptic(u_e, rule, cfg.t_invert, dim=1)
        if kind == "linear":
            dw = rules.linear_update(x_pre, u_e, y, explicit.weight)
        else:
            dw = rules.conv_update(x_pre, u_e, y, explicit.weight, cfg.stride)
        if normalize:
            dw = rules.normalize_update(dw)
        lr = rules.adaptive_lr(explicit.weight, cfg.lr, cfg.lr_power) if schedule == "norm-adaptive" \
            else torch.full((6,), cfg.lr)
        explicit.weight.add_(lr.reshape(-1, *([1] * (dw.dim() - 1))) * dw)
        assert torch.allclose(u_f, u_e, atol=1e-5)
    assert torch.allclose(fused.weight, explicit.weight, atol=1e-5, rtol=1e-5)
    assert not torch.equal(fused.weight, make().weight)
