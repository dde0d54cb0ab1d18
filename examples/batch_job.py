"""Issue many server auth tokens at once with ``create_many``, and report what failed.

    python examples/batch_job.py               # 10,000 tokens
    python examples/batch_job.py 500 --out tokens.jsonl --concurrency 16 --rate 200

One token per video, each good for one session of a day. With ZIGGEO_APP_TOKEN and
ZIGGEO_PRIVATE_KEY set it talks to Ziggeo; without them it runs on an embedded
FakeZiggeo, in memory. Exit status 1 when any token could not be issued.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

import httpx2

from ziggeo_async import AsyncZiggeo, ZiggeoError
from ziggeo_async.testing import FakeZiggeo

#: Failures listed one by one; beyond this only the counts per error type are shown.
SHOWN_FAILURES = 20


def token_requests(count: int) -> Iterator[dict[str, Any]]:
    """The create arguments, one item per video, made lazily as the batch pulls them."""
    for number in range(count):
        yield {
            "grants": {"read": {"resources": [f"video-{number:05d}"]}},
            "session_limit": 1,
            "usage_expiration_time": timedelta(days=1),
        }


async def issue_tokens(
    ziggeo: AsyncZiggeo,
    count: int,
    *,
    concurrency: int = 32,
    max_per_second: float | None = None,
    out: TextIO | None = None,
) -> list[tuple[int, ZiggeoError]]:
    """Create ``count`` tokens; write each one issued to ``out``; return the failures."""
    failures: list[tuple[int, ZiggeoError]] = []
    async with ziggeo.authtokens.create_many(
        token_requests(count), concurrency=concurrency, max_per_second=max_per_second
    ) as results:
        async for result in results:
            if result.error is not None:
                failures.append((result.index, result.error))
            elif out is not None and result.value is not None:
                out.write(json.dumps({"index": result.index, "token": result.value.token}) + "\n")
    return sorted(failures, key=lambda failure: failure[0])


def report(count: int, failures: list[tuple[int, ZiggeoError]], seconds: float) -> str:
    """A summary line, the first failures one by one, and the failures per error type."""
    lines = [f"issued {count - len(failures)} of {count} tokens in {seconds:.1f} s"]
    if failures:
        by_type = collections.Counter(type(error).__name__ for _, error in failures)
        lines.append(
            f"{len(failures)} failed: "
            + ", ".join(f"{name} x{number}" for name, number in by_type.most_common())
        )
        # SDK error messages name the request and status, never a credential.
        lines += [f"  item {index}: {error}" for index, error in failures[:SHOWN_FAILURES]]
        if len(failures) > SHOWN_FAILURES:
            lines.append(f"  ... and {len(failures) - SHOWN_FAILURES} more")
    return "\n".join(lines)


async def open_ziggeo(stack: AsyncExitStack) -> AsyncZiggeo:
    """The client the environment asks for, or one on an embedded FakeZiggeo."""
    app_token = os.environ.get("ZIGGEO_APP_TOKEN")
    if app_token:
        return await stack.enter_async_context(
            AsyncZiggeo(
                app_token,
                os.environ["ZIGGEO_PRIVATE_KEY"],
                base_url=os.environ.get("ZIGGEO_BASE_URL") or None,
            )
        )
    print("ZIGGEO_APP_TOKEN is not set: using an embedded FakeZiggeo", file=sys.stderr)
    fake = FakeZiggeo()
    http_client = await stack.enter_async_context(httpx2.AsyncClient(transport=fake.transport()))
    return await stack.enter_async_context(
        AsyncZiggeo(fake.app_token, fake.private_key, http_client=http_client)
    )


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("count", type=int, nargs="?", default=10_000, help="tokens to issue")
    parser.add_argument("--concurrency", type=positive_int, default=32, help="requests in flight")
    parser.add_argument("--rate", type=float, default=None, help="most requests per second")
    parser.add_argument("--out", type=Path, default=None, help="write issued tokens as JSONL")
    args = parser.parse_args(argv)
    if args.count < 0:
        parser.error("count must not be negative")
    async with AsyncExitStack() as stack:
        ziggeo = await open_ziggeo(stack)
        out = None if args.out is None else stack.enter_context(args.out.open("w"))
        started = time.perf_counter()
        failures = await issue_tokens(
            ziggeo, args.count, concurrency=args.concurrency, max_per_second=args.rate, out=out
        )
        print(report(args.count, failures, time.perf_counter() - started))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
