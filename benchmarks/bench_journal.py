"""What syncing the batch journal costs: ``batch create`` at the embedded fake's full rate.

Runs the CLI's ``BatchJob`` over the same input on an in-process FakeZiggeo (no
network, so the journal's cost is as large a share as it can be), with ``started``
lines synced to disk before each send (the default) and without (flushed only),
alternating the two, and prints the medians and their ratio.

    python benchmarks/bench_journal.py            # 5,000 creates, 5 rounds of each
    python benchmarks/bench_journal.py 2000 3
"""

from __future__ import annotations

import asyncio
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ziggeo_async import AsyncZiggeo
from ziggeo_async.cli import _journal
from ziggeo_async.cli._batch import BatchJob
from ziggeo_async.cli._journal import job_header, locked_journal
from ziggeo_async.testing import FakeZiggeo

CONCURRENCY = 32
_syncs: list[float] = []  # seconds spent in each sync, over all synced rounds
_sync = _journal._sync_to_disk  # noqa: SLF001 - this package's own module, timed not changed


def _timed_sync(fd: int) -> None:
    started = time.perf_counter()
    _sync(fd)
    _syncs.append(time.perf_counter() - started)


async def one_run(source: Path, out: Path, *, durable: bool) -> float:
    fake = FakeZiggeo()
    async with (
        httpx.AsyncClient(transport=fake.transport()) as http_client,
        AsyncZiggeo(fake.app_token, fake.private_key, http_client=http_client) as client,
    ):

        async def send(item: Any) -> object:
            return await client.authtokens.create(**item)

        job = BatchJob(
            "create",
            source,
            out,
            retry_unknown=False,
            quiet=True,
            stderr=io.StringIO(),
            show_progress=False,
            grace=5.0,
            durable=durable,
        )
        started = time.perf_counter()
        with locked_journal(out) as journal:
            job.prepare(job_header("create", "embedded FakeZiggeo", fake.app_token))
            code = await job.run(journal, send, concurrency=CONCURRENCY, max_per_second=None)
        elapsed = time.perf_counter() - started
    assert code == 0
    assert job.succeeded == len(fake.tokens)
    return elapsed


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    _journal._sync_to_disk = _timed_sync  # noqa: SLF001 - counted and timed, not changed
    seconds: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as folder:  # the disk, not a tmpfs
        source = Path(folder) / "in.jsonl"
        source.write_text(
            "".join(json.dumps({"session_limit": n}) + "\n" for n in range(count)), "utf-8"
        )
        for number in range(rounds * 2):
            durable = number % 2 == 0
            out = Path(folder) / f"out-{number}.jsonl"
            seconds[durable].append(asyncio.run(one_run(source, out, durable=durable)))
    print(f"{count:,} creates, concurrency {CONCURRENCY}, {rounds} rounds of each, alternating")
    # The fastest round is the least disturbed by other work on the machine; both are shown.
    for name, pick in (("median", statistics.median), ("fastest", min)):
        synced, flushed = pick(seconds[True]), pick(seconds[False])
        print(
            f"{name:>7}: synced {synced:.3f} s ({count / synced:,.0f}/s), "
            f"flushed only {flushed:.3f} s ({count / flushed:,.0f}/s), "
            f"cost {100 * (synced / flushed - 1):+.1f} %"
        )
    per_round = sum(_syncs) / rounds
    print(
        f"syncs: {len(_syncs) / rounds:,.0f} a round, {1000 * statistics.median(_syncs):.2f} ms "
        f"each (median), {per_round:.3f} s a round in all"
    )


if __name__ == "__main__":
    main()
