"""The compiled float32 step of linear SoftHebb layers (`steps.linear_kernels`).

It computes the rule `Float32Step`'s torch path computes, with sums in another order, so each
step is held to the torch path (and to a closed-form case) to float32 rounding; the choice of
kernel is checked where it is made (config, `Float32Step`, metrics).
"""
from __future__ import annotations

import math

import pytest
import torch

from neurohebb.config import LayerConfig, resolve_config
from neurohebb.errors import ConfigError
from neurohebb.layers import SoftWTAConv2d, SoftWTALinear
from neurohebb.steps import Float32Step, linear_kernels

pytestmark = pytest.mark.skipif(not linear_kernels.available(),
                                reason=f"compiled linear step unavailable: {linear_kernels.unavailable_reason()}")


def _layer(inputs: int, neurons: int, **cfg) -> tuple[LayerConfig, callable]:
    settings = dict(kind="linear", out_channels=neurons, rule="softhebb", t_invert=12.0, lr=0.045,
                    lr_schedule="norm-adaptive", lr_power=1.0, normalize_update=True, init_radius=5.0,
                    batchnorm=False)
    settings.update(cfg)
    config = LayerConfig(**settings)
    return config, (lambda: SoftWTALinear(inputs, config, torch.Generator().manual_seed(0)))


# batches, neurons and inputs off every block size the kernels use (2 and 4 samples, 5 and 20 rows)
SHAPES = [(1, 7, 13), (3, 23, 50), (10, 30, 50), (9, 45, 97), (10, 200, 784)]


@pytest.mark.parametrize("batch, neurons, inputs", SHAPES)
@pytest.mark.parametrize("settings", [
    dict(),
    dict(lr_power=0.5),
    dict(lr_schedule="constant", lr=0.01),
    dict(normalize_update=False, lr=1e-3),
    dict(t_invert=1.0),
], ids=["adaptive-p1", "adaptive-p0.5", "constant", "unnormalised", "soft"])
def test_one_compiled_step_agrees_with_the_torch_step_to_float32_rounding(batch, neurons, inputs, settings):
    cfg, make = _layer(inputs, neurons, **settings)
    data = torch.rand(batch, inputs, generator=torch.Generator().manual_seed(batch + neurons))
    torch_layer, compiled_layer = make(), make()
    before = torch_layer.weight.clone()
    u_torch = Float32Step(linear_kernel="torch").step(torch_layer, data)
    step = Float32Step(linear_kernel="compiled")
    step.attach(compiled_layer, 0)
    u_compiled = step.step(compiled_layer, data)
    assert step.linear_kernels == {0: "compiled"}
    assert torch.allclose(u_compiled, u_torch, rtol=1e-5, atol=1e-5)
    moved_torch, moved_compiled = torch_layer.weight - before, compiled_layer.weight - before
    assert moved_torch.abs().max() > 0
    # the step itself (not only the weights it lands on) agrees to float32 rounding
    assert (moved_compiled - moved_torch).norm() <= 1e-5 * moved_torch.norm() + 1e-7 * before.norm()


def test_a_few_compiled_steps_stay_with_the_torch_path_and_the_input_is_untouched():
    cfg, make = _layer(50, 30, t_invert=4.0)
    data = torch.rand(40, 50, generator=torch.Generator().manual_seed(5))
    kept = data.clone()
    a, b = make(), make()
    torch_step, compiled_step = Float32Step(linear_kernel="torch"), Float32Step(linear_kernel="compiled")
    for s in range(0, 40, 10):
        torch_step.step(a, data[s:s + 10])
        compiled_step.step(b, data[s:s + 10])
    assert torch.allclose(a.weight, b.weight, rtol=1e-4, atol=1e-5)
    assert torch.equal(data, kept)


