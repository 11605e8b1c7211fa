"""The quantised learning engines: fake-quant and integer agree bit for bit, and the datapath
behaves as the closed-form cases say (stalls, saturation, the float limit)."""
from __future__ import annotations

import pytest
import torch

from neurohebb.config import LayerConfig, resolve_config
from neurohebb.errors import ConfigError, NeurohebbError
from neurohebb.layers import SoftWTAConv2d, SoftWTALinear
from neurohebb.network import HebbNetwork
from neurohebb.precision import NumberFormat, quantize
from neurohebb import activations, rules
from neurohebb.precision.training import post_training_quantize
from neurohebb.steps import Float32Step, make_step
from neurohebb.steps.fakequant import FakeQuantEngine
from neurohebb.steps.integer import IntegerEngine

FULL = "input=u9.8:{r},post=s16.15:{r},update=s16.14:{r},lr=u16.16:{r},weight={w}:{r},norm={n}"


def _linear(radius: float = 5.0, lr: float = 0.045, **kw) -> SoftWTALinear:
    cfg = LayerConfig(kind="linear", out_channels=12, rule="softhebb", t_invert=12.0, lr=lr,
                      init_radius=radius, batchnorm=False, **kw)
    return SoftWTALinear(20, cfg, torch.Generator().manual_seed(0))


def _conv() -> SoftWTAConv2d:
    cfg = LayerConfig(kind="conv", out_channels=6, kernel_size=3, padding=1, rule="softhebb-anti", t_invert=1.0, lr=0.08)
    return SoftWTAConv2d(2, cfg, torch.Generator().manual_seed(0))


def _run(engine_cls, policy, make, data, seed=3):
    layer = make()
    engine = engine_cls(policy, seed=seed)
    engine.attach(layer, 0)
    us = [engine.step(layer, data[s:s + 5]) for s in range(0, len(data), 5)]
    return engine, layer, us


CASES = [  # every rounding mode on both layer kinds, with fixed and shared-exponent weights and both norms
    (kind, rounding, weight, norm)
    for kind in ("linear", "conv")
    for rounding, (weight, norm) in zip(
        ("nearest", "stochastic", "truncate", "floor"),
        ([("s8.5", "max"), ("m8", "pow2"), ("s16.12", "max"), ("m6", "pow2")] if kind == "linear"
         else [("m8", "max"), ("s16.12", "pow2"), ("m6", "max"), ("s8.5", "pow2")]),
    )
] + [("linear", "stochastic", "s16.12", "max"), ("conv", "stochastic", "m6", "pow2"), ("conv", "nearest", "s8.5", "pow2")]


@pytest.mark.parametrize("kind, rounding, weight, norm", CASES)
def test_fake_quant_and_integer_engines_agree_exactly(kind, rounding, weight, norm):
    policy = FULL.format(r=rounding, w=weight, n=norm)
    g = torch.Generator().manual_seed(1)
    if kind == "linear":
        make, data = _linear, torch.rand(30, 20, generator=g)
    else:
        make, data = _conv, torch.randn(15, 2, 6, 6, generator=g)
    fe, fl, fu = _run(FakeQuantEngine, policy, make, data)
    ie, il, iu = _run(IntegerEngine, policy, make, data)
    assert all(torch.equal(a, b) for a, b in zip(fu, iu))
    wf, wi = fe.weight_values(fl), ie.weight_values(il)
    assert torch.equal(wf, wi)
    if weight != "m6":  # (6-bit weights with a step of 1 may legitimately stall completely)
        assert not torch.equal(wf, quantize(make().weight.double(), weight))  # learning happened
    df, di = fe.diagnostics(), ie.diagnostics()
    for a, b in zip(df, di):
        assert a["saturation"] == b["saturation"]
        assert (a["proposed_updates"], a["stalled_updates"]) == (b["proposed_updates"], b["stalled_updates"])
        for key in ("stalled_mass_fraction", "update_transfer"):  # float sums: order may differ
            assert a[key] == pytest.approx(b[key], rel=1e-12, abs=1e-15)
        assert a["weight_histogram"] == b["weight_histogram"]
    assert torch.equal(fl.weight, il.weight)  # the layers' own buffers hold the same values


