"""The benchmark report: verdicts against the targets only from full runs."""

from __future__ import annotations

from typing import Any

import pytest
from benchmarks.report import Cell, Row, Target, as_json, markdown


def env(mode: str) -> dict[str, Any]:
    return {
        "date": "today",
        "python": "3.x",
        "implementation": "CPython",
        "platform": "here",
        "machine": "x86_64",
        "mode": mode,
        "tocsin_source": "abc1234",
        "versions": {},
    }


def rows() -> list[Row]:
    def measured(floor: float, tocsin: float) -> dict[str, Cell]:
        return {
            "floor": Cell(value=floor, samples=[floor]),
            "tocsin": Cell(value=tocsin, samples=[tocsin]),
        }

    return [
        Row("send, 1 receiver", "ns", measured(100, 300), Target("<= 1.1x floor", 1.1)),
        Row("send, 10 receivers", "ns", measured(100, 105), Target("<= 1.1x floor", 1.1)),
        Row("connect", "ns", measured(100, 500)),
    ]


def verdicts(text: str) -> list[str]:
    table = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    return [line[1:-1].split("|")[-1].strip() for line in table[1:]]


def test_a_full_run_says_met_or_missed() -> None:
    text = markdown(env("full"), rows(), ["floor", "tocsin"], [])
    assert verdicts(text) == ["MISSED", "met", ""]
    assert [row["target_met"] for row in as_json(env("full"), rows(), [])["rows"]] == [
        False,
        True,
        None,
    ]


@pytest.mark.parametrize("tocsin", [300.0, 105.0])
def test_a_quick_run_never_judges_against_the_targets(tocsin: float) -> None:
    row = Row(
        "send",
        "ns",
        {"floor": Cell(value=100, samples=[100]), "tocsin": Cell(value=tocsin, samples=[tocsin])},
        Target("<= 1.1x floor", 1.1),
    )
    text = markdown(env("quick"), [row], ["floor", "tocsin"], [])
    assert "MISSED" not in text
    assert verdicts(text) == ["(quick mode: not comparable)"]
    assert as_json(env("quick"), [row], [])["rows"][0]["target_met"] is None
