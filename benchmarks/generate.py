"""Client auth tokens per second: ours, the official SDK, and a minimal floor.

Prints one JSON object of median microseconds per token. The contenders run in
small interleaved batches, so load from elsewhere on the machine falls on all of
them alike; the figure for each is the median over the batches.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ziggeo_async import AsyncZiggeo

APP_TOKEN = "bench-app-token"
ENCRYPTION_KEY = "bench-encryption-key"
ARGUMENTS: dict[str, Any] = {
    "grants": {"read": {"resources": ["1234567890"]}},
    "session_limit": 1,
    "usage_expiration_time": 86400,
}
BATCH = 1000


def floor() -> Callable[[], str]:
    """The least a token takes: key and AES algorithm made once, no argument checks."""
    key = hashlib.md5(ENCRYPTION_KEY.encode(), usedforsecurity=False).hexdigest().encode()
    algorithm = algorithms.AES(key)

    def generate() -> str:
        payload = dict(ARGUMENTS)
        payload["application_token"] = APP_TOKEN
        payload["nonce"] = f"{int(time.time())}{secrets.randbelow(10**9)}"
        plaintext = json.dumps(payload).encode()
        size = 16 - len(plaintext) % 16
        iv = os.urandom(8).hex().encode()
        encryptor = Cipher(algorithm, modes.CBC(iv)).encryptor()
        padded = plaintext + bytes([size]) * size
        return iv.decode() + (encryptor.update(padded) + encryptor.finalize()).hex()

    return generate


def main() -> None:
    rounds = int(os.environ.get("BENCH_GENERATE_ROUNDS", "25"))
    import Ziggeo  # the official package's top-level module

    official_auth = Ziggeo.Ziggeo(APP_TOKEN, "private", ENCRYPTION_KEY).auth()
    ours = AsyncZiggeo(APP_TOKEN, "private", ENCRYPTION_KEY).auth
    floor_generate = floor()

    def per_token(make: Callable[[], Any]) -> float:
        started = time.perf_counter()
        make()
        return (time.perf_counter() - started) / BATCH * 1e6

    contenders: dict[str, Callable[[], Any]] = {
        # The official generate() writes into the dict it is given: hand it a copy.
        "official": lambda: [official_auth.generate(dict(ARGUMENTS)) for _ in range(BATCH)],
        "floor": lambda: [floor_generate() for _ in range(BATCH)],
        "ours": lambda: [ours.generate(**ARGUMENTS) for _ in range(BATCH)],
        "ours_many": lambda: ours.generate_many(BATCH, **ARGUMENTS),
    }
    assert len(set(ours.generate_many(BATCH, **ARGUMENTS))) == BATCH
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, make in contenders.items():
            samples[name].append(per_token(make))
    print(json.dumps({name: statistics.median(values) for name, values in samples.items()}))


if __name__ == "__main__":
    main()
