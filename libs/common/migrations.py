"""Alembic, one environment per part: the ``env.py`` body and a ``migrate`` helper."""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from libs.common.database import create_engine, is_sqlite


def migrations_dir(package: str) -> Path:
    """A part's Alembic folder: `services.identity` -> `services/identity/migrations`."""
    return Path(str(resources.files(package).joinpath("migrations")))


def alembic_config(package: str, url: str) -> Config:
    """An Alembic configuration for ``package`` against the database at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(package)))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(package: str, url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` with the part's migrations (blocking)."""
    command.upgrade(alembic_config(package, url), revision)


def autogenerate_revision(package: str, url: str, message: str, revision_id: str) -> None:
    """Write a new revision of ``package`` from the difference between its models and ``url``."""
    command.upgrade(alembic_config(package, url), "head")
    command.revision(
        alembic_config(package, url), message=message, autogenerate=True, rev_id=revision_id
    )


def current_revision(package: str, url: str) -> str | None:
    """The revision the database at ``url`` is at, or None if it has none."""
    from alembic.runtime.migration import MigrationContext

    async def read() -> str | None:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_revision()
                )
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _configure(connection: Connection, metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_alembic_env(metadata: MetaData) -> None:
    """The whole body of a part's ``migrations/env.py``."""
    config = context.config
    url = config.get_main_option("sqlalchemy.url") or ""
    if context.is_offline_mode():
        context.configure(
            url=url,
            target_metadata=metadata,
            literal_binds=True,
            render_as_batch=is_sqlite(url),
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection, metadata)
        return

    async def run() -> None:
        engine = create_engine(url)
        try:
            async with engine.connect() as async_connection:
                await async_connection.run_sync(_configure, metadata)
                await async_connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(run())
