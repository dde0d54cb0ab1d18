"""SyncZiggeo: one portal thread per client, the same results and errors as AsyncZiggeo."""

from __future__ import annotations

import gc
import json
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest

from ziggeo_async import (
    AsyncZiggeo,
    AuthToken,
    BlockingCallError,
    ClientClosedError,
    ConfigurationError,
    InternalServerError,
    NotFoundError,
    SyncZiggeo,
    ValidationError,
)
from ziggeo_async._faces.portal import PORTAL_THREAD_NAME
from ziggeo_async.resources import Auth

REPOSITORY = Path(__file__).resolve().parents[2]


def portal_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == PORTAL_THREAD_NAME]


def token_store() -> Callable[[httpx.Request], httpx.Response]:
    """Just enough of the auth-token API: create, get, update, delete, 404 and 500."""
    tokens: dict[str, dict[str, object]] = {}
    created = iter(range(1, 1_000_000))

    def handle(request: httpx.Request) -> httpx.Response:
        token_id = request.url.path.removeprefix("/v1/authtokens/")
        fields: dict[str, object] = dict(parse_qsl(request.content.decode()))
        if "grants" in fields:
            fields["grants"] = json.loads(str(fields["grants"]))
        if token_id == "broken":
            return httpx.Response(500, text="<html>down</html>")
        if request.method == "POST" and not token_id:
            token_id = f"token-{next(created)}"
            tokens[token_id] = {"token": token_id, **fields}
            return httpx.Response(201, json=tokens[token_id])
        if token_id.startswith("echo-"):
            return httpx.Response(200, json={"token": token_id})
        if token_id not in tokens:
            return httpx.Response(404, text="Authorization token not found")
        if request.method == "DELETE":
            del tokens[token_id]
            return httpx.Response(200, json={})
        if request.method == "POST":
            tokens[token_id].update(fields)
        return httpx.Response(200, json=tokens[token_id])

    return handle


@pytest.fixture
def make_client() -> Iterator[Callable[..., SyncZiggeo]]:
    made: list[SyncZiggeo] = []

    def make(
        handler: Callable[[httpx.Request], httpx.Response] | None = None, **options: object
    ) -> SyncZiggeo:
        transport = httpx.MockTransport(handler or token_store())
        client = SyncZiggeo(
            "app-token",
            "PRIVATE-SECRET",
            "ENCRYPTION-SECRET",
            http_client=httpx.AsyncClient(transport=transport),
            **options,  # type: ignore[arg-type]
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
    assert portal_threads() == []


def test_round_trip_gives_the_same_auth_tokens_as_the_async_client(
    make_client: Callable[..., SyncZiggeo],
) -> None:
    client = make_client()
    created = client.authtokens.create(session_limit=1, grants={"read": {"all": True}})
    assert isinstance(created, AuthToken)
    assert created.session_limit == 1
    assert client.authtokens.get(created.token) == created
    updated = client.authtokens.update(created.token, session_limit=5)
    assert updated.session_limit == 5
    assert client.authtokens.delete(created.token) is None
    with pytest.raises(NotFoundError):
        client.authtokens.get(created.token)
    second = client.authtokens.create(volatile=True)
    client.authtokens.destroy(second.token)
    with pytest.raises(NotFoundError):
        client.authtokens.destroy(second.token)


@pytest.mark.anyio
async def test_results_equal_the_async_clients(make_client: Callable[..., SyncZiggeo]) -> None:
    handler = token_store()
    # The sync client is driven from a worker thread: this test's own thread runs a loop.
    sync_client = make_client(handler)
    created = await _in_thread(lambda: sync_client.authtokens.create(hidden=True))
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http_client,
        AsyncZiggeo("app-token", "key", http_client=http_client) as async_client,
    ):
        assert await async_client.authtokens.get(created.token) == created


async def _in_thread(function: Callable[[], AuthToken]) -> AuthToken:
    import anyio.to_thread

    return await anyio.to_thread.run_sync(function)


