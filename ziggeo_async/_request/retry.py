"""The retry policy: what happened + which attempt -> succeed, retry after a delay, or fail.

No I/O and no sleeping: the request pipeline asks, then acts. One policy serves
every operation, so the rules are in one table:

========================================================  ======  =====================
what happened                                             create  get / update / delete
========================================================  ======  =====================
2xx                                                       done    done
connect failure, pool wait                                retry   retry
read/write timeout, drop                                  fail    retry
408, 500, 502, 504                                        fail    retry
429, 503                                                  retry   retry
404 on delete, after an attempt that may have deleted it  --      done
anything else                                             fail    fail
========================================================  ======  =====================

One notion runs through the table: whether an attempt *may have been acted on*.
It surely was not when nothing was sent (a connect failure, a pool wait) or when
Ziggeo said it did not act (429, 503); every other outcome may have been. create is
retried only after an attempt that surely was not acted on, since a create sent
twice would issue a duplicate token. A delete that meets 404 on a retry is done only
if an earlier attempt may have deleted the token: after connect failures, 429s and
503s alone, the 404 is the truth and raises ``NotFoundError``. ``decide`` is told
whether an earlier attempt of the call may have been acted on, and its ``Decision``
says it again with this attempt counted, for the caller to hand to the next ``decide``.

Delays: ``Retry-After`` (seconds or an HTTP date) when given and at most
``retry_after_cap`` (beyond that the policy gives up rather than stall a caller);
otherwise exponential backoff with full jitter, ``uniform(0, min(backoff_cap,
backoff_base * 2 ** (attempt - 1)))``.
"""

from __future__ import annotations

import enum
import math
import secrets
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Final

import attrs

from .._core.arguments import plain_number
from .._core.defaults import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_CAP,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_AFTER_CAP,
)
from .._core.errors import ConfigurationError, Failure

__all__ = [
    "MAX_RETRIES",
    "SUCCESS_STATUSES",
    "Decision",
    "Operation",
    "RetryPolicy",
    "Verdict",
    "check_max_retries",
    "may_have_been_acted_on",
    "parse_retry_after",
]

_system_random = secrets.SystemRandom()
#: The statuses that end a call in success, judged on the status alone.
SUCCESS_STATUSES: Final = range(200, 300)


class Operation(enum.Enum):
    """The four auth-token operations, as the policy needs to tell them apart."""

    CREATE = "create"
    GET = "get"
    UPDATE = "update"
    DELETE = "delete"

    @property
    def idempotent(self) -> bool:
        """Whether sending it twice has the same effect as sending it once."""
        return self is not Operation.CREATE


class Verdict(enum.Enum):
    SUCCEED = "succeed"
    RETRY = "retry"
    FAIL = "fail"


@attrs.frozen
class Decision:
    verdict: Verdict
    #: Seconds to wait before the next attempt; 0 unless the verdict is RETRY.
    delay: float = 0.0
    #: Whether this attempt or an earlier one of the same call may have been acted on;
    #: pass it to the next ``decide`` as ``earlier_may_have_acted``.
    may_have_acted: bool = True


#: Every success's decision: one frozen value, not a new one per response.
_SUCCEEDED: Final = Decision(Verdict.SUCCEED, may_have_acted=True)

# The statuses by which a server says it did not act on the request.
_NOT_ACTED_ON = frozenset({429, 503})
_RETRY_IDEMPOTENT_ONLY = frozenset({408, 500, 502, 504})
_NOT_FOUND = 404


def may_have_been_acted_on(
    *, status_code: int | None = None, failure: Failure | None = None
) -> bool:
    """Whether one attempt that ended so may have taken effect at the server."""
    if failure is not None:
        return failure is Failure.MAYBE_SENT
    return status_code not in _NOT_ACTED_ON


#: The most retries a call may be given: each waits up to ``backoff_cap``, so beyond this
#: a call would retry for longer than anyone waits for it.
MAX_RETRIES = 100


