"""Values: grants and the auth token resource, parsed from Ziggeo's JSON."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from .errors import ValidationError
from .token_ids import shown_token_id

__all__ = ["GRANT_NAMES", "AuthToken", "Grant", "Grants", "ResponseShapeError"]

#: The four permissions a token can grant, in the order the API documents them.
GRANT_NAMES = ("read", "create", "update", "destroy")

_INTEGER_TEXT = re.compile(r"-?[0-9]{1,30}")


class ResponseShapeError(ValueError):
    """A JSON document is not an auth token object; the pipeline turns it into an APIError."""


def _resource_tuple(value: Iterable[str] | None) -> tuple[str, ...] | None:
    # A bare string is iterable too: tuple("video") would grant five one-letter videos.
    if isinstance(value, (str, bytes)):
        raise ValidationError(
            "resources", f"expected a list of video tokens, got {type(value).__name__}"
        )
    return None if value is None else tuple(value)


@attrs.frozen
class Grant:
    """One permission: on the listed ``resources``, on what the session made, or on ``all``.

    ``resources`` holds video tokens or keys. A field left ``None`` is not sent.
    """

    resources: tuple[str, ...] | None = attrs.field(default=None, converter=_resource_tuple)
    session_owned: bool | None = None
    all: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object Ziggeo expects, without the fields left ``None``."""
        data: dict[str, Any] = {}
        if self.resources is not None:
            data["resources"] = list(self.resources)
        if self.session_owned is not None:
            data["session_owned"] = self.session_owned
        if self.all is not None:
            data["all"] = self.all
        return data


@attrs.frozen
class Grants:
    """The permissions a token grants: ``read``, ``create``, ``update`` (re-record), ``destroy``."""

    read: Grant | None = None
    create: Grant | None = None
    update: Grant | None = None
    destroy: Grant | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object Ziggeo expects, without the grants left ``None``."""
        data: dict[str, Any] = {}
        for name in GRANT_NAMES:
            grant: Grant | None = getattr(self, name)
            if grant is not None:
                data[name] = grant.to_json()
        return data

    @classmethod
    def from_json(cls, data: object) -> Grants:
        """Parse a grants object as Ziggeo returns it; unknown grant names are ignored here
        and stay reachable through ``AuthToken.raw``."""
        if not isinstance(data, Mapping):
            raise ResponseShapeError(f"grants: expected an object, got {type(data).__name__}")
        grants: dict[str, Grant] = {}
        for name in GRANT_NAMES:
            value = data.get(name)
            if value is not None:
                grants[name] = _grant_from_json(name, value)
        return cls(**grants)


def _grant_from_json(name: str, data: object) -> Grant:
    if not isinstance(data, Mapping):
        # The legacy SDK demo sends {"read": "all"}; keep the meaning rather than fail.
        if data == "all":
            return Grant(all=True)
        raise ResponseShapeError(f"grants.{name}: expected an object, got {type(data).__name__}")
    resources = data.get("resources")
    if resources is not None and (
        not isinstance(resources, list) or not all(isinstance(item, str) for item in resources)
    ):
        raise ResponseShapeError(f"grants.{name}.resources: expected a list of strings")
    return Grant(
        resources=resources,
        session_owned=_lenient_bool(f"grants.{name}.session_owned", data.get("session_owned")),
        all=_lenient_bool(f"grants.{name}.all", data.get("all")),
    )


def _lenient_int(field: str, value: object) -> int | None:
    """Ints as Ziggeo may send them: a number, an integral float or a numeric string."""
    if value is None or type(value) is int or (isinstance(value, int) and type(value) is not bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        return int(value)
    # The type, not the value: a server that echoes the request could put a credential
    # in any field, and a value cut short could not be recognised to be cleaned.
    raise ResponseShapeError(f"{field}: expected an integer, got {type(value).__name__}")


def _lenient_bool(field: str, value: object) -> bool | None:
    if value is None or value is True or value is False:
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ResponseShapeError(f"{field}: expected a boolean, got {type(value).__name__}")


def _frozen_mapping(data: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(data))


@attrs.frozen
class AuthToken:
    """An auth token as Ziggeo returned it.

    The documented fields are typed; ``extra`` keeps every field the API sent that
    is not documented, and ``raw`` the whole JSON object, untouched. The repr shows the
    token id cut to its last 4 characters, as the SDK's logs do: a token printed or
    logged whole does not give its bearer credential away.
    """

    token: str = attrs.field(repr=lambda token: repr(shown_token_id(token)))
    nonce: str | None = None
    volatile: bool | None = None
    hidden: bool | None = None
    expiration_date: int | None = None
    usage_expiration_time: int | None = None
    session_limit: int | None = None
    grants: Grants | None = None
    # A mapping proxy has no hash; leaving both out of __hash__ keeps the value hashable.
    extra: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_mapping, repr=False, hash=False
    )
    raw: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_mapping, repr=False, hash=False
    )

    def __reduce__(self) -> tuple[Any, ...]:
        # A mapping proxy neither pickles nor deep-copies: ``extra`` and ``raw`` travel as
        # plain dicts and are frozen again by their converters.
        fields = attrs.asdict(self, recurse=False)
        fields["extra"], fields["raw"] = dict(self.extra), dict(self.raw)
        return (_auth_token_from_fields, (fields,))

    @classmethod
    def from_json(cls, data: object) -> AuthToken:
        """Build from a decoded JSON object; raise ``ResponseShapeError`` if it is not one."""
        if not isinstance(data, Mapping):
            raise ResponseShapeError(f"expected a JSON object, got {type(data).__name__}")
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise ResponseShapeError("token: expected a non-empty string")
        nonce = data.get("nonce")
        grants = data.get("grants")
        return cls(
            token=token,
            nonce=None if nonce is None else str(nonce),
            volatile=_lenient_bool("volatile", data.get("volatile")),
            hidden=_lenient_bool("hidden", data.get("hidden")),
            expiration_date=_lenient_int("expiration_date", data.get("expiration_date")),
            usage_expiration_time=_lenient_int(
                "usage_expiration_time", data.get("usage_expiration_time")
            ),
            session_limit=_lenient_int("session_limit", data.get("session_limit")),
            grants=None if grants is None else Grants.from_json(grants),
            extra={key: value for key, value in data.items() if key not in _DOCUMENTED_FIELDS},
            raw=data,
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object as received (a mutable copy of ``raw``)."""
        return dict(self.raw)


#: The fields the API documents: AuthToken's own, but for what it keeps of the rest.
_DOCUMENTED_FIELDS = frozenset(field.name for field in attrs.fields(AuthToken)) - {"extra", "raw"}


def _auth_token_from_fields(fields: dict[str, Any]) -> AuthToken:
    return AuthToken(**fields)
