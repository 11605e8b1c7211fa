"""Online spiking plasticity: a spike-triggered SoftHebb rule in the stochastic WTA circuit,
compared with the rate-based neurohebb layer trained on the same samples.

The spiking rule. Every input synapse sees a presynaptic trace xhat_i (the same leaky kernel
as the membrane, so E[xhat_i] = x_i and u_k = b_k + w_k . xhat). When WTA neuron k spikes, each
of its synapses changes by

    w_ki <- w_ki + eta_s * s_k * (xhat_i - u_k * w_ki)

-- potentiation by recent presynaptic activity (the causal half of an STDP window with an
exponential kernel) and a depression proportional to the neuron's own membrane potential and
the weight (heterosynaptic, weight-dependent). s_k is 1, or the rate engine's norm-adaptive
factor (| ||w_k|| - 1 | + 1e-10) ** 0.5, which needs only the neuron's own weights. Everything is
local to the synapse and its post-synaptic neuron. Because neuron k spikes at rate
R*softmax(beta*u)_k, the expected drift per unit time is

    E[dw_ki/dt] = eta_s * s_k * R * softmax(beta*u)_k * (x_i - u_k w_ki),

the SoftHebb update dW = eta * y_k (x_i - u_k W_ki) with y = softmax(beta*u) (Moraitis et al.
2022). With eta_s = eta / (R*T), one presentation of length T moves the weights, in expectation,
as one rate-based step of learning rate eta on that sample (batch size 1). The residual
differences are the noise of spikes and membrane, correlations between that noise and the spike
times, and the weights changing within a presentation.

Both sides start from the same random weights, see the training samples in the same order, and
their features are scored by the same readout procedure (`neurohebb.engine.train_readout` on
frozen features, then test accuracy). The rate side runs the rule the circuit can implement
locally: the norm-adaptive learning rate but no division of the update by the layer-wide
max|dW| (a global operation); see `learning_config`.
"""
from __future__ import annotations

import copy
import time
from dataclasses import replace
from typing import Any, Callable

import numpy as np
import torch

from ...config import RunConfig, resolve_config
from ...errors import ConfigError
from .circuit import CircuitParams, SpikeRule, SpikingSoftWTA
from .inference import circuit_for, count_features, readout_predictions


def learning_config(
    dataset: str = "mnist",
    neurons: int = 100,
    train_samples: int = 2000,
    test_samples: int = 1000,
    lr: float = 0.01,
    t_invert: float = 12.0,
    readout_epochs: int = 50,
    seed: int = 0,
    data_dir: str | None = None,
    readout_activation: str = "softmax",
) -> RunConfig:
    """The `mnist-mlp` layer resized for the comparison, with the rule the circuit runs.

    Kept from the preset: rule softhebb, initial radius 35, norm-adaptive learning rate, the
    readout recipe. Changed: batch size 1 (online); no update normalisation (layer-wide, not
    local to a neuron); lr_power 0.5 (the multilayer recipe's, which is stable without the
    normalisation); and by default the readout reads the soft WTA softmax(5u), as in the
    single-layer SoftHebb paper, so that what the layer learned -- not a random projection --
    decides the accuracy ("triangle" reads the preset's Triangle(u) instead).
    """
    overrides = [
        f"data.dataset={dataset}",
        f"layers.0.out_channels={neurons}",
        f"layers.0.lr={lr}",
        f"layers.0.t_invert={t_invert}",
        "layers.0.normalize_update=false",
        "layers.0.lr_power=0.5",
        "hebbian.batch_size=1",
        "hebbian.epochs=1",
        f"readout.epochs={readout_epochs}",
    ]
    if readout_activation == "softmax":
        overrides += ['layers.0.activation="softmax"', "layers.0.activation_param=5.0"]
    elif readout_activation == "triangle":
        overrides += ['layers.0.activation="triangle"', "layers.0.activation_param=1.0"]
    else:
        raise ConfigError(f"readout activation {readout_activation!r} is not supported here; choose softmax or triangle")
    return resolve_config("mnist-mlp", None, overrides, seed=seed, device="cpu", data__data_dir=data_dir,
                          data__train_subset=train_samples, data__test_subset=test_samples)


def _check_config(config: RunConfig) -> None:
    cfg = config.layers[0]
    if len(config.layers) != 1 or cfg.kind != "linear" or cfg.rule != "softhebb" or cfg.bias or cfg.batchnorm:
        raise ConfigError("the spiking plasticity comparison needs one linear softhebb layer without bias or batchnorm; build the config with learning_config()")
    if cfg.normalize_update:
        raise ConfigError("the spiking rule cannot divide updates by the layer-wide max|dW|; set layers.0.normalize_update=false")
    if config.hebbian.epochs != 1:
        raise ConfigError("the online comparison presents each training sample once; set hebbian.epochs=1")


def _readout_accuracy(net, x_train, y_train, x_test, y_test, config: RunConfig, seed: int) -> tuple[float, float]:
    """The engine's readout recipe on frozen features; returns (test accuracy %, seconds)."""
    from ...engine import accuracy_from_features, extract_features, train_readout

    t0 = time.perf_counter()
    device = torch.device("cpu")
    torch.manual_seed(seed)
    net.readout.reset_parameters()
    train_f = extract_features(net, x_train, device)
    test_f = extract_features(net, x_test, device)
    train_readout(net, train_f, y_train, config, torch.Generator().manual_seed(seed + 7), progress=False)
    return accuracy_from_features(net, test_f, y_test), time.perf_counter() - t0


