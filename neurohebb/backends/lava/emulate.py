"""NumPy twin of the deployed circuit, with Lava's fixed-point (or float) neuron arithmetic.

Why: it runs many samples at once without starting Lava (seconds instead of minutes), which is
what choosing the circuit's free parameters on *training* images needs, and it is an independent
implementation the Lava run is checked against spike for spike (tests/test_lava_deploy.py). The
arithmetic follows Lava 0.10's `PyDenseModelBitAcc` and `PyLifResetModelBitAcc`: Dense sums
shifted by ``weight_exp`` (right shifts floor), synaptic input and threshold aligned by 6 bits,
24-bit current that wraps and voltage that saturates, reset of the voltage to 0 after a spike.
Time is per sample: relative step q = 0 is the step the sample's first input reaches the WTA
neurons (`mapping.WTACircuit.lead` steps after the generator sends it; the Lava run handles the
offsets). The WTA runs for the whole window; the interneuron fires at q + 1 when any WTA neuron
fired at q and the inhibition lands at q + 2; the readout integrates the WTA spikes of steps
``0 .. steps - 1`` and is read at the end of step ``steps``. Spike counts cover the whole window.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError
from .encoding import encode
from .mapping import ACT_SHIFT, READOUT_VTH, UV_LIMIT, LavaNetwork

DECAY_SHIFT = 12


@dataclass
class CircuitRun:
    """Per-sample results of running the circuit (Lava or the emulation).

    Spiking mode: ``readout_v`` holds the readout potentials, predictions are their argmax (-1
    when no WTA neuron fired: no evidence). Currents mode: ``readout_v`` holds the K integrated
    potentials and predictions come from the host's softmax and readout.
    """

    counts: np.ndarray  # [N, K] WTA spikes per sample (zeros in currents mode)
    readout_v: np.ndarray  # [N, C] readout potentials, or [N, K] integrated currents
    input_spikes: np.ndarray  # [N] spikes sent by the generator
    interneuron_spikes: np.ndarray  # [N]
    relay_spikes: np.ndarray  # [N] (TTFS relay stage; 0 for other codes)
    raster: np.ndarray | None = None  # [window, K] WTA spikes of the raster sample
    mode: str = "spiking"
    host_predictions: np.ndarray | None = None  # currents mode
    fixed: bool = True  # fixed-point potentials (Loihi's 6-bit alignment) or floating point

    @property
    def silent(self) -> np.ndarray:
        if self.mode == "currents":
            return np.zeros(len(self.counts), dtype=bool)
        return self.counts.sum(axis=1) == 0

    @property
    def predictions(self) -> np.ndarray:
        if self.mode == "currents":
            return self.host_predictions
        return np.where(self.silent, -1, self.readout_v.argmax(axis=1))


def wta_input(spikes: np.ndarray, coding: str) -> np.ndarray:
    """What the WTA's synapses receive per step [N, T, I]: the code itself, or for TTFS the relay
    stage's output (a spike every step from the pixel's spike to the end of the input)."""
    return np.cumsum(spikes, axis=1) > 0 if coding == "ttfs" else spikes


def _shift(acc: np.ndarray, exp: int) -> np.ndarray:
    return np.left_shift(acc, exp) if exp > 0 else np.right_shift(acc, -exp)


def _decay_fixed(x: np.ndarray, decay_const: int) -> np.ndarray:
    d = x * (2**DECAY_SHIFT - decay_const)
    return np.sign(d) * np.right_shift(np.abs(d), DECAY_SHIFT)


def _lif_fixed(u, v, a_in, du, dv, vth):
    """One step of Lava's bit-accurate LIF (ds_offset 1, dm_offset 0)."""
    u = _decay_fixed(u, du + 1) + np.left_shift(a_in, ACT_SHIFT)
    u = np.where(u > UV_LIMIT, u - 2 * UV_LIMIT, u)
    u = np.where(u <= -UV_LIMIT, u + 2 * UV_LIMIT, u)
    v = np.clip(_decay_fixed(v, dv) + u, -UV_LIMIT + 1, UV_LIMIT - 1)
    spikes = v > (vth << ACT_SHIFT)
    return u, np.where(spikes, 0, v), spikes


def _lif_float(u, v, a_in, du, dv, vth):
    u = u * (1 - du) + a_in
    v = v * (1 - dv) + u
    spikes = v > vth
    return u, np.where(spikes, 0.0, v), spikes


