"""The fake-quant step's compiled tail (`neurohebb.steps.fused_tail`): the same numbers as the
torch path, bit for bit (weights, float32 copies, outputs, the generator's state after, the
diagnostics), over the policies it covers; the torch path where it does not apply."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neurohebb.config import LayerConfig
from neurohebb.errors import ConfigError
from neurohebb.layers import SoftWTAConv2d, SoftWTALinear
from neurohebb.steps import fused_tail
from neurohebb.steps.fakequant import FakeQuantEngine

pytestmark = pytest.mark.skipif(not fused_tail.available(), reason=f"fused kernels: {fused_tail.unavailable_reason()}")

QUANTISED_REST = ",input=s12.8:stochastic,post=s16.15:stochastic,lr=u16.16:stochastic"


def _linear(radius: float = 5.0) -> SoftWTALinear:
    cfg = LayerConfig(kind="linear", out_channels=12, rule="softhebb", t_invert=12.0, lr=0.045,
                      lr_schedule="norm-adaptive", lr_power=1.0, init_radius=radius, batchnorm=False)
    return SoftWTALinear(20, cfg, torch.Generator().manual_seed(0))


def _conv() -> SoftWTAConv2d:
    cfg = LayerConfig(kind="conv", out_channels=6, kernel_size=3, padding=1, rule="softhebb-anti", t_invert=1.0, lr=0.08)
    return SoftWTAConv2d(2, cfg, torch.Generator().manual_seed(0))


DATA = {
    "linear": (_linear, torch.rand(40, 20, generator=torch.Generator().manual_seed(1))),
    "conv": (_conv, torch.randn(20, 2, 6, 6, generator=torch.Generator().manual_seed(2))),
}


def _train(fused: bool, policy: str, kind: str, stats_every: int = 1, make=None):
    make_layer, data = DATA[kind]
    layer = (make or make_layer)()
    engine = FakeQuantEngine(policy, seed=3, fused=fused, stats_every=stats_every)
    engine.attach(layer, 0)
    outputs = [engine.step(layer, data[s:s + 5]) for s in range(0, len(data), 5)]
    return engine, layer, outputs


def _assert_same(policy: str, kind: str, stats_every: int = 1, make=None) -> list[dict]:
    (fe, fl, fu), (te, tl, tu) = (_train(f, policy, kind, stats_every, make) for f in (True, False))
    assert torch.equal(fe.weight_values(fl), te.weight_values(tl))
    assert torch.equal(fl.weight, tl.weight)  # the kernel's float32 copy is the write-back's
    assert all(torch.equal(a, b) for a, b in zip(fu, tu))
    assert torch.equal(fe.generator.get_state(), te.generator.get_state())  # every later draw the same
    assert fe.diagnostics() == te.diagnostics()
    return fe.diagnostics()


CASES = [  # every rounding mode, fixed and shared-exponent weights, quantised/float/shared updates, both norms
    (weight, rounding, update, rest)
    for weight, rounding in (("m8", "stochastic"), ("s8.5", "nearest"), ("m4", "floor"), ("s4.2", "truncate"),
                             ("s16.12", "stochastic"))
    for update, rest in ((",update=s16.14:stochastic", ""), ("", ",norm=pow2"), (",update=m6:nearest", QUANTISED_REST))
]


@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("weight,rounding,update,rest", CASES)
def test_fused_tail_is_bit_identical_to_the_torch_path(kind, weight, rounding, update, rest):
    _assert_same(f"weight={weight}:{rounding}{update}{rest}", kind, stats_every=2)


def test_saturating_weights_count_the_same_overflow():
    # radius 5 in a format whose range is [-2, 1.75]: the initial rounding and the steps saturate
    diag = _assert_same("weight=s4.2:stochastic,update=s16.14:stochastic", "linear")
    assert diag[0]["saturation"]["weight"]["above"] + diag[0]["saturation"]["weight"]["below"] > 0


def test_the_kernels_run_for_the_sweep_point(monkeypatch):
    calls = []
    real = fused_tail._round_weights
    monkeypatch.setattr(fused_tail, "_round_weights", lambda *a: calls.append(1) or real(*a))
    _train(True, "weight=m8:stochastic,update=s16.14:stochastic", "linear")
    assert len(calls) == 8  # one per step: 40 images in batches of 5


def test_non_finite_updates_fall_back_to_the_torch_path():
    data = DATA["linear"][1].clone()
    data[7, 3] = float("inf")  # u and dW become inf/NaN in the second batch
    (fe, fl), (te, tl) = (_run_on(f, data) for f in (True, False))
    assert torch.isnan(fe.weight_values(fl)).any()  # the edge case did happen
    torch.testing.assert_close(fe.weight_values(fl), te.weight_values(tl), rtol=0, atol=0, equal_nan=True)
    assert torch.equal(fe.generator.get_state(), te.generator.get_state())


def _run_on(fused: bool, data: torch.Tensor):
    layer = _linear()
    engine = FakeQuantEngine("weight=m8:stochastic,update=s16.14:stochastic", seed=3, fused=fused)
    engine.attach(layer, 0)
    for s in range(0, len(data), 5):
        engine.step(layer, data[s:s + 5])
    return engine, layer


def test_twister_reproduces_the_generator_stream_across_twists():
    g = torch.Generator().manual_seed(11)
    ref = torch.Generator().manual_seed(11)  # fresh seed: the first draw starts with a twist
    mine = []
    for n in (1, 623, 624, 1000, 5):  # positions inside, at and across twist boundaries
        t = fused_tail.TwisterState(g)
        mine.append(t.draws(np.empty(n, np.uint32)))
        t.put_back()
    theirs = torch.empty(sum(len(m) for m in mine), dtype=torch.float64).random_(0, 1 << 24, generator=ref)
    assert np.array_equal(np.concatenate(mine).astype(np.float64), theirs.numpy())
    assert torch.equal(torch.rand(100, generator=g), torch.rand(100, generator=ref))


def test_twister_draws_the_readout_dropouts_64_bit_words_as_random_does():
    """``random_`` over the full int64 range: torch's random64, two outputs with the first high."""
    g = torch.Generator().manual_seed(12)
    ref = torch.Generator().manual_seed(12)
    mine = []
    for n in (1, 311, 312, 313, 700):  # 312 words = 624 outputs: one whole state, then across twists
        t = fused_tail.TwisterState(g)
        mine.append(t.words64(np.empty(n, np.uint64)).view(np.int64))
        t.put_back()
    theirs = torch.empty(sum(len(m) for m in mine), dtype=torch.int64).random_(-(2**63), None, generator=ref)
    assert np.array_equal(np.concatenate(mine), theirs.numpy())
    assert torch.equal(torch.rand(100, generator=g), torch.rand(100, generator=ref))
    assert fused_tail.twister_ok()


def test_asking_for_the_kernels_where_they_are_missing_is_a_config_error(monkeypatch):
    monkeypatch.setattr(fused_tail, "available", lambda: False)
    monkeypatch.setattr(fused_tail, "unavailable_reason", lambda: "numba is not installed")
    with pytest.raises(ConfigError, match="numba is not installed"):
        FakeQuantEngine("weight=m8", fused=True)
    assert FakeQuantEngine("weight=m8").fused is False  # the default falls back quietly



def test_the_kernels_keep_to_torchs_thread_count():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # a sweep point pinned to one core
        engine, layer, _ = _train(True, "weight=m8:stochastic,update=s16.14:stochastic", "linear")
        assert torch.get_num_threads() == 1 and fused_tail.numba.get_num_threads() == 1
        _, reference, _ = _train(False, "weight=m8:stochastic,update=s16.14:stochastic", "linear")
        assert torch.equal(layer.weight, reference.weight)
    finally:
        torch.set_num_threads(before)
