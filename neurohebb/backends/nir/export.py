"""The deployable spiking network as a NIR graph (Conv2d / Affine, IF neurons, AvgPool2d).

What is exported, block by block (the same folding as the Lava sigma-delta circuit, see
`backends.lava.fold`): a Conv2d (or Affine) whose kernels are Triangle-centred (exact for power
1) with the input BatchNorm folded into weights and bias (exact), followed by IF neurons
(``r = 1``, threshold 1, reset to 0), followed by the block's AvgPool2d; then Flatten and the
readout Affine. Weights are normalised per block by the block's largest ReLU activation on
calibration images (data-based normalisation, Diehl et al. 2015), so an IF neuron's spike rate
(spikes per step) stands for its activation divided by that scale. The input is the image (pixels
/ 255) as a constant current every step; the class is the argmax of the readout's output summed
over the steps.

What NIR has no primitive for, and is therefore approximated (listed in the graph's metadata):
reflect padding (exported as zero padding: border positions differ), and the ReLU itself (an IF
neuron's rate quantises it to 1/steps and saturates at one spike per step). Max pooling and
Triangle powers other than 1 are refused, as by the Lava circuit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import BackendUnavailable, ConfigError

INSTALL_HINT = "pip install 'nir>=1.0,<1.1' (or ./setup.sh with the nir extra)"


def require_nir():
    try:
        import nir
    except ImportError:
        raise BackendUnavailable(f"the nir package is not installed; {INSTALL_HINT}") from None
    return nir


def activation_scales(spec, calibration_images: np.ndarray, percentile: float = 100.0) -> list[float]:
    """Per block, the largest (or `percentile`) ReLU activation on calibration images."""
    from ..lava.fold import fold, forward

    stages = fold(spec)
    outs = [o for s, o in zip(stages, forward(stages, calibration_images)) if s.name.startswith("block")]
    return [float(np.percentile(o, percentile)) or 1.0 for o in outs]


def to_nir(spec, calibration_images: np.ndarray, percentile: float = 100.0, run_dir: str | None = None):
    """The NIRGraph of a network description (see the module docstring)."""
    from ..lava.fold import conv_form, unsupported

    nir = require_nir()
    problems = unsupported(spec)
    if problems:
        raise ConfigError(f"the network cannot be exported as a spiking NIR graph: {problems[0]}")
    scales = activation_scales(spec, calibration_images, percentile)
    nodes: dict = {"input": nir.Input(input_type={"input": np.array(spec.input_shape)})}
    edges = []
    prev, prev_scale, flat = "input", 1.0, False
    reflect = []
    for block, lam in zip(spec.blocks, scales):
        i = block.index
        w, b = conv_form(block)
        w, b = w * prev_scale / lam, b / lam
        if block.kind == "conv":
            if block.cfg.padding:
                reflect.append(f"block{i}")
            _, h, wd = block.shape.input_shape
            syn = nir.Conv2d(input_shape=(h, wd), weight=w, stride=block.cfg.stride, padding=block.cfg.padding,
                             dilation=1, groups=1, bias=b)
        else:
            if not flat:
                nodes[f"block{i}.flatten"] = nir.Flatten(input_type={"input": np.array(block.shape.input_shape)},
                                                         start_dim=0)
                edges.append((prev, f"block{i}.flatten"))
                prev, flat = f"block{i}.flatten", True
            syn = nir.Affine(weight=w, bias=b)
        shape = block.shape.conv_output_shape if block.kind == "conv" else (block.shape.conv_output_shape[0],)
        nodes[f"block{i}.synapses"] = syn
        nodes[f"block{i}.neurons"] = nir.IF(r=np.ones(shape), v_threshold=np.ones(shape), v_reset=np.zeros(shape))
        edges += [(prev, f"block{i}.synapses"), (f"block{i}.synapses", f"block{i}.neurons")]
        prev = f"block{i}.neurons"
        if block.pool == "avg":
            k, s, p = block.cfg.pool_kernel, block.cfg.pool_stride, block.cfg.pool_padding
            nodes[f"block{i}.pool"] = nir.AvgPool2d(kernel_size=np.array([k, k]), stride=np.array([s, s]),
                                                    padding=np.array([p, p]))
            edges.append((prev, f"block{i}.pool"))
            prev = f"block{i}.pool"
        prev_scale = lam
    if not flat:
        nodes["flatten"] = nir.Flatten(input_type={"input": np.array(spec.blocks[-1].shape.output_shape)}, start_dim=0)
        edges.append((prev, "flatten"))
        prev = "flatten"
    ro = spec.readout
    bias = np.zeros(ro.num_classes) if ro.bias is None else ro.bias
    nodes["readout"] = nir.Affine(weight=ro.weight * prev_scale, bias=np.asarray(bias, dtype=np.float64))
    nodes["output"] = nir.Output(output_type={"output": np.array([ro.num_classes])})
    edges += [(prev, "readout"), ("readout", "output")]
    metadata = {
        "source": "neurohebb",
        "run_dir": str(run_dir or ""),
        "precision": spec.precision,
        "input": "pixels / 255 as a constant input current at every time step",
        "decision": "argmax over classes of the readout Affine's output summed over the time steps",
        "activation_scales": np.array(scales),
        "exact": "Triangle power 1 as centred kernels; BatchNorm (running statistics) folded into weight and bias",
        "no_nir_primitive": ("reflect padding of " + (", ".join(reflect) if reflect else "no block")
                             + " exported as zero padding (border positions differ); the ReLU is approximated by "
                               "the IF neurons' spike rate (resolution 1/steps, at most one spike per step)"),
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def export_run(run_dir: str | Path, out: str | Path, calibration: int = 1000, data_dir: str | None = None,
               percentile: float = 100.0, dataset=None) -> dict:
    """Write RUN_DIR's network as a .nir file; returns a summary of the graph."""
    from ...atomic import replace_atomically
    from ...description import describe
    from ...engine import load_run

    nir = require_nir()
    config, net = load_run(run_dir)
    if dataset is None:
        from ...data import load_dataset

        dataset = load_dataset(config.data.dataset, data_dir or config.data.data_dir, train_subset=calibration, test_subset=1)
    graph = to_nir(describe(net), np.asarray(dataset.x_train[:calibration]), percentile, str(run_dir))
    out = Path(out)
    if out.parent and not out.parent.exists():
        raise ConfigError(f"output folder {out.parent} does not exist; create it or choose another -o")
    replace_atomically(out, lambda tmp: nir.write(tmp, graph))
    return {"file": str(out), "nodes": {k: type(v).__name__ for k, v in graph.nodes.items()}, "edges": len(graph.edges),
            "no_nir_primitive": graph.metadata["no_nir_primitive"]}
