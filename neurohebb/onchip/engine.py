"""A chip's learning engine in closed loop with a spiking WTA circuit: batch 1, integer, vectorised.

What runs, per global time step t (1-based, as Lava counts; one sample owns ``window = steps +
gap`` steps and sample n's input is sent at t = n*window + 1 .. n*window + steps):

    input spikes s(t) (rate code of the 8-bit pixels)
      -> plastic synapses W (integers, 9-bit signed inside the engine, ``weight_exp`` shift)
         deliver at t + 1 what they received at t (weights as of the end of step t)
      -> K WTA neurons (Lava's bit-accurate LIF: instant current, no voltage leak, threshold
         ``vth`` [+ an adaptive part, see `Circuit`], voltage reset at the start of each window)
      -> one interneuron that fires at t + 1 if any WTA neuron fired at t
      -> inhibition of every WTA neuron by ``inh_weight * 2**inh_exp`` at t + 2
         (and/or, with ``Circuit.lat_weight``, direct inhibitory synapses between the WTA
         neurons: each spike at t inhibits every WTA neuron, itself included, by ``lat_weight *
         2**lat_exp`` at t + 1; k spikes sum to k times it, which Lava's LIF shifts 6 bits up in
         int32 and wraps into the 24-bit current -- a large burst's inhibition turns into
         excitation, see `_wrap_current`)
    learning engine: traces x1 x2 (pre spikes) and y1 y2 y3 (WTA spikes, the back-propagated
    action potential), a sum-of-products rule applied at the end of every ``t_epoch`` steps.

What the neuron program writes to y1-y3: by default nothing. The post traces are spike traces of
the WTA neuron (impulse and tau per trace), as a `Loihi2FLearningRule` defines them. A variant may
ask the Loihi 2 neuron program (which can write post traces) for one of two values, written once
at the end of each sample window, before the learning epoch that ends there:
- ``drive``: its summed synaptic input over the sample (a second integrator that spikes do not
  reset), ``floor(trace_max * D_k / scale)`` -- SoftHebb's ``u_k``;
- ``harmonic``: a learning rate that falls as 1/n with the number n of samples the neuron has
  fired in, ``max(round(trace_max / (n + 1)), floor)`` in a window where it fired, 0 where it did
  not (a per-neuron counter: the running-mean rate of online k-means, MacQueen 1967).
The rule reads a written value as Lava's `LearningDense` with a `Loihi3FLearningRule` does: the
value sent at the learning step, decayed over the epoch as a trace of tau 2**16 - 1 (stochastic
rounding: now and then one less). The adaptive threshold (homeostasis) is the neuron program's
other addition to the LIF; it changes between samples only. `backends.lava.procs.harmonic_lif`
is this neuron program in Lava, held to this engine by `tests/test_onchip_lava_neuron.py`.

This is the same arithmetic as `backends.lava.sop.SopEngine` (which is held bit for bit to Lava's
`LearningDense`) and `backends.lava.emulate` (held spike for spike to Lava's LIF circuit), written
so a 60,000-image epoch takes minutes: per sample one matmul for the input drive of every step,
a K-wide loop over the window's steps for the WTA, trace bookkeeping per epoch instead of per
step, trace histories by table look-up (one random number per epoch decays every trace, so a
trace's decay is one 128-entry table), and rule products evaluated only on rows a spike can
change. `tests/test_onchip_lava.py` runs the same closed loop in Lava and compares weights and
spikes.

Lava behaviours kept on purpose (as in `sop`): one synaptic random number per epoch, its
generator seeded with 2; trace randoms from ``rng_seed .. rng_seed + 3``; a second pre spike in
an epoch adds its impulse at once with random 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError, NeurohebbError
from .model import LearningEngineModel
from .rulestr import SumOfProducts, TraceConfig, parse_rule

ACT_SHIFT = 6  # Loihi aligns synaptic input and threshold 6 bits up (24-bit state)
UV_LIMIT = 2**23
X_TRACES = ("x1", "x2")
Y_TRACES = ("y1", "y2", "y3")
WRITTEN_TAU = 2**16 - 1  # Lava's Loihi3FLearningRule: the decay of neuron-written post traces


@dataclass(frozen=True)
class Circuit:
    """The spiking WTA circuit in the chip's units (see the module docstring).

    ``theta_plus`` > 0 turns on homeostasis in the neuron program: each spike of neuron k raises
    its threshold by ``theta_plus`` (threshold units), and at the end of every sample the raise
    decays by ``theta >> theta_decay_shift`` (integer arithmetic a Loihi 2 neuron program can
    run; Diehl & Cook 2015 use the same idea). ``theta_plus = 0`` is Lava's plain `LIFReset`.

    Two inhibition paths, each present when its weight is not 0: the interneuron
    (``inh_weight * 2**inh_exp``: any WTA spike at t inhibits every WTA neuron at t + 2) and
    lateral synapses (``lat_weight * 2**lat_exp``: K x K WTA-to-WTA synapses, the diagonal
    included; every spike at t counts, at t + 1). Why both: a neuron crossing its threshold
    within the inhibition's latency of the winner fires too and learns the same image; a weak
    lateral inhibition one step after the first spike stops those near-ties, and the strong
    interneuron inhibition a step later silences the rest (measured on full MNIST in the README's
    on-chip section). A strong lateral path alone does not work: once a step's input minus k
    spikes' inhibition, shifted 6 bits up, falls to -2**23 or below, the WTA's current wraps and
    excites instead (as in Lava; with the lateral path alone the engine follows, through the gap
    steps and into the next window; with both paths such a wrap is an error).
    `backends.lava.circuit.build` builds either path, or both, in Lava.
    """

    steps: int
    gap: int
    vth: int
    inh_weight: int
    inh_exp: int
    weight_exp: int
    theta_plus: int = 0
    theta_decay_shift: int = 10
    lat_weight: int = 0
    lat_exp: int = 0

    @property
    def window(self) -> int:
        return self.steps + self.gap

    @property
    def lateral(self) -> bool:
        """Whether the lateral path exists."""
        return self.lat_weight != 0

    @property
    def interneuron(self) -> bool:
        """Whether the interneuron path exists."""
        return self.inh_weight != 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.gap < 2:
            raise ConfigError(f"circuit needs steps >= 1 and gap >= 2, got steps={self.steps} gap={self.gap}")
        if not 1 <= self.vth < 2**17:
            raise ConfigError(f"WTA threshold {self.vth} does not fit the 17-bit threshold register")


def rate_table(steps: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """bool [256, steps]: the deterministic rate code of every pixel value (as `lava.encoding`):
    pixel p spikes at step t when floor((2(t+1)p + 255) / 510) exceeds floor((2tp + 255) / 510)."""
    p = torch.arange(256, device=device, dtype=torch.int64)[:, None]
    t = torch.arange(steps, device=device, dtype=torch.int64)[None, :]
    return (2 * (t + 1) * p + 255) // 510 > (2 * t * p + 255) // 510


def rate_code(pixels: torch.Tensor, steps: int) -> torch.Tensor:
    """uint8 pixels [N, I] -> bool spike trains [N, steps, I]."""
    return rate_table(steps, pixels.device)[pixels.to(torch.int64)].transpose(1, 2)


class _Streams:
    """Lava's random numbers, generated in blocks: trace randoms advance twice a step (decay
    float, impulse integer per side), the synaptic random once an epoch (seed 2)."""

    BLOCK = 1 << 16

    def __init__(self, seed: int, trace_bits: int):
        self._gens = {"xd": np.random.default_rng(seed), "xi": np.random.default_rng(seed + 1),
                      "yd": np.random.default_rng(seed + 2), "yi": np.random.default_rng(seed + 3),
                      "w": np.random.default_rng(2)}
        self._bits = trace_bits
        self._buf = {k: np.zeros(0) for k in self._gens}
        self._start = {k: 0 for k in self._gens}

    def get(self, name: str, index: int) -> float:
        buf, start = self._buf[name], self._start[name]
        if not start <= index < start + len(buf):
            if index < start:
                raise RuntimeError("random streams only move forward")
            gen = self._gens[name]
            skip = index - (start + len(buf))
            while skip > 0:  # never needed in order, kept for safety
                n = min(skip, self.BLOCK)
                self._draw(name, gen, n)
                skip -= n
            self._start[name] = index
            self._buf[name] = self._draw(name, gen, self.BLOCK)
            buf, start = self._buf[name], index
        return buf[index - start]

    def _draw(self, name, gen, n):
        if name in ("xi", "yi"):
            return gen.integers(0, 2**self._bits, size=n, dtype=int)
        return gen.random(n)


class ChipLearningLoop:
    """One plastic layer [K, I] learning in closed loop with the WTA circuit, sample by sample."""

    def __init__(self, model: LearningEngineModel, rule: str | SumOfProducts, traces: TraceConfig,
                 weights: torch.Tensor, circuit: Circuit, t_epoch: int | None = None, rng_seed: int = 0,
                 device: str | torch.device = "cpu", written: dict[str, float] | None = None):
        self.model = model
        self.rule = parse_rule(rule, model) if isinstance(rule, str) else rule
        self.circuit = circuit
        self.t_epoch = model.check_t_epoch(int(t_epoch if t_epoch else circuit.window))
        model.check_weight_exponent(circuit.weight_exp)
        for name in X_TRACES + Y_TRACES:
            model.check_trace(name, getattr(traces, f"{name}_impulse"), getattr(traces, f"{name}_tau"))
        self.traces = traces
        # neuron-written post traces (Loihi 2 neuron programs), see the module docstring: name ->
        # scale (a float: "drive") or ("harmonic", floor)
        self.written = dict(written or {})
        for name, spec in self.written.items():
            if isinstance(spec, tuple) and (spec[0] != "harmonic" or not 0 <= int(spec[1]) <= model.trace_max):
                raise ConfigError(f"neuron-written trace {name}: {spec!r} is neither a drive scale nor "
                                  f"('harmonic', floor) with floor in 0..{model.trace_max}")
        if self.written:
            if not model.neuron_written_traces:
                raise ConfigError(f"{model.chip}'s neurons cannot write post traces (post_trace_source is not neuron-program)")
            if (t_epoch or circuit.window) != circuit.window or any(n not in Y_TRACES for n in self.written):
                raise ConfigError("neuron-written traces need one learning epoch per sample window and y1..y3 names")
        self._written_now: dict[int, torch.Tensor] = {}
        self.device = torch.device(device)
        dev = self.device
        w = torch.as_tensor(weights, dtype=torch.int64).to(dev)
        if w.ndim != 2:
            raise ConfigError(f"weights must be [neurons, inputs], got shape {tuple(w.shape)}")
        lo, hi = model.weight_range
        self.weights = w.clamp(lo, hi)
        self.k, self.i = w.shape
        self.fdtype = torch.float32 if dev.type == "cpu" else torch.float64  # exact integer sums
        used = {f for p in self.rule.products for f in p.factors} | set(self.written)
        self._x_used = [j for j, n in enumerate(X_TRACES) if n in used]
        self._y_used = [j for j, n in enumerate(Y_TRACES) if n in used]
        tmax = model.trace_max
        self._tmax = tmax
        fb = 2**model.impulse_fraction_bits
        self._imp = {}
        for name in X_TRACES + Y_TRACES:
            imp = float(getattr(traces, f"{name}_impulse"))
            whole = math.floor(imp)
            self._imp[name] = (whole, int(round((imp - whole) * fb)), float(getattr(traces, f"{name}_tau")))
        self._streams = _Streams(rng_seed, model.trace_bits)
        self._learns = 0
        z = lambda *s: torch.zeros(*s, dtype=torch.int64, device=dev)  # noqa: E731
        self.x, self.y = z(2, self.i), z(3, self.k)
        self.tx, self.ty = z(self.i), z(self.k)
        self.theta = z(self.k)
        self.time_step = 0
        self._done = 0  # window steps already booked into the traces
        w_len = circuit.window
        self._pre_buf = torch.zeros(w_len, self.i, dtype=torch.bool, device=dev)  # input spikes per window step
        self._post_buf = torch.zeros(w_len, self.k, dtype=torch.bool, device=dev)  # WTA spikes per window step
        self._fired_buf = torch.zeros(w_len + 1, dtype=torch.int64, device=dev)  # [-1]: the carried-over step
        self._carry = torch.zeros(self.k, dtype=torch.bool, device=dev)  # spikes at the next window's step 0
        self._zero_k = z(self.k)
        self._te_tensor = torch.tensor(self.t_epoch, device=dev)
        c = circuit
        self._inh = -(c.inh_weight << c.inh_exp) if c.inh_exp >= 0 else -(c.inh_weight >> -c.inh_exp)
        self._lat = -(c.lat_weight << c.lat_exp) if c.lat_exp >= 0 else -(c.lat_weight >> -c.lat_exp)
        self._ident = torch.arange(tmax + 1, device=dev)  # a written trace's impulse: adds nothing
        ks = {p.decimate for p in self.rule.products if p.dependency == "u"}
        self._u_k = ks.pop() if ks else None
        # metrics
        self.samples = 0
        self.synapse_updates = 0  # synapse-row updates the engine evaluated (rows * inputs)
        self.weights_changed = 0
        self.wins = z(self.k)
        self.fired_samples = z(self.k)  # samples in which each neuron fired (the harmonic write's n)

    # ------------------------------------------------------------------------------------------
    # the closed loop

    @torch.no_grad()
    def run(self, pixels: torch.Tensor, record: bool = False) -> dict[str, torch.Tensor] | None:
        """Present uint8 images [N, I] one window each; learning as the chip does it.

        With ``record`` returns per-sample WTA spike counts [N, K], the weights after every
        sample [N, K, I] and the WTA spikes of every window step [N, window, K] (window step j is
        global step n*window + 1 + j) -- for tests; a training run keeps none of them."""
        threads = torch.get_num_threads()
        if self.device.type == "cpu":
            # the loop's tensors are small: worker threads only add synchronisation (measured ~20x
            # slower with 2 threads on a loaded 2-core machine)
            torch.set_num_threads(1)
        try:
            return self._run(pixels, record)
        finally:
            torch.set_num_threads(threads)

    def _run(self, pixels: torch.Tensor, record: bool) -> dict[str, torch.Tensor] | None:
        pixels = torch.as_tensor(pixels).reshape(len(pixels), -1).to(self.device)
        c = self.circuit
        counts, traj, rasters = [], [], []
        for start in range(0, len(pixels), 512):
            trains = rate_code(pixels[start:start + 512], c.steps)  # [n, steps, I]
            for train in trains:
                cnt = self._sample(train)
                if record:
                    counts.append(cnt)
                    traj.append(self.weights.clone())
                    rasters.append(self._post_buf.clone())
        if not record:
            return None
        return {"counts": torch.stack(counts), "weights": torch.stack(traj), "raster": torch.stack(rasters)}

    def _sample(self, train: torch.Tensor) -> torch.Tensor:
        """One sample window: global steps n*window + 1 .. n*window + window."""
        c = self.circuit
        k, window = self.k, c.window
        t0 = self.time_step
        pre = self._pre_buf
        pre[: c.steps] = train
        pre_f = train.to(self.fdtype)
        post = self._post_buf
        post.zero_()
        post[0] = self._carry  # lateral: spikes of the previous WTA window's last step (see below)
        drive = self._drive(pre_f) << ACT_SHIFT  # [steps, K]: drive[p] reaches the WTA at q = p
        for name, scale in self.written.items():
            if isinstance(scale, tuple):
                continue  # harmonic: written after the window's spikes are known
            total = (drive.sum(0) >> ACT_SHIFT).to(torch.float64)
            self._written_now[Y_TRACES.index(name)] = torch.floor(total.clamp(min=0) * self._tmax / scale).clamp(max=self._tmax).to(torch.int64)
        vth_eff = (c.vth + self.theta) << ACT_SHIFT
        inh = self._inh << ACT_SHIFT
        lat = self._lat << ACT_SHIFT
        # the 24-bit wrap of the current cannot trigger when the sample's largest input plus the
        # inhibition stays inside the range: tested once per sample, skipped per step
        peak = int(drive.abs().max()) if drive.numel() else 0
        wrap = peak + abs(inh) > UV_LIMIT  # lateral: checked again per step for the spikes' count
        next_learn = self.t_epoch - (t0 % self.t_epoch)  # steps from t0 to the next learning step
        if next_learn == 1:  # a learning step at the window's first step (t_epoch 1)
            self._learn_upto(t0, 1)
            if c.steps > 1:
                drive[1:] = self._drive(pre_f[1:]) << ACT_SHIFT
        # WTA steps q = 0 .. q_last - 1 (global t0 + 2 + q); after the input and the last
        # inhibition no WTA neuron can reach its threshold, so later steps are not run -- except
        # laterally, where a burst's summed inhibition can wrap into excitation (`_wrap_current`):
        # then steps run on while the last one spiked, up to q = window - 1, the WTA window's last
        # step (global t0 + window + 1: the next sample's window step 0, no input, v not yet reset),
        # whose spikes carry over into the next window (its step 0 and its first inhibition)
        q_last = min(window - 1, c.steps + 2)
        q_max = window if c.lateral else q_last
        learn_steps = [j for j in range(2, window) if (j - next_learn) % self.t_epoch == 0 and j >= next_learn]
        carry_in = int(self._carry.sum())
        if not learn_steps and self.device.type == "cpu":
            out = torch.from_numpy(_wta_numpy(drive.numpy(), c.steps, q_last, int(inh), vth_eff.numpy(), wrap,
                                              int(lat), peak, q_max=q_max, carry=carry_in))
            post[1:q_last + 1] = out[:q_last]
            if c.lateral:
                post[q_last + 1:] = out[q_last:window - 1]
                self._carry = out[window - 1].to(self.device)
        else:
            v = torch.zeros(k, dtype=torch.int64, device=self.device)
            fired = self._fired_buf  # fired[q]: the step's spike count
            fired.zero_()
            fired[-1] = carry_in  # q = -1: the carried-over step
            carry_out = torch.zeros(k, dtype=torch.bool, device=self.device)
            for q in range(q_max):
                if q >= q_last and not (c.lateral and int(fired[q - 1])):
                    break  # no input and no inhibition arriving: every later step is silent
                j = q + 1  # window index of global step t0 + 1 + j (j = window: the carry step)
                a = drive[q] if q < c.steps else self._zero_k
                if c.lateral:
                    a = a + lat * fired[q - 1]
                if c.interneuron and q >= 2:
                    a = a + inh * (fired[q - 2] > 0)
                if wrap or learn_steps or c.lateral:  # weights (and so the input's peak) may change mid-window
                    a = _wrap_current(a)
                v = (v + a).clamp_(-UV_LIMIT + 1, UV_LIMIT - 1)
                spk = post[j] if j < window else carry_out
                torch.gt(v, vth_eff, out=spk)
                v.masked_fill_(spk, 0)
                fired[q] = spk.sum()
                if c.lateral and c.interneuron and q >= window - 2 and int(fired[q]):
                    _burst_error(int(fired[q]))
                if j + 1 in learn_steps:  # a learning step inside the window (t_epoch < window)
                    self._learn_upto(t0, j + 1)
                    if j + 1 < c.steps:  # the rest of the input sees the new weights
                        drive[j + 1:] = self._drive(pre_f[j + 1:]) << ACT_SHIFT
            self._carry = carry_out
        # the WTA window's spikes (window steps 1 .. window - 1 and the carry step): what the
        # neuron program's threshold counts at its reset; the trace write at the epoch's end
        # (window step window - 1) sees steps 1 .. window - 1 only
        fired_now = post[1:].any(0)
        count = post[1:].sum(0) + self._carry
        for name, spec in self.written.items():
            if isinstance(spec, tuple):  # harmonic rate of the neurons that fired in this window
                rate = torch.div(self._tmax + (self.fired_samples + 1) // 2, self.fired_samples + 1, rounding_mode="floor")
                self._written_now[Y_TRACES.index(name)] = torch.where(fired_now, rate.clamp(min=int(spec[1])), 0)
        self.fired_samples += fired_now
        self._learn_upto(t0, window)
        self.time_step = t0 + window
        if c.theta_plus:
            self.theta += count * c.theta_plus
            self.theta -= self.theta >> c.theta_decay_shift
        self.samples += 1
        self.wins += count
        return count

    def _learn_upto(self, t0: int, j_end: int) -> None:
        """Book the spikes of window steps (self._done, j_end] and learn where an epoch ends."""
        j_start = self._done
        if j_end <= j_start:
            return
        te = self.t_epoch
        pos = j_start
        while pos < j_end:
            t_first = t0 + 1 + pos
            to_epoch_end = (te - (t_first % te)) % te  # steps after t_first until t % te == 0
            seg_end = min(j_end, pos + to_epoch_end + 1)
            ts = self._ts_for(t0, pos, seg_end)
            self._bookkeep_pre(self._pre_buf[pos:seg_end], ts)
            self._bookkeep_post(self._post_buf[pos:seg_end], ts, t0 + 1 + pos)
            t_last = t0 + seg_end
            if t_last % te == 0:
                self._learn(t_last)
            pos = seg_end
        self._done = j_end if j_end < self.circuit.window else 0

    def _ts_for(self, t0: int, j0: int, j1: int) -> torch.Tensor:
        t = torch.arange(t0 + 1 + j0, t0 + 1 + j1, device=self.device, dtype=torch.int64)
        ts = t % self.t_epoch
        return torch.where(ts == 0, self.t_epoch, ts)

    def _drive(self, pre_f: torch.Tensor) -> torch.Tensor:
        """Dense output for input spikes [S, I] with the current weights, after ``weight_exp``."""
        acc = (pre_f @ self.weights.to(self.fdtype).T).to(torch.int64)
        e = self.circuit.weight_exp
        return acc << e if e > 0 else acc >> -e

    # ------------------------------------------------------------------------------------------
    # trace bookkeeping (per epoch) and the learning rule

    def _bookkeep_pre(self, pre: torch.Tensor, ts: torch.Tensor) -> None:
        n = pre.sum(0)
        if self._x_used:
            extra = (n - 1).clamp(min=0) + ((self.tx > 0) & (n > 0))  # spikes after the epoch's first
            for j in self._x_used:
                whole, frac, _ = self._imp[X_TRACES[j]]
                step = whole + (1 if frac > 0 else 0)  # random 0 < frac
                self.x[j] = (self.x[j] + extra * step).clamp(0, self._tmax)
        last = (pre * ts[:, None]).amax(0)
        self.tx = torch.where(n > 0, last, self.tx)

    def _bookkeep_post(self, post: torch.Tensor, ts: torch.Tensor, t_first: int) -> None:
        n = post.sum(0)
        if self._y_used and bool((n > 0).any()):
            # every spike after the first of the epoch adds an impulse rounded with that step's random
            first_seen = torch.cumsum(post.to(torch.int64), 0) + (self.ty > 0).to(torch.int64)[None, :]
            multi = post & (first_seen > 1)
            if bool(multi.any()):
                rand = torch.tensor([self._streams.get("yi", 2 * (t_first + i) - 1) for i in range(len(post))],
                                    device=self.device)
                for j in self._y_used:
                    whole, frac, _ = self._imp[Y_TRACES[j]]
                    inc = whole + (rand < frac).to(torch.int64)  # [S]
                    self.y[j] = (self.y[j] + (multi * inc[:, None]).sum(0)).clamp(0, self._tmax)
        last = (post * ts[:, None]).amax(0)
        self.ty = torch.where(n > 0, last, self.ty)

    def _tables(self, names: tuple[str, ...], used: list[int], r_decay: float, r_imp: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per used trace: P[j, s, v] = the value v decays to after s steps of this epoch, and the
        impulse table G[j, v]. One random number decays every trace of an epoch (Lava's model), so
        a trace's decay over the epoch is the s-th power of one 2**trace_bits-entry table."""
        # NumPy: the tables are 128 entries wide, and an epoch of up to 63 compositions costs ~1 us
        # each there against ~10 us per torch call (measured: a third of a sample's time)
        levels = np.arange(self._tmax + 1, dtype=np.float64)
        te = self.t_epoch
        powers, g_rows = [], []
        for j in used:
            whole, frac, tau = self._imp[names[j]]
            if tau == 0:
                f = np.zeros(len(levels), dtype=np.int64)  # no decay modelled: 0 after the spike step
            else:
                scaled = math.exp(-1.0 / tau) * levels
                f = (np.floor(scaled) + (r_decay < np.remainder(scaled, 1.0))).astype(np.int64)
            rows = np.empty((te + 1, len(levels)), dtype=np.int64)
            rows[0] = np.arange(len(levels))
            for s in range(te):
                rows[s + 1] = f[rows[s]]
            powers.append(rows)
            g_rows.append(np.clip(levels + whole + (1 if r_imp < frac else 0), 0, self._tmax).astype(np.int64))
        return torch.from_numpy(np.stack(powers)).to(self.device), torch.from_numpy(np.stack(g_rows)).to(self.device)

    def _written_decay(self, r_decay: float) -> torch.Tensor:
        """P[s, v] for neuron-written traces: Lava's `Loihi3FLearningRule` gives every post trace
        tau = 2**16 - 1, so `LearningDense` decays the value received at the learning step like a
        spike trace (one random r per epoch): each step takes one off v while r > 1 - v/65536
        (~0.998 for v = 127), so a written value mostly reads as written, now and then less. A
        trace that keeps its value exactly cannot be had there (tau 0 reads 0)."""
        levels = np.arange(self._tmax + 1, dtype=np.float64)
        scaled = math.exp(-1.0 / WRITTEN_TAU) * levels
        f = (np.floor(scaled) + (r_decay < np.remainder(scaled, 1.0))).astype(np.int64)
        rows = np.empty((self.t_epoch + 1, len(levels)), dtype=np.int64)
        rows[0] = np.arange(len(levels))
        for s in range(self.t_epoch):
            rows[s + 1] = f[rows[s]]
        return torch.from_numpy(rows).to(self.device)

    @staticmethod
    def _trace_at(p: torch.Tensor, g: torch.Tensor, start: torch.Tensor, times: torch.Tensor, t_q: torch.Tensor) -> torch.Tensor:
        """Value at epoch step ``t_q`` of traces starting at ``start`` [N] with their spike at
        ``times`` [N] (0: none): decayed ``t_q`` steps before the spike; at the spike step decay
        then impulse; after it the impulsed value decays on. ``t_q`` broadcasts against [N]."""
        levels = p.shape[1]
        flat = p.flatten()
        before = flat[t_q * levels + start]
        at = g[flat[times * levels + start]]
        after = flat[(t_q - times).clamp(min=0) * levels + at]
        return torch.where((times > 0) & (t_q >= times), after, before)

    def _learn(self, t: int) -> None:
        self._learns += 1
        r_w = float(self._streams.get("w", self._learns))
        x0, y0 = self.tx > 0, self.ty > 0
        idx = 2 * t
        te = self.t_epoch
        end = self._te_tensor
        xh, yh = {}, {}  # trace name -> (P, G, start): values at any epoch step via _trace_at
        if self._x_used:
            p, g = self._tables(X_TRACES, self._x_used, float(self._streams.get("xd", idx)), int(self._streams.get("xi", idx)))
            for n, j in enumerate(self._x_used):
                xh[X_TRACES[j]] = (p[n], g[n], self.x[j].clone())
                self.x[j] = self._trace_at(p[n], g[n], self.x[j], self.tx, end)
        written = [j for j in self._y_used if j in self._written_now]
        if written:  # the neuron's value, decayed from the learning step as Lava's 3F traces decay
            p = self._written_decay(float(self._streams.get("yd", idx)))
            for j in written:
                yh[Y_TRACES[j]] = (p, self._ident, self._written_now[j])
                self.y[j] = p[te][self._written_now[j]]  # the value u products read
        spiking = [j for j in self._y_used if j not in self._written_now]
        if spiking:
            p, g = self._tables(Y_TRACES, spiking, float(self._streams.get("yd", idx)), int(self._streams.get("yi", idx)))
            for n, j in enumerate(spiking):
                yh[Y_TRACES[j]] = (p[n], g[n], self.y[j].clone())
                self.y[j] = self._trace_at(p[n], g[n], self.y[j], self.ty, end)
        u_on = self._u_k is not None and (t // te) % 2**self._u_k == 0
        rows = self._rows(y0, u_on)
        if rows is not None and rows.numel():
            self._apply(rows, x0, y0, xh, yh, u_on, r_w)
        self.tx.zero_()
        self.ty.zero_()

    def _rows(self, y0: torch.Tensor, u_on: bool) -> torch.Tensor | None:
        """Rows (neurons) whose weights a product can change in this epoch."""
        deps = {p.dependency for p in self.rule.products if p.dependency != "u" or u_on}
        if "x0" in deps and bool((self.tx > 0).any()):
            return torch.arange(self.k, device=self.device)
        mask = torch.zeros(self.k, dtype=torch.bool, device=self.device)
        if "y0" in deps:
            mask |= y0
        if "u" in deps:
            for p in self.rule.products:
                if p.dependency != "u":
                    continue
                ys = [Y_TRACES.index(f) for f in p.factors if f in Y_TRACES]
                if not ys:
                    return torch.arange(self.k, device=self.device)
                nz = torch.ones(self.k, dtype=torch.bool, device=self.device)
                for j in ys:
                    nz &= self.y[j] != 0  # the epoch-end value a u product reads
                mask |= nz
        return torch.nonzero(mask).flatten()

    def _apply(self, rows, x0, y0, xh, yh, u_on: bool, r_w: float) -> None:
        m = self.model
        widths = m.factor_widths
        acc_lo, acc_hi = m.accumulator_range
        w = self.weights[rows]  # [R, I]
        acc = w << m.weight_shift
        ty_r = self.ty[rows]
        ar = torch.arange(len(rows), device=self.device)
        for p in self.rule.products:
            if p.dependency == "u" and not u_on:
                continue
            term = torch.full_like(acc, p.mantissa)
            if p.dependency == "x0":
                term = term * x0[None, :]
            elif p.dependency == "y0":
                term = term * y0[rows][:, None]
            for name in p.factors:
                val = self._factor(name, p.dependency, rows, ar, ty_r, w, x0, y0, xh, yh)
                term = term * val.clamp(-(2 ** widths[name]), 2 ** widths[name] - 1)
            term = term >> m.product_shift(p.factors)
            term = _wrap32(term << (p.exponent + m.exponent_offset))
            acc = (acc + term.clamp(acc_lo, acc_hi)).clamp(acc_lo, acc_hi)
        rs = m.round_shift
        floor = torch.div(acc, 2**rs, rounding_mode="floor")
        frac = (acc - floor * 2**rs).to(torch.float64) / 2**rs
        new = ((floor + (r_w < frac).to(torch.int64)) << rs) >> m.weight_shift
        lo, hi = m.weight_range
        new = new.clamp(lo, hi)
        self.weights[rows] = new
        self.synapse_updates += int(len(rows)) * self.i
        self.weights_changed += (new != w).sum()

    def _factor(self, name, dep, rows, ar, ty_r, w, x0, y0, xh, yh) -> torch.Tensor:
        """A factor's values where a product of dependency ``dep`` reads them, as [R, I] or broadcastable."""
        if name == "w":
            return w
        if name == "x0":
            return x0[None, :].to(torch.int64)
        if name == "y0":
            return y0[rows][:, None].to(torch.int64)
        end = self._te_tensor
        if name in X_TRACES:
            p, g, start = xh[name]
            if dep == "y0":  # x at each row's spike time [R, I]
                return self._trace_at(p, g, start[None, :], self.tx[None, :], ty_r[:, None])
            if dep == "x0":  # x at its own spike time
                return self._trace_at(p, g, start, self.tx, self.tx)[None, :]
            return self._trace_at(p, g, start, self.tx, end)[None, :]
        p, g, start = yh[name]
        s_r, ty = start[rows], self.ty[rows]
        if dep == "y0":  # y at its own spike time
            return self._trace_at(p, g, s_r, ty, ty)[:, None]
        if dep == "x0":  # y of each row at each input's spike time [R, I]
            return self._trace_at(p, g, s_r[:, None], ty[:, None], self.tx[None, :])
        return self._trace_at(p, g, s_r, ty, end)[:, None]

    # ------------------------------------------------------------------------------------------

    def spike_rate_summary(self) -> dict:
        s = max(self.samples, 1)
        return {"samples": self.samples, "wta_spikes_per_sample": float(self.wins.sum()) / s,
                "synaptic_updates_per_sample": self.synapse_updates / s,
                "weights_changed_per_sample": float(self.weights_changed) / s,
                "active_neurons": int((self.wins > 0).sum()), "learning_epochs": self._learns}


def _wta_numpy(drive: np.ndarray, steps: int, q_last: int, inh: int, vth: np.ndarray, wrap: bool,
               lat: int = 0, peak: int = 0, q_max: int | None = None, carry: int = 0) -> np.ndarray:
    """The WTA steps of one window in NumPy (small arrays: ~5x less overhead per step than torch
    on a CPU); the same arithmetic as the torch loop in `_sample`. Returns bool [q_max, K]
    (default q_max = q_last). ``inh``: the interneuron path's inhibition (0: none), ``lat``: the
    lateral path's per spike (0: none). With the lateral path, steps after ``q_last`` run while
    the previous one spiked (wrapped inhibition can excite, `_wrap_current`); ``carry`` spikes at
    q = -1 inhibit q = 0."""
    lateral = lat != 0
    k = drive.shape[1]
    q_max = q_last if q_max is None else q_max
    out = np.zeros((q_max, k), dtype=bool)
    v = np.zeros(k, dtype=np.int64)
    fired = [0] * (q_max + 1)  # spikes per step; fired[-1]: the carry
    fired[-1] = carry
    zero = np.zeros(k, dtype=np.int64)
    for q in range(q_max):
        if q >= q_last and not (lateral and fired[q - 1]):
            break  # no input and no inhibition arriving: every later step is silent
        a = drive[q] if q < steps else zero
        wrap_q = wrap
        if lateral and fired[q - 1]:
            a = a + lat * fired[q - 1]
            wrap_q = wrap or peak + abs(inh) + abs(lat) * fired[q - 1] > UV_LIMIT
        if inh and q >= 2 and fired[q - 2]:
            a = a + inh
        if wrap_q:
            a = _wrap_current(a)
        v = np.clip(v + a, -UV_LIMIT + 1, UV_LIMIT - 1)
        spk = v > vth
        if spk.any():
            v[spk] = 0
            fired[q] = int(spk.sum())
            out[q] = spk
            if lateral and inh and q >= q_max - 2:  # q_max: the window, with the lateral path
                _burst_error(fired[q])
    return out


def _burst_error(spikes: int) -> None:
    """With both inhibition paths, WTA spikes in a window's last two steps (possible only when a
    burst's wrapped inhibition excites: the input has ended) would send the interneuron's
    inhibition into the next window, which the engine does not follow; an error, not a model
    (the presets' lateral inhibition is far too weak to wrap)."""
    raise NeurohebbError(f"{spikes} WTA spikes after the input ended: the summed lateral inhibition wrapped the 24-bit "
                         "current into excitation; lower onchip.lateral_inhibition")


def _wrap_current(a):
    """The WTA's input current as Lava's bit-accurate LIF forms it from the summed synaptic input
    (already shifted ``ACT_SHIFT`` up here): the shift is int32 arithmetic, so it wraps at 32 bits
    (|input| >= 2**25: ~1030 lateral spikes of the largest inhibition in one step), then a current
    outside the 24-bit range is moved back by 2**24 once (not modulo). Either can turn a large
    inhibition into excitation; the engine follows, as it must to stay bit-exact. NumPy or torch."""
    a = (a + 2**31) % 2**32 - 2**31
    a = a - 2 * UV_LIMIT * (a > UV_LIMIT)
    return a + 2 * UV_LIMIT * (a <= -UV_LIMIT)


def _wrap32(v: torch.Tensor) -> torch.Tensor:
    """int32 overflow as Lava's int32 arithmetic wraps it."""
    return ((v + 2**31) % 2**32) - 2**31
