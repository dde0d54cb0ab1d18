"""The batch journal: what a job is, what happened to each input line, kept on disk.

One JSON object a line, appended (``--out``); ``…`` stands for ``"input_sha256": …``::

    {"event": "job", "journal": 1, "operation": "create", "host": …, "app_token": …,
     "job_sha256": …}                                      the first line: whose journal
    {"event": "run", "pid": 4242, "at": "2026-…"}          each run, once it holds the lock
    {"line": 7, "event": "started", …}                     on disk before line 7 is sent
    {"line": 7, "event": "result", "ok": true, …, …}       done
    {"line": 7, "event": "result", "ok": false, …, …}      failed, and nothing was done
    {"line": 7, "event": "unknown", …, …}                  Ziggeo may or may not have acted

The first line says which job the journal belongs to; ``input_sha256`` is the
SHA-256 of the input line as read (no line ending, no byte order mark), so a resume
can tell that the input is the one the journal describes. A run holds an exclusive
``flock`` on the journal for its whole life (Linux and macOS; there is no lock where
``fcntl`` is missing). ``started`` lines are synced to disk before their request
leaves, grouped so that concurrent workers share one sync.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal, NoReturn

import anyio
import anyio.lowlevel
import attrs

from ._errors import UsageError

__all__ = [
    "JournalContents",
    "JournalWriter",
    "LineRecord",
    "check_job",
    "input_lines",
    "job_header",
    "locked_journal",
    "read_journal",
]

JOURNAL_FORMAT: Final = 1
#: The most trips through the event loop a group waits for more lines before its sync:
#: a bound on what the first line of a group can be held back when answers keep coming.
_MAX_GATHER_ROUNDS: Final = 8
LineState = Literal["started", "done", "failed", "unknown"]
_BOM: Final = b"\xef\xbb\xbf"
_RUN_MARK: Final = b'{"event": "run", "pid": '
_JOB_MARK: Final = b'{"event": "job", '


def line_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def input_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Each line of ``path`` as ``(number, bytes)``: no line ending, no leading BOM."""
    with path.open("rb") as source:
        for number, raw in enumerate(source, start=1):
            line = raw.rstrip(b"\r\n")
            yield number, (line.removeprefix(_BOM) if number == 1 else line)


# -- the job ---------------------------------------------------------------------------


def job_header(operation: str, host: str, app_token: str) -> dict[str, Any]:
    """The journal's first line: the job, and a digest of everything that decides what is sent."""
    job = {"operation": operation, "host": host, "app_token": app_token}
    digest = hashlib.sha256(json.dumps(job, sort_keys=True).encode("utf-8")).hexdigest()
    return {"event": "job", "journal": JOURNAL_FORMAT, **job, "job_sha256": digest}


def _describe(header: dict[str, Any]) -> str:
    return (
        f"batch {header.get('operation')} to {header.get('host')} "
        f"as app token {header.get('app_token')}"
    )


def check_job(out: Path, found: JournalContents, expected: dict[str, Any]) -> None:
    """Refuse a journal that belongs to another job (``UsageError``)."""
    if found.empty:
        return
    if found.header_cut_short:
        raise UsageError(
            f"--out {out} holds only the start of a job header: the run that wrote it "
            f"stopped (killed, or the disk full) before it could send anything, so nothing "
            f"was sent; delete it and run the same command again"
        )
    if found.header is None:
        raise UsageError(
            f"--out {out} has no job header: it is not a batch journal (or it was made by "
            f"another version); use another --out"
        )
    if found.header.get("job_sha256") != expected["job_sha256"]:
        raise UsageError(
            f"--out {out} is the journal of {_describe(found.header)}, "
            f"not of {_describe(expected)}; use another --out"
        )


# -- reading -----------------------------------------------------------------------------


@attrs.frozen
class LineRecord:
    """Where one input line stands, from its latest journal entry."""

    state: LineState
    input_sha256: str | None


@attrs.frozen
class JournalContents:
    empty: bool
    header: dict[str, Any] | None
    lines: dict[int, LineRecord]
    #: All there is is the first write of a run cut short in its job header.
    header_cut_short: bool = False


def _state(entry: dict[str, Any]) -> LineState | None:
    event = entry.get("event")
    if event == "result":
        ok = entry.get("ok")
        return "done" if ok is True else "failed" if ok is False else None
    if event in ("started", "unknown"):
        return "started" if event == "started" else "unknown"
    return None


def read_journal(path: Path) -> JournalContents:
    """The job header and the latest state of each line (unreadable lines are skipped:
    a write cut short by a kill leaves a torn last line)."""
    lines: dict[int, LineRecord] = {}
    header: dict[str, Any] | None = None
    if not path.exists() or not path.stat().st_size:
        return JournalContents(empty=True, header=None, lines=lines)
    first = b""
    with path.open("rb") as journal:
        for position, text in enumerate(journal):
            first = first or text
            try:
                entry = json.loads(text)
            except (ValueError, RecursionError):
                continue
            if not isinstance(entry, dict):
                continue
            if position == 0 and entry.get("event") == "job":
                header = entry
                continue
            line, state = entry.get("line"), _state(entry)
            if isinstance(line, bool) or not isinstance(line, int) or state is None:
                continue
            previous = lines.get(line)
            if previous is not None and previous.state == "done":
                continue  # done is final: nothing is written for the line after it
            digest = entry.get("input_sha256")
            lines[line] = LineRecord(state, digest if isinstance(digest, str) else None)
    # The job header and the first run entry go out in one write, synced before any
    # request: a file that is only the start of a header had nothing sent.
    cut_short = (
        header is None
        and not first.endswith(b"\n")
        and (first.startswith(_JOB_MARK) or _JOB_MARK.startswith(first))
    )
    return JournalContents(empty=False, header=header, lines=lines, header_cut_short=cut_short)


