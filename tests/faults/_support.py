"""What every fault scenario shares: canary credentials, a pinned retry policy, the ledger."""

from __future__ import annotations

import base64
import hashlib
import logging
import pickle
import sys
from collections import Counter
from collections.abc import Awaitable, Iterator
from typing import Any

import attrs
import httpx
import httpx2

from ziggeo_async import AsyncZiggeo, RetryPolicy
from ziggeo_async._http import HTTPConnection, trust_context
from ziggeo_async._http._aiohttp import AiohttpTransport
from ziggeo_async._request.retry import Decision, Operation, Verdict

if sys.version_info < (3, 11):  # anyio and trio depend on the backport there
    from exceptiongroup import BaseExceptionGroup

# Distinctive values: any appearance of them (or of what is derived from them) in a
# log line, an exception or a repr is a leak.
APP_TOKEN = "canaryAppTokenQ7xWv2"
PRIVATE_KEY = "canary-private-key-Zr9Lq4Tt8Hs1"
ENCRYPTION_KEY = "canary-encryption-key-W3mPn6Yb0Kd5Jf"
BASIC_CREDENTIALS = base64.b64encode(f"{APP_TOKEN}:{PRIVATE_KEY}".encode()).decode()
SECRETS = {
    "private key": PRIVATE_KEY,
    "encryption key": ENCRYPTION_KEY,
    "derived AES key": hashlib.md5(ENCRYPTION_KEY.encode(), usedforsecurity=False).hexdigest(),
    "Authorization value": f"Basic {BASIC_CREDENTIALS}",
    "Basic credentials (base64)": BASIC_CREDENTIALS,
    "private key (base64)": base64.b64encode(PRIVATE_KEY.encode()).decode(),
}

# Jitter pinned at one half and delays in milliseconds: every sleep the policy asks for
# is known in advance and the suite stays fast.
JITTER = 0.5
BASE_DELAY = 0.004
MAX_DELAY = 0.02
MAX_RETRY_AFTER = 0.5
MAX_RETRIES = 2


@attrs.frozen
class RecordingPolicy(RetryPolicy):
    """The client's retry policy, unchanged, with every decision it made written down."""

    decisions: list[Decision] = attrs.field(factory=list, eq=False, repr=False)

    def decide(self, operation: Operation, **outcome: Any) -> Decision:
        decision = super().decide(operation, **outcome)
        self.decisions.append(decision)
        return decision

    @property
    def attempts(self) -> int:
        return len(self.decisions)

    @property
    def delays(self) -> list[float]:
        return [d.delay for d in self.decisions if d.verdict is Verdict.RETRY]

    def sleep_bound(self) -> float:
        """The most this policy may ask a caller to sleep in one call, over all retries."""
        return sum(
            max(self.retry_after_cap, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))
            for attempt in range(1, self.max_retries + 1)
        )


def backoff(attempt: int) -> float:
    """The pinned backoff before retry number ``attempt``."""
    return JITTER * min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1))


@attrs.define
class Ledger:
    """Counts over the whole session, printed in the terminal summary."""

    runs: Counter[str] = attrs.field(factory=Counter)
    scenarios: set[str] = attrs.field(factory=set)
    lost: int = 0
    duplicated: int = 0
    leaked: int = 0
    canary_hits: int = 0
    cancellations: int = 0
    exceptions_checked: int = 0
    log_records_checked: int = 0


LEDGER = Ledger()


class Canary:
    """Collects what a test produced (exceptions, client reprs, log records) and finds secrets."""

    def __init__(self) -> None:
        self.exceptions: list[BaseException] = []
        self.objects: list[object] = []
        self.records: list[logging.LogRecord] = []

    def watch(self, error: BaseException) -> None:
        self.exceptions.append(error)

    def hits(self) -> list[str]:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        texts: list[tuple[str, str | bytes]] = [
            (f"log record {record.name}", formatter.format(record)) for record in self.records
        ]
        for error in self.exceptions:
            for link in exception_chain(error):
                where = f"{type(link).__name__} in the chain of {type(error).__name__}"
                texts.extend([(where, str(link)), (where, repr(link)), (where, repr(vars(link)))])
            texts.append((f"pickled {type(error).__name__}", pickle.dumps(error)))
        texts.extend((f"repr of {type(obj).__name__}", repr(obj)) for obj in self.objects)
        found = []
        for where, text in texts:
            for name, secret in SECRETS.items():
                needle: str | bytes = secret.encode() if isinstance(text, bytes) else secret
                if needle in text:  # type: ignore[operator]
                    found.append(f"{name} in {where}")
        LEDGER.exceptions_checked += len(self.exceptions)
        LEDGER.log_records_checked += len(self.records)
        return found


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending = [error]
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        pending.extend(e for e in (link.__cause__, link.__context__) if e is not None)
        if isinstance(link, BaseExceptionGroup):
            pending.extend(link.exceptions)


