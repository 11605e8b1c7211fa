"""The associative-retrieval task (Ba et al., NeurIPS 2016, "Using fast weights to attend to the
recent past", section 4.1) as used by the STPN paper, generated from a seed.

A sequence lists key/value pairs (a lower-case letter, then a digit), then "??", then one of the
keys; the target is that key's value: ``c9k8j3??k`` -> ``8``. Keys within a sequence are
distinct, values may repeat. The STPN paper's setting (its code,
github.com/NeuromorphicComputing/STPN, AssociativeRetrievalTask/data_art.py): 9 characters, i.e.
3 pairs + "??" + query; a 37-symbol alphabet (26 letters, 10 digits, "?") one-hot encoded;
100k/10k/20k train/validation/test sequences. Ba et al.'s own examples use longer sequences
(4 pairs, ``c9k8j3f1??c`` -> ``9``): set `n_pairs=4`.

Why generated rather than stored: the splits are a pure function of (seed, split, size), each
split from its own random stream, so the test set is the same whatever the training-set size,
and every answer can be re-derived from its sequence (`answer_of`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import NeurohebbError

LETTERS = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
ALPHABET = LETTERS + DIGITS + "?"  # token id = position in this string
VOCAB_SIZE = len(ALPHABET)  # 37
QUERY_MARK = ALPHABET.index("?")
PAPER_SIZES = {"train": 100_000, "val": 10_000, "test": 20_000}
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


def sequence_length(n_pairs: int) -> int:
    """Characters per sequence: 2 per pair, "??", the query key (3 pairs -> 9)."""
    return 2 * n_pairs + 3


def generate(n: int, seed: int, n_pairs: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """`n` sequences as token ids, [n, 2*n_pairs + 3] int64, and their answers (token ids of the
    digit), [n] int64. Deterministic in (seed, n_pairs); the first m of n sequences are the m
    sequences of `generate(m, ...)`, so a reduced training set is a prefix of the paper's."""
    if n < 0:
        raise NeurohebbError(f"number of sequences must be >= 0, got {n}")
    if not 1 <= n_pairs <= len(LETTERS):
        raise NeurohebbError(f"n_pairs must be between 1 and {len(LETTERS)} (keys are distinct letters), got {n_pairs}")
    chunks = [_generate_chunk(np.random.default_rng([seed, i]), n_pairs) for i in range(-(-n // _CHUNK))]
    if not chunks:
        return np.empty((0, sequence_length(n_pairs)), dtype=np.int64), np.empty(0, dtype=np.int64)
    tokens = np.concatenate([c[0] for c in chunks])[:n]
    answers = np.concatenate([c[1] for c in chunks])[:n]
    return tokens, answers


_CHUNK = 4096  # sequences drawn per random stream; fixed, so prefixes are stable


def _generate_chunk(rng: np.random.Generator, n_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    n = _CHUNK
    # Distinct keys per sequence: the first n_pairs letters of a random permutation per row.
    keys = np.argsort(rng.random((n, len(LETTERS))), axis=1)[:, :n_pairs]
    values = rng.integers(0, len(DIGITS), size=(n, n_pairs)) + len(LETTERS)
    which = rng.integers(0, n_pairs, size=n)
    tokens = np.empty((n, sequence_length(n_pairs)), dtype=np.int64)
    tokens[:, 0 : 2 * n_pairs : 2] = keys
    tokens[:, 1 : 2 * n_pairs : 2] = values
    tokens[:, 2 * n_pairs] = QUERY_MARK
    tokens[:, 2 * n_pairs + 1] = QUERY_MARK
    rows = np.arange(n)
    tokens[:, -1] = keys[rows, which]
    return tokens, values[rows, which].astype(np.int64)


def split_seed(seed: int, split: str) -> int:
    """Independent, reproducible stream per split (changing one split's size leaves the others)."""
    if split not in _SPLIT_IDS:
        raise NeurohebbError(f"unknown split {split!r}; choose one of: {', '.join(_SPLIT_IDS)}")
    return int(np.random.SeedSequence([seed, _SPLIT_IDS[split]]).generate_state(1)[0])


@dataclass
class AssocRetrievalData:
    """The three splits as token ids (int64 tensors) and answers, plus how they were made."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    seed: int
    n_pairs: int

    @property
    def num_classes(self) -> int:
        return VOCAB_SIZE


def make_splits(
    seed: int = 0,
    *,
    train_size: int = PAPER_SIZES["train"],
    val_size: int = PAPER_SIZES["val"],
    test_size: int = PAPER_SIZES["test"],
    n_pairs: int = 3,
) -> AssocRetrievalData:
    """Train/validation/test splits (defaults: the paper's 100k/10k/20k) from one dataset seed."""
    for name, size in (("train_size", train_size), ("val_size", val_size), ("test_size", test_size)):
        if size < 1:
            raise NeurohebbError(f"{name} must be >= 1, got {size}")
    parts = {}
    for split, size in (("train", train_size), ("val", val_size), ("test", test_size)):
        x, y = generate(size, split_seed(seed, split), n_pairs)
        parts[split] = (torch.from_numpy(x), torch.from_numpy(y))
    return AssocRetrievalData(*parts["train"], *parts["val"], *parts["test"], seed=seed, n_pairs=n_pairs)


def one_hot(tokens: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[B, T] token ids -> [B, T, 37] one-hot inputs (the paper feeds one-hot, no embedding)."""
    return torch.nn.functional.one_hot(tokens, VOCAB_SIZE).to(dtype)


def encode(text: str) -> np.ndarray:
    """``"c9k8j3??k"`` -> token ids."""
    try:
        return np.array([ALPHABET.index(ch) for ch in text], dtype=np.int64)
    except ValueError:
        raise NeurohebbError(f"{text!r} has a character outside the task's alphabet a-z, 0-9, '?'") from None


def decode(tokens) -> str:
    """Token ids -> text, e.g. for printing a sequence or an answer."""
    return "".join(ALPHABET[int(t)] for t in np.asarray(tokens).reshape(-1))


def answer_of(tokens) -> int:
    """The correct answer of one sequence, re-derived from its text (independently of the
    generator): the digit that follows the query key's first occurrence."""
    text = decode(tokens)
    body, sep, query = text.rpartition("??")
    if not sep or len(query) != 1 or query not in LETTERS:
        raise NeurohebbError(f"{text!r} is not an associative-retrieval sequence (pairs, '??', one key)")
    for i in range(0, len(body) - 1, 2):
        if body[i] == query:
            return ALPHABET.index(body[i + 1])
    raise NeurohebbError(f"query key {query!r} does not occur in {text!r}")
