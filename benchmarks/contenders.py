"""One contender, one run, in its own process: ``python benchmarks/contenders.py NAME ...``.

Each contender sends the same create (the arguments in ``ITEM``) to the stub at
``--url`` until ``--count`` creates are done or ``--seconds`` have passed, after a
short unmeasured warm-up, and prints one JSON line: creates done, distinct token
ids received, wall seconds, client CPU seconds (``time.process_time``: every
thread of this process) and peak RSS. Running each in a fresh process keeps the
CPU and memory figures its own.

``ours`` runs as the README recommends for batch jobs (the ``fast`` extra and
``http_backend="aiohttp"``); with ``--plain`` aiohttp is hidden from the import
system first and ``ours`` runs as the plain install does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

APP_TOKEN = "bench-app-token"
PRIVATE_KEY = "bench-private-key"
ITEM: dict[str, Any] = {
    "grants": {"read": {"resources": ["1234567890"]}},
    "session_limit": 1,
    "usage_expiration_time": 86400,
}
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "64"))
THREADS = 16


class Budget:
    """Hands out work until ``count`` items or ``seconds`` of wall time, whichever first."""

    def __init__(self, count: int, seconds: float) -> None:
        self.count = count
        self.deadline = time.perf_counter() + seconds
        self.issued = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.issued >= self.count or time.perf_counter() > self.deadline:
                return False
            self.issued += 1
            return True

    def items(self) -> Iterator[dict[str, Any]]:
        while self.take():
            yield ITEM


def measure(run: Callable[[Budget], set[str]], warmup: int, count: int, seconds: float) -> None:
    warm = Budget(warmup, seconds)
    run(warm)
    budget = Budget(count, seconds)
    cpu, wall = time.process_time(), time.perf_counter()
    tokens = run(budget)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        json.dumps(
            {
                "n": budget.issued,
                "distinct": len(tokens),
                "wall": wall,
                "cpu": cpu,
                "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "sent": warm.issued + budget.issued,
            }
        ),
        flush=True,
    )


# --- the official SDK -------------------------------------------------------------------


def official(url: str, threads: int) -> Callable[[Budget], set[str]]:
    import Ziggeo  # the official package's top-level module

    client = Ziggeo.Ziggeo(APP_TOKEN, PRIVATE_KEY)
    # Its connection object takes the host it talks to; this is the one place to set it.
    client.connect = Ziggeo.ZiggeoConnect(client, url)
    # It sends grants as the str() of a dict: give it the JSON text the API expects.
    data = {**ITEM, "grants": json.dumps(ITEM["grants"])}

    def worker(budget: Budget, tokens: set[str]) -> None:
        authtokens = client.authtokens()
        while budget.take():
            tokens.add(authtokens.create(dict(data))["token"])

    def run(budget: Budget) -> set[str]:
        tokens: set[str] = set()
        if threads == 1:
            worker(budget, tokens)
            return tokens
        pool = [threading.Thread(target=worker, args=(budget, tokens)) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        return tokens

    return run


# --- ours ---------------------------------------------------------------------------------


def ours(url: str, *, keep_tokens: bool = True) -> Callable[[Budget], set[str]]:
    from ziggeo_async import AsyncZiggeo

    # The batch-job install: the fast extra, chosen with http_backend (plain runs hide aiohttp).
    backend = "aiohttp" if "aiohttp" not in sys.modules or sys.modules["aiohttp"] else "httpx2"

    async def batch(budget: Budget) -> set[str]:
        tokens: set[str] = set()
        failed = 0
        async with (
            AsyncZiggeo(APP_TOKEN, PRIVATE_KEY, base_url=url, http_backend=backend) as client,
            client.authtokens.create_many(budget.items(), concurrency=CONCURRENCY) as results,
        ):
            async for result in results:
                if result.value is None:
                    failed += 1
                elif keep_tokens:
                    tokens.add(result.value.token)
        if failed:
            raise SystemExit(f"{failed} creates failed")
        return tokens

    return lambda budget: asyncio.run(batch(budget))


def ours_sync(url: str, backend: str = "httpx2") -> Callable[[Budget], set[str]]:
    from ziggeo_async import SyncZiggeo

    client = SyncZiggeo(APP_TOKEN, PRIVATE_KEY, base_url=url, http_backend=backend)

    def run(budget: Budget) -> set[str]:
        create = client.authtokens.create
        return {create(**ITEM).token for _ in iter(budget.take, False)}  # noqa: FBT003

    return run


def ours_portal(url: str) -> Callable[[Budget], set[str]]:
    """The async client's create, each call through a bare anyio ``BlockingPortal.call``."""
    from anyio.from_thread import start_blocking_portal

    from ziggeo_async import AsyncZiggeo

    stack = contextlib.ExitStack()
    portal = stack.enter_context(start_blocking_portal("asyncio"))

    async def make() -> AsyncZiggeo:
        return AsyncZiggeo(APP_TOKEN, PRIVATE_KEY, base_url=url)

    client = portal.call(make)

    async def create() -> str:
        return (await client.authtokens.create(**ITEM)).token

    def run(budget: Budget) -> set[str]:
        # The portal lives as long as this closure: it holds the stack that owns it.
        assert stack is not None
        return {portal.call(create) for _ in iter(budget.take, False)}  # noqa: FBT003

    return run


