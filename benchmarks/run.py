"""Run every scenario and print one markdown table of medians and same-run ratios.

    nox -s bench                       # full counts (several minutes)
    BENCH_QUICK=1 nox -s bench         # small counts, under a minute
    python benchmarks/run.py --write-readme   # also replace the table in benchmarks/README.md

Counts come from the environment: ``BENCH_COUNT`` (creates per batch run, default
10,000), ``BENCH_SECONDS`` (wall-time cap per run, default 8), ``BENCH_REPEATS``
(runs per contender, default 3), ``BENCH_MEMORY_COUNTS`` (default ``10000,100000``).
A run stops at its count or its cap, whichever comes first; rates are per request,
so a capped run of a slow contender measures the same rate on fewer creates.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
QUICK = os.environ.get("BENCH_QUICK") == "1"
COUNT = int(os.environ.get("BENCH_COUNT", "600" if QUICK else "10000"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "1.5" if QUICK else "8"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "1" if QUICK else "3"))
MEMORY_COUNTS = [
    int(count)
    for count in os.environ.get(
        "BENCH_MEMORY_COUNTS", "1000,10000" if QUICK else "10000,100000"
    ).split(",")
]
SERVER_CPU = (os.cpu_count() or 1) - 1 if (os.cpu_count() or 1) > 1 else None
# The client is left to the scheduler: on a machine shared with other work, pinning it
# to one core made it wait for that core while the other was idle.
CLIENT_CPU = None
MIB = 1024


@dataclass
class Run:
    n: int
    distinct: int
    wall: float
    cpu: float
    maxrss_kib: int
    sent: int

    @property
    def rate(self) -> float:
        return self.n / self.wall

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.n * 1e6


@contextmanager
def stub(latency_ms: float, tls: tuple[Path, Path] | None) -> Iterator[tuple[str, list[int]]]:
    """The stub server in its own process; yields its URL and a list to add sent counts to."""
    command = [sys.executable, str(HERE / "stub_server.py"), "--latency-ms", str(latency_ms)]
    if tls:
        command += ["--cert", str(tls[0]), "--key", str(tls[1])]
    if SERVER_CPU is not None:
        command += ["--cpu", str(SERVER_CPU)]
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    assert server.stdin is not None
    port = int(server.stdout.readline().split()[1])
    sent: list[int] = []
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}", sent
    finally:
        server.stdin.close()
        served = int(server.stdout.readline().split()[1])
        server.wait(timeout=10)
    # Every contender reports what it sent; the server counts what it answered.
    if served != sum(sent):
        raise SystemExit(f"the stub answered {served} requests, the clients sent {sum(sent)}")


def contender(
    name: str, url: str, sent: list[int], *, count: int = COUNT, plain: bool = False, **env: str
) -> Run:
    command = [
        sys.executable,
        str(HERE / "contenders.py"),
        name,
        "--url",
        url,
        "--count",
        str(count),
        "--seconds",
        str(SECONDS if name != "ours_memory" else 600),
    ]
    if plain:
        command.append("--plain")
    if CLIENT_CPU is not None:
        command += ["--cpu", str(CLIENT_CPU)]
    output = subprocess.run(
        command, check=True, capture_output=True, text=True, env={**os.environ, **env}
    ).stdout
    run = Run(**json.loads(output.strip().splitlines()[-1]))
    sent.append(run.sent)
    if run.distinct not in (run.n, 0):  # 0: the memory run keeps no tokens
        raise SystemExit(f"{name}: {run.n} creates but {run.distinct} distinct tokens")
    return run


def median_run(runs: list[Run]) -> dict[str, float]:
    return {
        "n": statistics.median(run.n for run in runs),
        "rate": statistics.median(run.rate for run in runs),
        "cpu_us": statistics.median(run.cpu_us for run in runs),
        "rss_mib": statistics.median(run.maxrss_kib / MIB for run in runs),
    }


BATCH_CONTENDERS = [
    ("official_seq", "official SDK, sequential", {}),
    ("official_threads", "official SDK, 16 threads", {}),
    ("raw_httpx2", "stock httpx2.AsyncClient, 64 in flight", {}),
    ("ours", "ours, plain install, create_many(64)", {"plain": True}),
    ("ours", "ours + [fast], create_many(64)", {}),
    ("bare_aiohttp", "bare aiohttp loop, 64 in flight", {}),
]


def batch_scenarios(trust: Path, tls: tuple[Path, Path]) -> dict[str, dict[str, dict[str, float]]]:
    results: dict[str, dict[str, dict[str, float]]] = {}
    for secure in (False, True):
        for latency in (0, 20):
            scenario = f"batch {'TLS' if secure else 'HTTP'} {latency} ms"
            print(f"# {scenario}", file=sys.stderr, flush=True)
            runs: dict[str, list[Run]] = {label: [] for _, label, _ in BATCH_CONTENDERS}
            with stub(latency, tls if secure else None) as (url, sent):
                for _ in range(REPEATS):
                    for name, label, options in BATCH_CONTENDERS:
                        runs[label].append(
                            contender(name, url, sent, SSL_CERT_FILE=str(trust), **options)
                        )
            results[scenario] = {label: median_run(value) for label, value in runs.items()}
    return results


def sync_scenarios(trust: Path, tls: tuple[Path, Path]) -> dict[str, dict[str, dict[str, float]]]:
    results: dict[str, dict[str, dict[str, float]]] = {}
    sys.path.insert(0, str(HERE.parent))
    import ziggeo_async

    if not hasattr(ziggeo_async, "SyncZiggeo"):
        print("# sync: SyncZiggeo is not in this tree; skipped", file=sys.stderr)
        return results
    for secure in (False, True):
        scenario = f"sync {'TLS' if secure else 'HTTP'} 0 ms"
        print(f"# {scenario}", file=sys.stderr, flush=True)
        labels = {
            "official_seq": "official SDK, sequential",
            "ours_sync": "ours: SyncZiggeo, sequential",
            "ours_sync_fast": "ours: SyncZiggeo + [fast] (http_backend='aiohttp'), sequential",
            "ours_portal": "AsyncZiggeo via bare BlockingPortal.call",
            "raw_httpx2_sequential": "stock httpx2.AsyncClient, sequential, no portal",
            "raw_httpx2_blocking": "stock httpx2.Client (blocking), sequential",
        }
        runs: dict[str, list[Run]] = {label: [] for label in labels.values()}
        with stub(0, tls if secure else None) as (url, sent):
            for _ in range(REPEATS):
                for name, label in labels.items():
                    runs[label].append(contender(name, url, sent, SSL_CERT_FILE=str(trust)))
        results[scenario] = {label: median_run(value) for label, value in runs.items()}
    return results


def memory_scenario() -> dict[str, dict[str, float]]:
    print("# memory", file=sys.stderr, flush=True)
    results: dict[str, dict[str, float]] = {}
    with stub(0, None) as (url, sent):
        for count in MEMORY_COUNTS:
            run = contender("ours_memory", url, sent, count=count)
            results[f"{count:,} creates"] = median_run([run])
    return results


def generate_scenario() -> dict[str, float]:
    print("# generate", file=sys.stderr, flush=True)
    env = {**os.environ, "BENCH_GENERATE_ROUNDS": "5" if QUICK else "25"}
    output = subprocess.run(
        [sys.executable, str(HERE / "generate.py")],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    return dict(json.loads(output))


def facade_overhead() -> dict[str, float] | None:
    """SyncZiggeo's own per-call overhead beside a bare portal hop, by bench_sync.py's rounds.

    Each round is a fresh process (see bench_sync.py for why); overhead is the sync
    call's median minus the async call's, both on an in-process transport.
    """
    script = HERE / "bench_sync.py"
    if not script.exists():
        return None
    print("# facade overhead", file=sys.stderr, flush=True)
    rounds: list[list[float]] = []
    for _ in range(3 if QUICK else 7):
        output = subprocess.run(
            [sys.executable, str(script), "--one-round", "--calls", "300" if QUICK else "1000"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rounds.append(json.loads(output.strip().splitlines()[-1]))
    async_s, sync_s, hop_s = (statistics.median(r[i] for r in rounds) for i in range(3))
    return {"overhead_us": (sync_s - async_s) * 1e6, "hop_us": hop_s * 1e6}


def verdict(value: float, target: float, *, at_most: bool = False) -> str:
    met = value <= target if at_most else value >= target
    return "met" if met else "**missed**"


def table(results: dict[str, Any]) -> str:
    rows = [
        "| scenario | contender | n | req/s | client CPU µs/req | ratio (same run) | target |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    rows += generate_rows(results["generate"])
    rows += batch_rows(results["batch"])
    rows += sync_rows(results["sync"], results.get("facade"))
    rows += memory_rows(results["memory"])
    return "\n".join(rows)


def generate_rows(generate: dict[str, float]) -> list[str]:
    rows = []
    official = generate["official"]
    for name, label in (
        ("official", "official SDK `Auth.generate`"),
        ("floor", "floor: cryptography, key and algorithm made once"),
        ("ours", "ours `auth.generate`"),
        ("ours_many", "ours `auth.generate_many(1000)`"),
    ):
        ratio = official / generate[name]
        target = {"ours": 2.5, "ours_many": 3.0}.get(name)
        rows.append(
            f"| generate | {label} | | {1e6 / generate[name]:,.0f} tokens/s | "
            f"{generate[name]:.2f} µs/token | {ratio:.2f}x official | "
            + (f"≥ {target}x: {verdict(ratio, target)} |" if target else "|")
        )
    return rows


def _batch_target(
    scenario: str, label: str, figures: dict[str, float], peers: dict[str, Any]
) -> str:
    """The issue's target for this row, and whether it was met (same-run ratios)."""
    rate_ratio = figures["rate"] / peers["threads"]["rate"]
    if scenario == "batch HTTP 20 ms" and label.startswith("ours, plain"):
        return f"≥ 1.5x official/16 threads: {verdict(rate_ratio, 1.5)}"
    if scenario == "batch HTTP 20 ms" and label.startswith("ours + [fast]"):
        bare_ratio = figures["rate"] / peers["bare"]["rate"]
        return (
            f"≥ 3.5x official/16 threads: {verdict(rate_ratio, 3.5)}; "
            f"≥ 0.9x bare aiohttp's rate ({bare_ratio:.2f}x): {verdict(bare_ratio, 0.9)}"
        )
    if scenario == "batch HTTP 0 ms" and label.startswith("ours, plain"):
        cpu_ratio = figures["cpu_us"] / peers["httpx2"]["cpu_us"]
        return (
            f"CPU ≤ 1.15x stock httpx2 ({cpu_ratio:.2f}x): {verdict(cpu_ratio, 1.15, at_most=True)}"
        )
    if scenario == "batch HTTP 0 ms" and label.startswith("ours + [fast]"):
        cpu_ratio = figures["cpu_us"] / peers["bare"]["cpu_us"]
        return (
            f"CPU ≤ 2.0x bare aiohttp ({cpu_ratio:.2f}x): {verdict(cpu_ratio, 2.0, at_most=True)}"
        )
    return ""


