"""Blocking code on ziggeo-async: ``SyncZiggeo``, and the drop-in for the official SDK.

    python examples/legacy_sync.py

Part 1 uses ``SyncZiggeo``: AsyncZiggeo's constructor and method names, without
``await``, for Django views, scripts and worker processes. Part 2 is code written for
the official ``ziggeo`` package, unchanged but for its import, on
``ziggeo_async.legacy``. With ZIGGEO_APP_TOKEN and ZIGGEO_PRIVATE_KEY (and
ZIGGEO_ENCRYPTION_KEY) set it talks to Ziggeo; without them it runs on an embedded
FakeZiggeo, in memory.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta

import anyio
import httpx2

from ziggeo_async import NotFoundError, SyncZiggeo
from ziggeo_async.legacy import Ziggeo
from ziggeo_async.testing import FakeZiggeo


def typed_round(ziggeo: SyncZiggeo) -> None:
    """The typed API, blocking: the same calls as AsyncZiggeo, without await."""
    token = ziggeo.authtokens.create(
        grants={"read": {"resources": ["VIDEO_TOKEN"]}},
        session_limit=1,
        usage_expiration_time=timedelta(days=1),
    )
    print("SyncZiggeo create ->", token.token, "session_limit", token.session_limit)
    token = ziggeo.authtokens.update(token.token, session_limit=5)
    print("SyncZiggeo update ->", token.session_limit)
    client_token = ziggeo.auth.generate(grants={"create": {"session_owned": True}})
    print("SyncZiggeo generate ->", client_token[:24] + "...")
    ziggeo.authtokens.delete(token.token)
    try:
        ziggeo.authtokens.get(token.token)
    except NotFoundError as error:
        print("SyncZiggeo delete -> gone:", error.status_code)


def legacy_round(ziggeo: Ziggeo) -> None:
    """Code as written for the official SDK: dicts in, dicts out."""
    token = ziggeo.authtokens().create(
        {"grants": json.dumps({"read": {"resources": ["VIDEO_TOKEN"]}}), "session_limit": 1}
    )
    print("legacy create ->", token["token"], "session_limit", token["session_limit"])
    token = ziggeo.authtokens().update(token["token"], {"session_limit": 5})
    print("legacy update ->", token["session_limit"])
    print("legacy get ->", ziggeo.authtokens().get(token["token"])["grants"])
    options = {"grants": {"create": {"session_owned": True}}, "session_limit": 1}
    print("legacy generate ->", ziggeo.auth().generate(options)[:24] + "...")
    ziggeo.authtokens().delete(token["token"])
    # Where the official SDK returned an error string, the drop-in raises the typed error.
    try:
        ziggeo.authtokens().get(token["token"])
    except NotFoundError as error:
        print("legacy delete -> gone:", error.status_code)


def main() -> int:
    app_token = os.environ.get("ZIGGEO_APP_TOKEN")
    if app_token:
        credentials = (
            app_token,
            os.environ["ZIGGEO_PRIVATE_KEY"],
            os.environ.get("ZIGGEO_ENCRYPTION_KEY"),
        )
        base_url = os.environ.get("ZIGGEO_BASE_URL") or None
        http_client = None
    else:
        print("ZIGGEO_APP_TOKEN is not set: using an embedded FakeZiggeo", file=sys.stderr)
        fake = FakeZiggeo()
        credentials = (fake.app_token, fake.private_key, fake.encryption_key)
        base_url = None
        # Lent to both clients; they use it on their own portal threads and never close it.
        http_client = httpx2.AsyncClient(transport=fake.transport())

    # One client per process, closed by `with` (it holds a thread): in a web app, make
    # it at start-up and close it at shutdown rather than one per request.
    with SyncZiggeo(*credentials, base_url=base_url, http_client=http_client) as ziggeo:
        typed_round(ziggeo)
    with Ziggeo(*credentials, base_url=base_url, http_client=http_client) as legacy:
        legacy_round(legacy)

    if http_client is not None:
        anyio.run(http_client.aclose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
