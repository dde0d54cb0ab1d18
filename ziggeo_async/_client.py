"""``AsyncZiggeo``: configuration, the HTTP client's lifecycle, and the resources."""

from __future__ import annotations

import base64
import sys
import warnings
from types import TracebackType
from typing import Final, Literal

import attrs
import httpx

from ._connection import (
    HTTP_BACKENDS,
    ClientConnection,
    HTTPConnection,
    aiohttp_installed,
    open_connection,
)
from ._errors import ClientClosedError, ConfigurationError
from ._pipeline import RequestPipeline
from ._retry import RetryPolicy
from ._tokens import MIN_ENCRYPTION_KEY_CHARS, ClientTokenCipher, WeakEncryptionKeyWarning
from ._version import __version__
from .resources import AsyncAuthTokens, Auth

__all__ = ["DEFAULT_HOST", "EU_WEST_1_HOST", "AsyncZiggeo", "ClientConfig", "host_for"]

DEFAULT_HOST: Final = "https://srv-api.ziggeo.com"
EU_WEST_1_HOST: Final = "https://srv-api-eu-west-1.ziggeo.com"
DEFAULT_TIMEOUT: Final = httpx.Timeout(30.0, connect=10.0)
DEFAULT_MAX_RETRIES: Final = 2
# Batch jobs keep dozens of requests in flight; a keep-alive pool smaller than the
# connection limit would close and reopen connections between requests.
DEFAULT_LIMITS: Final = httpx.Limits(max_connections=100, max_keepalive_connections=100)
_USER_AGENT: Final = (
    f"ziggeo-async/{__version__} python/{sys.version_info.major}.{sys.version_info.minor}"
)


def host_for(app_token: str) -> str:
    """The API host for an application: ``r1…`` tokens live in eu-west-1."""
    return EU_WEST_1_HOST if app_token.startswith("r1") else DEFAULT_HOST


def _check_credential(name: str, value: object, *, may_hold_colon: bool = True) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} must be a non-empty string")
    if not may_hold_colon and ":" in value:
        raise ConfigurationError(f"{name} must not contain ':' (it is the Basic auth user name)")
    # Checked here rather than left to .encode(): its UnicodeEncodeError would carry the secret.
    if any("\ud800" <= char <= "\udfff" for char in value):
        raise ConfigurationError(f"{name} must not contain a lone surrogate (it has no UTF-8 form)")
    return value


