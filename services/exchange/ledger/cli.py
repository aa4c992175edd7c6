"""``pingtai audit``: operator commands over the access ledger (``pingtai audit verify``)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from libs.common.database import Database
from services.exchange.ledger.setup import verification_keys_from_settings
from services.exchange.ledger.signing import VerificationKeys, load_public_keys
from services.exchange.ledger.verification import (
    DEFAULT_BATCH,
    VerificationReport,
    verify_ledger,
)
from services.exchange.settings import ExchangeSettings

app = typer.Typer(help="Audit the exchange's access ledger.", no_args_is_help=True)


class _ProgressLine:
    """Progress on stderr at most a few times a second, so a long chain shows it is alive."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.last = 0.0
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.5 and done < total):
            return
        self.last = now
        share = 100.0 * done / total if total else 100.0
        rate = done / max(now - self.started, 1e-9)
        sys.stderr.write(f"\rverified {done:,} of {total:,} entries ({share:.0f}%, {rate:,.0f}/s)")
        sys.stderr.flush()
        self.shown = True

    def finish(self) -> None:
        """End the progress line, if one was shown."""
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.shown = False


def render(report: VerificationReport) -> str:
    """The report as an auditor reads it."""
    lines = [
        f"entries:      {report.entries:,} (head {report.head_position:,}, "
        f"hash {report.head_hash[:16]}...)",
        f"checkpoints:  {report.checkpoints:,} verified"
        + (
            f", last at {report.last_checkpoint_position:,}"
            if report.last_checkpoint_position
            else ""
        ),
        f"unsigned:     {report.unsigned_entries:,} entries after the last checkpoint",
        f"time:         {report.seconds:.2f} s ({report.entries_per_s:,.0f} entries/s)",
    ]
    if report.problem is None:
        lines.append("result:       VALID - the chain and every checkpoint verify")
    else:
        problem = report.problem
        lines.append(f"result:       TAMPERED - {problem.kind} at position {problem.position:,}")
        lines.append(f"detail:       {problem.detail}")
    return "\n".join(lines)


@app.command()
def verify(
    database_url: Annotated[
        str | None,
        typer.Option(help="The exchange database; default: PINGTAI_EXCHANGE_DATABASE_URL."),
    ] = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option(help="A PEM file of former checkpoint keys to trust too (repeatable)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=100, max=1_000_000)] = DEFAULT_BATCH,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    progress: Annotated[
        bool | None, typer.Option(help="Show progress on stderr (default: when a terminal).")
    ] = None,
) -> None:
    """Recompute the access ledger's hash chain and checkpoints; exit 1 if it was tampered with."""
    settings = ExchangeSettings()
    url = database_url or settings.database_url
    trusted = verification_keys_from_settings(settings)
    extra = [k for path in public_key or [] for k in load_public_keys(path)]
    keys = VerificationKeys([*trusted.by_id.values(), *extra])

    line = _ProgressLine(sys.stderr.isatty() if progress is None else progress)

    async def run() -> VerificationReport:
        database = Database(url)
        try:
            return await verify_ledger(
                database.engine,
                keys,
                batch_size=batch_size,
                progress=line,
                max_checkpoint_gap=settings.ledger_checkpoint_every + settings.ledger_max_batch,
            )
        finally:
            await database.dispose()

    try:
        report = asyncio.run(run())
    except SQLAlchemyError as exc:
        line.finish()
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        typer.echo(f"cannot read the ledger at {url}: {reason}", err=True)
        raise typer.Exit(2) from exc
    line.finish()
    if as_json:
        body = asdict(report)
        body["entries_per_s"] = report.entries_per_s
        typer.echo(json.dumps(body, indent=2))
    else:
        typer.echo(render(report))
    raise typer.Exit(0 if report.valid else 1)
