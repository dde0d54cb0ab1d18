"""The fault suite's harness: secret canaries around every test, servers on loopback.

Every test here runs with DEBUG logging on ``ziggeo_async``, ``httpx2``, ``httpcore2``,
``httpx`` and ``httpcore``; when it ends, every log record, every exception the test handed to
the canary (with its whole cause/context chain, its ``vars`` and its pickle) and the
repr of every client it made are searched for the canary secrets.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests._servers import ServerGroup
from tests.faults._support import LEDGER, Canary

_LOGGERS = ("ziggeo_async", "httpx2", "httpcore2", "httpx", "httpcore")


class _Collector(logging.Handler):
    def __init__(self, canary: Canary) -> None:
        super().__init__(logging.DEBUG)
        self._canary = canary

    def emit(self, record: logging.LogRecord) -> None:
        self._canary.records.append(record)


@pytest.fixture(autouse=True)
def canary() -> Iterator[Canary]:
    canary = Canary()
    handler = _Collector(canary)
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    try:
        yield canary
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
    hits = canary.hits()
    LEDGER.canary_hits += len(hits)
    assert not hits, f"secrets leaked: {hits}"


@pytest.fixture
def servers() -> Iterator[ServerGroup]:
    """Start misbehaving servers on 127.0.0.1 for one test; all stop when it ends."""
    with ServerGroup() as group:
        yield group


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not LEDGER.runs:
        return
    runs = ", ".join(f"{backend}: {count}" for backend, count in sorted(LEDGER.runs.items()))
    terminalreporter.write_sep("-", "fault suite")
    terminalreporter.write_line(
        f"{len(LEDGER.scenarios)} scenarios, {sum(LEDGER.runs.values())} runs ({runs}); "
        f"tokens lost {LEDGER.lost}, duplicated {LEDGER.duplicated}; "
        f"connections leaked {LEDGER.leaked}; calls cancelled {LEDGER.cancellations}; "
        f"canary hits {LEDGER.canary_hits} "
        f"(checked {LEDGER.exceptions_checked} exceptions, "
        f"{LEDGER.log_records_checked} log records)"
    )
