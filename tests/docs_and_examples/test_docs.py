"""Every ```python block in README.md and docs/*.md runs here, against a FakeZiggeo.

The preamble the blocks may rely on (docs/index.md states it for readers):

- ``https://srv-api.ziggeo.com`` and the eu-west-1 host are answered by a FakeZiggeo
  (intercepted in httpx2's transport, and with respx for legacy httpx clients, so the
  SDK's own HTTP client and pipeline run unchanged);
- its credentials are ``YOUR_APP_TOKEN``, ``YOUR_PRIVATE_KEY`` and
  ``YOUR_ENCRYPTION_KEY``, also set as ``ZIGGEO_APP_TOKEN``, ``ZIGGEO_PRIVATE_KEY`` and
  ``ZIGGEO_ENCRYPTION_KEY``;
- the blocks of one page run in order in one namespace, so a page may build on an
  earlier block; a block with top-level ``await`` runs in its own event loop;
- then every ``test_*`` function the page defined is called (a coroutine function in
  its own event loop), given the pytest fixtures its parameters name (the SDK's plugin
  fixtures among them), so a page can show a test and have it run.

A block that cannot run says why, in ``<!-- not-runnable: REASON -->`` on the line
just before its fence; it is still compiled, then reported as skipped with the reason.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import logging
import re
import shlex
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import httpx2
import pytest
import respx

import ziggeo_async
from scripts import gen_api_docs
from ziggeo_async._core import errors as errors_module
from ziggeo_async._request import retry as retry_module
from ziggeo_async.cli import build_parser
from ziggeo_async.testing import FakeZiggeo

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
CREDENTIALS = {
    "ZIGGEO_APP_TOKEN": "YOUR_APP_TOKEN",
    "ZIGGEO_PRIVATE_KEY": "YOUR_PRIVATE_KEY",
    "ZIGGEO_ENCRYPTION_KEY": "YOUR_ENCRYPTION_KEY",
}
ZIGGEO_HOSTS = ("srv-api.ziggeo.com", "srv-api-eu-west-1.ziggeo.com")
NOT_RUNNABLE = re.compile(r"<!--\s*not-runnable:\s*(?P<reason>\S.*?)\s*-->")
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^`]*)$")
#: Fence labels that would hide Python from this test; Python is labelled ``python``.
OTHER_PYTHON_LABELS = frozenset(("py", "python3", "py3", "pycon", "ipython"))


@attrs.frozen
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    label: str
    code: str
    not_runnable: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT).as_posix()}:{self.line}"


def blocks_of(page: Path) -> Iterator[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent = len(opening["indent"])
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        code = "\n".join(line[indent:] for line in lines[index + 1 : end]) + "\n"
        previous = next((text for text in reversed(lines[:index]) if text.strip()), "")
        marker = NOT_RUNNABLE.fullmatch(previous.strip())
        yield Block(
            page,
            index + 1,
            opening["info"].strip().split(" ")[0],
            code,
            None if marker is None else marker["reason"],
        )
        index = end + 1


ALL_BLOCKS = [block for page in PAGES for block in blocks_of(page)]
PYTHON_BLOCKS = [block for block in ALL_BLOCKS if block.label == "python"]
RUNNABLE_PAGES = sorted({block.page for block in PYTHON_BLOCKS if block.not_runnable is None})
#: Pages whose blocks do not run yet, and why. Strict xfail: once the page runs, the
#: test fails until its entry here is removed.
#: Pages whose blocks cannot run yet, with the reason (each an xfail that must fail).
NOT_YET_RUNNABLE: dict[Path, str] = {}


def page_param(page: Path) -> Any:
    reason = NOT_YET_RUNNABLE.get(page)
    marks = [] if reason is None else [pytest.mark.xfail(reason=reason, strict=True)]
    return pytest.param(page, marks=marks, id=page.relative_to(ROOT).as_posix())


def compiled(block: Block) -> Any:
    source = "\n" * (block.line) + block.code  # tracebacks point at the page's own lines
    return compile(
        source, str(block.page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )


@pytest.fixture
def fake_ziggeo(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeZiggeo]:
    """The preamble: Ziggeo's hosts answered by a FakeZiggeo with the documented credentials."""
    fake = FakeZiggeo(*CREDENTIALS.values())
    transport = fake.transport()

    async def answer(request: httpx.Request) -> httpx.Response:
        return await transport.handle_async_request(request)  # type: ignore[no-any-return]

    # respx patches legacy httpx only; the SDK's own httpx2 client is intercepted here,
    # at its transport, for Ziggeo's hosts alone.
    real_handle = httpx2.AsyncHTTPTransport.handle_async_request

    async def handle(self: httpx2.AsyncHTTPTransport, request: httpx2.Request) -> Any:
        if request.url.host in ZIGGEO_HOSTS:
            return await transport.handle_async_request(request)
        return await real_handle(self, request)

    monkeypatch.setattr(httpx2.AsyncHTTPTransport, "handle_async_request", handle)

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ZIGGEO_BASE_URL", raising=False)
    sdk_logger = logging.getLogger("ziggeo_async")
    level = sdk_logger.level
    try:
        with respx.mock(assert_all_called=False) as router:
            for host in ZIGGEO_HOSTS:
                router.route(host=host).mock(side_effect=answer)
            yield fake
    finally:
        sdk_logger.setLevel(level)  # a page may turn on DEBUG logging


