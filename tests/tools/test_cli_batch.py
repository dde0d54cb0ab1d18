"""``ziggeo-async batch``: results as they complete, resume without loss or repeats."""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import io
import json
import os
import pty
import resource
import signal
import struct
import subprocess
import sys
import termios
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest

from ziggeo_async import AsyncZiggeo
from ziggeo_async.cli import _journal, _main, main
from ziggeo_async.cli._batch import BatchJob, parse_item, read_journal
from ziggeo_async.cli._progress import Progress
from ziggeo_async.testing import FakeZiggeo


@pytest.fixture
def served(served_fake: tuple[FakeZiggeo, str], monkeypatch: pytest.MonkeyPatch) -> FakeZiggeo:
    fake, url = served_fake
    monkeypatch.setenv("ZIGGEO_APP_TOKEN", fake.app_token)
    monkeypatch.setenv("ZIGGEO_PRIVATE_KEY", fake.private_key)
    monkeypatch.setenv("ZIGGEO_BASE_URL", url)
    return fake


def journal(path: Path) -> list[dict[str, Any]]:
    """The journal's per-line entries (not the job header, the run entries or a torn line)."""
    entries = []
    for text in path.read_text("utf-8").splitlines():
        with contextlib.suppress(ValueError):
            entries.append(json.loads(text))
    return [entry for entry in entries if "line" in entry]


def states(path: Path) -> dict[int, str]:
    return {number: record.state for number, record in read_journal(path).lines.items()}


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), "utf-8")
    return path


def creates(count: int) -> list[str]:
    return [json.dumps({"session_limit": number}) for number in range(1, count + 1)]


def batch(kind: str, source: Path, out: Path, *extra: str) -> int:
    return main(["batch", kind, str(source), "--out", str(out), *extra])


def session_limits(fake: FakeZiggeo) -> collections.Counter[int]:
    return collections.Counter(stored["session_limit"] for stored in fake.tokens.values())


def test_create_writes_started_then_result_per_line(
    served: FakeZiggeo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "in.jsonl", *creates(20))
    out = tmp_path / "out.jsonl"
    assert batch("create", source, out, "--concurrency", "4") == 0
    entries = journal(out)
    for number in range(1, 21):
        events = [entry for entry in entries if entry["line"] == number]
        assert [entry["event"] for entry in events] == ["started", "result"]
        assert events[1]["ok"] is True
        assert events[1]["token"]["session_limit"] == number
    assert session_limits(served) == collections.Counter(range(1, 21))
    assert capsys.readouterr().err == (
        f"ziggeo-async: batch create: 20 ok, 0 failed, 0 outcome unknown, 0 already done -> {out}\n"
    )


def test_rerun_sends_nothing_already_done(
    served: FakeZiggeo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "in.jsonl", *creates(5))
    out = tmp_path / "out.jsonl"
    assert batch("create", source, out) == 0
    sent = len(served.requests)
    assert batch("create", source, out) == 0
    assert len(served.requests) == sent
    assert "0 ok, 0 failed, 0 outcome unknown, 5 already done" in capsys.readouterr().err


