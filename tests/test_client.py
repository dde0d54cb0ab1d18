from __future__ import annotations

import pytest

from ziggeo_async import AsyncZiggeo, ConfigurationError


@pytest.mark.parametrize(
    "base_url",
    [
        "https://user:pw@proxy.example",
        "https://user@proxy.example",
        "https://proxy.example/?a=1",
        "https://proxy.example#frag",
        "https://proxy.example?",
        "https://proxy.example/#",
        "ftp://proxy.example",
        "proxy.example",
        "https://",
    ],
)
def test_base_url_with_credentials_query_or_fragment_is_refused(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="base_url") as caught:
        AsyncZiggeo("app", "pk", base_url=base_url)
    assert "pw" not in str(caught.value)