def test_the_pages_hold_python_blocks() -> None:
    assert ROOT / "README.md" in RUNNABLE_PAGES
    assert len(PYTHON_BLOCKS) >= 20


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda block: block.where)
def test_python_is_labelled_python(block: Block) -> None:
    assert block.label.lower() not in OTHER_PYTHON_LABELS, (
        f"{block.where}: label Python blocks ```python so "
        "tests/docs_and_examples/test_docs.py runs them"
    )


@pytest.mark.parametrize("page", [page_param(page) for page in RUNNABLE_PAGES])
def test_page_runs(page: Path, fake_ziggeo: FakeZiggeo, request: pytest.FixtureRequest) -> None:
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem}"}
    for block in PYTHON_BLOCKS:
        if block.page != page or block.not_runnable is not None:
            continue
        code = compiled(block)
        if code.co_flags & inspect.CO_COROUTINE:
            asyncio.run(eval(code, namespace))
        else:
            exec(code, namespace)
    for name, test in list(namespace.items()):
        if name.startswith("test_") and inspect.isfunction(test):
            # A page's test may take fixtures, as the SDK's pytest plugin offers them.
            fixtures = {
                parameter: request.getfixturevalue(parameter)
                for parameter in inspect.signature(test).parameters
            }
            if inspect.iscoroutinefunction(test):
                asyncio.run(test(**fixtures))
            else:
                test(**fixtures)


NOT_RUNNABLE_BLOCKS = [block for block in PYTHON_BLOCKS if block.not_runnable is not None]


@pytest.mark.parametrize("block", NOT_RUNNABLE_BLOCKS, ids=lambda block: block.where)
def test_not_runnable_block_compiles_and_says_why(block: Block) -> None:
    compiled(block)
    pytest.skip(f"not runnable: {block.where}: {block.not_runnable}")


def test_a_not_runnable_marker_needs_a_reason(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- not-runnable: needs real credentials -->\n```python\nx = 1\n```\n\n"
        "<!-- not-runnable: -->\n```python\ny = 2\n```\n"
    )
    first, second = blocks_of(page)
    assert first.not_runnable == "needs real credentials"
    assert first.code == "x = 1\n"
    assert second.not_runnable is None  # an empty reason does not count: the block runs


# -- facts the pages copy from the code, kept in step -----------------------------------


def markdown_table(page: Path, first_header: str) -> list[list[str]]:
    """The rows (header included, rule left out) of the table whose header starts so."""
    rows: list[list[str]] = []
    for line in page.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if rows and not line.startswith("|"):
            break
        is_rule = set(line) <= set("|- ")
        if (rows or (line.startswith("|") and cells[0] == first_header)) and not is_rule:
            rows.append(cells)
    return rows


def test_retry_table_is_the_policys_own() -> None:
    docstring = inspect.getdoc(retry_module) or ""
    table = docstring.split("\n\n")[2].splitlines()  # the third paragraph: the table
    assert table[0].startswith("=")
    documented = [re.split(r"\s{2,}", line.strip()) for line in table if line[0] != "="]
    assert markdown_table(ROOT / "docs" / "errors.md", "what happened") == documented


def test_exception_tree_is_the_modules_own() -> None:
    docstring = inspect.getdoc(errors_module) or ""
    tree = docstring.split("::\n\n")[1].split("\n\n")[0]
    page = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    (text_block,) = [
        block.code
        for block in ALL_BLOCKS
        if block.label == "text" and block.page.name == "errors.md"
    ]
    assert textwrap.dedent(tree).strip() == text_block.strip()
    assert "ZiggeoError" in page


LINK = re.compile(r"\]\((?P<target>[^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_relative_links_lead_somewhere(page: Path) -> None:
    missing = [
        match["target"]
        for match in LINK.finditer(page.read_text(encoding="utf-8"))
        if "://" not in match["target"] and not (page.parent / match["target"]).exists()
    ]
    assert missing == []


def test_readme_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {match["target"] for match in LINK.finditer(readme)}
    pages = {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")}
    assert pages <= linked


def test_api_reference_is_current() -> None:
    generated = gen_api_docs.render()
    current = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert current == generated, "docs/api.md is stale: run python scripts/gen_api_docs.py"


def test_api_reference_names_every_public_name() -> None:
    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    names = [name for name in ziggeo_async.__all__ if not name.startswith("_")]
    names += ["AsyncAuthTokens", "Auth", "SyncAuthTokens", "PortalIterator", "Ziggeo", "FakeZiggeo"]
    assert [name for name in names if f"### `{name}`" not in page] == []


def shell_commands(program: str) -> Iterator[tuple[Block, list[str]]]:
    """Each ``program ...`` command in the pages' ``sh`` blocks, as its argument list."""
    for block in ALL_BLOCKS:
        if block.label != "sh":
            continue
        for command in block.code.replace("\\\n", " ").splitlines():
            words = shlex.split(command, comments=True)
            while words and "=" in words[0]:  # VARIABLE=value prefixes
                words.pop(0)
            if words and words[0] == program:
                yield block, words[1:]


CLI_COMMANDS = list(shell_commands("ziggeo-async"))


def test_the_pages_show_the_cli() -> None:
    assert {arguments[0] for _, arguments in CLI_COMMANDS} >= {
        "authtokens",
        "auth",
        "batch",
        "demo",
        "fake",
    }


@pytest.mark.parametrize(
    ("block", "arguments"), CLI_COMMANDS, ids=[" ".join(args[:2]) for _, args in CLI_COMMANDS]
)
def test_cli_commands_in_the_pages_parse(block: Block, arguments: list[str]) -> None:
    try:
        build_parser().parse_args(arguments)
    except SystemExit:
        pytest.fail(f"{block.where}: ziggeo-async {shlex.join(arguments)} does not parse")
