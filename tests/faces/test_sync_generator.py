"""The generated facade: current, in parity with the async classes, and generic enough
for what comes next (methods returning async iterators)."""

from __future__ import annotations

import ast
import gc
import importlib.util
import inspect
import re
import subprocess
import sys
import threading
import typing
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import anyio
import attrs
import pytest
import typing_extensions

from ziggeo_async import AsyncZiggeo, SyncZiggeo
from ziggeo_async._faces.portal import PORTAL_THREAD_NAME, PortalIterator, SyncClientBase

REPOSITORY = Path(__file__).resolve().parents[2]
GENERATOR_PATH = REPOSITORY / "scripts" / "generate_sync.py"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_sync", GENERATOR_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate_sync"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


generate_sync = _load_generator()


# -- parity: written independently of the generator, from the async classes ----------
def _own_members(cls: type) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[:-1]):
        members.update(vars(klass))
    return {name: value for name, value in members.items() if not name.startswith("_")}


def _is_async_api(value: object) -> bool:
    if inspect.iscoroutinefunction(value) or inspect.isasyncgenfunction(value):
        return True
    if not inspect.isfunction(value):
        return False
    returned = typing.get_type_hints(value, localns=_namespace(value)).get("return")
    origin = typing.get_origin(returned) or returned
    return isinstance(origin, type) and issubclass(origin, AsyncIterator)


def _yielded(async_iterator_type: Any) -> Any:
    """What ``anext()`` returns, read off ``__anext__`` with the type's own arguments bound."""
    origin = typing.get_origin(async_iterator_type) or async_iterator_type
    arguments = typing.get_args(async_iterator_type)
    if origin.__module__ == "collections.abc":
        return arguments[0]
    returned = typing.get_type_hints(origin.__anext__, localns=_namespace(origin))["return"]
    bound = dict(zip(origin.__parameters__, arguments, strict=True))
    return returned[tuple(bound[parameter] for parameter in returned.__parameters__)]


def _namespace(value: Any) -> dict[str, Any]:
    """Names the annotations use, including those imported only for type checking."""
    package = value.__module__.split(".", maxsplit=1)[0]
    return {**vars(sys.modules[package]), "Unpack": typing_extensions.Unpack}


def _sync_doc(value: Any) -> str | None:
    text = inspect.getdoc(value)
    return None if text is None else generate_sync.sync_wording(text)


