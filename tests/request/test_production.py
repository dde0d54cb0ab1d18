"""Running in production: retry configuration, with_options, deadlines, visible retries,
tracing, from_env. Every async test runs on asyncio and trio."""

from __future__ import annotations

import itertools
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx2
import pytest
from trio.testing import MockClock

from tests._servers import hang, serving, trickle
from ziggeo_async import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AsyncZiggeo,
    ClientClosedError,
    ConfigurationError,
    InternalServerError,
    RateLimitError,
    RetryEvent,
    RetryPolicy,
    SyncZiggeo,
    ValidationError,
)
from ziggeo_async._request.pacer import _RAMP_SECONDS, Pacer
from ziggeo_async.testing import FakeZiggeo

pytestmark = pytest.mark.anyio

#: Backoff pinned to nothing: retried tests do not sleep.
NO_WAIT = RetryPolicy(max_retries=2, jitter=lambda: 0.0)


def fake_client(fake: FakeZiggeo, **options: Any) -> AsyncZiggeo:
    lent = httpx2.AsyncClient(transport=fake.transport())
    return AsyncZiggeo(fake.app_token, fake.private_key, http_client=lent, **options)


# -- RetryPolicy as configuration -------------------------------------------------------


async def test_the_retry_policy_given_is_the_one_every_call_follows() -> None:
    fake = FakeZiggeo()
    fake.fail_next(3, status=503)
    client = fake_client(fake, retry=RetryPolicy(max_retries=3, jitter=lambda: 0.0))
    assert client.retry.max_retries == 3
    token = await client.authtokens.create(session_limit=1)  # 4th attempt succeeds
    assert token.token in fake.tokens
    fake.fail_next(3, status=503)
    with pytest.raises(Exception, match="503"):
        await client.with_options(retry=NO_WAIT).authtokens.create(session_limit=1)


def test_max_retries_and_retry_together_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        AsyncZiggeo("app", "key", max_retries=1, retry=NO_WAIT)
    with pytest.raises(ConfigurationError, match="retry must be a RetryPolicy"):
        AsyncZiggeo("app", "key", retry={"max_retries": 1})  # type: ignore[arg-type]
    assert AsyncZiggeo("app", "key").retry.max_retries == 2
    assert AsyncZiggeo("app", "key", max_retries=0).retry.max_retries == 0


@pytest.mark.parametrize("field", ["backoff_base", "backoff_cap", "retry_after_cap"])
@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), 10**6, True, "1"])
def test_a_retry_policy_refuses_delays_it_cannot_mean(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=f"RetryPolicy.{field}"):
        RetryPolicy(**{field: value})  # type: ignore[arg-type]


# -- with_options -------------------------------------------------------------------------


async def test_with_options_shares_connections_and_the_originals_lifecycle() -> None:
    fake = FakeZiggeo()
    client = fake_client(fake)
    quick = client.with_options(timeout=1.5, max_retries=0, deadline=3)
    assert (quick.retry.max_retries, quick.deadline, client.deadline) == (0, 3.0, None)
    assert quick._connection() is client._connection()
    await quick.aclose()  # a no-op: the connections are the original's
    assert not quick.closed
    token = await quick.authtokens.create(session_limit=1)
    assert (await client.authtokens.get(token.token)).token == token.token
    await client.aclose()
    assert quick.closed
    with pytest.raises(ClientClosedError):
        await quick.authtokens.get(token.token)


def test_with_options_checks_its_arguments() -> None:
    client = AsyncZiggeo("app", "key")
    with pytest.raises(ConfigurationError, match="timeout"):
        client.with_options(timeout=-1)
    with pytest.raises(ConfigurationError, match="deadline"):
        client.with_options(deadline=float("inf"))


def test_sync_with_options_runs_on_the_same_portal_and_closes_with_it() -> None:
    fake = FakeZiggeo()
    with SyncZiggeo(
        fake.app_token, fake.private_key, http_client=httpx2.AsyncClient(transport=fake.transport())
    ) as client:
        quick = client.with_options(max_retries=0, deadline=5)
        assert isinstance(quick, SyncZiggeo)
        assert quick.retry.max_retries == 0
        token = quick.authtokens.create(session_limit=2)
        assert client.authtokens.get(token.token).session_limit == 2
        quick.close()  # nothing to close of its own
        assert client.authtokens.get(token.token).token == token.token
    assert quick.closed
    with pytest.raises(ClientClosedError):
        quick.authtokens.get(token.token)


