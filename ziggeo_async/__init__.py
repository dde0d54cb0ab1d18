"""ziggeo-async: an async-first, typed SDK for Ziggeo auth tokens."""

from ._core.arguments import TokenArguments
from ._core.cipher import WeakEncryptionKeyWarning
from ._core.errors import (
    APIConnectionError,
    APIError,
    APIResponseTooLargeError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BlockingCallError,
    ClientClosedError,
    ConfigurationError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
    ValidationError,
    ZiggeoError,
)
from ._core.models import AuthToken, Grant, Grants
from ._core.token_ids import TokenIdFilter
from ._faces.client import AsyncZiggeo
from ._faces.sync import SyncZiggeo
from ._request.batch import BatchResult, BatchRun
from ._request.observe import RetryEvent, configure_logging_from_env
from ._request.retry import RetryPolicy
from ._version import __version__

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseTooLargeError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncZiggeo",
    "AuthToken",
    "AuthenticationError",
    "BadRequestError",
    "BatchResult",
    "BatchRun",
    "BlockingCallError",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "Grant",
    "Grants",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RetryEvent",
    "RetryPolicy",
    "SyncZiggeo",
    "TokenArguments",
    "TokenIdFilter",
    "UnprocessableEntityError",
    "ValidationError",
    "WeakEncryptionKeyWarning",
    "ZiggeoError",
    "__version__",
]

# ZIGGEO_LOG=info|debug: a stderr handler on the ziggeo_async logger, as OPENAI_LOG does.
configure_logging_from_env()
