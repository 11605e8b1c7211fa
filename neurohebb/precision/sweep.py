"""Accuracy-loss sweeps: train every (weight bits x update bits x rounding x seed) combination.

Why resumable point files: a full sweep is dozens of training runs; each finished point is one
JSON file in ``DIR/points/`` written atomically, an interrupted sweep skips them when restarted,
and ``results.csv`` / ``results.json`` / ``accuracy_vs_bits.png`` are always rebuilt from the
point files (so they can never disagree with them): the tables after every point, the figures
at the end and when the sweep is interrupted.

Formats a sweep derives from bit counts:
- weights: ``mB`` (B-bit mantissa with a per-tensor shared exponent, Loihi-style) by default, or
  fixed point ``sB.(B-I)`` with ``weight_format="fixed"`` and ``I`` integer bits (sign included);
- updates: ``sU.(U-2)``, i.e. range [-2, 2): the normalised update lies in [-1, 1] and +1 must
  not saturate.
The swept rounding mode applies to the weight and update roles; every other role comes from the
base policy (float32 unless given). Each seed has a float32 run (the baseline of its rows'
``accuracy_drop``) and post-training-quantisation points: that float network with its plastic
weights rounded to nearest in each weight format, evaluated with its float readout.

A second, separate series: *on-chip learning* (``onchip_chip`` + ``onchip_rules``): the chip's own
learning engine (`neurohebb.onchip`, batch 1, spiking WTA circuit), one point per rule and seed,
with a random-weights control per seed (the layer keeps its random start) as the measure of
learning. Its rows, table lines and plot lines are labelled "on-chip learning (CHIP, rule NAME)";
the quantised rows are "SoftHebb in chip formats" -- SoftHebb's own algorithm in the chip's number
formats, which is never called on-chip learning.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import RunConfig
from ..errors import ConfigError, NeurohebbError
from .formats import NumberFormat
from .policy import PrecisionPolicy, RoleSpec
from .rounding import check_rounding
from ..steps import QUANTISED_MODES as MODES

WEIGHT_FORMATS = ("shared", "fixed")
POINT_VERSION = 1


@dataclass(frozen=True)
class Point:
    """One training (or PTQ evaluation) of the sweep."""

    kind: str  # "float" | "ptq" | "quantized" | "random" | "onchip"
    seed: int
    weight_bits: int | None = None
    update_bits: int | None = None  # None: float update
    rounding: str | None = None
    policy: str = "float32"
    chip: str | None = None  # onchip: the chip whose learning engine trains
    rule: str | None = None  # onchip: a rules.toml name or a rule string

    @property
    def key(self) -> str:
        if self.kind == "float":
            return f"float-s{self.seed}"
        if self.kind == "random":
            return f"random-s{self.seed}"
        if self.kind == "onchip":
            return f"chip-{self.chip}-{_slug(self.rule or '')}-s{self.seed}"
        if self.kind == "ptq":
            return f"ptq-w{self.weight_bits}-s{self.seed}"
        ub = "f" if self.update_bits is None else self.update_bits
        return f"q-w{self.weight_bits}-u{ub}-{self.rounding}-s{self.seed}"

    @property
    def series(self) -> str:
        """The label rows, tables and plots use: the two chip modes never share a label."""
        return series_label(self.kind, self.chip, self.rule)


def series_label(kind: str, chip: str | None = None, rule: str | None = None) -> str:
    if kind == "onchip":
        return f"on-chip learning ({chip}, rule {rule})"
    return {"float": "float SoftHebb (float32)", "ptq": "post-training quantisation (nearest)",
            "quantized": "SoftHebb in chip formats", "random": "random weights (control)"}[kind]


def _slug(rule: str) -> str:
    """A file-name-safe key part for a rule: its name, or a short hash of a rule string."""
    if re.fullmatch(r"[A-Za-z0-9_-]{1,40}", rule):
        return rule
    return "rule-" + hashlib.sha256(rule.encode()).hexdigest()[:10]


@dataclass
class SweepPlan:
    """What to sweep; `points()` lists every run in execution order."""

    config: RunConfig
    weight_bits: list[int] = field(default_factory=lambda: [16, 8, 6, 4, 3, 2])
    update_bits: list[int | None] = field(default_factory=lambda: [16])
    roundings: list[str] = field(default_factory=lambda: ["nearest", "stochastic"])
    seeds: list[int] = field(default_factory=lambda: [0])
    weight_format: str = "shared"
    weight_int_bits: int = 1
    base_policy: PrecisionPolicy = field(default_factory=PrecisionPolicy)
    mode: str = "fake-quant"
    ptq: bool = True
    stats_every: int = 1  # sample the stalled-synapse statistics on every n-th Hebbian step
    keep_runs: bool = False  # also write a run directory (checkpoint, config) per trained point
    onchip_chip: str = ""  # with onchip_rules: the on-chip learning series (and a random-weights control)
    onchip_rules: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.config.onchip.enabled:
            raise ConfigError("the sweep's config sets [onchip] chip; give the on-chip series with --on-chip CHIP --rule NAME "
                              "instead (the float and chip-formats points are not trained on chip)")
        if self.onchip_rules and not self.onchip_chip:
            raise ConfigError("--rule picks on-chip learning rules for the sweep; give --on-chip CHIP as well (e.g. --on-chip loihi2)")
        if self.onchip_chip and not self.onchip_rules:
            raise ConfigError("--on-chip needs at least one rule (--rule NAME[,NAME...])")
        if len(set(self.onchip_rules)) != len(self.onchip_rules):
            raise ConfigError(f"rule lists a value twice: {self.onchip_rules}")
        for rule in self.onchip_rules:
            self.onchip_config(rule, self.config.seed)  # one-line error before anything trains
        if int(self.stats_every) < 1:
            raise ConfigError(f"--stats-every must be >= 1, got {self.stats_every}")
        self.base_policy = PrecisionPolicy.parse(self.base_policy)
        swept = [r for r in ("weight", "update") if not self.base_policy.spec(r).is_float]
        if swept:
            raise ConfigError(
                f"the base policy sets {' and '.join(swept)}, which the sweep sets itself; "
                "choose them with --weight-bits / --update-bits (and --weight-format) instead"
            )
        if self.weight_format not in WEIGHT_FORMATS:
            raise ConfigError(f"weight format {self.weight_format!r} is unknown; choose one of: {', '.join(WEIGHT_FORMATS)}")
        if self.mode not in MODES:
            raise ConfigError(f"precision mode {self.mode!r} is unknown; choose one of: {', '.join(MODES)}")
        floats = [r for r in ("input", "post", "lr") if self.base_policy.spec(r).is_float]
        if self.mode == "integer" and (floats or None in self.update_bits):
            missing = floats + (["update (--update-bits float)"] if None in self.update_bits else [])
            raise ConfigError(
                f"--mode integer needs every role quantised; {', '.join(missing)} would be float32 "
                "(e.g. --policy input=s12.8,post=s16.15,lr=u16.16; signed, since batch-normalised inputs and "
                "anti-Hebbian post activity are negative)"
            )
        for name in ("weight_bits", "roundings", "seeds", "update_bits"):
            if not getattr(self, name) and not (self.onchip_rules and name != "seeds"):
                raise ConfigError(f"the sweep needs at least one value for {name.replace('_', '-')}")
        for r in self.roundings:
            check_rounding(r)
        for b in self.weight_bits:
            self.weight_fmt(b)
        for b in self.update_bits:
            self.update_fmt(b)
        for name in ("weight_bits", "update_bits", "roundings", "seeds"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ConfigError(f"{name.replace('_', '-')} lists a value twice: {values}")

    def weight_fmt(self, bits: int) -> NumberFormat:
        if self.weight_format == "shared":
            return NumberFormat.shared_exp(bits)
        frac = bits - self.weight_int_bits
        if frac < 0:
            raise ConfigError(f"{bits}-bit weights cannot have {self.weight_int_bits} integer bits; lower --weight-int-bits")
        return NumberFormat.fixed(bits, frac)

    def update_fmt(self, bits: int | None) -> NumberFormat | None:
        if bits is None:
            return None
        if not isinstance(bits, int) or bits < 2:
            raise ConfigError(f"update bits must be an integer >= 2 (or 'float'), got {bits!r}")
        return NumberFormat.fixed(bits, bits - 2)

    def policy(self, weight_bits: int, update_bits: int | None, rounding: str) -> PrecisionPolicy:
        p = self.base_policy.with_role("weight", RoleSpec(self.weight_fmt(weight_bits), rounding))
        ufmt = self.update_fmt(update_bits)
        return p.with_role("update", RoleSpec(ufmt, rounding) if ufmt else RoleSpec())

    def onchip_config(self, rule: str, seed: int) -> RunConfig:
        """The run config of an on-chip point: the sweep's config with [onchip] chip and rule set."""
        config = dataclasses.replace(self.config, seed=seed,
                                     onchip=dataclasses.replace(self.config.onchip, chip=self.onchip_chip, rule=rule))
        return config.validate()

    def random_config(self, seed: int) -> RunConfig:
        """The random-weights control: every layer keeps its random initial weights."""
        layers = [dataclasses.replace(layer, rule="random") for layer in self.config.layers]
        return dataclasses.replace(self.config, seed=seed, layers=layers).validate()

    def points(self) -> list[Point]:
        out: list[Point] = []
        for seed in self.seeds:
            out.append(Point("float", seed))
            if self.onchip_rules:
                out.append(Point("random", seed))
                for rule in self.onchip_rules:
                    # policy: the [precision] of the run, which on-chip learning leaves at float32 (the
                    # chip's formats come from its engine); the series is told by kind, chip and rule
                    out.append(Point("onchip", seed, chip=self.onchip_chip, rule=rule))
            if self.ptq:
                for wb in self.weight_bits:
                    out.append(Point("ptq", seed, wb, None, "nearest", str(RoleSpec(self.weight_fmt(wb)))))
            for wb in self.weight_bits:
                for ub in self.update_bits:
                    for r in self.roundings:
                        out.append(Point("quantized", seed, wb, ub, r, str(self.policy(wb, ub, r))))
        return out

    def manifest(self) -> dict[str, Any]:
        """What must not change when a sweep directory is resumed (lists may grow)."""
        config = self.config.to_dict()
        for key in ("seed", "device"):  # per point / where it runs: free to change on resume
            config.pop(key, None)
        for key in ("data_dir", "download"):
            config["data"].pop(key, None)
        return {"config": config, "weight_format": self.weight_format, "weight_int_bits": self.weight_int_bits,
                "base_policy": str(self.base_policy), "mode": self.mode}


