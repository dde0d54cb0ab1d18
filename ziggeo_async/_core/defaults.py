"""Every default the SDK ships with, in one place; the modules that use one import it."""

from __future__ import annotations

from typing import Final

#: The most decoded body bytes the SDK reads of one response (an auth token is a few KiB).
MAX_RESPONSE_BYTES: Final = 1024 * 1024