def test_engines_agree_on_a_multilayer_network_through_the_hebbian_phase():
    from neurohebb.engine import hebbian_phase

    config = resolve_config("digits", overrides=["layers.0.out_channels=6", "layers.1.out_channels=10", "device=\"cpu\""])
    x = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    policy = FULL.format(r="stochastic", w="m8", n="max")
    weights = []
    for cls in (FakeQuantEngine, IntegerEngine):
        net = HebbNetwork(config, generator=torch.Generator().manual_seed(0), step=cls(policy, seed=11))
        hebbian_phase(net, x, config, torch.device("cpu"), torch.Generator().manual_seed(5), progress=False)
        weights.append([b.layer.weight.clone() for b in net.blocks])
    for a, b in zip(*weights):
        assert torch.equal(a, b)


def test_float_policy_reproduces_the_core_float_rule():
    """With every role float the datapath is the engine's SoftHebb step (float64 vs float32)."""
    g = torch.Generator().manual_seed(2)
    data = torch.rand(30, 20, generator=g)
    fe, fl, _ = _run(FakeQuantEngine, "float32", _linear, data)
    core, step = _linear(), Float32Step()
    for s in range(0, 30, 5):
        step.step(core, data[s:s + 5])
    assert torch.allclose(fe.weight_values(fl).float(), core.weight, atol=1e-5, rtol=1e-5)
    conv_data = torch.randn(10, 2, 6, 6, generator=g)
    fe, fl, _ = _run(FakeQuantEngine, "float32", _conv, conv_data)
    core = _conv()
    for s in range(0, 10, 5):
        step.step(core, conv_data[s:s + 5])
    assert torch.allclose(fe.weight_values(fl).float(), core.weight, atol=1e-4, rtol=1e-5)


def test_updates_below_half_a_weight_step_stall_under_nearest_but_not_stochastic():
    """Constant lr 0.05 and a normalised update of at most 1 move a weight by <= 0.05, below half
    the 0.25 step of s4.2: round-to-nearest freezes learning, stochastic rounding does not."""
    data = torch.rand(200, 20, generator=torch.Generator().manual_seed(3))

    def make():  # t_invert 1: a soft competition, so many synapses get sizeable updates
        cfg = LayerConfig(kind="linear", out_channels=12, rule="softhebb", t_invert=1.0, lr=0.05,
                          lr_schedule="constant", init_radius=1.0, batchnorm=False)
        return SoftWTALinear(20, cfg, torch.Generator().manual_seed(0))

    fe, fl, _ = _run(FakeQuantEngine, "weight=s4.2:nearest", make, data)
    assert torch.equal(fe.weight_values(fl), quantize(make().weight.double(), "s4.2"))
    d = fe.diagnostics()[0]
    assert d["stalled_fraction"] == 1.0 and d["proposed_updates"] > 0
    assert d["stalled_mass_fraction"] == 1.0 and d["update_transfer"] == 0.0
    fe, fl, _ = _run(FakeQuantEngine, "weight=s4.2:stochastic", make, data)
    d = fe.diagnostics()[0]
    assert 0.5 < d["stalled_fraction"] < 1.0  # a weight moves with probability |change| / 0.25
    # unbiased: the stored |change| (one 0.25 step per move) matches the intended one; the number
    # of moves is a sum of Bernoulli draws, so the ratio's relative spread is <= 1/sqrt(moves)
    moves = d["proposed_updates"] - d["stalled_updates"]
    assert moves > 100
    assert abs(d["update_transfer"] - 1.0) < 5 / moves**0.5


def test_saturation_is_counted_at_both_ends():
    layer = _linear(radius=20.0)  # weights ~ N(0, 4.5^2): far outside s4.3's [-1, 0.875]
    w0 = layer.weight.clone()
    engine = FakeQuantEngine("weight=s4.3")
    engine.attach(layer, 0)
    d = engine.diagnostics()[0]["saturation"]["weight"]
    assert d["below"] == int((w0 < -1.0 - 1 / 16).sum()) and d["above"] == int((w0 > 0.875 + 1 / 16).sum())
    assert d["below"] > 0 and d["above"] > 0


def test_integer_engine_needs_every_role_quantised():
    with pytest.raises(ConfigError, match="integer engine needs every role quantised; input, post, lr are float32"):
        IntegerEngine("weight=s8.7,update=s16.14")