def test_the_compiled_step_on_a_closed_form_case():
    """One sample x = (1, 0, 0), W = [[2, 0, 0], [0, 0, 1]], t = 1, constant rate 1, no
    normalisation: u = (2, 0), y = softmax(u), c = (2 y0, 0), so W0 += y0 (x - 2 W0) and W1 += y1 x."""
    cfg = LayerConfig(kind="linear", out_channels=2, rule="softhebb", t_invert=1.0, lr=1.0, lr_schedule="constant",
                      normalize_update=False, batchnorm=False)
    layer = SoftWTALinear(3, cfg)
    layer.weight.copy_(torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    u = Float32Step(linear_kernel="compiled").step(layer, torch.tensor([[1.0, 0.0, 0.0]]))
    y0 = 1.0 / (1.0 + math.exp(-2.0))
    assert torch.equal(u, torch.tensor([[2.0, 0.0]]))
    assert torch.allclose(layer.weight, torch.tensor([[2.0 - 3.0 * y0, 0.0, 0.0], [1.0 - y0, 0.0, 1.0]]), atol=1e-6)


def test_the_normalised_step_moves_the_largest_synapse_by_the_rate_exactly_as_the_rule_says():
    """normalize_update divides dW by max|dW|: with a constant rate the largest move is the rate."""
    cfg, make = _layer(20, 6, lr_schedule="constant", lr=0.01, t_invert=2.0)
    layer = make()
    before = layer.weight.clone()
    Float32Step(linear_kernel="compiled").step(layer, torch.rand(4, 20, generator=torch.Generator().manual_seed(1)))
    assert (layer.weight - before).abs().max() == pytest.approx(0.01, rel=1e-5)


def test_the_compiled_step_does_not_depend_on_the_thread_count():
    """Each row's arithmetic is the same whichever thread runs it, and the kernels follow
    torch's thread count: weights equal bit for bit on one thread and on two."""
    import numba

    cfg, make = _layer(97, 45)
    data = torch.rand(20, 97, generator=torch.Generator().manual_seed(2))
    results = []
    saved = torch.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            torch.set_num_threads(threads)
            layer, step = make(), Float32Step(linear_kernel="compiled")
            for s in range(0, 20, 10):
                step.step(layer, data[s:s + 10])
            assert numba.get_num_threads() == threads
            results.append(layer.weight.clone())
    finally:
        torch.set_num_threads(saved)
    assert torch.equal(results[0], results[1])


def test_a_nan_input_reaches_the_weights_so_the_phase_check_sees_it():
    cfg, make = _layer(10, 6)
    layer = make()
    data = torch.rand(2, 10)
    data[0, 3] = float("nan")
    Float32Step(linear_kernel="compiled").step(layer, data)
    assert torch.isnan(layer.weight).any()


def test_auto_takes_the_compiled_step_only_where_it_computes_the_same_rule():
    step = Float32Step()  # auto
    _, make = _layer(12, 5)
    plain = make()
    _, make_bias = _layer(12, 5, bias=True)
    _, make_anti = _layer(12, 5, rule="softhebb-anti")
    conv = SoftWTAConv2d(2, LayerConfig(kind="conv", out_channels=4, kernel_size=3, padding=1, rule="softhebb"))
    frozen = make()
    frozen.weight = frozen.weight.t().contiguous().t()  # a non-contiguous copy of W
    for i, layer in enumerate([plain, make_bias(), make_anti(), conv, frozen]):
        step.attach(layer, i)
    assert step.linear_kernels == {0: "compiled", 1: "torch", 2: "torch", 4: "torch"}
    assert Float32Step(linear_kernel="torch").linear_kernels == {}


def test_linear_kernel_is_validated_and_refused_where_it_cannot_run(monkeypatch):
    with pytest.raises(ConfigError, match="hebbian.linear_kernel"):
        resolve_config("mnist-mlp", overrides=["hebbian.linear_kernel=numba"])
    with pytest.raises(ConfigError, match="hebbian.linear_kernel"):
        Float32Step(linear_kernel="fast")
    monkeypatch.setattr(linear_kernels, "unavailable_reason", lambda: "numba is not installed")
    with pytest.raises(ConfigError, match="use hebbian.linear_kernel=torch"):
        Float32Step(linear_kernel="compiled")
    # auto falls back to torch's operators there
    step = Float32Step()
    _, make = _layer(12, 5)
    step.attach(make(), 0)
    assert step.linear_kernels == {0: "torch"}


def test_linear_kernel_is_refused_for_a_quantised_run():
    from neurohebb.engine import step_for

    with pytest.raises(ConfigError, match="own datapath"):
        step_for(resolve_config("mnist-mlp", overrides=["hebbian.linear_kernel=torch",
                                                        'precision.policy="weight=m8:stochastic"']),
                 torch.device("cpu"))


def test_the_availability_check_names_wrong_numbers_and_kernels_that_do_not_compile():
    from neurohebb.compiled_check import unavailable_reason

    def broken() -> bool:
        raise RuntimeError("no llvm")

    assert unavailable_reason("the compiled x", lambda: True) is None
    assert unavailable_reason("the compiled x", lambda: False) == "the compiled x gave wrong numbers on a closed-form case"
    assert unavailable_reason("the compiled x", broken) == "the kernels of the compiled x did not compile (RuntimeError: no llvm)"
