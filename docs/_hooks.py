"""MkDocs hooks: make the pictures the pages show, from the sources they picture.

Run before MkDocs collects the pages, so the generated files in ``docs/generated/`` are
part of the site. They are never committed: a stale picture cannot outlive its data.

- ``delivery.svg``: the delivery flow of a remote event, from ``diagrams/delivery.dot``
  (Graphviz);
- ``bench-*.svg``: the benchmark figures, from ``benchmarks/results*.json`` (matplotlib).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
GENERATED = DOCS / "generated"
# Not "mkdocs": its warnings fail a strict build, and a missing dot is not the docs' fault.
log = logging.getLogger("tocsin.docs")
_PLACEHOLDER = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="40">'
    '<text x="10" y="25" font-family="sans-serif" font-size="14">{message}</text></svg>'
)

# Which results file shows which interpreter; each is written by `make bench`.
RESULTS = {
    "3.11": ROOT / "benchmarks" / "results.json",
    "3.13": ROOT / "benchmarks" / "results-3.13" / "results.json",
}
PEERS = ("tocsin", "tocsin-pure", "django", "blinker", "psygnal")
COLOURS = {
    "tocsin": "#e4572e",
    "tocsin-pure": "#f3a712",
    "django": "#0c4b33",
    "blinker": "#4c78a8",
    "psygnal": "#7f7f7f",
}


def on_pre_build(config: Any) -> None:
    GENERATED.mkdir(exist_ok=True)
    _render_dot(DOCS / "diagrams" / "delivery.dot", GENERATED / "delivery.svg")
    for python, path in RESULTS.items():
        _plot_benchmarks(path, GENERATED / f"bench-{python}.svg", python)


def _render_dot(source: Path, target: Path) -> None:
    dot = shutil.which("dot")
    if dot is None:
        message = "Graphviz's dot program draws this diagram: apt-get install graphviz"
        if os.environ.get("CI") == "true":
            raise SystemExit(message)
        log.warning(message)
        target.write_text(_PLACEHOLDER.format(message=message))
        return
    subprocess.run([dot, "-Tsvg", str(source), "-o", str(target)], check=True)


def _plot_benchmarks(results: Path, target: Path, python: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    data = json.loads(results.read_text())
    # The time-per-operation cases only: bytes and the one-off costs have their own units.
    rows = [row for row in data["rows"] if row["unit"] == "ns"]
    peers = [p for p in PEERS if any(_ratio(row, p) for row in rows)]
    figure, axes = pyplot.subplots(figsize=(10, 0.3 * len(rows) * len(peers) / 2 + 1.5))
    height = 0.8 / len(peers)
    for index, peer in enumerate(peers):
        positions = [r + index * height for r in range(len(rows))]
        ratios = [_ratio(row, peer) or 0.0 for row in rows]
        axes.barh(positions, ratios, height=height, label=peer, color=COLOURS[peer])
    axes.set_yticks([r + 0.4 - height / 2 for r in range(len(rows))])
    axes.set_yticklabels([_short(row["case"]) for row in rows], fontsize=8)
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.axvline(1.0, color="black", linewidth=1)
    axes.set_xlabel("time as a ratio to the plain-loop floor (log scale; lower is faster)")
    versions = data["environment"]["versions"]
    axes.set_title(
        f"CPython {python}: tocsin {versions.get('tocsin', '?')}, Django "
        f"{versions.get('django', '?')}, blinker {versions.get('blinker', '?')}, psygnal "
        f"{versions.get('psygnal', '?').split()[0]}",
        fontsize=9,
    )
    axes.legend(fontsize=9, loc="upper right")
    figure.tight_layout()
    figure.savefig(target, format="svg")
    pyplot.close(figure)


def _ratio(row: dict[str, Any], peer: str) -> float | None:
    cell = row["cells"].get(peer)
    floor = row["cells"].get("floor")
    if not cell or not floor or cell.get("value") is None or cell.get("failed"):
        return None
    return float(cell["value"]) / float(floor["value"])


def _short(case: str) -> str:
    """A case's name, short enough for an axis label and still telling cases apart."""
    for long, short in _ABBREVIATIONS:
        case = case.replace(long, short)
    return case


_ABBREVIATIONS = (
    (", use_caching=False", " (no cache)"),
    (", use_caching=True", " (cache)"),
    ("sender filtering", "filtering"),
    ("weak bound-method receivers' owners die", "weak receivers die"),
    ("then the first send (1 live receiver)", "then the first send"),
    ("mixed: 20 signals, 200 receivers, 50 senders", "mixed, 20 signals"),
)
