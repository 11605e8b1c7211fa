"""Sequence classifiers (recurrent unit + linear readout of the last hidden state) and the
parameter counting that makes comparisons between unit types fair.

Why parameter-matched: the STPN paper compares units at (about) the same number of trained
parameters, not the same number of neurons -- an STPN neuron carries three parameters per
synapse (W, lambda, gamma), an LSTM neuron four gates.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..errors import NeurohebbError
from .baselines import LSTM, RNN
from .layer import STPN, Quantizer

Tensor = torch.Tensor
MODELS = ("stpn", "lstm", "rnn")


class SequenceClassifier(nn.Module):
    """One recurrent layer over the whole sequence, then Linear(H, classes) on the final h."""

    def __init__(self, recurrent: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.recurrent = recurrent
        self.readout = nn.Linear(recurrent.hidden_size, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.recurrent(x)
        return self.readout(out[:, -1])

    def forward_with_energy(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(logits [B, C], energy per sequence [B]: the per-step proxy summed over time)."""
        out, _, energy = self.recurrent.forward_with_energy(x)
        return self.readout(out[:, -1]), energy.sum(dim=1)


def build_model(
    kind: str,
    input_size: int,
    hidden_size: int,
    num_classes: int,
    *,
    clamp: float | None = None,
    quantizer: Quantizer | None = None,
) -> SequenceClassifier:
    """`kind` is "stpn", "lstm" or "rnn"; clamp/quantizer only apply to the STPN's state."""
    if kind not in MODELS:
        raise NeurohebbError(f"unknown model {kind!r}; choose one of: {', '.join(MODELS)}")
    if hidden_size < 1:
        raise NeurohebbError(f"hidden size must be >= 1, got {hidden_size}")
    if kind != "stpn" and (clamp is not None or quantizer is not None):
        raise NeurohebbError(f"state clamping and state precision apply to the STPN only, not to {kind}; drop them or use --model stpn")
    unit: nn.Module
    if kind == "stpn":
        unit = STPN(input_size, hidden_size, clamp=clamp, quantizer=quantizer)
    elif kind == "lstm":
        unit = LSTM(input_size, hidden_size)
    else:
        unit = RNN(input_size, hidden_size)
    return SequenceClassifier(unit, num_classes)


def parameter_count(kind: str, input_size: int, hidden_size: int, num_classes: int) -> int:
    """Trained parameters of `build_model(kind, ...)`, in closed form (checked by the tests).

    STPN: W, lambda, gamma of H x (I+H) each, plus bias H. RNN: W_ih, W_hh, b_ih, b_hh. LSTM: the
    same for four gates. All: readout H x C + C.
    """
    i, h, c = input_size, hidden_size, num_classes
    readout = h * c + c
    per_unit: dict[str, Callable[[], int]] = {
        "stpn": lambda: 3 * h * (i + h) + h,
        "rnn": lambda: h * (i + h) + 2 * h,
        "lstm": lambda: 4 * (h * (i + h) + 2 * h),
    }
    if kind not in per_unit:
        raise NeurohebbError(f"unknown model {kind!r}; choose one of: {', '.join(MODELS)}")
    return per_unit[kind]() + readout


def matched_hidden(kind: str, target: int, input_size: int, num_classes: int, max_hidden: int = 4096) -> int:
    """Hidden size of `kind` whose parameter count is closest to `target` (the smaller on ties)."""
    best = min(range(1, max_hidden + 1), key=lambda h: (abs(parameter_count(kind, input_size, h, num_classes) - target), h))
    return best
