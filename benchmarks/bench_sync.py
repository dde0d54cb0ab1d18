"""Per-call overhead of SyncZiggeo over the async path, beside a bare portal hop.

    python benchmarks/bench_sync.py [--rounds 7] [--calls 1000]

Three timings, on the same in-process transport (``httpx2.MockTransport``: no
sockets, no server), interleaved in small batches so that load from elsewhere on
the machine falls on all three alike:

- async: ``await client.authtokens.get(...)`` run inside a portal's event loop thread
  (an ``AsyncZiggeo`` of its own; only the awaits are timed);
- sync: ``SyncZiggeo.authtokens.get(...)`` from this thread, through its portal;
- hop: ``BlockingPortal.call`` of an empty coroutine on that same bare anyio portal;
- for reference, the floor of any hop into an asyncio loop from a thread
  (``asyncio.run_coroutine_threadsafe`` of an empty coroutine).

The facade's overhead is sync - async; the target is at most 1.1x the bare hop.
Each round runs in a fresh process. Prints a markdown table of the medians over the
rounds (each round's figure is the median of its single calls).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx2
from anyio.from_thread import BlockingPortal, start_blocking_portal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ziggeo_async import AsyncZiggeo, SyncZiggeo

TARGET_RATIO = 1.1
# Small batches, alternating: the machine is shared, and a burst of load elsewhere then
# falls on one batch of each measure instead of on one measure's whole round.
BATCH = 20
TOKEN = "benchmark-token"


def transport() -> httpx2.MockTransport:
    def handle(_request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"token": TOKEN, "session_limit": 1})

    return httpx2.MockTransport(handle)


async def time_async(client: AsyncZiggeo, calls: int) -> list[float]:
    durations = []
    for _ in range(calls):
        started = time.perf_counter()
        await client.authtokens.get(TOKEN)
        durations.append(time.perf_counter() - started)
    return durations


def time_sync(client: SyncZiggeo, calls: int) -> list[float]:
    get = client.authtokens.get
    durations = []
    for _ in range(calls):
        started = time.perf_counter()
        get(TOKEN)
        durations.append(time.perf_counter() - started)
    return durations


async def empty() -> None:
    pass


def time_hop(portal: BlockingPortal, calls: int) -> list[float]:
    durations = []
    for _ in range(calls):
        started = time.perf_counter()
        portal.call(empty)
        durations.append(time.perf_counter() - started)
    return durations


def time_raw_hop(loop: asyncio.AbstractEventLoop, calls: int) -> list[float]:
    durations = []
    for _ in range(calls):
        started = time.perf_counter()
        asyncio.run_coroutine_threadsafe(empty(), loop).result()
        durations.append(time.perf_counter() - started)
    return durations


def make_async_client() -> AsyncZiggeo:
    # Made on the portal's loop, like SyncZiggeo's own: its HTTP client belongs there.
    return AsyncZiggeo("app", "key", http_client=httpx2.AsyncClient(transport=transport()))


def one_round(
    portal: BlockingPortal, async_client: AsyncZiggeo, sync_client: SyncZiggeo, calls: int
) -> tuple[float, float, float, float]:
    """Median seconds per call for async, sync, hop and raw hop, over ``calls`` calls each.

    Medians of single calls, not means: on a shared machine a few calls wait out a whole
    scheduler slice (the 5 ms GIL switch interval shows up at the 99th percentile), and
    a mean would report the machine's load rather than the facade.
    """
    batch = min(BATCH, calls)
    loop = portal.call(asyncio.get_running_loop)
    durations: tuple[list[float], ...] = ([], [], [], [])
    for _ in range(max(1, calls // batch)):
        durations[0].extend(portal.call(time_async, async_client, batch))
        durations[1].extend(time_sync(sync_client, batch))
        durations[2].extend(time_hop(portal, batch))
        durations[3].extend(time_raw_hop(loop, batch))
    async_time, sync_time, hop_time, raw_hop_time = (statistics.median(d) for d in durations)
    return async_time, sync_time, hop_time, raw_hop_time


def run_round(calls: int) -> tuple[float, float, float, float]:
    """One round in this process: a fresh portal pair, warmed up, then ``calls`` calls each."""
    with (
        start_blocking_portal() as portal,
        SyncZiggeo("app", "key", http_client=httpx2.AsyncClient(transport=transport())) as sync,
    ):
        async_client = portal.call(make_async_client)
        one_round(portal, async_client, sync, 100)  # warm up both paths
        timings = one_round(portal, async_client, sync, calls)
        portal.call(async_client.aclose)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--one-round", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.one_round:
        print(json.dumps(run_round(options.calls)))
        return

    # Each round is a fresh process: where the kernel places the threads, and so how fast
    # a sleeping thread wakes, is decided per process and differs from one to the next
    # (the bare hop alone flips between about 80 and 190 µs here); one process would
    # measure one draw of that.
    async_times, sync_times, hop_times, raw_hop_times = [], [], [], []
    for _ in range(options.rounds):
        done = subprocess.run(
            [sys.executable, __file__, "--one-round", "--calls", str(options.calls)],
            capture_output=True,
            text=True,
            check=True,
        )
        timings = json.loads(done.stdout)
        async_times.append(timings[0])
        sync_times.append(timings[1])
        hop_times.append(timings[2])
        raw_hop_times.append(timings[3])

    async_median = statistics.median(async_times)
    sync_median = statistics.median(sync_times)
    hop_median = statistics.median(hop_times)
    overheads = [sync - async_ for sync, async_ in zip(sync_times, async_times, strict=True)]
    overhead_median = statistics.median(overheads)
    ratio = overhead_median / hop_median

    def us(seconds: float) -> str:
        return f"{seconds * 1e6:.1f} µs"

    python = sys.version.split()[0]
    # Thread wake-ups dominate both hops: on a busy machine they are slow and vary.
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{options.rounds} rounds x {options.calls} calls, medians; Python {python}; load {load}")
    print()
    print("| measure | per call |")
    print("| --- | ---: |")
    print(f"| async path (`await AsyncZiggeo.authtokens.get`) | {us(async_median)} |")
    print(f"| sync facade (`SyncZiggeo.authtokens.get`) | {us(sync_median)} |")
    print(f"| facade overhead (sync - async, per round) | {us(overhead_median)} |")
    print(f"| bare hop (`BlockingPortal.call` of an empty coroutine) | {us(hop_median)} |")
    verdict = "within" if ratio <= TARGET_RATIO else "OVER"
    raw_hop = us(statistics.median(raw_hop_times))
    print(f"| for reference: one `asyncio.run_coroutine_threadsafe` hop, empty | {raw_hop} |")
    print(f"| overhead / bare hop | {ratio:.2f}x ({verdict} the {TARGET_RATIO}x target) |")


if __name__ == "__main__":
    main()
