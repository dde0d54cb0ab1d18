"""A full round against an in-process stand-in for Ziggeo: no network, no credentials.

    python examples/tour.py

create -> get -> update -> generate -> decode -> delete, printing each result.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import timedelta
from urllib.parse import parse_qsl

import httpx

from ziggeo_async import AsyncZiggeo, Grant, Grants, NotFoundError


def stand_in_for_ziggeo() -> httpx.MockTransport:
    """Just enough of the auth-token API to show the SDK at work."""
    tokens: dict[str, dict[str, object]] = {}

    def handle(request: httpx.Request) -> httpx.Response:
        token_id = request.url.path.removeprefix("/v1/authtokens/")
        fields: dict[str, object] = dict(parse_qsl(request.content.decode()))
        if "grants" in fields:
            fields["grants"] = json.loads(str(fields["grants"]))
        if request.method == "POST" and not token_id:
            token_id = secrets.token_hex(16)
            tokens[token_id] = {"token": token_id, "nonce": secrets.token_hex(8), **fields}
            return httpx.Response(201, json=tokens[token_id])
        if token_id not in tokens:
            return httpx.Response(404, text="Authorization token not found")
        if request.method == "DELETE":
            del tokens[token_id]
            return httpx.Response(200, json={})
        if request.method == "POST":
            tokens[token_id].update(fields)
        return httpx.Response(200, json=tokens[token_id])

    return httpx.MockTransport(handle)


async def main() -> None:
    http_client = httpx.AsyncClient(transport=stand_in_for_ziggeo())
    async with (
        http_client,
        AsyncZiggeo(
            "tour-app-token", "tour-private-key", "tour-encryption-key", http_client=http_client
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
        print("decode  ->", ziggeo.auth.decode(client_token))

        await ziggeo.authtokens.delete(created.token)
        try:
            await ziggeo.authtokens.get(created.token)
        except NotFoundError as error:
            print("delete  -> gone:", error.status_code, error.body)


if __name__ == "__main__":
    asyncio.run(main())
