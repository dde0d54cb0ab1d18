"""The one request path every operation takes: build, send, classify, retry, map errors.

It knows no endpoint: a resource says which verb and path an operation uses and how
to read its answer (``send_parsed``); the pipeline sends, checks and hands back.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Final, TypeVar

import anyio
import attrs
import httpx2

from .._core.arguments import timeout_seconds
from .._core.defaults import MAX_RESPONSE_BYTES
from .._core.errors import (
    APIConnectionError,
    APIError,
    APIResponseTooLargeError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    error_class_for_status,
    status_error_message,
)
from .._core.redaction import credential_texts, redact_body
from .._core.token_ids import cut_token_id, shown_token_id
from .._http import ResponseTooLarge, classify_failure
from .observe import RetryEvent, SpanRecorder, announce_retry, start_span
from .pacer import CURRENT_PACER, Pacer
from .retry import SUCCESS_STATUSES, Operation, RetryPolicy, Verdict, parse_retry_after

if TYPE_CHECKING:
    from .._http import HTTPConnection

__all__ = ["RequestPipeline"]

logger: Final = logging.getLogger("ziggeo_async")

Parsed = TypeVar("Parsed")
_FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
_TOO_MANY_REQUESTS: Final = 429
_UNAVAILABLE: Final = 503
# How much of an HTTP-stack error message a connection error quotes.
_DETAIL_CHARS: Final = 200


def display_path(path: str, segment: str | None) -> str:
    """The request path for logs and messages, with the token id cut to its last 4
    characters (``_core.token_ids``)."""
    return path if segment is None else path + shown_token_id(segment)


class RequestPipeline:
    """Sends one operation with the client's credentials, timeout and retry policy."""

    __slots__ = (
        "_base_url",
        "_connection",
        "_credential_texts",
        "_deadline",
        "_form_headers",
        "_headers",
        "_host",
        "_on_retry",
        "_policy",
        "_timeout",
    )

    def __init__(
        self,
        *,
        base_url: str,
        authorization: str,
        user_agent: str,
        timeout: httpx2.Timeout,
        policy: RetryPolicy,
        connection: Callable[[], HTTPConnection],
        deadline: float | None = None,
        on_retry: Callable[[RetryEvent], object] | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._host = urllib.parse.urlsplit(base_url).hostname or ""
        self._deadline = deadline
        self._on_retry = on_retry
        headers = {
            "Authorization": authorization,
            "Accept": "application/json",
            "User-Agent": user_agent,
        }
        self._headers = headers
        self._form_headers = {**headers, "Content-Type": _FORM_CONTENT_TYPE}
        self._credential_texts = credential_texts(authorization)
        self._timeout = timeout
        self._policy = policy
        self._connection = connection

    def __repr__(self) -> str:
        return f"<RequestPipeline {self._base_url!r}>"

    @property
    def policy(self) -> RetryPolicy:
        return self._policy

    def send(
        self,
        operation: Operation,
        method: str,
        path: str,
        *,
        segment: str | None = None,
        form: bytes | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> Coroutine[object, object, httpx2.Response]:
        """Send ``method`` to ``path`` on the API host, retried as ``operation`` may be.

        ``segment``: a token id or key (already validated and quoted), appended to
        ``path`` and shown shortened; ``form``: a form body, as the bytes sent. Returns
        the successful response, or raises the mapped ``APIError`` once the retry policy
        gives up or the ``deadline`` (the whole call, seconds) runs out.

        Not a coroutine itself: the call is made and checked here, and sent when the
        coroutine it returns is awaited. Every layer of coroutines is walked again each
        time a request waits and wakes, so the request path keeps few.
        """
        call, limit = self._call(
            operation, method, path, segment=segment, form=form, timeout=timeout, deadline=deadline
        )
        return self._traced(call, limit, _the_response)

    def _call(
        self,
        operation: Operation,
        method: str,
        path: str,
        *,
        segment: str | None,
        form: bytes | None,
        timeout: float | None,
        deadline: float | None,
    ) -> tuple[_Call, float | None]:
        """The call, checked, and its deadline in seconds (``None``: none)."""
        call = _Call(
            operation=operation,
            method=method,
            path=display_path(path, segment),
            segment=segment,
            url=self._base_url + path + (segment or ""),
            content=form,
            headers=self._headers if form is None else self._form_headers,
            timeout=self._timeout if timeout is None else _call_timeout(timeout),
        )
        limit = self._deadline if deadline is None else timeout_seconds("deadline", deadline)
        return call, limit

    async def _traced(
        self, call: _Call, limit: float | None, finish: Callable[[httpx2.Response, _Call], Parsed]
    ) -> Parsed:
        """The call's attempts, in its span (if a tracer is set), then ``finish`` of the
        response, outside the span: in the same coroutine, not one more layer."""
        with start_span(call.operation.value, call.method, self._host) as span:
            try:
                # Without a deadline, straight to the attempts: one coroutine fewer a call.
                if limit is None:
                    response = await self._attempts(call, None, span)
                else:
                    response = await self._within_deadline(call, limit, span)
            except BaseException as error:
                span.finish(attempts=call.attempts, status_code=call.status_code, error=error)
                raise
            span.finish(attempts=call.attempts, status_code=call.status_code, error=None)
        return finish(response, call)

    async def _within_deadline(
        self, call: _Call, limit: float, span: SpanRecorder
    ) -> httpx2.Response:
        # The whole call: every attempt, every backoff and Retry-After wait. A cancel
        # scope, so a server that drips bytes or never answers is cut off all the same.
        with anyio.move_on_after(limit):
            return await self._attempts(call, anyio.current_time() + limit, span)
        raise APITimeoutError(
            f"{call.method} {call.path}: the deadline of {limit:g} s ran out "
            f"after {call.attempts} attempt(s)",
            method=call.method,
            path=call.path,
        )

    async def _attempts(
        self, call: _Call, deadline_at: float | None, span: SpanRecorder
    ) -> httpx2.Response:
        """Attempt, judge, wait, until the policy says done or failed."""
        operation, method, path = call.operation, call.method, call.path
        while True:
            call.attempts += 1
            attempt = call.attempts
            pacer = CURRENT_PACER.get()
            if pacer is not None:  # a batch's worker: every attempt takes the batch's turn
                turn = await pacer.take_turn()
            started = time.perf_counter()
            try:
                response = await self._connection().send(
                    method,
                    call.url,
                    content=call.content,
                    headers=call.headers,
                    timeout=call.timeout,
                )
            except ResponseTooLarge as too_large:
                _log_attempt(method, path, "response too large", attempt, started)
                raise APIResponseTooLargeError(
                    f"{method} {path}: {too_large} ({MAX_RESPONSE_BYTES} bytes at most are "
                    "read); the connection was closed",
                    method=method,
                    path=path,
                ) from None
            except Exception as error:
                classified = classify_failure(error)
                if classified is None:
                    raise
                failure, timed_out = classified
                outcome: int | str = type(error).__name__
                decision = self._policy.decide(
                    operation,
                    attempt=attempt,
                    failure=failure,
                    earlier_may_have_acted=call.may_have_acted,
                )
                problem: APIError = self._connection_error(error, timed_out, attempt, call)
                call.status_code = None
            else:
                outcome = call.status_code = status = response.status_code
                # A success is judged on its status alone: its headers are not looked up.
                retry_after = (
                    None if status in SUCCESS_STATUSES else response.headers.get("retry-after")
                )
                if pacer is not None:
                    _report_to(pacer, turn, status, retry_after)
                decision = self._policy.decide(
                    operation,
                    attempt=attempt,
                    status_code=status,
                    retry_after=retry_after,
                    earlier_may_have_acted=call.may_have_acted,
                )
                if decision.verdict is Verdict.SUCCEED:
                    _log_attempt(method, path, outcome, attempt, started)
                    return response
                problem = self._status_error(response, call)
            _log_attempt(method, path, outcome, attempt, started)
            # A wait that would outlast the deadline is not worth starting: give up now.
            out_of_time = (
                deadline_at is not None and anyio.current_time() + decision.delay >= deadline_at
            )
            if decision.verdict is Verdict.FAIL or out_of_time:
                # Raised here, outside the except block: the HTTP stack's own exception
                # is neither its cause nor its context, only a cleaned copy of it.
                raise problem
            event = RetryEvent(
                operation=operation.value,
                attempt=attempt,
                delay=decision.delay,
                status_code=call.status_code,
                failure=None if call.status_code is not None else str(outcome),
                token_id=None if call.segment is None else path.rpartition("/")[2],
            )
            call.may_have_acted = decision.may_have_acted
            span.retry(event)
            announce_retry(event, self._on_retry)
            await anyio.sleep(decision.delay)

    def _status_error(self, response: httpx2.Response, call: _Call) -> APIStatusError:
        status = response.status_code
        body = self._body_without_credentials(response)
        method, path = call.method, call.path
        # The message shows the token id as the path does, even where the body names it.
        return error_class_for_status(status)(
            status_error_message(method, path, status, cut_token_id(body, call.segment)),
            method=method,
            path=path,
            status_code=status,
            body=body,
            response=response,
        )

    def _connection_error(
        self, error: Exception, timed_out: bool, attempt: int, call: _Call
    ) -> APIConnectionError:
        """The SDK's error for a failure of the HTTP stack, with its text cleaned.

        The stack's message can quote the URL (the whole token id) or a header line a
        server echoed (the Authorization header); the error carries only the cleaned
        text, and as its cause a copy of the stack's exception holding that text alone.
        """
        detail = self._clean_detail(str(error), call.segment)
        error_class = APITimeoutError if timed_out else APIConnectionError
        method, path = call.method, call.path
        mapped = error_class(
            f"{method} {path} failed after {attempt} attempt(s): {type(error).__name__}"
            + (f": {detail}" if detail else ""),
            method=method,
            path=path,
        )
        try:
            mapped.__cause__ = type(error)(detail)
        except Exception:  # noqa: BLE001 - a class that takes other arguments: no cause
            mapped.__cause__ = None
        mapped.__suppress_context__ = True
        return mapped

    def _clean_detail(self, detail: str, segment: str | None) -> str:
        """An HTTP-stack message without credentials or the whole token id, and short."""
        detail = redact_body(detail.encode("utf-8", "replace"), "utf-8", self._credential_texts)
        return " ".join(cut_token_id(detail, segment).split())[:_DETAIL_CHARS]

    def _body_without_credentials(self, response: httpx2.Response) -> str:
        """The body as text with every form of the credentials cut out (see ``_core.redaction``)."""
        return redact_body(response.content, response.charset_encoding, self._credential_texts)

    def send_parsed(
        self,
        operation: Operation,
        method: str,
        path: str,
        parse: Callable[[object], Parsed],
        *,
        segment: str | None = None,
        form: bytes | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> Coroutine[object, object, Parsed]:
        """``send``, then ``parse`` of the JSON document in the response body.

        ``parse`` raises ``ValueError`` with a message fit to show (no credential) for a
        document it cannot use; that, and a body that is not JSON, raise
        ``APIResponseValidationError``. Not a coroutine itself, as ``send`` is not.
        """
        call, limit = self._call(
            operation, method, path, segment=segment, form=form, timeout=timeout, deadline=deadline
        )
        return self._traced(call, limit, functools.partial(self._parsed, parse))

    def _parsed(
        self, parse: Callable[[object], Parsed], response: httpx2.Response, call: _Call
    ) -> Parsed:
        try:
            document = json.loads(response.content)
        except (ValueError, RecursionError):
            reason = "not valid JSON"
        else:
            try:
                return parse(document)
            except ValueError as error:
                reason = str(error)
        raise APIResponseValidationError(
            f"{call.method} {call.path} returned {response.status_code} with an unusable body: "
            f"{reason}",
            method=call.method,
            path=call.path,
            status_code=response.status_code,
            body=self._body_without_credentials(response),
        )


@attrs.define
class _Call:
    """One call's request, fixed before the first attempt, and what its attempts found.

    Its repr leaves out the headers (the Authorization header) and the whole token id:
    a traceback printed with its frames' locals, as error trackers do, shows it.
    """

    operation: Operation
    method: str
    #: The path as logs and messages show it (``display_path``).
    path: str
    segment: str | None = attrs.field(repr=False)
    url: str = attrs.field(repr=False)
    content: bytes | None
    headers: dict[str, str] = attrs.field(repr=False)
    timeout: httpx2.Timeout
    attempts: int = 0
    status_code: int | None = None
    #: Whether an attempt so far may have taken effect (a 404 on delete means done then).
    may_have_acted: bool = False


def _the_response(response: httpx2.Response, _call: _Call) -> httpx2.Response:
    return response


def _report_to(pacer: Pacer, turn: int, status: int, retry_after: str | None) -> None:
    if status == _TOO_MANY_REQUESTS or (status == _UNAVAILABLE and retry_after is not None):
        pacer.throttled(parse_retry_after(retry_after), turn)
    elif status in SUCCESS_STATUSES:
        pacer.succeeded()


def _call_timeout(timeout: object) -> httpx2.Timeout:
    return httpx2.Timeout(timeout_seconds("timeout", timeout))


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
