"""A spiking soft winner-take-all circuit in Brian2 whose spike counts estimate softmax(beta*u).

The circuit (a stochastic WTA in the sense of Nessler et al., PLoS Comput. Biol. 2013):

* **Inputs.** Input neuron i fires as a Poisson process at ``input_rate * x_i`` (x in [0, 1]).
* **Membrane.** WTA neuron k integrates its input spikes through the trained weights with a leaky
  kernel normalised to unit area per expected spike::

      du_k/dt = (b_k - u_k) / tau_m            on input spike i:  u_k += w_ki / (input_rate*tau_m)

  so its stationary mean is exactly the rate model's pre-activation E[u_k] = b_k + sum_i w_ki x_i
  (b_k is the learned log-prior, 0 without one). Its shot-noise variance is
  sum_i w_ki^2 x_i / (2 input_rate tau_m): more input spikes per membrane time constant give a
  sharper estimate of u.
* **Global inhibition.** One inhibitory unit collects exp(beta*u_j) from every WTA neuron; its
  potential I is the log of that total, and it feeds back subtractively. Neuron k then fires as
  an inhomogeneous Poisson process with

      rate_k(t) = R * exp(beta*u_k(t) - I(t)),   I(t) = log sum_j exp(beta*u_j(t)),

  i.e. rate_k = R * softmax(beta*u(t))_k: the inhibition holds the population's total rate at R
  whatever the input, and which neuron fires is a draw from the soft-WTA distribution.
* **Why the counts estimate the soft WTA.** Over a presentation of length T the count n_k is
  Poisson with mean R * integral softmax(beta*u(t))_k dt, so n_k / sum_j n_j estimates the time
  average of softmax(beta*u(t)). That converges to softmax(beta*E[u]) -- the rate model's
  activation -- when T >> tau_m (the membrane's rise from rest is a small part of the window) and
  the membrane noise is small compared with 1/beta; with noise the estimate is a flatter softmax
  (Jensen's inequality), which the presentation-time sweep measures.

The same membrane can instead feed a *subtractive* inhibition (``activation="triangle"``), for
networks whose readout reads Triangle(u) = relu(u - mean_j u_j) ** p: the inhibitory unit's
potential is the population mean of u, and neuron k fires at gain * relu(u_k - mean u) ** p, so
the count divided by gain times the effective window estimates Triangle(u) (see
`CircuitParams.effective_time`). Only above-average neurons fire: a soft k-winners-take-all.

Simulation details: time is discretised with step dt and a neuron fires in a step with
probability rate*dt, which is exact in the mean as long as R*dt <= 1 and input_rate*dt <= 1
(checked). The inhibitory potential is computed without overflow for any weight scale: the unit
sums exp(beta*u_j - I_prev) (I_prev: its potential one step earlier, so every term is at most
e^(a step's change of beta*u)) and then sets I = I_prev + log(sum); exponents are clipped to
+-700 as a last guard. At each sample onset I restarts at its resting value log sum exp(beta*b).

Many samples run in one network: a TimedArray switches the input rates every T, and at each
sample onset the membranes (and presynaptic traces) return to rest, so consecutive samples are
independent. Samples go in chunks of a fixed number of rows (`CHUNK`): the cython target bakes a
TimedArray's shape into the generated code, so a fixed shape means one compilation per machine,
reused for any number of samples.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from ...errors import ConfigError, DataError
from ...npmath import softmax
from .runtime import require_brian2

EXP_CLIP = 700.0  # |exponent| bound: exp(700) ~ 1e304 < float64 max
CHUNK = 128  # samples per TimedArray (fixed, so the compiled code is reused)
LR_SCHEDULES = ("constant", "norm-adaptive")
ACTIVATIONS = ("softmax", "triangle")


@dataclass(frozen=True)
class CircuitParams:
    """Physical parameters of the spiking circuit (SI units: seconds, hertz).

    activation "softmax": divisive inhibition, counts estimate softmax(beta*u) (the soft WTA).
    activation "triangle": subtractive inhibition by the population mean, neuron k fires at
    gain * relu(u_k - mean_j u_j) ** power, so counts estimate the Triangle activation.
    """

    beta: float = 5.0  # inverse temperature of the softmax the spike counts estimate
    tau_m: float = 0.02  # membrane (and presynaptic trace) time constant
    input_rate: float = 500.0  # Poisson rate of an input at x = 1
    output_rate: float = 1000.0  # softmax: total rate R of the population
    duration: float = 0.1  # presentation time T of one sample
    dt: float = 0.0005  # simulation time step
    activation: str = "softmax"
    power: float = 1.0  # triangle exponent
    gain: float = 0.0  # triangle: Hz per unit of activation (0: calibrate to neuron_rate)
    neuron_rate: float = 20.0  # triangle: mean rate per neuron the gain is calibrated to

    def validate(self) -> "CircuitParams":
        for name in ("beta", "tau_m", "input_rate", "output_rate", "duration", "dt", "power", "neuron_rate"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"Brian2 circuit parameter {name} must be a positive number, got {value!r}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"the spiking circuit implements the activations {', '.join(ACTIVATIONS)}, not {self.activation!r}")
        if self.activation == "triangle" and not (math.isfinite(self.gain) and self.gain > 0):
            raise ConfigError(f"a triangle circuit needs a positive gain (Hz per unit of activation), got {self.gain!r}")
        if self.input_rate * self.dt > 1 or (self.activation == "softmax" and self.output_rate * self.dt > 1):
            raise ConfigError(
                f"rate*dt must be <= 1 (input {self.input_rate * self.dt:g}, output {self.output_rate * self.dt:g}): "
                "lower the rates or the time step dt"
            )
        steps = self.duration / self.dt
        if abs(steps - round(steps)) > 1e-6 or round(steps) < 1:
            raise ConfigError(f"presentation time {self.duration * 1e3:g} ms must be a positive multiple of dt = {self.dt * 1e3:g} ms")
        return self

    @property
    def steps_per_sample(self) -> int:
        return int(round(self.duration / self.dt))

    def effective_time(self, window: float | None = None) -> float:
        """Triangle mode: integral over the window of the membrane's rise from rest, ** power.

        Without bias the expected membrane is u(t) = u_inf * s(t) with s rising from 0 to ~1, and
        relu(c*z) ** p = c ** p * relu(z) ** p, so the expected count is gain * a_inf * this
        integral: dividing counts by gain * effective_time gives an unbiased estimate of the rate
        model's Triangle(u) (up to the membrane noise). Computed on the simulation's own steps
        (the threshold sees the membrane decayed, before the step's input).
        """
        q = math.exp(-self.dt / self.tau_m)
        stationary = q * (self.dt / self.tau_m) / (1 - q)  # E[u'] / u_inf once risen (~1 - dt/2tau)
        n = self.steps_per_sample if window is None else int(round(window / self.dt))
        steps = np.arange(n)
        return float(self.dt * ((stationary * (1 - q ** steps)) ** self.power).sum())

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


@dataclass(frozen=True)
class SpikeRule:
    """The spike-triggered SoftHebb rule (see `learning.py`): on a spike of neuron k,
    w_ki += eta * s_k * (xhat_i - u_k * w_ki), with s_k = 1 ("constant") or the norm-adaptive
    factor (| ||w_k|| - 1 | + 1e-10) ** lr_power of the rate engine ("norm-adaptive")."""

    eta: float  # per spike
    lr_schedule: str = "constant"
    lr_power: float = 0.5

    def validate(self) -> "SpikeRule":
        if not (math.isfinite(self.eta) and self.eta > 0):
            raise ConfigError(f"spiking learning rate eta must be > 0, got {self.eta}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"spiking lr_schedule {self.lr_schedule!r} is not known; choose one of: {', '.join(LR_SCHEDULES)}")
        if not (math.isfinite(self.lr_power) and self.lr_power >= 0):
            raise ConfigError(f"lr_power must be >= 0, got {self.lr_power}")
        return self


def resting_inhibition(bias: np.ndarray | None, n_neurons: int, beta: float) -> float:
    """log sum_k exp(beta*b_k): the inhibitory potential when every membrane is at rest."""
    z = np.zeros(n_neurons) if bias is None else beta * np.asarray(bias, dtype=np.float64)
    top = float(z.max())
    return top + float(np.log(np.exp(z - top).sum()))


@dataclass
class SpikeRecord:
    """What one simulation produced, in plain NumPy arrays."""

    n_samples: int
    n_neurons: int
    n_inputs: int
    params: CircuitParams
    target: str
    out_step: np.ndarray  # time step (from t=0) of every WTA spike
    out_neuron: np.ndarray  # neuron index of every WTA spike
    input_spikes: int  # total input spikes over all samples
    raster_input_step: np.ndarray  # input spikes of the first `raster_samples` samples
    raster_input_neuron: np.ndarray
    raster_samples: int
    wall_seconds: float  # simulation incl. code generation
    build_seconds: float  # building the objects (before run)
    weight: np.ndarray | None = None  # final weights when the synapses were plastic
    membrane: np.ndarray | None = None  # [steps, neurons] when recorded

    def counts(self, window: float | None = None) -> np.ndarray:
        """Spike counts [n_samples, n_neurons] in the first `window` seconds of each sample."""
        sps = self.params.steps_per_sample
        sample = self.out_step // sps
        keep = sample < self.n_samples
        if window is not None:
            limit = int(round(window / self.params.dt))
            keep &= (self.out_step - sample * sps) < limit
        flat = sample[keep] * self.n_neurons + self.out_neuron[keep]
        return np.bincount(flat, minlength=self.n_samples * self.n_neurons).reshape(self.n_samples, self.n_neurons)


def _check_inputs(x: np.ndarray, n_inputs: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != n_inputs:
        raise DataError(f"spiking inputs must be [samples, {n_inputs}] intensities, got shape {x.shape}")
    if x.shape[0] < 1:
        raise DataError("no samples to present; pass at least one")
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise DataError("spiking inputs must be finite intensities in [0, 1] (pixels / 255)")
    return x


class SpikingSoftWTA:
    """The circuit above for one weight matrix; `present` runs many samples in one simulation.

    weight [K, I] and optional bias [K] are the rate model's; a `rule` makes the input synapses
    plastic with the spike-triggered SoftHebb rule (see `neurohebb.backends.brian2.learning`).
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None = None, params: CircuitParams | None = None,
                 rule: SpikeRule | None = None):
        self.weight = np.array(weight, dtype=np.float64)
        if self.weight.ndim != 2 or not np.isfinite(self.weight).all():
            raise DataError(f"weights must be a finite [neurons, inputs] matrix, got shape {self.weight.shape}")
        self.bias = None if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
        if self.bias is not None and (self.bias.shape[0] != self.weight.shape[0] or not np.isfinite(self.bias).all()):
            raise DataError(f"bias must be finite with one entry per neuron ({self.weight.shape[0]})")
        self.params = (params or CircuitParams()).validate()
        self.rule = None if rule is None else rule.validate()

    @property
    def n_neurons(self) -> int:
        return self.weight.shape[0]

    @property
    def n_inputs(self) -> int:
        return self.weight.shape[1]

    def _stimulus(self, b2: Any, x_chunk: np.ndarray) -> Any:
        rates = np.zeros((CHUNK, self.n_inputs))
        rates[: x_chunk.shape[0]] = x_chunk * self.params.input_rate
        return b2.TimedArray(rates * b2.Hz, dt=self.params.duration * b2.second, name="stimulus")

    def _build(self, b2: Any, stim: Any, record_membrane: bool = False) -> dict[str, Any]:
        p = self.params
        K, I = self.weight.shape
        T = p.duration * b2.second
        rule = self.rule
        plastic = rule is not None
        adaptive = plastic and rule.lr_schedule == "norm-adaptive"
        a_in = 1.0 / (p.input_rate * p.tau_m)  # PSP area: one expected spike per tau_m adds w
        in_eqs = "rate = stimulus(t - t_chunk, i) : Hz\nt_chunk : second (shared)"
        if plastic:  # presynaptic trace: an unbiased running estimate of x_i
            in_eqs += "\ndxhat/dt = -xhat / tau_m : 1"
        inputs = b2.NeuronGroup(I, in_eqs, threshold="rand() < rate * dt", reset="xhat += a_in" if plastic else None,
                                method="exact", namespace={"stimulus": stim, "tau_m": p.tau_m * b2.second, "a_in": a_in},
                                name="inputs")
        if plastic:  # count a spike in the trace before it reaches the synapses, so u_k = b_k + w_k . xhat
            inputs.resetter["spike"].when = "thresholds"
            inputs.resetter["spike"].order = 1
        softmax = p.activation == "softmax"
        if softmax:
            rate_eq = "rate = R * exp(clip(beta * u - inh, -EXP_CLIP, EXP_CLIP)) : Hz\nbeta : 1 (shared, constant)\nR : Hz (shared, constant)"
        else:
            rate_eq = "rate = gain * clip(u - inh, 0, inf) ** power : Hz\ngain : Hz (shared, constant)\npower : 1 (shared, constant)"
        wta_eqs = f"""
            du/dt = (b - u) / tau_m : 1
            b : 1 (constant)
            inh : 1
            tau_m : second (shared, constant)
            {rate_eq}
            """
        if adaptive:
            wta_eqs += "wsq : 1\nlr_power : 1 (shared, constant)\nlr_scale = (abs(sqrt(wsq) - 1) + 1e-10) ** lr_power : 1\n"
        wta = b2.NeuronGroup(K, wta_eqs, threshold="rand() < rate * dt", method="exact",
                             namespace={"EXP_CLIP": EXP_CLIP, "inf": np.inf}, name="wta")
        if adaptive:
            wta.lr_power = rule.lr_power
        if softmax:
            wta.beta, wta.R = p.beta, p.output_rate * b2.Hz
        else:
            wta.gain, wta.power = p.gain * b2.Hz, p.power
        wta.tau_m = p.tau_m * b2.second
        wta.b = 0.0 if self.bias is None else self.bias
        wta.u = wta.b[:]

        if softmax:  # divisive: I <- I + log(sum_j exp(beta*u_j - I)), fed back to every neuron
            rest = resting_inhibition(self.bias, K, p.beta)
            inhibition = b2.NeuronGroup(1, "I : 1\nI_rest : 1 (constant)\ntotal : 1", name="inhibition")
            inhibition.I = inhibition.I_rest = rest
            collect = "total_post = exp(clip(beta_pre * u_pre - I_post, -EXP_CLIP, EXP_CLIP)) : 1 (summed)"
        else:  # subtractive: I = mean_j u_j
            inhibition = b2.NeuronGroup(1, "I : 1", name="inhibition")
            collect = f"I_post = u_pre / {K} : 1 (summed)"
        to_inh = b2.Synapses(wta, inhibition, collect, namespace={"EXP_CLIP": EXP_CLIP}, name="to_inhibition")
        to_inh.connect()
        from_inh = b2.Synapses(inhibition, wta, "inh_post = I_pre : 1 (summed)", name="from_inhibition")
        from_inh.connect()
        # All after this step's membrane update and before the thresholds: collect, (log,) feed back.
        updater = to_inh.summed_updaters["total_post" if softmax else "I_post"]
        updater.when, updater.order = "before_thresholds", 0
        if softmax:
            inhibition.run_regularly("I = I + log(total)", when="before_thresholds", order=1, name="inhibition_log")
            inhibition.run_regularly("I = I_rest", dt=T, when="start", name="inhibition_onset")
        from_inh.summed_updaters["inh_post"].when = "before_thresholds"
        from_inh.summed_updaters["inh_post"].order = 2

        syn_eqs = "w : 1"
        on_post = ""
        if plastic:
            on_post = "w = w + eta * (xhat_pre - u_post * w)"
            if adaptive:
                syn_eqs += "\nwsq_post = w * w : 1 (summed)"
                on_post = "w = w + eta * lr_scale_post * (xhat_pre - u_post * w)"
        syn = b2.Synapses(inputs, wta, syn_eqs, on_pre="u_post += a_in * w", on_post=on_post,
                          namespace={"a_in": a_in, "eta": rule.eta if plastic else 0.0}, name="input_synapses")
        pre, post = np.meshgrid(np.arange(I), np.arange(K), indexing="ij")
        syn.connect(i=pre.ravel(), j=post.ravel())
        syn.w = self.weight.T.ravel()  # synapse (i, k) in i-major order = W[k, i]

        # Each sample starts from rest: membranes at their resting potential, traces empty.
        wta.run_regularly("u = b", dt=T, when="start", name="wta_onset")
        if plastic:
            inputs.run_regularly("xhat = 0", dt=T, when="start", name="input_onset")
        out_mon = b2.SpikeMonitor(wta, name="wta_spikes")
        in_count = b2.SpikeMonitor(inputs, record=False, name="input_count")
        in_raster = b2.SpikeMonitor(inputs, name="input_raster")
        net = b2.Network(inputs, wta, inhibition, to_inh, from_inh, syn, out_mon, in_count, in_raster)
        objs = {"net": net, "inputs": inputs, "syn": syn, "out_mon": out_mon, "in_count": in_count, "in_raster": in_raster}
        if record_membrane:  # u at the end of every step (after that step's input spikes)
            objs["membrane"] = b2.StateMonitor(wta, "u", record=True, when="end", name="membrane")
            net.add(objs["membrane"])
        return objs

    def present(self, x: np.ndarray, *, seed: int = 0, raster_samples: int = 0, record_membrane: bool = False,
                progress: Callable[[float], None] | None = None) -> SpikeRecord:
        """Present every row of x ([samples, inputs] in [0, 1]) for `params.duration` each.

        `progress` (optional) receives the completed fraction. The weights are left untouched;
        with plasticity on, the learned weights come back in `SpikeRecord.weight`.
        `record_membrane` keeps every neuron's u at every step (for small checks only).
        """
        b2 = require_brian2()
        x = _check_inputs(x, self.n_inputs)
        p = self.params
        n = x.shape[0]
        raster_samples = int(min(max(raster_samples, 0), n))
        t0 = time.perf_counter()
        b2.start_scope()
        b2.defaultclock.dt = p.dt * b2.second
        b2.seed(seed)
        objs = self._build(b2, self._stimulus(b2, x[:CHUNK]), record_membrane)
        build_seconds = time.perf_counter() - t0
        net, inputs, in_raster = objs["net"], objs["inputs"], objs["in_raster"]
        for start in range(0, n, CHUNK):
            chunk = x[start:start + CHUNK]
            if start:
                inputs.namespace["stimulus"] = self._stimulus(b2, chunk)
            inputs.t_chunk = start * p.duration * b2.second
            # the first `raster_samples` samples also record every input spike
            pieces = [(0, min(raster_samples - start, chunk.shape[0]), True)] if start < raster_samples else []
            first = pieces[0][1] if pieces else 0
            pieces.append((first, chunk.shape[0], False))
            for lo, hi, record in pieces:
                if hi > lo:
                    in_raster.active = record
                    net.run((hi - lo) * p.duration * b2.second)
            if progress is not None:
                progress((start + chunk.shape[0]) / n)
        wall = time.perf_counter() - t0
        out_mon, in_raster = objs["out_mon"], objs["in_raster"]
        weight = None
        if self.rule is not None:
            weight = np.asarray(objs["syn"].w[:], dtype=np.float64).reshape(self.n_inputs, self.n_neurons).T.copy()
        target = b2.prefs.codegen.target
        return SpikeRecord(
            n_samples=n, n_neurons=self.n_neurons, n_inputs=self.n_inputs, params=p,
            target=target if isinstance(target, str) else str(target),
            out_step=np.round(np.asarray(out_mon.t_[:]) / p.dt).astype(np.int64),
            out_neuron=np.asarray(out_mon.i[:], dtype=np.int64),
            input_spikes=int(np.asarray(objs["in_count"].count[:]).sum()),
            raster_input_step=np.round(np.asarray(in_raster.t_[:]) / p.dt).astype(np.int64),
            raster_input_neuron=np.asarray(in_raster.i[:], dtype=np.int64),
            raster_samples=raster_samples, wall_seconds=wall, build_seconds=build_seconds, weight=weight,
            membrane=np.asarray(objs["membrane"].u[:]).T.copy() if record_membrane else None,
        )


def softmax_np(u: np.ndarray, beta: float) -> np.ndarray:
    """Row-wise softmax(beta*u) in float64 (the rate model's soft WTA, for reference checks)."""
    return softmax(u, beta, axis=-1)
