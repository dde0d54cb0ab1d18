"""``ziggeo-async``: the SDK from the shell, JSON on stdout, one-line errors on stderr.

Exit codes: 0 success, 1 an API or item error, 2 bad usage (arguments, configuration).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

import httpx2

from .._batch import BatchRun
from .._client import AsyncZiggeo
from .._errors import ConfigurationError, ValidationError, ZiggeoError
from .._version import __version__
from ..testing import FakeZiggeo
from ..testing._server import serve_until_signalled

__all__ = ["build_parser", "main"]

PROG: Final = "ziggeo-async"
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
_INTERRUPTED: Final = 130
_LOOPBACK_HOSTS: Final = frozenset(("127.0.0.1", "::1", "localhost"))

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


class UsageError(Exception):
    """Bad usage found after parsing: exit 2 with the message."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: scripts read the last line of stderr.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _stdout_json(document: object) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _say(message: str) -> None:
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


# -- credentials and the client --------------------------------------------------------


@contextlib.asynccontextmanager
async def open_client() -> AsyncIterator[AsyncZiggeo]:
    """The client the environment asks for, or one on an embedded ``FakeZiggeo``."""
    app_token = os.environ.get("ZIGGEO_APP_TOKEN", "")
    private_key = os.environ.get("ZIGGEO_PRIVATE_KEY", "")
    if app_token and private_key:
        async with AsyncZiggeo(
            app_token,
            private_key,
            os.environ.get("ZIGGEO_ENCRYPTION_KEY") or None,
            base_url=os.environ.get("ZIGGEO_BASE_URL") or None,
        ) as client:
            yield client
        return
    if app_token or private_key:
        raise UsageError(
            "set both ZIGGEO_APP_TOKEN and ZIGGEO_PRIVATE_KEY, or neither to use the embedded fake"
        )
    fake = FakeZiggeo()
    _say(
        "no ZIGGEO_APP_TOKEN/ZIGGEO_PRIVATE_KEY set: using an embedded FakeZiggeo "
        "(in memory, forgotten on exit)"
    )
    async with (
        httpx2.AsyncClient(transport=fake.transport()) as http_client,
        AsyncZiggeo(
            fake.app_token, fake.private_key, fake.encryption_key, http_client=http_client
        ) as client,
    ):
        yield client


# -- argument flags ------------------------------------------------------------------


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not valid JSON") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def _whole_number(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def _add_argument_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("auth token arguments")
    group.add_argument("--volatile", action=argparse.BooleanOptionalAction, default=None)
    group.add_argument("--hidden", action=argparse.BooleanOptionalAction, default=None)
    group.add_argument(
        "--expiration-date", type=_whole_number, metavar="UNIX_SECONDS", default=None
    )
    group.add_argument(
        "--usage-expiration-time", type=_whole_number, metavar="SECONDS", default=None
    )
    group.add_argument("--session-limit", type=_whole_number, metavar="N", default=None)
    group.add_argument(
        "--grants",
        type=_json_object,
        metavar="JSON",
        default=None,
        help='e.g. \'{"read": {"resources": ["VIDEO_TOKEN"]}}\'',
    )


def _arguments(args: argparse.Namespace) -> dict[str, Any]:
    names = (
        "volatile",
        "hidden",
        "expiration_date",
        "usage_expiration_time",
        "session_limit",
        "grants",
    )
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


# -- commands ------------------------------------------------------------------------


async def _authtokens_create(args: argparse.Namespace) -> int:
    async with open_client() as client:
        token = await client.authtokens.create(**_arguments(args))
    _stdout_json(token.to_json())
    return EXIT_OK


async def _authtokens_get(args: argparse.Namespace) -> int:
    async with open_client() as client:
        token = await client.authtokens.get(args.token)
    _stdout_json(token.to_json())
    return EXIT_OK


async def _authtokens_update(args: argparse.Namespace) -> int:
    async with open_client() as client:
        token = await client.authtokens.update(args.token_or_key, **_arguments(args))
    _stdout_json(token.to_json())
    return EXIT_OK