def test_integer_engine_reports_datapath_overflow():
    policy = "input=u32.31,post=s32.31,update=s32.30,lr=u32.32,weight=s32.30"
    layer = _linear()
    engine = IntegerEngine(policy)
    engine.attach(layer, 0)
    with pytest.raises(NeurohebbError, match="integer datapath overflow in u = W x"):
        engine.step(layer, torch.rand(5, 20))


def test_learned_bias_is_refused_with_a_fix():
    with pytest.raises(ConfigError, match="bias = false"):
        FakeQuantEngine("weight=s8.7").attach(_linear(bias=True), 0)


def _datapath_reference(layer, policy_weight: str, norm: str, batches) -> torch.Tensor:
    """The datapath of `steps.datapath` written out by hand for a linear layer whose only
    quantised role is the weight (so steps 1, 3, 5, 8 and 9 do not round)."""
    cfg = layer.cfg
    w = quantize(layer.weight.double(), policy_weight)  # initial weights rounded once
    for x in batches:
        x = x.double().reshape(x.shape[0], -1)
        u = x @ w.t()
        y = activations.post_synaptic(u, cfg.rule, cfg.t_invert, dim=1)
        dw = y.t() @ x - (y * u).sum(0)[:, None] * w
        m = float(dw.abs().max())
        if norm == "max":
            dw = dw / m
        else:  # the smallest power of two at or above max|dW|
            s = 0
            while 2.0 ** s < m:
                s += 1
            while 2.0 ** (s - 1) >= m:
                s -= 1
            dw = dw * 2.0 ** -s
        lr = rules.adaptive_lr(w, cfg.lr, cfg.lr_power)
        w = quantize(w + lr[:, None] * dw, policy_weight)
    return w


