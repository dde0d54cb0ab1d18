"""Where the command's credentials come from: the ``ZIGGEO_*`` environment variables.

``settings_from_env`` reads them to tell a command what is missing (the API commands
then make their client with ``AsyncZiggeo.from_env()``); the variable names are the
client's own (``ENVIRONMENT``).
Nothing here falls back to a fake: ``--fake`` (or ``ZIGGEO_FAKE=1``) asks for one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final, Literal

import attrs

from .._faces.client import ENVIRONMENT
from ._errors import UsageError

__all__ = ["VARIABLES", "Credential", "Settings", "settings_from_env"]

Credential = Literal["app_token", "private_key", "encryption_key"]

#: The environment variable behind each credential, in the order messages name them.
VARIABLES: Final[Mapping[Credential, str]] = {
    argument: variable  # type: ignore[misc]
    for variable, argument in ENVIRONMENT.items()
    if argument != "base_url"
}
_FAKE_VARIABLE: Final = "ZIGGEO_FAKE"
_YES: Final = frozenset(("1", "true", "yes", "on"))
_NO: Final = frozenset(("", "0", "false", "no", "off"))


@attrs.frozen
class Settings:
    """What the environment says; an empty variable counts as unset."""

    app_token: str | None
    private_key: str | None = attrs.field(repr=False)
    encryption_key: str | None = attrs.field(repr=False)
    #: ``ZIGGEO_FAKE=1``: run on an embedded FakeZiggeo, as ``--fake`` does.
    fake: bool

    def given(self) -> dict[Credential, str]:
        """The credentials that are set, by name."""
        values: dict[Credential, str | None] = {
            "app_token": self.app_token,
            "private_key": self.private_key,
            "encryption_key": self.encryption_key,
        }
        return {name: value for name, value in values.items() if value}

    def missing(self, needed: tuple[Credential, ...]) -> list[str]:
        """The environment variables of ``needed`` that are not set."""
        given = self.given()
        return [VARIABLES[name] for name in needed if name not in given]


def settings_from_env() -> Settings:
    """Read ``ZIGGEO_APP_TOKEN``, ``ZIGGEO_PRIVATE_KEY``, ``ZIGGEO_ENCRYPTION_KEY`` and
    ``ZIGGEO_FAKE``; raises ``UsageError`` for an unreadable ``ZIGGEO_FAKE``."""
    fake_text = os.environ.get(_FAKE_VARIABLE, "").strip().lower()
    if fake_text not in _YES | _NO:
        raise UsageError(f"{_FAKE_VARIABLE} must be 1 or 0 (or unset), got {fake_text!r}")
    return Settings(
        app_token=os.environ.get(VARIABLES["app_token"]) or None,
        private_key=os.environ.get(VARIABLES["private_key"]) or None,
        encryption_key=os.environ.get(VARIABLES["encryption_key"]) or None,
        fake=fake_text in _YES,
    )