def test_sync_with_options_chains_as_the_async_one_does() -> None:
    fake = FakeZiggeo()
    with SyncZiggeo(
        fake.app_token, fake.private_key, http_client=httpx2.AsyncClient(transport=fake.transport())
    ) as client:
        # The second with_options keeps the first one's max_retries=0 ...
        no_retries = client.with_options(max_retries=0).with_options(deadline=5)
        fake.fail_next(1, status=503)
        with pytest.raises(InternalServerError):
            no_retries.authtokens.get("any-token")
        # ... and a retry= over it replaces it, as on AsyncZiggeo (not "both given").
        one_retry = no_retries.with_options(retry=RetryPolicy(max_retries=1, jitter=lambda: 0.0))
        fake.fail_next(1, status=503)
        assert one_retry.authtokens.create(session_limit=1).session_limit == 1
        assert [request.status for request in fake.requests] == [503, 503, 200]


# -- deadlines ----------------------------------------------------------------------------


#: Three ways to stall a request until the client gives up; the first two send
#: something every 0.1 s, so no single read ever times out.
STALLS = {
    "drip": trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n", b"{", every=0.1),
    "1xx flood": trickle(b"", b"HTTP/1.1 102 Processing\r\n\r\n", every=0.1),
    "silent": hang(effect=False),
}


@pytest.mark.parametrize("how", ["drip", "1xx flood", "silent"])
async def test_a_deadline_ends_the_call_whatever_the_server_does(how: str) -> None:
    deadline = 0.5
    with serving(default=STALLS[how]) as server:
        # A per-read timeout of 1 s: each stall alone would never trip it (drip, flood).
        async with AsyncZiggeo("app", "key", base_url=server.url, timeout=1.0) as client:
            started = time.monotonic()
            with pytest.raises(APITimeoutError, match=r"deadline of 0\.5 s ran out") as caught:
                await client.authtokens.get("t0123456789", deadline=deadline)
            took = time.monotonic() - started
    # Generous for a loaded machine; without the deadline a drip or a flood never ends,
    # and a silent server ends only after every attempt's read timeout (3 s here).
    assert took < deadline + 1.5, took
    assert "1 attempt" in str(caught.value) or "2 attempt" in str(caught.value)


async def test_a_retry_after_longer_than_what_is_left_gives_up_at_once() -> None:
    fake = FakeZiggeo()
    fake.fail_next(1, status=429, retry_after=30)
    client = fake_client(fake, deadline=5)
    started = time.monotonic()
    with pytest.raises(RateLimitError):
        await client.authtokens.create(session_limit=1)
    assert time.monotonic() - started < 4  # it did not sleep the 30 s, nor wait out the 5
    assert len(fake.requests) == 1


async def test_the_call_deadline_wins_over_the_clients() -> None:
    fake = FakeZiggeo()
    fake.fail_next(1, status=429, retry_after=0.01)
    client = fake_client(fake, deadline=0.001, retry=NO_WAIT)
    token = await client.authtokens.create(session_limit=1, deadline=10)
    assert token.token in fake.tokens


@pytest.mark.parametrize("deadline", [0, -1, float("nan"), float("inf"), 10**9, True, "1"])
async def test_a_bad_deadline_is_refused_before_sending(deadline: object) -> None:
    fake = FakeZiggeo()
    client = fake_client(fake)
    with pytest.raises(ValidationError, match="deadline"):
        await client.authtokens.get("tok", deadline=deadline)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="deadline"):
        client.authtokens.create_many([{}], deadline=deadline)  # type: ignore[arg-type]
    assert fake.requests == ()


async def test_batches_take_a_deadline_per_item() -> None:
    fake = FakeZiggeo()
    fake.latency = 0.05
    client = fake_client(fake)
    async with client.authtokens.create_many(
        [{"session_limit": 1}, {"session_limit": 2}], deadline=0.01
    ) as results:
        errors = [result.error async for result in results]
    assert all(isinstance(error, APITimeoutError) for error in errors)


# -- visible retries ----------------------------------------------------------------------


