"""Status codes map to the documented exception classes; errors keep what they saw and pickle."""

from __future__ import annotations

import base64
import gc
import pickle
import traceback
from urllib.parse import quote

import httpx
import pytest
import respx

from tests._support import APP_TOKEN, COLLECTION_URL, PRIVATE_KEY, make_client
from ziggeo_async import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
    ValidationError,
    ZiggeoError,
)
from ziggeo_async._core.errors import BODY_EXCERPT_CHARS, error_class_for_status

FAMILY = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}
STATUS_SUBCLASSES = (*FAMILY.values(), InternalServerError)


def expected_class(status: int) -> type[APIStatusError]:
    if status >= 500:
        return InternalServerError
    return FAMILY.get(status, APIStatusError)


@pytest.mark.parametrize("status", [s for s in range(100, 600) if not 200 <= s < 300])
def test_every_non_success_status_maps_to_exactly_one_class(status: int) -> None:
    cls = error_class_for_status(status)
    assert cls is expected_class(status)
    assert sum(issubclass(cls, family) for family in STATUS_SUBCLASSES) <= 1
    assert issubclass(cls, APIStatusError)


def test_the_tree_is_as_documented() -> None:
    assert issubclass(APITimeoutError, APIConnectionError)
    for cls in (APIConnectionError, APIResponseValidationError, APIStatusError):
        assert issubclass(cls, APIError)
    for base in (APIError, ConfigurationError, ValidationError, ClientClosedError):
        assert issubclass(base, ZiggeoError)
    assert issubclass(ValidationError, ValueError)
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(ClientClosedError, RuntimeError)


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (400, '{"error": "bad grants"}', "application/json"),
        (401, "Unauthorized", "text/plain"),
        (403, "<html><body><h1>403 Forbidden</h1></body></html>", "text/html"),
        (404, "Not Found\n", "text/plain"),
        (409, "conflict", "text/plain"),
        (418, "I'm a teapot", "text/plain"),
        (422, '{"errors": ["session_limit"]}', "application/json"),
        (429, "slow down", "text/plain"),
        (500, "<!DOCTYPE html><html>Internal Server Error</html>", "text/html"),
        (503, "", "text/plain"),
        (599, "odd", "text/plain"),
        (302, "moved", "text/plain"),
        (304, "", "text/plain"),
    ],
)
@pytest.mark.anyio
async def test_status_error_keeps_status_and_body_verbatim(
    status: int, body: str, content_type: str
) -> None:
    client = make_client(max_retries=0)
    with respx.mock(assert_all_called=True) as router:
        route = router.get(f"{COLLECTION_URL}token-wxyz").respond(
            status,
            text=body,
            headers={"Content-Type": content_type, "Location": "https://evil.example/"},
        )
        with pytest.raises(APIStatusError) as caught:
            await client.authtokens.get("token-wxyz")
    error = caught.value
    assert type(error) is expected_class(status)
    assert error.status_code == status
    assert error.body == body
    assert error.method == "GET"
    assert error.path == "/v1/authtokens/…wxyz"
    assert error.response is not None
    assert error.response.status_code == status
    assert str(error).startswith(f"GET /v1/authtokens/…wxyz returned {status}: ")
    assert repr(body[:200]) in str(error)
    assert route.call_count == 1, "redirects are not followed"


@pytest.mark.parametrize("token_id", ["8e2f0c1d9a7b4e3f", "é token/8e2f0c1d9a7b"])
@pytest.mark.anyio
async def test_a_body_quoting_the_token_id_shows_it_cut_in_the_message(token_id: str) -> None:
    """A server that names the token in its error page (or echoes the request line):
    the message shows the id as the path does, its last 4 characters; the body keeps it."""
    quoted = quote(token_id, safe="")
    body = f"no token {token_id} here; you asked for GET /v1/authtokens/{quoted} HTTP/1.1"
    client = make_client(max_retries=0)
    with respx.mock(assert_all_called=True) as router:
        router.get(f"{COLLECTION_URL}{quoted}").respond(404, text=body)
        with pytest.raises(NotFoundError) as caught:
            await client.authtokens.get(token_id)
    error = caught.value
    assert error.body == body
    shown = f"…{quoted[-4:]}"
    assert str(error).count(shown) == 3  # the path, then each place the body had it
    for text in (
        str(error),
        repr(error),
        repr(error.args),
        "".join(traceback.format_exception(error)),
    ):
        assert token_id not in text
        assert quoted not in text


