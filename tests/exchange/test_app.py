"""The exchange app starts on a migrated database and answers its health checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import httpx
from sqlalchemy import Connection, MetaData, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex

from services.exchange.access import models as access_models
from services.exchange.access.models import Grant


async def test_ready_on_a_migrated_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text


def test_the_exchange_on_sqlite_never_imports_postgresqls_dialect(tmp_path: Path) -> None:
    # Its models and app, built for SQLite, load no PostgreSQL dialect (~2 MB a process).
    code = (
        "import sys\n"
        "from services.exchange.app import create_app\n"
        "from services.exchange.settings import ExchangeSettings\n"
        f"create_app(ExchangeSettings(database_url='sqlite+aiosqlite:///{tmp_path}/x.db', "
        "nats_url=None))\n"
        "print(sorted(m for m in sys.modules if 'postgresql' in m or 'asyncpg' in m))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_open_grant_index_is_partial_on_postgresql_too() -> None:
    # Declared without postgresql_where (see access/models.py), it gets it when the table is
    # created on PostgreSQL: one open grant per requester and dataset, closed ones kept.
    table = cast(Table, Grant.__table__).to_metadata(MetaData())
    postgres = SimpleNamespace(dialect=postgresql.dialect())
    access_models._partial_on_postgresql(table, cast(Connection, postgres))
    [index] = [i for i in table.indexes if i.name == "uq_exchange_grants_open"]
    ddl = str(CreateIndex(index).compile(dialect=postgresql.dialect()))
    assert ddl.endswith("WHERE status IN ('pending', 'granted')"), ddl
    assert "UNIQUE INDEX" in ddl