# -- the lock ----------------------------------------------------------------------------

if sys.platform == "win32":  # pragma: no cover - no fcntl; docs/batch-and-cli.md says so

    def _try_lock(_fd: int) -> bool:
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def _holder_pid(path: Path) -> int | None:
    """The pid in the journal's last run entry: the run that holds the lock."""
    with path.open("rb") as journal:
        if not os.fstat(journal.fileno()).st_size:
            return None
        with mmap.mmap(journal.fileno(), 0, access=mmap.ACCESS_READ) as view:
            start = view.rfind(_RUN_MARK)
            if start < 0:
                return None
            start += len(_RUN_MARK)
            digits = view[start : view.find(b",", start)]
    return int(digits) if digits.isdigit() else None


def _refuse_in_use(path: Path) -> NoReturn:
    holder = _holder_pid(path)
    who = "process unknown" if holder is None else f"process {holder}"
    raise UsageError(
        f"--out {path} is in use by another batch run ({who}); "
        f"wait for it to end, or use another --out"
    )


@contextlib.contextmanager
def locked_journal(path: Path) -> Iterator[BinaryIO]:
    """The journal open for appending and locked; ``UsageError`` if another process holds it."""
    journal = path.open("ab")
    try:
        if not _try_lock(journal.fileno()):
            _refuse_in_use(path)
        yield journal
    except BaseException:
        # A journal that broke still holds what it could not write, and closing it fails
        # the same way: the error that ended the run is the one to report.
        with contextlib.suppress(OSError):
            journal.close()  # and with it the lock
        raise
    journal.close()


def run_entry() -> dict[str, Any]:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"event": "run", "pid": os.getpid(), "at": when}


# -- writing -----------------------------------------------------------------------------


def _sync_to_disk(fd: int) -> None:
    # fdatasync skips the timestamps but keeps the size, which appended data needs.
    sync = getattr(os, "fdatasync", None) or os.fsync
    sync(fd)


class JournalWriter:
    """Appends entries; ``commit()`` makes everything appended so far durable.

    Group commit: the first caller to need a sync gathers a group. It lets the other
    tasks run, one trip through the event loop at a time, for as long as each trip
    appends more (at most ``_MAX_GATHER_ROUNDS``); callers that arrive meanwhile wait
    for its sync instead of issuing their own. So at full speed there is about one
    sync per ``concurrency`` lines, and when the loop is idle (answers on their way
    over the network) a group waits one trip at most. The sync runs on the event
    loop's thread: handing it to a worker thread measured no cheaper (the thread then
    waits for the GIL to report back). A write or sync that fails is kept in
    ``error`` and nothing more is written.
    """

    def __init__(self, journal: BinaryIO, *, durable: bool) -> None:
        self._journal = journal
        self._durable = durable
        self._appended = 0
        self._committed = 0
        self._gathered: anyio.Event | None = None
        self.error: OSError | None = None
        if journal.tell():
            with Path(journal.name).open("rb") as existing:
                existing.seek(-1, os.SEEK_END)
                if existing.read(1) != b"\n":
                    journal.write(b"\n")  # end a line torn by a kill; the next entry stands alone

    def append(self, entry: dict[str, Any]) -> None:
        """Queue ``entry``; it reaches the file at the next ``record`` or ``commit``."""
        if self.error is None:
            try:
                # A full buffer is written out here, so this can fail as a flush does.
                self._journal.write(json.dumps(entry, ensure_ascii=True).encode("ascii") + b"\n")
            except OSError as error:
                self.error = error
                return
            self._appended += 1

    def record(self, entry: dict[str, Any]) -> None:
        """Append ``entry`` and hand it to the operating system now (no sync)."""
        self.append(entry)
        if self.error is None:
            try:
                self._journal.flush()
            except OSError as error:
                self.error = error

    async def commit(self) -> bool:
        """Everything appended so far, synced to disk; False if the journal broke."""
        target = self._appended
        while self._committed < target and self.error is None:
            if self._gathered is not None:
                # Another caller is gathering a group: its sync covers this entry too.
                await self._gathered.wait()
                continue
            self._gathered = gathered = anyio.Event()
            try:
                await self._gather()
                self._sync()
            finally:
                self._gathered = None
                gathered.set()
        return self.error is None

    async def _gather(self) -> None:
        # A single trip lets through only the workers already ready; those it wakes
        # (a result read frees their slot) append a trip later. Measured: one trip gave
        # a sync per 12 lines at concurrency 32, gathering until quiet one per 29.
        for _ in range(_MAX_GATHER_ROUNDS):
            before = self._appended
            await anyio.lowlevel.checkpoint()
            if self._appended == before:
                return

    def _sync(self) -> None:
        covered = self._appended
        try:
            self._journal.flush()
            if self._durable:
                _sync_to_disk(self._journal.fileno())
            self._committed = covered
        except OSError as error:
            self.error = error
