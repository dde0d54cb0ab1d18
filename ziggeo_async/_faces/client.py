"""``AsyncZiggeo``: configuration, the HTTP client's lifecycle, and the resources."""

from __future__ import annotations

import base64
import os
import re
import sys
import warnings
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final

import attrs
import httpx2

from .._core.arguments import timeout_seconds
from .._core.cipher import MIN_ENCRYPTION_KEY_CHARS, ClientTokenCipher, WeakEncryptionKeyWarning
from .._core.defaults import DEFAULT_HOST, DEFAULT_MAX_RETRIES, EU_WEST_1_HOST
from .._core.errors import ClientClosedError, ConfigurationError, configuration_error
from .._http import (
    DEFAULT_TIMEOUT,
    HTTP_BACKENDS,
    HTTPBackend,
    HTTPConnection,
    aiohttp_installed,
    client_timeout,
    is_http_client,
    open_owned_connection,
)
from .._request.observe import RetryEvent
from .._request.pipeline import RequestPipeline
from .._request.retry import RetryPolicy, check_max_retries
from .._version import __version__
from ..resources import AsyncAuthTokens, Auth

# DEFAULT_TIMEOUT: the generated SyncZiggeo takes its signature default from here.
__all__ = ["DEFAULT_TIMEOUT", "AsyncZiggeo", "ClientConfig", "check_credential", "host_for"]

_USER_AGENT: Final = (
    f"ziggeo-async/{__version__} python/{sys.version_info.major}.{sys.version_info.minor}"
)


#: The environment variables ``from_env`` reads, and the arguments they become.
ENVIRONMENT: Final = {
    "ZIGGEO_APP_TOKEN": "app_token",
    "ZIGGEO_PRIVATE_KEY": "private_key",
    "ZIGGEO_ENCRYPTION_KEY": "encryption_key",
    "ZIGGEO_BASE_URL": "base_url",
}


def credentials_from_env(options: dict[str, Any]) -> tuple[str, str, str | None]:
    """(app token, private key, encryption key) from the environment; ``ZIGGEO_BASE_URL``
    goes into ``options`` unless it has a ``base_url``. Missing ones are named."""
    missing = [
        name for name in ("ZIGGEO_APP_TOKEN", "ZIGGEO_PRIVATE_KEY") if not os.environ.get(name)
    ]
    if missing:
        raise ConfigurationError(f"{' and '.join(missing)} not set in the environment")
    if os.environ.get("ZIGGEO_BASE_URL"):
        options.setdefault("base_url", os.environ["ZIGGEO_BASE_URL"])
    return (
        os.environ["ZIGGEO_APP_TOKEN"],
        os.environ["ZIGGEO_PRIVATE_KEY"],
        os.environ.get("ZIGGEO_ENCRYPTION_KEY") or None,
    )


def host_for(app_token: str) -> str:
    """The API host for an application: ``r1…`` tokens live in eu-west-1."""
    return EU_WEST_1_HOST if app_token.startswith("r1") else DEFAULT_HOST


_CONTROL_CHARACTER: Final = re.compile("[\x00-\x1f\x7f-\x9f]")


