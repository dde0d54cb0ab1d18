"""``ziggeo-async batch create|delete``: a JSONL job that resumes without losing or redoing work.

The ``--out`` file is the job's journal, one JSON object a line, each flushed when written::

    {"line": 7, "event": "started"}                       before line 7 is sent
    {"line": 7, "event": "result", "ok": true, ...}       its outcome (ok or error)
    {"line": 7, "event": "unknown", ...}                  sent, outcome unknown

A line with a result is done and never sent again. A line that started and has no
result (the job was killed while it was in flight), or whose create broke off after
it may have reached Ziggeo, is *outcome unknown*: Ziggeo may or may not have acted.
It is reported and not sent again, since a second create could issue a duplicate,
unless ``--retry-unknown`` is given.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TextIO

from .._batch import BatchRun
from .._errors import APIConnectionError, APIStatusError, ZiggeoError
from .._models import AuthToken
from ._progress import Progress

__all__ = ["BatchJob", "read_journal"]

Kind = Literal["create", "delete"]
_STARTED, _RESULT, _UNKNOWN = "started", "result", "unknown"


class InputLineError(ValueError):
    """An input line that cannot be an item."""


def read_journal(path: Path) -> dict[int, str]:
    """The last event recorded for each input line number (a torn last line is ignored)."""
    states: dict[int, str] = {}
    if not path.exists():
        return states
    with path.open(encoding="utf-8") as journal:
        for text in journal:
            try:
                entry = json.loads(text)
                line, event = entry["line"], entry["event"]
            except (ValueError, TypeError, KeyError):
                continue  # a write cut short by a kill; the line it named was not finished
            known = isinstance(line, int) and event in (_STARTED, _RESULT, _UNKNOWN)
            if known and states.get(line) != _RESULT:
                states[line] = event
    return states


def parse_item(kind: Kind, text: str) -> Any:
    """One input line as create's arguments (an object) or delete's token (a string)."""
    stripped = text.strip()
    if kind == "delete" and not stripped.startswith(("{", '"')):
        return stripped  # a bare token id
    try:
        item = json.loads(stripped)
    except (ValueError, RecursionError):
        raise InputLineError("not valid JSON") from None
    if kind == "create":
        if not isinstance(item, dict):
            raise InputLineError("expected a JSON object of create's arguments")
        return item
    if isinstance(item, dict):
        if set(item) != {"token"}:
            raise InputLineError('expected {"token": "..."} or a token string')
        item = item["token"]
    if not isinstance(item, str) or not item:
        raise InputLineError("the token must be a non-empty string")
    return item


def _error_json(error: BaseException) -> dict[str, Any]:
    described: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, APIStatusError):
        described["status_code"] = error.status_code
    return described


class BatchJob:
    """One run of a batch over ``input_path``, journaled in ``out_path``."""

    def __init__(
        self,
        kind: Kind,
        input_path: Path,
        out_path: Path,
        *,
        retry_unknown: bool,
        stderr: TextIO,
        show_progress: bool,
    ) -> None:
        self.kind = kind
        self.input_path = input_path
        self.out_path = out_path
        self.retry_unknown = retry_unknown
        self.stderr = stderr
        self.show_progress = show_progress
        self.succeeded = self.failed = self.unknown = self.skipped = 0
        self._states = read_journal(out_path)
        # (input line number, item) of every item handed to the batch, by batch index.
        self._sent: list[tuple[int, Any]] = []
        self._journal: TextIO | None = None
        self._progress = Progress(0, stderr, enabled=False)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or self.unknown else 0

    def summary(self) -> str:
        return (
            f"batch {self.kind}: {self.succeeded} ok, {self.failed} failed, "
            f"{self.unknown} outcome unknown, {self.skipped} already done -> {self.out_path}"
        )

    def _write(self, entry: dict[str, Any]) -> None:
        assert self._journal is not None
        self._journal.write(json.dumps(entry, ensure_ascii=True) + "\n")
        self._journal.flush()

    def _report(self, line: int, message: str) -> None:
        # On a terminal, wipe the progress bar first so the report gets a line of its own.
        wipe = "\r\x1b[K" if self._progress.enabled else ""
        self.stderr.write(f"{wipe}ziggeo-async: line {line}: {message}\n")
        self.stderr.flush()

    def _open_journal(self) -> TextIO:
        needs_newline = False
        if self.out_path.exists() and self.out_path.stat().st_size:
            with self.out_path.open("rb") as existing:
                existing.seek(-1, 2)
                needs_newline = existing.read(1) != b"\n"
        journal = self.out_path.open("a", encoding="utf-8")
        if needs_newline:
            journal.write("\n")  # end a line torn by a kill, so the next entry stands alone
        return journal

    def _pending_count(self) -> int:
        count = 0
        with self.input_path.open(encoding="utf-8") as source:
            for number, text in enumerate(source, start=1):
                if text.strip() and self._should_send(number):
                    count += 1
        return count

    def _should_send(self, number: int) -> bool:
        state = self._states.get(number)
        return state is None or (state != _RESULT and self.retry_unknown)

    def _items(self) -> Iterator[Any]:
        """The items to send, pulled lazily: each is journaled as started just before it goes."""
        with self.input_path.open(encoding="utf-8") as source:
            for number, text in enumerate(source, start=1):
                if not text.strip():
                    continue
                state = self._states.get(number)
                if state == _RESULT:
                    self.skipped += 1
                    continue
                if state is not None and not self.retry_unknown:
                    self._unknown_from_earlier_run(number, state)
                    continue
                try:
                    item = parse_item(self.kind, text)
                except InputLineError as error:
                    self.failed += 1
                    self._progress.advance()
                    self._report(number, f"{error}; skipped")
                    self._write(
                        {
                            "line": number,
                            "event": _RESULT,
                            "ok": False,
                            "error": {"type": "InputLineError", "message": str(error)},
                        }
                    )
                    continue
                self._sent.append((number, item))
                self._write({"line": number, "event": _STARTED})
                yield item

    def _unknown_from_earlier_run(self, number: int, state: str) -> None:
        self.unknown += 1
        self._report(
            number,
            "outcome unknown (sent by an earlier run, no result recorded); not sent again "
            "— check it, or rerun with --retry-unknown",
        )
        if state == _STARTED:
            self._write({"line": number, "event": _UNKNOWN, "reason": "no result recorded"})

    def _record(self, index: int, value: object, error: ZiggeoError | None) -> None:
        number, item = self._sent[index]
        if error is None:
            self.succeeded += 1
            entry: dict[str, Any] = {"line": number, "event": _RESULT, "ok": True}
            if isinstance(value, AuthToken):
                entry["token"] = value.to_json()
            else:
                entry["deleted"] = item
            self._write(entry)
            return
        if self.kind == "create" and isinstance(error, APIConnectionError):
            # The create may have reached Ziggeo before the connection broke.
            self.unknown += 1
            self._report(number, f"outcome unknown: {error}")
            self._write({"line": number, "event": _UNKNOWN, "error": _error_json(error)})
            return
        self.failed += 1
        self._report(number, str(error))
        self._write({"line": number, "event": _RESULT, "ok": False, "error": _error_json(error)})

    async def run(self, results_for: Callable[[Iterator[Any]], BatchRun[Any, Any]]) -> int:
        """Send the pending lines through ``results_for(items)`` (a ``*_many`` call)."""
        self._progress = Progress(
            self._pending_count(),
            self.stderr,
            enabled=self.show_progress,
            label=f"{self.kind} ",
        )
        with self._open_journal() as self._journal:
            async with results_for(self._items()) as results:
                async for result in results:
                    self._record(result.index, result.value, result.error)
                    self._progress.advance()
            self._progress.finish()
        return self.exit_code
