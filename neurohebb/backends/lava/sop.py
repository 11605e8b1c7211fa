"""Loihi sum-of-products plasticity in NumPy: neurohebb's own integer engine for on-chip rules.

Why it exists: a learning rule that runs inside Lava (a `Loihi2FLearningRule` on a
`LearningDense`) is only trustworthy if something independent predicts what it does. This module
re-implements, from the published Loihi learning-engine description and Lava's bit-approximate
CPU model (lava 0.10, `LearningConnectionModelBitApproximate`), the integer arithmetic of such a
rule: traces with stochastic decay and impulse rounding, per-product shifts and saturation, the
synaptic accumulator and its stochastic rounding. Fed the same pre/post spikes and random seeds
it reproduces Lava's weight trajectory bit for bit (tests/test_lava_learning.py). It never
imports Lava.

Rule strings (the form the feasibility report emits): a sum of products such as
``"2^-4 * x1 * y0 - 2^-6 * w * y0"``. Each product holds one optional scale literal (``3``,
``2^-4``, ``3*2^-4``; all literals of a product multiply into its scale), a dependency (``x0``
pre spike, ``y0`` post spike, or ``u<k>``: every ``2**k`` epochs, traces read at the epoch's end;
the first dependency written) and factors among ``x0 y0 x1 x2 y1 y2 y3 w``. Lava also accepts
``(w + C)`` and ``sgn(...)`` factors and delay/tag targets; this engine rejects those with a
clear error rather than guess.

A trace with ``tau = 0`` is, in Lava's model, not a trace without decay: its value is the impulse
in the step of a spike and 0 otherwise (the epoch's history starts from zeros). A counter of the
spikes in an epoch needs a large ``tau`` instead (`COUNTING_TAU`).

Lava behaviours reproduced on purpose (they are not Loihi silicon, and they matter for bit
equality): one uniform random number per epoch is shared by every synapse when rounding the
weight accumulator, and its generator is always seeded with 2 (the rule's ``rng_seed`` only seeds
the traces); trace impulses compare a 7-bit random integer with an 8-bit fraction; the product
accumulator saturates at ``[-(2**15) - 1, 2**15 - 1]``; weights saturate at ``[-256, 255]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import ConfigError
from ...onchip.model import LearningEngineModel
from ...onchip.rulestr import (  # noqa: F401  (re-exported: the parser lives with the chip model)
    COUNTING_TAU, DEPENDENCIES, TRACES, Product, SumOfProducts, TraceConfig, default_model, parse_rule,
)


# ---------------------------------------------------------------------------------------------
# Traces and random numbers


class _TraceRandom:
    """Two streams per trace side, advanced twice per time step, as Lava's `TraceRandom`."""

    def __init__(self, seed_decay: int, seed_impulse: int, trace_bits: int = 7):
        self._bits = trace_bits
        self._decay = np.random.default_rng(seed=seed_decay)
        self._impulse = np.random.default_rng(seed=seed_impulse)
        self.advance()

    def advance(self) -> None:
        self.decay = self._decay.random(1)[0]
        self.impulse = self._impulse.integers(0, 2**self._bits, size=1, dtype=int)[0]


def _stochastic_round(values: np.ndarray, random, probabilities: np.ndarray) -> np.ndarray:
    return (values + (random < probabilities).astype(int)).astype(int)


def _add_impulse(values: np.ndarray, random, whole: np.ndarray, frac: np.ndarray, trace_max: int = 127) -> np.ndarray:
    return np.clip(_stochastic_round(values + whole, random, frac), 0, trace_max)


def _decay(values: np.ndarray, taus: np.ndarray, random: float) -> np.ndarray:
    scaled = np.exp(-1.0 / taus) * values
    return _stochastic_round(np.floor(scaled), random, scaled % 1)


# ---------------------------------------------------------------------------------------------
# The engine


@dataclass
class SopState:
    """Everything the learning engine keeps between time steps."""

    weights: np.ndarray  # int [K, I], 9-bit signed
    x: np.ndarray  # int [2, I]: x1, x2
    y: np.ndarray  # int [3, K]: y1, y2, y3
    tx: np.ndarray  # int [I]: within-epoch time of the last pre spike (0: none)
    ty: np.ndarray  # int [K]
    time_step: int = 0
    history: list[np.ndarray] = field(default_factory=list)


