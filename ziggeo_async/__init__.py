"""ziggeo-async: an async-first, typed SDK for Ziggeo auth tokens."""

from ._arguments import TokenArguments
from ._batch import BatchResult, BatchRun
from ._client import AsyncZiggeo
from ._errors import (
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
from ._models import AuthToken, Grant, Grants
from ._observe import RetryEvent, TokenIdFilter, configure_logging_from_env
from ._retry import RetryPolicy
from ._sync import SyncZiggeo
from ._tokens import WeakEncryptionKeyWarning
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