def _check_base_url(base_url: str) -> str:
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError) as error:
        raise ConfigurationError(f"base_url is not a URL: {error}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError("base_url must be an absolute http:// or https:// URL")
    if url.userinfo:
        raise ConfigurationError(
            "base_url must not carry credentials; they go in the Authorization header only"
        )
    # httpx keeps an empty "?" or "#" in the URL text, and the API path appended to
    # it would land in the query or fragment, so look at the text, not url.query.
    if url.query or url.fragment or "?" in base_url or "#" in base_url:
        raise ConfigurationError("base_url must not have a query or fragment")
    return str(url).rstrip("/")


def _check_timeout(timeout: object) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigurationError("timeout must be a positive number of seconds or an httpx.Timeout")
    return httpx.Timeout(timeout)


@attrs.frozen
class ClientConfig:
    """A client's constructor arguments, checked; building one is the whole validation.

    Holds no event-loop state, so it is built in the caller's thread (errors surface
    there) and a client is assembled from it wherever it will run. ``auth`` lives here
    because it is local work with no I/O: sync and async clients share it as is.
    """

    app_token: str
    base_url: str
    timeout: httpx.Timeout
    max_retries: int
    http_client: httpx.AsyncClient | None
    http_backend: str
    authorization: str = attrs.field(repr=False)
    auth: Auth = attrs.field(repr=False)

    @classmethod
    def from_arguments(
        cls,
        app_token: str,
        private_key: str,
        encryption_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
        http_backend: Literal["httpx", "aiohttp"] = "httpx",
    ) -> ClientConfig:
        """Check ``AsyncZiggeo``'s arguments; raises ``ConfigurationError`` naming the bad one."""
        _check_credential("app_token", app_token, may_hold_colon=False)
        _check_credential("private_key", private_key)
        if encryption_key is not None:
            # "" is an unset environment variable, not a key: tokens made with it fail later.
            _check_credential("encryption_key", encryption_key)
            if len(encryption_key) < MIN_ENCRYPTION_KEY_CHARS:
                warnings.warn(
                    f"encryption_key has {len(encryption_key)} characters; client auth tokens "
                    f"are only as strong as an unsalted MD5 of it, so use at least "
                    f"{MIN_ENCRYPTION_KEY_CHARS} random characters",
                    WeakEncryptionKeyWarning,
                    stacklevel=3,
                )
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError("max_retries must be an int >= 0")
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise ConfigurationError("http_client must be an httpx.AsyncClient")
        if http_backend not in HTTP_BACKENDS:
            raise ConfigurationError(f"http_backend must be one of {', '.join(HTTP_BACKENDS)}")
        if http_backend == "aiohttp":
            if http_client is not None:
                raise ConfigurationError(
                    "http_backend chooses the connection the SDK makes; a lent http_client "
                    "is used as it is"
                )
            if not aiohttp_installed():
                raise ConfigurationError(
                    "http_backend='aiohttp' needs aiohttp: pip install 'ziggeo-async[fast]'"
                )
        credentials = base64.b64encode(f"{app_token}:{private_key}".encode()).decode("ascii")
        return cls(
            app_token=app_token,
            base_url=host_for(app_token) if base_url is None else _check_base_url(base_url),
            timeout=_check_timeout(timeout),
            max_retries=max_retries,
            http_client=http_client,
            http_backend=http_backend,
            authorization=f"Basic {credentials}",
            auth=Auth(
                None if encryption_key is None else ClientTokenCipher(app_token, encryption_key)
            ),
        )


class AsyncZiggeo:
    """The async client for Ziggeo's auth-token API.

    ``app_token`` and ``private_key`` authenticate API calls; ``encryption_key`` is
    needed only for ``auth.generate``/``auth.decode``. The host follows the app
    token's region unless ``base_url`` is given. ``http_client`` lends an
    ``httpx.AsyncClient`` that this client uses but never closes; otherwise a
    connection pool is made on first use and closed by ``aclose()`` or ``async with``.
    ``http_backend="aiohttp"`` (asyncio only, ``pip install 'ziggeo-async[fast]'``)
    moves that pool's bytes through aiohttp instead: about 15 % less CPU per request
    when a batch job is CPU-bound, same httpx requests, responses and errors; tools
    that mock httpcore (respx) do not see those requests.
    """

    authtokens: AsyncAuthTokens
    """The auth-token endpoints."""
    auth: Auth
    """Client auth tokens, made locally."""

    def __init__(
        self,
        app_token: str,
        private_key: str,
        encryption_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
        http_backend: Literal["httpx", "aiohttp"] = "httpx",
    ) -> None:
        self._assemble(
            ClientConfig.from_arguments(
                app_token,
                private_key,
                encryption_key,
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
                http_client=http_client,
                http_backend=http_backend,
            )
        )

    @classmethod
    def _from_config(cls, config: ClientConfig) -> AsyncZiggeo:
        """A client from checked arguments: how ``SyncZiggeo`` makes one on its portal."""
        client = cls.__new__(cls)
        cls._assemble(client, config)
        return client

    def _assemble(self, config: ClientConfig) -> None:
        self._app_token = config.app_token
        self._base_url = config.base_url
        self._timeout = config.timeout
        self._http_backend = config.http_backend
        self._lent: HTTPConnection | None = (
            None
            if config.http_client is None
            else ClientConnection(config.http_client, owned=False)
        )
        self._owned: HTTPConnection | None = None
        self._closed = False
        self._pipeline = RequestPipeline(
            base_url=self._base_url,
            authorization=config.authorization,
            user_agent=_USER_AGENT,
            timeout=self._timeout,
            policy=RetryPolicy(max_retries=config.max_retries),
            connection=self._connection,
        )
        self.authtokens = AsyncAuthTokens(self._pipeline)
        self.auth = config.auth

    @property
    def app_token(self) -> str:
        """The application token (public)."""
        return self._app_token

    @property
    def base_url(self) -> str:
        """The API host every request goes to."""
        return self._base_url

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` has been called."""
        return self._closed

    def __repr__(self) -> str:
        state = ", closed" if self._closed else ""
        return f"AsyncZiggeo(app_token={self._app_token!r}, base_url={self._base_url!r}{state})"

    def __reduce__(self) -> str:
        raise TypeError("AsyncZiggeo holds credentials and an open HTTP client; it does not pickle")

    def _connection(self) -> HTTPConnection:
        if self._closed:
            raise ClientClosedError("this AsyncZiggeo is closed; make a new client")
        if self._lent is not None:
            return self._lent
        if self._owned is None:
            self._owned = open_connection(DEFAULT_LIMITS, self._timeout, self._http_backend)
        return self._owned

    async def aclose(self) -> None:
        """Close the connections this client made (a lent client stays open). Idempotent."""
        self._closed = True
        owned, self._owned = self._owned, None
        if owned is not None:
            await owned.aclose()

    def __del__(self) -> None:
        # Only a warning: closing needs the event loop, which a finalizer must not touch.
        # What the pool holds is released with it, when it is collected too.
        if getattr(self, "_owned", None) is not None and not self._closed:
            warnings.warn(
                f"{self!r} was not closed; use `async with` or `await aclose()` "
                "(its connections are released only when it is collected)",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )

    async def __aenter__(self) -> AsyncZiggeo:
        if self._closed:
            raise ClientClosedError("this AsyncZiggeo is closed; make a new client")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
