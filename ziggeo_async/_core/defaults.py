"""Every default the SDK ships with, in one place; the modules that use one import it.

Plain numbers and strings only: the layers that build objects from them (an
``httpx2.Timeout``, ``httpx2.Limits``) do so where httpx2 is known.
"""

from __future__ import annotations

from typing import Final

#: The API host of applications in the default region.
DEFAULT_HOST: Final = "https://srv-api.ziggeo.com"
#: The API host of applications in eu-west-1 (app tokens starting ``r1``).
EU_WEST_1_HOST: Final = "https://srv-api-eu-west-1.ziggeo.com"

#: Seconds each phase of a request may take (connect aside): each read, each write,
#: the wait for a pooled connection.
DEFAULT_TIMEOUT_SECONDS: Final = 30.0
#: Seconds a new connection may take to open.
DEFAULT_CONNECT_TIMEOUT_SECONDS: Final = 10.0

#: Connections the SDK's own HTTP client opens at most, and keeps alive at most. Batch
#: jobs keep dozens of requests in flight; a keep-alive pool smaller than the connection
#: limit would close and reopen connections between requests.
DEFAULT_MAX_CONNECTIONS: Final = 100
DEFAULT_MAX_KEEPALIVE_CONNECTIONS: Final = 100

#: Requests a batch keeps in flight unless told otherwise (the CLI's ``--concurrency`` too).
DEFAULT_CONCURRENCY: Final = 32

#: Retries a call gets unless told otherwise.
DEFAULT_MAX_RETRIES: Final = 2
#: Seconds the first backoff may last; each retry doubles it, up to the cap.
DEFAULT_BACKOFF_BASE: Final = 0.5
#: The longest backoff, in seconds.
DEFAULT_BACKOFF_CAP: Final = 8.0
#: The longest ``Retry-After`` honoured, in seconds.
DEFAULT_RETRY_AFTER_CAP: Final = 60.0

#: The most decoded body bytes the SDK reads of one response (an auth token is a few KiB).
MAX_RESPONSE_BYTES: Final = 1024 * 1024
