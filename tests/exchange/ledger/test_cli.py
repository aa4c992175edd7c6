"""``pingtai audit verify``: a readable report, exit 0 when valid and 1 when tampered with."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from libs.common.database import Database
from pingtai.cli import app
from services.exchange.ledger import Ledger
from services.exchange.ledger.setup import build_ledger
from services.exchange.settings import ExchangeSettings
from tests.exchange.ledger.conftest import record


async def fill(url: str, n: int) -> None:
    database = Database(url)
    ledger: Ledger = build_ledger(database, ExchangeSettings(database_url=url))
    await ledger.start()
    await ledger.append_many([record(i) for i in range(n)])
    await ledger.close()
    await database.dispose()


async def tamper(url: str) -> None:
    database = Database(url)
    async with database.engine.begin() as conn:
        await conn.execute(text("DELETE FROM exchange_ledger_entry WHERE position = 7"))
    await database.dispose()


async def test_audit_verify(database: Database) -> None:
    url = database.url
    await fill(url, 12)
    runner = CliRunner()
    ok = await asyncio.to_thread(
        runner.invoke, app, ["audit", "verify", "--database-url", url, "--no-progress"]
    )
    assert ok.exit_code == 0, ok.output
    assert "VALID" in ok.output and "entries:      12" in ok.output
    as_json = await asyncio.to_thread(
        runner.invoke, app, ["audit", "verify", "--database-url", url, "--json", "--no-progress"]
    )
    assert json.loads(as_json.stdout)["valid"] is True
    await tamper(url)
    bad = await asyncio.to_thread(runner.invoke, app, ["audit", "verify", "--database-url", url])
    assert bad.exit_code == 1, bad.output
    assert "TAMPERED - removed at position 7" in bad.output


async def test_audit_verify_reads_the_service_settings(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fill(database.url, 3)
    monkeypatch.setenv("PINGTAI_EXCHANGE_DATABASE_URL", database.url)
    result = await asyncio.to_thread(CliRunner().invoke, app, ["audit", "verify", "--no-progress"])
    assert result.exit_code == 0, result.output


async def test_audit_verify_on_a_database_without_a_ledger(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/empty.db"
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["audit", "verify", "--database-url", url, "--no-progress"]
    )
    assert result.exit_code == 2
    assert "cannot read the ledger" in result.output


async def test_audit_verify_reports_text_that_is_not_utf8_as_altered(database: Database) -> None:
    if database.engine.dialect.name != "sqlite":
        # Not a hidden failure: PostgreSQL refuses text that is not valid UTF-8 itself.
        pytest.skip("only SQLite lets a column hold bytes that are not UTF-8 as text")
    await fill(database.url, 12)
    bad = "CAST(X'ff41' AS TEXT)"  # 0xff is no UTF-8
    async with database.engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE exchange_ledger_entry SET purpose = {bad} WHERE position = 5")
        )
    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["audit", "verify", "--database-url", database.url, "--no-progress"],
    )
    assert result.exit_code == 1, result.output
    assert "TAMPERED - altered at position 5" in result.output
