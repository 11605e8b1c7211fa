"""STPN dynamics: a hand-computed two-step example, gradients through lambda and gamma by finite
differences, state carried across calls, clamping, the state precision, the baselines' energy."""
from __future__ import annotations

import math

import pytest
import torch

from neurohebb.errors import NeurohebbError
from neurohebb.stpn import (
    STPN, STPNParams, STPNPrecision, STPNState, build_model, format_for_range, matched_hidden,
    parameter_count, stpn_step,
)
from neurohebb.stpn.baselines import LSTM, RNN
from neurohebb.stpn.precision import RangeObserver, format_for_clamp

# One neuron, one input: synapses [input, recurrent].
WX, WH, B = 0.5, -0.25, 0.1
LAM = (0.9, 0.5)
GAM = (0.2, -0.3)
X0, X1 = 1.0, -2.0


def _tiny_layer(dtype=torch.float64) -> STPN:
    layer = STPN(1, 1).to(dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[WX, WH]], dtype=dtype))
        layer.bias.copy_(torch.tensor([B], dtype=dtype))
        layer.lam.copy_(torch.tensor([LAM], dtype=dtype))
        layer.gamma.copy_(torch.tensor([GAM], dtype=dtype))
    return layer


def _hand_two_steps():
    """The equations of algorithms.md section 3 with plain floats, step by step."""
    # step 1: z0 = [x0, h0 = 0], F0 = 0, so G = W
    n1 = math.hypot(WX, WH)  # sqrt(0.25 + 0.0625) = 0.5590
    h1 = math.tanh(WX * X0 / n1 + B)  # tanh(0.8944 + 0.1) = 0.7590
    e1 = X0**2 * abs(WX) / n1  # energy: only the input synapse is active
    f1 = (GAM[0] * h1 * X0, GAM[1] * h1 * 0.0)  # lam * 0 / n1 + gamma * h1 * z0
    # step 2: z1 = [x1, h1], G = W + F1
    gx, gh = WX + f1[0], WH + f1[1]
    n2 = math.hypot(gx, gh)
    h2 = math.tanh((gx * X1 + gh * h1) / n2 + B)
    e2 = (X1**2 * abs(gx) + h1**2 * abs(gh)) / n2
    f2 = (LAM[0] * f1[0] / n2 + GAM[0] * h2 * X1, LAM[1] * f1[1] / n2 + GAM[1] * h2 * h1)
    return (h1, h2), f1, f2, (e1, e2)


def test_two_step_example_matches_hand_computation():
    (h1, h2), f1, f2, (e1, e2) = _hand_two_steps()
    # The same numbers worked on paper: h1 = tanh(0.5 / 0.55902 + 0.1) = tanh(0.99443);
    # F1 = (0.2 * h1, 0); h2 = tanh((0.65185 * -2 - 0.25 * h1) / 0.69815 + 0.1) = tanh(-2.0393).
    assert (h1, h2) == pytest.approx((0.759244, -0.966698), abs=1e-5)
    assert f1 == pytest.approx((0.151849, 0.0), abs=1e-5)
    layer = _tiny_layer()
    x = torch.tensor([[[X0], [X1]]], dtype=torch.float64)
    out, state, energy = layer.forward_with_energy(x)
    assert out.shape == (1, 2, 1)
    assert out[0, :, 0].tolist() == pytest.approx([h1, h2], abs=1e-12)
    assert state.F[0, 0].tolist() == pytest.approx(list(f2), abs=1e-12)
    assert energy[0].tolist() == pytest.approx([e1, e2], abs=1e-12)
    # The first step alone leaves exactly F1 behind.
    _, state1 = layer(x[:, :1])
    assert state1.F[0, 0].tolist() == pytest.approx(list(f1), abs=1e-12)


def test_state_carried_across_calls_equals_one_call():
    torch.manual_seed(0)
    layer = STPN(5, 4).double()
    with torch.no_grad():
        layer.gamma.mul_(300)  # make plasticity matter
    x = torch.randn(3, 8, 5, dtype=torch.float64)
    full, final = layer(x)
    first, mid = layer(x[:, :5])
    second, final2 = layer(x[:, 5:], mid)
    assert torch.allclose(torch.cat((first, second), 1), full)
    assert torch.allclose(final2.F, final.F)
    # Stateful mode: the module carries the state itself; reset_state() starts fresh.
    layer.stateful = True
    a, _ = layer(x[:, :5])
    b, _ = layer(x[:, 5:])
    assert torch.allclose(torch.cat((a, b), 1), full)
    layer.reset_state()
    again, _ = layer(x[:, :5])
    assert torch.allclose(again, first)


