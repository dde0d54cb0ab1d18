"""What the optional OpenTelemetry support costs a request when no tracer provider is set.

    python benchmarks/bench_tracing.py [--rounds 7] [--calls 3000]

Each round runs two fresh processes, alternating which goes first: one with
opentelemetry-api importable (installed, no provider set: the common case of a
library's user), one with it hidden from the import system (as if not installed).
Each times ``calls`` creates on an in-process ``httpx2.MockTransport`` (no sockets, so
the SDK's own CPU is all there is to measure) and reports process CPU per create.
Prints the medians and their ratio; the target is at most 1.03.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_RATIO = 1.03


def child(calls: int, hide: bool) -> None:
    if hide:
        sys.modules["opentelemetry"] = None  # type: ignore[assignment]  # import now fails
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import httpx2

    from ziggeo_async import AsyncZiggeo

    def handle(_request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"token": "bench-token", "session_limit": 1})

    async def main() -> float:
        lent = httpx2.AsyncClient(transport=httpx2.MockTransport(handle))
        async with AsyncZiggeo("app", "key", http_client=lent) as client:
            for _ in range(200):  # warm up
                await client.authtokens.create(session_limit=1)
            started = time.process_time()
            for _ in range(calls):
                await client.authtokens.create(session_limit=1)
            return (time.process_time() - started) / calls

    per_call = asyncio.run(main())
    print(
        json.dumps({"cpu_us": per_call * 1e6, "otel": sys.modules.get("opentelemetry") is not None})
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--child", choices=["shown", "hidden"])
    args = parser.parse_args()
    if args.child:
        child(args.calls, hide=args.child == "hidden")
        return
    results: dict[str, list[float]] = {"shown": [], "hidden": []}
    for round_number in range(args.rounds):
        order = ["shown", "hidden"] if round_number % 2 == 0 else ["hidden", "shown"]
        for which in order:
            output = subprocess.run(
                [sys.executable, __file__, "--child", which, "--calls", str(args.calls)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            run = json.loads(output.strip().splitlines()[-1])
            if run["otel"] != (which == "shown"):
                raise SystemExit(f"{which}: opentelemetry imported = {run['otel']}")
            results[which].append(run["cpu_us"])
    shown, hidden = (statistics.median(results[key]) for key in ("shown", "hidden"))
    ratio = shown / hidden
    print("| opentelemetry | client CPU per create (median) |")
    print("| --- | --- |")
    print(f"| not installed | {hidden:.1f} µs |")
    print(f"| installed, no tracer provider | {shown:.1f} µs |")
    verdict = "met" if ratio <= TARGET_RATIO else "missed"
    print(f"\nratio {ratio:.3f} (target <= {TARGET_RATIO}): {verdict}")


if __name__ == "__main__":
    main()