async def test_each_retry_is_one_info_line_and_one_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeZiggeo()
    token = (await fake_client(fake).authtokens.create(session_limit=1)).token
    events: list[RetryEvent] = []
    client = fake_client(fake, retry=NO_WAIT, on_retry=events.append)
    fake.fail_next(1, status=503)
    fake.drop_next(1)
    caplog.set_level(logging.INFO, logger="ziggeo_async")
    assert (await client.authtokens.get(token)).token == token
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert [r.getMessage() for r in infos] == [
        f"get …{token[-4:]}: 503 on attempt 1, retrying in 0.00 s",
        f"get …{token[-4:]}: ConnectError on attempt 2, retrying in 0.00 s",
    ]
    assert events == [
        RetryEvent("get", 1, 0.0, 503, None, f"…{token[-4:]}"),
        RetryEvent("get", 2, 0.0, None, "ConnectError", f"…{token[-4:]}"),
    ]
    assert not any(token in r.getMessage() for r in caplog.records)


async def test_an_on_retry_that_raises_is_logged_and_the_call_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(_event: RetryEvent) -> None:
        raise RuntimeError("callback bug")

    fake = FakeZiggeo()
    fake.fail_next(1, status=503)
    client = fake_client(fake, retry=NO_WAIT, on_retry=broken)
    assert (await client.authtokens.create(session_limit=1)).token in fake.tokens
    assert any("on_retry raised RuntimeError" in r.getMessage() for r in caplog.records)


