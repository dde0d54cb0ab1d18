"""The ziggeo-async command line, in-process through main(argv) and as a subprocess."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import runpy
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._support import serve_on_uvicorn
from ziggeo_async._core.cipher import ClientTokenCipher
from ziggeo_async.cli import _main, main
from ziggeo_async.testing import FakeZiggeo

SECRETS = (
    "fake-private-key",
    "fake-encryption-key",
    "Authorization:",
    base64.b64encode(b"fake-app-token:fake-private-key").decode(),
)


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ZIGGEO_APP_TOKEN",
        "ZIGGEO_PRIVATE_KEY",
        "ZIGGEO_ENCRYPTION_KEY",
        "ZIGGEO_BASE_URL",
        "ZIGGEO_FAKE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def served(served_fake: tuple[FakeZiggeo, str], monkeypatch: pytest.MonkeyPatch) -> FakeZiggeo:
    fake, url = served_fake
    monkeypatch.setenv("ZIGGEO_APP_TOKEN", fake.app_token)
    monkeypatch.setenv("ZIGGEO_PRIVATE_KEY", fake.private_key)
    monkeypatch.setenv("ZIGGEO_ENCRYPTION_KEY", fake.encryption_key)
    monkeypatch.setenv("ZIGGEO_BASE_URL", url)
    return fake


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    for secret in SECRETS:
        assert secret not in out + err
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if "using an embedded FakeZiggeo" not in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- in-process ----------------------------------------------------------------------


def test_authtokens_round(served: FakeZiggeo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "authtokens",
        "create",
        "--session-limit",
        "3",
        "--grants",
        '{"read": {"all": true}}',
        "--volatile",
        "--no-hidden",
        "--expiration-date",
        "1900000000",
        "--usage-expiration-time",
        "60",
    )
    assert (code, err) == (0, "")
    created = json.loads(out)
    token = created["token"]
    assert served.tokens[token] == {
        "token": token,
        "nonce": created["nonce"],
        "volatile": True,
        "hidden": False,
        "expiration_date": 1900000000,
        "usage_expiration_time": 60,
        "session_limit": 3,
        "grants": {"read": {"all": True}},
    }
    code, out, _ = run(capsys, "authtokens", "get", token)
    assert (code, json.loads(out)) == (0, served.tokens[token])
    code, out, _ = run(
        capsys, "authtokens", "update", token, "--no-volatile", "--session-limit", "9"
    )
    assert code == 0
    assert json.loads(out)["session_limit"] == 9
    assert served.tokens[token]["volatile"] is False
    code, out, _ = run(capsys, "authtokens", "delete", token)
    assert (code, json.loads(out)) == (0, {"deleted": token})
    assert served.tokens == {}


def test_api_error_is_one_line_and_exit_1(
    served: FakeZiggeo, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "authtokens", "get", "missing-token")
    assert (code, out) == (1, "")
    line = one_error_line(err)
    assert line.startswith("ziggeo-async: error: GET /v1/authtokens/")
    assert "404" in line


def test_debug_shows_the_traceback(served: FakeZiggeo, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--debug", "authtokens", "delete", "missing-token")
    assert code == 1
    assert "Traceback" in err
    assert "NotFoundError" in err
    assert "ziggeo-async: DELETE /v1/authtokens/…oken -> 404 (attempt 1, " in err


def test_debug_leaves_the_sdks_logger_as_it_found_it(
    served: FakeZiggeo, capsys: pytest.CaptureFixture[str]
) -> None:
    # main() is also called in process (by tests, by programs that embed the command):
    # after it, the SDK's logger must log at the level it had, with the handlers it had.
    sdk_log = logging.getLogger("ziggeo_async")
    before = (sdk_log.level, list(sdk_log.handlers))
    run(capsys, "--debug", "authtokens", "delete", "missing-token")
    assert (sdk_log.level, list(sdk_log.handlers)) == before


def test_half_the_credentials_is_bad_usage(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ZIGGEO_APP_TOKEN", "app")
    code, _, err = run(capsys, "authtokens", "get", "x")
    assert code == 2
    assert "ZIGGEO_PRIVATE_KEY" in one_error_line(err)


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        ([], "COMMAND"),
        (["authtokens"], "OPERATION"),
        (["authtokens", "create", "--session-limit", "x"], "--session-limit"),
        (["authtokens", "create", "--session-limit", "-1"], "--session-limit"),
        (["authtokens", "create", "--grants", "{nope"], "--grants"),
        (["authtokens", "create", "--grants", "[]"], "--grants"),
        (["authtokens", "create", "--fake", "--grants", '{"write": {}}'], "grants.write"),
        (["authtokens", "create", "--colour", "red"], "--colour"),
        (["authtokens", "get", "--fake", "."], "token"),
        (["authtokens", "update", "--fake", "abc"], "at least one argument"),
        (["auth", "decode", "--fake", "not-a-token"], "token"),
        (["batch", "create", "missing.jsonl", "--out", "r.jsonl"], "no such file"),
        (["batch", "create", "in.jsonl", "--out", "r.jsonl", "--concurrency", "0"], "concurrency"),
        (
            ["batch", "delete", "in.jsonl", "--out", "r.jsonl", "--max-per-second", "0"],
            "per-second",
        ),
        (
            ["batch", "delete", "in.jsonl", "--out", "r.jsonl", "--max-per-second", "x"],
            "per-second",
        ),
        (["fake", "serve", "--host", "0.0.0.0"], "loopback"),
        (["fake", "serve", "--port", "70000"], "--port"),
        (["fake", "serve", "--latency", "-1"], "--latency"),
        (["fake", "serve", "--latency", "soon"], "--latency"),
        (["fake", "serve", "--latency", "inf"], "--latency"),
        # More digits than int() reads: the same one-line reason as any other bad count.
        (
            ["authtokens", "create", "--session-limit", "9" * 5000],
            "--session-limit: expected a whole number >= 0",
        ),
        (
            ["batch", "delete", "in.jsonl", "--out", "r.jsonl", "--max-per-second", "nan"],
            "per-second",
        ),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(
    argv: list[str], names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert names in one_error_line(err)


def test_out_must_not_be_the_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("{}\n")
    code, _, err = run(capsys, "batch", "create", str(source), "--out", str(source))
    assert code == 2
    assert "--out" in one_error_line(err)


def test_fake_serve_refuses_bad_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ZIGGEO_APP_TOKEN", "app:with-colon")
    code, _, err = run(capsys, "fake", "serve")
    assert code == 2
    assert "app_token" in one_error_line(err)


def test_fake_serve_without_uvicorn_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # what a missing package imports as
    code, out, err = run(capsys, "fake", "serve", "--port", "0")
    assert (code, out) == (2, "")
    assert "pip install 'ziggeo-async[serve]'" in one_error_line(err)


def test_a_stop_cuts_requests_still_running_after_the_grace_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeZiggeo()
    fake.latency = 3600
    arrived = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            arrived.set()
        await fake.asgi_app(scope, receive, send)

    outcomes: list[int | str] = []  # a status, or the error that ended the request

    def wait_for_an_answer(url: str) -> None:
        try:
            auth = (fake.app_token, fake.private_key)
            outcomes.append(httpx.get(f"{url}/v1/authtokens/x", auth=auth).status_code)
        except httpx.HTTPError as error:
            outcomes.append(type(error).__name__)

    with caplog.at_level(logging.INFO), serve_on_uvicorn(app) as url:
        waiter = threading.Thread(target=wait_for_an_answer, args=(url,))
        waiter.start()
        assert arrived.wait(30)
    waiter.join(30)
    assert not waiter.is_alive()
    # Cut by the server (uvicorn answers 500 for a request it cancelled, or closes).
    assert len(outcomes) == 1
    assert outcomes[0] not in (200, 404)
    uvicorn_records = [r for r in caplog.records if r.name.startswith("uvicorn")]
    assert any("Cancel 1 running task" in r.getMessage() for r in uvicorn_records)
    assert [r for r in uvicorn_records if r.exc_info] == []


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "authtokens" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("ziggeo-async ")


def test_auth_generate_and_decode(served: FakeZiggeo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "auth", "generate", "--session-limit", "2", "--grants", '{"create": {"all": true}}'
    )
    assert code == 0
    token = json.loads(out)["token"]
    payload = served.verify_client_token(token)
    assert payload["grants"] == {"create": {"all": True}}
    code, out, _ = run(capsys, "auth", "decode", token)
    assert (code, json.loads(out)) == (0, payload)


def test_generate_without_encryption_key_is_bad_usage(
    served: FakeZiggeo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ZIGGEO_ENCRYPTION_KEY")
    code, _, err = run(capsys, "auth", "generate", "--session-limit", "1")
    assert code == 2
    assert "not set: ZIGGEO_ENCRYPTION_KEY" in one_error_line(err)


def test_demo_runs_a_full_round(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "demo", "--batch-size", "40")
    assert (code, err) == (0, "")
    steps = [line.split("->")[0].strip() for line in out.splitlines() if "->" in line]
    assert steps == ["create", "get", "update", "generate", "decode", "batch", "batch", "delete"]
    assert "create_many made 40 tokens (0 failed)" in out
    assert "0 tokens left" in out


def test_demo_draws_progress_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _, err = run(capsys, "demo", "--batch-size", "20")
    assert code == 0
    assert "create_many [" in err
    assert err.rstrip().endswith("20/20 100%" + err.rstrip().split("20/20 100%")[-1])


def test_unexpected_errors_are_one_line_without_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def broken(_args: Any) -> int:
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setattr(_main, "_authtokens", broken)
    code, _, err = run(capsys, "authtokens", "get", "x")
    assert code == 1
    assert (
        one_error_line(err) == "ziggeo-async: error: unexpected RuntimeError: a bug over two lines"
    )


def test_interrupt_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def interrupted(_args: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(_main, "_authtokens", interrupted)
    code, _, err = run(capsys, "authtokens", "get", "x")
    assert (code, err) == (130, "ziggeo-async: interrupted\n")


def test_fake_serve_in_process_stops_on_sigterm(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ZIGGEO_APP_TOKEN", "served-app")
    monkeypatch.setenv("ZIGGEO_PRIVATE_KEY", "served-key")
    answers: list[int] = []

    class Announced(io.StringIO):
        def write(self, text: str) -> int:
            if text.startswith("http://"):
                url = text.strip()

                def use_then_stop() -> None:
                    auth = ("served-app", "served-key")
                    answers.append(httpx.get(f"{url}/_fake/tokens", auth=auth).status_code)
                    answers.append(httpx.get(f"{url}/v1/authtokens/x", auth=auth).status_code)
                    os.kill(os.getpid(), signal.SIGTERM)

                threading.Thread(target=use_then_stop).start()
            return super().write(text)

    monkeypatch.setattr(sys, "stdout", Announced())
    assert main(["fake", "serve", "--inspect", "--port", "0", "--latency", "0"]) == 0
    assert answers == [200, 404]
    assert "SIGINT or SIGTERM" in capsys.readouterr().err


def test_python_dash_m_entry_point(subprocess_env: dict[str, str]) -> None:
    # A subprocess: under pytest the SDK's modules are loaded by pytest's assertion
    # rewriter (the package registers a pytest plugin), which runpy cannot run.
    result = subprocess.run(
        [sys.executable, "-m", "ziggeo_async", "--version"],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("ziggeo-async ")


# -- as a subprocess -----------------------------------------------------------------


def cli(
    base: dict[str, str], *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "ziggeo_async", *argv],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr
    return result


def test_subprocess_each_command(
    served_fake: tuple[FakeZiggeo, str], subprocess_env: dict[str, str]
) -> None:
    fake, url = served_fake
    env = {
        "ZIGGEO_APP_TOKEN": fake.app_token,
        "ZIGGEO_PRIVATE_KEY": fake.private_key,
        "ZIGGEO_ENCRYPTION_KEY": fake.encryption_key,
        "ZIGGEO_BASE_URL": url,
    }
    created = cli(
        subprocess_env, "authtokens", "create", "--session-limit", "3", "--hidden", env=env
    )
    assert (created.returncode, created.stderr) == (0, "")
    token = json.loads(created.stdout)["token"]
    assert fake.tokens[token]["hidden"] is True
    got = cli(subprocess_env, "authtokens", "get", token, env=env)
    assert json.loads(got.stdout)["session_limit"] == 3
    updated = cli(subprocess_env, "authtokens", "update", token, "--session-limit", "4", env=env)
    assert json.loads(updated.stdout)["session_limit"] == 4
    generated = cli(subprocess_env, "auth", "generate", "--session-limit", "1", env=env)
    client_token = json.loads(generated.stdout)["token"]
    assert fake.verify_client_token(client_token)["session_limit"] == 1
    decoded = cli(subprocess_env, "auth", "decode", client_token, env=env)
    assert json.loads(decoded.stdout)["application_token"] == fake.app_token
    deleted = cli(subprocess_env, "authtokens", "delete", token, env=env)
    assert json.loads(deleted.stdout) == {"deleted": token}
    missing = cli(subprocess_env, "authtokens", "delete", token, env=env)
    assert missing.returncode == 1
    assert one_error_line(missing.stderr).startswith("ziggeo-async: error: DELETE")
    assert fake.tokens == {}


def test_subprocess_bad_input_is_one_line_and_exit_2(subprocess_env: dict[str, str]) -> None:
    result = cli(subprocess_env, "authtokens", "create", "--session-limit", "lots")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "--session-limit" in result.stderr


def test_subprocess_demo(subprocess_env: dict[str, str]) -> None:
    result = cli(subprocess_env, "demo", "--batch-size", "30")
    assert result.returncode == 0, result.stderr
    assert "create_many made 30 tokens" in result.stdout
    assert result.stderr == ""  # no terminal, so no progress bar


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_fake_serve_serves_and_stops_cleanly(
    signum: signal.Signals, subprocess_env: dict[str, str]
) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "ziggeo_async", "fake", "serve", "--port", "0"],
        env=subprocess_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            fake = FakeZiggeo()
            with httpx.Client(base_url=url, auth=(fake.app_token, fake.private_key)) as client:
                created = client.post(
                    "/v1/authtokens/",
                    data={"session_limit": "2"},
                )
                assert created.status_code == 200
                token = created.json()["token"]
                assert client.get(f"/v1/authtokens/{token}").json()["session_limit"] == 2
                # Not started with --inspect: no inspection route.
                assert client.get("/_fake/tokens").status_code == 404
            server.send_signal(signum)
            _, err = server.communicate(timeout=20)
            assert server.returncode == 0
            assert "Traceback" not in err
        finally:
            if server.poll() is None:
                server.kill()


def test_examples_tour_runs(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(Path(__file__).parents[2] / "examples" / "tour.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "delete  -> gone: 404" in out
    assert out.rstrip().endswith("FakeZiggeo saw 5 requests and holds 0 tokens.")


# -- credentials: no silent fake, least privilege (issue 14, items 1 and 2) -------------

NEEDS_API = ("ZIGGEO_APP_TOKEN", "ZIGGEO_PRIVATE_KEY")


@pytest.mark.parametrize(
    ("argv", "missing"),
    [
        (["authtokens", "create", "--session-limit", "1"], NEEDS_API),
        (["authtokens", "get", "abc"], NEEDS_API),
        (["authtokens", "update", "abc", "--session-limit", "2"], NEEDS_API),
        (["authtokens", "delete", "abc"], NEEDS_API),
        (
            ["auth", "generate", "--session-limit", "1"],
            ("ZIGGEO_APP_TOKEN", "ZIGGEO_ENCRYPTION_KEY"),
        ),
        (["auth", "decode", "0123456789abcdef" + "00" * 16], ("ZIGGEO_ENCRYPTION_KEY",)),
        (["batch", "create", "IN", "--out", "OUT"], NEEDS_API),
        (["batch", "delete", "IN", "--out", "OUT"], NEEDS_API),
    ],
)
def test_without_credentials_every_command_is_exit_2_naming_what_is_missing(
    argv: list[str],
    missing: tuple[str, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"session_limit": 1}\n', "utf-8")
    argv = [{"IN": str(source), "OUT": str(tmp_path / "out.jsonl")}.get(arg, arg) for arg in argv]
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    line = one_error_line(err)
    for name in missing:
        assert name in line
    assert "--fake" in line
    assert not (tmp_path / "out.jsonl").exists()


def test_a_private_key_alone_names_the_app_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ZIGGEO_PRIVATE_KEY", "a-private-key")
    code, _, err = run(capsys, "authtokens", "delete", "abc")
    assert code == 2
    line = one_error_line(err)
    assert "ZIGGEO_APP_TOKEN" in line
    assert "not set: ZIGGEO_APP_TOKEN" in line


@pytest.mark.parametrize("opt_in", ["flag", "environment"])
def test_the_embedded_fake_is_opt_in_and_announced(
    opt_in: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["authtokens", "create", "--session-limit", "1"]
    if opt_in == "flag":
        argv.append("--fake")
    else:
        monkeypatch.setenv("ZIGGEO_FAKE", "1")
    code, out, err = run(capsys, *argv)
    assert code == 0
    assert json.loads(out)["session_limit"] == 1
    assert err.count("\n") == 1
    assert "embedded FakeZiggeo" in err


def test_an_unreadable_ziggeo_fake_is_bad_usage(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ZIGGEO_FAKE", "maybe")
    code, _, err = run(capsys, "authtokens", "get", "abc")
    assert code == 2
    assert "ZIGGEO_FAKE" in one_error_line(err)


def test_generate_and_decode_need_no_private_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ZIGGEO_APP_TOKEN", "my-app")
    monkeypatch.setenv("ZIGGEO_ENCRYPTION_KEY", "my-encryption-key-0123")
    code, out, err = run(capsys, "auth", "generate", "--session-limit", "4")
    assert (code, err) == (0, "")
    token = json.loads(out)["token"]
    payload = ClientTokenCipher("my-app", "my-encryption-key-0123").decode(token)
    assert payload["application_token"] == "my-app"
    assert payload["session_limit"] == 4
    code, out, err = run(capsys, "auth", "decode", token)
    assert (code, err) == (0, "")
    assert json.loads(out) == payload
    # decode checks that the token names this application: it needs the app token.
    monkeypatch.delenv("ZIGGEO_APP_TOKEN")
    code, _, err = run(capsys, "auth", "decode", token)
    assert code == 2
    assert "ZIGGEO_APP_TOKEN" in one_error_line(err)


def test_a_given_key_is_never_replaced_by_the_fakes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ZIGGEO_ENCRYPTION_KEY", "my-encryption-key-0123")
    code, _, err = run(capsys, "auth", "generate", "--session-limit", "1")
    assert code == 2  # the key alone is not enough, and the fake's app token is not used
    assert "ZIGGEO_APP_TOKEN" in one_error_line(err)
    code, out, err = run(capsys, "auth", "generate", "--session-limit", "1", "--fake")
    assert code == 0
    assert "embedded FakeZiggeo" in err
    token = json.loads(out)["token"]
    # Made with the user's key (and the fake's app token, since none was given).
    fake_app = FakeZiggeo().app_token
    payload = ClientTokenCipher(fake_app, "my-encryption-key-0123").decode(token)
    assert payload["application_token"] == fake_app
    with pytest.raises(ValueError, match="not a client auth token"):
        ClientTokenCipher(fake_app, FakeZiggeo().encryption_key).decode(token)


def test_subprocess_without_credentials_refuses_and_fake_opts_in(
    subprocess_env: dict[str, str],
) -> None:
    refused = cli(subprocess_env, "authtokens", "delete", "some-token")
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr.count("\n") == 1
    assert "ZIGGEO_APP_TOKEN" in refused.stderr
    assert "ZIGGEO_PRIVATE_KEY" in refused.stderr
    faked = cli(
        subprocess_env, "authtokens", "create", "--session-limit", "2", env={"ZIGGEO_FAKE": "1"}
    )
    assert faked.returncode == 0, faked.stderr
    assert json.loads(faked.stdout)["session_limit"] == 2
    assert "embedded FakeZiggeo" in faked.stderr
    generated = cli(
        subprocess_env,
        "auth",
        "generate",
        "--session-limit",
        "1",
        env={"ZIGGEO_APP_TOKEN": "my-app", "ZIGGEO_ENCRYPTION_KEY": "my-encryption-key-0123"},
    )
    assert (generated.returncode, generated.stderr) == (0, "")
    token = json.loads(generated.stdout)["token"]
    assert ClientTokenCipher("my-app", "my-encryption-key-0123").decode(token)["session_limit"] == 1


# -- help, --grants (issue 14, item 7) ---------------------------------------------------


def test_demo_help_has_a_description(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--help"]) == 0
    text = capsys.readouterr().out
    assert "embedded FakeZiggeo" in text.split("options:")[0]


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["batch", "create", "--help"], ["(default: 32)", "(default: 5)"]),
        (["batch", "delete", "--help"], ["(default: 32)"]),
        (["fake", "serve", "--help"], ["(default: 127.0.0.1)", "(default: 0)", "(default: 0.0)"]),
    ],
)
def test_help_shows_defaults(
    argv: list[str], shown: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 0
    text = " ".join(capsys.readouterr().out.split())
    for default in shown:
        assert default in text
    assert "(default: None)" not in text
    assert "(default: False)" not in text


@pytest.mark.parametrize(
    "grants",
    [
        '{"read": "all"}',
        '"{\\"read\\": \\"all\\"}"',
        '{"read": {"all": true}}',
    ],
    ids=["shorthand", "json-string", "object"],
)
def test_grants_take_what_legacy_takes(
    grants: str, served: FakeZiggeo, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "authtokens", "create", "--grants", grants)
    assert (code, err) == (0, "")
    assert served.tokens[json.loads(out)["token"]]["grants"] == {"read": {"all": True}}
    code, out, _ = run(capsys, "auth", "generate", "--grants", grants)
    assert code == 0
    assert served.verify_client_token(json.loads(out)["token"])["grants"] == {"read": {"all": True}}


@pytest.mark.parametrize("grants", ['"not json"', '"[1]"', "[]", "3"])
def test_grants_that_are_no_object_are_bad_usage(
    grants: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "auth", "generate", "--fake", "--grants", grants)
    assert code == 2
    assert "--grants" in one_error_line(err) or "grants" in one_error_line(err)


@pytest.mark.filterwarnings("default::ziggeo_async.WeakEncryptionKeyWarning")
def test_a_weak_encryption_key_is_one_warning_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ZIGGEO_APP_TOKEN", "my-app")
    monkeypatch.setenv("ZIGGEO_ENCRYPTION_KEY", "short")
    code, out, err = run(capsys, "auth", "generate", "--session-limit", "1")
    assert code == 0
    assert json.loads(out)["token"]
    assert err.startswith("ziggeo-async: warning: encryption_key has 5 characters")
    assert err.count("\n") == 1


def test_an_encryption_key_without_utf8_form_is_bad_usage(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ZIGGEO_APP_TOKEN", "my-app")
    monkeypatch.setenv("ZIGGEO_ENCRYPTION_KEY", "secret-key-0123456789\udcff")
    code, _, err = run(capsys, "auth", "generate", "--session-limit", "1")
    assert code == 2
    line = one_error_line(err)
    assert "encryption_key" in line
    assert "secret-key" not in line
