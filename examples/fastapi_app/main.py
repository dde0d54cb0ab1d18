"""A FastAPI app that hands out Ziggeo auth tokens to a video site's pages.

    pip install ziggeo-async fastapi uvicorn
    uvicorn examples.fastapi_app.main:app

With ZIGGEO_APP_TOKEN and ZIGGEO_PRIVATE_KEY (and ZIGGEO_ENCRYPTION_KEY) set, it talks
to Ziggeo; without them it runs on an embedded FakeZiggeo, in memory.

The pattern to copy:

- ``lifespan`` opens one ``AsyncZiggeo`` when the app starts and closes it when the
  app stops; every request shares it (and its connection pool).
- ``ZiggeoDep`` hands that client to any handler that names it.
- ``ziggeo_error_response`` turns the SDK's typed errors into HTTP answers that say
  what went wrong without passing on Ziggeo's body or anything secret.
"""

from __future__ import annotations

import html
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated

import httpx2
from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from ziggeo_async import (
    APIConnectionError,
    APIError,
    APIStatusError,
    AsyncZiggeo,
    Grant,
    Grants,
    NotFoundError,
    RateLimitError,
    ValidationError,
    ZiggeoError,
)
from ziggeo_async.testing import FakeZiggeo

logger = logging.getLogger("fastapi_app")

#: How long a page has to start a recorder or player with its client auth token.
CLIENT_TOKEN_LIFETIME = timedelta(minutes=10)
#: Page loads a client auth token allows (a refresh is a new session).
CLIENT_TOKEN_SESSIONS = 1
ZIGGEO_SCRIPT = "https://assets.ziggeo.com/v2-stable/ziggeo.js"
#: A video token or auth token id from the path. What else makes one valid is the SDK's to
#: check: it refuses ".", ".." and control characters before anything is sent.
TokenId = Annotated[str, Path(min_length=1, max_length=128)]


@dataclass(frozen=True)
class Settings:
    """Ziggeo credentials; ``base_url`` is for a stand-in such as ``ziggeo-async fake serve``."""

    app_token: str
    private_key: str
    encryption_key: str
    base_url: str | None = None

    def __repr__(self) -> str:  # the dataclass repr would print the secrets
        return f"Settings(app_token={self.app_token!r}, base_url={self.base_url!r})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings | None:
        """Settings from ``ZIGGEO_*`` variables, or ``None`` when no app token is set."""
        app_token = environ.get("ZIGGEO_APP_TOKEN")
        if not app_token:
            return None
        missing = [
            name
            for name in ("ZIGGEO_PRIVATE_KEY", "ZIGGEO_ENCRYPTION_KEY")
            if not environ.get(name)
        ]
        if missing:
            raise RuntimeError(f"ZIGGEO_APP_TOKEN is set, so set {' and '.join(missing)} too")
        return cls(
            app_token=app_token,
            private_key=environ["ZIGGEO_PRIVATE_KEY"],
            encryption_key=environ["ZIGGEO_ENCRYPTION_KEY"],
            base_url=environ.get("ZIGGEO_BASE_URL") or None,
        )


def create_app(
    settings: Settings | None = None, *, http_client: httpx2.AsyncClient | None = None
) -> FastAPI:
    """The app. Without ``settings`` it reads the environment when it starts.

    ``http_client`` is lent to the ``AsyncZiggeo`` (tests pass one on a
    ``FakeZiggeo`` transport); the app never closes a lent client.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            chosen, lent = settings or Settings.from_env(), http_client
            if chosen is None:
                fake = FakeZiggeo()
                logger.warning("ZIGGEO_APP_TOKEN is not set: using an embedded FakeZiggeo")
                chosen = Settings(fake.app_token, fake.private_key, fake.encryption_key)
                lent = await stack.enter_async_context(
                    httpx2.AsyncClient(transport=fake.transport())
                )
            app.state.ziggeo = await stack.enter_async_context(
                AsyncZiggeo(
                    chosen.app_token,
                    chosen.private_key,
                    chosen.encryption_key,
                    base_url=chosen.base_url,
                    http_client=lent,
                )
            )
            yield
        # Leaving the stack closed the client (and the embedded fake's HTTP client).

    app = FastAPI(title="Ziggeo tokens", lifespan=lifespan)
    app.add_exception_handler(ZiggeoError, ziggeo_error_response)  # type: ignore[arg-type]
    app.include_router(router)
    return app


async def get_ziggeo(request: Request) -> AsyncZiggeo:
    """The app's one ``AsyncZiggeo``, opened by the lifespan."""
    ziggeo: AsyncZiggeo = request.app.state.ziggeo
    return ziggeo


ZiggeoDep = Annotated[AsyncZiggeo, Depends(get_ziggeo)]
router = APIRouter()


