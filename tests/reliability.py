"""The reliability table: for each fault scenario, how many tests were tried and passed.

Tests opt in with ``@pytest.mark.scenario("N short name")`` (N is the item of the fault
issue). Run the table on its own::

    python tests/reliability.py              # every scenario test, unit and real-kernel
    python tests/reliability.py -m "scenario and not kernel"   # extra pytest arguments

or add it to any pytest run as a plugin (from the repository root)::

    python -m pytest -p tests.reliability tests

The table reads the outcome pytest recorded for each test: a test is *tried* when it
ran (set-up, call and teardown), and *passed* when none of those phases failed.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ScenarioTally", "main"]


class ScenarioTally:
    """A pytest plugin that counts outcomes per ``scenario`` marker."""

    def __init__(self, *, summary: bool = True) -> None:
        self.summary = summary  # print the table in pytest's terminal summary
        self.scenarios: dict[str, list[str]] = {}  # nodeid -> scenario names
        self.outcome: dict[str, str] = {}  # nodeid -> passed / failed / skipped

    # -- hooks -------------------------------------------------------------------------
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            names = [m.args[0] for m in item.iter_markers("scenario") if m.args]
            if names:
                self.scenarios[item.nodeid] = list(dict.fromkeys(names))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.nodeid not in self.scenarios:
            return
        before = self.outcome.get(report.nodeid)
        if report.failed:
            self.outcome[report.nodeid] = "failed"
        elif report.skipped and before is None:
            self.outcome[report.nodeid] = "skipped"
        elif report.when == "call" and report.passed and before is None:
            self.outcome[report.nodeid] = "passed"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.summary:
            return
        terminalreporter.write_sep("=", "reliability: fault scenarios")
        for line in self.table().splitlines():
            terminalreporter.write_line(line)

    # -- the table -----------------------------------------------------------------------
    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = defaultdict(lambda: {"tried": 0, "passed": 0, "failed": 0, "skipped": 0})
        for nodeid, names in self.scenarios.items():
            outcome = self.outcome.get(nodeid)
            for name in names:
                row = out[name]
                if outcome == "skipped":
                    row["skipped"] += 1
                elif outcome in ("passed", "failed"):
                    row["tried"] += 1
                    row[outcome] += 1
        return dict(out)

    def table(self) -> str:
        counts = self.counts()
        if not counts:
            return "no scenario tests ran"
        width = max(len("scenario"), *(len(n) for n in counts))
        lines = [f"{'scenario':<{width}} | tried | passed", f"{'-' * width}-|-------|-------"]
        for name in sorted(counts, key=_order):
            row = counts[name]
            mark = "" if row["failed"] == 0 else f"   <- {row['failed']} failed"
            skip = f"   ({row['skipped']} skipped)" if row["skipped"] else ""
            lines.append(f"{name:<{width}} | {row['tried']:>5} | {row['passed']:>6}{mark}{skip}")
        tried = sum(r["tried"] for r in counts.values())
        passed = sum(r["passed"] for r in counts.values())
        failed = sum(r["failed"] for r in counts.values())
        skipped = sum(r["skipped"] for r in counts.values())
        whole = sum(1 for r in counts.values() if r["tried"] and r["passed"] == r["tried"])
        lines.append(f"{'-' * width}-|-------|-------")
        lines.append(f"{'total':<{width}} | {tried:>5} | {passed:>6}")
        lines.append(
            f"{len(counts)} scenarios ({whole} fully passing): {passed} passed, {failed} failed"
            + (f", {skipped} skipped" if skipped else "")
        )
        return "\n".join(lines)

    @property
    def ok(self) -> bool:
        counts = self.counts()
        return bool(counts) and all(r["failed"] == 0 for r in counts.values())


def _order(name: str) -> tuple[int, str]:
    head = name.split(" ", 1)[0]
    return (int(head), name) if head.isdigit() else (10**6, name)


# ``-p tests.reliability`` loads this module as a plugin: one tally per session.
_plugin_tally: ScenarioTally | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _plugin_tally
    if not any(isinstance(p, ScenarioTally) for p in config.pluginmanager.get_plugins()):
        _plugin_tally = ScenarioTally()
        config.pluginmanager.register(_plugin_tally, "reliability-tally")


def main(argv: list[str] | None = None) -> int:
    """Run the scenario tests and print the table; exit 0 only when every scenario passed."""
    args = list(sys.argv[1:] if argv is None else argv)
    here = Path(__file__).resolve().parent
    if not any(a == "-m" or a.startswith("-m") for a in args):
        args = ["-m", "scenario", *args]
    tally = ScenarioTally(summary=False)  # printed below, after pytest's own summary
    code = pytest.main(["-q", "-p", "no:cacheprovider", "--rootdir", str(here.parent), *args, str(here)],
                       plugins=[tally])
    print()
    print(tally.table())
    return 0 if code == 0 and tally.ok else 1


if __name__ == "__main__":
    sys.exit(main())
