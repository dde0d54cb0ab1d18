"""How an auth-token id is shown wherever the SDK writes one out: cut to its end.

Server auth tokens are bearer credentials for the pages that carry them, so a log line,
an error message or a retry event shows only the last 4 characters (``…abcd``).
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from typing import Final

__all__ = [
    "SHOWN_ID_CHARS",
    "TokenIdFilter",
    "cut_token_id",
    "shorten_token_ids_in",
    "shown_token_id",
]

#: How many trailing characters of a token id logs and messages show.
SHOWN_ID_CHARS: Final = 4

# A token id in a URL path, as the HTTP stacks log URLs (percent-encoded).
_TOKEN_IN_PATH: Final = re.compile(r"(/v1/authtokens/)([^/\s\"'?#]+)")


def shown_token_id(token: str) -> str:
    """``token`` as the SDK writes it out: ``…`` and its last 4 characters."""
    return "…" + token[-SHOWN_ID_CHARS:]


def cut_token_id(text: str, segment: str | None) -> str:
    """``text`` with the token id ``segment`` (as sent, or unquoted) cut to its end."""
    if segment:
        for form in {segment, urllib.parse.unquote(segment)}:
            # 4 characters or fewer are what is shown anyway, and replacing so short a
            # text would take it out of every word that holds it.
            if len(form) > SHOWN_ID_CHARS:
                text = text.replace(form, shown_token_id(segment))
    return text


class TokenIdFilter(logging.Filter):
    """Cuts auth-token ids in log records to their last 4 characters, as the SDK's do.

    The SDK's own records need none of it. It is for the loggers beneath it that write
    whole URLs: httpx2 logs every request at INFO, path included. Before a client's
    first request the SDK puts one on httpx2's logger (and legacy httpx's, for a lent
    client); add it to any other logger or handler that writes the SDK's URLs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/v1/authtokens/" in message:
            record.msg = _TOKEN_IN_PATH.sub(_shorten, message)
            record.args = ()
        return True


def _shorten(match: re.Match[str]) -> str:
    return match[1] + shown_token_id(match[2])


def shorten_token_ids_in(logger: logging.Logger) -> None:
    """Put a ``TokenIdFilter`` on ``logger``, unless one is there already."""
    if not any(isinstance(existing, TokenIdFilter) for existing in logger.filters):
        logger.addFilter(TokenIdFilter())