async def ziggeo_error_response(request: Request, error: ZiggeoError) -> Response:
    """Map an SDK error to an HTTP answer; Ziggeo's own body stays in the server log.

    404 stays 404, a refused argument is the caller's 422, Ziggeo being busy or out of
    reach is 503 (with ``Retry-After`` when Ziggeo gave one), anything else Ziggeo
    got wrong, credentials included, is a 502: the caller cannot fix it.
    """
    logger.warning("%s %s: %s", request.method, request.url.path, error)
    if isinstance(error, NotFoundError):
        return _problem(status.HTTP_404_NOT_FOUND, "no such auth token")
    if isinstance(error, ValidationError):
        return _problem(422, f"invalid {error.argument}")
    if isinstance(error, RateLimitError) or (
        isinstance(error, APIStatusError)
        and error.status_code == status.HTTP_503_SERVICE_UNAVAILABLE
    ):
        retry_after = error.response.headers.get("retry-after") if error.response else None
        headers = {"Retry-After": retry_after} if retry_after else None
        return _problem(status.HTTP_503_SERVICE_UNAVAILABLE, "Ziggeo is busy", headers)
    if isinstance(error, APIConnectionError):
        return _problem(status.HTTP_503_SERVICE_UNAVAILABLE, "Ziggeo is unreachable")
    if isinstance(error, APIError):
        return _problem(status.HTTP_502_BAD_GATEWAY, "Ziggeo request failed")
    return _problem(status.HTTP_500_INTERNAL_SERVER_ERROR, "server misconfigured")


def _problem(code: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=code, headers=headers)


# -- the endpoints -------------------------------------------------------------------


class ClientToken(BaseModel):
    client_auth: str
    expires_at: datetime


class ServerTokenRequest(BaseModel):
    video: str = Field(min_length=1, description="the video token or key the token may play")
    session_limit: int = Field(default=1, ge=1, le=100)
    hours: int = Field(default=24, ge=1, le=24 * 30, description="how long a session may last")


class ServerToken(BaseModel):
    server_auth: str
    session_limit: int | None


def _client_token(ziggeo: AsyncZiggeo, grants: Grants) -> ClientToken:
    expires_at = datetime.now(timezone.utc).replace(microsecond=0) + CLIENT_TOKEN_LIFETIME
    token = ziggeo.auth.generate(
        grants=grants, session_limit=CLIENT_TOKEN_SESSIONS, expiration_date=expires_at
    )
    return ClientToken(client_auth=token, expires_at=expires_at)


@router.post("/tokens/recorder")
async def recorder_token(ziggeo: ZiggeoDep) -> ClientToken:
    """A client auth token that may record new videos, and only touch its own."""
    return _client_token(ziggeo, Grants(create=Grant(session_owned=True)))


@router.post("/videos/{video}/player-token")
async def player_token(video: TokenId, ziggeo: ZiggeoDep) -> ClientToken:
    """A client auth token that may play this one video."""
    return _client_token(ziggeo, Grants(read=Grant(resources=[video])))


@router.post("/server-tokens", status_code=status.HTTP_201_CREATED)
async def create_server_token(body: ServerTokenRequest, ziggeo: ZiggeoDep) -> ServerToken:
    """A server auth token for one video, stored at Ziggeo until revoked."""
    token = await ziggeo.authtokens.create(
        grants=Grants(read=Grant(resources=[body.video])),
        session_limit=body.session_limit,
        usage_expiration_time=timedelta(hours=body.hours),
    )
    return ServerToken(server_auth=token.token, session_limit=token.session_limit)


@router.get("/server-tokens/{token}")
async def show_server_token(token: TokenId, ziggeo: ZiggeoDep) -> ServerToken:
    found = await ziggeo.authtokens.get(token)
    return ServerToken(server_auth=found.token, session_limit=found.session_limit)


@router.delete("/server-tokens/{token}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_server_token(token: TokenId, ziggeo: ZiggeoDep) -> None:
    """Revoke a server auth token: pages that carry it stop working."""
    await ziggeo.authtokens.delete(token)


# -- the page ------------------------------------------------------------------------

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Watch and record</title>
  <link rel="stylesheet" href="https://assets.ziggeo.com/v2-stable/ziggeo.css">
  <script src="{script}"></script>
  <script>new ZiggeoApi.V2.Application({{token: {app_token}, auth: true}});</script>
</head>
<body>
  <ziggeoplayer ziggeo-video="{video}" {player_auth}></ziggeoplayer>
  <ziggeorecorder ziggeo-client-auth="{recorder_auth}"></ziggeorecorder>
</body>
</html>
"""


@router.get("/videos/{video}", response_class=HTMLResponse)
async def video_page(video: TokenId, ziggeo: ZiggeoDep, server_auth: bool = False) -> str:
    """A page with a player for ``video`` and a recorder, each carrying its token.

    The player gets a client auth token, or with ``?server_auth=true`` a server auth
    token made for this page view (one session, an hour).
    """
    if server_auth:
        token = await ziggeo.authtokens.create(
            grants=Grants(read=Grant(resources=[video])),
            session_limit=1,
            usage_expiration_time=timedelta(hours=1),
        )
        player_auth = f'ziggeo-server-auth="{html.escape(token.token)}"'
    else:
        client = _client_token(ziggeo, Grants(read=Grant(resources=[video])))
        player_auth = f'ziggeo-client-auth="{html.escape(client.client_auth)}"'
    recorder = _client_token(ziggeo, Grants(create=Grant(session_owned=True)))
    return PAGE.format(
        script=ZIGGEO_SCRIPT,
        # A JSON string is a valid JS string; "<" escaped so no "</script>" can end the tag.
        app_token=json.dumps(ziggeo.app_token).replace("<", "\\u003c"),
        video=html.escape(video),
        player_auth=player_auth,
        recorder_auth=html.escape(recorder.client_auth),
    )


app = create_app()
