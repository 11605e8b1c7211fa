"""Run an exported NIR graph in snnTorch (an external NIR consumer) and read its class decisions.

Why a conversion step: snnTorch 1.0.0 imports `nir.IF` as a `Leaky(beta=0.9, init_hidden=False)`
-- a leaky neuron, whose (spikes, membrane) tuple its own graph executor then passes on as if it
were spikes, so an IF graph does not run. NIR's LIF with a time constant far longer than the
run (tau = 1e3 s at snnTorch's fixed dt = 1e-4 s, r = tau / dt) is the same integrate-and-fire
neuron (leak factor 1 - 1e-7 per step, unit input gain, reset to 0) and snnTorch imports it as a
stateful `Leaky`; `if_as_lif` makes that substitution. It also shifts `Flatten`'s dimensions by
one: NIR counts them without the batch (start_dim 0 = the channel axis), snnTorch hands them to
`torch.nn.Flatten` on batched tensors unchanged, which would flatten the batch too.
"""
from __future__ import annotations

import numpy as np

SNNTORCH_DT = 1e-4
LONG_TAU = 1e3


def if_as_lif(graph):
    """A copy of ``graph`` with every IF node replaced by the equivalent long-tau LIF node."""
    import nir

    nodes = {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.IF):
            tau = np.full(node.r.shape, LONG_TAU)
            nodes[name] = nir.LIF(tau=tau, r=node.r * LONG_TAU / SNNTORCH_DT, v_leak=np.zeros(node.r.shape),
                                  v_threshold=node.v_threshold, v_reset=node.v_reset)
        elif isinstance(node, nir.Flatten):
            nodes[name] = nir.Flatten(input_type=node.input_type, start_dim=node.start_dim + 1,
                                      end_dim=node.end_dim if node.end_dim < 0 else node.end_dim + 1)
        else:
            nodes[name] = node
    # the shifted Flatten no longer type-checks in NIR's batch-less convention
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=dict(graph.metadata), type_check=False)


def snntorch_logits(graph, images: np.ndarray, steps: int = 64, batch: int = 100) -> np.ndarray:
    """The readout summed over ``steps`` steps, per image (uint8), from snnTorch's import of the graph."""
    import torch
    from snntorch import utils as snn_utils
    from snntorch.import_nir import import_from_nir

    model = import_from_nir(if_as_lif(graph))
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = torch.from_numpy(np.asarray(images[start:start + batch])).float() / 255.0
            snn_utils.reset(model)
            total = 0.0
            for _ in range(steps):
                y = model(x)
                y = y[0] if isinstance(y, tuple) else y
                total = total + y
            out.append(total.double().numpy())
    return np.concatenate(out)