async def _authtokens_delete(args: argparse.Namespace) -> int:
    async with open_client() as client:
        await client.authtokens.delete(args.token_or_key)
    _stdout_json({"deleted": args.token_or_key})
    return EXIT_OK


async def _auth_generate(args: argparse.Namespace) -> int:
    async with open_client() as client:
        _stdout_json({"token": client.auth.generate(**_arguments(args))})
    return EXIT_OK


async def _auth_decode(args: argparse.Namespace) -> int:
    async with open_client() as client:
        _stdout_json(client.auth.decode(args.token))
    return EXIT_OK


async def _batch(args: argparse.Namespace) -> int:
    from ._batch import BatchJob  # noqa: PLC0415 - only batch runs need it

    if not args.input.is_file():
        raise UsageError(f"INPUT: no such file: {args.input}")
    if args.out.resolve() == args.input.resolve():
        raise UsageError("--out must not be the input file")
    job = BatchJob(
        args.kind,
        args.input,
        args.out,
        retry_unknown=args.retry_unknown,
        stderr=sys.stderr,
        show_progress=not args.quiet and sys.stderr.isatty(),
    )
    async with open_client() as client:

        def results_for(items: Iterator[Any]) -> BatchRun[Any, Any]:
            pacing = {"concurrency": args.concurrency, "max_per_second": args.max_per_second}
            if args.kind == "create":
                return client.authtokens.create_many(items, **pacing)
            return client.authtokens.delete_many(items, **pacing)

        code = await job.run(results_for)
    if not args.quiet:
        _say(job.summary())
    return code


async def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo  # noqa: PLC0415 - only the demo needs it

    return await run_demo(show_progress=sys.stderr.isatty(), batch_size=args.batch_size)


async def _fake_serve(args: argparse.Namespace) -> int:
    if args.host not in _LOOPBACK_HOSTS:
        raise UsageError("--host: the fake serves on loopback only (127.0.0.1, ::1, localhost)")
    environ = os.environ
    credentials = {
        name: environ[variable]
        for name, variable in (
            ("app_token", "ZIGGEO_APP_TOKEN"),
            ("private_key", "ZIGGEO_PRIVATE_KEY"),
            ("encryption_key", "ZIGGEO_ENCRYPTION_KEY"),
        )
        if environ.get(variable)
    }
    fake = FakeZiggeo(**credentials, inspect=args.inspect)
    fake.latency = args.latency

    def announce(url: str) -> None:
        sys.stdout.write(url + "\n")
        sys.stdout.flush()
        _say(f"FakeZiggeo on {url} (app token {fake.app_token!r}); SIGINT or SIGTERM stops it")

    await serve_until_signalled(fake.asgi_app, args.host, args.port, announce)
    return EXIT_OK