@pytest.mark.parametrize("norm", ["max", "pow2"])
def test_the_drift_case_weight_s8_7_norm_pow2_matches_the_written_datapath(norm):
    """The case that drifted between the old role hook and the engine (`weight=s8.7,norm=pow2`,
    three steps): the network's installed step, the engine alone and the hand-written datapath
    give the same weights; pow2 really differs from max (the hook used to ignore it)."""
    data = torch.rand(15, 20, generator=torch.Generator().manual_seed(7))
    batches = [data[s:s + 5] for s in range(0, 15, 5)]
    policy = f"weight=s8.7,norm={norm}"
    ref = _datapath_reference(_linear(radius=1.0), "s8.7", norm, batches)
    engine, layer, _ = _run(FakeQuantEngine, policy, lambda: _linear(radius=1.0), data)
    assert torch.equal(engine.weight_values(layer), ref)
    config = resolve_config("mnist-mlp", overrides=["layers.0.out_channels=12", "layers.0.init_radius=1.0",
                                                     "layers.0.lr_power=0.5", f"precision.policy=\"{policy}\""])
    config.data.dataset = "digits"  # 8x8 inputs: a 64-wide layer (only the geometry changes)
    net = HebbNetwork(config, generator=torch.Generator().manual_seed(0),
                      step=make_step(config.precision.policy, config.precision.mode, seed=3))
    w0 = net.blocks[0].layer.weight.clone()
    wide = [torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    for x in wide:
        net.learn_block(0, x, propagate=False)
    layer = SoftWTALinear(64, config.layers[0])
    layer.weight.copy_(w0)  # the rounded initial weights the network started from
    assert torch.equal(net.step.weight_values(net.blocks[0].layer), _datapath_reference(layer, "s8.7", norm, wide))
    if norm == "pow2":
        assert not torch.equal(ref, _datapath_reference(_linear(radius=1.0), "s8.7", "max", batches))


STEP_POLICIES = [  # every policy field: roles, roundings, overflow, norm, shared-exponent and fixed weights
    "weight=s8.5:nearest,input=u9.8:nearest,post=s16.15:nearest,update=s16.14:nearest,lr=u16.16:nearest,norm=max",
    "weight=m8:stochastic,input=u9.8:stochastic,post=s16.15:stochastic,update=s16.14:stochastic,lr=u16.16:stochastic,norm=pow2",
    "weight=s6.3:truncate:wrap,input=u9.8:floor,post=s16.15:truncate,update=s16.14:floor,lr=u16.16:nearest,norm=pow2",
    "weight=m6:floor,input=u8.8:stochastic,post=u16.16:nearest,update=s12.10:stochastic:wrap,lr=u16.16:truncate,norm=max",
]


@pytest.mark.parametrize("policy", STEP_POLICIES)
@pytest.mark.parametrize("make", [_linear, _conv], ids=["linear", "conv"])
def test_make_step_engines_agree_bit_for_bit_from_initial_rounding_on(policy, make):
    """fake-quant = integer under every policy field, through `make_step` (the only way a run
    gets a step), including the initial rounding and the stochastic draws' order."""
    g = torch.Generator().manual_seed(9)
    data = torch.rand(20, 20, generator=g) if make is _linear else torch.randn(10, 2, 6, 6, generator=g)
    out = {}
    for mode in ("fake-quant", "integer"):
        layer, step = make(), make_step(policy, mode, seed=4)
        step.attach(layer, 0)
        w_init = layer.weight.clone()
        us = [step.step(layer, data[s:s + 5]) for s in range(0, len(data), 5)]
        out[mode] = (w_init, us, step.weight_values(layer), step.diagnostics()[0]["saturation"])
    (wf, uf, vf, sf), (wi, ui, vi, si) = out["fake-quant"], out["integer"]
    assert torch.equal(wf, wi) and not torch.equal(wf, make().weight)  # initial weights were rounded
    assert all(torch.equal(a, b) for a, b in zip(uf, ui))
    assert torch.equal(vf, vi) and sf == si


@pytest.mark.parametrize("make", [_linear, _conv], ids=["linear", "conv"])
def test_every_step_under_the_all_float_policy_is_the_float32_step(make):
    g = torch.Generator().manual_seed(10)
    data = torch.rand(20, 20, generator=g) if make is _linear else torch.randn(10, 2, 6, 6, generator=g)
    assert isinstance(make_step("float32", "fake-quant"), Float32Step)
    ref_layer, ref = make(), Float32Step()
    for s in range(0, len(data), 5):
        ref.step(ref_layer, data[s:s + 5])
    layer = make()
    engine = FakeQuantEngine("float32", seed=0)  # the datapath with every role float (float64)
    engine.attach(layer, 0)
    for s in range(0, len(data), 5):
        engine.step(layer, data[s:s + 5])
    assert torch.allclose(engine.weight_values(layer).float(), ref_layer.weight, atol=1e-5, rtol=1e-5)


def test_post_training_quantisation_rounds_a_copy():
    config = resolve_config("digits", overrides=["layers.0.out_channels=4", "layers.1.out_channels=6"])
    net = HebbNetwork(config, generator=torch.Generator().manual_seed(0))
    before = [b.layer.weight.clone() for b in net.blocks]
    qnet, diagnostics = post_training_quantize(net, "m4")
    for b, w0, qb in zip(net.blocks, before, qnet.blocks):
        assert torch.equal(b.layer.weight, w0)
        assert torch.equal(qb.layer.weight, quantize(w0, NumberFormat.parse("m4")))
    assert diagnostics[0]["weight_histogram"]["distinct_codes"] <= 15


def test_sampled_statistics_keep_the_weights_and_the_saturation_counts():
    """stats_every only thins the stalled-synapse figures: weights and saturation are unchanged."""
    policy = FULL.format(r="stochastic", w="m8", n="max")
    data = torch.rand(40, 20, generator=torch.Generator().manual_seed(2))
    results = {}
    for every in (1, 3):
        for cls in (FakeQuantEngine, IntegerEngine):
            layer = _linear()
            engine = cls(policy, seed=5, stats_every=every)
            engine.attach(layer, 0)
            for s in range(0, 40, 5):
                engine.step(layer, data[s:s + 5])
            results[every, cls.mode] = (engine.weight_values(layer), engine.diagnostics()[0])
    full, sampled = results[1, "fake-quant"], results[3, "fake-quant"]
    assert torch.equal(full[0], sampled[0]) and torch.equal(sampled[0], results[3, "integer"][0])
    assert full[1]["saturation"] == sampled[1]["saturation"]
    assert (full[1]["steps"], full[1]["sampled_steps"]) == (8, 8)
    assert (sampled[1]["steps"], sampled[1]["sampled_steps"]) == (8, 3)  # steps 0, 3, 6
    assert sampled[1]["proposed_updates"] < full[1]["proposed_updates"]
    assert sampled[1]["proposed_updates"] == results[3, "integer"][1]["proposed_updates"]
    with pytest.raises(ConfigError, match="stats_every must be >= 1"):
        FakeQuantEngine(policy, stats_every=0)