# ---------------------------------------------------------------------------------------------
# Running


def _seeded(config: RunConfig, seed: int) -> RunConfig:
    return dataclasses.replace(config, seed=seed)


def _check_manifest(out: Path, plan: SweepPlan) -> None:
    from ..rundir import write_json_atomic

    path = out / "sweep.json"
    manifest = plan.manifest()
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            raise NeurohebbError(f"{path} is unreadable; remove it or choose another --out") from None
        if old != json.loads(json.dumps(manifest)):
            diff = sorted(k for k in manifest if json.dumps(old.get(k), sort_keys=True) != json.dumps(manifest[k], sort_keys=True))
            raise NeurohebbError(
                f"{out} holds a sweep with a different {', '.join(diff) or 'setup'}; resume it with the same "
                "preset/config/--weight-format/--policy/--mode, or choose another --out"
            )
    else:
        write_json_atomic(path, manifest)


def _valid_point(data: Any) -> bool:
    """A finished point's record: the right version, a key and a finite accuracy (a damaged or
    hand-edited file is treated as unfinished and rerun, never summarised)."""
    if not isinstance(data, dict) or data.get("version") != POINT_VERSION or not isinstance(data.get("key"), str):
        return False
    acc = data.get("test_accuracy")
    return isinstance(acc, (int, float)) and not isinstance(acc, bool) and math.isfinite(acc) and 0 <= acc <= 100


