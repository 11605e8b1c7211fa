"""The associative-retrieval generator: format, determinism, independent splits, correct answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neurohebb.errors import NeurohebbError
from neurohebb.stpn.tasks import (
    ALPHABET, LETTERS, VOCAB_SIZE, answer_of, decode, encode, generate, make_splits, one_hot, sequence_length,
)


def test_alphabet_is_the_papers_37_symbols():
    assert VOCAB_SIZE == 37 and ALPHABET[:26] == LETTERS and ALPHABET[26:36] == "0123456789" and ALPHABET[36] == "?"
    assert sequence_length(3) == 9  # the STPN paper's 9-character sequences


def test_hand_written_examples():
    assert ALPHABET[answer_of(encode("c9k8j3??k"))] == "8"
    assert ALPHABET[answer_of(encode("c9k8j3f1??c"))] == "9"  # Ba et al.'s 4-pair example
    assert decode(encode("a0b1??b")) == "a0b1??b"
    with pytest.raises(NeurohebbError, match="alphabet"):
        encode("A1??A")
    with pytest.raises(NeurohebbError, match="does not occur"):
        answer_of(encode("a1b2??c"))


def test_sequences_have_the_task_format():
    x, y = generate(3000, seed=11)
    assert x.shape == (3000, 9) and x.dtype == np.int64 and y.shape == (3000,)
    keys, values = x[:, 0:6:2], x[:, 1:6:2]
    assert (keys < 26).all() and ((values >= 26) & (values < 36)).all()
    assert (x[:, 6] == 36).all() and (x[:, 7] == 36).all()
    assert all(len(set(row)) == 3 for row in keys)  # keys within a sequence are distinct
    assert (keys == x[:, 8:9]).any(axis=1).all()  # the query is one of the keys
    # Loose balance checks: every digit and every query position occurs often.
    assert np.bincount(y - 26, minlength=10).min() > 200
    assert np.bincount((keys == x[:, 8:9]).argmax(axis=1), minlength=3).min() > 800


def test_every_answer_is_rederived_from_its_text():
    x, y = generate(2000, seed=3, n_pairs=4)
    assert x.shape[1] == 11
    assert [answer_of(row) for row in x] == y.tolist()


def test_generation_is_deterministic_and_seed_dependent():
    a, ya = generate(500, seed=7)
    b, yb = generate(500, seed=7)
    c, _ = generate(500, seed=8)
    assert np.array_equal(a, b) and np.array_equal(ya, yb)
    assert not np.array_equal(a, c)


def test_splits_are_independent_of_each_others_sizes():
    small = make_splits(0, train_size=100, val_size=50, test_size=200)
    large = make_splits(0, train_size=1000, val_size=60, test_size=200)
    assert torch.equal(small.x_test, large.x_test) and torch.equal(small.y_test, large.y_test)
    assert torch.equal(small.x_train, large.x_train[:100])
    assert not torch.equal(small.x_train[:50], small.x_val)
    assert small.x_train.dtype == torch.int64 and small.num_classes == 37


def test_one_hot_inputs():
    x = one_hot(torch.tensor([[0, 36]]))
    assert x.shape == (1, 2, 37) and x.sum() == 2 and x[0, 1, 36] == 1


def test_bad_sizes_get_clear_errors():
    with pytest.raises(NeurohebbError, match="n_pairs"):
        generate(10, 0, n_pairs=27)
    with pytest.raises(NeurohebbError, match="train_size"):
        make_splits(0, train_size=0)