def test_one_client_shared_by_32_threads_gives_each_its_own_result(
    make_client: Callable[..., SyncZiggeo],
) -> None:
    client = make_client()
    start = threading.Barrier(32)
    results: dict[int, list[str]] = {}
    failures: list[BaseException] = []

    def work(number: int) -> None:
        try:
            start.wait(timeout=30)
            results[number] = [client.authtokens.get(f"echo-{number}-{i}").token for i in range(5)]
        except BaseException as error:  # reported below, with the thread's number
            failures.append(error)

    threads = [threading.Thread(target=work, args=(number,)) for number in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert results == {n: [f"echo-{n}-{i}" for i in range(5)] for n in range(32)}
    assert len(portal_threads()) == 1  # one portal for all of them


def test_portal_starts_on_first_use_and_close_joins_its_thread(
    make_client: Callable[..., SyncZiggeo],
) -> None:
    client = make_client()
    assert portal_threads() == []  # nothing started by the constructor
    client.authtokens.get("echo-1")
    (thread,) = portal_threads()
    assert thread.daemon
    client.close()
    assert not thread.is_alive()
    assert portal_threads() == []
    assert client.closed
    client.close()  # idempotent


def test_with_starts_the_portal_and_leaving_it_closes(
    make_client: Callable[..., SyncZiggeo],
) -> None:
    client = make_client()
    with client as entered:
        assert entered is client
        assert len(portal_threads()) == 1
    assert portal_threads() == []
    assert client.closed


def test_use_after_close_raises_client_closed_error(
    make_client: Callable[..., SyncZiggeo],
) -> None:
    client = make_client()
    client.authtokens.get("echo-1")
    authtokens = client.authtokens
    client.close()
    with pytest.raises(ClientClosedError, match="closed"):
        authtokens.get("echo-1")
    with pytest.raises(ClientClosedError):
        client.__enter__()
    never_started = make_client()
    never_started.close()
    with pytest.raises(ClientClosedError):
        never_started.authtokens.create(session_limit=1)
    assert portal_threads() == []


def test_closing_a_lent_http_client_is_left_to_its_owner() -> None:
    http_client = httpx.AsyncClient(transport=httpx.MockTransport(token_store()))
    with SyncZiggeo("app", "key", http_client=http_client) as client:
        client.authtokens.get("echo-1")
    assert not http_client.is_closed


def test_bad_constructor_argument_raises_in_the_callers_thread_without_a_portal() -> None:
    with pytest.raises(ConfigurationError, match="app_token"):
        SyncZiggeo("", "key")
    with pytest.raises(ConfigurationError, match="max_retries"):
        SyncZiggeo("app", "key", max_retries=-1)
    with pytest.raises(ConfigurationError, match="http_client"):
        SyncZiggeo("app", "key", http_client=httpx.Client())  # type: ignore[arg-type]
    assert portal_threads() == []


def test_errors_cross_the_portal_with_their_class_and_attributes(
    make_client: Callable[..., SyncZiggeo],
) -> None:
    client = make_client(max_retries=0)
    with pytest.raises(NotFoundError) as not_found:
        client.authtokens.get("missing")
    assert type(not_found.value) is NotFoundError
    assert not_found.value.status_code == 404
    assert not_found.value.body == "Authorization token not found"
    assert not_found.value.method == "GET"
    assert not_found.value.response is not None
    with pytest.raises(InternalServerError) as server_error:
        client.authtokens.get("broken")
    assert server_error.value.status_code == 500
    assert server_error.value.body == "<html>down</html>"
    with pytest.raises(ValidationError) as invalid:
        client.authtokens.update("..", session_limit=1)
    assert invalid.value.argument == "token_or_key"


@pytest.mark.anyio
async def test_call_inside_a_running_event_loop_is_refused(
    make_client: Callable[..., SyncZiggeo], anyio_backend: str
) -> None:
    client = make_client()
    with pytest.raises(BlockingCallError, match=f"{anyio_backend} event loop.*AsyncZiggeo"):
        client.authtokens.get("echo-1")
    with pytest.raises(BlockingCallError, match="AsyncZiggeo"):
        client.__enter__()
    assert portal_threads() == []  # refused before anything started


def test_call_from_the_portal_thread_is_refused(make_client: Callable[..., SyncZiggeo]) -> None:
    refused: list[BaseException] = []
    client: SyncZiggeo | None = None

    def handle(request: httpx.Request) -> httpx.Response:
        # The transport runs on the portal's loop thread: a nested call would deadlock.
        assert client is not None
        try:
            client.authtokens.get("echo-inner")
        except BlockingCallError as error:
            refused.append(error)
        return httpx.Response(200, json={"token": "outer"})

    client = make_client(handle)
    assert client.authtokens.get("outer").token == "outer"
    (error,) = refused
    assert "own portal thread" in str(error)
    assert "AsyncZiggeo" in str(error)


def test_auth_is_the_shared_sync_resource_and_starts_no_portal(
    make_client: Callable[..., SyncZiggeo],
) -> None:
    client = make_client()
    assert type(client.auth) is Auth
    token = client.auth.generate(session_limit=2)
    assert client.auth.decode(token)["session_limit"] == 2
    assert portal_threads() == []


def test_repr_and_errors_show_no_secret(make_client: Callable[..., SyncZiggeo]) -> None:
    client = make_client()
    assert "SECRET" not in repr(client)
    client.authtokens.get("echo-1")
    assert "running" in repr(client)
    with pytest.raises(TypeError, match="does not pickle"):
        pickle.dumps(client)


def test_unclosed_client_only_warns_when_collected() -> None:
    client = SyncZiggeo(
        "app", "key", http_client=httpx.AsyncClient(transport=httpx.MockTransport(token_store()))
    )
    client.authtokens.get("echo-1")
    portal = client._portal
    with pytest.warns(ResourceWarning, match="was not closed"):
        del client  # nothing else refers to it: collected here
    assert len(portal_threads()) == 1  # no I/O in the finalizer: the thread is still there
    portal.close()
    assert portal_threads() == []


def test_never_started_client_does_not_warn() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = SyncZiggeo("app", "key")
        del client
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


INTERRUPTED_CALL = textwrap.dedent(
    """
    import json, signal, threading
    import anyio, httpx
    from ziggeo_async import SyncZiggeo

    # A child started where SIGINT is ignored (a background job, nohup) inherits that,
    # and Python then installs no KeyboardInterrupt handler: put it back, as a terminal has it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started, cancelled = threading.Event(), threading.Event()

    async def handle(request):
        if request.url.path.endswith("/slow"):
            started.set()
            try:
                await anyio.sleep(120)
            except anyio.get_cancelled_exc_class():
                cancelled.set()
                raise
        return httpx.Response(200, json={"token": "fast"})

    client = SyncZiggeo(
        "app", "key", http_client=httpx.AsyncClient(transport=httpx.MockTransport(handle))
    )

    def press_ctrl_c():
        started.wait(30)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c, daemon=True)
    presser.start()
    outcome = {}
    try:
        client.authtokens.get("slow")
    except KeyboardInterrupt:
        outcome["raised"] = "KeyboardInterrupt"
    outcome["cancelled_on_loop"] = cancelled.wait(30)
    outcome["next_call"] = client.authtokens.get("fast").token
    client.close()
    presser.join(30)  # the test's own thread: only the SDK's may not be left
    outcome["threads_left"] = [t.name for t in threading.enumerate()]
    print(json.dumps(outcome))
    """
)


def test_ctrl_c_cancels_the_call_on_the_loop_and_the_client_keeps_working() -> None:
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_CALL],
        capture_output=True,
        text=True,
        check=False,
        timeout=90,
        cwd=REPOSITORY,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "raised": "KeyboardInterrupt",
        "cancelled_on_loop": True,
        "next_call": "fast",
        "threads_left": ["MainThread"],
    }


def test_close_from_the_portal_thread_is_refused(make_client: Callable[..., SyncZiggeo]) -> None:
    refused: list[BaseException] = []
    client: SyncZiggeo | None = None

    def handle(request: httpx.Request) -> httpx.Response:
        assert client is not None
        try:
            client.close()
        except BlockingCallError as error:
            refused.append(error)
        return httpx.Response(200, json={"token": "outer"})

    client = make_client(handle)
    client.authtokens.get("outer")
    (error,) = refused
    assert "wait for itself" in str(error)
    assert not client.closed


def test_a_call_racing_close_gets_client_closed_error(
    make_client: Callable[..., SyncZiggeo],
) -> None:
    client = make_client()
    async_client = client._portal.client()  # what a racing call holds before close() ran
    client.close()
    with pytest.raises(ClientClosedError):
        client._portal.call(async_client.authtokens.get, "echo-1")


def test_client_properties_come_from_the_config_without_a_portal(
    make_client: Callable[..., SyncZiggeo],
) -> None:
    client = make_client()
    assert client.app_token == "app-token"
    assert client.base_url == "https://srv-api.ziggeo.com"
    assert repr(client.authtokens) == "<SyncAuthTokens>"
    assert "idle" in repr(client)
    assert portal_threads() == []
