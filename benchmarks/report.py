"""Results: what a case produces, and how it is written out (markdown and JSON)."""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import platform
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    # Only named in annotations: formatting a report needs none of the peers installed.
    from benchmarks.implementations import Implementation

Unit = Literal["ns", "bytes"]


@dataclass(frozen=True)
class Target:
    """A goal for tocsin, as the issue states it.

    ``kind`` says what ``limit`` bounds: tocsin's ratio to the floor ("ratio"), its
    absolute figure ("absolute"), or its ratio to Django's figure ("django"). ``limit``
    is the pure-Python path's goal (the tocsin-pure column); ``compiled``, where given, is
    the compiled send path's (the tocsin column), which otherwise has the same goal.
    """

    text: str
    limit: float
    kind: Literal["ratio", "absolute", "django"] = "ratio"
    compiled: float | None = None

    def describe(self) -> str:
        if self.compiled is None:
            return self.text
        return f"<= {self.compiled:g}x (pure {self.text})"

    def limit_for(self, name: str) -> float:
        return self.compiled if name == "tocsin" and self.compiled is not None else self.limit


@dataclass
class Cell:
    """One implementation's figure in one row, or why there is none."""

    value: float | None = None  # ns per operation, or bytes per receiver
    reason: str | None = None  # why there is no figure ("n/a: ...", "WRONG: ...")
    # One figure per round, in round order (an implementation sampled fewer times than
    # the others has the first rounds only).
    samples: list[float] = field(default_factory=list)
    number: int | None = None  # operations per timed sample
    failed: bool = False  # the implementation gave a wrong answer


@dataclass
class Row:
    case: str
    unit: Unit
    cells: dict[str, Cell]
    target: Target | None = None
    note: str | None = None

    def ratio(self, name: str, base: str = "floor") -> float | None:
        """*name*'s figure over *base*'s: the median of the ratios round by round.

        Samples are taken round-robin, so sample *i* of each implementation comes from
        the same round, moments apart: pairing them cancels out drift in the machine's
        speed (another process starting, say) that a ratio of medians would keep.
        """
        cell, reference = self.cells.get(name), self.cells.get(base)
        if cell is None or reference is None or cell.value is None or not reference.value:
            return None
        pairs = [
            mine / theirs
            for mine, theirs in zip(cell.samples, reference.samples, strict=False)
            if theirs
        ]
        if pairs:
            return statistics.median(pairs)
        return cell.value / reference.value

    def target_met(self, name: str = "tocsin") -> bool | None:
        """Whether *name* (tocsin, the compiled path, or tocsin-pure) met its target."""
        if self.target is None:
            return None
        tocsin = self.cells.get(name)
        if tocsin is None or tocsin.value is None:
            return None
        if self.target.kind == "absolute":
            measured: float | None = tocsin.value
        elif self.target.kind == "django":
            measured = self.ratio(name, base="django")
        else:
            measured = self.ratio(name)
        return None if measured is None else measured <= self.target.limit_for(name)


# -- formatting --------------------------------------------------------------------------


def format_amount(value: float, unit: Unit) -> str:
    if unit == "bytes":
        return f"{value:,.0f} B"
    for scale, suffix in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if value >= scale:
            return f"{value / scale:.3g} {suffix}"
    return f"{value:.0f} ns"


def format_cell(row: Row, name: str) -> str:
    cell = row.cells.get(name)
    if cell is None:
        return "-"
    if cell.value is None:
        return cell.reason or "n/a"
    amount = format_amount(cell.value, row.unit)
    if name == "floor":
        return amount
    ratio = row.ratio(name)
    return amount if ratio is None else f"{ratio:.2f}x ({amount})"


# Quick runs take a handful of samples on whatever machine CI has: a verdict against a
# target from them is noise, and a MISSED there would cry wolf.
QUICK_VERDICT = "(quick mode: not comparable)"


