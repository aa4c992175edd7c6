"""``pingtai identity ...``: the identity part's operator commands."""

from __future__ import annotations

import asyncio

import typer

from libs.common.database import Database
from services.identity.oauth.keys import service as keys_service
from services.identity.oauth.keys.events import SigningKeysRotated
from services.identity.protection import IdentifierProtector
from services.identity.settings import IdentitySettings

app = typer.Typer(help="Identity: signing keys and other operator tasks.", no_args_is_help=True)


async def rotate_signing_keys(settings: IdentitySettings) -> SigningKeysRotated:
    """Publish new signing keys now; they sign once the activation delay has passed."""
    database = Database(settings.database_url)
    try:
        async with database.sessionmaker() as session:
            rotated = await keys_service.rotate_keys(
                session=session,
                settings=settings,
                protector=IdentifierProtector(settings.secret_key),
            )
            await session.commit()
    finally:
        await database.dispose()
    return rotated


@app.command("rotate-keys")
def rotate_keys() -> None:
    """Rotate the token signing keys: publish new ones, retire the current ones when the new
    ones activate, drop keys retired longer ago than any token they signed can live."""
    settings = IdentitySettings()
    rotated = asyncio.run(rotate_signing_keys(settings))
    typer.echo(f"published {', '.join(rotated.new_kids)}; they sign from {rotated.activates_at}")
    if rotated.retired_kids:
        typer.echo(f"retiring {', '.join(rotated.retired_kids)} (still in the JWKS until expiry)")
    if rotated.dropped_kids:
        typer.echo(f"dropped {', '.join(rotated.dropped_kids)}")
