"""A full round against FakeZiggeo, the SDK's in-memory stand-in: no network, no credentials.

    python examples/tour.py

create -> get -> update -> generate -> decode -> delete, printing each result.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx2

from ziggeo_async import AsyncZiggeo, Grant, Grants, NotFoundError
from ziggeo_async.testing import FakeZiggeo


async def main() -> None:
    fake = FakeZiggeo()
    http_client = httpx2.AsyncClient(transport=fake.transport())
    async with (
        http_client,
        AsyncZiggeo(
            fake.app_token, fake.private_key, fake.encryption_key, http_client=http_client
        ) as ziggeo,
    ):
        created = await ziggeo.authtokens.create(
            grants=Grants(read=Grant(resources=["video-1"])),
            session_limit=1,
            usage_expiration_time=timedelta(days=1),
        )
        print("create  ->", created)
        print("get     ->", await ziggeo.authtokens.get(created.token))
        print("update  ->", await ziggeo.authtokens.update(created.token, session_limit=5))

        client_token = ziggeo.auth.generate(
            grants={"create": {"session_owned": True}}, session_limit=1
        )
        print("generate->", client_token[:32] + "…")
        print("decode  ->", fake.verify_client_token(client_token))

        await ziggeo.authtokens.delete(created.token)
        try:
            await ziggeo.authtokens.get(created.token)
        except NotFoundError as error:
            print("delete  -> gone:", error.status_code, error.body)
    print(f"FakeZiggeo saw {len(fake.requests)} requests and holds {len(fake.tokens)} tokens.")


if __name__ == "__main__":
    asyncio.run(main())