def batch_rows(batch: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    rows = []
    for scenario, contenders in batch.items():
        peers = {
            "threads": contenders["official SDK, 16 threads"],
            "bare": contenders["bare aiohttp loop, 64 in flight"],
            "httpx2": contenders["stock httpx2.AsyncClient, 64 in flight"],
        }
        for label, figures in contenders.items():
            ratio = f"{figures['rate'] / peers['threads']['rate']:.2f}x official/16 threads"
            target = _batch_target(scenario, label, figures, peers)
            rows.append(
                f"| {scenario} | {label} | {figures['n']:,.0f} | {figures['rate']:,.0f} | "
                f"{figures['cpu_us']:,.0f} | {ratio} | {target} |"
            )
    return rows


def sync_rows(
    sync: dict[str, dict[str, dict[str, float]]], facade: dict[str, float] | None
) -> list[str]:
    rows = []
    for scenario, contenders in sync.items():
        official_seq = contenders["official SDK, sequential"]
        for label, figures in contenders.items():
            rate_ratio = figures["rate"] / official_seq["rate"]
            target = ""
            if scenario.startswith("sync TLS") and label.startswith("ours: SyncZiggeo"):
                target = f"≥ 30x: {verdict(rate_ratio, 30)}"
            rows.append(
                f"| {scenario} | {label} | {figures['n']:,.0f} | {figures['rate']:,.0f} | "
                f"{figures['cpu_us']:,.0f} | {rate_ratio:.2f}x official sequential | {target} |"
            )
    if facade:
        ratio = facade["overhead_us"] / facade["hop_us"]
        rows.append(
            f"| sync facade | SyncZiggeo per-call overhead {facade['overhead_us']:.1f} µs; "
            f"bare BlockingPortal.call {facade['hop_us']:.1f} µs | | | | {ratio:.2f}x bare hop | "
            f"≤ 1.1x: {verdict(ratio, 1.1, at_most=True)} |"
        )
    return rows


def memory_rows(memory: dict[str, dict[str, float]]) -> list[str]:
    rows = []
    peaks = [figures["rss_mib"] for figures in memory.values()]
    for label, figures in memory.items():
        target = ""
        if figures is list(memory.values())[-1]:
            flat = max(peaks) / min(peaks)
            target = (
                f"≤ 80 MiB: {verdict(figures['rss_mib'], 80, at_most=True)}; "
                f"{flat:.2f}x the smallest run"
            )
        rows.append(
            f"| memory: create_many(64), peak RSS | {label} | {figures['n']:,.0f} | "
            f"{figures['rate']:,.0f} | {figures['cpu_us']:,.0f} | "
            f"{figures['rss_mib']:.1f} MiB | {target} |"
        )
    return rows


def machine() -> str:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        model = found.group(1).strip() if found else ""
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({model}), "
        f"Python {platform.python_version()}; counts {COUNT:,} (cap {SECONDS:g} s per run), "
        f"{REPEATS} run(s) per contender, memory {', '.join(f'{c:,}' for c in MEMORY_COUNTS)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write-readme", action="store_true")
    options = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from tls import make_certificate

    with tempfile.TemporaryDirectory() as folder:
        cert, key, trust = make_certificate(Path(folder))
        results: dict[str, Any] = {"generate": generate_scenario()}
        results["batch"] = batch_scenarios(trust, (cert, key))
        results["sync"] = sync_scenarios(trust, (cert, key))
        results["facade"] = facade_overhead()
        results["memory"] = memory_scenario()
    output = f"Machine: {machine()}\n\n{table(results)}\n"
    print(output)
    if options.write_readme:
        readme = HERE / "README.md"
        text = readme.read_text()
        start, end = "<!-- bench-table -->", "<!-- /bench-table -->"
        before, _, rest = text.partition(start)
        _, _, after = rest.partition(end)
        readme.write_text(f"{before}{start}\n{output}{end}{after}")


if __name__ == "__main__":
    main()
