"""On-chip learning feasibility: can a network learn on a given neuromorphic chip, and at what cost?

Pieces, each usable on its own:

* ``chips``          -- load and validate chip descriptions (``hardware/*.toml``); every figure sourced
* ``netspec``        -- the network as layers with geometry (from a RunConfig, or built by hand)
* ``activity``       -- spike rates per layer, measured from a network on data or assumed
* ``mapping``        -- place layers on cores under the chip's limits
* ``expressibility`` -- judge each rule term on the chip's learning engine; emit Lava rule strings
* ``cost``           -- operation counts, energy and latency per inference / training sample
* ``analysis``       -- all of the above for a list of chips, as plain data
* ``report``, ``plots`` -- text and PNG views of that data

Nothing here imports Lava or Brian2.
"""
from __future__ import annotations

from .activity import ActivityProfile, LayerActivity, uniform_activity
from .analysis import analyse, analyse_chip, analyse_config, config_activity
from .chips import Chip, Figure, available_chips, blank_chip_dict, chip_from_dict, load_all_chips, load_chip, load_chip_file, template_path
from .cost import NetworkCost, estimate_costs
from .expressibility import LayerRules, Term, analyse_layer, analyse_network, nearest_coefficient
from .mapping import NetworkMapping, map_layer, map_network
from .netspec import LayerSpec, conv_layer, linear_layer, network_layers
from .report import render_text

__all__ = [
    "ActivityProfile", "Chip", "Figure", "LayerActivity", "LayerRules", "LayerSpec", "NetworkCost", "NetworkMapping",
    "Term", "analyse", "analyse_chip", "analyse_config", "analyse_layer", "analyse_network", "available_chips",
    "blank_chip_dict", "config_activity",
    "chip_from_dict", "conv_layer", "estimate_costs", "linear_layer", "load_all_chips", "load_chip", "load_chip_file",
    "map_layer", "map_network", "nearest_coefficient", "network_layers", "render_text", "template_path",
    "uniform_activity",
]
