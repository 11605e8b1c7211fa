"""STPN: short-term plasticity neurons (Garcia Rodriguez, Guo & Moraitis, ICML 2022).

A recurrent layer whose synapses carry a decaying short-term state trained by backpropagation
through time (`STPN`, dynamics in `functional.stpn_step`), the associative-retrieval task
(`tasks`), RNN/LSTM baselines at matched parameter counts (`models`, `baselines`), the authors'
energy proxy (`energy`), the short-term state held at chip precision (`precision`) and the
training runs behind `neurohebb stpn` (`training`).
"""
from __future__ import annotations

from .energy import static_sequence_energy, synaptic_energy
from .functional import STPNParams, STPNState, initial_state, stpn_step
from .layer import STPN
from .models import MODELS, SequenceClassifier, build_model, matched_hidden, parameter_count
from .precision import RangeObserver, STPNPrecision, format_for_range

__all__ = [
    "STPN", "STPNState", "STPNParams", "stpn_step", "initial_state",
    "synaptic_energy", "static_sequence_energy",
    "SequenceClassifier", "build_model", "parameter_count", "matched_hidden", "MODELS",
    "STPNPrecision", "RangeObserver", "format_for_range",
]
