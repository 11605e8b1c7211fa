"""The fast paths of the plasticity steps give exactly the numbers of the plain formulations.

Why: the fake-quant engine's buffers, the short stochastic rounding (`stochastic_codes`), the
range bound that skips an overflow pass, and the exponent folded into the learning rate are
speed changes only; each is held here to the straightforward code it replaced, bit for bit
(the opt-in fast conv correlation to float32 rounding).
"""
from __future__ import annotations

import pytest
import torch

from neurohebb import activations, rules
from neurohebb.config import LayerConfig
from neurohebb.errors import ConfigError
from neurohebb.layers import SoftWTAConv2d, SoftWTALinear
from neurohebb.precision import NumberFormat, quantize
from neurohebb.precision.rounding import quantize_codes, round_scaled, stochastic_codes
from neurohebb.steps import Float32Step
from neurohebb.steps.fakequant import FakeQuantEngine


def _awkward_values(n: int = 40_000) -> torch.Tensor:
    """Values that stress stochastic rounding: ties with the 24-bit draws, tiny and subnormal
    magnitudes, signed zeros, integers, and large values near the fast path's 2**28 limit."""
    g = torch.Generator().manual_seed(0)
    parts = [
        (torch.rand(n, generator=g, dtype=torch.float64) - 0.5) * 2.0**28,
        torch.randint(-2**20, 2**20, (n,), generator=g).double() * 2.0**-24,  # frac on the draw grid
        torch.randn(n, generator=g, dtype=torch.float64) * 1e-9,
        torch.tensor([0.0, -0.0, 5e-324, -5e-324, 1e-300, -1e-300, 2.0**-24, -2.0**-24, 1 - 2.0**-53,
                      -(1 - 2.0**-53), 3.0, -3.0, 2.0**28 - 1, -(2.0**28 - 1)], dtype=torch.float64),
    ]
    return torch.cat(parts)


def test_stochastic_codes_equal_round_scaled_and_consume_the_same_draws():
    y = _awkward_values()
    g_ref, g_new = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    ref = round_scaled(y.clone(), "stochastic", g_ref)
    new = stochastic_codes(y.clone(), g_new, torch.empty_like(y))
    assert torch.equal(ref, new)
    assert torch.equal(torch.signbit(ref), torch.signbit(new))  # no -0.0 where the plain kernel gives +0.0
    assert torch.equal(torch.rand(8, generator=g_ref), torch.rand(8, generator=g_new))  # stream still aligned
    # values whose fraction equals the draw that will round them (U < frac is false: down) or
    # exceeds it by one step of the grid (up): the boundary case of the comparison, every element
    n = 30_000
    u = torch.rand(n, generator=torch.Generator().manual_seed(13)).double()
    base = torch.randint(-2**27, 2**27, (n,), generator=torch.Generator().manual_seed(14)).double()
    for offset, expect_up in ((0.0, False), (2.0**-24, True)):
        y = base + u + offset
        g_ref, g_new = torch.Generator().manual_seed(13), torch.Generator().manual_seed(13)
        ref = round_scaled(y.clone(), "stochastic", g_ref)
        assert torch.equal(ref, torch.floor(y) + (1.0 if expect_up else 0.0))
        assert torch.equal(stochastic_codes(y.clone(), g_new, torch.empty_like(y)), ref)
    # a scaled call: codes of y * 2**k, scaling up (one multiplication) and down (two)
    for k in (14, -3):
        g_ref, g_new = torch.Generator().manual_seed(12), torch.Generator().manual_seed(12)
        x = y * 2.0**-20
        ref = round_scaled(x * 2.0**k, "stochastic", g_ref)
        assert torch.equal(ref, stochastic_codes(x.clone(), g_new, torch.empty_like(x), k))


