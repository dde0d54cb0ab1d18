"""Per-call overhead of SyncZiggeo over the async path, beside a bare portal hop.

    python benchmarks/bench_sync.py [--rounds 7] [--calls 1000]

Three timings per round, interleaved, on the same in-process transport
(``httpx.MockTransport``, so no sockets and no server):

- async: ``await client.authtokens.get(...)`` on an event loop in this thread;
- sync: ``SyncZiggeo.authtokens.get(...)`` from this thread, through its portal;
- hop: ``BlockingPortal.call`` of an empty coroutine on a bare anyio portal.

The facade's overhead is sync - async; the target is at most 1.1x the bare hop.
Prints a markdown table of the medians over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import anyio
import httpx
from anyio.from_thread import start_blocking_portal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ziggeo_async import AsyncZiggeo, SyncZiggeo

TARGET_RATIO = 1.1
TOKEN = "benchmark-token"


def transport() -> httpx.MockTransport:
    def handle(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"token": TOKEN, "session_limit": 1})

    return httpx.MockTransport(handle)


def time_async(calls: int) -> float:
    async def run() -> float:
        async with (
            httpx.AsyncClient(transport=transport()) as http_client,
            AsyncZiggeo("app", "key", http_client=http_client) as client,
        ):
            await client.authtokens.get(TOKEN)  # warm up: the first call builds the client
            started = time.perf_counter()
            for _ in range(calls):
                await client.authtokens.get(TOKEN)
            return (time.perf_counter() - started) / calls

    return anyio.run(run)


def time_sync(client: SyncZiggeo, calls: int) -> float:
    get = client.authtokens.get
    started = time.perf_counter()
    for _ in range(calls):
        get(TOKEN)
    return (time.perf_counter() - started) / calls


async def empty() -> None:
    pass


def time_hop(calls: int) -> float:
    with start_blocking_portal() as portal:
        portal.call(empty)
        started = time.perf_counter()
        for _ in range(calls):
            portal.call(empty)
        return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=1000)
    options = parser.parse_args()

    async_times, sync_times, hop_times = [], [], []
    with SyncZiggeo("app", "key", http_client=httpx.AsyncClient(transport=transport())) as client:
        client.authtokens.get(TOKEN)  # warm up: starts the portal
        for _ in range(options.rounds):
            async_times.append(time_async(options.calls))
            sync_times.append(time_sync(client, options.calls))
            hop_times.append(time_hop(options.calls))

    async_median = statistics.median(async_times)
    sync_median = statistics.median(sync_times)
    hop_median = statistics.median(hop_times)
    overheads = [sync - async_ for sync, async_ in zip(sync_times, async_times, strict=True)]
    overhead_median = statistics.median(overheads)
    ratio = overhead_median / hop_median

    def us(seconds: float) -> str:
        return f"{seconds * 1e6:.1f} µs"

    python = sys.version.split()[0]
    print(f"{options.rounds} rounds x {options.calls} calls, medians; Python {python}")
    print()
    print("| measure | per call |")
    print("| --- | ---: |")
    print(f"| async path (`await AsyncZiggeo.authtokens.get`) | {us(async_median)} |")
    print(f"| sync facade (`SyncZiggeo.authtokens.get`) | {us(sync_median)} |")
    print(f"| facade overhead (sync - async, per round) | {us(overhead_median)} |")
    print(f"| bare hop (`BlockingPortal.call` of an empty coroutine) | {us(hop_median)} |")
    verdict = "within" if ratio <= TARGET_RATIO else "OVER"
    print(f"| overhead / bare hop | {ratio:.2f}x ({verdict} the {TARGET_RATIO}x target) |")


if __name__ == "__main__":
    main()
