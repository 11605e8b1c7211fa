"""Chip descriptions: find, load and validate the TOML files in ``hardware/``.

Why validated data files rather than Python constants: a chip engineer can describe a new chip
(or correct a figure) without touching code, every number sits next to the document it comes
from, and a malformed file fails at load time with the field it got wrong.

Search order for a chip given by name: ``$NEUROHEBB_HARDWARE_DIR`` (a user folder), the
``neurohebb/hardware`` package data (an installed wheel), then the ``hardware/`` folder of the
source tree. A path to a ``.toml`` file is loaded directly. Files whose name starts with ``_``
(the template) are not chips.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .schema import SCHEMA, SOURCE_PREFIXES, TOP_LEVEL_STRINGS, FieldSpec

ENV_DIR = "NEUROHEBB_HARDWARE_DIR"
SCHEMA_VERSION = 1
STATUSES = ("known", "unknown", "not_applicable")
_SOURCE_KEY = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_\-]*)")


@dataclass(frozen=True)
class Figure:
    """One figure of a chip: a value with its source, or an explicit statement that it is unknown
    (or does not apply) with the reason."""

    status: str
    value: Any = None
    source: str = ""
    reason: str = ""
    note: str = ""

    @property
    def known(self) -> bool:
        return self.status == "known"

    @property
    def is_assumption(self) -> bool:
        return self.known and self.source.lstrip().lower().startswith("assumption")

    def to_dict(self) -> dict[str, Any]:
        if self.known:
            out: dict[str, Any] = {"value": self.value, "source": self.source}
        else:
            out = {self.status: self.reason}
        if self.note:
            out["note"] = self.note
        return out

    def describe(self) -> str:
        if self.known:
            return f"{self.value} ({self.source})"
        label = "unknown" if self.status == "unknown" else "not applicable"
        return f"{label}: {self.reason}"


@dataclass(frozen=True)
class Chip:
    """A validated chip description."""

    name: str
    display_name: str
    vendor: str
    summary: str
    path: str
    references: dict[str, str]
    figures: dict[str, dict[str, Figure]] = field(repr=False)

    def figure(self, section: str, name: str) -> Figure:
        try:
            return self.figures[section][name]
        except KeyError:
            raise KeyError(f"{section}.{name} is not a chip field") from None

    def get(self, section: str, name: str, default: Any = None) -> Any:
        """The value of a known figure, else `default` (for unknown / not-applicable figures)."""
        fig = self.figure(section, name)
        return fig.value if fig.known else default

    def assumptions(self) -> list[tuple[str, str]]:
        """(field, statement) for every figure whose source is a modelling assumption."""
        return [
            (f"{sec}.{name}", fig.source)
            for sec, figs in self.figures.items()
            for name, fig in figs.items()
            if fig.is_assumption
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "vendor": self.vendor,
            "summary": self.summary,
            "path": self.path,
            "references": dict(self.references),
            **{sec: {k: f.to_dict() for k, f in figs.items()} for sec, figs in self.figures.items()},
        }


# ----------------------------------------------------------------------------------------------
# Finding chip files


def chip_dirs() -> list[Path]:
    """Folders searched for chip files, first match wins."""
    dirs: list[Path] = []
    env = os.environ.get(ENV_DIR)
    if env:
        dirs.append(Path(env))
    packaged = resources.files("neurohebb") / "hardware"  # package data of an installed wheel
    if isinstance(packaged, Path) and packaged.is_dir():
        dirs.append(packaged)
    source_tree = Path(__file__).resolve().parents[2] / "hardware"
    if source_tree.is_dir():
        dirs.append(source_tree)
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def _chip_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in chip_dirs():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            if not path.name.startswith("_"):
                found.setdefault(path.stem, path)
    return found


def available_chips() -> list[str]:
    """Names of the chips the project knows (file stems)."""
    return sorted(_chip_files())


def template_path() -> Path | None:
    """The documented template for a user's own chip, if the hardware folder is present."""
    for folder in chip_dirs():
        candidate = folder / "_template.toml"
        if candidate.is_file():
            return candidate
    return None


def load_chip(name_or_path: str | Path) -> Chip:
    """Load a chip by name (``loihi2``) or from a ``.toml`` path."""
    text = str(name_or_path)
    path = Path(text)
    if text.endswith(".toml") or path.is_file() or os.sep in text:
        return load_chip_file(path)
    files = _chip_files()
    if text not in files:
        known = ", ".join(sorted(files)) or "none (the hardware/ folder was not found)"
        raise ConfigError(f"unknown chip {text!r}; known chips: {known}; or pass --chip-file FILE.toml")
    return load_chip_file(files[text])


def load_all_chips() -> list[Chip]:
    return [load_chip_file(path) for _, path in sorted(_chip_files().items())]


def load_chip_file(path: str | Path) -> Chip:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read chip file {path}: {exc.strerror}; check the path") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"chip file {path} is not UTF-8 text (byte {exc.start}); TOML files must be saved as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"chip file {path} is not valid TOML: {exc}") from None
    return chip_from_dict(data, str(path))


def blank_chip_dict(name: str = "my-chip", reference: str = "mydoc", citation: str = "the document figures come from") -> dict[str, Any]:
    """A complete chip description with every figure unknown: fill in what you know, then
    ``chip_from_dict``. (The same structure as ``hardware/_template.toml``.)"""
    return {
        "schema": SCHEMA_VERSION,
        "name": name,
        "display_name": name,
        "vendor": "unknown",
        "summary": f"user-described chip {name}",
        "references": {reference: citation},
        **{section: {field_name: {"unknown": "not filled in"} for field_name in specs} for section, specs in SCHEMA.items()},
    }


# ----------------------------------------------------------------------------------------------
# Validation


