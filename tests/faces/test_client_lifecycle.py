"""An AsyncZiggeo dropped without aclose(): it warns, and what it opened is released."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from ziggeo_async import AsyncZiggeo
from ziggeo_async.testing import FakeZiggeo

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="counts open descriptors in /proc/self/fd"
)


def open_descriptors() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


@pytest.mark.parametrize("http_backend", ["httpx2", "aiohttp"])
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_a_dropped_client_that_opened_connections_warns(
    served_fake: tuple[FakeZiggeo, str], http_backend: str
) -> None:
    fake, url = served_fake
    client = AsyncZiggeo(fake.app_token, fake.private_key, base_url=url, http_backend=http_backend)  # type: ignore[arg-type]
    await client.authtokens.create()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del client
        gc.collect()
    mine = [w for w in caught if "AsyncZiggeo" in str(w.message)]
    assert [w.category for w in mine] == [ResourceWarning]
    assert "was not closed" in str(mine[0].message)
    assert fake.private_key not in str(mine[0].message)


HTTP_BACKENDS = ["httpx2", "aiohttp"]

# In a child interpreter: a client that keeps its sockets would otherwise leave them to
# be collected (and warned about) during whichever test runs next.
DROPPED_CLIENT = """
import asyncio, gc, sys, warnings
from pathlib import Path
from tests._support import serve_on_uvicorn
from ziggeo_async import AsyncZiggeo
from ziggeo_async.testing import FakeZiggeo

def open_descriptors():
    return sum(1 for _ in Path("/proc/self/fd").iterdir())

async def main(fake, url):
    baseline = open_descriptors()
    client = AsyncZiggeo(fake.app_token, fake.private_key, base_url=url, http_backend=sys.argv[1])
    await client.authtokens.create()
    opened = open_descriptors()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        del client
        gc.collect()
    # The client's socket closes; the server then closes its end.
    for _ in range(500):
        if open_descriptors() <= baseline:
            break
        await asyncio.sleep(0.01)
    print(baseline, opened, open_descriptors())

fake = FakeZiggeo()
with warnings.catch_warnings(), serve_on_uvicorn(fake.asgi_app) as url:
    warnings.simplefilter("ignore", ResourceWarning)
    asyncio.run(main(fake, url))
"""


@pytest.mark.parametrize("http_backend", HTTP_BACKENDS)
def test_a_dropped_client_releases_its_sockets(http_backend: str) -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", DROPPED_CLIENT, http_backend],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == 0, done.stderr
    baseline, opened, after = map(int, done.stdout.split())
    assert opened > baseline  # a connection was open, on both ends
    assert after <= baseline


@pytest.mark.anyio
async def test_a_client_closed_or_never_used_or_on_a_lent_client_does_not_warn(
    served_fake: tuple[FakeZiggeo, str],
) -> None:
    import httpx

    fake, url = served_fake
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        closed = AsyncZiggeo(fake.app_token, fake.private_key, base_url=url)
        await closed.authtokens.create()
        await closed.aclose()
        never_used = AsyncZiggeo(fake.app_token, fake.private_key, base_url=url)
        async with httpx.AsyncClient() as http_client:
            lent = AsyncZiggeo(
                fake.app_token, fake.private_key, base_url=url, http_client=http_client
            )
            await lent.authtokens.create()
            del closed, never_used, lent
            gc.collect()
    assert [w for w in caught if "AsyncZiggeo" in str(w.message)] == []
