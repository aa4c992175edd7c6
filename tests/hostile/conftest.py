"""Fixtures of the hostile-input suite: one token issuer, and every part started once for the
fuzzing (on SQLite and, when configured, PostgreSQL)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import BACKENDS, _create_postgres_database, _drop_postgres_database
from tests.hostile.fuzzing import Targets
from tests.hostile.parts import PARTS, Running, running
from tests.identity.conftest import Issuer


@pytest.fixture(scope="session")
def issuer() -> Issuer:
    return Issuer(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def targets(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Targets]:
    """Every part's app, started on first use, its database kept for the whole session."""
    folder = tmp_path_factory.mktemp("hostile")
    made: list[str] = []
    numbers = itertools.count()

    def database_url(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite+aiosqlite:///{folder / f'fuzz-{next(numbers)}.db'}"
        assert backend in BACKENDS
        url = asyncio.run(_create_postgres_database())
        made.append(url)
        return url

    found = Targets(issuer, database_url)
    try:
        yield found
    finally:
        found.close()
        for url in made:
            asyncio.run(_drop_postgres_database(url))


@pytest_asyncio.fixture(scope="module", params=BACKENDS, loop_scope="module")
async def parts(
    request: pytest.FixtureRequest, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Running]]:
    """Every part started in the module's event loop, each on its own empty database (SQLite,
    and PostgreSQL when configured). Tests using it run in that loop:
    ``pytestmark = pytest.mark.asyncio(loop_scope="module")``."""
    folder = tmp_path_factory.mktemp("parts")
    made: list[str] = []
    async with AsyncExitStack() as stack:
        started = {}
        for name in PARTS:
            if request.param == "sqlite":
                url = f"sqlite+aiosqlite:///{folder / f'{name}.db'}"
            else:
                url = await _create_postgres_database()
                made.append(url)
            started[name] = await stack.enter_async_context(running(name, url, issuer))
        yield started
    for url in made:
        await _drop_postgres_database(url)