@pytest.mark.anyio
async def test_long_bodies_are_cut_in_the_message_but_kept_whole() -> None:
    body = "x" * 5000
    client = make_client(max_retries=0)
    with respx.mock(assert_all_called=True) as router:
        router.delete(f"{COLLECTION_URL}t").respond(400, text=body)
        with pytest.raises(BadRequestError) as caught:
            await client.authtokens.delete("t")
    assert caught.value.body == body
    assert len(str(caught.value)) < BODY_EXCERPT_CHARS + 100
    assert str(caught.value).endswith("…'")


@pytest.mark.anyio
async def test_status_error_pickles_without_its_response() -> None:
    client = make_client(max_retries=0)
    with respx.mock(assert_all_called=True) as router:
        router.post(COLLECTION_URL).respond(422, text="no")
        with pytest.raises(UnprocessableEntityError) as caught:
            await client.authtokens.create(session_limit=1)
    error = caught.value
    assert error.response is not None
    data = pickle.dumps(error)
    assert PRIVATE_KEY.encode() not in data
    assert b"Authorization" not in data
    copy = pickle.loads(data)
    assert type(copy) is UnprocessableEntityError
    assert copy.response is None
    assert (copy.status_code, copy.body, copy.method, copy.path, copy.message) == (
        422,
        "no",
        "POST",
        "/v1/authtokens/",
        error.message,
    )
    assert str(copy) == str(error)
    assert error.response is not None, "pickling must not strip the live error"


@pytest.mark.anyio
async def test_connection_error_pickles_and_names_the_request() -> None:
    client = make_client(max_retries=0)
    with respx.mock(assert_all_called=True) as router:
        router.get(f"{COLLECTION_URL}abcdef").mock(side_effect=httpx.ReadTimeout("slow"))
        with pytest.raises(APITimeoutError) as caught:
            await client.authtokens.get("abcdef")
    error = caught.value
    assert isinstance(error.__cause__, httpx.ReadTimeout)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is APITimeoutError
    assert (copy.method, copy.path, str(copy)) == ("GET", "/v1/authtokens/…cdef", str(error))
    assert "ReadTimeout: slow" in str(copy)


def test_other_errors_pickle_with_their_attributes() -> None:
    validation = pickle.loads(pickle.dumps(ValidationError("grants.read", "unknown")))
    assert (validation.argument, validation.reason, str(validation)) == (
        "grants.read",
        "unknown",
        "grants.read: unknown",
    )
    shape = APIResponseValidationError("m", method="GET", path="/p", status_code=201, body="b")
    copy = pickle.loads(pickle.dumps(shape))
    assert (copy.message, copy.method, copy.path, copy.status_code, copy.body) == (
        "m",
        "GET",
        "/p",
        201,
        "b",
    )
    for error in (ConfigurationError("c"), ClientClosedError("closed")):
        assert str(pickle.loads(pickle.dumps(error))) == str(error)


@pytest.mark.parametrize(
    ("side_effect", "error_class"),
    [
        (httpx.ConnectError("refused"), APIConnectionError),
        (httpx.ConnectTimeout("connect"), APITimeoutError),
        (httpx.PoolTimeout("pool"), APITimeoutError),
        (httpx.ReadError("reset"), APIConnectionError),
        (httpx.WriteTimeout("write"), APITimeoutError),
        (httpx.RemoteProtocolError("dropped"), APIConnectionError),
        (httpx.UnsupportedProtocol("gopher"), APIConnectionError),
    ],
)
@pytest.mark.anyio
async def test_transport_failures_map_to_connection_errors(
    side_effect: Exception, error_class: type[APIError]
) -> None:
    client = make_client(max_retries=0)
    with respx.mock(assert_all_called=True) as router:
        router.get(f"{COLLECTION_URL}t").mock(side_effect=side_effect)
        with pytest.raises(APIConnectionError) as caught:
            await client.authtokens.get("t")
    assert type(caught.value) is error_class
    # The cause is a cleaned copy of the HTTP stack's exception: same class, same text here.
    assert type(caught.value.__cause__) is type(side_effect)
    assert str(caught.value.__cause__) == str(side_effect)
    assert "after 1 attempt(s)" in str(caught.value)


