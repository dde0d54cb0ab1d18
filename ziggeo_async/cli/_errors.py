"""The command's own error: bad usage found after parsing, reported as exit status 2."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """Bad usage found after parsing (arguments, configuration, a journal of another job)."""
