"""What the SDK lets users see of a call: retry events, log set-up, OpenTelemetry spans.

No I/O. The pipeline calls these; none of them may break a call (a failing ``on_retry``
callback is logged and ignored) or carry a secret (token ids shortened, no header value).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import ModuleType
from typing import Any, Final

import attrs

from .._version import __version__

__all__ = [
    "RetryEvent",
    "SpanRecorder",
    "configure_logging_from_env",
    "start_span",
]

logger: Final = logging.getLogger("ziggeo_async")


@attrs.frozen
class RetryEvent:
    """One retry about to happen: given to ``on_retry`` before the backoff sleep."""

    #: ``"create"``, ``"get"``, ``"update"`` or ``"delete"``.
    operation: str
    #: The attempt that failed (1 for the first); the next one is ``attempt + 1``.
    attempt: int
    #: Seconds the SDK waits before the next attempt.
    delay: float
    #: The status the attempt got, or ``None`` if it got no response.
    status_code: int | None
    #: Without a response, what failed (the HTTP stack's exception class, e.g.
    #: ``"ConnectError"``); ``None`` when there was a status.
    failure: str | None
    #: The token id or key, cut to its last 4 characters (``"…abcd"``); ``None`` for create.
    token_id: str | None

    @property
    def reason(self) -> str:
        """What made the attempt fail, for a log line: ``"429"`` or ``"ConnectError"``."""
        return str(self.status_code) if self.status_code is not None else str(self.failure)


def announce_retry(event: RetryEvent, on_retry: Callable[[RetryEvent], object] | None) -> None:
    """The one INFO line per retry, then the user's callback (whose failure is only logged)."""
    logger.info(
        "%s %s: %s on attempt %d, retrying in %.2f s",
        event.operation,
        event.token_id or "(new token)",
        event.reason,
        event.attempt,
        event.delay,
    )
    if on_retry is None:
        return
    try:
        on_retry(event)
    except Exception as error:  # noqa: BLE001 - a callback must never break the call
        logger.warning("on_retry raised %s; the call goes on", type(error).__name__, exc_info=False)


#: ``ZIGGEO_LOG`` values and the level each sets on the ``ziggeo_async`` logger.
_LOG_LEVELS: Final = {"info": logging.INFO, "debug": logging.DEBUG}


class _EnvHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stderr handler ``ZIGGEO_LOG`` added (so a second call adds none)."""


def configure_logging_from_env() -> logging.Handler | None:
    """``ZIGGEO_LOG=info|debug``: a stderr handler on the ``ziggeo_async`` logger, as
    ``OPENAI_LOG`` does for openai. Called once on import; returns the handler it added."""
    level = _LOG_LEVELS.get(os.environ.get("ZIGGEO_LOG", "").strip().lower())
    if level is None or any(isinstance(h, _EnvHandler) for h in logger.handlers):
        return None
    handler = _EnvHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s %(levelname)s %(name)s] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler


# -- OpenTelemetry (optional: pip install 'ziggeo-async[otel]') -----------------------------


class SpanRecorder:
    """What the pipeline tells the span of one call; does nothing without a tracer."""

    __slots__ = ("_span",)

    def __init__(self, span: Any = None) -> None:
        self._span = span

    def retry(self, event: RetryEvent) -> None:
        if self._span is not None:
            self._span.add_event(
                "ziggeo.retry",
                {
                    "ziggeo.attempt": event.attempt,
                    "ziggeo.delay": event.delay,
                    "ziggeo.reason": event.reason,
                },
            )

    def finish(
        self, *, attempts: int, status_code: int | None, error: BaseException | None
    ) -> None:
        span = self._span
        if span is None:
            return
        span.set_attribute("ziggeo.attempts", attempts)
        if status_code is not None:
            span.set_attribute("http.response.status_code", status_code)
        if error is not None:
            span.set_attribute("error.type", type(error).__name__)
            from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415 - optional

            span.set_status(Status(StatusCode.ERROR))


_NO_SPAN: Final = SpanRecorder()
_OTEL_INSTALLED: Final = importlib.util.find_spec("opentelemetry") is not None


#: The context of a call with no span: made once (a nullcontext may be entered again).
_NO_SPAN_CONTEXT: Final = nullcontext(_NO_SPAN)


@functools.cache
def _trace_api() -> ModuleType:
    """``opentelemetry.trace``, imported on the first call that looks for a provider:
    an import statement on every call costs a lookup through the import system."""
    from opentelemetry import trace  # noqa: PLC0415 - optional

    return trace


def start_span(
    operation: str, method: str, server_address: str
) -> AbstractContextManager[SpanRecorder]:
    """One CLIENT span per call, when opentelemetry is installed and a provider is set.

    Without opentelemetry nothing is imported; with it but with no tracer provider set
    (the API's proxy provider), no span is made at all. No token id, key or header value
    goes into a span: the operation, the HTTP method, the host, the status, the attempts.
    """
    if not _OTEL_INSTALLED:
        return _NO_SPAN_CONTEXT
    trace = _trace_api()
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider):
        return _NO_SPAN_CONTEXT
    return _span(provider, operation, method, server_address)


@contextmanager
def _span(
    provider: Any, operation: str, method: str, server_address: str
) -> Iterator[SpanRecorder]:
    from opentelemetry import trace  # noqa: PLC0415 - optional

    tracer = provider.get_tracer("ziggeo_async", __version__)
    with tracer.start_as_current_span(
        f"ziggeo.authtokens.{operation}",
        kind=trace.SpanKind.CLIENT,
        attributes={
            "ziggeo.operation": operation,
            "http.request.method": method,
            "server.address": server_address,
        },
        # Exception messages name paths and statuses only, but a span keeps what the
        # SDK sets, nothing more: the error's class goes in error.type.
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield SpanRecorder(span)
