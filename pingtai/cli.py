"""The `pingtai` command."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from typer import _click  # the click typer vendors: TyperGroup's types
from typer.core import TyperGroup

from libs.common.ports import DEFAULT_PORT_BASE
from pingtai.parts import PART_NAMES, PARTS, get_part
from pingtai.supervisor import DEFAULT_NATS_PORT, STATE_FILE

# A part's command group, imported only when that command runs (or `--help` lists it): the
# long-lived `pingtai up` process must hold no part's modules (see docs/operations.md).
PART_GROUPS: dict[str, str] = {
    "identity": "services.identity.cli",
    "audit": "services.exchange.ledger.cli",
    "evaluation": "services.evaluation.cli",
}


class _LazyPartGroups(TyperGroup):
    """The root command: its own commands, then every part's group, imported on first use."""

    def list_commands(self, ctx: _click.Context) -> list[str]:
        return [*super().list_commands(ctx), *PART_GROUPS]

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        module = PART_GROUPS.get(cmd_name)
        if module is None:
            return super().get_command(ctx, cmd_name)
        # Exactly what `app.add_typer(part_app, name=...)` builds, only later.
        holder = typer.Typer(add_completion=False)
        holder.add_typer(importlib.import_module(module).app, name=cmd_name)
        root = typer.main.get_command(holder)
        assert isinstance(root, TyperGroup)
        return root.get_command(ctx, cmd_name)


app = typer.Typer(
    cls=_LazyPartGroups,
    help="Pingtai (平台): government as a platform. Run, migrate, seed and inspect it.",
    no_args_is_help=True,
    add_completion=False,
)


def _var_dir() -> Path:
    return Path(os.environ.get("PINGTAI_VAR_DIR", "var")).resolve()


def _known_part(name: str) -> str:
    try:
        return get_part(name).name
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


@app.command()
def up(
    port_base: Annotated[
        int, typer.Option(help="Gateway port; identity is +1, catalog +2, ... portal +6.")
    ] = DEFAULT_PORT_BASE,
    nats_port: Annotated[
        int, typer.Option(help="Port of the embedded NATS server (a free one if taken).")
    ] = DEFAULT_NATS_PORT,
    offer_demo: Annotated[
        bool, typer.Option(help="On a first start, load the demo province once ready.")
    ] = False,
) -> None:
    """Start the whole platform on this machine; Ctrl-C stops it."""
    # The options are read; the supervisor runs for hours, so this process becomes it anew
    # (same pid) without typer, click and the pydantic typer reads options with (~10 MB).
    command = [
        sys.executable, "-m", "pingtai.supervise",
        "--var-dir", str(_var_dir()),
        "--port-base", str(port_base),
        "--nats-port", str(nats_port),
        *(["--offer-demo"] if offer_demo else []),
    ]  # fmt: skip
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)


@app.command()
def serve(
    part: Annotated[str, typer.Argument(help=f"One of: {', '.join(PART_NAMES)}.")],
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="Worker processes on the one port (else PINGTAI_<PART>_WORKERS, 1)."
        ),
    ] = None,
) -> None:
    """Run one part in the foreground, as a container does."""
    from libs.common.serve import serve as serve_part  # only in this command

    chosen = get_part(_known_part(part))
    settings = chosen.settings()
    if workers is not None:
        settings = settings.model_copy(update={"workers": workers})
    serve_part(chosen.app_factory, settings)


@app.command("migrate")
def migrate_command(
    part: Annotated[str, typer.Argument(help=f"'all' or one of: {', '.join(PART_NAMES)}.")] = "all",
) -> None:
    """Apply a part's database migrations (or every part's)."""
    from libs.common.migrations import current_revision, migrate

    chosen = PARTS if part == "all" else (get_part(_known_part(part)),)
    for one in chosen:
        url = one.settings().database_url
        started = time.monotonic()
        migrate(one.package, url)
        revision = current_revision(one.package, url)
        took = (time.monotonic() - started) * 1000
        typer.echo(f"{one.name:<11} at {revision} ({took:.0f} ms)")


@app.command()
def revision(
    part: Annotated[str, typer.Argument(help=f"One of: {', '.join(PART_NAMES)}.")],
    message: Annotated[str, typer.Option("-m", "--message", help="What the revision does.")],
) -> None:
    """Write a new migration for a part from the difference between its models and its head."""
    from libs.common.migrations import autogenerate_revision, migrations_dir

    chosen = get_part(_known_part(part))
    versions = migrations_dir(chosen.package) / "versions"
    number = 1 + sum(1 for p in versions.glob(f"{chosen.name}_*.py"))
    revision_id = f"{chosen.name}_{number:04d}"
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{Path(scratch) / 'scratch.db'}"
        autogenerate_revision(chosen.package, url, message, revision_id)
    ruff = Path(sys.executable).parent / "ruff"
    if ruff.exists():
        for written in versions.glob(f"{revision_id}_*.py"):
            subprocess.run([str(ruff), "format", "--quiet", str(written)], check=False)
    typer.echo(f"wrote {revision_id} in {versions}; read it before you commit it")


@app.command()
def status() -> None:
    """Show what `pingtai up` runs here and whether each part is ready."""
    import httpx  # not in the long-lived `pingtai up` process

    path = _var_dir() / STATE_FILE
    if not path.exists():
        typer.echo(f"Pingtai is not running here (no {path}).")
        raise typer.Exit(1)
    state = json.loads(path.read_text())
    typer.echo(f"supervisor pid {state['supervisor_pid']}, NATS {state['nats_url']}")
    unready = 0
    with httpx.Client(timeout=2.0) as client:
        for name, info in state["parts"].items():
            try:
                response = client.get(f"{info['url']}/readyz")
                verdict = response.json().get("status", str(response.status_code))
            except httpx.HTTPError as exc:
                verdict = f"down ({type(exc).__name__})"
            unready += verdict not in ("ready", "degraded")
            typer.echo(
                f"  {name:<11} {info['url']:<24} pid {info['pid']:<8} "
                f"restarts {info['restarts']:<3} {verdict}"
            )
    raise typer.Exit(1 if unready else 0)


@app.command()
def seed(
    demo: Annotated[bool, typer.Option("--demo", help="Load the demo province.")] = False,
    gateway: Annotated[str, typer.Option(help="The running platform's gateway.")] = (
        f"http://127.0.0.1:{DEFAULT_PORT_BASE}"
    ),
) -> None:
    """Load data through the services' own APIs (never their databases)."""
    from pingtai.seed import run_demo_seed  # the demo's modules only when asked

    if not demo:
        raise typer.BadParameter("say what to load: --demo")
    asyncio.run(run_demo_seed(gateway, out=typer.echo))


def main() -> None:
    """Entry point of the `pingtai` console script."""
    app()