def check_credential(name: str, value: object, *, may_hold_colon: bool = True) -> None:
    """Refuse a credential by ``name``, never quoting it (``ConfigurationError``); the
    clients, ``FakeZiggeo`` and the command line check theirs here."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} must be a non-empty string")
    if not may_hold_colon and ":" in value:
        raise ConfigurationError(f"{name} must not contain ':' (it is the Basic auth user name)")
    # Checked here rather than left to .encode(): its UnicodeEncodeError would carry the secret.
    if any("\ud800" <= char <= "\udfff" for char in value):
        raise ConfigurationError(f"{name} must not contain a lone surrogate (it has no UTF-8 form)")
    # No credential holds one; a line break read in with it from a file or a secret does.
    control = _CONTROL_CHARACTER.search(value)
    if control is not None:
        raise ConfigurationError(
            f"{name} must not contain a control character "
            f"(U+{ord(control.group()):04X}; a line break read in with it?)"
        )


def check_encryption_key(encryption_key: str, *, stacklevel: int = 1) -> None:
    """Check ``encryption_key`` as every client checks it (``ConfigurationError``); warn with a
    ``WeakEncryptionKeyWarning`` if it is short; ``stacklevel`` as the caller's ``warn``'s."""
    # "" is an unset environment variable, not a key: tokens made with it fail later.
    check_credential("encryption_key", encryption_key)
    if len(encryption_key) < MIN_ENCRYPTION_KEY_CHARS:
        warnings.warn(
            f"encryption_key has {len(encryption_key)} characters; client auth tokens "
            f"are only as strong as an unsalted MD5 of it, so use at least "
            f"{MIN_ENCRYPTION_KEY_CHARS} random characters",
            WeakEncryptionKeyWarning,
            stacklevel=stacklevel + 1,
        )


#: A host name's label, as the connections below resolve it (IDNA already applied).
_HOST_LABEL: Final = re.compile(rb"[a-z0-9_-]{1,63}")
#: A ``%`` that does not start an escape.
_BARE_PERCENT: Final = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_MAX_HOST_CHARS: Final = 253
_MAX_PORT: Final = 65535


def _host_name_ok(host: bytes) -> bool:
    """Whether ``host`` (``URL.raw_host``) is an IP address or a name DNS can hold."""
    if b":" in host or host.replace(b".", b"").isdigit():
        return True  # an IP address: httpx2 has checked it
    name = host.removesuffix(b".")
    return len(name) <= _MAX_HOST_CHARS and all(
        _HOST_LABEL.fullmatch(label) for label in name.split(b".")
    )


def _check_base_url(base_url: str) -> str:
    if not isinstance(base_url, str):
        raise ConfigurationError(f"base_url must be a string, got {type(base_url).__name__}")
    try:
        url = httpx2.URL(base_url)
    except (httpx2.InvalidURL, UnicodeError) as error:
        raise ConfigurationError(f"base_url is not a URL: {error}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError("base_url must be an absolute http:// or https:// URL")
    # Checked here, not left to the first request: a port out of range or a label
    # too long or empty fails below it, as OverflowError, ValueError or UnicodeError.
    if not _host_name_ok(url.raw_host):
        host = url.raw_host.decode("ascii", "replace")
        raise ConfigurationError(f"base_url: {host!r} is not a host name")
    if url.port is not None and not 0 < url.port <= _MAX_PORT:
        raise ConfigurationError(f"base_url: the port must be from 1 to {_MAX_PORT}")
    if _BARE_PERCENT.search(url.raw_path):
        raise ConfigurationError("base_url: the path has a '%' that starts no %XX escape")
    if url.userinfo:
        raise ConfigurationError(
            "base_url must not carry credentials; they go in the Authorization header only"
        )
    # httpx keeps an empty "?" or "#" in the URL text, and the API path appended to
    # it would land in the query or fragment, so look at the text, not url.query.
    if url.query or url.fragment or "?" in base_url or "#" in base_url:
        raise ConfigurationError("base_url must not have a query or fragment")
    return str(url).rstrip("/")


def _check_retry(max_retries: object, retry: object) -> RetryPolicy:
    if retry is not None:
        if max_retries is not None:
            raise ConfigurationError(
                "give max_retries or retry, not both (retry=RetryPolicy(max_retries=...))"
            )
        if not isinstance(retry, RetryPolicy):
            raise ConfigurationError("retry must be a RetryPolicy")
        return retry
    if max_retries is None:
        return RetryPolicy(max_retries=DEFAULT_MAX_RETRIES)
    return RetryPolicy(max_retries=check_max_retries(max_retries))


def _check_client_deadline(deadline: object) -> float | None:
    return None if deadline is None else timeout_seconds("deadline", deadline, configuration_error)


@attrs.frozen
class ClientConfig:
    """A client's constructor arguments, checked; building one is the whole validation.

    Holds no event-loop state, so it is built in the caller's thread (errors surface
    there) and a client is assembled from it wherever it will run. ``auth`` lives here
    because it is local work with no I/O: sync and async clients share it as is.
    """

    app_token: str
    base_url: str
    timeout: httpx2.Timeout
    retry: RetryPolicy
    deadline: float | None
    http_client: httpx2.AsyncClient | None
    http_backend: str
    authorization: str = attrs.field(repr=False)
    auth: Auth = attrs.field(repr=False)
    on_retry: Callable[[RetryEvent], object] | None = attrs.field(default=None, repr=False)

    @classmethod
    def from_arguments(
        cls,
        app_token: str,
        private_key: str,
        encryption_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx2.Timeout = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        deadline: float | None = None,
        on_retry: Callable[[RetryEvent], object] | None = None,
        http_client: httpx2.AsyncClient | None = None,
        http_backend: HTTPBackend = "httpx2",
    ) -> ClientConfig:
        """Check ``AsyncZiggeo``'s arguments; raises ``ConfigurationError`` naming the bad one."""
        check_credential("app_token", app_token, may_hold_colon=False)
        check_credential("private_key", private_key)
        if encryption_key is not None:
            check_encryption_key(encryption_key, stacklevel=3)
        if on_retry is not None and not callable(on_retry):
            raise ConfigurationError("on_retry must be a callable taking a RetryEvent")
        if http_client is not None and not is_http_client(http_client):
            raise ConfigurationError(
                "http_client must be an httpx2.AsyncClient (or a legacy httpx.AsyncClient)"
            )
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
            timeout=client_timeout(timeout, configuration_error),
            retry=_check_retry(max_retries, retry),
            deadline=_check_client_deadline(deadline),
            on_retry=on_retry,
            http_client=http_client,
            http_backend=http_backend,
            authorization=f"Basic {credentials}",
            auth=Auth(
                None if encryption_key is None else ClientTokenCipher(app_token, encryption_key)
            ),
        )

    def with_options(
        self,
        *,
        timeout: float | httpx2.Timeout | None = None,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        deadline: float | None = None,
    ) -> ClientConfig:
        """This config with other call defaults (``None`` keeps a setting), checked."""
        config = self
        if max_retries is not None or retry is not None:
            config = attrs.evolve(config, retry=_check_retry(max_retries, retry))
        if timeout is not None:
            config = attrs.evolve(config, timeout=client_timeout(timeout, configuration_error))
        if deadline is not None:
            config = attrs.evolve(config, deadline=_check_client_deadline(deadline))
        return config