@pytest.mark.anyio
async def test_a_stack_message_quoting_credentials_and_the_url_is_cleaned() -> None:
    """The HTTP stack's message can quote the URL (the whole token id) or a header line a
    server echoed: the error, its cause and its traceback carry only the cleaned text."""
    token_id = "tok-WHOLE-ID-abcd"
    credentials = base64.b64encode(f"{APP_TOKEN}:{PRIVATE_KEY}".encode()).decode()
    quoted = f"{COLLECTION_URL}{token_id}: got 'Authorization: Basic {credentials}'"
    client = make_client(max_retries=0)
    with respx.mock(assert_all_called=True) as router:
        router.get(f"{COLLECTION_URL}{token_id}").mock(
            side_effect=httpx.RemoteProtocolError(quoted)
        )
        with pytest.raises(APIConnectionError) as caught:
            await client.authtokens.get(token_id)
    error = caught.value
    assert type(error.__cause__) is httpx.RemoteProtocolError
    assert error.__suppress_context__
    printed = "".join(traceback.format_exception(error))
    for text in (str(error), repr(error), str(error.__cause__), printed):
        for secret in (token_id, PRIVATE_KEY, credentials, credentials.rstrip("=")):
            assert secret not in text, text
    assert "/v1/authtokens/…abcd" in str(error.__cause__)
    assert "[credentials removed]" in str(error)


def garbled_gzip(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip")
    )


# httpx leaves its body generators unexhausted when decoding fails; trio warns when it
# collects them. That is httpx's to fix, so those warnings are let through here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(("operation", "attempts"), [("create", 1), ("get", 3)])
@pytest.mark.anyio
async def test_a_body_that_does_not_decompress_is_a_connection_error(
    operation: str, attempts: int
) -> None:
    client = make_client(max_retries=2)
    call = (
        client.authtokens.create(session_limit=1)
        if operation == "create"
        else client.authtokens.get("tok")
    )
    with respx.mock(assert_all_called=True) as router:
        route = router.route().mock(side_effect=garbled_gzip)
        with pytest.raises(APIConnectionError, match="DecodingError") as caught:
            await call
    assert type(caught.value) is APIConnectionError
    assert isinstance(caught.value.__cause__, httpx.DecodingError)
    assert route.call_count == attempts
    gc.collect()


@pytest.mark.parametrize(
    ("answer", "error_class"),
    [
        (httpx.ConnectError("refused"), APIConnectionError),
        (httpx.Response(500, text="down"), InternalServerError),
        (httpx.Response(200, text="not json"), APIResponseValidationError),
    ],
    ids=["connection", "status", "unusable body"],
)
@pytest.mark.anyio
async def test_a_traceback_with_its_locals_shows_no_credential(
    answer: Exception | httpx.Response, error_class: type[APIError]
) -> None:
    """What error trackers and ``capture_locals`` print: each frame's locals, by repr."""
    client = make_client(max_retries=0)
    with respx.mock(assert_all_called=True) as router:
        router.get(f"{COLLECTION_URL}abcdef").mock(
            side_effect=answer if isinstance(answer, Exception) else None,
            return_value=answer if isinstance(answer, httpx.Response) else None,
        )
        with pytest.raises(error_class) as caught:
            await client.authtokens.get("abcdef")
    printed = "".join(
        traceback.TracebackException.from_exception(caught.value, capture_locals=True).format()
    )
    assert "call = " in printed  # the pipeline's frame, with its locals, is in it
    credentials = base64.b64encode(f"{APP_TOKEN}:{PRIVATE_KEY}".encode()).decode()
    for secret in (PRIVATE_KEY, credentials, credentials.rstrip("=")):
        assert secret not in printed
