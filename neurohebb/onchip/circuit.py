"""Configure the WTA circuit and the weight format for a layer: the chip's integers from float weights.

Why calibration: the threshold must be set so the winner fires about ``spikes_target`` times on a
typical image, in the chip's units. The rule is the one the Lava deployment uses
(`backends.lava.mapping.map_arrays`, kept in step with it): median winning drive per step on
calibration images, the largest weight exponent that keeps the threshold inside its 17-bit
register, the inhibition inside 8 bits x 2^7, and one step's input inside the 24-bit current.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .engine import ACT_SHIFT, UV_LIMIT, Circuit, rate_code
from .model import LearningEngineModel

VTH_BITS = 17
INH_MAX = 255


@dataclass(frozen=True)
class WeightFormat:
    """Stored integer w_int (on the chip's grid) stands for ``w_int * unit`` in the float model."""

    exponent: int  # float weight = mantissa * 2**exponent, mantissa 8-bit signed
    grid_shift: int  # mantissa stored as mantissa << grid_shift (Lava: 8 - num_weight_bits + mixed)

    @property
    def unit(self) -> float:
        return 2.0 ** (self.exponent - self.grid_shift)


def to_chip_weights(w: torch.Tensor, model: LearningEngineModel, num_weight_bits: int = 8) -> tuple[torch.Tensor, WeightFormat]:
    """Float [K, I] -> stored integers (mixed sign, ``num_weight_bits`` incl. sign) and their format."""
    qmax = 2 ** (num_weight_bits - 1) - 1
    absmax = float(w.abs().max())
    if not absmax > 0:
        raise ConfigError("the layer's initial weights are all zero; on-chip learning needs a random start")
    exponent = math.ceil(math.log2(absmax / qmax))
    mant = torch.round(w.double() / 2.0**exponent).clamp(-qmax - 1, qmax).to(torch.int64)
    fmt = WeightFormat(exponent, (model.weight_bits - 1) - num_weight_bits + 1)
    return mant << fmt.grid_shift, fmt


def inhibition_weight(total: float) -> tuple[int, int]:
    """An inhibitory synapse worth ``total`` (threshold units) as the chip stores it: an 8-bit
    mantissa and the smallest non-negative weight exponent that fits it."""
    exp = 0 if total <= INH_MAX else math.ceil(math.log2(total / INH_MAX))
    return int(round(total / 2**exp)), exp


def calibrate(w_int: torch.Tensor, pixels: torch.Tensor, model: LearningEngineModel, steps: int, gap: int,
              spikes_target: float, inhibition: float, theta_plus: float = 0.0, theta_decay_shift: int = 10,
              lateral: float = 0.0) -> Circuit:
    """The circuit for stored weights ``w_int`` [K, I] and calibration images (uint8 [N, I])."""
    counts = ((2 * steps * pixels.to(torch.int64) + 255) // 510).to(torch.float64)  # rate-code spikes per pixel
    drive = counts @ w_int.to(torch.float64).T  # [N, K] over the sample
    per_step = drive.max(dim=1).values / steps
    typical = float(per_step.median())
    if not typical > 0:
        raise ConfigError("on the calibration images no neuron receives a positive input; check the initial weights")
    target = typical * steps / spikes_target
    vth_cap = min(2**VTH_BITS - 1, INH_MAX * 2**model.weight_exponent_max / max(inhibition, 1e-9))
    trains = rate_code(pixels[:64], steps).to(torch.float64)  # [n, steps, I]
    step_peak = max(float((trains @ w_int.to(torch.float64).T).abs().max()), 1.0)
    lo, hi = model.weight_exponent_range
    weight_exp = min(hi, math.floor(math.log2(vth_cap / target)), math.floor(math.log2((UV_LIMIT >> ACT_SHIFT) / (2 * step_peak))))
    weight_exp = max(weight_exp, lo)
    vth = int(round(target * 2.0**weight_exp))
    if not 1 <= vth <= vth_cap:
        raise ConfigError(f"the WTA threshold {vth} does not fit the 17-bit register with the weight exponent in {lo}..{hi}; "
                          "use fewer onchip.steps or a larger onchip.spikes_target")
    inh_weight, inh_exp = inhibition_weight(inhibition * vth)
    lat_weight, lat_exp = inhibition_weight(lateral * vth)
    return Circuit(steps=steps, gap=gap, vth=vth, inh_weight=inh_weight, inh_exp=inh_exp,
                   weight_exp=weight_exp, theta_plus=int(round(theta_plus * vth)), theta_decay_shift=theta_decay_shift,
                   lat_weight=lat_weight, lat_exp=lat_exp)
