"""``ziggeo-async batch create|delete``: a JSONL job that resumes without losing or redoing work.

The ``--out`` file is the job's journal (see ``_journal``). On a resume:

- a line that is done is skipped;
- a line that failed in a way that proves nothing was done (a bad line, a 4xx other
  than 408, a 503, a connection that was never made; any failed delete, since a delete can be sent
  twice without harm) runs again, as it reads now: fix the line and rerun;
- a line whose outcome is unknown (sent, and no answer recorded; a create that broke
  off after it may have reached Ziggeo, or that got a 408 or a 5xx) is reported and not sent
  again, since a second create could issue a duplicate, unless ``--retry-unknown``.

A resume is refused when the journal belongs to another job, or when a line that is
done or unknown reads differently now (edited, or moved by an inserted line).

The first SIGINT or SIGTERM (what process managers send) stops taking lines and
waits up to ``grace`` seconds for the requests in flight; a second one (or the end
of the wait) stops at once, and what was in flight is recorded as unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal, TextIO

import anyio
import attrs

from .._core.errors import (
    APIConnectionError,
    APIStatusError,
    Failure,
    ValidationError,
    ZiggeoError,
)
from .._core.models import AuthToken
from .._http import classify_failure
from .._request.batch import BatchResult, BatchRun
from ._errors import UsageError
from ._journal import (
    JournalWriter,
    LineRecord,
    check_job,
    input_lines,
    line_digest,
    read_journal,
    run_entry,
)
from ._progress import Progress

__all__ = ["BatchJob", "parse_item"]

Kind = Literal["create", "delete"]
_REQUEST_TIMEOUT = 408
_SERVICE_UNAVAILABLE = 503
_FIRST_SERVER_ERROR = 500


class InputLineError(ValueError):
    """An input line that cannot be an item."""


def _version(path: Path) -> tuple[int, int, int]:
    """What changes when a file is written to or replaced."""
    status = path.stat()
    return status.st_ino, status.st_size, status.st_mtime_ns


class _NotStartedError(ZiggeoError):
    """A line taken from the input after the job was told to stop: it was never sent."""


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


def created_nothing(kind: Kind, error: ZiggeoError) -> bool:
    """Whether a failure proves the request had no effect, so sending it again is safe."""
    if kind == "delete":
        return True  # deleting twice does no harm
    if isinstance(error, APIStatusError):
        # A 4xx refuses the request; a 503 says Ziggeo did not act (the retry policy's view).
        # A 408 may have come after the request was acted on: the policy does not retry a
        # create answered so, and a resume does not send it again either.
        status = error.status_code
        if status == _REQUEST_TIMEOUT:
            return False
        return status < _FIRST_SERVER_ERROR or status == _SERVICE_UNAVAILABLE
    if isinstance(error, APIConnectionError):
        # The cause is a cleaned copy of the HTTP stack's exception, of the same class.
        classified = None if error.__cause__ is None else classify_failure(error.__cause__)
        return classified is not None and classified[0] is not Failure.MAYBE_SENT
    return isinstance(error, ValidationError)


@attrs.frozen
class _Pending:
    line: int
    digest: str
    item: Any


class BatchJob:
    """One run of a batch over ``input_path``, journaled in ``out_path``."""

    def __init__(
        self,
        kind: Kind,
        input_path: Path,
        out_path: Path,
        *,
        retry_unknown: bool,
        quiet: bool,
        stderr: TextIO,
        show_progress: bool,
        grace: float,
        durable: bool = True,
    ) -> None:
        self.kind = kind
        self.input_path = input_path
        self.out_path = out_path
        self.retry_unknown = retry_unknown
        self.quiet = quiet
        self.stderr = stderr
        self.show_progress = show_progress
        self.grace = grace
        self.durable = durable
        self.succeeded = self.failed = self.unknown = self.skipped = 0
        self.interrupted = False
        self._stopped_at_once = False
        self._input_version: tuple[int, int, int] | None = None
        self._input_changed = False
        self._header: dict[str, Any] = {}
        self._lines: dict[int, LineRecord] = {}
        self._new_journal = True
        self._pending_total = 0
        self._in_flight: dict[int, _Pending] = {}
        self._writer: JournalWriter | None = None
        self._stop_scope: anyio.CancelScope | None = None
        self._progress = Progress(0, stderr, enabled=False)

    # -- before anything is sent -----------------------------------------------------

    def prepare(self, header: dict[str, Any]) -> None:
        """Read the journal (the caller holds its lock) and refuse a resume of another
        job or of a changed input (``UsageError``); counts what is left to send."""
        self._input_version = _version(self.input_path)  # before it is read
        contents = read_journal(self.out_path)
        check_job(self.out_path, contents, header)
        self._header = header
        self._new_journal = contents.empty
        self._lines = contents.lines
        checked = {number for number, record in self._lines.items() if record.state != "failed"}
        pending = 0
        for number, raw in input_lines(self.input_path):
            record = self._lines.get(number)
            if record is not None and number in checked:
                checked.discard(number)
                if record.input_sha256 != line_digest(raw):
                    self._refuse_changed(number, record)
            if raw.strip() and self._should_send(record):
                pending += 1
        if checked:
            self._refuse_changed(min(checked), self._lines[min(checked)])
        self._pending_total = pending

    def _refuse_changed(self, number: int, record: LineRecord) -> None:
        what = {"done": "done", "started": "sent"}.get(record.state, "of unknown outcome")
        raise UsageError(
            f"line {number} of {self.input_path} differs from the line {self.out_path} "
            f"recorded as {what} (edited, or lines added or removed before it?); "
            f"resume with the input as it was, or use another --out"
        )

    def _should_send(self, record: LineRecord | None) -> bool:
        if record is None or record.state == "failed":
            return True
        return record.state != "done" and self.retry_unknown

    # -- the run -----------------------------------------------------------------------

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.failed or self.unknown else 0

    def summary(self) -> str:
        text = (
            f"batch {self.kind}: {self.succeeded} ok, {self.failed} failed, "
            f"{self.unknown} outcome unknown, {self.skipped} already done -> {self.out_path}"
        )
        if self.interrupted:
            text += "; interrupted: run the same command again to go on"
        return text

    def _say(self, message: str) -> None:
        # On a terminal, wipe the progress bar first so the message gets a line of its own.
        wipe = "\r\x1b[K" if self._progress.enabled else ""
        self.stderr.write(f"{wipe}ziggeo-async: {message}\n")
        self.stderr.flush()

    def _report(self, line: int, message: str, *, unknown: bool = False) -> None:
        if not (unknown and self.quiet):
            self._say(f"line {line}: {message}")

    @property
    def _stop(self) -> anyio.CancelScope:
        assert self._stop_scope is not None
        return self._stop_scope

    @property
    def _journal(self) -> JournalWriter:
        assert self._writer is not None
        return self._writer

    def _items(self) -> Iterator[_Pending]:
        """The lines to send, pulled lazily by the workers; stops when told to."""
        for number, raw in input_lines(self.input_path):
            if self.interrupted or self._journal.error is not None:
                return
            if _version(self.input_path) != self._input_version:
                # Edited in place, lines may have moved: this line may be one already sent.
                self._input_changed = True
                return
            if not raw.strip():
                continue
            record = self._lines.get(number)
            if record is not None and record.state == "done":
                self.skipped += 1
                continue
            if record is not None and record.state != "failed" and not self.retry_unknown:
                self._unknown_from_earlier_run(number, record)
                continue
            digest = line_digest(raw)
            try:
                item = parse_item(self.kind, raw.decode("utf-8"))
            except (InputLineError, UnicodeDecodeError) as error:
                reason = "not valid UTF-8" if isinstance(error, UnicodeDecodeError) else str(error)
                self.failed += 1
                self._progress.advance()
                self._report(number, f"{reason}; skipped")
                self._journal.record(
                    {
                        "line": number,
                        "event": "result",
                        "ok": False,
                        "input_sha256": digest,
                        "error": {"type": "InputLineError", "message": reason},
                    }
                )
                continue
            yield _Pending(number, digest, item)

    def _unknown_from_earlier_run(self, number: int, record: LineRecord) -> None:
        self.unknown += 1
        self._report(
            number,
            "outcome unknown (sent by an earlier run, no result recorded); not sent again "
            "— check it, or rerun with --retry-unknown",
            unknown=True,
        )
        if record.state == "started":
            self._journal.record(
                {
                    "line": number,
                    "event": "unknown",
                    "input_sha256": record.input_sha256,
                    "reason": "no result recorded",
                }
            )

    async def _send(
        self, send: Callable[[Any], Awaitable[object]], index: int, pending: _Pending
    ) -> object:
        if self.interrupted:
            raise _NotStartedError("not started")
        self._in_flight[index] = pending
        self._journal.append(
            {"line": pending.line, "event": "started", "input_sha256": pending.digest}
        )
        if not await self._journal.commit():
            self._in_flight.pop(index)  # not sent
            self._stop.cancel()  # the journal broke: nothing more may be sent
            raise _NotStartedError("the journal cannot be written")
        return await send(pending.item)

    def _record(self, result: BatchResult[Any]) -> None:
        pending = self._in_flight.pop(result.index, None)
        if pending is None:
            return  # taken after the stop, never started
        self._progress.advance()
        entry: dict[str, Any] = {"line": pending.line}
        error = result.error
        if error is None:
            self.succeeded += 1
            entry.update(event="result", ok=True, input_sha256=pending.digest)
            if isinstance(result.value, AuthToken):
                entry["token"] = result.value.to_json()
            else:
                entry["deleted"] = pending.item
        elif created_nothing(self.kind, error):
            self.failed += 1
            self._report(pending.line, str(error))
            entry.update(event="result", ok=False, input_sha256=pending.digest)
            entry["error"] = _error_json(error)
        else:
            # A create that may have reached Ziggeo before it broke off.
            self.unknown += 1
            self._report(pending.line, f"outcome unknown: {error}", unknown=True)
            entry.update(event="unknown", input_sha256=pending.digest, error=_error_json(error))
        self._journal.record(entry)

    def _record_cut_short(self) -> None:
        """Lines in flight when the run stopped at once: sent, or about to be, unanswered."""
        for pending in sorted(self._in_flight.values(), key=lambda pending: pending.line):
            self.unknown += 1
            self._report(
                pending.line, "outcome unknown: stopped before the answer came", unknown=True
            )
            self._journal.record(
                {
                    "line": pending.line,
                    "event": "unknown",
                    "input_sha256": pending.digest,
                    "reason": "interrupted",
                }
            )
        self._in_flight.clear()

    async def _on_interrupt(self, signum: signal.Signals) -> None:
        ctrl_c = signum == signal.SIGINT
        if not self.interrupted:
            self.interrupted = True
            self._stop.deadline = anyio.current_time() + self.grace
            what = "interrupted" if ctrl_c else f"terminated ({signum.name})"
            again = "Ctrl-C again" if ctrl_c else f"{signum.name} again or Ctrl-C"
            self._say(
                f"{what}: taking no more lines; waiting up to {self.grace:g} s for the "
                f"{len(self._in_flight)} requests in flight ({again} to stop now)"
            )
        else:
            self._stopped_at_once = True
            self._stop.cancel()
            self._say(f"{'interrupted' if ctrl_c else 'terminated'} again: stopping now")

    @contextlib.contextmanager
    def _interrupts_handled(self) -> Iterator[None]:
        """SIGINT and SIGTERM stop the job gracefully while the run lasts (main thread,
        asyncio only): a process manager's stop is as safe as a Ctrl-C."""
        handling: set[asyncio.Task[None]] = set()

        def interrupted(signum: signal.Signals) -> None:
            # A signal callback runs outside any task; anyio's calls need one.
            task = loop.create_task(self._on_interrupt(signum))
            handling.add(task)
            task.add_done_callback(handling.discard)

        with contextlib.ExitStack() as handled:
            try:
                loop = asyncio.get_running_loop()
                if threading.current_thread() is not threading.main_thread():
                    raise RuntimeError  # noqa: TRY301 - signals reach the main thread only
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(signum, interrupted, signum)
                    handled.callback(loop.remove_signal_handler, signum)
            except (RuntimeError, NotImplementedError):
                handled.close()  # no graceful stop here: the signals act as usual
            yield

    async def run(
        self,
        journal: BinaryIO,
        send: Callable[[Any], Awaitable[object]],
        *,
        concurrency: int,
        max_per_second: float | None,
    ) -> int:
        """Send the pending lines through ``send(item)``, ``concurrency`` at a time."""
        self._writer = JournalWriter(journal, durable=self.durable)
        self._stop_scope = anyio.CancelScope()
        if self._new_journal:
            self._journal.append(self._header)
        self._journal.append(run_entry())
        if not await self._journal.commit():
            raise self._journal_error()
        self._progress = Progress(
            self._pending_total,
            self.stderr,
            enabled=self.show_progress,
            label=f"{self.kind} ",
        )

        operation = functools.partial(self._send, send)
        results = BatchRun(
            self._items(), operation, concurrency=concurrency, max_per_second=max_per_second
        )
        with self._interrupts_handled(), self._stop:
            async with results:
                async for result in results:
                    self._record(result)
        for result in results.abandoned:
            if result.ok:  # answered as the run stopped, and not read: a token made among them
                self._record(result)
        if self._stop.cancelled_caught and self.interrupted and not self._stopped_at_once:
            self._say(f"the requests in flight did not all answer within {self.grace:g} s")
        self._record_cut_short()
        self._progress.finish()
        if not await self._journal.commit():
            raise self._journal_error()
        if self._input_changed:
            raise UsageError(
                f"{self.input_path} changed while the run was reading it: stopped taking "
                f"lines ({self.summary()}); run the same command again to check it against "
                f"the journal and go on"
            )
        return self.exit_code

    def _journal_error(self) -> OSError:
        error = self._journal.error
        assert error is not None
        return OSError(error.errno, f"cannot write the journal {self.out_path}: {error.strerror}")
