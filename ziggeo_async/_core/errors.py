"""The exception tree of ziggeo-async.

Everything the SDK raises on purpose derives from :class:`ZiggeoError`::

    ZiggeoError
    ├── ConfigurationError        (also ValueError)  bad constructor argument, missing key
    ├── ValidationError           (also ValueError)  bad call argument, refused before I/O
    ├── ClientClosedError         (also RuntimeError) the client was closed
    ├── BlockingCallError         (also RuntimeError) a SyncZiggeo call where it would block a loop
    └── APIError                                      something went wrong talking to Ziggeo
        ├── APIConnectionError                        no usable HTTP response
        │   ├── APITimeoutError                       ... because a timeout expired
        │   └── APIResponseTooLargeError              ... because it was larger than the SDK reads
        ├── APIResponseValidationError                a 2xx whose body is not what the API documents
        └── APIStatusError                            a non-2xx status; status_code, body, response
            ├── BadRequestError            400
            ├── AuthenticationError        401
            ├── PermissionDeniedError      403
            ├── NotFoundError              404
            ├── ConflictError              409
            ├── UnprocessableEntityError   422
            ├── RateLimitError             429
            └── InternalServerError        >= 500

Any other status that is not a success (1xx, 3xx, other 4xx) raises
:class:`APIStatusError` itself. Messages never contain a credential: they name the
method, the path (a token id cut to its last 4 characters, as in the logs) and the status.

Every exception pickles: the live ``httpx2.Response`` is dropped on the way (it
holds the request, and so the Authorization header), the status and body survive.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx2

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseTooLargeError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BlockingCallError",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "Refusal",
    "UnprocessableEntityError",
    "ValidationError",
    "ZiggeoError",
    "configuration_error",
    "error_class_for_status",
]

#: How much of a body an error message quotes; ``body`` on the error holds all of it.
BODY_EXCERPT_CHARS = 500


class ZiggeoError(Exception):
    """Base class of every error the SDK raises on purpose."""


class ConfigurationError(ZiggeoError, ValueError):
    """The client was configured wrongly, or lacks what an operation needs."""


def configuration_error(argument: str, reason: str) -> ConfigurationError:
    """A ``ConfigurationError`` for one client argument, worded as a ``ValidationError`` is.

    What a check that serves both calls and clients is given to refuse with (see
    ``Refusal``), so a bad value reads the same wherever it was given.
    """
    return ConfigurationError(f"{argument}: {reason}")


class ClientClosedError(ZiggeoError, RuntimeError):
    """A call was made on a client after ``aclose()``/``close()``."""


class BlockingCallError(ZiggeoError, RuntimeError):
    """A blocking ``SyncZiggeo`` call was made inside a running event loop.

    It would stall that loop (or, on the client's own portal thread, deadlock);
    async code should use ``AsyncZiggeo``.
    """


class ValidationError(ZiggeoError, ValueError):
    """An argument was refused before anything was sent.

    ``argument`` names the offending argument (``"session_limit"``,
    ``"grants.read.resources"``, ``"token"``), ``reason`` says what was wrong.
    """

    def __init__(self, argument: str, reason: str) -> None:
        self.argument = argument
        self.reason = reason
        super().__init__(f"{argument}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.argument, self.reason))


#: How a check shared by calls and clients refuses a value: ``ValidationError`` for a
#: call's argument, ``configuration_error`` for a client's (its constructor, ``with_options``).
Refusal = Callable[[str, str], ZiggeoError]


class APIError(ZiggeoError):
    """A call reached for Ziggeo and did not get a usable answer.

    ``method`` and ``path`` name the request (``path`` never holds credentials).
    """

    def __init__(self, message: str, *, method: str, path: str) -> None:
        self.message = message
        self.method = method
        self.path = path
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.__dict__.copy()))


class APIConnectionError(APIError):
    """No HTTP response: the connection failed, broke, or could not be made."""


class APITimeoutError(APIConnectionError):
    """A connect, read, write or pool timeout expired."""


class APIResponseTooLargeError(APIConnectionError):
    """The response declared, sent or inflated to more than the SDK reads (1 MiB).

    The connection was closed unread. Not retried: a server that answers so once will
    again, and a create may have been acted on.
    """


class APIResponseValidationError(APIError):
    """A success status whose body is not a valid auth token object.

    ``body`` holds the body as received (text), ``status_code`` the status.
    """

    def __init__(
        self, message: str, *, method: str, path: str, status_code: int, body: str
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.status_code = status_code
        self.body = body


class APIStatusError(APIError):
    """Ziggeo answered with a status that is not a success.

    ``status_code`` is the status, ``body`` the body text exactly as received
    (plain text, HTML or JSON alike), ``response`` the ``httpx2.Response`` (a legacy
    ``httpx.Response`` when the client lent was a legacy httpx one)
    (``None`` after unpickling).
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        path: str,
        status_code: int,
        body: str,
        response: httpx2.Response | None,
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.status_code = status_code
        self.body = body
        self.response = response

    def __reduce__(self) -> tuple[Any, ...]:
        state = self.__dict__.copy()
        state["response"] = None
        return (_rebuild, (type(self), state))


class BadRequestError(APIStatusError):
    """400: Ziggeo refused the request as malformed."""


class AuthenticationError(APIStatusError):
    """401: the application token or private key was not accepted."""


class PermissionDeniedError(APIStatusError):
    """403: the credentials may not do this."""


class NotFoundError(APIStatusError):
    """404: no auth token with that token or key."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the current state."""


class UnprocessableEntityError(APIStatusError):
    """422: the request was understood but its content refused."""


class RateLimitError(APIStatusError):
    """429: too many requests."""


class InternalServerError(APIStatusError):
    """A status of 500 or more: Ziggeo failed."""


_CLASS_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_class_for_status(status_code: int) -> type[APIStatusError]:
    """The exception class for a status that is not a success."""
    if status_code >= 500:  # noqa: PLR2004 - the whole 5xx family
        return InternalServerError
    return _CLASS_BY_STATUS.get(status_code, APIStatusError)


def status_error_message(method: str, path: str, status_code: int, body: str) -> str:
    """``POST /v1/authtokens/ returned 404: <first 500 characters of the body>``."""
    preview = body[:BODY_EXCERPT_CHARS] + ("…" if len(body) > BODY_EXCERPT_CHARS else "")
    return f"{method} {path} returned {status_code}: {preview!r}"


def _rebuild(cls: type[APIError], state: dict[str, Any]) -> APIError:
    error = cls.__new__(cls)
    Exception.__init__(error, state["message"])
    error.__dict__.update(state)
    return error


class Failure(enum.Enum):
    """A transport failure, by what it says about whether the request reached Ziggeo."""

    #: Connect refused or timed out, or no pooled connection came free: nothing was sent.
    NOT_SENT = "not sent"
    #: Timed out or dropped after sending began: Ziggeo may have acted on it.
    MAYBE_SENT = "maybe sent"
    #: A failure that trying again cannot fix (unsupported scheme, invalid request).
    PERMANENT = "permanent"
