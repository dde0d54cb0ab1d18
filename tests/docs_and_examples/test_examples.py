"""Every example runs here, as a user runs it, against the embedded FakeZiggeo."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from examples import batch_job
from ziggeo_async import AsyncZiggeo, InternalServerError
from ziggeo_async.testing import FakeZiggeo

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

#: Each example and the test that runs it; a new example without one fails the suite.
RUN_BY = {
    "tour.py": "tests/tools/test_cli.py::test_examples_tour_runs",
    "batch_job.py": "test_batch_job_issues_ten_thousand_tokens",
    "legacy_sync.py": "test_legacy_sync_runs_both_sync_faces",
    "fastapi_app/main.py": (
        "tests/docs_and_examples/test_example_fastapi.py::test_page_can_carry_a_server_auth_token"
    ),
}


def run_example(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python examples/...`` in a fresh interpreter with no Ziggeo credentials set."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ZIGGEO_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_example_is_run_by_a_test() -> None:
    found = {
        path.relative_to(EXAMPLES).as_posix()
        for path in EXAMPLES.rglob("*.py")
        if "__pycache__" not in path.parts and path.name != "__init__.py"
    }
    assert found == set(RUN_BY)
    for test in RUN_BY.values():
        module, _, name = test.rpartition("::")
        source = (ROOT / module).read_text() if module else Path(__file__).read_text()
        assert f"def {name}(" in source, test


def test_legacy_sync_runs_both_sync_faces() -> None:
    result = run_example("examples/legacy_sync.py")
    assert result.returncode == 0, result.stderr
    steps = [line.split(" ->")[0] for line in result.stdout.splitlines()]
    assert steps == [
        "SyncZiggeo create",
        "SyncZiggeo update",
        "SyncZiggeo generate",
        "SyncZiggeo delete",
        "legacy create",
        "legacy update",
        "legacy get",
        "legacy generate",
        "legacy delete",
    ]
    assert "SyncZiggeo update -> 5" in result.stdout
    assert "legacy get -> {'read': {'resources': ['VIDEO_TOKEN']}}" in result.stdout
    assert result.stdout.count("gone: 404") == 2
    assert "Warning" not in result.stderr  # no unclosed client, no leaked thread


@pytest.mark.volume
def test_batch_job_issues_ten_thousand_tokens(tmp_path: Path) -> None:
    out = tmp_path / "tokens.jsonl"
    result = run_example("examples/batch_job.py", "--out", str(out))  # the default count
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("issued 10000 of 10000 tokens in ")
    assert "embedded FakeZiggeo" in result.stderr
    issued = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(item["index"] for item in issued) == list(range(10_000))
    assert len({item["token"] for item in issued}) == 10_000


def test_batch_job_takes_the_count_from_argv() -> None:
    result = run_example("examples/batch_job.py", "25", "--concurrency", "4", "--rate", "1000")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("issued 25 of 25 tokens in ")


def test_batch_job_refuses_bad_arguments_before_sending() -> None:
    negative = run_example("examples/batch_job.py", "-5")
    assert negative.returncode == 2
    assert "count must not be negative" in negative.stderr
    no_workers = run_example("examples/batch_job.py", "5", "--concurrency", "0")
    assert no_workers.returncode == 2
    assert "expected a whole number >= 1, got '0'" in no_workers.stderr


@pytest.mark.anyio
async def test_batch_job_reports_each_failure_and_goes_on() -> None:
    fake = FakeZiggeo(private_key="batch-secret-key")
    fake.fail_next(3, status=500, body="upstream trouble")  # a create is not retried on 500
    out = io.StringIO()
    async with (
        httpx.AsyncClient(transport=fake.transport()) as http_client,
        AsyncZiggeo(fake.app_token, fake.private_key, http_client=http_client) as ziggeo,
    ):
        failures = await batch_job.issue_tokens(ziggeo, 40, concurrency=1, out=out)
    assert [index for index, _ in failures] == [0, 1, 2]
    assert all(isinstance(error, InternalServerError) for _, error in failures)
    assert len(out.getvalue().splitlines()) == 37 == len(fake.tokens)
    stored_videos = sorted(
        token["grants"]["read"]["resources"][0] for token in fake.tokens.values()
    )
    assert stored_videos == [f"video-{number:05d}" for number in range(3, 40)]

    text = batch_job.report(40, failures, 1.25)
    assert text.splitlines()[:3] == [
        "issued 37 of 40 tokens in 1.2 s",
        "3 failed: InternalServerError x3",
        "  item 0: POST /v1/authtokens/ returned 500: 'upstream trouble'",
    ]
    assert "batch-secret-key" not in text


def test_batch_report_lists_the_first_failures_then_counts() -> None:
    error = InternalServerError(
        "boom", method="POST", path="/v1/authtokens/", status_code=500, body="", response=None
    )
    text = batch_job.report(100, [(index, error) for index in range(25)], 2.0)
    lines = text.splitlines()
    assert len(lines) == 2 + batch_job.SHOWN_FAILURES + 1
    assert lines[-1] == "  ... and 5 more"
