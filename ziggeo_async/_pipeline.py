"""The one request path every operation takes: build, send, classify, retry, map errors."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import anyio
import httpx

from ._arguments import timeout_seconds
from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    error_class_for_status,
    status_error_message,
)
from ._models import AuthToken, ResponseShapeError
from ._redaction import credential_texts, redact_body
from ._retry import Failure, Operation, RetryPolicy, Verdict

if TYPE_CHECKING:
    from ._connection import HTTPConnection

__all__ = ["RequestPipeline", "classify_transport_error"]

logger: Final = logging.getLogger("ziggeo_async")

COLLECTION_PATH: Final = "/v1/authtokens/"
_METHOD: Final = {
    Operation.CREATE: "POST",
    Operation.GET: "GET",
    Operation.UPDATE: "POST",
    Operation.DELETE: "DELETE",
}
_FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"

# Connect failures happen before a byte of the request leaves; pool timeouts before a
# connection is even assigned. Everything else may have reached Ziggeo.
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_PERMANENT: Final = (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL)


def classify_transport_error(error: Exception) -> Failure:
    """What an httpx transport error says about whether the request reached the server."""
    if isinstance(error, _NOT_SENT):
        return Failure.NOT_SENT
    if isinstance(error, _PERMANENT):
        return Failure.PERMANENT
    return Failure.MAYBE_SENT


def display_path(segment: str | None) -> str:
    """The request path for logs and messages, with the token id cut to its last 4 characters.

    Server auth tokens are bearer credentials for the pages that carry them, so
    they are never written out whole.
    """
    if segment is None:
        return COLLECTION_PATH
    return f"{COLLECTION_PATH}…{segment[-4:]}"


class RequestPipeline:
    """Sends one operation with the client's credentials, timeout and retry policy."""

    __slots__ = (
        "_base_url",
        "_collection_url",
        "_connection",
        "_credential_texts",
        "_form_headers",
        "_headers",
        "_policy",
        "_timeout",
    )

    def __init__(
        self,
        *,
        base_url: str,
        authorization: str,
        user_agent: str,
        timeout: httpx.Timeout,
        policy: RetryPolicy,
        connection: Callable[[], HTTPConnection],
    ) -> None:
        self._base_url = base_url.rstrip("/") + COLLECTION_PATH
        # Parsed once: URL parsing and header normalisation are per-request costs in httpx.
        self._collection_url = httpx.URL(self._base_url)
        headers = {
            "Authorization": authorization,
            "Accept": "application/json",
            "User-Agent": user_agent,
        }
        self._headers = httpx.Headers(headers)
        self._form_headers = httpx.Headers({**headers, "Content-Type": _FORM_CONTENT_TYPE})
        self._credential_texts = credential_texts(authorization)
        self._timeout = timeout
        self._policy = policy
        self._connection = connection

    def __repr__(self) -> str:
        return f"<RequestPipeline {self._base_url!r}>"

    @property
    def policy(self) -> RetryPolicy:
        return self._policy

    async def send(
        self,
        operation: Operation,
        segment: str | None = None,
        form: str | None = None,
        *,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send ``operation`` on the token ``segment`` (already validated and quoted).

        Returns the successful response, or raises the mapped ``APIError`` once the
        retry policy gives up.
        """
        if timeout is not None:
            timeout = timeout_seconds("timeout", timeout)
        method = _METHOD[operation]
        path = display_path(segment)
        request = self._connection().build_request(
            method,
            self._collection_url if segment is None else httpx.URL(self._base_url + segment),
            content=None if form is None else form.encode("ascii"),
            headers=self._headers if form is None else self._form_headers,
            timeout=self._timeout if timeout is None else httpx.Timeout(timeout),
        )
        attempt = 0
        may_have_acted = False  # whether an attempt so far may have taken effect
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                response = await self._connection().send(request)
            # A body that fails to decompress (DecodingError) is no usable response
            # either; it is not a TransportError, so name it, or it escapes the tree.
            except (httpx.TransportError, httpx.DecodingError) as error:
                failure = classify_transport_error(error)
                _log_attempt(method, path, type(error).__name__, attempt, started)
                decision = self._policy.decide(
                    operation,
                    attempt=attempt,
                    failure=failure,
                    earlier_may_have_acted=may_have_acted,
                )
                if decision.verdict is Verdict.FAIL:
                    error_class = (
                        APITimeoutError
                        if isinstance(error, httpx.TimeoutException)
                        else APIConnectionError
                    )
                    raise error_class(
                        f"{method} {path} failed after {attempt} attempt(s): "
                        f"{type(error).__name__}: {error}",
                        method=method,
                        path=path,
                    ) from error
            else:
                status = response.status_code
                _log_attempt(method, path, status, attempt, started)
                decision = self._policy.decide(
                    operation,
                    attempt=attempt,
                    status_code=status,
                    retry_after=response.headers.get("retry-after"),
                    earlier_may_have_acted=may_have_acted,
                )
                if decision.verdict is Verdict.SUCCEED:
                    return response
                if decision.verdict is Verdict.FAIL:
                    body = self._body_without_credentials(response)
                    raise error_class_for_status(status)(
                        status_error_message(method, path, status, body),
                        method=method,
                        path=path,
                        status_code=status,
                        body=body,
                        response=response,
                    )
            may_have_acted = decision.may_have_acted
            await anyio.sleep(decision.delay)

    def _body_without_credentials(self, response: httpx.Response) -> str:
        """The body as text with every form of the credentials cut out (see ``_redaction``)."""
        return redact_body(response.content, response.charset_encoding, self._credential_texts)

    async def send_for_token(
        self,
        operation: Operation,
        segment: str | None = None,
        form: str | None = None,
        *,
        timeout: float | None = None,
    ) -> AuthToken:
        """``send``, then the ``AuthToken`` in the response body.

        A body that is not an auth token object raises ``APIResponseValidationError``.
        """
        response = await self.send(operation, segment, form, timeout=timeout)
        try:
            return AuthToken.from_json(json.loads(response.content))
        except (ValueError, RecursionError) as error:  # ResponseShapeError and JSON errors
            reason = str(error) if isinstance(error, ResponseShapeError) else "not valid JSON"
            method, path = _METHOD[operation], display_path(segment)
            raise APIResponseValidationError(
                f"{method} {path} returned {response.status_code} with an unusable body: {reason}",
                method=method,
                path=path,
                status_code=response.status_code,
                body=self._body_without_credentials(response),
            ) from None


def _log_attempt(method: str, path: str, outcome: int | str, attempt: int, started: float) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "%s %s -> %s (attempt %d, %.1f ms)",
            method,
            path,
            outcome,
            attempt,
            (time.perf_counter() - started) * 1000,
        )
