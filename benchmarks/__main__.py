"""``python -m benchmarks``: run the cases, print the table, write results.md and results.json."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks.cases import CASES
from benchmarks.implementations import all_implementations
from benchmarks.report import Row, as_json, environment, markdown, write
from benchmarks.timing import FULL, QUICK

NOTES = [
    "floor: Django's send contract in the least pure Python: plain functions held "
    "strongly in a dict per sender (O(1) connect and disconnect), a list of receivers "
    "resolved per sender at the first send after a change, and one list comprehension "
    "calling receiver(signal=..., sender=..., **kwargs) and collecting (receiver, "
    "response) pairs",
    "tocsin: the compiled send path (tocsin._speedups: send and send_robust in C); "
    "tocsin-pure: the same Signal with the pure-Python send methods, as "
    "TOCSIN_NO_EXTENSIONS=1 selects; both in the same run. Targets read "
    "'<= compiled (pure <= pure-Python)' where the two differ",
    "every send carries the sender and two keyword arguments; receivers are distinct "
    "functions (psygnal's take the three values positionally, as psygnal emits them)",
    "before timing, every implementation runs each case with counting receivers built "
    "by the same code: a cell reads WRONG unless exactly the right receivers ran",
    "times include the timed loop's own cost (a few ns per operation), the same for all",
    "psygnal: emit() returns None, so it collects no responses (its figures are "
    "measured anyway, as they are); it has no sender filtering, send_robust or "
    "awaitable emit",
    "blinker: no send_robust; send_async awaits the receivers sequentially",
]


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark tocsin against django.dispatch, blinker, psygnal and a floor.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny counts and few repeats: checks that everything runs (figures are noise)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).parent,
        help="where to write results.md and results.json (default: the benchmarks folder)",
    )
    parser.add_argument(
        "--remote",
        action="store_true",
        help="run the cross-process benchmarks against Redis instead (benchmarks/remote.py)",
    )
    parser.add_argument(
        "--cases",
        type=lambda text: [int(part) for part in text.split(",")],
        default=sorted(CASES),
        help="comma-separated case numbers to run (default: all)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    if "--remote" in (sys.argv[1:] if argv is None else argv):
        # The cross-process benchmarks (against Redis): see benchmarks/remote.py.
        from benchmarks import remote

        return remote.main(argv)
    arguments = parse_arguments(argv)
    settings = QUICK if arguments.quick else FULL
    unknown = [number for number in arguments.cases if number not in CASES]
    if unknown:
        print(f"no such case: {unknown}; the cases are {sorted(CASES)}", file=sys.stderr)
        return 2

    implementations = all_implementations()
    started = time.monotonic()
    rows: list[Row] = []
    for number in arguments.cases:
        case_started = time.monotonic()
        case_rows = CASES[number](implementations, settings)
        rows += case_rows
        print(
            f"case {number} done in {time.monotonic() - case_started:.1f} s",
            file=sys.stderr,
            flush=True,
        )

    env = environment(implementations, "quick" if settings.quick else "full")
    names = [impl.name for impl in implementations]
    text = markdown(env, rows, names, NOTES)
    print(text)
    for path in write(arguments.output, text, as_json(env, rows, NOTES)):
        print(f"wrote {path}", file=sys.stderr)
    print(f"total {time.monotonic() - started:.1f} s", file=sys.stderr)

    wrong = [
        f"{row.case}: {name}: {cell.reason}"
        for row in rows
        for name, cell in row.cells.items()
        if cell.failed
    ]
    for line in wrong:
        print(f"WRONG ANSWER: {line}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