def emulate(net: LavaNetwork, images: np.ndarray, tag: str = "fixed_pt", sample_offset: int = 0,
            batch: int = 256, raster_sample: int | None = None) -> CircuitRun:
    """Run every image through the circuit; ``sample_offset`` seeds the Poisson code as in Lava."""
    if tag not in ("fixed_pt", "floating_pt"):
        raise ConfigError(f"tag {tag!r} is unknown; choose fixed_pt or floating_pt")
    c = net.circuit
    if c.wta == "currents":
        return _emulate_currents(net, images, tag, sample_offset, batch)
    if net.readout is None:
        raise ConfigError("this circuit has no readout to emulate; map it with readout weights")
    fixed = tag == "fixed_pt"
    ftype = np.float32 if fixed else np.float64  # float32 sums of integers are exact below 2**24
    if fixed:
        w_ff, w_ro = net.ff.weights.astype(ftype).T, net.readout.weights.astype(ftype).T
    else:
        w_ff, w_ro = net.ff_float.T, net.readout_float.T
    inh_fixed = _shift(np.int64(-int(net.inh_weight)), net.inh_exp)
    inh_float = -float(net.inhibition_value)
    images = np.asarray(images)
    out = {"counts": [], "readout_v": [], "input": [], "inter": [], "relay": []}
    raster = None
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        spikes = encode(chunk, c.steps, c.coding, c.seed, sample_offset + start)  # [B, T, I]
        drive_in = wta_input(spikes, c.coding)
        b, k, n_cls = len(chunk), net.num_neurons, net.num_classes
        dtype = np.int64 if fixed else np.float64
        u, v = np.zeros((b, k), dtype), np.zeros((b, k), dtype)
        ur, vr = np.zeros((b, n_cls), dtype), np.zeros((b, n_cls), dtype)
        fired = np.zeros((c.window + 2, b), dtype=bool)  # fired[q]: any WTA spike at step q
        count = np.zeros((b, k), dtype=np.int64)
        rast = np.zeros((c.window, k), dtype=np.int32) if raster_sample is not None and start <= raster_sample < start + b else None
        silence = np.zeros((b, k), dtype=ftype)
        for q in range(c.window):
            drive = drive_in[:, q].astype(ftype) @ w_ff if q < c.steps else silence
            inhibited = fired[q - 2] if q >= 2 else np.zeros(b, dtype=bool)
            if fixed:
                a = _shift(drive.astype(np.int64), net.ff.weight_exp) + np.where(inhibited, inh_fixed, 0)[:, None]
                u, v, spk = _lif_fixed(u, v, a, 4095, 0, int(net.vth))
            else:
                a = drive + np.where(inhibited, inh_float, 0.0)[:, None]
                u, v, spk = _lif_float(u, v, a, 1.0, 0.0, float(net.vth))
            fired[q] = spk.any(axis=1)
            if q < c.steps:  # readout: spikes of step q arrive at q + 1 <= steps, read at the end of `steps`
                ro = spk.astype(ftype) @ w_ro
                if fixed:
                    ur, vr, _ = _lif_fixed(ur, vr, _shift(ro.astype(np.int64), net.readout.weight_exp), 4095, 0, READOUT_VTH)
                else:
                    ur, vr, _ = _lif_float(ur, vr, ro, 1.0, 0.0, float(READOUT_VTH))
            count += spk
            if rast is not None:
                rast[q] = spk[raster_sample - start]
        out["counts"].append(count)
        out["readout_v"].append(vr)
        out["input"].append(spikes.reshape(b, -1).sum(axis=1))
        out["inter"].append(fired[: c.window].sum(axis=0))
        out["relay"].append(drive_in.reshape(b, -1).sum(axis=1) if c.coding == "ttfs" else np.zeros(b, dtype=np.int64))
        if rast is not None:
            raster = rast
    cat = {key: np.concatenate(val) for key, val in out.items()}
    return CircuitRun(cat["counts"], cat["readout_v"], cat["input"], cat["inter"], cat["relay"], raster, fixed=fixed)


def _emulate_currents(net: LavaNetwork, images: np.ndarray, tag: str, sample_offset: int, batch: int) -> CircuitRun:
    """Integrator neurons (no threshold crossing): their potential after the input, per sample."""
    c = net.circuit
    fixed = tag == "fixed_pt"
    ftype = np.float32 if fixed else np.float64
    w_ff = net.ff.weights.astype(ftype).T if fixed else net.ff_float.T
    images = np.asarray(images)
    potentials, inputs, relay = [], [], []
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        spikes = encode(chunk, c.steps, c.coding, c.seed, sample_offset + start)
        drive_in = wta_input(spikes, c.coding)
        b, k = len(chunk), net.num_neurons
        u = np.zeros((b, k), np.int64 if fixed else np.float64)
        v = np.zeros_like(u)
        for q in range(c.steps):
            drive = drive_in[:, q].astype(ftype) @ w_ff
            if fixed:
                u, v, _ = _lif_fixed(u, v, _shift(drive.astype(np.int64), net.ff.weight_exp), 4095, 0, int(net.vth))
            else:
                u, v, _ = _lif_float(u, v, drive, 1.0, 0.0, float(net.vth))
        potentials.append(v)
        inputs.append(spikes.reshape(b, -1).sum(axis=1))
        relay.append(drive_in.reshape(b, -1).sum(axis=1) if c.coding == "ttfs" else np.zeros(b, dtype=np.int64))
    v = np.concatenate(potentials)
    n = len(v)
    zeros = np.zeros(n, dtype=np.int64)
    return CircuitRun(np.zeros((n, net.num_neurons), np.int64), v, np.concatenate(inputs), zeros, np.concatenate(relay),
                      None, "currents", net.host_predictions(v, fixed), fixed)