def test_ziggeo_log_sets_up_a_stderr_handler(subprocess_env: dict[str, str]) -> None:
    code = (
        "import asyncio, httpx2\n"
        "from ziggeo_async import AsyncZiggeo, RetryPolicy\n"
        "from ziggeo_async.testing import FakeZiggeo\n"
        "fake = FakeZiggeo(); fake.fail_next(1, status=503)\n"
        "policy = RetryPolicy(jitter=lambda: 0.0)\n"
        "client = AsyncZiggeo(fake.app_token, fake.private_key, retry=policy,\n"
        "    http_client=httpx2.AsyncClient(transport=fake.transport()))\n"
        "asyncio.run(client.authtokens.create(session_limit=1))\n"
    )
    for level, expected in (("info", "retrying in"), ("debug", "-> 200")):
        result = subprocess.run(
            [sys.executable, "-c", code],
            env={**subprocess_env, "ZIGGEO_LOG": level},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert expected in result.stderr
    quiet = subprocess.run(
        [sys.executable, "-c", code],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert quiet.stderr == ""


# -- OpenTelemetry ------------------------------------------------------------------------

otel_sdk = pytest.importorskip("opentelemetry.sdk.trace")


@pytest.fixture(scope="session")
def _process_tracer() -> Any:
    """A tracer provider for the whole process (OpenTelemetry allows setting it once),
    whose spans are kept only while a test asks for them.

    Session-scoped: a module-scoped one was made again when a worker came back to this
    module after another (xdist hands out tests in any order), and OpenTelemetry kept
    the first provider, so the second exporter saw no span.
    """
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    class WhileRecording(SimpleSpanProcessor):
        recording = False

        def on_end(self, span: Any) -> None:
            if self.recording:
                super().on_end(span)

    memory = InMemorySpanExporter()
    processor = WhileRecording(memory)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return memory, processor


@pytest.fixture
def exporter(_process_tracer: Any) -> Iterator[Any]:
    memory, processor = _process_tracer
    memory.clear()
    processor.recording = True
    yield memory
    processor.recording = False  # later tests (memory-bounded ones among them) keep none
    memory.clear()


async def test_one_client_span_per_call_with_its_attempts_and_retries(exporter: Any) -> None:
    from opentelemetry.trace import SpanKind, StatusCode

    exporter.clear()
    fake = FakeZiggeo()
    client = fake_client(fake, retry=NO_WAIT)
    fake.fail_next(1, status=429)
    token = await client.authtokens.create(session_limit=1)
    with pytest.raises(Exception, match="404"):
        await client.authtokens.get("no-such-token-0000")
    created, missing = exporter.get_finished_spans()
    assert (created.name, created.kind) == ("ziggeo.authtokens.create", SpanKind.CLIENT)
    assert dict(created.attributes) == {
        "ziggeo.operation": "create",
        "http.request.method": "POST",
        "server.address": "srv-api.ziggeo.com",
        "ziggeo.attempts": 2,
        "http.response.status_code": 200,
    }
    assert [event.name for event in created.events] == ["ziggeo.retry"]
    assert missing.attributes["error.type"] == "NotFoundError"
    assert missing.status.status_code is StatusCode.ERROR
    texts = repr([(s.attributes, [e.attributes for e in s.events]) for s in (created, missing)])
    for secret in (token.token, "no-such-token-0000", fake.private_key):
        assert secret not in texts


async def test_an_unusable_body_is_no_error_of_the_span_which_ends_before_it_is_read(
    exporter: Any,
) -> None:
    # The span covers the attempts; reading the answer comes after it, in the same call.
    exporter.clear()

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(201, content=b"not json")

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(answer)) as lent:
        client = AsyncZiggeo("app", "secret", http_client=lent)
        with pytest.raises(APIResponseValidationError, match="not valid JSON"):
            await client.authtokens.create(session_limit=1)
    (span,) = exporter.get_finished_spans()
    assert span.attributes["http.response.status_code"] == 201
    assert "error.type" not in span.attributes


async def test_a_call_that_got_no_answer_has_an_error_span_without_a_status_code(
    exporter: Any,
) -> None:
    from opentelemetry.trace import StatusCode

    exporter.clear()
    fake = FakeZiggeo()
    client = fake_client(fake, retry=NO_WAIT)
    fake.drop_next(3, when="after")  # a create is not retried once it may have been made
    with pytest.raises(APIConnectionError):
        await client.authtokens.create(session_limit=1)
    (span,) = exporter.get_finished_spans()
    assert span.attributes["error.type"] == "APIConnectionError"
    assert span.attributes["ziggeo.attempts"] == 1
    assert "http.response.status_code" not in span.attributes
    assert span.status.status_code is StatusCode.ERROR


async def test_batch_items_are_children_of_the_span_current_where_the_batch_began(
    exporter: Any,
) -> None:
    from opentelemetry import trace

    exporter.clear()
    fake = FakeZiggeo()
    client = fake_client(fake)
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("job") as job:
        async with client.authtokens.create_many([{"session_limit": n} for n in range(3)]) as run:
            async for _ in run:
                pass
    spans = [s for s in exporter.get_finished_spans() if s.name.startswith("ziggeo.")]
    assert len(spans) == 3
    assert {s.parent.span_id for s in spans} == {job.get_span_context().span_id}


def test_without_a_tracer_provider_no_span_is_made(subprocess_env: dict[str, str]) -> None:
    code = (
        "import asyncio, httpx2, sys\n"
        "from ziggeo_async import AsyncZiggeo\n"
        "from ziggeo_async._request import observe as _observe\n"
        "from ziggeo_async.testing import FakeZiggeo\n"
        "fake = FakeZiggeo()\n"
        "client = AsyncZiggeo(fake.app_token, fake.private_key,\n"
        "    http_client=httpx2.AsyncClient(transport=fake.transport()))\n"
        "asyncio.run(client.authtokens.create(session_limit=1))\n"
        "print('opentelemetry.sdk' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.strip() == "False"


# -- from_env -----------------------------------------------------------------------------


@pytest.mark.parametrize("make", [AsyncZiggeo.from_env, SyncZiggeo.from_env])
def test_from_env_reads_the_variables_and_names_a_missing_one(
    make: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "ZIGGEO_APP_TOKEN",
        "ZIGGEO_PRIVATE_KEY",
        "ZIGGEO_ENCRYPTION_KEY",
        "ZIGGEO_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZIGGEO_APP_TOKEN", "app")
    with pytest.raises(ConfigurationError, match=r"^ZIGGEO_PRIVATE_KEY not set"):
        make()
    monkeypatch.setenv("ZIGGEO_PRIVATE_KEY", "key")
    monkeypatch.setenv("ZIGGEO_BASE_URL", "http://127.0.0.1:9")
    client = make(max_retries=0)
    assert (client.app_token, client.base_url, client.retry.max_retries) == (
        "app",
        "http://127.0.0.1:9",
        0,
    )
    assert make(base_url="http://127.0.0.1:8").base_url == "http://127.0.0.1:8"
    with pytest.raises(ConfigurationError, match="encryption"):
        client.auth.generate()
    if isinstance(client, SyncZiggeo):
        client.close()


# -- batches that pace themselves ----------------------------------------------------------


class TestPacingOnAMockClock:
    """A batch against a rate limit on trio's mock clock: every sleep, the fake's latency
    and its token bucket keep virtual time, so what the pacer sees does not depend on how
    busy the machine is. (On the real clock, how long the first answers took decided how
    fast the pacer thought the server was, and one run in many lost an item to a third
    429.) asyncio has no mock clock to run on; the pacer is the same code on both."""

    @pytest.fixture
    def anyio_backend(self) -> tuple[str, dict[str, object]]:
        return "trio", {"clock": MockClock(autojump_threshold=0)}

    @pytest.mark.parametrize("latency", [0.0, 0.005, 0.05])
    @pytest.mark.parametrize("starts_at", [0.0, 1.0], ids=["clock at 0", "clock at 1 s"])
    async def test_a_rate_limited_batch_paces_itself_and_every_item_succeeds(
        self, latency: float, starts_at: float
    ) -> None:
        """Every item made, few 429s past the first wave, and near the ideal time. (The
        2,000-item run against 200/s, wall time included, is benchmarks/bench_pacing.py.)

        With no latency the fake refuses the first wave at the instant it arrives, so the
        first throttle comes before the pacer could measure anything: the pace used to
        restart from 1 request a second, and the batch took 71 s instead of 2."""
        await anyio.sleep(starts_at)
        fake = FakeZiggeo()
        fake.rate_limit(per_second=400, burst=10)
        fake.latency = latency
        client = fake_client(fake)
        made = 0
        concurrency = 64
        started = anyio.current_time()
        work = ({"session_limit": n} for n in range(800))
        async with client.authtokens.create_many(work, concurrency=concurrency) as results:
            async for result in results:
                assert result.ok, result.error
                made += 1
        took = anyio.current_time() - started  # virtual time: the same on any machine
        assert made == len(fake.tokens) == 800
        throttled = sum(1 for request in fake.requests if request.status == 429)
        # The first wave goes out before any answer can slow it: all but the burst of it
        # may be refused. Unpaced, most of the rest would be too (bench_pacing: 90 %).
        first_wave = concurrency - 10
        assert throttled - first_wave <= 0.05 * len(fake.requests), throttled
        ideal = 800 / 400
        assert took <= 1.5 * ideal, took

    async def test_the_first_cut_is_nine_tenths_of_the_rate_achieved_since_the_first_answer(
        self,
    ) -> None:
        """Unthrottled turns read no clock, but the first answer's time is kept: the first
        throttle measures what got through from then (without it, the pace would be
        worked out from nothing). The wait for the first answer does not count: nothing
        could come back before it."""
        pacer = Pacer()
        await anyio.sleep(1.0)
        turn = await pacer.take_turn()
        await anyio.sleep(1.0)  # the first answer comes a second after the first turn
        for _ in range(100):
            pacer.succeeded()
            turn = await pacer.take_turn()
        await anyio.sleep(1.0)
        pacer.throttled(retry_after=None, turn=turn)
        assert pacer.rate == pytest.approx(0.9 * 100 / 1.0)  # 100 successes in 1 s, cut to 90 %

    async def test_a_first_throttle_in_the_first_wave_ramps_the_pace_up_from_the_burst(
        self,
    ) -> None:
        """Successes counted a moment after the first turn are the server's burst, not
        its rate: the pace starts from them spread over the ramp's time, and doubles as
        successes keep up with it, instead of being cut from the burst's rate."""
        pacer = Pacer()
        for _ in range(10):
            turn = await pacer.take_turn()
            pacer.succeeded()
        await anyio.sleep(0.01)
        pacer.throttled(retry_after=None, turn=turn)
        start = 10 / _RAMP_SECONDS
        assert pacer.rate == pytest.approx(start)
        # One success adds 1/_RAMP_SECONDS a second; the pace at most doubles per success.
        turn = await pacer.take_turn()
        pacer.succeeded()
        assert pacer.rate == pytest.approx(start + 1 / _RAMP_SECONDS)
        while pacer.rate < 4 * start:
            turn = await pacer.take_turn()
            pacer.succeeded()
        # The throttle that ends the ramp cuts the pace, and it grows slowly from there.
        before = pacer.rate
        pacer.throttled(retry_after=None, turn=turn)
        assert before * 0.5 <= pacer.rate <= before * 0.9
        after = pacer.rate
        await anyio.sleep(1.0)
        await pacer.take_turn()
        pacer.succeeded()
        assert pacer.rate == pytest.approx(after + max(1.0, after * 0.05) * 1.0)

    async def test_the_ramp_doubles_in_no_less_than_two_round_trips(self) -> None:
        """A throttle takes a round trip to come back: a ramp that doubled faster would
        have overshot by more than twice before it heard. The first answer's wait is the
        round trip measured."""
        pacer = Pacer()
        for _ in range(10):
            turn = await pacer.take_turn()
        await anyio.sleep(0.5)  # answers come half a second after their requests
        for _ in range(10):
            pacer.succeeded()
        pacer.throttled(retry_after=None, turn=turn)
        assert pacer.rate == pytest.approx(10 / 1.0)  # the burst spread over two round trips
        turn = await pacer.take_turn()
        pacer.succeeded()
        assert pacer.rate == pytest.approx(10 + 1 / 1.0)  # so doubling in a second

    async def test_throttles_of_turns_booked_before_a_cut_cut_nothing_more(self) -> None:
        """Answers to requests that left before a cut tell of the overshoot it answered."""
        pacer = Pacer(ceiling=100)
        old_turn = await pacer.take_turn()
        await anyio.sleep(1.0)
        pacer.throttled(retry_after=None, turn=old_turn)
        cut_once = pacer.rate
        assert cut_once is not None
        assert cut_once < 100
        for _ in range(20):
            pacer.throttled(retry_after=None, turn=old_turn)
        assert pacer.rate == cut_once
        new_turn = await pacer.take_turn()
        await anyio.sleep(1.0)
        pacer.throttled(retry_after=None, turn=new_turn)
        assert pacer.rate < cut_once

    async def test_turns_waiting_at_the_old_pace_are_booked_again_at_the_new_one(self) -> None:
        """A cut spaces the turns that were already waiting at the new pace, and a pace
        that grows brings forward turns that were too far off to book."""
        pacer = Pacer(ceiling=1000)
        sent: list[float] = []

        async def worker() -> None:
            await pacer.take_turn()
            sent.append(anyio.current_time())

        async with anyio.create_task_group() as workers:
            for _ in range(5):
                workers.start_soon(worker)
            # Half a millisecond on: the workers have booked their turns 1 ms apart (at
            # 1,000 a second), and the first has gone.
            await anyio.sleep(0.0005)
            assert len(sent) == 1  # the first went at once; four wait
            pacer.throttled(retry_after=None, turn=0)
        # The cut (nothing got through, so to half) came while four turns waited: they went
        # out at 500 a second, the first of them one interval after the cut, 2 ms apart,
        # not at the 1 ms they were booked at.
        gaps = [later - earlier for earlier, later in itertools.pairwise(sent)]
        assert gaps == pytest.approx([0.0005 + 1 / 500] + [1 / 500] * 3)

        slow = Pacer(ceiling=1000)
        slow.rate = 1.0  # as after cuts to the floor; ten turns would take 10 s at this pace
        started = anyio.current_time()
        async with anyio.create_task_group() as workers:

            async def succeeding_worker() -> None:
                await slow.take_turn()
                slow.succeeded()

            for _ in range(10):
                workers.start_soon(succeeding_worker)
        # Each success adds at least a request a second per second of growth, and the
        # turns not booked yet come at the grown pace: far sooner than 10 s.
        assert anyio.current_time() - started < 5


async def test_max_per_second_is_the_ceiling_of_the_pace() -> None:
    fake = FakeZiggeo()
    fake.rate_limit(per_second=1000, burst=1000)  # never reached: the ceiling holds
    client = fake_client(fake)
    started = time.monotonic()
    async with client.authtokens.create_many(
        [{"session_limit": n} for n in range(21)], concurrency=8, max_per_second=100
    ) as results:
        assert all([result.ok async for result in results])
    # 21 starts at most 100 a second are 20 intervals of 10 ms apart: a lower bound only.
    assert time.monotonic() - started >= 0.19
    assert not any(request.status == 429 for request in fake.requests)


async def test_the_fakes_rate_limit_answers_429_with_retry_after() -> None:
    fake = FakeZiggeo()
    fake.rate_limit(per_second=1, burst=2)
    client = fake_client(fake, max_retries=0)
    await client.authtokens.create(session_limit=1)
    await client.authtokens.create(session_limit=2)
    with pytest.raises(RateLimitError) as caught:
        await client.authtokens.create(session_limit=3)
    assert caught.value.response is not None
    assert 0 < float(caught.value.response.headers["retry-after"]) <= 1
    assert len(fake.tokens) == 2
    with pytest.raises(ValueError, match="per_second"):
        fake.rate_limit(per_second=0)
    fake.clear_faults()
    await client.authtokens.create(session_limit=4)
    assert len(fake.tokens) == 3
