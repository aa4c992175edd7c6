"""Password hashing with argon2id (pwdlib), off the event loop."""

from __future__ import annotations

import asyncio
import os
import re
from concurrent.futures import ThreadPoolExecutor

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1

_hasher = PasswordHash(
    (
        Argon2Hasher(
            memory_cost=ARGON2_MEMORY_KIB,
            time_cost=ARGON2_TIME_COST,
            parallelism=ARGON2_PARALLELISM,
        ),
    )
)
# argon2 releases the GIL: one thread per core hashes as fast as more would, keeps the memory
# bounded (19 MiB a hash in flight), leaves the event loop's default executor to others, and
# queues the excess in arrival order instead of letting dozens of threads share two cores.
HASHING_THREADS = max(2, os.cpu_count() or 2)
_executor = ThreadPoolExecutor(max_workers=HASHING_THREADS, thread_name_prefix="argon2")

MIN_LENGTH = 10
MAX_LENGTH = 128


def password_problems(password: str) -> list[str]:
    """What is wrong with ``password`` under the platform's policy (empty when it is fine)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"at most {MAX_LENGTH} characters")
    classes = sum(
        bool(re.search(pattern, password))
        for pattern in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]")
    )
    if classes < 2:
        problems.append("characters of at least two kinds (letters, digits, symbols)")
    return problems


async def hash_password(password: str) -> str:
    """The argon2id hash of ``password``, computed in a hashing thread."""
    return await asyncio.get_running_loop().run_in_executor(_executor, _hasher.hash, password)


async def verify_password(password: str, password_hash: str) -> tuple[bool, str | None]:
    """Whether ``password`` matches, and a new hash when the parameters have changed."""
    return await asyncio.get_running_loop().run_in_executor(
        _executor, _hasher.verify_and_update, password, password_hash
    )


# Compared against when an account does not exist, so a miss costs as much as a hit.
DUMMY_HASH = _hasher.hash("pingtai-no-such-account")
