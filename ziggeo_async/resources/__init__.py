"""The resources a client exposes: ``authtokens`` (the API) and ``auth`` (local tokens)."""

from .auth import Auth
from .authtokens import AsyncAuthTokens

__all__ = ["AsyncAuthTokens", "Auth"]