def load_points(out: Path) -> dict[str, dict[str, Any]]:
    """Finished points of a sweep directory, by key (unreadable files are ignored: rerun them)."""
    points = {}
    for path in sorted((out / "points").glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if _valid_point(data):
            points[data["key"]] = data
    return points


def _write_point_run(directory: Path, config: RunConfig, net: Any, metrics: dict[str, Any]) -> None:
    """A complete run directory for one point, so `neurohebb eval` / `deploy` can take it."""
    from ..engine import write_run
    from ..rundir import StagedRunDir

    with StagedRunDir(directory, overwrite=True) as staging:
        write_run(staging, config, net, {k: v for k, v in metrics.items() if k != "diagnostics"})


def _point_record(point: Point, metrics: dict[str, Any], mode: str) -> dict[str, Any]:
    return {"version": POINT_VERSION, "key": point.key, **dataclasses.asdict(point), "mode": mode,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **metrics}


@dataclass
class PointOutcome:
    """What one point produced, before anything is written (so any executor can run it)."""

    metrics: dict[str, Any]
    mode: str
    net: Any = None  # the trained network, when the driver must keep it (float points, --keep-runs)
    float_net: Any = None  # PTQ: the float network it quantised (retrained if its checkpoint was gone)


def execute_point(plan: SweepPlan, point: Point, dataset, float_net: Any = None, progress: bool = False) -> PointOutcome:
    """Train (or, for PTQ, quantise `float_net` of the seed) one point; writes no files."""
    from ..devices import resolve_device
    from ..engine import dataset_tensors, evaluate
    from .training import post_training_quantize, train_with_policy

    config = _seeded(plan.config, point.seed)
    t0 = time.perf_counter()
    if point.kind == "float":
        net, metrics = train_with_policy(config, None, dataset=dataset, progress=progress)
        metrics["stats_every"] = 1
        mode = "float32"
    elif point.kind in ("onchip", "random"):
        from ..engine import train_pipeline

        run_config = plan.onchip_config(point.rule, point.seed) if point.kind == "onchip" else plan.random_config(point.seed)
        net, metrics = train_pipeline(run_config, progress, dataset)
        mode = metrics["mode"] if point.kind == "onchip" else "random"
    elif point.kind == "ptq":
        if float_net is None:  # the checkpoint was removed: retrain (deterministic per seed)
            float_net, _ = train_with_policy(config, None, dataset=dataset, progress=progress)
        _, _, x_test, y_test = dataset_tensors(dataset)
        net, diagnostics = post_training_quantize(float_net, point.policy)
        net = net.to(resolve_device(config.device))
        metrics = {"test_accuracy": round(evaluate(net, x_test, y_test), 4), "diagnostics": diagnostics,
                   "seed": point.seed, "n_test": int(x_test.shape[0])}
        mode = "ptq"
    else:
        net, metrics = train_with_policy(config, point.policy, mode=plan.mode, dataset=dataset,
                                         progress=progress, stats_every=plan.stats_every)
        metrics["stats_every"] = plan.stats_every
        mode = plan.mode
    metrics["point_seconds"] = round(time.perf_counter() - t0, 3)
    keep = point.kind == "float" or (plan.keep_runs and point.kind != "ptq")
    return PointOutcome(metrics, mode, net if keep else None, float_net if point.kind == "ptq" else None)


def finish_point(plan: SweepPlan, out: Path, point: Point, outcome: PointOutcome) -> None:
    """Write a finished point's files: float checkpoint, optional run directory, then its JSON last
    (the JSON is what marks the point done on resume)."""
    from ..network import save_checkpoint
    from ..rundir import write_json_atomic

    if point.kind == "float":
        save_checkpoint(outcome.net, out / "points" / f"{point.key}.pt")
    if plan.keep_runs and point.kind != "ptq":
        _write_point_run(out / "runs" / point.key, outcome.net.config, outcome.net, outcome.metrics)
    write_json_atomic(out / "points" / f"{point.key}.json", _point_record(point, outcome.metrics, outcome.mode))


def _run_local(plan: SweepPlan, out: Path, todo: list[Point], dataset, progress: bool,
               on_done: Callable[[Point, PointOutcome], None]) -> None:
    """The default executor: points one after another in this process."""
    from ..network import load_checkpoint

    float_nets: dict[int, Any] = {}
    for point in todo:
        float_net = None
        if point.kind == "ptq":
            float_net = float_nets.get(point.seed)
            ckpt = out / "points" / f"float-s{point.seed}.pt"
            if float_net is None and ckpt.is_file():
                float_net = load_checkpoint(ckpt)
        outcome = execute_point(plan, point, dataset, float_net, progress)
        if point.kind == "float":
            float_nets[point.seed] = outcome.net
        elif outcome.float_net is not None:
            float_nets[point.seed] = outcome.float_net
        on_done(point, outcome)


def run_sweep(
    plan: SweepPlan,
    out_dir: str | Path,
    *,
    dataset=None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    executor: Any = None,
) -> dict[str, Any]:
    """Run every unfinished point of `plan` into `out_dir`; returns the rebuilt results.

    `executor` (see `neurohebb.executors`) runs the points elsewhere, e.g. as Ray tasks; None runs
    them here one after another. Either way the driver writes every file.
    """
    from ..engine import load_data_for

    from ..rundir import check_writable_dir, clean_stale_staging, make_output_dir

    out = Path(out_dir)
    check_writable_dir(make_output_dir(out / "points"))
    clean_stale_staging(out / "points")  # temporary files of a sweep that was killed mid-write
    clean_stale_staging(out)
    _check_manifest(out, plan)
    done = load_points(out)
    todo = [p for p in plan.points() if p.key not in done]
    for p in plan.points():
        if p.key in done and (done[p.key].get("policy") != p.policy):
            raise NeurohebbError(f"{out}/points/{p.key}.json was made with policy {done[p.key].get('policy')!r}, not {p.policy!r}; choose another --out")
    log(f"sweep: {len(plan.points()) - len(todo)} of {len(plan.points())} points already done in {out}")
    if not todo:
        return rebuild_results(plan, out)
    dataset = dataset if dataset is not None else load_data_for(plan.config)
    finished = []

    def on_done(point: Point, outcome: PointOutcome) -> None:
        finish_point(plan, out, point, outcome)
        finished.append(point.key)
        log(f"sweep: [{len(finished)}/{len(todo)}] {point.key}: {outcome.metrics['test_accuracy']:.2f} % "
            f"({outcome.metrics['point_seconds']:.0f} s)")
        if len(finished) < len(todo):
            rebuild_results(plan, out, figures=False)  # tables stay current during long sweeps

    try:
        if executor is None:
            _run_local(plan, out, todo, dataset, progress, on_done)
        else:
            executor.run(plan, out, todo, dataset, on_done, log)
    finally:
        results = rebuild_results(plan, out)
    return results


# ---------------------------------------------------------------------------------------------
# Results


def _layer_columns(diagnostics: list[dict[str, Any]]) -> dict[str, Any]:
    cols: dict[str, Any] = {}
    for d in diagnostics or []:
        i = d.get("layer", 0)
        for key in ("stalled_fraction", "stalled_mass_fraction", "update_transfer"):
            if key in d:
                cols[f"{key}_l{i}"] = round(d[key], 6)
        for role in ("weight", "update"):
            sat = d.get("saturation", {}).get(role)
            if sat:
                cols[f"{role}_saturation_l{i}"] = round(sat["fraction"], 8)
        hist = d.get("weight_histogram", {})
        if "distinct_codes" in hist:
            cols[f"distinct_weight_codes_l{i}"] = hist["distinct_codes"]
        if "weight_norm_gap" in d:
            cols[f"weight_norm_gap_l{i}"] = round(d["weight_norm_gap"], 6)
    return cols


def build_rows(plan: SweepPlan, done: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per finished point of `plan`, with the drop versus the float run of its seed."""
    float_acc = {p.seed: done[p.key]["test_accuracy"] for p in plan.points() if p.kind == "float" and p.key in done}
    random_acc = {p.seed: done[p.key]["test_accuracy"] for p in plan.points() if p.kind == "random" and p.key in done}
    rows = []
    for p in plan.points():
        rec = done.get(p.key)
        if rec is None:
            continue
        base, control = float_acc.get(p.seed), random_acc.get(p.seed)
        wfmt = "float32" if p.weight_bits is None else str(plan.weight_fmt(p.weight_bits))
        ufmt = "float32" if p.update_bits is None else str(plan.update_fmt(p.update_bits))
        rows.append({
            "kind": p.kind, "series": p.series, "chip": p.chip, "rule": p.rule, "seed": p.seed, "weight_bits": p.weight_bits,
            "update_bits": p.update_bits, "rounding": p.rounding,
            "weight_format": wfmt, "update_format": ufmt if p.kind == "quantized" else "",
            "policy": p.policy, "mode": rec.get("mode"),
            "test_accuracy": rec["test_accuracy"],
            "float_accuracy": base,
            "accuracy_drop": None if base is None else round(base - rec["test_accuracy"], 4),
            "random_accuracy": control,
            "learning_gain": None if control is None else round(rec["test_accuracy"] - control, 4),
            "seconds": rec.get("point_seconds"),
            "n_train": rec.get("n_train"), "n_test": rec.get("n_test"),
            "diagnostics": rec.get("diagnostics", []),
        })
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds per (kind, weight bits, update bits, rounding)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        key = (r["kind"], r["weight_bits"], r["update_bits"], r["rounding"], r.get("chip"), r.get("rule"))
        groups.setdefault(key, []).append(r)
    out = []
    for (kind, wb, ub, rounding, chip, rule), rs in groups.items():
        acc = [r["test_accuracy"] for r in rs]
        drops = [r["accuracy_drop"] for r in rs if r["accuracy_drop"] is not None]
        gains = [r["learning_gain"] for r in rs if r.get("learning_gain") is not None]
        out.append({"kind": kind, "series": series_label(kind, chip, rule), "chip": chip, "rule": rule,
                    "weight_bits": wb, "update_bits": ub, "rounding": rounding,
                    "weight_format": rs[0]["weight_format"], "seeds": len(rs),
                    "accuracy_mean": round(_mean(acc), 4), "accuracy_std": round(_std(acc), 4),
                    "drop_mean": round(_mean(drops), 4) if drops else None,
                    "drop_std": round(_std(drops), 4) if drops else None,
                    "gain_mean": round(_mean(gains), 4) if gains else None,
                    "gain_std": round(_std(gains), 4) if gains else None})
    return out


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def _std(xs: list[float]) -> float:
    """Sample standard deviation (0 for a single seed)."""
    if len(xs) < 2:
        return 0.0
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


CSV_FIELDS = ["kind", "weight_bits", "update_bits", "rounding", "seed", "weight_format", "update_format",
              "test_accuracy", "float_accuracy", "accuracy_drop", "mode", "policy", "seconds", "n_train", "n_test",
              "series", "chip", "rule", "random_accuracy", "learning_gain"]


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    flat = [{**{k: r.get(k) for k in CSV_FIELDS}, **_layer_columns(r["diagnostics"])} for r in rows]
    extra = sorted({k for f in flat for k in f} - set(CSV_FIELDS))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS + extra, lineterminator="\n")
    writer.writeheader()
    for f in flat:
        writer.writerow({k: ("" if v is None else v) for k, v in f.items()})
    return buf.getvalue()


def rebuild_results(plan: SweepPlan, out: str | Path, figures: bool = True) -> dict[str, Any]:
    """Write results.json, results.csv (and the figures) from the point files; return the JSON."""
    from ..rundir import write_json_atomic, write_text_atomic

    out = Path(out)
    rows = build_rows(plan, load_points(out))
    summary = summarize(rows)
    results = {"preset": plan.config.preset, "dataset": plan.config.data.dataset, **plan.manifest(),
               "weight_bits": plan.weight_bits, "update_bits": plan.update_bits, "roundings": plan.roundings,
               "seeds": plan.seeds, "points_total": len(plan.points()), "points_done": len(rows),
               "summary": summary, "rows": rows}
    write_json_atomic(out / "results.json", results)
    write_text_atomic(out / "results.csv", rows_to_csv(rows))
    if rows and figures:
        from .plots import plot_accuracy_vs_bits, plot_diagnostics_vs_bits

        kinds = {r["kind"] for r in rows}
        title = f"{plan.config.preset}: {rows[0].get('n_train') or '?'} training images"
        if "quantized" in kinds:
            title += f", chip formats in {plan.mode}"
        plot_accuracy_vs_bits(summary, out / "accuracy_vs_bits.png", title)
        if "quantized" in kinds:
            plot_diagnostics_vs_bits(rows, out / "diagnostics_vs_bits.png", title)
    return results


def format_summary(results: dict[str, Any]) -> str:
    """A plain-text table of the summary (what the CLI prints)."""
    rows = results["summary"]
    gains = any(s.get("gain_mean") is not None for s in rows)
    head = f"{'kind':<10} {'weights':>8} {'update':>7} {'rounding':<10} {'seeds':>5} {'accuracy %':>16} {'drop vs float':>16}"
    lines = [head + (f" {'gain vs random':>16}" if gains else "") + "  series"]
    for s in rows:
        wb = "-" if s["weight_bits"] is None else s["weight_format"]
        ub = "-" if s["kind"] != "quantized" else ("float" if s["update_bits"] is None else str(s["update_bits"]))
        drop = "" if s["drop_mean"] is None else f"{s['drop_mean']:.2f} +- {s['drop_std']:.2f}"
        gain = "" if s.get("gain_mean") is None else f"{s['gain_mean']:+.2f} +- {s['gain_std']:.2f}"
        series = s.get("series") or series_label(s["kind"])
        lines.append(f"{s['kind']:<10} {wb:>8} {ub:>7} {s['rounding'] or '-':<10} {s['seeds']:>5} "
                     f"{s['accuracy_mean']:>8.2f} +- {s['accuracy_std']:<5.2f} {drop:>16}"
                     + (f" {gain:>16}" if gains else "") + f"  {series}")
    return "\n".join(lines)