@pytest.mark.parametrize("fmt, overflow, scale, bound", [
    ("s16.14", "saturate", 1.0, 1.0),   # the engines' normalised update: nothing can overflow
    ("s4.3", "saturate", 1.0, 1.0),     # |x| = 1 is code 8 > qmax 7: the bound does not prove the range
    ("s4.3", "wrap", 3.0, None),
    ("m8", "saturate", 100.0, None),
    ("um8", "saturate", 5.0, None),     # unsigned mantissa: negative values saturate to 0
    ("u8.8", "saturate", 0.9, None),
])
def test_quantize_codes_fast_path_matches_the_plain_path(fmt, overflow, scale, bound):
    g = torch.Generator().manual_seed(3)
    x = torch.rand(50, 30, generator=g, dtype=torch.float64) * 2 - 1
    x *= scale / x.abs().max()
    f = NumberFormat.parse(fmt)
    g_ref, g_new = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    ref = quantize_codes(x.clone(), f, "stochastic", overflow, g_ref)
    new = quantize_codes(x.clone(), f, "stochastic", overflow, g_new, inplace=True, draws=torch.empty_like(x),
                         max_abs_bound=bound)
    assert torch.equal(ref.codes, new.codes) and ref.exponent == new.exponent
    assert (int(ref.n_below), int(ref.n_above)) == (int(new.n_below), int(new.n_above))
    if fmt == "s4.3":
        assert int(ref.n_above) > 0  # the case really overflows


def _sweep_reference(layer: SoftWTALinear, batches, seed: int) -> torch.Tensor:
    """The sweep's point `weight=m8:stochastic,update=s16.14:stochastic` (norm=max, every
    other role float) written with the plain kernels: fresh tensors, quantize() without the
    fast path, the update's exponent applied to dW before the multiply-add."""
    g = torch.Generator().manual_seed(seed)
    cfg = layer.cfg
    w = quantize(layer.weight.double(), "m8", "stochastic", generator=g)
    for x in batches:
        x = x.double().reshape(x.shape[0], -1)
        u = x @ w.t()
        y = activations.post_synaptic(u.contiguous(), cfg.rule, cfg.t_invert, dim=1)
        dw = (y.t() @ x).addcmul_((y * u).sum(0)[:, None], w, value=-1.0)
        lo, hi = torch.aminmax(dw)
        dw = dw.div_(max(-float(lo), float(hi)))
        dwq = quantize(dw, "s16.14", "stochastic", generator=g)
        lr = rules.layer_learning_rate(w, cfg)
        w = quantize(torch.addcmul(w, dwq, lr[:, None]), "m8", "stochastic", generator=g)
    return w


def test_fake_quant_sweep_point_is_bit_identical_to_the_plain_datapath():
    cfg = LayerConfig(kind="linear", out_channels=40, rule="softhebb", t_invert=12.0, lr=0.045, init_radius=5.0,
                      lr_schedule="norm-adaptive", lr_power=1.0, normalize_update=True, batchnorm=False)
    make = lambda: SoftWTALinear(64, cfg, torch.Generator().manual_seed(0))  # noqa: E731
    data = torch.rand(60, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float32)
    batches = [data[s:s + 10] for s in range(0, 60, 10)]
    layer = make()
    engine = FakeQuantEngine("weight=m8:stochastic,update=s16.14:stochastic", seed=7, stats_every=2)
    engine.attach(layer, 0)
    first = engine.weight_values(layer)
    for x in batches:
        engine.step(layer, x)
    assert torch.equal(engine.weight_values(layer), _sweep_reference(make(), batches, seed=7))
    # snapshots are copies: the engine's reused buffers never change what a caller holds
    assert torch.equal(first, quantize(make().weight.double(), "m8", "stochastic",
                                       generator=torch.Generator().manual_seed(7)))
    assert torch.equal(layer.weight, engine.weight_values(layer).float())