def test_started_without_result_is_unknown_and_not_sent_again(
    served: FakeZiggeo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = creates(3)
    source = write_lines(tmp_path / "in.jsonl", *lines)
    out = tmp_path / "out.jsonl"
    assert batch("create", write_lines(tmp_path / "empty.jsonl"), out, "--quiet") == 0
    header_and_run = out.read_text("utf-8")
    with out.open("a", encoding="utf-8") as killed:  # as a run killed part-way leaves it
        for entry in (
            {"line": 1, "event": "started", "input_sha256": digest(lines[0])},
            {"line": 1, "event": "result", "ok": True, "input_sha256": digest(lines[0])},
            {"line": 2, "event": "started", "input_sha256": digest(lines[1])},
        ):
            killed.write(json.dumps(entry) + "\n")
        killed.write('{"line": 3, "ev')  # a write cut short by a kill
    capsys.readouterr()
    assert batch("create", source, out) == 1
    assert session_limits(served) == collections.Counter([3])
    err = capsys.readouterr().err
    assert "line 2: outcome unknown" in err
    assert "1 ok, 0 failed, 1 outcome unknown, 1 already done" in err
    text = out.read_text("utf-8")
    assert '{"line": 3, "ev\n' in text  # the torn line was ended, not glued to the next entry
    assert [entry["event"] for entry in journal(out)][3:] == ["unknown", "started", "result"]

    # Reported again, not journaled twice, and still not sent.
    assert batch("create", source, out) == 1
    assert [entry["event"] for entry in journal(out)][3:] == ["unknown", "started", "result"]
    assert "line 2: outcome unknown" in capsys.readouterr().err
    assert session_limits(served) == collections.Counter([3])
    assert out.read_text("utf-8").startswith(header_and_run)

    # --retry-unknown sends it.
    assert batch("create", source, out, "--retry-unknown", "--quiet") == 0
    assert session_limits(served) == collections.Counter([2, 3])
    assert capsys.readouterr().err == (
        f"ziggeo-async: batch create: 1 ok, 0 failed, 0 outcome unknown, 2 already done -> {out}\n"
    )
    assert states(out) == {1: "done", 2: "done", 3: "done"}


def test_create_broken_off_after_sending_is_unknown(
    served: FakeZiggeo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "in.jsonl", *creates(1))
    out = tmp_path / "out.jsonl"
    served.drop_next(when="after")
    assert batch("create", source, out) == 1
    assert [entry["event"] for entry in journal(out)] == ["started", "unknown"]
    assert journal(out)[1]["error"]["type"] == "APIConnectionError"
    assert "line 1: outcome unknown: POST" in capsys.readouterr().err
    assert batch("create", source, out) == 1
    assert len(served.tokens) == 1  # not sent again
    assert batch("create", source, out, "--retry-unknown") == 0
    assert session_limits(served) == collections.Counter({1: 2})  # the duplicate was asked for


def test_bad_lines_are_reported_and_skipped(
    served: FakeZiggeo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        '{"session_limit": 1}',
        "not json",
        "",
        "[1, 2]",
        '{"session_limit": "three"}',
        '{"session_limit": 6}',
    )
    out = tmp_path / "out.jsonl"
    assert batch("create", source, out) == 1
    err = capsys.readouterr().err
    assert "line 2: not valid JSON; skipped" in err
    assert "line 4: expected a JSON object of create's arguments; skipped" in err
    assert "line 5: session_limit: expected an int" in err
    assert "2 ok, 3 failed" in err
    results = {entry["line"]: entry for entry in journal(out) if entry["event"] == "result"}
    assert sorted(results) == [1, 2, 4, 5, 6]
    assert results[2]["error"]["type"] == "InputLineError"
    assert results[5]["error"]["type"] == "ValidationError"
    assert session_limits(served) == collections.Counter([1, 6])


def test_a_line_naming_no_argument_of_create_is_refused_by_that_name(
    served: FakeZiggeo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Spread into create(**line), "timeout" and "deadline" set the call's own and
    # "self" was a TypeError ("items[0]: this item could not be sent").
    source = write_lines(
        tmp_path / "in.jsonl",
        '{"session_limit": 1, "timeout": 0.000001}',
        '{"session_limit": 2, "deadline": 5}',
        '{"session_limit": 3, "self": 1}',
    )
    out = tmp_path / "out.jsonl"
    assert batch("create", source, out) == 1
    err = capsys.readouterr().err
    for number, name in enumerate(["timeout", "deadline", "self"], start=1):
        assert f"line {number}: {name}: unknown argument" in err
    assert served.tokens == {}


def test_delete_takes_objects_strings_and_bare_tokens(
    served: FakeZiggeo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    created = tmp_path / "created.jsonl"
    assert batch("create", write_lines(tmp_path / "in.jsonl", *creates(3)), created) == 0
    tokens = [e["token"]["token"] for e in journal(created) if e["event"] == "result"]
    source = write_lines(
        tmp_path / "delete.jsonl",
        json.dumps({"token": tokens[0]}),
        json.dumps(tokens[1]),
        tokens[2],
        "gone-already",
        '{"id": "x"}',
    )
    out = tmp_path / "out.jsonl"
    assert batch("delete", source, out, "--max-per-second", "1000") == 1
    assert served.tokens == {}
    results = {e["line"]: e for e in journal(out) if e["event"] == "result"}
    assert [results[n]["deleted"] for n in (1, 2, 3)] == tokens
    assert results[4]["error"]["status_code"] == 404
    assert results[5]["error"]["type"] == "InputLineError"
    assert "3 ok, 2 failed" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("create", "{}", {}),
        ("delete", '  "abc"  ', "abc"),
        ("delete", "abc\n", "abc"),
        ("delete", '{"token": "abc"}', "abc"),
    ],
)
def test_parse_item(kind: Any, text: str, expected: object) -> None:
    assert parse_item(kind, text) == expected


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("create", '"abc"', "JSON object"),
        ("delete", '{"token": 1}', "non-empty string"),
        ("delete", '""', "non-empty string"),
        ("delete", '{"token": "a", "b": 1}', "token"),
        ("delete", '{"token"', "not valid JSON"),
    ],
)
def test_parse_item_refuses(kind: Any, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_item(kind, text)


def test_read_journal_skips_what_it_cannot_read(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "j.jsonl",
        '{"event": "job", "operation": "create"}',
        '{"line": 1, "event": "started", "input_sha256": "a"}',
        '{"line": 1, "event": "result", "ok": true}',
        '{"line": 1, "event": "started"}',
        '{"line": "2", "event": "started"}',
        '{"line": 3, "event": "other"}',
        '{"line": 4}',
        '{"line": 6, "event": "result"}',
        "[]",
        '{"line": 5, "event": "unknown", "input_sha256": "b"}',
        '{"line": 7, "event": "result", "ok": false}',
        '{"line": 7, "ev',
    )
    contents = read_journal(path)
    assert contents.header == {"event": "job", "operation": "create"}
    assert {number: record.state for number, record in contents.lines.items()} == {
        1: "done",
        5: "unknown",
        7: "failed",
    }
    assert contents.lines[5].input_sha256 == "b"
    absent = read_journal(tmp_path / "absent.jsonl")
    assert (absent.empty, absent.header, absent.lines) == (True, None, {})


def test_progress_on_a_terminal_and_quiet(
    served: FakeZiggeo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    source = write_lines(tmp_path / "in.jsonl", *creates(10), "oops")
    assert batch("create", source, tmp_path / "a.jsonl") == 1
    err = capsys.readouterr().err
    assert "\rcreate [##############################] 11/11 100%" in err
    assert "ETA 0:00:00\x1b[K\n" in err
    assert "\r\x1b[Kziggeo-async: line 11: not valid JSON; skipped\n" in err
    out = tmp_path / "b.jsonl"
    assert batch("create", source, out, "--quiet") == 1
    # Quiet hides the bar, not what went wrong, nor the summary.
    assert capsys.readouterr().err == (
        "ziggeo-async: line 11: not valid JSON; skipped\n"
        f"ziggeo-async: batch create: 10 ok, 1 failed, 0 outcome unknown, 0 already done -> {out}\n"
    )


def test_progress_line_rate_and_eta() -> None:
    now = [100.0]
    stream = io.StringIO()
    progress = Progress(
        10, stream, enabled=True, label="x ", clock=lambda: now[0], columns=lambda: 200
    )
    assert progress.line() == "x [..............................] 0/10   0% 0/s ETA ?:??:??"
    now[0] = 102.0
    progress.advance(4)
    assert progress.line() == "x [############..................] 4/10  40% 2/s ETA 0:00:03"
    now[0] = 102.05
    progress.advance()  # within a tenth of a second of the last draw: not redrawn
    assert stream.getvalue().count("\r") == 1
    progress.finish()
    assert stream.getvalue().endswith("5/10  50% 2/s ETA 0:00:02\x1b[K\n")
    silent = io.StringIO()
    quiet = Progress(10, silent, enabled=False)
    quiet.advance()
    quiet.finish()
    assert silent.getvalue() == ""


# -- killed with SIGKILL part-way, then resumed, against `fake serve` ------------------


def test_killed_batch_resumes_with_nothing_lost_and_nothing_twice(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    lines = 240
    source = write_lines(tmp_path / "in.jsonl", *creates(lines))
    out = tmp_path / "out.jsonl"
    base = subprocess_env
    fake = FakeZiggeo()
    with subprocess.Popen(
        [sys.executable, "-m", "ziggeo_async", "fake", "serve", "--inspect", "--latency", "0.04"],
        env=base,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip()
            env = {
                **base,
                "ZIGGEO_APP_TOKEN": fake.app_token,
                "ZIGGEO_PRIVATE_KEY": fake.private_key,
                "ZIGGEO_BASE_URL": url,
            }
            command = [
                sys.executable, "-m", "ziggeo_async", "batch", "create", str(source),
                "--out", str(out), "--concurrency", "8",
            ]  # fmt: skip
            with subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL) as first:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and first.poll() is None:
                    if out.exists() and out.read_text("utf-8").count('"result"') >= lines // 4:
                        break
                    time.sleep(0.01)
                first.send_signal(signal.SIGKILL)
            assert first.returncode == -signal.SIGKILL
            after_kill = states(out)
            done_before = [line for line, state in after_kill.items() if state == "done"]
            in_flight = [line for line, state in after_kill.items() if state == "started"]
            assert lines // 4 <= len(done_before) < lines, "the kill must land mid-batch"
            assert in_flight, "some items must be in flight when the kill lands"

            second = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=60, check=False
            )
            assert second.returncode == 1  # the in-flight lines are outcome unknown
            for line in in_flight:
                assert f"line {line}: outcome unknown" in second.stderr

            with httpx.Client(base_url=url, auth=(fake.app_token, fake.private_key)) as client:
                stored = client.get("/_fake/tokens").json()
                received = client.get("/_fake/requests").json()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)

    final = states(out)
    unknown = {line for line, state in final.items() if state == "unknown"}
    assert unknown == set(in_flight)
    assert all(final[line] == "done" for line in range(1, lines + 1) if line not in unknown)
    per_line = collections.Counter(token["session_limit"] for token in stored.values())
    assert max(per_line.values()) == 1, "no input line may have two tokens"
    for line in range(1, lines + 1):
        assert per_line[line] == 1 or line in unknown
    # Every create the server received is one input line, sent once.
    creates_sent = collections.Counter(
        int(entry["form"]["session_limit"]) for entry in received if entry["method"] == "POST"
    )
    assert max(creates_sent.values()) == 1


# -- issue 14: a journal you can trust ---------------------------------------------------


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> FakeZiggeo:
    """One FakeZiggeo behind every `--fake` run of the test, so it outlives a run."""
    fake = FakeZiggeo()
    monkeypatch.setattr(_main, "FakeZiggeo", lambda **_credentials: fake)
    for name in ("ZIGGEO_APP_TOKEN", "ZIGGEO_PRIVATE_KEY", "ZIGGEO_ENCRYPTION_KEY"):
        monkeypatch.delenv(name, raising=False)
    return fake


def test_the_journal_names_its_job_and_each_lines_digest(
    served: FakeZiggeo, served_fake: tuple[FakeZiggeo, str], tmp_path: Path
) -> None:
    lines = creates(3)
    source = write_lines(tmp_path / "in.jsonl", *lines)
    out = tmp_path / "out.jsonl"
    assert batch("create", source, out, "--quiet") == 0
    header = json.loads(out.read_text("utf-8").splitlines()[0])
    assert header["event"] == "job"
    assert header["operation"] == "create"
    assert header["host"] == served_fake[1]
    assert header["app_token"] == served.app_token
    assert len(header["job_sha256"]) == 64
    assert "private" not in json.dumps(header).lower()
    for entry in journal(out):
        assert entry["input_sha256"] == digest(lines[entry["line"] - 1])


def test_a_resume_of_another_job_is_refused(
    served: FakeZiggeo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = write_lines(tmp_path / "in.jsonl", *creates(2))
    out = tmp_path / "out.jsonl"
    assert batch("create", source, out, "--quiet") == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert batch("delete", source, out) == 2
    assert "batch create" in one_line(capsys.readouterr().err)
    monkeypatch.setenv("ZIGGEO_APP_TOKEN", "another-app")
    assert batch("create", source, out) == 2
    assert "another-app" in one_line(capsys.readouterr().err)
    monkeypatch.setenv("ZIGGEO_APP_TOKEN", served.app_token)
    monkeypatch.setenv("ZIGGEO_BASE_URL", "https://elsewhere.invalid")
    assert batch("create", source, out) == 2
    assert "https://elsewhere.invalid" in one_line(capsys.readouterr().err)
    assert out.read_bytes() == before
    assert len(served.tokens) == 2


def test_a_journal_without_a_job_header_is_refused(
    served: FakeZiggeo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "in.jsonl", *creates(1))
    out = write_lines(tmp_path / "out.jsonl", '{"line": 1, "event": "started"}')
    assert batch("create", source, out) == 2
    assert "job" in one_line(capsys.readouterr().err)
    assert served.requests == ()


def test_a_changed_line_is_refused_but_a_failed_one_may_change(
    served: FakeZiggeo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [*creates(3), "not json", json.dumps({"session_limit": 5})]
    source = write_lines(tmp_path / "in.jsonl", *lines)
    out = tmp_path / "out.jsonl"
    assert batch("create", source, out, "--quiet") == 1
    sent = len(served.requests)
    capsys.readouterr()
    write_lines(source, *lines[:1], '{"session_limit": 99}', *lines[1:])  # inserted as line 2
    assert batch("create", source, out) == 2
    line = one_line(capsys.readouterr().err)
    assert "line 2" in line
    assert "differs" in line
    write_lines(source, *lines[:4])  # line 5 removed
    assert batch("create", source, out) == 2
    assert "line 5" in one_line(capsys.readouterr().err)
    assert len(served.requests) == sent
    write_lines(source, *lines[:3], '{"session_limit": 4}', lines[4])  # the bad line, fixed
    assert batch("create", source, out) == 0
    assert "1 ok, 0 failed, 0 outcome unknown, 4 already done" in capsys.readouterr().err
    assert session_limits(served) == collections.Counter(range(1, 6))


def test_failures_that_prove_nothing_was_created_run_again(
    embedded: FakeZiggeo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "in.jsonl", *creates(6))
    out = tmp_path / "out.jsonl"
    embedded.fail_next(1, status=400)  # line 1: refused, so nothing was created
    embedded.drop_next(3, when="before")  # line 2: no connection, on every attempt
    embedded.fail_next(1, status=500)  # line 3: may have been created
    embedded.drop_next(1, when="after")  # line 4: created, answer lost
    assert batch("create", source, out, "--fake", "--concurrency", "1") == 1
    err = capsys.readouterr().err
    assert "2 ok, 2 failed, 2 outcome unknown, 0 already done" in err
    assert states(out) == {
        1: "failed",
        2: "failed",
        3: "unknown",
        4: "unknown",
        5: "done",
        6: "done",
    }
    assert session_limits(embedded) == collections.Counter([4, 5, 6])

    assert batch("create", source, out, "--fake") == 1  # 1 and 2 again; 3 and 4 not
    err = capsys.readouterr().err
    assert "2 ok, 0 failed, 2 outcome unknown, 2 already done" in err
    assert "line 3: outcome unknown" in err
    assert "line 4: outcome unknown" in err
    assert session_limits(embedded) == collections.Counter([1, 2, 4, 5, 6])

    assert batch("create", source, out, "--fake", "--retry-unknown", "--quiet") == 0
    assert session_limits(embedded) == collections.Counter({1: 1, 2: 1, 3: 1, 4: 2, 5: 1, 6: 1})
    assert set(states(out).values()) == {"done"}


def test_a_create_answered_408_is_unknown_and_not_sent_again(
    embedded: FakeZiggeo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The retry policy does not retry a create answered 408, since it may have been acted
    on; a resume must not send it again either."""
    source = write_lines(tmp_path / "in.jsonl", *creates(2))
    out = tmp_path / "out.jsonl"
    embedded.fail_next(1, status=408)  # line 1
    assert batch("create", source, out, "--fake", "--concurrency", "1") == 1
    assert states(out) == {1: "unknown", 2: "done"}
    capsys.readouterr()
    assert batch("create", source, out, "--fake") == 1
    assert "line 1: outcome unknown" in capsys.readouterr().err
    assert session_limits(embedded) == collections.Counter([2])


def test_out_that_is_a_hard_link_to_the_input_is_refused(
    served: FakeZiggeo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "in.jsonl", *creates(2))
    linked = tmp_path / "linked.jsonl"
    os.link(source, linked)
    assert batch("create", source, linked) == 2
    assert "--out" in one_line(capsys.readouterr().err)
    assert source.read_text("utf-8") == "".join(line + "\n" for line in creates(2))
    assert served.requests == ()


def test_out_in_a_missing_folder_is_bad_usage(
    served: FakeZiggeo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "in.jsonl", *creates(1))
    assert batch("create", source, tmp_path / "no-such-dir" / "out.jsonl") == 2
    line = one_line(capsys.readouterr().err)
    assert "--out" in line
    assert "no-such-dir" in line
    assert served.requests == ()


def test_a_byte_order_mark_is_accepted(
    served: FakeZiggeo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + "".join(line + "\n" for line in creates(2)).encode())
    out = tmp_path / "out.jsonl"
    assert batch("create", source, out) == 0
    assert "2 ok, 0 failed" in capsys.readouterr().err
    assert journal(out)[0]["input_sha256"] == digest(creates(1)[0])
    assert session_limits(served) == collections.Counter([1, 2])


def test_a_line_that_is_not_utf8_is_a_bad_line(
    served: FakeZiggeo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"session_limit": 1}\n{"session_limit": "\xff"}\n{"session_limit": 3}\n')
    assert batch("create", source, tmp_path / "out.jsonl") == 1
    err = capsys.readouterr().err
    assert "line 2: not valid UTF-8; skipped" in err
    assert session_limits(served) == collections.Counter([1, 3])


def test_quiet_hides_the_unknown_listing_not_the_summary(
    served: FakeZiggeo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "in.jsonl", *creates(3), "oops")
    out = tmp_path / "out.jsonl"
    served.fail_next(1, status=500)
    assert batch("create", source, out, "--quiet", "--concurrency", "1") == 1
    assert capsys.readouterr().err == (
        "ziggeo-async: line 4: not valid JSON; skipped\n"
        "ziggeo-async: batch create: 2 ok, 1 failed, 1 outcome unknown, 0 already done"
        f" -> {out}\n"
    )
    write_lines(source, *creates(4))
    assert batch("create", source, out, "--quiet") == 1
    assert capsys.readouterr().err == (
        f"ziggeo-async: batch create: 1 ok, 0 failed, 1 outcome unknown, 2 already done -> {out}\n"
    )
    assert batch("create", source, out) == 1
    assert "line 1: outcome unknown" in capsys.readouterr().err


def test_the_progress_bar_fits_a_narrow_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # COLUMNS, when set, wins over the terminal's size; an inherited one (a shell's, or
    # the COLUMNS=80 pytest-xdist workers start with) must not decide this test.
    monkeypatch.delenv("COLUMNS", raising=False)
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 30, 0, 0))
    with open(secondary, "w", encoding="utf-8") as terminal:  # noqa: PTH123
        progress = Progress(1000, terminal, enabled=True, label="create ")
        progress.advance(10)
        progress.finish()
    drawn = os.read(primary, 4096).decode("utf-8").replace("\x1b[K", "")
    os.close(primary)
    for line in drawn.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        assert len(line) <= 29, drawn
    assert "create [" in drawn


def test_the_progress_bar_follows_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "20")
    stream = io.StringIO()
    progress = Progress(10, stream, enabled=True, label="delete ")
    progress.advance()
    assert len(progress.line()) == 19
    assert progress.line().startswith("delete [")


def test_every_request_leaves_after_its_started_line_is_on_disk(
    embedded: FakeZiggeo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = 160
    source = write_lines(tmp_path / "in.jsonl", *creates(lines))
    out = tmp_path / "out.jsonl"
    synced_bytes = [0]
    syncs = [0]
    real_fsync, real_fdatasync = os.fsync, getattr(os, "fdatasync", os.fsync)

    def recording(real: Any) -> Any:
        def sync(fd: int) -> None:
            size = os.fstat(fd).st_size  # what was written before the sync began
            real(fd)
            syncs[0] += 1
            synced_bytes[0] = max(synced_bytes[0], size)

        return sync

    monkeypatch.setattr(os, "fsync", recording(real_fsync))
    monkeypatch.setattr(os, "fdatasync", recording(real_fdatasync), raising=False)
    early: list[int] = []
    serve = embedded.serve

    async def checking_serve(method: str, target: str, headers: Any, body: bytes) -> Any:
        line = int(dict(urllib.parse.parse_qsl(body.decode()))["session_limit"])
        with out.open("rb") as on_disk:
            durable = on_disk.read(synced_bytes[0]).decode("utf-8")
        if json.dumps({"line": line, "event": "started"})[:-1] not in durable:
            early.append(line)
        return await serve(method, target, headers, body)

    monkeypatch.setattr(embedded, "serve", checking_serve)
    assert batch("create", source, out, "--fake", "--concurrency", "16", "--quiet") == 0
    assert len(embedded.tokens) == lines
    assert early == []
    # Workers share syncs: a group gathers every worker that gets ready while it waits
    # (20 syncs here; a group of only the workers ready at once made 29).
    assert syncs[0] <= lines // 6


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the CLI's loop; its tasks run in order
async def test_a_group_whose_gatherer_is_cancelled_is_synced_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced_sizes: list[int] = []
    monkeypatch.setattr(
        _journal, "_sync_to_disk", lambda fd: synced_sizes.append(os.fstat(fd).st_size)
    )
    gatherer = anyio.CancelScope()
    outcomes: list[object] = []
    with (tmp_path / "out.jsonl").open("ab") as file:
        writer = _journal.JournalWriter(file, durable=True)

        async def first() -> None:
            with gatherer:
                writer.append({"line": 1, "event": "started"})
                outcomes.append(await writer.commit())  # gathers a group; cancelled meanwhile

        async def second() -> None:
            writer.append({"line": 2, "event": "started"})
            gatherer.cancel()
            outcomes.append(await writer.commit())  # waits for the first's group, then its own

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(first)  # appends and gathers a group, then second runs
            tasks.start_soon(second)
    assert gatherer.cancelled_caught
    assert outcomes == [True]
    size = (tmp_path / "out.jsonl").stat().st_size
    assert synced_sizes == [size]  # one sync, after both lines


# -- as subprocesses, against `fake serve` ---------------------------------------------------


@contextlib.contextmanager
def fake_serve(base: dict[str, str], *options: str) -> Iterator[str]:
    """`ziggeo-async fake serve --inspect` in a child process; yields its URL once it listens."""
    with subprocess.Popen(
        [sys.executable, "-m", "ziggeo_async", "fake", "serve", "--inspect", *options],
        env=base,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip()  # printed once the socket listens
            assert url.startswith("http://127.0.0.1:"), url
            yield url
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)


def batch_env(base: dict[str, str], url: str) -> dict[str, str]:
    fake = FakeZiggeo()
    return {
        **base,
        "ZIGGEO_APP_TOKEN": fake.app_token,
        "ZIGGEO_PRIVATE_KEY": fake.private_key,
        "ZIGGEO_BASE_URL": url,
    }


def batch_command(kind: str, source: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ziggeo_async",
        "batch",
        kind,
        str(source),
        "--out",
        str(out),
        *extra,
    ]


def run_batch(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def received(url: str) -> list[dict[str, Any]]:
    fake = FakeZiggeo()
    with httpx.Client(base_url=url, auth=(fake.app_token, fake.private_key)) as client:
        records: list[dict[str, Any]] = client.get("/_fake/requests").json()
    return [record for record in records if record["method"] == "POST"]


def started_lines(out: Path) -> set[int]:
    """Line numbers with a `started` entry on disk (a torn last line is ignored)."""
    numbers = set()
    if out.exists():
        for text in out.read_text("utf-8").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(text)
                if entry.get("event") == "started":
                    numbers.add(entry["line"])
    return numbers


def wait_until(condition: Any, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_two_processes_on_one_journal(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    source = write_lines(tmp_path / "in.jsonl", *creates(3))
    out = tmp_path / "out.jsonl"
    with fake_serve(subprocess_env, "--latency", "30") as url:  # each create is held
        env = batch_env(subprocess_env, url)
        command = batch_command("create", source, out, "--concurrency", "1")
        with subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL) as first:
            try:
                wait_until(lambda: started_lines(out) == {1}, "the first run to send line 1")
                second = run_batch(env, *command)
                assert first.poll() is None  # the second did not wait for the first
                assert second.returncode == 2
                line = one_line(second.stderr)
                assert str(first.pid) in line
                assert "in use" in line
            finally:
                first.kill()
        assert started_lines(out) == {1}
        assert len(received(url)) <= 1


def test_a_changed_input_line_is_refused(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    lines = creates(4)
    source = write_lines(tmp_path / "in.jsonl", *lines)
    out = tmp_path / "out.jsonl"
    with fake_serve(subprocess_env) as url:
        env = batch_env(subprocess_env, url)
        command = batch_command("create", source, out)
        assert run_batch(env, *command).returncode == 0
        write_lines(source, lines[0], lines[1], '{"session_limit": 3, "volatile": true}', lines[3])
        refused = run_batch(env, *command)
        assert refused.returncode == 2
        assert "line 3" in one_line(refused.stderr)
        write_lines(source, lines[0], '{"session_limit": 9}', *lines[1:])  # a line inserted
        refused = run_batch(env, *command)
        assert refused.returncode == 2
        assert "line 2" in one_line(refused.stderr)
        assert len(received(url)) == 4  # nothing sent by the refused runs


def test_a_fixed_line_runs_again(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        '{"session_limit": 1}',
        "{session_limit: 2}",
        '{"session_limit": "3"}',
    )
    out = tmp_path / "out.jsonl"
    with fake_serve(subprocess_env) as url:
        env = batch_env(subprocess_env, url)
        command = batch_command("create", source, out)
        first = run_batch(env, *command)
        assert first.returncode == 1
        assert "1 ok, 2 failed" in first.stderr
        write_lines(source, *creates(3))
        second = run_batch(env, *command)
        assert second.returncode == 0, second.stderr
        assert "2 ok, 0 failed, 0 outcome unknown, 1 already done" in second.stderr
        sent = collections.Counter(int(record["form"]["session_limit"]) for record in received(url))
        assert sent == collections.Counter([1, 2, 3])


@pytest.mark.parametrize(
    ("signum", "said"),
    [
        (signal.SIGINT, "interrupted: taking no more lines"),
        # What systemd, Kubernetes or Celery send to stop a job: as graceful as a Ctrl-C.
        (signal.SIGTERM, "terminated (SIGTERM): taking no more lines"),
    ],
)
def test_a_first_ctrl_c_or_sigterm_lets_the_requests_in_flight_finish(
    tmp_path: Path, subprocess_env: dict[str, str], signum: signal.Signals, said: str
) -> None:
    lines, concurrency = 200, 8
    source = write_lines(tmp_path / "in.jsonl", *creates(lines))
    out = tmp_path / "out.jsonl"
    with fake_serve(subprocess_env, "--latency", "0.5") as url:
        env = batch_env(subprocess_env, url)
        command = batch_command(
            "create", source, out, "--concurrency", str(concurrency), "--grace", "30"
        )
        with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as job:
            wait_until(lambda: len(started_lines(out)) >= concurrency, "requests in flight")
            job.send_signal(signum)
            _, err = job.communicate(timeout=60)
        assert job.returncode == 130, err
        assert said in err
        assert "waiting up to 30 s" in err
        assert "outcome unknown" not in err.replace("0 outcome unknown", "")
        final = states(out)
        assert "unknown" not in final.values()
        assert "started" not in final.values()
        assert concurrency <= len(final) < lines  # it stopped taking lines
        assert set(final.values()) == {"done"}
        sent = collections.Counter(int(record["form"]["session_limit"]) for record in received(url))
        assert sent == collections.Counter(list(final))  # each request sent: answered, recorded


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_second_ctrl_c_or_sigterm_stops_at_once(
    tmp_path: Path, subprocess_env: dict[str, str], signum: signal.Signals
) -> None:
    concurrency = 4
    source = write_lines(tmp_path / "in.jsonl", *creates(50))
    out = tmp_path / "out.jsonl"
    with fake_serve(subprocess_env, "--latency", "60") as url:  # no answer comes
        env = batch_env(subprocess_env, url)
        command = batch_command(
            "create", source, out, "--concurrency", str(concurrency), "--grace", "60"
        )
        with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as job:
            assert job.stderr is not None
            wait_until(lambda: len(started_lines(out)) == concurrency, "requests in flight")
            job.send_signal(signum)
            assert "waiting up to 60 s" in job.stderr.readline()
            job.send_signal(signum)
            _, err = job.communicate(timeout=20)
        assert job.returncode == 130, err
    final = states(out)
    assert final == dict.fromkeys(range(1, concurrency + 1), "unknown")
    for line in range(1, concurrency + 1):
        assert f"line {line}: outcome unknown" in err


def test_the_wait_after_a_ctrl_c_is_bounded(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    concurrency = 3
    source = write_lines(tmp_path / "in.jsonl", *creates(20))
    out = tmp_path / "out.jsonl"
    with fake_serve(subprocess_env, "--latency", "60") as url:  # no answer comes in time
        env = batch_env(subprocess_env, url)
        command = batch_command(
            "create", source, out, "--concurrency", str(concurrency), "--grace", "0.5"
        )
        with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as job:
            wait_until(lambda: len(started_lines(out)) == concurrency, "requests in flight")
            job.send_signal(signal.SIGINT)
            _, err = job.communicate(timeout=30)
        assert job.returncode == 130, err
    assert "waiting up to 0.5 s" in err
    assert "did not all answer within 0.5 s" in err
    assert states(out) == dict.fromkeys(range(1, concurrency + 1), "unknown")


def test_a_power_cut_right_after_a_started_line(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    source = write_lines(tmp_path / "in.jsonl", *creates(2))
    out = tmp_path / "out.jsonl"
    with fake_serve(subprocess_env, "--latency", "1.5") as url:
        env = batch_env(subprocess_env, url)
        command = batch_command("create", source, out, "--concurrency", "1")
        with subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL) as first:
            wait_until(lambda: started_lines(out) == {1}, "line 1 to start")
            first.send_signal(signal.SIGKILL)
        assert states(out) == {1: "started"}
        resumed = run_batch(env, *command)
        assert resumed.returncode == 1  # line 1 is outcome unknown
        assert "line 1: outcome unknown" in resumed.stderr
        assert "1 ok, 0 failed, 1 outcome unknown" in resumed.stderr
        assert [entry["event"] for entry in journal(out) if entry["line"] == 1] == [
            "started",
            "unknown",
        ]  # not sent again: every send is journaled as started first
        sent = collections.Counter(int(record["form"]["session_limit"]) for record in received(url))
        assert sent[2] == 1
        assert sent[1] <= 1


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the CLI's loop
async def test_an_answer_that_comes_as_the_run_stops_at_once_is_recorded(tmp_path: Path) -> None:
    fake = FakeZiggeo()
    source = write_lines(tmp_path / "in.jsonl", *creates(2))
    out = tmp_path / "out.jsonl"
    stderr = io.StringIO()
    job = BatchJob(
        "create",
        source,
        out,
        retry_unknown=False,
        quiet=False,
        stderr=stderr,
        show_progress=False,
        grace=5,
    )
    async with (
        httpx2.AsyncClient(transport=fake.transport()) as http_client,
        AsyncZiggeo(fake.app_token, fake.private_key, http_client=http_client) as client,
    ):

        async def send(item: Any) -> object:
            token = await client.authtokens.create(**item)
            # Ctrl-C twice as line 1's answer comes: the run stops before it reads it.
            await job._on_interrupt(signal.SIGINT)
            await job._on_interrupt(signal.SIGINT)
            return token

        with _journal.locked_journal(out) as file:
            job.prepare(_journal.job_header("create", "embedded", fake.app_token))
            assert await job.run(file, send, concurrency=1, max_per_second=None) == 130
    [created] = fake.tokens
    assert states(out) == {1: "done"}, stderr.getvalue()
    assert [entry["token"]["token"] for entry in journal(out) if entry["event"] == "result"] == [
        created
    ]
    assert "outcome unknown" not in stderr.getvalue()
    assert job.summary().startswith("batch create: 1 ok, 0 failed, 0 outcome unknown")


def sent_lines(url: str) -> collections.Counter[int]:
    return collections.Counter(int(record["form"]["session_limit"]) for record in received(url))


@pytest.mark.parametrize(
    ("limit", "lines", "concurrency"),
    [
        (100, 5, 1),  # the job header does not fit
        (3000, 40, 4),  # a result does not fit
        (9000, 400, 200),  # a wave of started lines does not fit
    ],
)
def test_a_journal_that_fills_up_ends_the_run_with_an_error_naming_it(
    tmp_path: Path, subprocess_env: dict[str, str], limit: int, lines: int, concurrency: int
) -> None:
    source = write_lines(tmp_path / "in.jsonl", *creates(lines))
    out = tmp_path / "out.jsonl"

    def small_files() -> None:  # what a full disk does to a growing file, for this process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with fake_serve(subprocess_env) as url:
        env = batch_env(subprocess_env, url)
        command = batch_command("create", source, out, "--concurrency", str(concurrency))
        # Not measured by coverage: its data file, written at exit, would meet the same
        # limit and print an error of its own after the command's. A .pyc written under
        # the limit would be cut short too (and then read).
        unmeasured = {k: v for k, v in env.items() if not k.startswith("COVERAGE_")}
        full = subprocess.run(
            command,
            env={**unmeasured, "PYTHONDONTWRITEBYTECODE": "1"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            preexec_fn=small_files,
        )
        assert full.returncode == 1
        assert full.stderr.splitlines()[-1].endswith(
            f"cannot write the journal {out}: File too large"
        ), full.stderr
        assert "did not all answer" not in full.stderr
        assert "unexpected OSError" not in full.stderr
        if b"\n" not in out.read_bytes():  # not even the job header was written
            refused = run_batch(env, *command)
            assert refused.returncode == 2
            assert "holds only the start of a job header" in one_line(refused.stderr)
            assert received(url) == []
            return
        resumed = run_batch(env, *command)
        assert resumed.returncode in (0, 1), resumed.stderr
        sent = sent_lines(url)
    final = states(out)
    assert sorted(final) == list(range(1, lines + 1))
    assert set(final.values()) <= {"done", "unknown"}
    assert max(sent.values()) == 1  # nothing sent twice
    assert all(sent[line] == 1 for line, state in final.items() if state == "done")


@pytest.mark.parametrize("cut", [1, 5, 40, 150])
def test_a_job_header_cut_short_is_refused_as_such(
    served: FakeZiggeo, tmp_path: Path, capsys: pytest.CaptureFixture[str], cut: int
) -> None:
    source = write_lines(tmp_path / "in.jsonl", *creates(2))
    whole = tmp_path / "whole.jsonl"
    assert batch("create", write_lines(tmp_path / "empty.jsonl"), whole, "--quiet") == 0
    header = whole.read_bytes().split(b"\n")[0]
    assert cut < len(header)
    out = tmp_path / "out.jsonl"
    out.write_bytes(header[:cut])  # a kill or a full disk in the first write of a run
    capsys.readouterr()
    assert batch("create", source, out) == 2
    line = one_line(capsys.readouterr().err)
    assert f"--out {out} holds only the start of a job header" in line
    assert "nothing was sent" in line
    assert served.requests == ()
    assert out.read_bytes() == header[:cut]


def test_an_input_edited_in_place_while_the_run_reads_it_stops_the_run(
    embedded: FakeZiggeo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = creates(2000)  # more than the reader's buffer holds
    source = write_lines(tmp_path / "in.jsonl", *lines)
    out = tmp_path / "out.jsonl"
    serve = embedded.serve

    async def serve_and_edit(method: str, target: str, headers: Any, body: bytes) -> Any:
        if dict(urllib.parse.parse_qsl(body.decode()))["session_limit"] == "3":
            # In place, as an editor that does not save by renaming: every line moves down.
            with source.open("r+", encoding="utf-8") as edited:
                edited.write("".join(line + "\n" for line in ['{"session_limit": 0}', *lines]))
        return await serve(method, target, headers, body)

    monkeypatch.setattr(embedded, "serve", serve_and_edit)
    code = batch("create", source, out, "--fake", "--concurrency", "1", "--quiet")
    err = capsys.readouterr().err
    assert max(session_limits(embedded).values()) == 1, "a line was sent twice"
    assert code == 2, err
    assert f"{source} changed while the run was reading it" in err.splitlines()[-1]
    assert states(out) == {1: "done", 2: "done", 3: "done"}
    assert session_limits(embedded) == collections.Counter([1, 2, 3])