def test_plasticity_changes_the_output():
    """With gamma = 0 the unit is a normalised RNN; with plasticity the same input differs."""
    torch.manual_seed(1)
    layer = STPN(3, 4).double()
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    with torch.no_grad():
        layer.gamma.zero_()
    static, state = layer(x)
    assert float(state.F.detach().abs().max()) == 0.0
    with torch.no_grad():
        layer.gamma.fill_(0.5)
    plastic, _ = layer(x)
    assert torch.allclose(static[:, 0], plastic[:, 0])  # F is still 0 at the first step
    assert not torch.allclose(static[:, 1:], plastic[:, 1:])


def test_gradients_through_lambda_and_gamma_match_finite_differences():
    torch.manual_seed(2)
    layer = STPN(2, 2).double()
    x = torch.randn(2, 4, 2, dtype=torch.float64)
    weight = layer.weight.detach().clone()
    bias = layer.bias.detach().clone()

    def loss(lam, gamma):
        state = STPNState(torch.zeros(2, 2, dtype=torch.float64), torch.zeros(2, 2, 4, dtype=torch.float64))
        params = STPNParams(weight, bias, lam, gamma)
        for t in range(x.shape[1]):
            state, _ = stpn_step(x[:, t], state, params)
        return (state.h * torch.tensor([1.0, -2.0], dtype=torch.float64)).sum() + state.F.sum()

    lam = torch.rand(2, 4, dtype=torch.float64, requires_grad=True)
    gamma = (0.5 * torch.randn(2, 4, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(loss, (lam, gamma), eps=1e-6, atol=1e-6)
    g_lam, g_gamma = torch.autograd.grad(loss(lam, gamma), (lam, gamma))
    assert float(g_lam.abs().max()) > 1e-4 and float(g_gamma.abs().max()) > 1e-4


def test_module_trains_lambda_and_gamma():
    torch.manual_seed(3)
    model = build_model("stpn", 4, 3, 2)
    x = torch.randn(5, 6, 4)
    model(x).sum().backward()
    unit = model.recurrent
    for name in ("lam", "gamma", "weight", "bias"):
        grad = getattr(unit, name).grad
        assert grad is not None and float(grad.abs().max()) > 0, name


def test_clamp_bounds_the_short_term_state():
    torch.manual_seed(4)
    layer = STPN(3, 3, clamp=0.05)
    with torch.no_grad():
        layer.gamma.fill_(1.0)
        layer.lam.fill_(1.0)
    _, state = layer(torch.randn(2, 10, 3) * 3)
    assert float(state.F.detach().abs().max()) == pytest.approx(0.05)


def test_quantised_state_lies_on_the_grid_and_passes_gradients():
    torch.manual_seed(5)
    layer = STPN(3, 4, quantizer=STPNPrecision(state="s8.6"))
    with torch.no_grad():
        layer.gamma.fill_(0.3)
    x = torch.randn(2, 5, 3)
    out, state = layer(x)
    codes = state.F.detach() * 64
    assert torch.equal(codes, codes.round()) and float(codes.abs().max()) <= 128
    assert float(state.F.detach().abs().max()) > 0
    out.sum().backward()
    assert float(layer.gamma.grad.abs().max()) > 0  # straight-through estimator
    # With an identity "quantiser" the straight-through path is exactly the float gradient.
    ref = STPN(3, 4)
    ref.load_state_dict(layer.state_dict())
    ident = STPN(3, 4, quantizer=lambda role, t: t)
    ident.load_state_dict(layer.state_dict())
    ref(x)[0].sum().backward()
    ident(x)[0].sum().backward()
    assert torch.allclose(ref.gamma.grad, ident.gamma.grad) and torch.allclose(ref.lam.grad, ident.lam.grad)


def test_weight_precision_rounds_the_long_term_weight():
    layer = STPN(2, 2, quantizer=STPNPrecision(weight="s4.2"))
    w = layer.params().weight
    assert torch.equal(w * 4, (w * 4).round())


def test_format_for_range_picks_the_most_fractional_bits_that_hold_the_range():
    assert str(format_for_range(0.9, 8)) == "s8.7"  # max 127/128
    assert str(format_for_range(0.995, 8)) == "s8.6"  # 127/128 < 0.995 <= 127/64
    assert str(format_for_range(1.5, 8)) == "s8.6"
    assert str(format_for_range(0.3, 8)) == "s8.8"  # capped at 8 fractional bits (max 127/256)
    assert str(format_for_range(100.0, 8)) == "s8.0"
    assert str(format_for_range(0.3, 4)) == "s4.4"  # max 7/16 >= 0.3
    assert str(format_for_range(0.5, 4)) == "s4.3"  # 7/16 < 0.5 <= 7/8


def test_format_for_clamp_covers_the_clamped_range():
    assert str(format_for_clamp(1.0, 8)) == "s8.7"
    assert str(format_for_clamp(2.0, 8)) == "s8.6"  # 2.0 itself saturates to 127/64
    assert str(format_for_clamp(1.5, 8)) == "s8.6"
    assert str(format_for_clamp(0.25, 8)) == "s8.8"  # capped at 8 fractional bits
    assert str(format_for_clamp(3.0, 6)) == "s6.3"


def test_range_observer_records_the_largest_state():
    torch.manual_seed(6)
    observer = RangeObserver()
    layer = STPN(3, 2, quantizer=observer)
    with torch.no_grad():
        layer.gamma.fill_(0.2)
    _, state = layer(torch.randn(4, 3, 3))
    assert observer.max_abs["state"] >= float(state.F.detach().abs().max()) > 0


def test_bad_inputs_get_clear_errors():
    layer = STPN(3, 2)
    with pytest.raises(NeurohebbError, match=r"\[batch, time, 3\]"):
        layer(torch.randn(4, 3))
    with pytest.raises(NeurohebbError, match="batch of 4"):
        layer(torch.randn(2, 3, 3), layer.initial_state(4))
    with pytest.raises(NeurohebbError, match="clamp must be > 0"):
        STPN(3, 2, clamp=0.0)
    with pytest.raises(NeurohebbError, match="unknown model"):
        build_model("gru", 3, 2, 2)


def test_rnn_energy_matches_a_manual_loop():
    torch.manual_seed(7)
    unit = RNN(3, 2)
    x = torch.randn(2, 4, 3)
    out, _, energy = unit.forward_with_energy(x)
    w = torch.cat((unit.rnn.weight_ih_l0, unit.rnn.weight_hh_l0), 1)
    h = torch.zeros(2, 2)
    for t in range(4):
        z = torch.cat((x[:, t], h), 1)
        expected = ((z**2).unsqueeze(1) * w.abs()).sum((1, 2))
        assert torch.allclose(energy[:, t], expected, atol=1e-6)
        h = torch.tanh(z @ w.T + unit.rnn.bias_ih_l0 + unit.rnn.bias_hh_l0)
        assert torch.allclose(out[:, t], h, atol=1e-6)
    lstm = LSTM(3, 2)
    _, _, e = lstm.forward_with_energy(x)
    assert e.shape == (2, 4) and float(e.detach().min()) > 0


@pytest.mark.parametrize("kind", ["stpn", "lstm", "rnn"])
@pytest.mark.parametrize("hidden", [1, 9, 20])
def test_parameter_count_closed_form(kind, hidden):
    model = build_model(kind, 37, hidden, 37)
    assert parameter_count(kind, 37, hidden, 37) == sum(p.numel() for p in model.parameters())


def test_matched_hidden_reproduces_the_papers_budget():
    target = parameter_count("stpn", 37, 11, 37)  # the paper's STPN: 2039 parameters
    assert target == 2039
    assert matched_hidden("lstm", target, 37, 37) == 9  # the paper's LSTM size (2098 here)
    h = matched_hidden("rnn", target, 37, 37)
    counts = {k: abs(parameter_count("rnn", 37, k, 37) - target) for k in (h - 1, h, h + 1)}
    assert counts[h] == min(counts.values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runs_on_gpu_like_on_cpu():
    torch.manual_seed(8)
    layer = STPN(3, 4)
    x = torch.randn(2, 5, 3)
    cpu, _ = layer(x)
    gpu, _ = layer.cuda()(x.cuda())
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-5)
