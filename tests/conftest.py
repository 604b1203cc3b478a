"""Shared test setup: the operator package is imported from operator/ (never as `operator`).

In CI (CI set) a skipped test fails the run: a skip there hides a proof that did not run (a real node that did
not come up, a leftover operator, a missing tool), and a green run must mean every proof ran.
"""

from __future__ import annotations

import collections
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "operator"))
sys.path.insert(0, str(ROOT / "hack"))  # podenv: pods' processes on the host, for kwok nodes


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and session.exitstatus == pytest.ExitCode.OK:
        names = ", ".join(sorted({r.nodeid for r in skipped})[:10])
        sys.stderr.write(f"\nCI: {len(skipped)} test(s) skipped, which fails the run: {names}\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Time by test module (its tests' setup, call and teardown, module fixtures included), the largest first:
    where make test's time budget goes (docs/development.md, CI)."""
    seconds: collections.Counter[str] = collections.Counter()
    for reports in terminalreporter.stats.values():
        for report in reports:
            if isinstance(report, pytest.TestReport):
                seconds[report.nodeid.split("::")[0]] += report.duration
    if seconds:
        terminalreporter.section("time by module")
        for module, spent in seconds.most_common():
            terminalreporter.write_line(f"{spent:8.1f}s {module}")
