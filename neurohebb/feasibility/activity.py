"""How active each layer is: the spike rates the cost model multiplies synapses by.

Rate coding assumption (stated in every report): an activation ``a >= 0`` is sent as a spike
train whose probability of a spike per time step is ``r = clip(a / a_ref, 0, 1)``, with ``a_ref``
the layer's 99.9th percentile over the measured batch (the "robust normalisation" of ANN-to-SNN
conversion, Rueckauer et al. 2017); pixels are already in [0, 1] and are used as they are.

Why measured rather than assumed: synaptic operations scale with the input rate, and a trained
soft-WTA layer is far sparser than a uniform guess; the cost report should rest on the network's
own activity on real data. A uniform profile exists for hand-built networks and for tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DataError, NeurohebbError
from .netspec import LayerSpec

RATE_PERCENTILE = 99.9
DEFAULT_SAMPLES = 64
UPDATE_SAMPLES = 4  # samples used to measure the size of one raw (batch-1) weight update
QUANTILE_POINTS = 1_000_000


@dataclass
class LayerActivity:
    """Activity of one layer, as spike probabilities per time step.

    ``input_rates`` ([C, H, W], one entry per input line) refines ``input_rate`` (their mean) where
    the synapse count differs between lines (convolution borders); None means uniform.
    ``u_scale``, ``update_scale`` and ``weight_absmax`` are measured magnitudes the Loihi 2 rule
    emitter needs to choose fixed-point coefficients (None when not measured).
    """

    input_rate: float
    output_rate: float
    input_rates: np.ndarray | None = field(default=None, repr=False)
    u_scale: float | None = None
    update_scale: float | None = None
    weight_absmax: float | None = None

    def __post_init__(self) -> None:
        for name in ("input_rate", "output_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise NeurohebbError(f"{name} must be a spike probability in [0, 1], got {value}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"input_rate": self.input_rate, "output_rate": self.output_rate}
        for key in ("u_scale", "update_scale", "weight_absmax"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass
class ActivityProfile:
    """Per-layer activity and a sentence saying where it came from."""

    layers: dict[str, LayerActivity]
    source: str
    measured: bool
    samples: int = 0

    def for_layer(self, name: str) -> LayerActivity:
        try:
            return self.layers[name]
        except KeyError:
            raise NeurohebbError(f"no activity for layer {name!r}; the profile covers {', '.join(self.layers)}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "measured": self.measured,
            "samples": self.samples,
            "rate_coding": f"spike probability per step = clip(activation / p{RATE_PERCENTILE:g}, 0, 1); pixels as is",
            "layers": {k: v.to_dict() for k, v in self.layers.items()},
        }


def uniform_activity(layers: list[LayerSpec], rate: float, source: str | None = None) -> ActivityProfile:
    """Every input line and neuron spikes with probability `rate` per step (an assumption)."""
    if not 0.0 <= rate <= 1.0:
        raise NeurohebbError(f"--activity must be a spike probability in [0, 1], got {rate}")
    return ActivityProfile(
        {layer.name: LayerActivity(rate, rate) for layer in layers},
        source or f"assumed: every input line and neuron spikes with probability {rate:g} per time step",
        measured=False,
    )


# ----------------------------------------------------------------------------------------------
# Measuring a torch network (imports torch lazily: the rest of the package does not need it)


def _reference(a, q: float = RATE_PERCENTILE / 100.0) -> float:
    import torch

    flat = a.detach().flatten().float()
    if flat.numel() > QUANTILE_POINTS:  # a strided sample estimates the percentile well and fast
        flat = flat[:: flat.numel() // QUANTILE_POINTS + 1]
    return float(torch.quantile(flat, q))


def _rates(a, ref: float):
    import torch

    if ref <= 0:
        return torch.zeros_like(a)
    return torch.clamp(a / ref, 0.0, 1.0)


def _raw_update_scale(layer, x_norm, u, rule: str, t_invert: float, samples: int) -> float:
    """Median over single samples of max|dW| of the un-normalised rule (what normalisation divides by)."""
    import torch

    from .. import activations, rules

    w = layer.weight
    maxima = []
    for i in range(min(samples, x_norm.shape[0])):
        xi, ui = x_norm[i : i + 1], u[i : i + 1]
        yi = activations.post_synaptic(ui, rule, t_invert, dim=1)
        if w.dim() == 2:
            dw = rules.linear_update(xi.reshape(1, -1), ui, yi, w)
        else:
            dw = rules.conv_update(layer.pre(xi), ui, yi, w, layer.cfg.stride)
        maxima.append(float(dw.abs().max()))
    return float(torch.tensor(maxima).median()) if maxima else 0.0


def measure_activity(net, x, layers: list[LayerSpec], source: str, batch_stats: bool) -> ActivityProfile:
    """Run `net` (a HebbNetwork) on `x` (float [B, C, H, W] in [0, 1]) and record each layer's rates.

    `batch_stats` uses the batch's own BatchNorm statistics (an untrained network, as in the
    Hebbian phase); otherwise the network runs in eval mode (a trained checkpoint).
    """
    import torch

    from .. import activations

    was_training = net.training
    net.train(batch_stats)
    out: dict[str, LayerActivity] = {}
    try:
        with torch.no_grad():
            h = x
            for i, (block, spec) in enumerate(zip(net.blocks, layers)):
                in_rates = h.clamp(0.0, 1.0) if i == 0 else _rates(h, _reference(h))
                xn = block.normalize(h)
                u = block.layer(xn)
                cfg = block.cfg
                a = activations.block_activation(u, cfg.activation, cfg.activation_param, dim=1)
                update_scale = None
                if spec.plastic:
                    update_scale = _raw_update_scale(block.layer, xn, u, cfg.rule, cfg.t_invert, UPDATE_SAMPLES)
                out[spec.name] = LayerActivity(
                    input_rate=float(in_rates.mean()),
                    output_rate=float(_rates(a, _reference(a)).mean()),
                    input_rates=in_rates.mean(dim=0).reshape(spec.input_shape).cpu().numpy() if spec.kind == "conv" else None,
                    u_scale=_reference(u.abs()),
                    update_scale=update_scale,
                    weight_absmax=float(block.layer.weight.abs().max()),
                )
                h = block.activate(u)
            readout = [s for s in layers if s.name == "readout"]
            if readout:
                feats = h.reshape(h.shape[0], -1)
                out["readout"] = LayerActivity(
                    input_rate=float(_rates(feats, _reference(feats)).mean()),
                    output_rate=0.0,  # the readout integrates and is read out; it does not spike
                    weight_absmax=float(net.readout.weight.abs().max()),
                )
    finally:
        net.train(was_training)
    return ActivityProfile(out, source, measured=True, samples=int(x.shape[0]))


def sample_inputs(config, data_dir: str | None, samples: int):
    """`samples` test images of the config's dataset as float [B, C, H, W] in [0, 1], and a note.

    When the dataset is not available, the built-in digits are resized (bilinear) and repeated
    over channels to the network's input shape -- and the note says so.
    """
    import torch
    import torch.nn.functional as F

    from ..data import load_dataset, to_float
    from ..shapes import DATASET_SHAPES

    name = config.data.dataset
    shape = DATASET_SHAPES[name]
    try:
        ds = load_dataset(name, data_dir or config.data.data_dir, test_subset=samples, train_subset=1)
        x = torch.as_tensor(np.asarray(to_float(ds.x_test[:samples])))
        return x.float(), f"{x.shape[0]} test images of {name}"
    except DataError as exc:
        fallback_reason = str(exc).split(";")[0]
    ds = load_dataset("digits", test_subset=samples, train_subset=1)
    x = torch.as_tensor(np.asarray(to_float(ds.x_test[:samples]))).float()
    c, h, w = shape
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False).repeat(1, c // x.shape[1], 1, 1)
    return x.clamp(0, 1), (
        f"{x.shape[0]} built-in digits images resized to {c}x{h}x{w} because {name} was not found "
        f"({fallback_reason}); rates are indicative only"
    )