class AsyncZiggeo:
    """The async client for Ziggeo's auth-token API.

    ``app_token`` and ``private_key`` authenticate API calls; ``encryption_key`` is
    needed only for ``auth.generate``/``auth.decode``. The host follows the app
    token's region unless ``base_url`` is given. ``http_client`` lends an
    ``httpx2.AsyncClient`` (or a legacy ``httpx.AsyncClient``) that this client uses
    but never closes; otherwise an ``httpx2.AsyncClient`` is made on first use and
    closed by ``aclose()`` or ``async with``. ``http_backend="aiohttp"`` (asyncio only,
    ``pip install 'ziggeo-async[fast]'``) moves that client's bytes through aiohttp, for
    batch jobs bound by the client's CPU: same httpx2 requests, responses and errors.
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
        timeout: float | httpx2.Timeout = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        deadline: float | None = None,
        on_retry: Callable[[RetryEvent], object] | None = None,
        http_client: httpx2.AsyncClient | None = None,
        http_backend: HTTPBackend = "httpx2",
    ) -> None:
        self._assemble(
            ClientConfig.from_arguments(
                app_token,
                private_key,
                encryption_key,
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
                retry=retry,
                deadline=deadline,
                on_retry=on_retry,
                http_client=http_client,
                http_backend=http_backend,
            )
        )

    @classmethod
    def _from_config(cls, config: ClientConfig, parent: AsyncZiggeo | None = None) -> AsyncZiggeo:
        """A client from checked arguments: how ``SyncZiggeo`` makes one on its portal."""
        client = cls.__new__(cls)
        cls._assemble(client, config, parent)
        return client

    def _assemble(self, config: ClientConfig, parent: AsyncZiggeo | None = None) -> None:
        self._config = config
        # A client made by with_options: the parent's connections and lifecycle.
        self._parent = parent
        self._lent: HTTPConnection | None = (
            None if config.http_client is None else HTTPConnection(config.http_client, owned=False)
        )
        self._owned: HTTPConnection | None = None
        self._closed = False
        self._pipeline = RequestPipeline(
            base_url=config.base_url,
            authorization=config.authorization,
            user_agent=_USER_AGENT,
            timeout=config.timeout,
            policy=config.retry,
            connection=self._connection,
            deadline=config.deadline,
            on_retry=config.on_retry,
        )
        self.authtokens = AsyncAuthTokens(self._pipeline)
        self.auth = config.auth

    @property
    def app_token(self) -> str:
        """The application token (public)."""
        return self._config.app_token

    @property
    def base_url(self) -> str:
        """The API host every request goes to."""
        return self._config.base_url

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` has been called (on the client ``with_options`` was called on,
        for a client it made)."""
        return self._parent.closed if self._parent is not None else self._closed

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy every call of this client follows."""
        return self._config.retry

    @property
    def deadline(self) -> float | None:
        """Seconds a whole call may take, retries included (``None``: no limit)."""
        return self._config.deadline

    def with_options(
        self,
        *,
        timeout: float | httpx2.Timeout | None = None,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        deadline: float | None = None,
    ) -> AsyncZiggeo:
        """A client with other defaults that shares this one's connections and lifecycle.

        An argument left out (``None``) keeps this client's setting. Closing this client
        closes the one made here too; closing that one does nothing (it owns nothing).
        """
        config = self._config.with_options(
            timeout=timeout, max_retries=max_retries, retry=retry, deadline=deadline
        )
        return self._from_config(config, parent=self._parent or self)

    @classmethod
    def from_env(cls, **options: Any) -> AsyncZiggeo:
        """A client from ``ZIGGEO_APP_TOKEN``, ``ZIGGEO_PRIVATE_KEY`` and, when set,
        ``ZIGGEO_ENCRYPTION_KEY`` and ``ZIGGEO_BASE_URL``; keyword arguments are passed on
        (and win over ``ZIGGEO_BASE_URL``). A missing variable is a ``ConfigurationError``
        that names it."""
        return cls(*credentials_from_env(options), **options)

    def __repr__(self) -> str:
        state = ", closed" if self.closed else ""
        return f"AsyncZiggeo(app_token={self.app_token!r}, base_url={self.base_url!r}{state})"

    def __reduce__(self) -> str:
        raise TypeError("AsyncZiggeo holds credentials and an open HTTP client; it does not pickle")

    def _connection(self) -> HTTPConnection:
        if self._parent is not None:
            return self._parent._connection()  # noqa: SLF001 - same class
        if self._closed:
            raise ClientClosedError("this AsyncZiggeo is closed; make a new client")
        if self._lent is not None:
            return self._lent
        if self._owned is None:
            self._owned = open_owned_connection(self._config.timeout, self._config.http_backend)
        return self._owned

    async def aclose(self) -> None:
        """Close the connections this client made (a lent client stays open). Idempotent.

        On a client made by ``with_options``, nothing: the connections are its parent's.
        """
        if self._parent is not None:
            return
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
        if self.closed:
            raise ClientClosedError("this AsyncZiggeo is closed; make a new client")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
