from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ziggeo_async import Grant, ValidationError
from ziggeo_async._arguments import normalize_arguments


@pytest.mark.parametrize("resources", ["video-token", b"video-token"])
def test_grant_model_refuses_resources_given_as_a_bare_string(resources: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Grant(resources=resources)  # type: ignore[arg-type]
    assert caught.value.argument == "resources"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("usage_expiration_time", timedelta(microseconds=-1)),
        ("usage_expiration_time", timedelta(seconds=-0.5)),
        ("expiration_date", datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=timezone.utc)),
    ],
)
def test_a_moment_before_zero_is_negative_not_rounded_to_zero(name: str, value: object) -> None:
    with pytest.raises(ValidationError, match="negative") as caught:
        normalize_arguments({name: value})
    assert caught.value.argument == name
