"""``ziggeo-async``: the SDK from the shell, JSON on stdout, one-line errors on stderr.

Exit codes: 0 success, 1 an API or item error, 2 bad usage (arguments, configuration).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import sys
import traceback
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

import httpx2

from .._core.arguments import ARGUMENT_NAMES, check_argument_names
from .._core.cipher import ClientTokenCipher
from .._core.defaults import DEFAULT_CONCURRENCY
from .._core.errors import ConfigurationError, ValidationError, ZiggeoError
from .._faces.client import AsyncZiggeo, check_credential, check_encryption_key
from .._version import __version__
from ..legacy import official_grants
from ..resources.auth import Auth
from ..testing import FakeZiggeo
from ._credentials import VARIABLES, Credential, Settings, settings_from_env
from ._errors import UsageError
from ._serve import serve_until_signalled

__all__ = ["build_parser", "main"]

PROG: Final = "ziggeo-async"
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
_INTERRUPTED: Final = 130
_LOOPBACK_HOSTS: Final = frozenset(("127.0.0.1", "::1", "localhost"))

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


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

_API: Final[tuple[Credential, ...]] = ("app_token", "private_key")


def _command_name(args: argparse.Namespace) -> str:
    return " ".join(
        str(part) for part in (args.command, getattr(args, "operation", None) or args.kind)
    )


def _settings(args: argparse.Namespace, needed: tuple[Credential, ...]) -> tuple[Settings, bool]:
    """The environment's settings and whether to use the embedded fake; ``UsageError``
    naming the variables that are missing when no fake was asked for."""
    settings = settings_from_env()
    if args.fake or settings.fake:
        how = "--fake" if args.fake else "ZIGGEO_FAKE=1"
        _say(f"{how}: using an embedded FakeZiggeo (in memory, forgotten on exit)")
        return settings, True
    missing = settings.missing(needed)
    if missing:
        required = " and ".join(VARIABLES[name] for name in needed)
        raise UsageError(
            f"{_command_name(args)} needs {required} (not set: {', '.join(missing)}); "
            f"set them, or pass --fake to try it on an embedded FakeZiggeo"
        )
    return settings, False


def _fake_for(settings: Settings, *, inspect: bool = False) -> FakeZiggeo:
    # Credentials the user gave are the fake's too: a key given is never replaced.
    given: dict[str, Any] = {str(name): value for name, value in settings.given().items()}
    return FakeZiggeo(**given, inspect=inspect)


@contextlib.asynccontextmanager
async def open_client(args: argparse.Namespace) -> AsyncIterator[tuple[AsyncZiggeo, str]]:
    """The API client the environment (or ``--fake``) asks for, and the host it talks to."""
    settings, use_fake = _settings(args, _API)
    if not use_fake:
        # The variables are checked above, with the command's own message.
        async with AsyncZiggeo.from_env() as client:
            yield client, client.base_url
        return
    fake = _fake_for(settings)
    async with (
        httpx2.AsyncClient(transport=fake.transport()) as http_client,
        AsyncZiggeo(
            fake.app_token, fake.private_key, fake.encryption_key, http_client=http_client
        ) as client,
    ):
        yield client, "embedded FakeZiggeo"


def open_auth(args: argparse.Namespace, needed: tuple[Credential, ...]) -> Auth:
    """Client auth tokens from what ``needed`` names; no private key is asked for."""
    settings, use_fake = _settings(args, needed)
    if use_fake:
        fake = _fake_for(settings)
        app_token, encryption_key = fake.app_token, fake.encryption_key
    else:
        assert settings.app_token is not None
        assert settings.encryption_key is not None
        app_token, encryption_key = settings.app_token, settings.encryption_key
    check_credential("app_token", app_token)
    check_encryption_key(encryption_key)
    return Auth(ClientTokenCipher(app_token, encryption_key))


# -- argument flags ------------------------------------------------------------------


def _grants(text: str) -> dict[str, Any]:
    """What ``ziggeo_async.legacy`` takes: a JSON object, or a JSON string holding one."""
    try:
        value = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not valid JSON") from None
    try:
        grants = official_grants(value, argument="--grants")
    except ValidationError as error:
        raise argparse.ArgumentTypeError(error.reason) from None
    if not isinstance(grants, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, or a JSON string of one")
    return grants


def _whole_number(low: int, high: float = math.inf) -> Callable[[str], int]:
    """An argument type: digits only, a number from ``low`` to ``high``."""
    bounds = f">= {low}" if high == math.inf else f"{low}-{high}"

    def parse(text: str) -> int:
        # The length first: int() refuses more than 4,300 digits with a ValueError.
        if not (text.isdigit() and len(text) < 20 and low <= int(text) <= high):  # noqa: PLR2004
            raise argparse.ArgumentTypeError(f"expected a whole number {bounds}, got {text!r}")
        return int(text)

    return parse


def _finite_number(*, above_zero: bool) -> Callable[[str], float]:
    """An argument type: a finite number, more than 0 or (seconds) at least 0."""
    bound = "> 0" if above_zero else ">= 0"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (value > 0 if above_zero else value >= 0) or value == math.inf:
            raise argparse.ArgumentTypeError(f"expected a number {bound}, got {text!r}")
        return value

    return parse


_COUNT: Final = _whole_number(0)
_POSITIVE_INT: Final = _whole_number(1)
_PORT: Final = _whole_number(0, 65535)
_POSITIVE_FLOAT: Final = _finite_number(above_zero=True)
_SECONDS: Final = _finite_number(above_zero=False)


def _add_argument_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("auth token arguments")
    group.add_argument("--volatile", action=argparse.BooleanOptionalAction, default=None)
    group.add_argument("--hidden", action=argparse.BooleanOptionalAction, default=None)
    group.add_argument("--expiration-date", type=_COUNT, metavar="UNIX_SECONDS", default=None)
    group.add_argument("--usage-expiration-time", type=_COUNT, metavar="SECONDS", default=None)
    group.add_argument("--session-limit", type=_COUNT, metavar="N", default=None)
    group.add_argument(
        "--grants",
        type=_grants,
        metavar="JSON",
        default=None,
        help='e.g. \'{"read": {"resources": ["VIDEO_TOKEN"]}}\', or \'{"read": "all"}\' as in the '
        "official SDK's demos (a JSON string of an object works too)",
    )


def _arguments(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in ARGUMENT_NAMES if getattr(args, name) is not None}


# -- commands ------------------------------------------------------------------------


async def _authtokens(args: argparse.Namespace) -> int:
    """One call of the auth-token API; the token it returns (or the one deleted) as JSON."""
    async with open_client(args) as (client, _):
        tokens = client.authtokens
        if args.operation == "create":
            token = await tokens.create(**_arguments(args))
        elif args.operation == "get":
            token = await tokens.get(args.token)
        elif args.operation == "update":
            token = await tokens.update(args.token_or_key, **_arguments(args))
        else:
            await tokens.delete(args.token_or_key)
            _stdout_json({"deleted": args.token_or_key})
            return EXIT_OK
    _stdout_json(token.to_json())
    return EXIT_OK


async def _auth(args: argparse.Namespace) -> int:
    # decode checks that a token names this application, so it needs the app token too.
    auth = open_auth(args, ("app_token", "encryption_key"))
    if args.operation == "generate":
        _stdout_json({"token": auth.generate(**_arguments(args))})
    else:
        _stdout_json(auth.decode(args.token))
    return EXIT_OK


def _check_batch_paths(source: Path, out: Path) -> None:
    if not source.is_file():
        raise UsageError(f"INPUT: no such file: {source}")
    if out.is_dir():
        raise UsageError(f"--out: {out} is a folder, not a file")
    if not out.parent.is_dir():
        raise UsageError(f"--out: no such folder: {out.parent}")
    if out.exists() and out.samefile(source):
        raise UsageError("--out must not be the input file (nor a link to it)")


async def _batch(args: argparse.Namespace) -> int:
    from ._batch import BatchJob  # noqa: PLC0415 - only batch runs need it
    from ._journal import job_header, locked_journal  # noqa: PLC0415

    _check_batch_paths(args.input, args.out)
    job = BatchJob(
        args.kind,
        args.input,
        args.out,
        retry_unknown=args.retry_unknown,
        quiet=args.quiet,
        stderr=sys.stderr,
        show_progress=not args.quiet and sys.stderr.isatty(),
        grace=args.grace,
    )
    async with open_client(args) as (client, host):

        async def send(item: Any) -> object:
            if args.kind == "create":
                check_argument_names(item)  # a line's names, not create's own keywords
                return await client.authtokens.create(**item)
            await client.authtokens.delete(item)
            return None

        with locked_journal(args.out) as journal:
            job.prepare(job_header(args.kind, host, client.app_token))
            code = await job.run(
                journal, send, concurrency=args.concurrency, max_per_second=args.max_per_second
            )
    _say(job.summary())
    return code


async def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo  # noqa: PLC0415 - only the demo needs it

    return await run_demo(show_progress=sys.stderr.isatty(), batch_size=args.batch_size)


async def _fake_serve(args: argparse.Namespace) -> int:
    if args.host not in _LOOPBACK_HOSTS:
        raise UsageError("--host: the fake serves on loopback only (127.0.0.1, ::1, localhost)")
    fake = _fake_for(settings_from_env(), inspect=args.inspect)
    fake.latency = args.latency

    def announce(url: str) -> None:
        sys.stdout.write(url + "\n")
        sys.stdout.flush()
        _say(f"FakeZiggeo on {url} (app token {fake.app_token!r}); SIGINT or SIGTERM stops it")

    await serve_until_signalled(fake.asgi_app, args.host, args.port, announce)
    return EXIT_OK


# -- the parser ----------------------------------------------------------------------


def _add_batch_commands(commands: Any, fake_option: list[_Parser], api: str) -> None:
    batch = commands.add_parser("batch", help="create or delete many tokens from a JSONL file")
    batch_operations = batch.add_subparsers(dest="kind", required=True, metavar="OPERATION")
    for kind, what in (
        ("create", "one JSON object of create's arguments per line"),
        ("delete", 'one token per line: {"token": "..."} or the bare token'),
    ):
        job = batch_operations.add_parser(
            kind,
            help=f"{kind} many tokens ({what})",
            description=f"{kind.capitalize()} many tokens ({what}; {api}). RESULTS.jsonl is "
            "the job's journal: run the same command again to resume.",
            parents=fake_option,
        )
        job.add_argument("input", type=Path, metavar="INPUT.jsonl", help=what)
        job.add_argument(
            "--out",
            type=Path,
            required=True,
            metavar="RESULTS.jsonl",
            help="the journal: results, and what to skip on a resume",
        )
        job.add_argument(
            "--concurrency",
            type=_POSITIVE_INT,
            default=DEFAULT_CONCURRENCY,
            metavar="N",
            help="requests in flight at most (default: %(default)s)",
        )
        job.add_argument(
            "--max-per-second",
            type=_POSITIVE_FLOAT,
            default=None,
            metavar="R",
            help="requests started a second at most (default: no limit)",
        )
        job.add_argument(
            "--grace",
            type=_SECONDS,
            default=5.0,
            metavar="SECONDS",
            help="after a first Ctrl-C or SIGTERM, how long to wait for the requests in flight "
            "(default: %(default)g)",
        )
        job.add_argument(
            "--quiet",
            action="store_true",
            help="no progress bar, no list of outcome-unknown lines (the summary stays)",
        )
        job.add_argument(
            "--retry-unknown",
            action="store_true",
            help="send again the lines whose outcome is unknown (may duplicate a create)",
        )
        job.set_defaults(handler=_batch)


def _add_fake_commands(commands: Any) -> None:
    fake = commands.add_parser("fake", help="FakeZiggeo, for other processes and languages")
    fake_operations = fake.add_subparsers(dest="operation", required=True, metavar="OPERATION")
    serve = fake_operations.add_parser(
        "serve",
        help="serve FakeZiggeo over HTTP on loopback; prints the URL",
        description="Serve FakeZiggeo over HTTP on loopback, on uvicorn (pip install "
        "'ziggeo-async[serve]'), and print its URL; ZIGGEO_* credentials, when set, are the "
        "ones it expects. SIGINT or SIGTERM stops it.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="(default: %(default)s)")
    serve.add_argument(
        "--port", type=_PORT, default=0, help="0 picks a free port (default: %(default)s)"
    )
    serve.add_argument(
        "--latency",
        type=_SECONDS,
        default=0.0,
        metavar="SECONDS",
        help="wait this long before each answer (default: %(default)s)",
    )
    serve.add_argument(
        "--inspect",
        action="store_true",
        help="also serve GET /_fake/tokens and /_fake/requests (same credentials)",
    )
    serve.set_defaults(handler=_fake_serve)


def _fake_option() -> _Parser:
    option = _Parser(add_help=False)
    option.add_argument(
        "--fake",
        action="store_true",
        help="run on an embedded FakeZiggeo (in memory) instead of Ziggeo; "
        "ZIGGEO_FAKE=1 does the same",
    )
    return option


#: ``authtokens`` operations: name, what it does, and its positional argument.
_AUTHTOKENS_OPERATIONS: Final = (
    ("create", "create an auth token", None),
    ("get", "show an auth token", "token"),
    ("update", "change an auth token", "token_or_key"),
    ("delete", "delete an auth token", "token_or_key"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description=(
            "Ziggeo auth tokens from the shell. Credentials come from ZIGGEO_APP_TOKEN, "
            "ZIGGEO_PRIVATE_KEY, ZIGGEO_ENCRYPTION_KEY (and ZIGGEO_BASE_URL); a command "
            "without the ones it needs exits 2. --fake (or ZIGGEO_FAKE=1) runs it on an "
            "embedded FakeZiggeo instead."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="tracebacks and request logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fake_option = [_fake_option()]
    api = "needs ZIGGEO_APP_TOKEN and ZIGGEO_PRIVATE_KEY"

    authtokens = commands.add_parser("authtokens", help="the auth-token API")
    operations = authtokens.add_subparsers(dest="operation", required=True, metavar="OPERATION")
    for operation, what, positional in _AUTHTOKENS_OPERATIONS:
        command = operations.add_parser(
            operation, help=what, description=f"{what.capitalize()} ({api}).", parents=fake_option
        )
        if positional is not None:
            command.add_argument(positional)
        if operation in ("create", "update"):
            _add_argument_flags(command)
        command.set_defaults(handler=_authtokens)

    auth = commands.add_parser("auth", help="client auth tokens, made locally")
    auth_operations = auth.add_subparsers(dest="operation", required=True, metavar="OPERATION")
    generate = auth_operations.add_parser(
        "generate",
        help="make a client auth token",
        description="Make a client auth token, locally (needs ZIGGEO_APP_TOKEN and "
        "ZIGGEO_ENCRYPTION_KEY, not the private key).",
        parents=fake_option,
    )
    _add_argument_flags(generate)
    decode = auth_operations.add_parser(
        "decode",
        help="show a client auth token's payload",
        description="Show a client auth token's payload (needs ZIGGEO_APP_TOKEN and "
        "ZIGGEO_ENCRYPTION_KEY).",
        parents=fake_option,
    )
    decode.add_argument("token")
    auth.set_defaults(handler=_auth)

    _add_batch_commands(commands, fake_option, api)

    demo = commands.add_parser(
        "demo",
        help="a guided round on the embedded FakeZiggeo",
        description="A guided round on an embedded FakeZiggeo (in memory; no network and no "
        "credentials): create, get, update, generate, decode, a create_many/delete_many "
        "batch, delete, each step printed.",
    )
    demo.add_argument("--batch-size", type=_POSITIVE_INT, default=1000, help=argparse.SUPPRESS)
    demo.set_defaults(handler=_demo)

    _add_fake_commands(commands)
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
    # Given back in the end: main() also runs in process, and a logger left at DEBUG
    # would log every later request of the process.
    level_before = request_log.level
    log_handler = logging.StreamHandler(sys.stderr)
    log_handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    if args.debug:
        # Only the SDK's own logger: it writes method, cut path and status, never headers.
        request_log.addHandler(log_handler)
        request_log.setLevel(logging.DEBUG)
    try:
        with warnings.catch_warnings():  # and with it, the caller's showwarning comes back
            warnings.showwarning = _show_warning
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
        request_log.setLevel(level_before)


def _show_warning(message: Warning | str, *_where: object, **_also: object) -> None:
    """``warnings.showwarning`` for the command (its other arguments locate the source)."""
    # One line, like every other message: a user of the command has no source line to see.
    _say(f"warning: {' '.join(str(message).split())}")


def _fail(args: argparse.Namespace, error: BaseException, code: int, prefix: str = "") -> int:
    if args.debug:
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    message = prefix + (str(error) or type(error).__name__)
    _say(f"error: {' '.join(message.split())}")
    return code
