"""The chip's learning engine as a `PlasticityStep`, so the ordinary pipeline (features, readout,
metrics, run directory, eval) runs unchanged around on-chip learning.

How a batch is used: the pipeline hands over batches of ``hebbian.batch_size`` images; the chip
learns from them one at a time, in order (batch 1: every sample's update is applied before the
next sample is seen). The first ``onchip.calibration`` images seen also set the circuit's
threshold once (the calibration a deployment would do on training data); they are held back until
then, and learned from first.

The float layer the rest of the pipeline reads holds the chip's weights exactly: after every
batch ``layer.weight = w_int * unit`` (the stored integers times the value of one weight step).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..config import RunConfig
from .circuit import WeightFormat, calibrate, to_chip_weights
from .engine import ChipLearningLoop
from .model import load_engine_model
from .rules import resolve_variant


class ChipStep:
    """`PlasticityStep` running a chip's learning engine (``mode`` = "chip:<chip>")."""

    def __init__(self, config: RunConfig, device: str | torch.device = "cpu"):
        oc = config.onchip
        self.config = config
        self.model = load_engine_model(oc.chip)
        self.variant = resolve_variant(oc.rule, oc.traces)
        self.variant.check(self.model)
        self.mode = f"chip:{self.model.chip}"
        self.device = torch.device(device)
        self._layers: dict[int, tuple[int, nn.Module]] = {}
        self._loops: dict[int, ChipLearningLoop] = {}
        self._formats: dict[int, WeightFormat] = {}
        self._calib: dict[int, list[torch.Tensor]] = {}

    def attach(self, layer: nn.Module, index: int) -> None:
        if id(layer) in self._layers:
            return
        self._layers[id(layer)] = (index, layer)
        with torch.no_grad():
            w_int, fmt = to_chip_weights(layer.weight.detach().cpu(), self.model)
            self._formats[id(layer)] = fmt
            layer.weight.copy_((w_int.double() * fmt.unit).to(layer.weight.dtype))  # start from the chip's weights
        self._calib[id(layer)] = []

    @torch.no_grad()
    def step(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        u = x.reshape(x.shape[0], -1) @ layer.weight.T  # before the update, as the protocol asks
        if not layer.plastic:
            return u
        key = id(layer)
        pixels = torch.round(x.reshape(x.shape[0], -1) * 255).clamp(0, 255).to(torch.uint8)
        loop = self._loops.get(key)
        if loop is None:
            # the first images configure the circuit; then the chip learns from them, in order
            self._calib[key].append(pixels.cpu())
            seen = sum(len(p) for p in self._calib[key])
            need = self.config.onchip.calibration
            if self.config.data.train_subset:
                need = min(need, self.config.data.train_subset)
            if seen < need:
                return u
            pixels = torch.cat(self._calib.pop(key))
            loop = self._start(layer, pixels[:self.config.onchip.calibration])
        loop.run(pixels.to(self.device))
        fmt = self._formats[key]
        layer.weight.copy_((loop.weights.double() * fmt.unit).to(layer.weight.dtype))
        return u

    def _start(self, layer: nn.Module, calib: torch.Tensor) -> ChipLearningLoop:
        oc, v = self.config.onchip, self.variant
        fmt = self._formats[id(layer)]
        w_int = torch.round(layer.weight.detach().cpu().double() / fmt.unit).to(torch.int64)
        circuit = calibrate(w_int, calib, self.model, oc.steps, oc.gap, oc.spikes_target, oc.inhibition,
                            v.theta_plus, v.theta_decay_shift, lateral=oc.lateral_inhibition)
        written = {}
        if v.writes:  # scale: a multiple of the median winner's summed input on the calibration images
            counts = ((2 * oc.steps * calib.to(torch.int64) + 255) // 510).to(torch.float64)
            total = counts @ w_int.to(torch.float64).T
            e = circuit.weight_exp
            ref = float(total.max(dim=1).values.median()) * 2.0**e
            written = {name: mult if isinstance(mult, tuple) else mult * ref for name, mult in v.writes}
        loop = ChipLearningLoop(self.model, v.rule, v.traces, w_int, circuit, v.t_epoch or None,
                                rng_seed=self.config.seed, device=self.device, written=written)
        self._loops[id(layer)] = loop
        return loop

    def progress_note(self) -> str:
        """What the progress bar shows: whether the competition is healthy (active neurons, spikes
        a sample); the float path's |norm - 1| means nothing for chip weights."""
        parts = []
        for loop in self._loops.values():
            s = loop.spike_rate_summary()
            parts.append(f"active {s['active_neurons']}/{loop.k}, {s['wta_spikes_per_sample']:.1f} spikes/sample")
        return "; ".join(parts) or "calibrating"

    def diagnostics(self) -> list[dict[str, Any]]:
        from ..precision.diagnostics import weight_histogram

        out = []
        for key, (index, layer) in sorted(self._layers.items(), key=lambda kv: kv[1][0]):
            loop = self._loops.get(key)
            entry: dict[str, Any] = {"layer": index, "chip": self.model.chip, "rule_name": self.variant.name,
                                     "rule": self.variant.rule, "traces": {k: v for k, v in vars(self.variant.traces).items() if v},
                                     "weight_histogram": weight_histogram(layer.weight)}
            if loop is not None:
                c = loop.circuit
                entry.update(loop.spike_rate_summary())
                entry.update({"t_epoch": loop.t_epoch, "circuit": {"steps": c.steps, "gap": c.gap, "vth": c.vth,
                              "inh_weight": c.inh_weight, "inh_exp": c.inh_exp, "weight_exp": c.weight_exp,
                              "theta_plus": c.theta_plus, "theta_decay_shift": c.theta_decay_shift,
                              "lat_weight": c.lat_weight, "lat_exp": c.lat_exp},
                              "weight_unit": self._formats[key].unit,
                              "weight_codes_min_max": [int(loop.weights.min()), int(loop.weights.max())],
                              "neurons_never_won": int((loop.wins == 0).sum())})
            out.append(entry)
        return out
