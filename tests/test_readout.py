"""The hand-written readout step must be torch's Adam on softmax cross-entropy, term by term."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neurohebb.readout import LinearReadoutAdam


def _pair(seed: int = 0):
    torch.manual_seed(seed)
    a = nn.Linear(12, 5)
    b = nn.Linear(12, 5)
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize("lr", [1e-3, 0.05])
def test_matches_autograd_adam_over_many_steps(lr):
    ours_linear, ref_linear = _pair()
    ours = LinearReadoutAdam(ours_linear, lr=lr)
    ref = torch.optim.Adam(ref_linear.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(1)
    for step in range(60):
        x = torch.randn(8, 12, generator=gen)
        y = torch.randint(0, 5, (8,), generator=gen)
        logits = ours.step(x, y)
        ref_logits = ref_linear(x)
        torch.testing.assert_close(logits, ref_logits.detach(), rtol=1e-5, atol=1e-6)
        loss = F.cross_entropy(ref_logits, y)
        ref.zero_grad()
        loss.backward()
        ref.step()
        if step == 30:  # a milestone: both rates halve
            ours.lr *= 0.5
            for group in ref.param_groups:
                group["lr"] *= 0.5
        assert ours.loss(logits, y) == pytest.approx(loss.item(), rel=1e-5)
    torch.testing.assert_close(ours_linear.weight, ref_linear.weight, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(ours_linear.bias, ref_linear.bias, rtol=1e-4, atol=1e-6)


def test_gradient_is_cross_entropy_gradient():
    """One step from zero moments moves each parameter by -lr * sign(grad) (Adam's first step)."""
    linear, ref = _pair(3)
    x = torch.randn(6, 12)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    loss = F.cross_entropy(ref(x), y)
    loss.backward()
    before = linear.weight.detach().clone()
    LinearReadoutAdam(linear, lr=0.01, eps=0.0).step(x, y)
    torch.testing.assert_close(linear.weight - before, -0.01 * torch.sign(ref.weight.grad), rtol=1e-4, atol=1e-7)


def test_dropout_zeroes_inputs_the_gradient_sees():
    linear, _ = _pair()
    opt = LinearReadoutAdam(linear, lr=0.1)
    x = torch.ones(4, 12)
    torch.manual_seed(0)
    before = linear.weight.detach().clone()
    opt.step(x, torch.zeros(4, dtype=torch.long), dropout=0.999999)
    # every input dropped: the weight gradient is zero, so Adam leaves the weight unchanged
    torch.testing.assert_close(linear.weight, before)
