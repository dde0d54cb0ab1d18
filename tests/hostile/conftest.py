from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """asyncio only: these properties are about bytes and URLs, not the event loop,
    and the fault suite already runs every transport path on trio as well."""
    return "asyncio"
