"""A sync client's life beyond ``close()``: a program that never closes it, and ``fork``.

Each scenario runs in a child interpreter with a timeout, so a hang fails the test
instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]

#: How long a child may take before the test calls it hung (a hang is forever).
CHILD_TIMEOUT = 30.0
#: How long the interpreter may take to exit once the program's last line ran. The
#: promise is "under a second"; interpreter teardown itself takes a few milliseconds.
EXIT_BOUND = 1.0


def run_child(script: str, *, warnings: str = "always::ResourceWarning") -> tuple[str, str, float]:
    """Run ``script``; return its stdout, stderr and the seconds from its last line to its exit.

    The script ends by printing ``time.monotonic()`` (the clock is system-wide), so the
    interpreter's start-up, which a loaded machine may make slow, is not counted.
    """
    done = subprocess.run(
        [sys.executable, "-W", warnings, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        check=False,
        timeout=CHILD_TIMEOUT,
        cwd=REPOSITORY,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )
    exited = time.monotonic()
    assert done.returncode == 0, done.stderr
    *output, last_line = done.stdout.splitlines()
    return "\n".join(output), done.stderr, exited - float(last_line)


def assert_only_resource_warnings(stderr: str) -> None:
    """Nothing on stderr but ResourceWarnings (no traceback, no "Exception ignored")."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    warned = [line for line in lines if "ResourceWarning" in line]
    assert warned, stderr
    assert "Traceback" not in stderr
    assert "Exception ignored" not in stderr
    assert "SECRET" not in stderr


UNCLOSED_PROGRAMS = {
    "sync client": """
        import httpx, time
        from ziggeo_async import SyncZiggeo
        from ziggeo_async.testing import FakeZiggeo

        fake = FakeZiggeo(private_key="PRIVATE-SECRET")
        client = SyncZiggeo(
            fake.app_token, fake.private_key,
            http_client=httpx.AsyncClient(transport=fake.transport()),
        )
        client.authtokens.create(session_limit=1)
        print(time.monotonic())
    """,
    "legacy client": """
        import httpx, time
        from ziggeo_async.legacy import Ziggeo
        from ziggeo_async.testing import FakeZiggeo

        fake = FakeZiggeo(private_key="PRIVATE-SECRET")
        ziggeo = Ziggeo(
            fake.app_token, fake.private_key,
            http_client=httpx.AsyncClient(transport=fake.transport()),
        )
        ziggeo.authtokens().create({"session_limit": 1})
        print(time.monotonic())
    """,
    # The SDK's own connection pool, over real sockets to a loopback server (stopped
    # before the clock starts: the server's shutdown is not the client's exit).
    "owned connections": """
        import time
        from tests._support import serve_on_uvicorn
        from ziggeo_async import SyncZiggeo
        from ziggeo_async.testing import FakeZiggeo

        fake = FakeZiggeo(private_key="PRIVATE-SECRET")
        with serve_on_uvicorn(fake.asgi_app) as url:
            client = SyncZiggeo(fake.app_token, fake.private_key, base_url=url)
            client.authtokens.create(session_limit=1)
        print(time.monotonic())
    """,
    # A batch iterator left half way, and another thread's call still in flight at exit.
    "work in flight": """
        import anyio, httpx, threading, time
        from ziggeo_async import SyncZiggeo

        started = threading.Semaphore(0)

        async def answer_never(request):
            started.release()
            await anyio.sleep(3600)

        client = SyncZiggeo(
            "app-token", "PRIVATE-SECRET",
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(answer_never)),
        )
        results = client.authtokens.create_many([{}] * 100, concurrency=4)
        threading.Thread(target=client.authtokens.create, daemon=True).start()
        for _ in range(5):  # the batch's four requests and the thread's one
            assert started.acquire(timeout=20)
        print(time.monotonic())
    """,
}


@pytest.mark.parametrize("name", UNCLOSED_PROGRAMS)
def test_a_program_that_never_closes_its_client_exits_promptly(name: str) -> None:
    _, stderr, exit_seconds = run_child(UNCLOSED_PROGRAMS[name])
    assert exit_seconds < EXIT_BOUND
    assert_only_resource_warnings(stderr)
    # Closed by the exit hook, unless another thread's call was still running on it.
    outcome = "left running at exit" if name == "work in flight" else "closed at exit"
    assert f"SyncZiggeo was not closed; call close() or use `with` ({outcome}" in stderr