def check_max_retries(value: object) -> int:
    """``max_retries`` checked: an int from 0 to ``MAX_RETRIES``; ``ConfigurationError`` if not."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= (value := plain_number(value)) <= MAX_RETRIES
    ):
        raise ConfigurationError(f"max_retries must be an int from 0 to {MAX_RETRIES}")
    return value


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or ``None`` if it is absent or unreadable.

    Never raises. A date in the past gives 0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less one is read as such
        when = when.replace(tzinfo=timezone.utc)
    # Two aware datetimes are at most ~10,000 years apart: the difference cannot overflow.
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


#: The longest delay a policy may be told to wait: a day.
_MAX_DELAY_SECONDS: Final = 86_400


def _seconds(name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 <= plain_number(value) <= _MAX_DELAY_SECONDS  # also False for NaN
    ):
        raise ConfigurationError(
            f"RetryPolicy.{name} must be a number of seconds from 0 to {_MAX_DELAY_SECONDS}"
        )


@attrs.frozen
class RetryPolicy:
    """Retry decisions and delays; see the module docstring for the table."""

    max_retries: int = attrs.field(
        default=DEFAULT_MAX_RETRIES, validator=lambda _p, _a, value: check_max_retries(value)
    )
    #: Seconds the first backoff may last; each retry doubles it, up to ``backoff_cap``.
    backoff_base: float = attrs.field(
        default=DEFAULT_BACKOFF_BASE, validator=lambda _p, a, v: _seconds(a.name, v)
    )
    #: The longest backoff, in seconds.
    backoff_cap: float = attrs.field(
        default=DEFAULT_BACKOFF_CAP, validator=lambda _p, a, v: _seconds(a.name, v)
    )
    #: The longest ``Retry-After`` honoured; a longer one makes the call give up instead.
    retry_after_cap: float = attrs.field(
        default=DEFAULT_RETRY_AFTER_CAP, validator=lambda _p, a, v: _seconds(a.name, v)
    )
    #: A number in [0, 1) for the jitter; injectable so tests can pin it.
    jitter: Callable[[], float] = attrs.field(default=_system_random.random, repr=False)

    def decide(
        self,
        operation: Operation,
        *,
        attempt: int,
        status_code: int | None = None,
        failure: Failure | None = None,
        retry_after: str | None = None,
        now: datetime | None = None,
        earlier_may_have_acted: bool = False,
    ) -> Decision:
        """Judge attempt number ``attempt`` (1-based) that ended in a status or a failure.

        ``earlier_may_have_acted``: whether an earlier attempt of this call may have
        been acted on (the previous ``Decision.may_have_acted``; ``False`` on the first).
        """
        if status_code is not None and (
            status_code in SUCCESS_STATUSES
            or (
                operation is Operation.DELETE
                and status_code == _NOT_FOUND
                and earlier_may_have_acted
            )
        ):
            return _SUCCEEDED
        acted = may_have_been_acted_on(status_code=status_code, failure=failure)
        may_have_acted = earlier_may_have_acted or acted
        if attempt > self.max_retries or not self._retryable(
            operation, status_code, failure, acted=acted
        ):
            return Decision(Verdict.FAIL, may_have_acted=may_have_acted)
        wait = parse_retry_after(retry_after, now=now) if status_code is not None else None
        if wait is None:
            ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
            return Decision(Verdict.RETRY, self.jitter() * ceiling, may_have_acted)
        if wait > self.retry_after_cap:
            return Decision(Verdict.FAIL, may_have_acted=may_have_acted)
        return Decision(Verdict.RETRY, wait, may_have_acted)

    @staticmethod
    def _retryable(
        operation: Operation, status_code: int | None, failure: Failure | None, *, acted: bool
    ) -> bool:
        if failure is Failure.PERMANENT:
            return False
        if failure is not None or status_code in _NOT_ACTED_ON:
            # A create is sent again only if this attempt surely did not take effect.
            return operation.idempotent or not acted
        return status_code in _RETRY_IDEMPOTENT_ONLY and operation.idempotent
