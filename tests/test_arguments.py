from __future__ import annotations

import pytest

from ziggeo_async import Grant, ValidationError


@pytest.mark.parametrize("resources", ["video-token", b"video-token"])
def test_grant_model_refuses_resources_given_as_a_bare_string(resources: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Grant(resources=resources)  # type: ignore[arg-type]
    assert caught.value.argument == "resources"
