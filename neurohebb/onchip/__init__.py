"""On-chip learning: train a layer with a chip's own learning engine, as the chip would run it.

Two things neurohebb distinguishes, in code, metrics and plots:

- *SoftHebb in a chip's number formats* (`--precision`, `neurohebb.steps` fake-quant/integer):
  SoftHebb's own algorithm (batch, layer-wide normalisation, float softmax) with quantised
  values. It is never called on-chip learning.
- *On-chip learning* (this package, `--on-chip CHIP`, metrics ``mode = "chip:<chip>"``): only what
  the chip's learning engine executes -- a sum-of-products rule on 7-bit traces, the chip's
  scaling, weight and accumulator widths, stochastic rounding, batch 1, in closed loop with a
  spiking WTA circuit of neurons the chip can run.

Modules, one job each:

- `model`: the learning-engine model, read from the chip file (``hardware/<chip>.toml``);
- `rulestr`: rule strings and trace settings, parsed against a model;
- `engine`: the closed loop (WTA circuit + learning engine), integer, vectorised, bit-exact with
  Lava's `LearningDense` and LIF processes (tests/test_onchip_lava.py);
- `circuit`: threshold/inhibition calibration and the chip's weight integers;
- `rules` + `rules.toml`: the named rule variants (data entries);
- `step`: the engine as a `PlasticityStep`, so `neurohebb train` writes an ordinary run directory.

A run asks for it with its ``[onchip]`` table (``chip = "loihi2"``, ``rule = "winner"``, circuit
settings; `config.OnChipConfig`), which `--on-chip` / `--rule` set, so config.toml reproduces it.
"""
