"""Render a feasibility report (the plain data from ``analysis.analyse``) as readable text.

Why separate from the analysis: the JSON is the record; this is one view of it, and the notebook
and tests read the same data without parsing text.
"""
from __future__ import annotations

from typing import Any


def _si(value: float | None, unit: str) -> str:
    if value is None:
        return "unknown"
    if value == 0:
        return f"0 {unit}"
    for factor, prefix in ((1e-12, "p"), (1e-9, "n"), (1e-6, "u"), (1e-3, "m"), (1.0, ""), (1e3, "k"), (1e6, "M")):
        if abs(value) < factor * 1000:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _count(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if value < 1e7 else f"{value:.3g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _mapping_lines(mapping: dict[str, Any]) -> list[str]:
    lines = [f"  {'layer':<10} {'role':<11} {'cores':>7} {'neurons/core':>12} {'synapses/core':>13} {'memory':>7}  limited by"]
    for layer in mapping["layers"]:
        for i, pop in enumerate(layer["populations"]):
            name = layer["layer"] if i == 0 else ""
            role = pop["role"] + (f" x{pop['copies']}" if pop["copies"] > 1 else "")
            lines.append(
                f"  {name:<10} {role:<11} {pop['cores']:>7,} {pop['neurons_per_core']:>12,} "
                f"{pop['synapses_per_core']:>13,} {_pct(pop['memory_utilisation']):>7}  {pop['limited_by']}"
            )
        for note in layer["notes"]:
            lines.append(f"  {'':<10} note: {note}")
        if not layer["fits"]:
            lines.append(f"  {'':<10} DOES NOT FIT")
    for note in mapping["notes"]:
        lines.append(f"  note: {note}")
    return lines


def _rule_lines(rules: list[dict[str, Any]], verbose: bool) -> list[str]:
    lines = []
    for r in rules:
        lines.append(f"  {r['layer']} ({r['rule']}): {r['status']}")
        for t in r["learning"]:
            if verbose or t["status"] != "exact":
                lines.append(f"    - {t['name']}: {t['status']} -- {t['detail']}")
        if r["rule_string"]:
            kind = "Lava rule" if r["lava"] else "rule (sum-of-products form, for reference)"
            lines.append(f"    {kind}: dw = {r['rule_string']}")
            if r["lava"] and verbose:
                for trace, meaning in r["lava"]["post_traces"].items():
                    lines.append(f"      {trace} = {meaning}")
        for note in r["notes"]:
            lines.append(f"    note: {note}")
        forward = [t for t in r["forward"] if verbose or t["status"] != "exact"]
        if forward:
            lines.append(f"    forward path: {r['forward_status']}")
            for t in forward:
                lines.append(f"    - {t['name']}: {t['status']} -- {t['detail']}")
    return lines


def _cost_lines(cost: dict[str, Any]) -> list[str]:
    lines = [
        f"  synaptic operations   {_count(cost['synops_per_inference'])} per inference",
        f"  neuron updates        {_count(cost['neuron_updates_per_inference'])} per inference",
        f"  synaptic updates      {_count(cost['synaptic_updates_per_sample'])} per training sample"
        + (f" ({cost['updates_per_sample']} learning epoch(s))" if cost["updates_per_sample"] else " (no on-chip learning)"),
        f"  energy                {_si(cost['energy_per_inference_j'], 'J')} per inference, "
        f"{_si(cost['energy_per_training_sample_j'], 'J')} per training sample",
        f"  latency               {_si(cost['latency_per_inference_s'], 's')} per inference, "
        f"{_si(cost['latency_per_training_sample_s'], 's')} per training sample",
    ]
    if cost["static_energy_per_inference_j"] is not None:
        lines.append(f"  static energy         {_si(cost['static_energy_per_inference_j'], 'J')} per inference "
                     "(baseline power x latency, not included above)")
    if cost["missing"]:
        lines.append(f"  unknown figures       {', '.join(cost['missing'])}")
    for note in cost["notes"]:
        lines.append(f"  note: {note}")
    return lines


def render_chip(entry: dict[str, Any], time_steps: int, verbose: bool = False) -> str:
    chip, verdict = entry["chip"], entry["verdict"]
    where = f"{verdict['cores']:,} cores" + (f" = {verdict['chips']} chip(s)" if verdict["chips"] else "")
    fit = f"fits on {where}" if verdict["fits"] else f"DOES NOT FIT ({where} placed)"
    lines = [
        f"== {chip['display_name']} ({chip['name']}) " + "=" * max(0, 60 - len(chip["display_name"]) - len(chip["name"])),
        f"verdict: {fit}; on-chip learning: {verdict['learning']}",
        f"weights: {entry['weights']['bits'] if entry['weights']['bits'] is not None else 'unknown'} bits "
        f"({entry['weights']['note']})",
    ]
    for limit in entry["precision_limits"]:
        lines.append(f"precision: {limit}")
    lines += ["mapping:", *_mapping_lines(entry["mapping"])]
    lines += ["learning rules:", *_rule_lines(entry["rules"], verbose)]
    lines += [f"cost ({time_steps} time steps per sample):", *_cost_lines(entry["cost"])]
    if entry["chip_assumptions"]:
        lines.append("chip-file assumptions:")
        lines += [f"  {a['field']}: {a['statement']}" for a in entry["chip_assumptions"]]
    return "\n".join(lines)


def render_comparison(report: dict[str, Any]) -> str:
    header = f"{'chip':<12} {'fits':<5} {'cores':>8} {'chips':>6}  {'learning':<16} {'E/inference':>12} {'E/train':>12} {'t/inference':>12} {'t/train':>12}"
    lines = ["== comparison " + "=" * 50, header]
    for entry in report["chips"]:
        v = entry["verdict"]
        lines.append(
            f"{entry['chip']['name']:<12} {('yes' if v['fits'] else 'no'):<5} {v['cores']:>8,} "
            f"{(v['chips'] if v['chips'] is not None else '-')!s:>6}  {v['learning']:<16} "
            f"{_si(v['energy_per_inference_j'], 'J'):>12} {_si(v['energy_per_training_sample_j'], 'J'):>12} "
            f"{_si(v['latency_per_inference_s'], 's'):>12} {_si(v['latency_per_training_sample_s'], 's'):>12}"
        )
    return "\n".join(lines)


def render_text(report: dict[str, Any], verbose: bool = False) -> str:
    """The whole report as text: header, one section per chip, and a comparison when several."""
    net = report["network"]
    act = report["activity"]
    rates = ", ".join(
        f"{name} in {a['input_rate']:.3f} / out {a['output_rate']:.3f}" for name, a in act["layers"].items()
    )
    parts = [
        f"neurohebb feasibility: {net['name']} ({len(net['layers'])} layers on chip), precision {report['precision']}, "
        f"{report['time_steps']} time steps per sample",
        f"activity: {act['source']}",
        f"spike probability per step: {rates}",
        "model assumptions:",
        *[f"  - {a}" for a in report["assumptions"]],
        "",
    ]
    if report.get("deployment"):
        dep = report["deployment"]
        parts.append(f"deployment to Lava: {dep['circuit'] or 'not deployable'}")
        parts += [f"  {b['block']}: {'deploys' if b['deploys'] else 'does not deploy'} -- {b['how']}" for b in dep["blocks"]]
        parts.append("")
    for entry in report["chips"]:
        parts += [render_chip(entry, report["time_steps"], verbose), ""]
    if len(report["chips"]) > 1:
        parts.append(render_comparison(report))
    return "\n".join(parts).rstrip() + "\n"
