"""The signal -> receiver graph, as Mermaid, Graphviz DOT, or (through Graphviz) SVG/PNG.

Signals and receivers are grouped by the module that defines them; an edge goes from a
signal to each receiver connected to it, labelled with the sender filter (and priority,
after-commit), so "what runs when X is sent" reads left to right.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tocsin.inspect import ReceiverInfo, SignalInfo

__all__ = ["FORMATS", "GraphvizNotFound", "render", "to_dot", "to_mermaid"]

FORMATS = ("mermaid", "dot", "svg", "png")


class GraphvizNotFound(RuntimeError):
    """SVG or PNG output was asked for, and Graphviz's ``dot`` program is not installed."""


@dataclass(frozen=True)
class _Node:
    id: str
    label: str
    module: str
    kind: str  # "signal" or "receiver"


@dataclass(frozen=True)
class _Edge:
    source: str
    target: str
    label: str


def _short_name(name: str, module: str) -> str:
    prefix = module + "."
    return name[len(prefix) :] if module and name.startswith(prefix) else name


def _edge_label(receiver: ReceiverInfo) -> str:
    parts = [] if receiver.sender is None else [f"sender={receiver.sender}"]
    if receiver.priority:
        parts.append(f"priority={receiver.priority}")
    if receiver.after_commit:
        parts.append("after commit")
    if not receiver.weak:
        parts.append("strong")
    return ", ".join(parts)


def _layout(signals: Iterable[SignalInfo]) -> tuple[list[_Node], list[_Edge]]:
    """Nodes (one per signal, one per distinct receiver) and edges, in a stable order."""
    nodes: dict[object, _Node] = {}
    edges: list[_Edge] = []
    for info in signals:
        signal_key: object = ("signal", id(info.signal))
        if signal_key not in nodes:
            module = info.module or "(no module)"
            label = _short_name(info.name, module)
            nodes[signal_key] = _Node(f"s{len(nodes)}", label, module, "signal")
        for receiver in info.receivers:
            # The same function connected to several signals is one node.
            receiver_key: object = ("receiver", receiver.name, receiver.file, receiver.line)
            if receiver_key not in nodes:
                module = receiver.module or "(no module)"
                label = (
                    f"partial({receiver.qualname})"
                    if receiver.kind == "partial"
                    else _short_name(receiver.name, module)
                )
                if receiver.is_async:
                    label = f"async {label}"
                nodes[receiver_key] = _Node(f"r{len(nodes)}", label, module, "receiver")
            edges.append(
                _Edge(nodes[signal_key].id, nodes[receiver_key].id, _edge_label(receiver))
            )
    return list(nodes.values()), edges


def _by_module(nodes: Sequence[_Node]) -> dict[str, list[_Node]]:
    modules: dict[str, list[_Node]] = {}
    for node in nodes:
        modules.setdefault(node.module, []).append(node)
    return dict(sorted(modules.items()))


def to_mermaid(signals: Iterable[SignalInfo]) -> str:
    """The graph as a Mermaid flowchart (renders on GitHub in a ```mermaid block)."""
    nodes, edges = _layout(signals)
    lines = ["flowchart LR"]
    for number, (module, members) in enumerate(_by_module(nodes).items()):
        lines.append(f'    subgraph m{number}["{_mermaid_text(module)}"]')
        for node in members:
            text = _mermaid_text(node.label)
            shape = f'(["{text}"])' if node.kind == "signal" else f'["{text}"]'
            lines.append(f"        {node.id}{shape}")
        lines.append("    end")
    for edge in edges:
        arrow = f'-- "{_mermaid_text(edge.label)}" -->' if edge.label else "-->"
        lines.append(f"    {edge.source} {arrow} {edge.target}")
    return "\n".join(lines) + "\n"


def to_dot(signals: Iterable[SignalInfo]) -> str:
    """The graph in Graphviz's DOT language: one cluster per module."""
    nodes, edges = _layout(signals)
    lines = [
        "digraph tocsin {",
        "    rankdir=LR;",
        '    graph [fontname="Helvetica", fontsize=11];',
        '    node [fontname="Helvetica", fontsize=11];',
        '    edge [fontname="Helvetica", fontsize=9, color="#555555"];',
    ]
    for number, (module, members) in enumerate(_by_module(nodes).items()):
        lines += [
            f"    subgraph cluster_{number} {{",
            f"        label={_dot_string(module)};",
            '        style="rounded,filled"; color="#cccccc"; fillcolor="#f7f7f7";',
        ]
        for node in members:
            style = (
                'shape=ellipse, style=filled, fillcolor="#ffe8a3"'
                if node.kind == "signal"
                else 'shape=box, style="rounded,filled", fillcolor="#d7e9ff"'
            )
            lines.append(f"        {node.id} [label={_dot_string(node.label)}, {style}];")
        lines.append("    }")
    for edge in edges:
        label = f" [label={_dot_string(edge.label)}]" if edge.label else ""
        lines.append(f"    {edge.source} -> {edge.target}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(signals: Iterable[SignalInfo], format: str) -> bytes:
    """The graph in *format* (one of ``FORMATS``), as bytes ready to write to a file.

    SVG and PNG are drawn by Graphviz's ``dot`` program; raises ``GraphvizNotFound``
    (saying how to install it) when it is missing.
    """
    if format == "mermaid":
        return to_mermaid(signals).encode()
    if format == "dot":
        return to_dot(signals).encode()
    if format not in FORMATS:
        raise ValueError(f"Unknown graph format {format!r}: choose from {', '.join(FORMATS)}")
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizNotFound(
            f"Drawing {format.upper()} needs Graphviz's 'dot' program, which is not on the "
            "PATH. Install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew "
            "install graphviz), or use --format mermaid (or dot) instead."
        )
    result = subprocess.run(
        [dot, f"-T{format}"], input=to_dot(signals).encode(), capture_output=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"dot failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def _dot_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _mermaid_text(text: str) -> str:
    # Mermaid has no escape for a double quote inside a quoted label: use its entity.
    # Angle brackets (in reprs) would be read as HTML: entities too.
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