def _parameters(function: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def _method_problems(where: str, value: Any, twin: Any) -> list[str]:
    if isinstance(value, property):
        if not isinstance(twin, property) or inspect.getdoc(twin) != _sync_doc(value):
            return [f"{where}: the twin is not a property with the same docstring"]
        return []
    if not _is_async_api(value):
        return [f"{where}: not an async method, so parity cannot be judged"]
    problems = []
    if _parameters(twin) != _parameters(value):
        problems.append(f"{where}: parameters differ: {_parameters(twin)}")
    if inspect.getdoc(twin) != _sync_doc(value):
        problems.append(f"{where}: docstrings differ")
    async_hints = typing.get_type_hints(value, localns=_namespace(value))
    sync_hints = typing.get_type_hints(twin, localns=_namespace(twin))
    async_return, sync_return = async_hints.pop("return", None), sync_hints.pop("return", None)
    if inspect.iscoroutinefunction(value):
        same_return = async_return == sync_return
    else:  # AsyncIterator[X] becomes PortalIterator[X]
        same_return = (_yielded(async_return),) == typing.get_args(sync_return)
    async_hints.pop("self", None)
    if async_hints != sync_hints or not same_return:
        problems.append(f"{where}: annotations differ")
    return problems


def parity_problems(async_class: type, sync_class: type) -> list[str]:
    """Every public async member without an exact sync twin, as readable lines."""
    problems: list[str] = []
    sync_members = _own_members(sync_class)
    for name, value in _own_members(async_class).items():
        where = f"{async_class.__name__}.{name}"
        if name in generate_sync.LIFECYCLE:
            if not hasattr(sync_class, generate_sync.LIFECYCLE[name]):
                problems.append(f"{where}: no {generate_sync.LIFECYCLE[name]} on the sync client")
        elif name not in sync_members:
            problems.append(f"{where}: no sync twin")
        else:
            problems.extend(_method_problems(where, value, sync_members[name]))
    resources = typing.get_type_hints(async_class, localns=_namespace(async_class))
    for name, resource in resources.items():
        sync_resource = typing.get_type_hints(sync_class).get(name)
        if sync_resource is None:
            problems.append(f"{async_class.__name__}.{name}: the sync client has no such resource")
        elif sync_resource is not resource:
            problems.extend(parity_problems(resource, sync_resource))
    return problems


def test_checked_in_facade_is_current() -> None:
    done = subprocess.run(
        [sys.executable, str(GENERATOR_PATH), "--check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPOSITORY,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "up to date" in done.stdout


def test_every_async_member_has_an_exact_sync_twin() -> None:
    assert parity_problems(AsyncZiggeo, SyncZiggeo) == []
    # The parity check is not vacuous: it walks the methods that matter.
    assert {"create", "get", "update", "delete", "destroy"} <= set(
        _own_members(type(SyncZiggeo("a", "k").authtokens))
    )


def test_constructor_matches_the_async_client() -> None:
    assert _parameters(SyncZiggeo.__init__) == _parameters(AsyncZiggeo.__init__)
    assert typing.get_type_hints(SyncZiggeo.__init__) == typing.get_type_hints(AsyncZiggeo.__init__)


def test_facade_is_headed_generated_and_only_generated() -> None:
    source = (REPOSITORY / "ziggeo_async" / "_faces" / "sync.py").read_text("utf-8")
    assert source.startswith('"""GENERATED by scripts/generate_sync.py')
    assert "do not edit" in source.splitlines()[0]


#: Wording that is right for async code only; written here, apart from the generator's table.
ASYNC_ONLY_WORDING = re.compile(
    r"(?<!ziggeo-)\b(async|await|awaits|awaited|aclose|coroutines?|anext|aiter)\b"
    r"|__a(enter|exit|iter|next)__",
    re.IGNORECASE,
)


def _docstrings(source: str) -> dict[str, str]:
    """Every docstring of a module, by the qualified name of what it documents."""
    found: dict[str, str] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                found[name] = ast.get_docstring(child) or ""
                visit(child, f"{name}.")

    visit(ast.parse(source), "")
    return found


def test_facade_docstrings_read_for_sync_code() -> None:
    source = (REPOSITORY / "ziggeo_async" / "_faces" / "sync.py").read_text("utf-8")
    docstrings = _docstrings(source)
    async_worded = {
        name: ASYNC_ONLY_WORDING.findall(text)
        for name, text in docstrings.items()
        if ASYNC_ONLY_WORDING.search(text)
    }
    assert async_worded == {}
    # Not vacuous: the docstrings that had async wording are there, in sync words.
    assert "with ... as results: for result in results" in docstrings["SyncAuthTokens.create_many"]
    assert "closed by ``close()`` or ``with``" in docstrings["SyncZiggeo"]


@pytest.mark.parametrize(
    ("async_text", "sync_text"),
    [
        (
            "Use it as ``async with ... as results: async for result in results``.",
            "Use it as ``with ... as results: for result in results``.",
        ),
        ("closed by ``aclose()`` or ``async with``.", "closed by ``close()`` or ``with``."),
        ("``await client.aclose()`` closes it", "``client.close()`` closes it"),
        ("The async client; asyncio only.", "The client; asyncio only."),
        ("``__aenter__`` and ``__aexit__``", "``__enter__`` and ``__exit__``"),
        ("an async iterator of results", "an iterator of results"),
        ("An async context manager, an async client", "A context manager, a client"),
    ],
)
def test_async_wording_becomes_sync_wording(async_text: str, sync_text: str) -> None:
    assert generate_sync.sync_wording(async_text) == sync_text


@pytest.mark.parametrize(
    "text", ["Returns a coroutine.", "Both async and sync clients.", "Awaits the reply."]
)
def test_async_wording_without_a_sync_form_stops_the_generator(text: str) -> None:
    with pytest.raises(generate_sync.GenerationError, match="reword"):
        generate_sync.sync_wording(text)


# -- a small async client of our own, to generate from ------------------------------
closed_on: list[str] = []
closed_event = threading.Event()


@attrs.frozen
class DummyConfig:
    label: str

    @classmethod
    def from_arguments(cls, label: str = "dummy") -> DummyConfig:
        if not label:
            raise ValueError("label must not be empty")
        return cls(label)


class Counter:
    """An async iterator that is also an async context manager, like the batch methods'."""

    def __init__(self, limit: int, delay: float) -> None:
        self._next = 0
        self._limit = limit
        self._delay = delay

    def __aiter__(self) -> Counter:
        return self

    async def __anext__(self) -> int:
        if self._next >= self._limit:
            raise StopAsyncIteration
        await anyio.sleep(self._delay)
        self._next += 1
        return self._next - 1

    async def aclose(self) -> None:
        closed_on.append(threading.current_thread().name)
        closed_event.set()

    async def __aenter__(self) -> Counter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class AsyncNumbers:
    """Numbers, computed on the loop."""

    async def double(self, value: int, *, delay: float = 0.0) -> int:
        """Twice ``value``."""
        await anyio.sleep(delay)
        return 2 * value

    def count(self, limit: int, *, delay: float = 0.0) -> AsyncIterator[int]:
        """``0 .. limit - 1``, one at a time."""
        return Counter(limit, delay)

    async def squares(self, limit: int) -> AsyncIterator[int]:  # an async generator
        """``0, 1, 4, ...``, one at a time."""
        for value in range(limit):
            yield value * value


class AsyncDummy:
    """A client with one resource."""

    numbers: AsyncNumbers

    def __init__(self, label: str = "dummy") -> None:
        self._assemble(DummyConfig.from_arguments(label))

    @classmethod
    def _from_config(cls, config: DummyConfig) -> AsyncDummy:
        client = cls.__new__(cls)
        cls._assemble(client, config)
        return client

    def _assemble(self, config: DummyConfig) -> None:
        self.label = config.label
        self.numbers = AsyncNumbers()

    async def aclose(self) -> None:
        """Nothing to close."""


def _load_generated(source: str, path: Path) -> ModuleType:
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # type hints are resolved in the module's namespace
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def dummy_module(tmp_path: Path) -> ModuleType:
    source = generate_sync.generate(AsyncDummy, tmp_path / "dummy_sync.py")
    return _load_generated(source, tmp_path / "dummy_sync.py")


@pytest.fixture
def dummy_client(dummy_module: ModuleType) -> Iterator[Any]:
    closed_on.clear()
    closed_event.clear()
    with dummy_module.SyncDummy() as client:
        yield client


def test_dummy_twin_is_in_parity_and_works(dummy_module: ModuleType, dummy_client: Any) -> None:
    assert parity_problems(AsyncDummy, dummy_module.SyncDummy) == []
    assert issubclass(dummy_module.SyncDummy, SyncClientBase)
    assert dummy_client.numbers.double(21) == 42


def test_constructor_errors_come_from_the_config_before_any_thread(
    dummy_module: ModuleType,
) -> None:
    with pytest.raises(ValueError, match="label"):
        dummy_module.SyncDummy(label="")
    assert PORTAL_THREAD_NAME not in [thread.name for thread in threading.enumerate()]


def test_new_async_method_without_regenerated_twin_fails_check_and_parity(
    tmp_path: Path, dummy_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked_in = tmp_path / "dummy_sync.py"
    assert generate_sync.check(AsyncDummy, checked_in) == []

    async def triple(self: AsyncNumbers, value: int) -> int:
        """Three times ``value``."""
        return 3 * value

    monkeypatch.setattr(AsyncNumbers, "triple", triple, raising=False)
    diff = "".join(generate_sync.check(AsyncDummy, checked_in))
    assert "+    def triple(self, value: int) -> int:" in diff
    assert parity_problems(AsyncDummy, dummy_module.SyncDummy) == [
        "AsyncNumbers.triple: no sync twin"
    ]


def test_changed_signature_fails_parity(
    dummy_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def double(self: AsyncNumbers, value: int, *, delay: float = 1.0) -> int:
        """Twice ``value``."""
        return 2 * value

    monkeypatch.setattr(AsyncNumbers, "double", double)
    (problem,) = parity_problems(AsyncDummy, dummy_module.SyncDummy)
    assert problem.startswith("AsyncNumbers.double: parameters differ")


def test_method_returning_async_iterator_becomes_a_sync_iterator(dummy_client: Any) -> None:
    numbers = dummy_client.numbers.count(4)
    assert isinstance(numbers, PortalIterator)
    assert list(numbers) == [0, 1, 2, 3]
    assert list(dummy_client.numbers.squares(4)) == [0, 1, 4, 9]
    hints = typing.get_type_hints(type(dummy_client.numbers).count)
    assert hints["return"] == PortalIterator[int]


def test_leaving_the_with_block_early_closes_the_async_iterator_on_the_loop(
    dummy_client: Any,
) -> None:
    with dummy_client.numbers.count(1000, delay=0.001) as numbers:
        assert next(numbers) == 0
        assert closed_on == []
    assert closed_on == [PORTAL_THREAD_NAME]
    assert list(numbers) == []  # closed: no more items
    with dummy_client.numbers.squares(1000) as squares:  # an async generator this time
        assert next(squares) == 0
    assert list(squares) == []


def test_dropping_the_sync_iterator_early_closes_the_async_one(dummy_client: Any) -> None:
    numbers = dummy_client.numbers.count(1000)
    assert next(numbers) == 0
    del numbers
    gc.collect()
    assert closed_event.wait(10)
    assert closed_on == [PORTAL_THREAD_NAME]


# -- what the generator refuses ------------------------------------------------------
class AsyncResource:
    async def ping(self) -> None:
        """An async member, so the resource needs a twin."""


class AsyncWithPlainMethod(AsyncResource):
    def total(self) -> int:
        return 1


class AsyncWithStatic(AsyncResource):
    @staticmethod
    async def make() -> int:
        return 1


class AsyncWithDunder(AsyncResource):
    def __aiter__(self) -> AsyncWithDunder:
        return self


class AsyncWithOddDefault(AsyncResource):
    async def fetch(self, when: object = object()) -> None:
        """An object() default has no source form."""


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        (AsyncWithPlainMethod, "plain method"),
        (AsyncWithStatic, "static and class methods"),
        (AsyncWithDunder, "__aiter__"),
        (AsyncWithOddDefault, "neither a literal"),
    ],
)
def test_generator_stops_at_what_it_cannot_translate(
    resource: type, message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(AsyncDummy.__annotations__, "numbers", resource)
    with pytest.raises(generate_sync.GenerationError, match=message):
        generate_sync.generate(AsyncDummy, tmp_path / "refused.py")


def test_iterator_outliving_its_client_closes_quietly(dummy_module: ModuleType) -> None:
    client = dummy_module.SyncDummy()
    numbers = client.numbers.count(10)
    assert next(numbers) == 0
    assert "open" in repr(numbers)
    client.close()
    numbers.close()  # the loop, and the async iterator with it, are gone already
    assert "done" in repr(numbers)
    with pytest.raises(StopIteration):
        next(numbers)