class SopEngine:
    """Run a sum-of-products rule on given spikes, one time step at a time.

    ``weights`` are the integers Lava stores (already on the ``num_weight_bits`` grid; Lava
    truncates them once, before the first step). ``step(pre, post)`` takes the pre-synaptic
    spikes and the post-synaptic spikes of the same time step, as Lava's `LearningDense` receives
    them, and applies the rule at the end of every ``t_epoch`` steps.
    """

    def __init__(self, rule: str | SumOfProducts, weights: np.ndarray, traces: TraceConfig = TraceConfig(),
                 t_epoch: int = 1, rng_seed: int = 0, model: LearningEngineModel | None = None):
        self.model = model = model or (rule.model if isinstance(rule, SumOfProducts) and rule.model else default_model())
        self.rule = parse_rule(rule, model) if isinstance(rule, str) else rule
        self.t_epoch = model.check_t_epoch(int(t_epoch))
        self.traces = traces
        w = np.asarray(weights).astype(np.int32)
        if w.ndim != 2:
            raise ConfigError(f"weights must be [post, pre], got shape {w.shape}")
        k, i = w.shape
        self.shape = (k, i)
        self.state = SopState(w, np.zeros((2, i), dtype=int), np.zeros((3, k), dtype=int),
                              np.zeros(i, dtype=int), np.zeros(k, dtype=int))
        fb, tb = model.impulse_fraction_bits, model.trace_bits
        self._tmax = model.trace_max
        self._x_int, self._x_frac = traces.impulses(("x1", "x2"), fb)
        self._y_int, self._y_frac = traces.impulses(("y1", "y2", "y3"), fb)
        self._x_taus = traces.taus(("x1", "x2"))
        self._y_taus = traces.taus(("y1", "y2", "y3"))
        self._x_rand = _TraceRandom(rng_seed, rng_seed + 1, tb)
        self._y_rand = _TraceRandom(rng_seed + 2, rng_seed + 3, tb)
        self._w_rng = np.random.default_rng(seed=2)  # Lava's ConnVarRandom: fixed seed
        self._w_random = self._w_rng.random(1)[0]

    @property
    def weights(self) -> np.ndarray:
        return self.state.weights.copy()

    def step(self, pre: np.ndarray, post: np.ndarray) -> None:
        s = self.state
        s.time_step += 1
        pre = np.asarray(pre).astype(bool).reshape(-1)
        post = np.asarray(post).astype(bool).reshape(-1)
        ts = s.time_step % self.t_epoch or self.t_epoch
        # pre-synaptic spikes: a second spike in the epoch adds its impulse at once (random 0)
        multi = (s.tx > 0) & pre
        s.x[0, multi] = _add_impulse(s.x[0, multi], 0, self._x_int[0], self._x_frac[0], self._tmax)
        s.x[1, multi] = _add_impulse(s.x[1, multi], 0, self._x_int[1], self._x_frac[1], self._tmax)
        s.tx[pre] = ts
        self._x_rand.advance()
        self._y_rand.advance()
        multi = (s.ty > 0) & post
        s.y[:, multi] = _add_impulse(s.y[:, multi], self._y_rand.impulse, self._y_int[:, None], self._y_frac[:, None], self._tmax)
        s.ty[post] = ts
        self._x_rand.advance()
        self._y_rand.advance()
        if s.time_step % self.t_epoch == 0:
            self._learn()

    def _history(self, start: np.ndarray, taus: np.ndarray, times: np.ndarray, rand: _TraceRandom,
                 whole: np.ndarray, frac: np.ndarray) -> np.ndarray:
        hist = np.zeros((self.t_epoch + 1,) + start.shape, dtype=int)
        hist[0] = start
        active = taus != 0
        for t in range(1, self.t_epoch + 1):
            hist[t][active] = _decay(hist[t - 1][active], taus[active][:, None], rand.decay)
            ids = np.where(times == t)[0]
            hist[t][:, ids] = _add_impulse(hist[t][:, ids], rand.impulse, whole[:, None], frac[:, None], self._tmax)
        return hist

    def _learn(self) -> None:
        s = self.state
        self._w_random = self._w_rng.random(1)[0]
        x0 = s.tx > 0
        y0 = s.ty > 0
        xh = self._history(s.x, self._x_taus, s.tx, self._x_rand, self._x_int, self._x_frac)
        yh = self._history(s.y, self._y_taus, s.ty, self._y_rand, self._y_int, self._y_frac)
        s.x, s.y = xh[-1].copy(), yh[-1].copy()
        values = {
            "x0": x0[None, :], "y0": y0[:, None], "w": s.weights,
            "x1_x0": xh[s.tx, 0].diagonal()[None, :], "x2_x0": xh[s.tx, 1].diagonal()[None, :],
            "y1_x0": yh[s.tx, 0].T, "y2_x0": yh[s.tx, 1].T, "y3_x0": yh[s.tx, 2].T,
            "x1_y0": xh[s.ty, 0], "x2_y0": xh[s.ty, 1],
            "y1_y0": yh[s.ty, 0].diagonal()[:, None], "y2_y0": yh[s.ty, 1].diagonal()[:, None],
            "y3_y0": yh[s.ty, 2].diagonal()[:, None],
            "x1_u": xh[-1, 0][None, :], "x2_u": xh[-1, 1][None, :],
            "y1_u": yh[-1, 0][:, None], "y2_u": yh[-1, 1][:, None], "y3_u": yh[-1, 2][:, None],
            "u": 0,
        }
        ks = {p.decimate for p in self.rule.products if p.dependency == "u"}
        if ks:
            k = ks.pop()
            values["u"] = 1 if int(s.time_step / self.t_epoch) % 2**k == 0 else 0
        # int32 throughout, as Lava computes it (an overflow would wrap the same way)
        m = self.model
        widths = m.factor_widths
        acc_min, acc_max = m.accumulator_range
        acc = (s.weights.astype(np.int32) << m.weight_shift).astype(np.int32)
        for product in self.rule.products:
            term = np.ones(self.shape, dtype=np.int32)
            term *= values[product.dependency]
            for name in product.factors:
                v = values[name if name in ("x0", "y0", "w") else f"{name}_{product.dependency}"]
                term *= np.clip(v, -(2 ** widths[name]), 2 ** widths[name] - 1).astype(np.int32)
            term *= product.mantissa
            term = np.right_shift(term, m.product_shift(product.factors))
            term = np.left_shift(term, product.exponent + m.exponent_offset)
            term = np.clip(term, acc_min, acc_max)
            acc = np.clip(acc + term, acc_min, acc_max)
        # stochastic rounding of the fractional accumulator bits, one random number per epoch
        scaled = acc / 2**m.round_shift
        rounded = _stochastic_round(np.floor(scaled), self._w_random, scaled % 1) * 2**m.round_shift
        w_lo, w_hi = m.weight_range
        s.weights = np.clip(rounded.astype(np.int32) >> m.weight_shift, w_lo, w_hi).astype(np.int32)
        s.tx[:] = 0
        s.ty[:] = 0

    def run(self, pre: np.ndarray, post: np.ndarray, record_every: int | None = None) -> np.ndarray:
        """Feed spike trains [T, I] and [T, K]; return weights after every ``record_every`` steps
        (default: every epoch) as [n, K, I]."""
        pre, post = np.asarray(pre), np.asarray(post)
        if pre.ndim != 2 or post.ndim != 2 or len(pre) != len(post):
            raise ConfigError(f"spike trains must be [T, pre] and [T, post] with the same T, got {pre.shape} and {post.shape}")
        if pre.shape[1] != self.shape[1] or post.shape[1] != self.shape[0]:
            raise ConfigError(f"spike trains {pre.shape[1]} pre / {post.shape[1]} post do not match weights {self.shape}")
        every = record_every or self.t_epoch
        out = []
        for t in range(len(pre)):
            self.step(pre[t], post[t])
            if (t + 1) % every == 0:
                out.append(self.weights)
        return np.stack(out) if out else np.zeros((0,) + self.shape, dtype=np.int64)
