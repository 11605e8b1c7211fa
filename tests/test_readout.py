"""The hand-written readout step must be torch's Adam on softmax cross-entropy, term by term."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neurohebb import readout_kernels
from neurohebb.errors import ConfigError
from neurohebb.readout import LinearReadoutAdam, compiled_unavailable_reason

COMPILED = compiled_unavailable_reason(nn.Linear(2, 2)) is None
needs_compiled = pytest.mark.skipif(not COMPILED, reason=f"compiled readout: {compiled_unavailable_reason(nn.Linear(2, 2))}")
BOTH_STEPS = [pytest.param(True, marks=needs_compiled, id="compiled"), pytest.param(False, id="torch")]


def _pair(seed: int = 0):
    torch.manual_seed(seed)
    a = nn.Linear(12, 5)
    b = nn.Linear(12, 5)
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize("compiled", BOTH_STEPS)
@pytest.mark.parametrize("lr", [1e-3, 0.05])
def test_matches_autograd_adam_over_many_steps(lr, compiled):
    ours_linear, ref_linear = _pair()
    ours = LinearReadoutAdam(ours_linear, lr=lr, compiled=compiled)
    assert ours.compiled is compiled
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


@pytest.mark.parametrize("compiled", BOTH_STEPS)
def test_gradient_is_cross_entropy_gradient(compiled):
    """One step from zero moments moves each parameter by -lr * sign(grad) (Adam's first step)."""
    linear, ref = _pair(3)
    x = torch.randn(6, 12)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    loss = F.cross_entropy(ref(x), y)
    loss.backward()
    before = linear.weight.detach().clone()
    LinearReadoutAdam(linear, lr=0.01, eps=0.0, compiled=compiled).step(x, y)
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


# -- the readout's dropout ----------------------------------------------------------------------
from neurohebb.readout import apply_dropout, half_dropout  # noqa: E402


def test_half_dropout_keeps_each_element_with_probability_one_half_and_doubles_it():
    x = torch.full((1000, 999), 3.0)  # 999,000 elements: not a multiple of 8 or 64
    out = half_dropout(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert set(torch.unique(out).tolist()) == {0.0, 6.0}
    kept = (out != 0).double().flatten()
    n = kept.numel()
    # binomial: 5 standard deviations of the kept fraction
    assert abs(float(kept.mean()) - 0.5) < 5 * 0.5 / n**0.5
    # every bit of every drawn word is used: each of the 64 positions within a word keeps ~1/2
    whole = kept[: n // 64 * 64].view(-1, 64).mean(dim=0)
    assert float((whole - 0.5).abs().max()) < 5 * 0.5 / (n // 64) ** 0.5
    # neighbours are independent: both kept with probability 1/4
    both = float((kept[:-1] * kept[1:]).mean())
    assert abs(both - 0.25) < 5 * (0.25 * 0.75 / n) ** 0.5


def test_half_dropout_is_reproducible_and_buffer_free_equals_buffered():
    x = torch.randn(64, 333)
    a = half_dropout(x, torch.Generator().manual_seed(7))
    b = half_dropout(x, torch.Generator().manual_seed(7))
    c = half_dropout(x, torch.Generator().manual_seed(8))
    buf = torch.empty(x.numel() + 8)
    d = half_dropout(x, torch.Generator().manual_seed(7), out=buf)
    assert torch.equal(a, b) and torch.equal(a, d)
    assert not torch.equal(a, c)
    kept = a != 0
    torch.testing.assert_close(a[kept], 2 * x[kept])
    # the global generator when none is given, as F.dropout: a run's seed fixes the mask
    torch.manual_seed(3)
    e = apply_dropout(x, 0.5)
    torch.manual_seed(3)
    assert torch.equal(e, apply_dropout(x, 0.5))


def test_other_dropout_rates_keep_torch_semantics():
    x = torch.ones(200, 500)
    assert apply_dropout(x, 0.0) is x
    torch.manual_seed(0)
    out = apply_dropout(x, 0.2)
    values = torch.unique(out).tolist()
    assert values[0] == 0.0 and values[1:] == [pytest.approx(1.25)]
    assert abs(float((out != 0).double().mean()) - 0.8) < 5 * (0.16 / x.numel()) ** 0.5


def test_dropout_readout_still_learns_a_separable_problem():
    """Adam + the half dropout on a linearly separable toy set reaches near-perfect training accuracy."""
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(5, 200, generator=gen) * 3
    labels = torch.randint(0, 5, (2000,), generator=gen)
    x = centres[labels] + torch.randn(2000, 200, generator=gen)
    torch.manual_seed(0)
    linear = nn.Linear(200, 5)
    opt = LinearReadoutAdam(linear, lr=0.01)
    for _ in range(5):
        for s in range(0, 2000, 64):
            opt.step(x[s:s + 64], labels[s:s + 64], dropout=0.5)
    with torch.no_grad():
        accuracy = float((linear(x).argmax(1) == labels).double().mean())
    assert accuracy > 0.98


# -- the compiled step (readout_kernels) against the torch path ------------------------------------


def _trained_pair(width: int, classes: int, batches: list[int], dropout: float, rows: int = 300):
    """The same readout trained by both steps on the same batches, seeds and dropout masks."""
    gen = torch.Generator().manual_seed(width * 31 + classes)
    features = torch.randn(rows, width, generator=gen).abs()
    labels = torch.randint(0, classes, (rows,), generator=gen)
    nets = []
    for compiled in (True, False):
        torch.manual_seed(5)
        linear = nn.Linear(width, classes)
        opt = LinearReadoutAdam(linear, lr=1e-3, compiled=compiled)
        order = torch.Generator().manual_seed(9)
        logits, draws = [], []
        for step, n in enumerate(batches):
            idx = torch.randint(0, rows, (n,), generator=order)
            torch.manual_seed(100 + step)
            if step % 3 == 2:  # a batch tensor, not rows of the cache: the same step
                logits.append(opt.step(features[idx], labels[idx], dropout))
            else:
                logits.append(opt.step_rows(features, idx, labels[idx], dropout))
            draws.append(torch.rand(2))  # the global generator after the step's dropout draws
        nets.append((linear, logits, draws))
    return nets


# widths: one partial chunk with an unaligned dropout (37), whole chunks (2048), a partial last
# chunk (1300); batches with remainders of the 2- and 4-row blocks; classes with a 5-class remainder
@needs_compiled
@pytest.mark.parametrize("width,classes", [(37, 10), (2048, 10), (1300, 7), (1300, 13), (600, 2)])
@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_compiled_step_is_the_torch_step_to_float32_rounding(width, classes, dropout):
    batches = [64, 64, 13, 64, 1, 3, 64, 6] * 5
    (fast, fast_logits, fast_draws), (ref, ref_logits, ref_draws) = _trained_pair(width, classes, batches, dropout)
    for a, b in zip(fast_draws, ref_draws):  # the same random words drawn: later draws unchanged
        assert torch.equal(a, b)
    for a, b in zip(fast_logits, ref_logits):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast.weight, ref.weight, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(fast.bias, ref.bias, rtol=1e-4, atol=1e-6)


@needs_compiled
@pytest.mark.parametrize("width", [24, 37, 1029])
def test_compiled_step_sees_exactly_the_half_dropouts_mask(width):
    """One row, zero weights, two classes: Adam's first step moves a weight by lr against the sign
    of its gradient, and the gradient of a dropped input is 0 (the weight stays). So the weights
    that moved are the inputs torch's `half_dropout` keeps with the same seed, element for element."""
    from neurohebb.readout import half_dropout

    x = torch.rand(3, width) + 0.5
    linear = nn.Linear(width, 2)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    opt = LinearReadoutAdam(linear, lr=0.25, compiled=True)
    torch.manual_seed(4)
    opt.step_rows(x, torch.tensor([2]), torch.tensor([1]), dropout=0.5)
    torch.manual_seed(4)
    kept = half_dropout(x[2:3]) != 0
    moved = linear.weight.detach() != 0
    assert torch.equal(moved[0], kept[0]) and torch.equal(moved[1], kept[0])
    assert 0.3 * width < int(kept.sum()) < 0.7 * width
    # gradient (softmax - one_hot) x = (+1/2, -1/2) x for label 1: class 0 down, the label's class up
    torch.testing.assert_close(linear.weight[0][kept[0]], torch.full((int(kept.sum()),), -0.25))
    torch.testing.assert_close(linear.weight[1][kept[0]], torch.full((int(kept.sum()),), 0.25))


@needs_compiled
def test_compiled_step_does_not_depend_on_the_thread_count():
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(_trained_pair(2600, 10, [64, 64, 7], 0.5)[0])
    finally:
        torch.set_num_threads(before)
    (a, la, _), (b, lb, _) = results
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert all(torch.equal(x, y) for x, y in zip(la, lb))


def test_asking_for_the_compiled_step_where_it_cannot_run_is_a_config_error(monkeypatch):
    monkeypatch.setattr(readout_kernels, "unavailable_reason", lambda: "numba is not installed")
    with pytest.raises(ConfigError, match="numba is not installed"):
        LinearReadoutAdam(nn.Linear(4, 2), lr=1e-3, compiled=True)
    assert LinearReadoutAdam(nn.Linear(4, 2), lr=1e-3).compiled is False  # the default falls back quietly
    with pytest.raises(ConfigError, match="float32 weights"):
        LinearReadoutAdam(nn.Linear(4, 2).double(), lr=1e-3, compiled=True)


def test_the_readout_kernel_is_a_checked_choice():
    from neurohebb.config import resolve_config

    assert resolve_config("mnist-mlp").readout.kernel == "auto"
    with pytest.raises(ConfigError, match="readout.kernel"):
        resolve_config("mnist-mlp", overrides=['readout.kernel="fast"'])


def test_auto_takes_the_compiled_step_only_where_the_readout_is_large():
    from neurohebb.engine import AUTO_COMPILED_MIN_WORK, readout_compiled

    small, large = torch.empty(10, 100), torch.empty(1).expand(int(AUTO_COMPILED_MIN_WORK))
    assert readout_compiled("auto", small, 50) is False  # the compile would cost more than it saves
    assert readout_compiled("auto", large, 1) is None  # the compiled step where it can run
    assert readout_compiled("auto", None, 50) is None  # streamed features: a large readout
    assert readout_compiled("compiled", small, 50) is True and readout_compiled("torch", large, 1) is False


@needs_compiled
def test_a_run_can_insist_on_the_compiled_step(tmp_path):
    from neurohebb.config import resolve_config
    from neurohebb.engine import train

    config = resolve_config("digits", overrides=['readout.kernel="compiled"', "readout.epochs=3"], device="cpu")
    _, metrics = train(config, tmp_path / "run", progress=False)
    assert metrics["readout_kernel"] == "compiled" and metrics["test_accuracy"] > 80.0
