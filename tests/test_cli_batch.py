"""``ziggeo-async batch``: results as they complete, resume without loss or repeats."""

from __future__ import annotations

import collections
import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ziggeo_async.cli import main
from ziggeo_async.cli._batch import parse_item, read_journal
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
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


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
    source = write_lines(tmp_path / "in.jsonl", *creates(3))
    out = write_lines(
        tmp_path / "out.jsonl",
        '{"line": 1, "event": "started"}',
        '{"line": 1, "event": "result", "ok": true}',
        '{"line": 2, "event": "started"}',
    )
    with out.open("a", encoding="utf-8") as torn:
        torn.write('{"line": 3, "ev')  # a write cut short by a kill
    assert batch("create", source, out) == 1
    assert session_limits(served) == collections.Counter([3])
    err = capsys.readouterr().err
    assert "line 2: outcome unknown" in err
    assert "1 ok, 0 failed, 1 outcome unknown, 1 already done" in err
    text = out.read_text("utf-8")
    assert '{"line": 3, "ev\n' in text  # the torn line was ended, not glued to the next entry
    assert [entry["line"] for entry in map(json.loads, text.splitlines()[4:])] == [2, 3, 3]

    # Reported again, not journaled twice, and still not sent.
    assert batch("create", source, out) == 1
    assert [json.loads(line)["event"] for line in out.read_text("utf-8").splitlines()[4:]] == [
        "unknown",
        "started",
        "result",
    ]
    assert "line 2: outcome unknown" in capsys.readouterr().err
    assert session_limits(served) == collections.Counter([3])

    # --retry-unknown sends it.
    assert batch("create", source, out, "--retry-unknown", "--quiet") == 0
    assert session_limits(served) == collections.Counter([2, 3])
    assert capsys.readouterr().err == ""
    assert read_journal(out) == {1: "result", 2: "result", 3: "result"}


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
        '{"line": 1, "event": "started"}',
        '{"line": 1, "event": "result"}',
        '{"line": 1, "event": "started"}',
        '{"line": "2", "event": "started"}',
        '{"line": 3, "event": "other"}',
        '{"line": 4}',
        "[]",
        '{"line": 5, "event": "unknown"}',
    )
    assert read_journal(path) == {1: "result", 5: "unknown"}
    assert read_journal(tmp_path / "absent.jsonl") == {}


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
    assert "ETA 0:00:00\n" in err
    assert "\r\x1b[Kziggeo-async: line 11: not valid JSON; skipped\n" in err
    assert batch("create", source, tmp_path / "b.jsonl", "--quiet") == 1
    # Quiet hides the bar and the summary, not what went wrong.
    assert capsys.readouterr().err == "ziggeo-async: line 11: not valid JSON; skipped\n"


def test_an_unwritable_out_file_is_exit_1(
    served: FakeZiggeo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "in.jsonl", *creates(1))
    assert batch("create", source, tmp_path / "no-such-dir" / "out.jsonl") == 1
    assert "No such file or directory" in capsys.readouterr().err
    assert served.requests == ()


def test_progress_line_rate_and_eta() -> None:
    now = [100.0]
    stream = io.StringIO()
    progress = Progress(10, stream, enabled=True, label="x ", clock=lambda: now[0])
    assert progress.line() == "x [..............................] 0/10   0% 0/s ETA ?:??:??"
    now[0] = 102.0
    progress.advance(4)
    assert progress.line() == "x [############..................] 4/10  40% 2/s ETA 0:00:03"
    now[0] = 102.05
    progress.advance()  # within a tenth of a second of the last draw: not redrawn
    assert stream.getvalue().count("\r") == 1
    progress.finish()
    assert stream.getvalue().endswith("5/10  50% 2/s ETA 0:00:02\n")
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
            after_kill = read_journal(out)
            done_before = [line for line, state in after_kill.items() if state == "result"]
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

    final = read_journal(out)
    unknown = {line for line, state in final.items() if state == "unknown"}
    assert unknown == set(in_flight)
    assert all(final[line] == "result" for line in range(1, lines + 1) if line not in unknown)
    per_line = collections.Counter(token["session_limit"] for token in stored.values())
    assert max(per_line.values()) == 1, "no input line may have two tokens"
    for line in range(1, lines + 1):
        assert per_line[line] == 1 or line in unknown
    # Every create the server received is one input line, sent once.
    creates_sent = collections.Counter(
        int(entry["form"]["session_limit"]) for entry in received if entry["method"] == "POST"
    )
    assert max(creates_sent.values()) == 1
