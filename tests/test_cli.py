"""`tocsin inspect` and `tocsin graph`, end to end on the sample application."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = [
    "tests.sample_app",
    "tests.sample_app.billing",
    "--module",
    "signals",
    "--module",
    "receivers",
]


def tocsin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m tocsin ARGS` from the project's root, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "tocsin", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def needs_dot() -> None:
    """Skip when Graphviz is missing, except in CI, where it must be installed."""
    if shutil.which("dot") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Graphviz's dot is missing in CI: apt-get install graphviz")
        pytest.skip("Graphviz's dot program is not installed (apt-get install graphviz)")


def test_inspect_prints_a_plain_table_when_piped() -> None:
    result = tocsin("inspect", *SAMPLE)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["SIGNAL", "RECEIVER", "SENDER", "HOW", "DEFINED", "AT"]
    table = result.stdout
    assert "tests.sample_app.signals.order_placed" in table
    assert "tests.sample_app.receivers.reserve_stock" in table
    assert "sync, weak, priority=10" in table
    assert "sync, weak, after commit, uid=sample-app-email" in table
    assert "tests.sample_app.receivers.Warehouse" in table
    assert "async, weak" in table
    assert "sync, strong" in table
    assert "tests/sample_app/receivers.py:" in table
    assert "tests.sample_app.billing.signals.open_invoice" in table
    assert lines[-1] == "3 signal(s), 8 receiver(s)"
    assert "\x1b[" not in table  # no colours when piped


def test_inspect_json_for_tools() -> None:
    result = tocsin("inspect", "--json", *SAMPLE)
    assert result.returncode == 0, result.stderr
    signals = {signal["name"]: signal for signal in json.loads(result.stdout)}
    assert set(signals) == {
        "tests.sample_app.signals.order_placed",
        "tests.sample_app.signals.order_shipped",
        "tests.sample_app.billing.signals.invoice_paid",
    }
    placed = signals["tests.sample_app.signals.order_placed"]
    first = placed["receivers"][0]
    assert first["name"] == "tests.sample_app.receivers.reserve_stock"
    email = next(r for r in placed["receivers"] if r["qualname"] == "email_customer")
    assert email["after_commit"] is True
    assert email["file"] == str(ROOT / "tests/sample_app/receivers.py")


def test_inspect_lists_a_targets_signals_even_without_receivers() -> None:
    result = tocsin("inspect", "tests.sample_app")
    assert result.returncode == 0, result.stderr
    assert "tests.sample_app.signals.order_shipped  (no receivers)" in result.stdout


def test_inspect_draws_a_rich_table_in_a_terminal() -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "tocsin", "inspect", *SAMPLE],
        cwd=ROOT,
        stdout=terminal,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "400", "TERM": "xterm"},
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the program is done
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert process.wait(timeout=60) == 0
    assert process.stderr is not None
    process.stderr.close()
    text = output.decode()
    assert "tocsin: signals and receivers" in text
    assert "reserve_stock" in text
    assert "┃" in text or "│" in text  # a box-drawn table


def test_inspect_fails_clearly_when_a_target_cannot_be_imported() -> None:
    result = tocsin("inspect", "no_such_package_anywhere")
    assert result.returncode == 1
    assert result.stderr == (
        "tocsin inspect: cannot import 'no_such_package_anywhere': "
        "No module named 'no_such_package_anywhere'\n"
    )
    assert "Traceback" not in result.stderr


def test_graph_as_mermaid_by_default() -> None:
    result = tocsin("graph", *SAMPLE)
    assert result.returncode == 0, result.stderr
    mermaid = result.stdout
    assert mermaid.startswith("flowchart LR\n")
    assert 'subgraph m1["tests.sample_app.receivers"]' in mermaid
    assert '(["order_placed"])' in mermaid
    assert '-- "sender=tests.sample_app.receivers.Warehouse" -->' in mermaid
    assert '["partial(log_event)"]' in mermaid


def test_graph_as_dot(tmp_path: Path) -> None:
    output = tmp_path / "signals.dot"
    result = tocsin("graph", *SAMPLE, "-o", str(output))
    assert result.returncode == 0, result.stderr
    dot = output.read_text()
    assert dot.startswith("digraph tocsin {")
    assert 'label="tests.sample_app.billing.signals";' in dot
    assert 'label="sender=tests.sample_app.receivers.Warehouse"' in dot


def test_graph_as_svg_names_the_receivers(tmp_path: Path) -> None:
    needs_dot()
    output = tmp_path / "signals.svg"
    result = tocsin("graph", *SAMPLE, "--format", "svg", "-o", str(output))
    assert result.returncode == 0, result.stderr
    root = ET.parse(output).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = {element.text for element in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"reserve_stock", "email_customer", "Ledger.record", "Auditor"} <= texts
    assert {"order_placed", "order_shipped", "invoice_paid"} <= texts
    assert "sender=tests.sample_app.receivers.Warehouse" in texts


def test_graph_as_png(tmp_path: Path) -> None:
    needs_dot()
    output = tmp_path / "signals.png"
    assert tocsin("graph", *SAMPLE, "-o", str(output)).returncode == 0
    assert output.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_graph_without_graphviz_says_how_to_install_it(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # a PATH on which there is no dot
    result = tocsin("graph", "tests.sample_app", "--format", "svg", env=env)
    assert result.returncode == 1
    assert "apt-get install graphviz" in result.stderr
    assert "--format mermaid" in result.stderr


def test_help_everywhere() -> None:
    for args in (["--help"], ["inspect", "--help"], ["graph", "--help"]):
        result = tocsin(*args)
        assert result.returncode == 0, result.stderr
        assert "usage: tocsin" in result.stdout
    assert "{mermaid,dot,svg,png}" in tocsin("graph", "--help").stdout


def test_the_console_script_finds_the_project_from_its_directory() -> None:
    script = Path(sys.executable).parent / "tocsin"
    if not script.exists():
        pytest.skip("the tocsin console script is not installed in this environment")
    result = subprocess.run(
        [str(script), "inspect", "tests.sample_app"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "tests.sample_app.signals.order_placed" in result.stdout


# -- lazy subcommands ------------------------------------------------------------------

LOADED_AFTER = """
import contextlib, io, json, sys
from tocsin.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        status = main(sys.argv[1:])
    except SystemExit as exit:  # --help exits
        status = exit.code