# -- the parser ----------------------------------------------------------------------


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text!r}")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:  # noqa: PLR2004 - the largest TCP port
        raise argparse.ArgumentTypeError(f"expected a port 0-65535, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description=(
            "Ziggeo auth tokens from the shell. Credentials come from ZIGGEO_APP_TOKEN, "
            "ZIGGEO_PRIVATE_KEY, ZIGGEO_ENCRYPTION_KEY (and ZIGGEO_BASE_URL); without them "
            "commands run on an embedded FakeZiggeo."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="tracebacks and request logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    authtokens = commands.add_parser("authtokens", help="the auth-token API")
    operations = authtokens.add_subparsers(dest="operation", required=True, metavar="OPERATION")
    create = operations.add_parser("create", help="create an auth token")
    _add_argument_flags(create)
    create.set_defaults(handler=_authtokens_create)
    get = operations.add_parser("get", help="show an auth token")
    get.add_argument("token")
    get.set_defaults(handler=_authtokens_get)
    update = operations.add_parser("update", help="change an auth token")
    update.add_argument("token_or_key")
    _add_argument_flags(update)
    update.set_defaults(handler=_authtokens_update)
    delete = operations.add_parser("delete", help="delete an auth token")
    delete.add_argument("token_or_key")
    delete.set_defaults(handler=_authtokens_delete)

    auth = commands.add_parser("auth", help="client auth tokens, made locally")
    auth_operations = auth.add_subparsers(dest="operation", required=True, metavar="OPERATION")
    generate = auth_operations.add_parser("generate", help="make a client auth token")
    _add_argument_flags(generate)
    generate.set_defaults(handler=_auth_generate)
    decode = auth_operations.add_parser("decode", help="show a client auth token's payload")
    decode.add_argument("token")
    decode.set_defaults(handler=_auth_decode)

    batch = commands.add_parser("batch", help="create or delete many tokens from a JSONL file")
    batch_operations = batch.add_subparsers(dest="kind", required=True, metavar="OPERATION")
    for kind, what in (
        ("create", "one JSON object of create's arguments per line"),
        ("delete", 'one token per line: {"token": "..."} or the bare token'),
    ):
        job = batch_operations.add_parser(kind, help=f"{kind} many tokens ({what})")
        job.add_argument("input", type=Path, metavar="INPUT.jsonl", help=what)
        job.add_argument("--out", type=Path, required=True, metavar="RESULTS.jsonl")
        job.add_argument("--concurrency", type=_positive_int, default=32, metavar="N")
        job.add_argument("--max-per-second", type=_positive_float, default=None, metavar="R")
        job.add_argument("--quiet", action="store_true", help="no progress bar or summary")
        job.add_argument(
            "--retry-unknown",
            action="store_true",
            help="send again the lines whose outcome is unknown (may duplicate a create)",
        )
        job.set_defaults(handler=_batch)

    demo = commands.add_parser("demo", help="a guided round on the embedded FakeZiggeo")
    demo.add_argument("--batch-size", type=_positive_int, default=1000, help=argparse.SUPPRESS)
    demo.set_defaults(handler=_demo)

    fake = commands.add_parser("fake", help="FakeZiggeo, for other processes and languages")
    fake_operations = fake.add_subparsers(dest="operation", required=True, metavar="OPERATION")
    serve = fake_operations.add_parser(
        "serve", help="serve FakeZiggeo over HTTP on loopback; prints the URL"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=0, help="0 picks a free port")
    serve.add_argument("--latency", type=_seconds, default=0.0, metavar="SECONDS")
    serve.add_argument(
        "--inspect",
        action="store_true",
        help="also serve GET /_fake/tokens and /_fake/requests (same credentials)",
    )
    serve.set_defaults(handler=_fake_serve)
    return parser


# -- the entry point -----------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # --help, --version, or a usage error already printed
        return exit_request.code if isinstance(exit_request.code, int) else EXIT_USAGE
    handler: Handler = args.handler
    request_log = logging.getLogger("ziggeo_async")
    log_handler = logging.StreamHandler(sys.stderr)
    log_handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    if args.debug:
        # Only the SDK's own logger: it writes method, cut path and status, never headers.
        request_log.addHandler(log_handler)
        request_log.setLevel(logging.DEBUG)
    try:
        return asyncio.run(handler(args))
    except KeyboardInterrupt:
        _say("interrupted")
        return _INTERRUPTED
    except (UsageError, ValidationError, ConfigurationError) as error:
        return _fail(args, error, EXIT_USAGE)
    except (ZiggeoError, OSError) as error:
        return _fail(args, error, EXIT_FAILED)
    except Exception as error:  # noqa: BLE001 - a bug still ends in one line without --debug
        return _fail(args, error, EXIT_FAILED, prefix=f"unexpected {type(error).__name__}: ")
    finally:
        request_log.removeHandler(log_handler)


def _fail(args: argparse.Namespace, error: BaseException, code: int, prefix: str = "") -> int:
    if args.debug:
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    message = prefix + (str(error) or type(error).__name__)
    sys.stderr.write(f"{PROG}: error: {' '.join(message.split())}\n")
    sys.stderr.flush()
    return code