def chip_from_dict(data: dict[str, Any], where: str = "chip") -> Chip:
    """Validate plain data (a parsed chip TOML) into a Chip; errors name the offending field."""

    def fail(msg: str) -> ConfigError:
        return ConfigError(f"chip file {where}: {msg}")

    version = data.get("schema")
    if version != SCHEMA_VERSION:
        raise fail(f"schema must be {SCHEMA_VERSION}, got {version!r}; start from hardware/_template.toml")
    known_top = {"schema", "references", *TOP_LEVEL_STRINGS, *SCHEMA}
    unknown = sorted(set(data) - known_top)
    if unknown:
        raise fail(f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(known_top))}")
    for key in TOP_LEVEL_STRINGS:
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise fail(f"{key} must be a non-empty string")
    refs = data.get("references")
    if not isinstance(refs, dict) or not refs:
        raise fail("[references] must be a table of key = \"full citation\" entries")
    for key, citation in refs.items():
        if not isinstance(citation, str) or not citation.strip():
            raise fail(f"references.{key} must be a non-empty citation string")
        if key in SOURCE_PREFIXES:
            raise fail(f"references.{key}: {key!r} is reserved for {key}: sources; rename the reference")

    figures: dict[str, dict[str, Figure]] = {}
    for section, specs in SCHEMA.items():
        table = data.get(section)
        if not isinstance(table, dict):
            raise fail(f"section [{section}] is missing; every chip file needs it (see hardware/_template.toml)")
        extra = sorted(set(table) - set(specs))
        if extra:
            raise fail(f"unknown field {section}.{extra[0]}; allowed: {', '.join(specs)}")
        figures[section] = {}
        for name, spec in specs.items():
            fq = f"{section}.{name}"
            if name not in table:
                raise fail(f"field {fq} is missing ({spec.help}); give a value with its source, or {{ unknown = \"why\" }}")
            figures[section][name] = _figure(table[name], fq, spec, refs, fail)
    _cross_checks(figures, fail)
    return Chip(
        name=data["name"].strip(),
        display_name=data["display_name"].strip(),
        vendor=data["vendor"].strip(),
        summary=" ".join(data["summary"].split()),
        path=where,
        references=dict(refs),
        figures=figures,
    )


def _figure(raw: Any, fq: str, spec: FieldSpec, refs: dict[str, str], fail) -> Figure:
    if not isinstance(raw, dict):
        raise fail(
            f"{fq} must be a table such as {{ value = ..., source = \"...\" }} or {{ unknown = \"why\" }}, got {raw!r}"
        )
    note = raw.get("note", "")
    if not isinstance(note, str):
        raise fail(f"{fq}.note must be a string")
    statuses = [k for k in ("value", "unknown", "not_applicable") if k in raw]
    if len(statuses) != 1:
        raise fail(f"{fq} needs exactly one of value (with source), unknown or not_applicable")
    extra = sorted(set(raw) - {"value", "source", "unknown", "not_applicable", "note"})
    if extra:
        raise fail(f"{fq}: unknown key {extra[0]!r}; use value, source, unknown, not_applicable, note")
    if statuses[0] != "value":
        reason = raw[statuses[0]]
        if not isinstance(reason, str) or not reason.strip():
            raise fail(f"{fq}.{statuses[0]} must say why, as a non-empty string")
        if "source" in raw:
            raise fail(f"{fq}: a source belongs to a value; move it into the reason text")
        status = "unknown" if statuses[0] == "unknown" else "not_applicable"
        return Figure(status, reason=reason.strip(), note=note)
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise fail(f"{fq} has a value but no source; add source = \"<reference key>, table/page: ...\"")
    m = _SOURCE_KEY.match(source)
    key = m.group(1) if m else ""
    if key not in refs and key.lower() not in SOURCE_PREFIXES:
        raise fail(
            f"{fq}.source must start with a key of [references] ({', '.join(refs)}) or with "
            f"'derived:' / 'assumption:', got {source!r}"
        )
    return Figure("known", value=_check_value(raw["value"], fq, spec, fail), source=source.strip(), note=note)


def _check_value(value: Any, fq: str, spec: FieldSpec, fail) -> Any:
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise fail(f"{fq} must be true or false, got {value!r}")
        return value
    if spec.kind in ("str", "choice"):
        if not isinstance(value, str) or not value.strip():
            raise fail(f"{fq} must be a non-empty string, got {value!r}")
        if spec.kind == "choice" and value not in spec.choices:
            raise fail(f"{fq} = {value!r} is not allowed; choose one of: {', '.join(spec.choices)}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(f"{fq} must be a number, got {value!r}")
    if spec.kind == "int" and not isinstance(value, int):
        raise fail(f"{fq} must be an integer, got {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise fail(f"{fq} must be finite, got {value!r}")
    if spec.minimum is not None and value < spec.minimum:
        raise fail(f"{fq} must be >= {spec.minimum:g}, got {value!r}")
    return value


def _cross_checks(figures: dict[str, dict[str, Figure]], fail) -> None:
    w = figures["weights"]
    if w["min_bits"].known and w["max_bits"].known and w["min_bits"].value > w["max_bits"].value:
        raise fail(f"weights.min_bits ({w['min_bits'].value}) exceeds weights.max_bits ({w['max_bits'].value})")
    learn = figures["learning"]
    on_chip, engine = learn["on_chip"], learn["engine"]
    if on_chip.known and engine.known and (on_chip.value is False) != (engine.value == "none"):
        raise fail(
            f"learning.on_chip = {str(on_chip.value).lower()} contradicts learning.engine = {engine.value!r}; "
            "a chip without on-chip learning has engine 'none', and only such a chip"
        )