def _plain_float32_step(layer, x: torch.Tensor) -> None:
    """The float32 step written out with plain operators (every tensor fresh)."""
    cfg, w = layer.cfg, layer.weight
    x_pre = layer.pre(x)
    u = layer.weighted_input(x_pre, w)
    y = activations.post_synaptic(u, cfg.rule, cfg.t_invert, dim=1)
    if layer.is_conv:
        dw = rules.conv_correlation(x_pre, y, tuple(w.shape[-2:]), cfg.stride)
    else:
        dw = y.t() @ x_pre
    c = (y * u).sum(dim=layer.sample_dims)
    shape = (-1,) + (1,) * (w.dim() - 1)
    dw.addcmul_(c.reshape(shape), w, value=-1.0)
    lr = rules.layer_learning_rate(w, cfg)
    lo, hi = torch.aminmax(dw)
    lr = lr / (torch.maximum(-lo, hi) + 1e-30)
    w.addcmul_(lr.reshape(shape), dw)


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_float32_step_is_bit_identical_to_the_plain_step(kind):
    if kind == "linear":
        cfg = LayerConfig(kind="linear", out_channels=30, rule="softhebb", t_invert=12.0, lr=0.045, init_radius=5.0,
                          lr_schedule="norm-adaptive", normalize_update=True, batchnorm=False)
        make = lambda: SoftWTALinear(50, cfg, torch.Generator().manual_seed(0))  # noqa: E731
        data = torch.rand(80, 50, generator=torch.Generator().manual_seed(2))
    else:
        cfg = LayerConfig(kind="conv", out_channels=8, kernel_size=3, padding=1, rule="softhebb-anti", t_invert=1.0,
                          lr=0.08, normalize_update=True)
        make = lambda: SoftWTAConv2d(3, cfg, torch.Generator().manual_seed(0))  # noqa: E731
        data = torch.rand(40, 3, 9, 9, generator=torch.Generator().manual_seed(2))
    ref, layer, step = make(), make(), Float32Step(linear_kernel="torch")  # the compiled one: test_linear_kernels
    step.attach(layer, 0)
    for s in range(0, len(data), 10):
        _plain_float32_step(ref, data[s:s + 10])
        step.step(layer, data[s:s + 10])
    assert torch.equal(layer.weight, ref.weight)