# --- the floors: stock httpx2, bare aiohttp --------------------------------------------------


def _form() -> dict[str, str]:
    return {
        name: json.dumps(value) if isinstance(value, dict) else str(value)
        for name, value in ITEM.items()
    }


async def _workers(budget: Budget, one: Callable[[], Any]) -> set[str]:
    tokens: set[str] = set()

    async def worker() -> None:
        while budget.take():
            tokens.add(await one())

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return tokens


def raw_httpx2(url: str) -> Callable[[Budget], set[str]]:
    """Stock httpx2.AsyncClient sending the same creates, as a user would write the job
    without an SDK (the SDK's connection limit, so only the client's own work differs)."""
    import httpx2

    limits = httpx2.Limits(max_connections=100, max_keepalive_connections=100)

    async def batch(budget: Budget) -> set[str]:
        async with httpx2.AsyncClient(auth=(APP_TOKEN, PRIVATE_KEY), limits=limits) as client:

            async def one() -> str:
                response = await client.post(url + "/v1/authtokens/", data=_form())
                response.raise_for_status()
                return str(response.json()["token"])

            return await _workers(budget, one)

    return lambda budget: asyncio.run(batch(budget))


def raw_httpx2_sequential(url: str) -> Callable[[Budget], set[str]]:
    """Stock httpx2.AsyncClient, one create at a time on one asyncio loop, no portal: what
    the HTTP stack alone costs per sequential create, the floor under ``SyncZiggeo``."""
    import httpx2

    async def run(budget: Budget) -> set[str]:
        async with httpx2.AsyncClient(auth=(APP_TOKEN, PRIVATE_KEY)) as client:
            tokens = set()
            while budget.take():
                response = await client.post(url + "/v1/authtokens/", data=_form())
                response.raise_for_status()
                tokens.add(str(response.json()["token"]))
            return tokens

    return lambda budget: asyncio.run(run(budget))


def raw_httpx2_blocking(url: str) -> Callable[[Budget], set[str]]:
    """Stock httpx2.Client (blocking sockets, no event loop), one create at a time: the
    same library and HTTP/1.1 code without the async network stack beneath it."""
    import httpx2

    client = httpx2.Client(auth=(APP_TOKEN, PRIVATE_KEY))

    def run(budget: Budget) -> set[str]:
        tokens = set()
        while budget.take():
            response = client.post(url + "/v1/authtokens/", data=_form())
            response.raise_for_status()
            tokens.add(str(response.json()["token"]))
        return tokens

    return run


def bare_aiohttp(url: str) -> Callable[[Budget], set[str]]:
    """The lean aiohttp loop: body and headers built once, ``json`` on the raw bytes."""
    import aiohttp

    headers = {
        "Authorization": aiohttp.encode_basic_auth(APP_TOKEN, PRIVATE_KEY),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    body = urllib.parse.urlencode(_form()).encode("ascii")

    async def batch(budget: Budget) -> set[str]:
        async with aiohttp.ClientSession(headers=headers) as session:

            async def one() -> str:
                async with session.post(url + "/v1/authtokens/", data=body) as response:
                    response.raise_for_status()
                    return str(json.loads(await response.read())["token"])

            return await _workers(budget, one)

    return lambda budget: asyncio.run(batch(budget))


CONTENDERS: dict[str, Callable[[str], Callable[[Budget], set[str]]]] = {
    "official_seq": lambda url: official(url, 1),
    "official_threads": lambda url: official(url, THREADS),
    "ours": ours,
    "ours_memory": lambda url: ours(url, keep_tokens=False),
    "ours_sync": ours_sync,
    "ours_sync_fast": lambda url: ours_sync(url, "aiohttp"),
    "ours_portal": ours_portal,
    "raw_httpx2": raw_httpx2,
    "raw_httpx2_sequential": raw_httpx2_sequential,
    "raw_httpx2_blocking": raw_httpx2_blocking,
    "bare_aiohttp": bare_aiohttp,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name", choices=sorted(CONTENDERS))
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--warmup", type=int, default=CONCURRENCY)
    parser.add_argument("--plain", action="store_true", help="as installed without aiohttp")
    parser.add_argument("--cpu", type=int, default=None, help="core to pin to")
    options = parser.parse_args()
    if options.plain:
        sys.modules["aiohttp"] = None  # type: ignore[assignment]  # import now fails, as if absent
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    if options.cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {options.cpu})
    run = CONTENDERS[options.name](options.url)
    measure(run, options.warmup, options.count, options.seconds)
    os._exit(0)  # the portal contenders' threads need no orderly shutdown here


if __name__ == "__main__":
    main()