print(json.dumps({
    "status": status,
    "stdout": out.getvalue(),
    "modules": sorted(name for name in sys.modules if name.startswith("tocsin")),
}))
"""


def run_and_list_modules(*args: str) -> dict[str, object]:
    """Run the command line in a fresh interpreter; what it printed, and the tocsin
    modules it had imported by the end."""
    result = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    outcome: dict[str, object] = json.loads(result.stdout)
    return outcome


def test_inspect_imports_its_own_module_and_nothing_of_remote() -> None:
    outcome = run_and_list_modules("inspect", *SAMPLE)

    assert outcome["status"] == 0
    assert "tests.sample_app.signals.order_placed" in str(outcome["stdout"])
    modules = outcome["modules"]
    assert isinstance(modules, list)
    assert "tocsin.cli_inspect" in modules
    assert [name for name in modules if name.startswith("tocsin.remote")] == []
    assert [name for name in modules if name.startswith("tocsin.contrib")] == []


def test_help_lists_every_subcommand_without_importing_any() -> None:
    from tocsin.cli import SUBCOMMANDS

    outcome = run_and_list_modules("--help")

    assert outcome["status"] == 0
    for name in SUBCOMMANDS:
        assert f"    {name}" in str(outcome["stdout"])
    modules = outcome["modules"]
    assert isinstance(modules, list)
    loaded = {subcommand.module for subcommand in SUBCOMMANDS.values()} & set(modules)
    assert loaded == set()


def test_a_subcommands_help_shows_its_own_arguments() -> None:
    outcome = run_and_list_modules("graph", "--help")

    assert "--format" in str(outcome["stdout"])
    modules = outcome["modules"]
    assert isinstance(modules, list)
    assert "tocsin.cli_graph" in modules
    assert [name for name in modules if name.startswith("tocsin.remote")] == []


def test_an_unknown_subcommand_is_refused_by_name() -> None:
    result = tocsin("frobnicate")

    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in result.stderr


def test_inspect_lists_receivers_waiting_for_their_lazy_sender() -> None:
    result = tocsin("inspect", "tests.sample_app.waiting")
    assert result.returncode == 0, result.stderr
    (row,) = [line for line in result.stdout.splitlines() if "index_order" in line]
    assert row.split("  ")[0] == "tocsin.signals.post_save"
    assert "waiting for 'SampleAppOrder'" in row
    assert "sync, weak, priority=5" in row
    assert "(no receivers)" not in result.stdout.split("tocsin.signals.post_save")[1]
    assert result.stdout.splitlines()[-1].endswith(
        ", 0 receiver(s), 1 waiting for their sender class"
    )

    result = tocsin("inspect", "--json", "tests.sample_app.waiting")
    assert result.returncode == 0, result.stderr
    (post_save,) = [
        s for s in json.loads(result.stdout) if s["name"] == "tocsin.signals.post_save"
    ]
    assert post_save["receivers"] == []
    (waiting,) = post_save["waiting"]
    assert waiting["name"] == "tests.sample_app.waiting.index_order"
    assert waiting["waiting_for"] == "SampleAppOrder"
    assert waiting["sender"] == "'SampleAppOrder'"
