"""Each part's Alembic history: builds its models' schema from empty, undoes it, stays one line."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, Table, inspect
from sqlalchemy.engine import Connection

from libs.common.database import create_engine, new_metadata
from libs.common.migrations import alembic_config, current_revision, migrate

PACKAGES = [
    "services.identity",
    "services.catalog",
    "services.exchange",
    "services.workflow",
    "services.evaluation",
    "gateway",
    "portal",
]


def _metadata(package: str) -> MetaData:
    metadata: MetaData = importlib.import_module(f"{package}.models").Base.metadata
    return metadata


def _script(package: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(package, "sqlite://"))


def _differences(connection: Connection, metadata: MetaData) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "compare_server_default": True, "target_metadata": metadata},
    )
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _inspect(url: str, package: str) -> tuple[list[Any], set[str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences, _metadata(package))
            tables = await connection.run_sync(_tables)
    finally:
        await engine.dispose()
    return differences, tables


@pytest.mark.parametrize("package", PACKAGES)
async def test_migrations_build_the_models_schema_and_undo_it(
    package: str, database_url: str
) -> None:
    head = _script(package).get_current_head()
    model_tables = set(_metadata(package).tables)

    await asyncio.to_thread(migrate, package, database_url)
    assert await asyncio.to_thread(current_revision, package, database_url) == head
    differences, tables = await _inspect(database_url, package)
    assert differences == [], f"{package}: migrations and models differ: {differences}"
    assert tables == model_tables | {"alembic_version"}

    config = alembic_config(package, database_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    assert await asyncio.to_thread(current_revision, package, database_url) is None
    _, tables = await _inspect(database_url, package)
    assert tables <= {"alembic_version"}, f"{package}: downgrade left {tables}"

    # Down then up again: a downgrade leaves nothing that trips the next upgrade.
    await asyncio.to_thread(migrate, package, database_url)
    differences, _ = await _inspect(database_url, package)
    assert differences == []


@pytest.mark.parametrize("package", PACKAGES)
def test_each_part_has_one_head(package: str) -> None:
    heads = _script(package).get_heads()
    assert len(heads) == 1, f"{package} has {len(heads)} heads: {heads}; merge them"


def test_revision_ids_are_unique_across_parts() -> None:
    owners: dict[str, str] = {}
    for package in PACKAGES:
        for revision in _script(package).walk_revisions():
            assert revision.revision not in owners, (
                f"revision {revision.revision} is in both {owners[revision.revision]} and {package}"
            )
            owners[revision.revision] = package
    assert len(owners) >= len(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_revision_ids_are_named_after_their_part(package: str) -> None:
    part = package.rsplit(".", 1)[-1]
    for revision in _script(package).walk_revisions():
        assert revision.revision.startswith(f"{part}_"), (package, revision.revision)


async def test_the_comparison_sees_a_table_the_migrations_lack(database_url: str) -> None:
    # Guards the check above: a model without a migration must show up as a difference.
    await asyncio.to_thread(migrate, "services.identity", database_url)
    from services.identity.models import Base

    metadata = new_metadata()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    Table("unmigrated", metadata, Column("id", Integer, primary_key=True))
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences, metadata)
    finally:
        await engine.dispose()
    assert [d[0] for d in differences] == ["add_table"]
    assert differences[0][1].name == "unmigrated"
