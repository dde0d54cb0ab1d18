"""``ziggeo-async demo``: a guided round on an embedded FakeZiggeo, no network or credentials."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import httpx2

from .._core.errors import NotFoundError
from .._faces.client import AsyncZiggeo
from ..testing import FakeZiggeo
from ._progress import Progress

__all__ = ["run_demo"]


def _step(name: str, detail: object) -> None:
    text = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)
    sys.stdout.write(f"{name:<9}-> {text}\n")
    sys.stdout.flush()


async def _batch_round(ziggeo: AsyncZiggeo, *, show_progress: bool, batch_size: int) -> list[str]:
    """create_many a batch with a progress bar; returns the new token ids."""
    progress = Progress(batch_size, sys.stderr, enabled=show_progress, label="create_many ")
    items = ({"session_limit": number, "volatile": True} for number in range(batch_size))
    created: list[str] = []
    started = time.perf_counter()
    async with ziggeo.authtokens.create_many(items, concurrency=32) as results:
        async for result in results:
            if result.value is not None:
                created.append(result.value.token)
            progress.advance()
    progress.finish()
    elapsed = time.perf_counter() - started
    _step(
        "batch",
        f"create_many made {len(created):,} tokens ({batch_size - len(created)} failed) "
        f"in {elapsed:.2f} s, {len(created) / elapsed:,.0f}/s, 32 in flight",
    )
    return created


async def run_demo(*, show_progress: bool, batch_size: int) -> int:
    """create, get, update, generate, decode, a batch, delete; each step printed."""
    fake = FakeZiggeo()
    sys.stdout.write("A round on an embedded FakeZiggeo (in memory; no network, no credentials).\n")
    http_client = httpx2.AsyncClient(transport=fake.transport())
    async with (
        http_client,
        AsyncZiggeo(
            fake.app_token, fake.private_key, fake.encryption_key, http_client=http_client
        ) as ziggeo,
    ):
        created = await ziggeo.authtokens.create(
            grants={"read": {"resources": ["video-1"]}},
            session_limit=1,
            usage_expiration_time=86400,
        )
        _step("create", created.to_json())
        _step("get", (await ziggeo.authtokens.get(created.token)).to_json())
        updated = await ziggeo.authtokens.update(created.token, session_limit=5)
        _step("update", {"session_limit": updated.session_limit})

        client_token = ziggeo.auth.generate(
            grants={"create": {"session_owned": True}}, session_limit=1
        )
        _step("generate", client_token[:24] + f"… ({len(client_token)} characters)")
        payload: dict[str, Any] = ziggeo.auth.decode(client_token)
        _step("decode", payload)

        batch = await _batch_round(ziggeo, show_progress=show_progress, batch_size=batch_size)
        failed_deletes = 0
        async with ziggeo.authtokens.delete_many(batch) as results:
            async for result in results:
                failed_deletes += not result.ok
        _step("batch", f"delete_many removed {len(batch) - failed_deletes:,} tokens")

        await ziggeo.authtokens.delete(created.token)
        try:
            await ziggeo.authtokens.get(created.token)
        except NotFoundError as error:
            _step("delete", f"gone: get now answers {error.status_code} {error.body!r}")
    sys.stdout.write(
        f"The fake saw {len(fake.requests):,} requests; {len(fake.tokens)} tokens left.\n"
    )
    return 0 if not failed_deletes and len(batch) == batch_size and not fake.tokens else 1
