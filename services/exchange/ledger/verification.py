"""Verification: recompute the chain and every checkpoint, and name the first entry tampered with.

Used by ``pingtai audit verify`` and ``GET /v1/ledger/verification``. Rows are streamed in
large batches with plain Core selects (no ORM objects) and hashed as stored, so the walk costs
little more than SHA-256 over each entry's canonical encoding. Every statement it runs is in
``repository.py``; this module holds the rules.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.exchange.ledger import repository as ledger_repository
from services.exchange.ledger.chain import GENESIS_HASH, entry_hash
from services.exchange.ledger.signing import VerificationKeys

TamperKind = Literal["altered", "removed", "inserted", "reordered", "checkpoint"]
Progress = Callable[[int, int], None]

DEFAULT_BATCH = 20_000


@dataclass(frozen=True, slots=True)
class Tampering:
    """The first place the ledger differs from what was written and signed."""

    kind: TamperKind
    position: int  # the first entry concerned (for "checkpoint": the checkpoint's position)
    detail: str


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """What a verification found."""

    valid: bool
    entries: int  # entries recomputed
    head_position: int
    head_hash: str
    checkpoints: int  # checkpoints whose signature and hash were checked
    last_checkpoint_position: int | None
    unsigned_entries: int  # entries after the last checkpoint (a truncation there is invisible)
    problem: Tampering | None
    seconds: float

    @property
    def entries_per_s(self) -> float:
        """Entries recomputed per second."""
        return self.entries / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class _Row:
    position: int
    prev_hash: str
    content: tuple[Any, ...]
    stored_hash: str

    @classmethod
    def of(cls, row: Sequence[Any]) -> _Row:
        return cls(row[0], row[1], tuple(row[2:-1]), row[-1])

    def fits(self, position: int) -> bool:
        """Whether its stored hash is the hash of its content at ``position``."""
        try:
            return entry_hash(position, self.prev_hash, self.content) == self.stored_hash
        except (TypeError, ValueError):  # a value no entry can hold (bytes, ...)
            return False


@dataclass(frozen=True, slots=True)
class _Checkpoint:
    position: int
    entry_hash: str
    signed_at_us: int
    key_id: str
    signature: str


async def verify_ledger(
    engine: AsyncEngine,
    keys: VerificationKeys,
    *,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    max_checkpoint_gap: int | None = None,
) -> VerificationReport:
    """Recompute the whole chain and every checkpoint of the ledger in ``engine``'s database.

    ``max_checkpoint_gap``: the most entries the writer ever leaves between two checkpoints, or
    after the last one (``checkpoint_every + max_batch``: a batch is signed in its own
    transaction once the count is due, and the first batch always). Given, a wider gap is a
    removed checkpoint: without it, history rewritten and re-chained with every checkpoint
    deleted would verify.
    """
    started = time.perf_counter()
    async with engine.connect() as conn:
        head = await ledger_repository.stored_head(conn)
        if head is None:  # deleted: walk what is there, then say the head is gone
            last = await ledger_repository.last_entry_position(conn)
            head_position, head_hash = int(last or 0), ""
        else:
            head_position, head_hash = head
        checkpoints = [_Checkpoint(*c) for c in await ledger_repository.stored_checkpoints(conn)]
        walk = await _walk(conn, head_position, batch_size, checkpoints, progress)
        problems = [] if walk.problem is None else [walk.problem]
        problems.extend(_check_checkpoints(checkpoints, keys, walk))
        if max_checkpoint_gap is not None:
            problems.extend(_check_gaps(checkpoints, walk, max_checkpoint_gap))
        if head is None:
            problems.append(
                Tampering("removed", head_position + 1, "the chain's head row was deleted")
            )
        elif walk.problem is None:
            problems.extend(await _check_head(conn, walk, head_position, head_hash))
        await conn.rollback()
    problem = min(problems, key=lambda p: p.position) if problems else None
    checked = [c for c in checkpoints if c.position <= walk.last_position]
    last_checkpoint = checked[-1].position if checked else None
    return VerificationReport(
        valid=problem is None,
        entries=walk.entries,
        head_position=head_position,
        # Printable: text that was not UTF-8 (read as lone surrogates) as its escapes.
        head_hash=head_hash.encode("utf-8", "backslashreplace").decode(),
        checkpoints=len(checked),
        last_checkpoint_position=last_checkpoint,
        unsigned_entries=walk.last_position - (last_checkpoint or 0),
        problem=problem,
        seconds=time.perf_counter() - started,
    )


def _check_gaps(checkpoints: list[_Checkpoint], walk: _Walk, max_gap: int) -> list[Tampering]:
    """The first stretch of the walked chain longer than any the writer leaves unsigned."""
    signed = [c.position for c in checkpoints if c.position <= walk.last_position]
    previous = 0
    for position in [*signed, walk.last_position]:
        if position - previous > max_gap:
            return [
                Tampering(
                    "checkpoint",
                    previous + 1,
                    f"{position - previous} entries after position {previous} without a "
                    f"checkpoint; the writer signs at least every {max_gap}: a checkpoint was "
                    "removed",
                )
            ]
        previous = position
    return []


@dataclass(slots=True)
class _Walk:
    entries: int = 0
    last_position: int = 0
    last_hash: str = GENESIS_HASH
    problem: Tampering | None = None
    # The recomputed hash of the entry at each checkpoint's position.
    hashes_at: dict[int, str] | None = None


async def _walk(
    conn: AsyncConnection,
    head_position: int,
    batch_size: int,
    checkpoints: Sequence[_Checkpoint],
    progress: Progress | None,
) -> _Walk:
    """Recompute every entry up to the head, stopping at the first that does not chain."""
    batches = await ledger_repository.chain_batches(conn, last=head_position, limit=batch_size)
    fetch = batches.read
    hashed_in_database = batches.hashed
    sha256 = hashlib.sha256
    marks = {c.position for c in checkpoints}
    hashes_at: dict[int, str] = {}
    walk = _Walk(hashes_at=hashes_at)
    expected, prev, prev2 = 1, GENESIS_HASH, GENESIS_HASH

    # The next batch is read (in the driver's thread, or by the server) while this one is hashed.
    upcoming: asyncio.Task[Sequence[Any]] | None = asyncio.create_task(fetch(1))
    while upcoming is not None:
        rows = await upcoming
        upcoming = None
        if len(rows) == batch_size and rows[-1][0] < head_position:
            upcoming = asyncio.create_task(fetch(rows[-1][0] + 1))
        for position, prev_hash, stored, computed in rows:
            if computed is not None and not hashed_in_database:
                computed = sha256(computed).hexdigest()
            if position != expected or prev_hash != prev or computed != stored:
                if upcoming is not None:  # the connection serves one statement at a time
                    await upcoming
                    upcoming = None
                full = await _row_at(conn, position)
                if full is not None and position == expected and prev_hash == prev:
                    if full.fits(position):
                        computed = stored  # only the database's encoding differed
                if computed != stored or position != expected or prev_hash != prev:
                    assert full is not None
                    walk.problem = await _classify(conn, full, expected, prev, prev2)
                    break
                if len(rows) == batch_size and rows[-1][0] < head_position:
                    upcoming = asyncio.create_task(fetch(rows[-1][0] + 1))
            if expected in marks:
                hashes_at[expected] = stored
            prev2, prev = prev, stored
            expected += 1
        walk.entries = expected - 1
        walk.last_position, walk.last_hash = expected - 1, prev
        if progress is not None:
            progress(walk.entries, head_position)
        if walk.problem is not None:
            break
    return walk


async def _row_at(conn: AsyncConnection, position: int) -> _Row | None:
    found = await ledger_repository.stored_entries(conn, position, position, 1)
    return _Row.of(found[0]) if found else None


async def _classify(
    conn: AsyncConnection, row: _Row, expected: int, prev: str, prev2: str
) -> Tampering:
    """Say what happened at the first entry that does not chain (see docs/exchange-ledger.md)."""
    p = expected
    if row.position > p:
        missing = (
            f"entry {p} is" if row.position == p + 1 else f"entries {p} to {row.position - 1} are"
        )
        return Tampering("removed", p, f"{missing} missing")
    following = await _row_at(conn, p + 1)
    if following is not None and following.prev_hash == prev and following.fits(p):
        if row.prev_hash == following.stored_hash and row.fits(p + 1):
            return Tampering("reordered", p, f"entries {p} and {p + 1} changed places")
        return Tampering(
            "inserted", p, f"entry {p} was inserted: the entry after it was written at {p}"
        )
    if p > 1 and row.prev_hash == prev2 and row.fits(p - 1):
        return Tampering(
            "inserted", p - 1, f"entry {p - 1} was inserted: entry {p} was written at {p - 1}"
        )
    if row.prev_hash == prev:
        return Tampering("altered", p, f"entry {p} no longer matches its hash")
    found = await ledger_repository.position_of_hash(conn, row.prev_hash)
    if found is not None and found != p - 1:
        return Tampering(
            "reordered", p, f"entry {p} was written after entry {found}, not after entry {p - 1}"
        )
    if row.fits(p) and p > 1:
        return Tampering(
            "altered",
            p - 1,
            f"entry {p - 1} was altered and its hash recomputed: entry {p} links to another",
        )
    if row.fits(p + 1):
        return Tampering("removed", p, f"an entry was removed at {p} and the later ones renumbered")
    return Tampering("altered", p, f"entry {p} no longer matches its hash or its predecessor")


def _check_checkpoints(
    checkpoints: Sequence[_Checkpoint], keys: VerificationKeys, walk: _Walk
) -> list[Tampering]:
    """Each checkpoint's signature, and the chain's hash at its position against the signed one."""
    problems: list[Tampering] = []
    hashes_at = walk.hashes_at or {}
    previous = 0
    for cp in checkpoints:
        why = keys.verify(
            position=cp.position,
            entry_hash=cp.entry_hash,
            signed_at_us=cp.signed_at_us,
            kid=cp.key_id,
            signature=cp.signature,
        )
        if why is not None:
            problems.append(
                Tampering("checkpoint", cp.position, f"checkpoint {cp.position}: {why}")
            )
            return problems
        if walk.problem is not None and cp.position >= walk.problem.position:
            return problems  # past the first broken entry: nothing more to learn
        if cp.position > walk.last_position:
            problems.append(
                Tampering(
                    "removed",
                    walk.last_position + 1,
                    f"checkpoint {cp.position} was signed, but the chain ends at "
                    f"{walk.last_position}: entries from {walk.last_position + 1} were removed",
                )
            )
            return problems
        if hashes_at.get(cp.position) != cp.entry_hash:
            problems.append(
                Tampering(
                    "altered",
                    previous + 1,
                    f"checkpoint {cp.position} signed another chain: entries between "
                    f"{previous + 1} and {cp.position} were altered and their hashes recomputed",
                )
            )
            return problems
        previous = cp.position
    return problems


async def _check_head(
    conn: AsyncConnection, walk: _Walk, head_position: int, head_hash: str
) -> list[Tampering]:
    """The chain must end where the head row says, and nothing may lie beyond the head."""
    if walk.last_position < head_position:
        return [
            Tampering(
                "removed",
                walk.last_position + 1,
                f"the head is at {head_position} but the chain ends at {walk.last_position}",
            )
        ]
    if walk.last_hash != head_hash:
        # The entries up to the head chain, so the head row itself was moved back over them
        # (on an empty chain, to position 0 with another hash than the genesis one).
        return [
            Tampering(
                "removed",
                head_position + 1,
                f"the head names another entry than {head_position}: entries after it were "
                "removed and the head wound back",
            )
        ]
    # The newest row before the head is re-read: an append in between moves both together.
    last_row = await ledger_repository.last_entry_position(conn)
    current_head = await ledger_repository.current_head_position(conn)
    if last_row is not None and last_row > current_head:
        return [
            Tampering(
                "inserted",
                current_head + 1,
                f"entries beyond the head ({current_head}) up to {last_row} were inserted",
            )
        ]
    return []