def test_the_exit_hook_closes_every_client_when_warnings_are_errors() -> None:
    _, stderr, exit_seconds = run_child(
        """
        import atexit, sys, time

        clients = []
        # Registered before the SDK's hook (made when it is imported), so it runs after it.
        atexit.register(lambda: print("closed:", [c.closed for c in clients], file=sys.stderr))

        import httpx
        from ziggeo_async import SyncZiggeo
        from ziggeo_async.testing import FakeZiggeo

        fake = FakeZiggeo()
        for _ in range(2):
            http_client = httpx.AsyncClient(transport=fake.transport())
            clients.append(SyncZiggeo(fake.app_token, fake.private_key, http_client=http_client))
            clients[-1].authtokens.create()
        print(time.monotonic())
        """,
        warnings="error::ResourceWarning",
    )
    assert exit_seconds < EXIT_BOUND
    assert "ResourceWarning: a SyncZiggeo was not closed" in stderr
    assert "closed: [True, True]" in stderr


# A keep-alive HTTP/1.1 server on 127.0.0.1 that answers each create with the client's
# port, so a response tells which connection carried its request. It runs in the parent
# only (a forked child has no copy of its thread).
PORT_ECHO_SERVER = """
    import json, os, threading, time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from ziggeo_async import SyncZiggeo

    class EchoPort(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            body = json.dumps({"token": f"port-{self.client_address[1]}"}).encode()
            self.send_response(201)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoPort)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = SyncZiggeo(
        "app-token", "PRIVATE-SECRET", base_url=f"http://127.0.0.1:{server.server_port}",
        max_retries=0, timeout=20,
    )

    def port_of_a_create():
        return int(client.authtokens.create(session_limit=1).token.removeprefix("port-"))

    ports = {"parent_before": port_of_a_create()}
"""

# A create in a forked child, whose answer becomes ports["child"].
CREATE_IN_A_FORKED_CHILD = """
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:
            try:
                os.write(write_end, json.dumps(port_of_a_create()).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        deadline = time.monotonic() + 20
        while os.waitpid(child, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(child, 9)
                raise SystemExit("the forked child hung")
            time.sleep(0.05)
        with os.fdopen(read_end) as answer:
            ports["child"] = json.loads(answer.read())
"""

FORK_PROGRAMS = {
    "os.fork": CREATE_IN_A_FORKED_CHILD,
    # A batch the parent was iterating: the child cannot go on with it (its task stayed
    # in the parent), says so, and closing it there neither hangs nor touches the parent's.
    "os.fork mid-batch": """
        from ziggeo_async import ClientClosedError

        batch = client.authtokens.create_many([{}] * 10, concurrency=1)
        next(batch)
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:
            try:
                refused = []
                for _ in range(2):  # before the child's own portal started, and after
                    try:
                        next(batch)
                    except ClientClosedError as error:
                        refused.append("os.fork()" in str(error))
                    child_port = port_of_a_create()
                refused = refused == [True, True]
                batch.close()
                os.write(write_end, json.dumps([refused, child_port]).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        deadline = time.monotonic() + 20
        while os.waitpid(child, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(child, 9)
                raise SystemExit("the forked child hung")
            time.sleep(0.05)
        with os.fdopen(read_end) as answer:
            refused, ports["child"] = json.loads(answer.read())
        assert refused
        assert sum(1 for _ in batch) == 9  # the parent's batch goes on
    """,
    # A client made by with_options before the fork: in the child it follows the child's
    # own portal and connections, not the copy of the parent's it was first built on.
    "with_options client, os.fork": """
        derived = client.with_options(timeout=10)

        def port_of_a_create():
            return int(derived.authtokens.create(session_limit=1).token.removeprefix("port-"))

        ports["parent_before"] = port_of_a_create()
    """
    + CREATE_IN_A_FORKED_CHILD,
    "multiprocessing fork pool": """
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(1) as pool:
            ports["child"] = pool.apply_async(port_of_a_create).get(timeout=20)
    """,
}


@pytest.mark.parametrize("program", FORK_PROGRAMS.values(), ids=FORK_PROGRAMS.keys())
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_gets_connections_of_its_own_and_the_parent_keeps_its(
    program: str,
) -> None:
    script = (
        textwrap.dedent(PORT_ECHO_SERVER)
        + textwrap.dedent(program)
        + textwrap.dedent("""
            ports["parent_after"] = port_of_a_create()
            client.close()
            print(json.dumps(ports))
            print(time.monotonic())
        """)
    )
    output, stderr, _ = run_child(script, warnings="error::ResourceWarning")
    ports = json.loads(output)
    # The child made a connection of its own; the parent still uses the one it had.
    assert ports["child"] != ports["parent_before"]
    assert ports["parent_after"] == ports["parent_before"]
    assert "Traceback" not in stderr