@attrs.define
class Outcome:
    result: Any = None
    error: BaseException | None = None


async def outcome_of(canary: Canary, call: Awaitable[Any]) -> Outcome:
    """Await ``call``; the error it raises (if any) is kept and handed to the canary."""
    try:
        return Outcome(result=await call)
    except Exception as error:
        canary.watch(error)
        return Outcome(error=error)


#: Every way a client reaches the network, by name: the ``httpx2.AsyncClient`` the SDK
#: makes (with httpx2's transport, or aiohttp's under the ``fast`` extra), and a lent
#: ``httpx2`` or legacy ``httpx`` client.
OWNED = "owned httpx2"
OWNED_AIOHTTP = "owned aiohttp"
LENT_HTTPX2 = "lent httpx2"
LENT_LEGACY = "lent legacy httpx"
#: (event loop, path): every path on each loop it runs on (aiohttp: asyncio only).
EVERY_PATH = [
    ("asyncio", OWNED),
    ("trio", OWNED),
    ("asyncio", OWNED_AIOHTTP),
    ("asyncio", LENT_HTTPX2),
    ("trio", LENT_HTTPX2),
    ("asyncio", LENT_LEGACY),
    ("trio", LENT_LEGACY),
]


def run_label(anyio_backend: str, path: str = OWNED) -> str:
    """How the suite's summary counts a run: by event loop and path."""
    return f"{anyio_backend}, {path}"


def http_client_for(path: str, *, timeout: Any = 1.0, limits: httpx2.Limits | None = None) -> Any:
    """The httpx-family client behind ``path``; for the owned paths, the one the SDK would
    make, with ``limits`` (the SDK has no public knob for its pool's size).

    Every one trusts the SDK's shared SSL context, as the SDK's own clients do: a context
    of its own would load the trust store again, about 30 ms of CPU per client.
    """
    limits = limits or httpx2.Limits(max_connections=8, max_keepalive_connections=8)
    trust = trust_context()
    if path == LENT_LEGACY:
        legacy_limits = httpx.Limits(
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
        )
        legacy_timeout = timeout if isinstance(timeout, (int, float)) else timeout.as_dict()
        return httpx.AsyncClient(
            verify=trust,
            limits=legacy_limits,
            timeout=httpx.Timeout(**legacy_timeout)
            if isinstance(legacy_timeout, dict)
            else legacy_timeout,
        )
    transport = AiohttpTransport(limits=limits, verify=trust) if path == OWNED_AIOHTTP else None
    return httpx2.AsyncClient(verify=trust, limits=limits, timeout=timeout, transport=transport)


def make_client(
    canary: Canary,
    base_url: str,
    *,
    timeout: float | httpx2.Timeout = 1.0,
    http_client: Any = None,
    max_retries: int = MAX_RETRIES,
    path: str = OWNED,
    limits: httpx2.Limits | None = None,
) -> tuple[AsyncZiggeo, RecordingPolicy]:
    """A client with the canary credentials and the pinned, recording policy, on ``path``.

    ``http_client``, when given, is lent as it is whatever the path says.
    """
    lent = http_client
    if lent is None and path in (LENT_HTTPX2, LENT_LEGACY):
        lent = http_client_for(path, timeout=timeout, limits=limits)
    policy = RecordingPolicy(
        max_retries=max_retries,
        backoff_base=BASE_DELAY,
        backoff_cap=MAX_DELAY,
        retry_after_cap=MAX_RETRY_AFTER,
        jitter=lambda: JITTER,
    )
    client = AsyncZiggeo(
        APP_TOKEN,
        PRIVATE_KEY,
        ENCRYPTION_KEY,
        base_url=base_url,
        timeout=timeout,
        retry=policy,
        http_client=lent,
    )
    if lent is None and (limits is not None or path == OWNED_AIOHTTP):
        client._owned = HTTPConnection(
            http_client_for(path, timeout=timeout, limits=limits), owned=True
        )
    canary.objects.extend(
        [client, client.authtokens, client.auth, client._pipeline, policy, client._connection()]
    )
    return client, policy


async def close_client(client: AsyncZiggeo) -> None:
    """``aclose()`` the client, and a client lent to it as its owner would."""
    connection = client._connection() if not client.closed else None
    await client.aclose()
    if connection is not None and not connection.owned:
        await connection.client.aclose()


def busy_pool_connections(connection: HTTPConnection) -> int:
    """Requests still waiting for or holding a connection in the client's pool (0 when quiet).

    Read from httpcore's pool (a test may look at private state; the SDK never does);
    aiohttp's pool is judged by the server's open connections after closing instead.
    """
    transport = connection.client._transport
    if isinstance(transport, AiohttpTransport):
        return 0
    pool = transport._pool
    busy = sum(1 for held in pool.connections if not held.is_idle())
    return busy + len(pool._requests)
