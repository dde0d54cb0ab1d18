"""The batch pacer across servers and batches, on trio's mock clock (virtual time).

    python benchmarks/pacing_grid.py [--items-seconds 3]

``create_many`` against ``FakeZiggeo.rate_limit(per_second=R, burst=B)`` with an added
latency, for every combination below, each batch starting at a clock reading of 1 s.
Every sleep, the fake's latency and its bucket keep virtual time, so the figures do not
depend on the machine or its load (trio varies its scheduling order between runs, which
moves a batch's time by a percent or so). Prints one row per batch and a summary: items lost
(a third 429 ends an item, with the default retries), the share of 429 answers, and the
batch's time against its ideal (the items at R a second, or at the latency if slower).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import anyio
import httpx2
import trio
from trio.testing import MockClock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ziggeo_async import AsyncZiggeo
from ziggeo_async.testing import FakeZiggeo

LATENCIES = (0.0, 0.005, 0.02, 0.05, 0.1, 0.3, 0.5)
LIMITS = ((50, 5), (200, 10), (400, 10), (1000, 50))  # (per second, burst)
CONCURRENCIES = (8, 64, 200)


async def batch(latency: float, per_second: int, burst: int, concurrency: int, items: int) -> str:
    await anyio.sleep(1.0)  # a first turn at a clock reading of 0 is a case of its own
    fake = FakeZiggeo()
    fake.rate_limit(per_second=per_second, burst=burst)
    fake.latency = latency
    async with (
        httpx2.AsyncClient(transport=fake.transport()) as http_client,
        AsyncZiggeo(fake.app_token, fake.private_key, http_client=http_client) as client,
    ):
        started = anyio.current_time()
        lost = 0
        work = ({"session_limit": n} for n in range(items))
        async with client.authtokens.create_many(work, concurrency=concurrency) as results:
            async for result in results:
                lost += not result.ok
        took = anyio.current_time() - started
    throttled = sum(1 for request in fake.requests if request.status == 429)
    ideal = max(items / per_second, items * latency / concurrency)
    return f"{lost}|{throttled / len(fake.requests):.4f}|{took / ideal:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items-seconds", type=float, default=3.0, help="items = R x this")
    options = parser.parse_args()
    print("| latency | limit | burst | concurrency | lost | 429 answers | time / ideal |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    ratios: list[float] = []
    total_lost = 0
    for latency, (per_second, burst), concurrency in itertools.product(
        LATENCIES, LIMITS, CONCURRENCIES
    ):
        items = int(per_second * options.items_seconds)
        row = trio.run(
            batch,
            latency,
            per_second,
            burst,
            concurrency,
            items,
            clock=MockClock(autojump_threshold=0),
        )
        lost, share, ratio = row.split("|")
        ratios.append(float(ratio))
        total_lost += int(lost)
        print(
            f"| {latency * 1000:g} ms | {per_second}/s | {burst} | {concurrency} | {lost} "
            f"| {float(share):.1%} | {float(ratio):.2f}x |"
        )
    mean = sum(ratios) / len(ratios)
    print(
        f"\n{len(ratios)} batches: {total_lost} items lost; time / ideal mean {mean:.2f}x, "
        f"worst {max(ratios):.2f}x"
    )


if __name__ == "__main__":
    main()
