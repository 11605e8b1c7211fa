"""RNN and LSTM baselines with the STPN layer's interface, for parameter-matched comparisons.

Why wrap torch's own nn.RNN / nn.LSTM: they are the reference implementations (cuDNN on GPU) the
comparison should be against; the wrappers only add the same `forward_with_energy` the STPN has,
computed from the outputs after the fact (energy.py).
"""
from __future__ import annotations

import torch
from torch import nn

from .energy import static_sequence_energy

Tensor = torch.Tensor


class _TorchRecurrent(nn.Module):
    """Shared plumbing: batch-first sequences in, (outputs [B, T, H], final state) out."""

    rnn: nn.RNNBase

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size

    def forward(self, x: Tensor, state=None):
        return self.rnn(x, state)

    def _h0(self, x: Tensor, state) -> Tensor:
        if state is None:
            return x.new_zeros(x.shape[0], self.hidden_size)
        h = state[0] if isinstance(state, tuple) else state
        return h[-1]

    def forward_with_energy(self, x: Tensor, state=None):
        """As `forward`, plus the energy proxy per step [B, T] over all input+recurrent synapses."""
        out, final = self.rnn(x, state)
        h_prev = torch.cat((self._h0(x, state).unsqueeze(1), out[:, :-1]), dim=1)
        weight = torch.cat((self.rnn.weight_ih_l0, self.rnn.weight_hh_l0), dim=1)
        return out, final, static_sequence_energy(x, h_prev, weight)


class RNN(_TorchRecurrent):
    """Elman RNN with tanh, h_{t+1} = tanh(W_ih x_t + b_ih + W_hh h_t + b_hh)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.rnn = nn.RNN(input_size, hidden_size, nonlinearity="tanh", batch_first=True)


class LSTM(_TorchRecurrent):
    """Standard LSTM (torch.nn.LSTM); its state is (h, c)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.rnn = nn.LSTM(input_size, hidden_size, batch_first=True)
