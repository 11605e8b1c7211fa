"""Soft-WTA activations against closed forms."""
from __future__ import annotations

import torch

from neurohebb import activations


def test_soft_wta_is_a_tempered_softmax():
    u = torch.tensor([[1.0, 2.0, 3.0]])
    y = activations.soft_wta(u, t_invert=2.0)
    e = torch.exp(2.0 * u)
    assert torch.allclose(y, e / e.sum())
    assert torch.allclose(y.sum(dim=1), torch.ones(1))


def test_anti_hebbian_negates_every_non_winner():
    u = torch.tensor([[0.1, 0.9, 0.3], [2.0, -1.0, 0.0]])
    y = activations.anti_hebbian_post(u, 1.0)
    s = torch.softmax(u, dim=1)
    assert torch.allclose(y[0], torch.stack([-s[0, 0], s[0, 1], -s[0, 2]]))
    assert torch.allclose(y[1], torch.stack([s[1, 0], -s[1, 1], -s[1, 2]]))


def test_anti_hebbian_competes_per_position_over_channels():
    u = torch.zeros(1, 3, 2, 2)
    u[0, 2, 0, 0] = 5.0  # channel 2 wins at (0,0); channel 0 wins elsewhere (ties -> first)
    y = activations.anti_hebbian_post(u, 1.0, dim=1)
    assert (y[0, :, 0, 0] > 0).tolist() == [False, False, True]
    assert (y[0, :, 1, 1] > 0).tolist() == [True, False, False]


def test_hard_wta_is_one_hot_of_the_argmax():
    u = torch.tensor([[0.0, 3.0, 1.0]])
    assert activations.hard_wta(u).tolist() == [[0.0, 1.0, 0.0]]


def test_triangle_is_relu_of_centred_input_to_a_power():
    u = torch.tensor([[1.0, 2.0, 6.0]])  # mean 3
    out = activations.triangle(u, power=2.0)
    assert torch.allclose(out, torch.tensor([[0.0, 0.0, 9.0]]))


def test_triangle_in_place_is_triangle_bit_for_bit_and_power_one_is_the_relu():
    g = torch.Generator().manual_seed(4)
    for power in (0.7, 1.0, 1.4):
        u = torch.randn(3, 16, 5, 5, generator=g)
        expected = torch.relu(u - u.mean(dim=1, keepdim=True)) ** power
        assert torch.equal(activations.triangle(u, power), expected)
        scratch = u.clone()
        out = activations.triangle_(scratch, power)
        assert torch.equal(out, expected)
        assert out.data_ptr() == scratch.data_ptr()  # the caller's temporary, reused
    assert torch.equal(activations.block_activation(u.clone(), "relu", 1.0, inplace=True), torch.relu(u))
