"""On-chip learning: neurohebb's integer sum-of-products engine against hand computation and
against Lava's LearningDense (bit-approximate fixed point), which it must match bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from neurohebb.backends.lava.sop import COUNTING_TAU, SopEngine, TraceConfig, parse_rule
from neurohebb.errors import ConfigError


def _one_step(rule: str, w: int, traces: TraceConfig = TraceConfig(x1_impulse=16)) -> int:
    eng = SopEngine(rule, np.array([[w, 0]]), traces)
    eng.step(pre=[1, 0], post=[1])
    return int(eng.weights[0, 0])


def test_hebbian_product_by_hand():
    # x1 = impulse 16 in the spike step; 2^-2 * 16 * 1 = 4 weight units, no rounding needed
    assert _one_step("2^-2 * x1 * y0", 0) == 4
    assert _one_step("3*2^-3 * x1 * y0", 0) == 6  # 3/8 * 16
    assert _one_step("2^-2 * x1 * y0", 254) == 255  # saturates at the 9-bit signed maximum


def test_weight_decay_by_hand_with_stochastic_rounding():
    assert _one_step("-2^-1 * w * y0", 100) == 50
    # 3 - 3/8 = 2.625: rounds up iff Lava's synaptic random number (seed 2, second draw) < 0.625
    rng = np.random.default_rng(2)
    rng.random(1)
    expected = 3 if rng.random(1)[0] < 0.625 else 2
    assert _one_step("-2^-3 * w * y0", 3) == expected


def test_no_post_spike_no_change_for_y0_rules():
    eng = SopEngine("2^-2 * x1 * y0 - 2^-5 * w * y0", np.array([[40, -20]]), TraceConfig(x1_impulse=16, x1_tau=4))
    eng.run(np.ones((5, 2), bool), np.zeros((5, 1), bool))
    assert eng.weights.tolist() == [[40, -20]]


def test_parse_rule_normalises_like_lava():
    p = parse_rule("16 * x1 * y0 - 2^-4 * y1 * x0 + 2^-3 * u0 * x1 * y1").products
    assert (p[0].mantissa, p[0].exponent, p[0].dependency) == (4, 2, "y0")  # 16 = 4 * 2^2
    assert (p[1].mantissa, p[1].exponent, p[1].dependency, p[1].factors) == (-1, -4, "x0", ("y1",))
    assert (p[2].dependency, p[2].decimate, p[2].factors) == ("u", 0, ("x1", "y1"))


@pytest.mark.parametrize(
    "rule, fragment",
    [("", "non-empty"), ("x1 * w", "no dependency"), ("2^-2 * (w + 1) * y0", "brackets"), ("9 * x0", "4 bits"),
     ("2^12 * x0", "outside -7..8"), ("2^-2 * z1 * y0", "not a factor"), ("u0 * x1 + u1 * x1", "different k")],
)
def test_rules_the_engine_cannot_run_are_rejected(rule, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_rule(rule)


# ---------------------------------------------------------------------------------------------
# Against Lava


@pytest.fixture(scope="module")
def lava():
    from neurohebb.backends.lava import require_lava

    return require_lava()


def _lava_trajectory(lava, rule, traces: TraceConfig, t_epoch, seed, w0, pre, post):
    """LearningDense fed given pre and post spikes; weights after every epoch."""
    lr = lava.Loihi2FLearningRule(dw=rule, t_epoch=t_epoch, rng_seed=seed, **traces.__dict__)
    src = lava.SourceRingBuffer(data=pre.T.astype(np.int32))
    bap = lava.SourceRingBuffer(data=post.T.astype(np.int32))
    dense = lava.LearningDense(weights=w0.copy(), learning_rule=lr, sign_mode=lava.SignMode.MIXED, num_weight_bits=8)
    src.s_out.connect(dense.s_in)
    bap.s_out.connect(dense.s_in_bap)
    cfg = lava.Loihi2SimCfg(select_tag="fixed_pt")
    out = []
    try:
        for _ in range(len(pre) // t_epoch):
            dense.run(condition=lava.RunSteps(num_steps=t_epoch), run_cfg=cfg)
            out.append(np.asarray(dense.weights.get()).astype(np.int64))
    finally:
        dense.stop()
    return np.stack(out)


@pytest.mark.parametrize(
    "rule, traces, t_epoch",
    [
        # spike-timing rule with fractional impulses (exercises the trace rounding), every step
        ("2^-3 * x1 * y0 - 2^-5 * w * y0 + 3*2^-4 * y1 * x0",
         TraceConfig(x1_impulse=20.3, x1_tau=4, y1_impulse=16.7, y1_tau=6), 1),
        # the end-of-sample form the feasibility report emits: u0 dependency, counting traces
        ("2^-3 * u0 * x1 * y1 - 2^-7 * u0 * y1 * y2 * w",
         TraceConfig(x1_impulse=127 / 16, x1_tau=COUNTING_TAU, y1_impulse=20, y1_tau=COUNTING_TAU,
                     y2_impulse=20, y2_tau=COUNTING_TAU), 8),
    ],
)
def test_engine_matches_lava_learning_dense_bit_for_bit(lava, rule, traces, t_epoch):
    rng = np.random.default_rng(0)
    steps, n_pre, n_post = 32, 6, 3
    pre, post = rng.random((steps, n_pre)) < 0.3, rng.random((steps, n_post)) < 0.2
    w0 = rng.integers(-100, 100, size=(n_post, n_pre)) * 2
    expected = _lava_trajectory(lava, rule, traces, t_epoch, 5, w0, pre, post)
    ours = SopEngine(rule, w0, traces, t_epoch, rng_seed=5).run(pre, post)
    assert np.abs(expected[-1] - w0).sum() > 50  # the rule did change the weights
    np.testing.assert_array_equal(ours, expected)


def test_packed_weights_round_trip_through_float64_and_refuse_what_does_not_fit(lava):
    from neurohebb.backends.lava.procs.learning_probe import VALUE_BITS, VALUES_PER_WORD, pack_ints, unpack_ints

    half = 1 << (VALUE_BITS - 1)
    values = np.random.default_rng(3).integers(-half, half, size=(7, 13))
    values[0, :2] = (-half, half - 1)  # both ends of the range
    words = pack_ints(values)
    assert words.shape == (-(-values.size // VALUES_PER_WORD),) and words.max() < 2**53  # exact as float64
    np.testing.assert_array_equal(unpack_ints(words.astype(np.float64).astype(np.int64), values.shape), values)
    with pytest.raises(ValueError, match="cannot be packed"):
        pack_ints(np.array([half]))


def test_the_learning_probe_reads_what_lava_itself_reports(lava):
    """The packed weights and spike rings against Lava's own `weights.get()` and sink `RingBuffer`,
    read from the same run after every epoch, weights driven into saturation at both ends."""
    from neurohebb.backends.lava.procs.learning_probe import ReadableLearningDense, SpikeRing

    rng = np.random.default_rng(1)
    steps, n_pre, n_post, t_epoch = 24, 60, 5, 4
    pre, post = rng.random((steps, n_pre)) < 0.4, rng.random((steps, n_post)) < 0.5
    w0 = rng.integers(-127, 128, size=(n_post, n_pre)) * 2
    w0[0], w0[1] = 254, -254  # rows at the ends of the 9-bit range, pushed past them by the rule
    lr = lava.Loihi2FLearningRule(dw="2^1 * x1 * y0 - 2^1 * y1 * x0", t_epoch=t_epoch, rng_seed=2,
                                  x1_impulse=40, x1_tau=4, y1_impulse=40, y1_tau=4)
    src = lava.SourceRingBuffer(data=pre.T.astype(np.int32))
    bap = lava.SourceRingBuffer(data=post.T.astype(np.int32))
    dense = ReadableLearningDense(weights=w0.copy(), learning_rule=lr, sign_mode=lava.SignMode.MIXED, num_weight_bits=8)
    ring, lava_ring = SpikeRing(shape=(n_pre,), buffer=t_epoch + 1), lava.SinkRingBuffer(shape=(n_pre,), buffer=t_epoch + 1)
    src.s_out.connect(dense.s_in)
    src.s_out.connect(ring.a_in)
    src.s_out.connect(lava_ring.a_in)
    bap.s_out.connect(dense.s_in_bap)
    cfg = lava.Loihi2SimCfg(select_tag="fixed_pt")
    seen = set()
    try:
        for epoch in range(steps // t_epoch):
            dense.run(condition=lava.RunSteps(num_steps=t_epoch), run_cfg=cfg)
            weights = dense.read_weights()
            np.testing.assert_array_equal(weights, np.asarray(dense.weights.get()).astype(np.int64))
            seen.update(np.unique(weights).tolist())
            window = np.arange(epoch * t_epoch + 1, (epoch + 1) * t_epoch + 1)
            theirs = np.asarray(lava_ring.data.get())[:, (window - 1) % (t_epoch + 1)].T != 0
            np.testing.assert_array_equal(ring.read(window), theirs)
            np.testing.assert_array_equal(theirs, pre[window - 1])
    finally:
        dense.stop()
    assert min(seen) <= -250 and max(seen) >= 250  # the saturated ends were read too


def bar_images(rng: np.random.Generator, n: int) -> np.ndarray:
    """8x8 uint8 images of one bright horizontal or vertical bar each, plus dim noise."""
    images = rng.integers(0, 40, size=(n, 8, 8)).astype(np.uint8)
    for img, k in zip(images, rng.integers(0, 16, size=n)):
        if k < 8:
            img[k, :] = 255
        else:
            img[:, k - 8] = 255
    return images.reshape(n, 1, 8, 8)


def test_closed_loop_wta_learning_in_lava_matches_the_engine(lava):
    """The layer learns in Lava with its own WTA spikes; the engine replays those spikes."""
    from neurohebb.backends.lava.learning import OnChipRule, compare, run_lava_learning
    from neurohebb.backends.lava.mapping import WTACircuit, map_arrays
    rng = np.random.default_rng(0)
    images = bar_images(rng, 40)
    w = np.abs(rng.normal(size=(8, 64)))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    net = map_arrays(w, images, WTACircuit(steps=12, spikes_target=3))
    rule = OnChipRule()
    run = run_lava_learning(net, images[:6], rule)
    result = compare(run, rule)
    assert result["post_spikes"] > 0 and result["synapses_changed"] > 20
    assert result["identical"], result


def test_trace_specs():
    from neurohebb.backends.lava.learning import parse_traces

    t = parse_traces("x1=16:8, y1=20.5:65536")
    assert (t.x1_impulse, t.x1_tau, t.y1_impulse, t.y1_tau, t.y2_impulse) == (16, 8, 20.5, 65536, 0)
    for bad, fragment in (("z1=1:2", "NAME=IMPULSE:TAU"), ("x1=16", "NAME=IMPULSE:TAU"), ("x1=a:2", "numbers"),
                          ("x1=200:2", "0..127")):
        with pytest.raises(ConfigError, match=fragment):
            parse_traces(bad)
