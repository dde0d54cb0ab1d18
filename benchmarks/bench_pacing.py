"""A batch against a rate-limited FakeZiggeo, with the batch pacer and without it.

    python benchmarks/bench_pacing.py [--items 2000] [--per-second 200] [--burst 10]

``create_many(concurrency=64)`` with the default retries, in process (the fake's
transport, no sockets), against ``fake.rate_limit(per_second=R, burst=B)``. "Without"
turns the pacer's turns and reports into no-ops, so every worker sends as soon as it
is free and only the per-item Retry-After waits remain. Prints one markdown row each:
items made, failed, the share of 429 answers, wall time and its ratio to the ideal
(items / R seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx2

from ziggeo_async import AsyncZiggeo
from ziggeo_async._request import pacer as pacer_module
from ziggeo_async.testing import FakeZiggeo


async def batch(items: int, per_second: float, burst: int) -> tuple[int, int, float, float]:
    fake = FakeZiggeo()
    fake.rate_limit(per_second=per_second, burst=burst)
    async with (
        httpx2.AsyncClient(transport=fake.transport()) as http_client,
        AsyncZiggeo(fake.app_token, fake.private_key, http_client=http_client) as client,
    ):
        started = time.monotonic()
        made = failed = 0
        work = ({"session_limit": n} for n in range(items))
        async with client.authtokens.create_many(work, concurrency=64) as results:
            async for result in results:
                made += result.ok
                failed += not result.ok
        wall = time.monotonic() - started
    throttled = sum(1 for request in fake.requests if request.status == 429)
    return made, failed, throttled / len(fake.requests), wall


def pacer_off() -> None:
    async def no_turn(_self: object) -> int:
        return 0

    pacer_module.Pacer.take_turn = no_turn  # type: ignore[method-assign]
    pacer_module.Pacer.throttled = lambda _self, _retry_after, _turn: None  # type: ignore[method-assign]
    pacer_module.Pacer.succeeded = lambda _self: None  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--per-second", type=float, default=200)
    parser.add_argument("--burst", type=int, default=10)
    args = parser.parse_args()
    ideal = args.items / args.per_second
    print("| pacer | made | failed | 429 answers | wall | wall / ideal |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label in ("on", "off"):
        if label == "off":
            pacer_off()
        made, failed, share, wall = asyncio.run(batch(args.items, args.per_second, args.burst))
        ratio = wall / ideal
        print(f"| {label} | {made:,} | {failed:,} | {share:.1%} | {wall:.2f} s | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
