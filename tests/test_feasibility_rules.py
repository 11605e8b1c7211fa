"""Rule expressibility per chip capability, and the Lava rule strings emitted for Loihi 2."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest

from neurohebb.config import LayerConfig
from neurohebb.feasibility.activity import ActivityProfile, LayerActivity
from neurohebb.feasibility.chips import load_chip
from neurohebb.feasibility.expressibility import (
    Coefficient,
    analyse_layer,
    coefficient_note,
    nearest_coefficient,
    product_shift,
)
from neurohebb.feasibility.netspec import conv_layer, linear_layer
from neurohebb.precision import PrecisionPolicy

FLOAT = PrecisionPolicy.parse(None)


def softhebb_layer(rule="softhebb", **cfg):
    config = LayerConfig(kind="linear", out_channels=30, rule=rule, batchnorm=False, activation="softmax", **cfg)
    return linear_layer("l", 20, 30, rule=rule, cfg=config)


def measured(name="l", **kw):
    values = dict(input_rate=0.2, output_rate=0.05, u_scale=2.0, update_scale=4.0, weight_absmax=0.5)
    values.update(kw)
    return ActivityProfile({name: LayerActivity(**values)}, "test", measured=True)


def statuses(result):
    return {t.name: t.status for t in result.learning}


def test_lava_scaling_arithmetic():
    assert product_shift(("x1", "y1")) == 3  # 7 + 7 + 4 - 15
    assert product_shift(("y2", "w")) == 5  # 7 + 9 + 4 - 15
    exact = nearest_coefficient(0.75 * 2 ** -3, shift=3)
    assert (exact.mantissa, exact.exponent, exact.relative_error) == (3, -2, 0.0)
    assert exact.literal == "3*2^-2"
    tiny = nearest_coefficient(1e-9, shift=3)
    assert (tiny.mantissa, tiny.exponent) == (1, -7) and tiny.represented == 2 ** -10
    assert "below the smallest" in coefficient_note("hebbian", tiny)
    huge = nearest_coefficient(1e6, shift=0)
    assert (huge.mantissa, huge.exponent) == (7, 8)
    assert "above the largest" in coefficient_note("decay", huge)
    assert coefficient_note("ok", Coefficient(0.75, 3, -2, 0)) is None


def test_a_chip_without_learning_cannot_express_softhebb():
    r = analyse_layer(softhebb_layer(), load_chip("truenorth"), FLOAT)
    assert r.status == "not expressible"
    assert r.learning[0].name == "on-chip learning"
    assert r.rule_string is None


def test_software_plasticity_is_exact_in_float32():
    r = analyse_layer(softhebb_layer(), load_chip("spinnaker2"), FLOAT, batch_size=1)
    assert r.status == "exact", [t for t in r.learning if t.status != "exact"]
    assert set(statuses(r).values()) == {"exact"}


def test_loihi_drops_reductions_and_replaces_u_by_the_post_rate():
    r = analyse_layer(softhebb_layer(), load_chip("loihi"), FLOAT, measured(), time_steps=32)
    s = statuses(r)
    assert r.status == "approximate"
    assert s["update normalisation dW / max|dW|"] == "dropped"
    assert s["adaptive rate eta (| ||W_k|| - 1 |)^p"] == "dropped"
    decay = next(t for t in r.learning if t.name.startswith("decay"))
    assert decay.status == "approximate" and "Oja-like" in decay.detail
    assert r.rule_string is not None and "y1 * y2 * w" in r.rule_string
    assert r.lava is None  # Loihi 1 is not programmed through Lava


def test_multilayer_anti_hebbian_sign_is_dropped_on_spike_traces_and_approximated_on_loihi2():
    anti = softhebb_layer("softhebb-anti")
    s1 = statuses(analyse_layer(anti, load_chip("loihi"), FLOAT, measured()))
    assert s1["anti-Hebbian sign for non-winners"] == "dropped"
    s2 = statuses(analyse_layer(anti, load_chip("loihi2"), FLOAT, measured()))
    assert s2["anti-Hebbian sign for non-winners"] == "approximate"


def test_replicated_convolution_weights_drift_apart():
    cfg = LayerConfig(kind="conv", out_channels=4, kernel_size=3, rule="softhebb-anti")
    layer = conv_layer("c", (2, 6, 6), 4, 3, rule="softhebb-anti", cfg=cfg)
    loihi = statuses(analyse_layer(layer, load_chip("loihi2"), FLOAT))
    assert loihi["shared convolution weights"] == "approximate"
    assert statuses(analyse_layer(layer, load_chip("spinnaker2"), FLOAT))["shared convolution weights"] == "exact"


def test_random_and_supervised_layers():
    cfg = LayerConfig(kind="linear", out_channels=30, rule="random")
    assert analyse_layer(linear_layer("l", 20, 30, "random", cfg), load_chip("loihi"), FLOAT).status == "exact"
    readout = linear_layer("readout", 30, 10, rule="supervised")
    assert analyse_layer(readout, load_chip("loihi"), FLOAT).status == "not expressible"
    assert analyse_layer(readout, load_chip("loihi2"), FLOAT).status == "approximate"


def test_loihi2_rule_coefficients_follow_from_the_measured_magnitudes():
    """Hebbian: eta_eff / (step * 127^2) weight steps per unit x1*y1; decay: eta_eff * U / 127 per unit y2*w,
    with eta_eff = eta / update_scale (the normalisation calibrated) and step = 2^-7 for s8.7 weights."""
    layer = softhebb_layer(lr=0.5)
    policy = PrecisionPolicy.parse("weight=s8.7")
    r = analyse_layer(layer, load_chip("loihi2"), policy, measured(u_scale=2.0, update_scale=4.0), time_steps=32)
    lava = r.lava
    assert lava is not None and lava["learning_rule"] == "Loihi3FLearningRule"
    eta = 0.5 / 4.0
    assert lava["eta"] == pytest.approx(eta)
    assert lava["weight_step"] == 2 ** -7
    assert lava["coefficients"]["hebbian"]["wanted"] == pytest.approx(eta / (2 ** -7 * 127 ** 2))
    assert lava["coefficients"]["decay"]["wanted"] == pytest.approx(eta * 2.0 / 127)
    assert lava["x1_impulse"] == pytest.approx(127 / 32) and lava["x1_tau"] == 32 and lava["t_epoch"] == 32
    assert r.rule_string == lava["dw"]
    assert r.rule_string.count("u0") == 3 and "y2 * w" in r.rule_string and "y3 * w" in r.rule_string
    assert set(lava["post_traces"]) == {"y1", "y2", "y3"}


def test_shared_exponent_weights_use_a_power_of_two_step_that_fits_the_largest_weight():
    r = analyse_layer(softhebb_layer(), load_chip("loihi2"), FLOAT, measured(weight_absmax=0.5))
    # 9-bit signed: largest code 255; 0.5 / 255 -> step 2^ceil(log2(0.00196)) = 2^-8
    assert r.lava["weight_step"] == 2.0 ** math.ceil(math.log2(0.5 / 255)) == 2 ** -8


def test_without_measurements_no_coefficients_are_invented():
    r = analyse_layer(softhebb_layer(), load_chip("loihi2"), FLOAT, None)
    assert r.rule_string is None and r.lava is None
    assert any("measured" in n for n in r.notes)


def test_emitted_rules_parse_in_lava_with_the_same_scaling():
    learning_rule = pytest.importorskip("lava.magma.core.learning.learning_rule")
    for rule in ("softhebb", "softhebb-anti", "hard-wta"):
        r = analyse_layer(softhebb_layer(rule, lr=0.5), load_chip("loihi2"), PrecisionPolicy.parse("weight=s8.7"),
                          measured(), time_steps=32)
        lava = r.lava
        parsed = learning_rule.Loihi3FLearningRule(dw=lava["dw"], x1_impulse=lava["x1_impulse"], x1_tau=lava["x1_tau"],
                                                   t_epoch=lava["t_epoch"])
        products = parsed.dw.products
        assert len(products) == 3
        hebb = lava["coefficients"]["hebbian"]["literal"]
        mantissa = int(hebb.split("*")[0]) if "*" in hebb else 1
        exponent = int(hebb.split("^")[1])
        # Lava normalises even mantissas; compare the represented value m * 2^e
        assert products[0].s_mantissa * 2.0 ** (products[0].s_exp - 7) == pytest.approx(mantissa * 2.0 ** exponent)
        assert products[0].dependency == "u"


def test_the_feasibility_package_never_imports_lava_or_brian2():
    code = ("import sys, neurohebb.feasibility, neurohebb.commands.feasibility; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('lava', 'brian2')]; print(bad); sys.exit(bool(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