def test_fast_correlation_agrees_with_the_exact_one_to_float32_rounding():
    """The opt-in weight-gradient correlation computes the same sum (stride 1 and 2), so one
    step's weights agree to float32 rounding; the default stays the bit-identical kernel."""
    g = torch.Generator().manual_seed(8)
    for stride in (1, 2):
        x = torch.rand(6, 3, 11, 11, generator=g)
        y = torch.rand(6, 7, (11 - 3) // stride + 1, (11 - 3) // stride + 1, generator=g)
        ref = rules.conv_correlation(x, y, (3, 3), stride)
        fast = rules.conv_correlation_wgrad(x, y, (3, 3), stride)
        assert fast.shape == ref.shape and torch.allclose(fast, ref, rtol=1e-5, atol=1e-5)
        gemm, buffer = rules.conv_correlation_gemm(x, y, (3, 3), stride), torch.empty(7, 3, 3, 3)
        assert rules.conv_correlation_gemm(x, y, (3, 3), stride, out=buffer) is buffer
        assert gemm.shape == ref.shape and torch.allclose(gemm, ref, rtol=1e-5, atol=1e-5)
        assert torch.equal(buffer, gemm)
    cfg = LayerConfig(kind="conv", out_channels=8, kernel_size=3, padding=1, rule="softhebb-anti", t_invert=1.0,
                      lr=0.08, normalize_update=True)
    make = lambda: SoftWTAConv2d(3, cfg, torch.Generator().manual_seed(0))  # noqa: E731
    data = torch.rand(10, 3, 9, 9, generator=torch.Generator().manual_seed(2))
    exact, fast = make(), make()
    Float32Step().step(exact, data)
    Float32Step(correlation="wgrad").step(fast, data)
    assert torch.allclose(fast.weight, exact.weight, rtol=1e-5, atol=1e-6)
    assert not torch.equal(fast.weight, make().weight)


def test_the_correlation_choice_picks_a_kernel_per_layer_and_each_learns_the_same_weights():
    """"auto" is a fixed rule on the layer's shape and the CPU's vector unit (AVX2: few input
    channels take the weight-gradient kernel, long patches one GEMM; AVX-512: the GEMM for all);
    every kernel's step agrees with "conv" to float32 rounding."""
    avx2 = dict(capability="AVX2")
    assert rules.correlation_kernel("auto", 3, (5, 5), **avx2) == "wgrad"
    assert rules.correlation_kernel("auto", 96, (3, 3), **avx2) == "conv"
    assert rules.correlation_kernel("auto", 384, (3, 3), **avx2) == "gemm"
    for shape in ((3, (5, 5)), (96, (3, 3)), (384, (3, 3))):
        assert rules.correlation_kernel("auto", *shape, capability="AVX512") == "gemm"
        assert rules.correlation_kernel("auto", *shape, device="cuda") == "conv"
    assert rules.correlation_kernel("gemm", 3, (5, 5), **avx2) == "gemm"
    assert rules.correlation_kernel("wgrad", 384, (3, 3), capability="AVX512") == "wgrad"
    cfg = LayerConfig(kind="conv", out_channels=8, kernel_size=3, padding=1, rule="softhebb-anti", t_invert=1.0,
                      lr=0.08, normalize_update=True)
    make = lambda: SoftWTAConv2d(3, cfg, torch.Generator().manual_seed(0))  # noqa: E731
    data = torch.rand(10, 3, 9, 9, generator=torch.Generator().manual_seed(2))
    exact = make()
    Float32Step(correlation="conv").step(exact, data)
    for kernel in ("wgrad", "gemm", "auto"):
        layer, step = make(), Float32Step(correlation=kernel)
        step.attach(layer, 0)
        step.step(layer, data)
        assert step.kernels == {0: rules.correlation_kernel(kernel, 3, (3, 3))}
        assert torch.allclose(layer.weight, exact.weight, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="hebbian.correlation"):
        Float32Step(correlation="fft")


def test_flush_tiny_zeroes_only_post_synaptic_values_below_2_to_the_minus_100():
    y = torch.tensor([[1.0, 2.0 ** -99, 2.0 ** -100, 2.0 ** -101, 1e-40, 0.0],
                      [-1.0, -(2.0 ** -99), -(2.0 ** -101), -1e-45, 0.3, -0.0]])
    out = rules.flush_tiny_(y.clone())
    expected = torch.tensor([[1.0, 2.0 ** -99, 2.0 ** -100, 0.0, 0.0, 0.0],
                             [-1.0, -(2.0 ** -99), 0.0, 0.0, 0.3, 0.0]])
    assert torch.equal(out, expected)


def test_flushing_tiny_post_synaptic_values_moves_no_weight_of_a_sharp_soft_wta():
    """A sharp WTA (here t_invert 2 on inputs ~15 apart) leaves a third of y nonzero but below
    2^-100, so the flush changes y; the step's weights are the unflushed step's bit for bit
    (no rounding tie to break here)."""
    cfg = LayerConfig(kind="linear", out_channels=64, rule="softhebb", t_invert=2.0, lr=0.05,
                      normalize_update=True, lr_schedule="norm-adaptive")
    make = lambda: SoftWTALinear(49, cfg, torch.Generator().manual_seed(0))  # noqa: E731
    data = torch.rand(10, 49, generator=torch.Generator().manual_seed(3))
    kept, flushed = make(), make()
    u = kept.weighted_input(kept.pre(data), kept.weight)
    y = activations.post_synaptic(u, cfg.rule, cfg.t_invert)
    tiny = (y > 0) & (y < rules.TINY_Y)
    assert tiny.float().mean() > 0.3  # the case the flush is for
    Float32Step(flush_tiny=False, linear_kernel="torch").step(kept, data)
    Float32Step(flush_tiny=True, linear_kernel="torch").step(flushed, data)
    assert torch.equal(flushed.weight, kept.weight)
    assert not torch.equal(kept.weight, make().weight)


def test_hebbian_correlation_is_checked_and_refused_where_no_float32_step_runs():
    from neurohebb.config import resolve_config
    from neurohebb.engine import step_for

    with pytest.raises(ConfigError, match="hebbian.correlation"):
        resolve_config("mnist-conv", overrides=['hebbian.correlation="fft"'])
    config = resolve_config("mnist-conv", overrides=['hebbian.correlation="auto"'])
    assert step_for(config, torch.device("cpu")).correlation == "auto"
    quantised = resolve_config("mnist-conv", overrides=['hebbian.correlation="gemm"',
                                                        'precision.policy="weight=m8:stochastic"'])
    with pytest.raises(ConfigError, match="own datapath"):
        step_for(quantised, torch.device("cpu"))
    kept = resolve_config("mnist-conv", overrides=["hebbian.flush_tiny=false"])
    assert step_for(kept, torch.device("cpu")).flush_tiny is False
    assert step_for(resolve_config("mnist-conv"), torch.device("cpu")).flush_tiny is True
    with pytest.raises(ConfigError, match="own datapath"):
        step_for(resolve_config("mnist-conv", overrides=["hebbian.flush_tiny=false",
                                                         'precision.policy="weight=m8:stochastic"']),
                 torch.device("cpu"))
    # the defaults themselves are fine for a quantised run
    step_for(resolve_config("mnist-conv", overrides=['precision.policy="weight=m8:stochastic"']), torch.device("cpu"))