def compare_learning(
    config: RunConfig,
    dataset,
    params: CircuitParams | None = None,
    *,
    spiking_eval: bool = True,
    progress: Callable[[str, float], None] | None = None,
) -> dict[str, Any]:
    """Train the layer both ways on `dataset`'s training split and score both; returns metrics.

    `params.beta` is set to the layer's t_invert (the soft WTA that drives learning).
    """
    from ...engine import hebbian_phase, seeded_generators
    from ...network import HebbNetwork

    _check_config(config)
    cfg = config.layers[0]
    params = replace(params or CircuitParams(), activation="softmax", beta=cfg.t_invert).validate()
    x_train, y_train = torch.from_numpy(dataset.x_train), torch.from_numpy(dataset.y_train)
    x_test, y_test = torch.from_numpy(dataset.x_test), torch.from_numpy(dataset.y_test)
    n_train = x_train.shape[0]

    init_gen, order_gen = seeded_generators(config.seed)
    initial = HebbNetwork(config, num_classes=dataset.num_classes, generator=init_gen)
    order = torch.randperm(n_train, generator=copy.deepcopy(order_gen))  # the order hebbian_phase draws

    # Rate-based: the engine's Hebbian phase (batch size 1, plain rule).
    rate_net = copy.deepcopy(initial)
    rate_seconds = hebbian_phase(rate_net, x_train, config, torch.device("cpu"), order_gen, progress=False)

    # Spiking: the same samples in the same order, online in Brian2.
    w0 = initial.blocks[0].layer.weight.double().numpy()
    eta_s = cfg.lr / (params.output_rate * params.duration)
    rule = SpikeRule(eta_s, cfg.lr_schedule, cfg.lr_power)
    circuit = SpikingSoftWTA(w0, None, params, rule)
    x_seq = x_train[order].reshape(n_train, -1).double().numpy() / 255.0
    report = (lambda f: progress("spiking plasticity", f)) if progress else None
    record = circuit.present(x_seq, seed=config.seed, progress=report)
    spiking_net = copy.deepcopy(initial)
    spiking_net.blocks[0].layer.weight.copy_(torch.from_numpy(record.weight).float())
    if not np.isfinite(record.weight).all():
        raise ConfigError("spiking plasticity diverged (NaN/Inf weights); lower layers.0.lr")

    results: dict[str, Any] = {}
    for name, net in (("rate", rate_net), ("spiking", spiking_net), ("initial", copy.deepcopy(initial))):
        acc, secs = _readout_accuracy(net, x_train, y_train, x_test, y_test, config, config.seed)
        w = net.blocks[0].layer.weight
        results[name] = {"test_accuracy": round(acc, 4), "readout_seconds": round(secs, 3),
                         "weight_norm_mean": round(float(w.norm(dim=1).mean()), 5)}
    results["rate"]["learning_seconds"] = round(rate_seconds, 3)
    results["spiking"].update({
        "learning_seconds": round(record.wall_seconds, 3),
        "output_spikes_per_sample": round(len(record.out_step) / n_train, 3),
        "input_spikes_per_sample": round(record.input_spikes / n_train, 3),
        "eta_per_spike": eta_s,
    })
    w_rate = rate_net.blocks[0].layer.weight.double()
    w_spk = torch.from_numpy(record.weight)
    cos = torch.nn.functional.cosine_similarity(w_rate, w_spk, dim=1)
    results["weight_cosine_rate_vs_spiking"] = round(float(cos.mean()), 5)
    w_init = torch.from_numpy(w0)
    results["weight_cosine_initial_vs_spiking"] = round(float(torch.nn.functional.cosine_similarity(w_init, w_spk, dim=1).mean()), 5)

    if spiking_eval:  # the spiking-learned layer also *run* as spikes, read by its trained readout
        layer, eval_params = circuit_for(spiking_net, replace(params, gain=0.0), dataset.x_train)
        x_test_f = x_test.reshape(x_test.shape[0], -1).double().numpy() / 255.0
        report = (lambda f: progress("spiking inference", f)) if progress else None
        rec = SpikingSoftWTA(layer.weight, None, eval_params).present(x_test_f, seed=config.seed + 1, progress=report)
        pred = readout_predictions(spiking_net, count_features(rec.counts(), eval_params))
        results["spiking"]["spiking_inference_accuracy"] = round(100.0 * float((pred == y_test.numpy()).mean()), 4)
        results["spiking"]["spiking_inference_seconds"] = round(rec.wall_seconds, 3)

    results.update({
        "dataset": dataset.name,
        "train_samples": int(n_train),
        "test_samples": int(x_test.shape[0]),
        "neurons": cfg.out_channels,
        "inputs": int(w0.shape[1]),
        "lr": cfg.lr,
        "lr_schedule": cfg.lr_schedule,
        "init_radius": cfg.init_radius,
        "t_invert": cfg.t_invert,
        "readout_activation": f"{cfg.activation}({cfg.activation_param:g})",
        "readout_epochs": config.readout.epochs,
        "circuit": params.to_dict(),
        "target": record.target,
        "seed": config.seed,
    })
    return results
