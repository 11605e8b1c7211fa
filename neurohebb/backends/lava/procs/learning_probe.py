"""What an on-chip learning run reads back from Lava after every window, packed into few words.

Why: Lava 0.10 sends a Var to the host one element at a time (`PyLoihiProcessModel._get_var`,
a FIXME in Lava), three channel hops per element, about 17k elements a second here. A learning
run compares Lava's weights with the integer engine's after every sample: 100 x 784 weights and
~9k recorded spikes a window took ~5 s to read, against milliseconds to simulate. So:

- `ReadableLearningDense` is Lava's `LearningDense` with its fixed-point model unchanged, plus a
  Var holding the weights packed five to a word (10 bits each: Lava clips learned weights to
  W_WEIGHTS_U = 8 magnitude bits and a sign, so every value lies in [-512, 512)). The words are
  refreshed wherever the model changes the weights: the first step's truncation and every
  learning epoch.
- `SpikeRing` is Lava's sink `RingBuffer` (step t in slot (t - 1) % buffer) storing each step's
  spike flags packed 48 to a word (`graded_io.pack_bits`).

Each word is below 2**53, so it crosses Lava's float64 channel exactly. Reading is 5x (weights)
and 48x (spikes) fewer elements.

Imports are absolute because Lava's compiler also executes this file outside its package.
"""
from __future__ import annotations

import numpy as np

from neurohebb.backends.lava import compat

compat.install()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.learning.constants import W_WEIGHTS_U  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.dense.models import PyLearningDenseModelBitApproximate  # noqa: E402
from lava.proc.dense.process import LearningDense  # noqa: E402

from neurohebb.backends.lava.procs.graded_io import BITS_PER_WORD, pack_bits, unpack_bits  # noqa: E402

VALUE_BITS = W_WEIGHTS_U + 2  # magnitude bits, sign, and the mixed sign mode's doubling
VALUES_PER_WORD = 53 // VALUE_BITS  # float64 holds integers below 2**53 exactly
_OFFSET = 1 << (VALUE_BITS - 1)


def pack_ints(values: np.ndarray) -> np.ndarray:
    """Integers in [-2**(VALUE_BITS-1), 2**(VALUE_BITS-1)) (flattened, C order) as int64 words,
    VALUES_PER_WORD to a word; raises if a value does not fit (a silent wrap would fake agreement)."""
    flat = np.asarray(values, dtype=np.int64).reshape(-1) + _OFFSET
    if flat.size and (flat.min() < 0 or flat.max() >= 2 * _OFFSET):
        raise ValueError(f"weights outside [-{_OFFSET}, {_OFFSET}) cannot be packed {VALUE_BITS} bits each")
    words = -(-flat.size // VALUES_PER_WORD)
    padded = np.zeros(words * VALUES_PER_WORD, dtype=np.int64)
    padded[: flat.size] = flat
    shifts = np.arange(VALUES_PER_WORD, dtype=np.int64) * VALUE_BITS
    return np.left_shift(padded.reshape(words, VALUES_PER_WORD), shifts).sum(axis=1)


def unpack_ints(words: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of `pack_ints`: int64 words -> int64 array of ``shape``."""
    words = np.asarray(words, dtype=np.int64).reshape(-1)
    shifts = np.arange(VALUES_PER_WORD, dtype=np.int64) * VALUE_BITS
    values = np.right_shift(words[:, None], shifts) & (2 * _OFFSET - 1)
    return (values.reshape(-1)[: int(np.prod(shape))] - _OFFSET).reshape(shape)


def read_words(var) -> np.ndarray:
    """A packed Var's words as int64 (`Var.get` returns float64; the words are exact there)."""
    return np.asarray(var.get(), dtype=np.float64).astype(np.int64)


class ReadableLearningDense(LearningDense):
    """`LearningDense` whose weights can be read cheaply: ``weight_words`` (see module docstring)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        count = int(np.prod(self.weights.shape))
        self.weight_words = Var(shape=(-(-count // VALUES_PER_WORD),), init=0)

    def read_weights(self) -> np.ndarray:
        """Lava's current weights [K, I] as int64, through ``weight_words``."""
        return unpack_ints(read_words(self.weight_words), self.weights.shape)


class SpikeRing(AbstractProcess):
    """Lava's sink `RingBuffer` for spikes, flags packed 48 to a word: ``bits[(t - 1) % buffer]``."""

    def __init__(self, *, shape: tuple[int], buffer: int) -> None:
        super().__init__(shape=shape, buffer=buffer)
        self.a_in = InPort(shape=shape)
        self.bits = Var(shape=(buffer, -(-int(shape[0]) // BITS_PER_WORD)), init=0)
        self.n = int(shape[0])

    def read(self, steps: np.ndarray) -> np.ndarray:
        """Flags [len(steps), n] (bool) of the global steps ``steps`` (1-based, still in the ring)."""
        words = read_words(self.bits)
        return unpack_bits(words[(np.asarray(steps) - 1) % words.shape[0]], self.n).astype(bool)


@implements(proc=ReadableLearningDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_approximate_loihi", "fixed_pt")
class PyReadableLearningDenseModel(PyLearningDenseModelBitApproximate):
    """Lava's bit-approximate `LearningDense` model, repacking ``weight_words`` after each change."""

    implements_process = None  # inherited from Lava's model (LearningDense); this one implements the subclass
    weight_words: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def run_spk(self) -> None:
        fresh = not self.weights_set  # the first step truncates the weights to the grid
        super().run_spk()
        if fresh:
            self.weight_words[:] = pack_ints(self.weights)

    def run_lrn(self) -> None:
        super().run_lrn()
        self.weight_words[:] = pack_ints(self.weights)


@implements(proc=SpikeRing, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeRingModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    bits: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def run_spk(self) -> None:
        spikes = np.asarray(self.a_in.recv()) != 0
        self.bits[(self.time_step - 1) % self.bits.shape[0]] = pack_bits(spikes)