def format_met(row: Row, name: str = "tocsin", *, quick: bool = False) -> str:
    """*name*'s verdict against the row's target: met, MISSED, or none in quick mode."""
    met = row.target_met(name)
    if met is None:
        return ""
    if quick:
        return QUICK_VERDICT
    if row.target is not None and row.target.kind == "django":
        ratio = row.ratio(name, base="django")
        detail = f" ({ratio:.2f}x Django's)" if ratio is not None else ""
        return ("met" if met else "MISSED") + detail
    return "met" if met else "MISSED"


# -- the header ------------------------------------------------------------------------


def environment(implementations: list[Implementation], mode: str) -> dict[str, Any]:
    """When and where the run happened, and the versions of everything measured."""
    versions = {impl.name: impl.version() for impl in implementations if impl.distribution}
    try:
        import psygnal

        compiled = bool(getattr(psygnal, "_compiled", False))
        versions["psygnal"] += " (compiled with mypyc)" if compiled else " (pure Python)"
    except (ImportError, KeyError):
        pass
    if "tocsin" in versions:
        import tocsin

        versions["tocsin"] += (
            " (compiled send path; tocsin-pure: its pure-Python path)"
            if tocsin.compiled
            else " (NOT compiled: the tocsin and tocsin-pure columns are both pure Python)"
        )
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        versions["asgiref"] = importlib.metadata.version("asgiref")
    return {
        "tocsin_source": source_revision(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": sys.version.replace("\n", " "),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "mode": mode,
        "versions": versions,
    }


def source_revision() -> str:
    """The git commit of the tocsin being measured, marked if the tree has changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit} (with uncommitted changes in src/)" if changed else commit


# -- output ----------------------------------------------------------------------------


def markdown(env: dict[str, Any], rows: list[Row], names: list[str], notes: list[str]) -> str:
    peers = [name for name in names if name != "floor"]
    lines = [
        "# tocsin benchmark results",
        "",
        f"- date: {env['date']}",
        f"- python: {env['python']} ({env['implementation']})",
        f"- platform: {env['platform']} ({env['machine']})",
        f"- mode: {env['mode']}",
        f"- tocsin source: {env['tocsin_source']}",
        "- versions: "
        + ", ".join(f"{name} {version}" for name, version in env["versions"].items()),
        "",
        "Samples are taken round-robin across the implementations, in one process. "
        "`1.07x (412 ns)`: the median, over the rounds, of the ratio to the floor's "
        "sample in the same round; then the median absolute figure (time per "
        "operation, or bytes per receiver).",
        "",
        "| case | tocsin target | floor | "
        + " | ".join(peers)
        + " | tocsin vs target | tocsin-pure vs target |",
        "|---|---|---|" + "---|" * len(peers) + "---|---|",
    ]
    for row in rows:
        cells = [
            row.case,
            row.target.describe() if row.target else "",
            format_cell(row, "floor"),
            *(format_cell(row, name) for name in peers),
            format_met(row, quick=env["mode"] == "quick"),
            format_met(row, "tocsin-pure", quick=env["mode"] == "quick"),
        ]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    if notes or any(row.note for row in rows):
        lines += ["", "Notes:", ""]
        lines += [f"- {note}" for note in notes]
        lines += [f"- {row.case}: {row.note}" for row in rows if row.note]
    return "\n".join(lines) + "\n"


def as_json(env: dict[str, Any], rows: list[Row], notes: list[str]) -> dict[str, Any]:
    return {
        "environment": env,
        "notes": notes,
        "rows": [
            {
                **asdict(row),
                "ratios": {name: row.ratio(name) for name in row.cells if name != "floor"},
                "target_met": None if env["mode"] == "quick" else row.target_met(),
                "pure_target_met": (
                    None if env["mode"] == "quick" else row.target_met("tocsin-pure")
                ),
            }
            for row in rows
        ],
    }


def write(output: Path, text: str, data: dict[str, Any]) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    md_path, json_path = output / "results.md", output / "results.json"
    md_path.write_text(text, encoding="utf-8")
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return [md_path, json_path]
