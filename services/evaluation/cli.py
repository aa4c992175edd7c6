"""``pingtai evaluation ...``: the evaluation part's operator commands."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from libs.common.database import Database
from libs.common.migrations import migrate
from services.evaluation.indicators.consumers import rules_of
from services.evaluation.indicators.projection import Projection
from services.evaluation.indicators.replay import compare, recompute
from services.evaluation.settings import EvaluationSettings

app = typer.Typer(help="Evaluation: rebuild and verify the indicators.", no_args_is_help=True)

# The NATS server `pingtai up` starts when PINGTAI_NATS_URL is not set.
UP_NATS_URL = "nats://127.0.0.1:4250"


PROGRESS_EVERY = 100_000


def _progress() -> Callable[[str, int], None]:
    """A line every PROGRESS_EVERY events of a stream: a million events take minutes."""
    shown: dict[str, int] = {}

    def show(durable: str, applied: int) -> None:
        if applied // PROGRESS_EVERY > shown.get(durable, 0) // PROGRESS_EVERY:
            typer.echo(f"  {durable}: {applied:,} event(s) applied so far")
        shown[durable] = applied

    return show


async def _recompute(url: str, nats_url: str, settings: EvaluationSettings, batch: int) -> None:
    await asyncio.to_thread(migrate, "services.evaluation", url)
    database = Database(url)
    try:
        report = await recompute(
            database, nats_url=nats_url, projection=Projection(rules_of(settings)), batch=batch,
            progress=_progress(),
        )  # fmt: skip
    finally:
        await database.dispose()
    for durable, count in report.events.items():
        typer.echo(f"  {durable}: {count} event(s)")
    rate = report.total / report.seconds if report.seconds else 0.0
    typer.echo(f"replayed {report.total} event(s) in {report.seconds:.1f}s ({rate:,.0f}/s)")


async def _check(settings: EvaluationSettings, nats_url: str, batch: int) -> bool:
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{Path(scratch) / 'rebuilt.db'}"
        await _recompute(url, nats_url, settings, batch)
        live, rebuilt = Database(settings.database_url), Database(url)
        try:
            identical, left, right, differences = await compare(live, rebuilt)
        finally:
            await live.dispose()
            await rebuilt.dispose()
    typer.echo(f"live: {left} row(s); rebuilt: {right} row(s)")
    for line in differences:
        typer.echo(f"  {line}")
    typer.echo("identical" if identical else "DIFFERENT")
    return identical


@app.command("recompute")
def recompute_command(
    database_url: Annotated[
        str | None,
        typer.Option(help="Rebuild into this database (default: the evaluation database)."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Rebuild into a scratch database and compare it with the live indicators.",
        ),
    ] = False,
    nats_url: Annotated[str | None, typer.Option(help="Default: PINGTAI_NATS_URL.")] = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000)] = 1000,
) -> None:
    """Rebuild the indicators from the events JetStream retains (stop the part first when
    rebuilding its own database; --check leaves it alone)."""
    settings = EvaluationSettings()
    url = nats_url or settings.nats_url or UP_NATS_URL
    if check:
        if not asyncio.run(_check(settings, url, batch)):
            raise typer.Exit(1)
        return
    asyncio.run(_recompute(database_url or settings.database_url, url, settings, batch))
