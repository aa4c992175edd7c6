"""The client registry's API shapes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from libs.common.times import UtcDateTime
from services.identity.roles import Role

GrantType = Literal["authorization_code", "refresh_token", "client_credentials"]
ClientType = Literal["confidential", "public"]
AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]

SCOPE_PATTERN = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
CLIENT_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{2,63}$"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})


def _scope(value: str) -> str:
    if not SCOPE_PATTERN.match(value):
        raise ValueError("a scope is a lower-case token of letters, digits, '_', '.', ':' or '-'")
    return value


def _redirect_uri(value: str) -> str:
    parts = urlsplit(value)
    if parts.fragment or "#" in value:
        raise ValueError("a redirect URI has no fragment")
    if parts.scheme == "https" and parts.netloc:
        return value
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return value
    # A native app's private-use scheme (RFC 8252 §7.1), e.g. cn.gov.zj.app:/callback.
    if "." in parts.scheme and parts.path and not parts.netloc:
        return value
    raise ValueError("a redirect URI is https, http on a loopback host, or an app's own scheme")


Scope = Annotated[str, AfterValidator(_scope)]
RedirectUri = Annotated[str, Field(max_length=512), AfterValidator(_redirect_uri)]


class ClientCreate(BaseModel):
    """A client to register; a confidential client gets a secret, shown once."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "client_id": "zj-amr-licensing",
                "name": "浙江省市场监管局 证照系统",
                "client_type": "confidential",
                "grant_types": ["client_credentials"],
                "scopes": ["exchange:read"],
                "org_id": "5f0c...",
                "roles": ["officer"],
            }
        },
    )

    client_id: str | None = Field(default=None, pattern=CLIENT_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    client_type: ClientType = "confidential"
    token_endpoint_auth_method: AuthMethod | None = None
    grant_types: list[GrantType] = Field(min_length=1, max_length=3)
    scopes: list[Scope] = Field(default_factory=list, max_length=50)
    redirect_uris: list[RedirectUri] = Field(default_factory=list, max_length=20)
    post_logout_redirect_uris: list[RedirectUri] = Field(
        default_factory=list,
        max_length=20,
        description="Where the end-session endpoint may send the browser back after sign-out.",
    )
    org_id: str | None = Field(default=None, min_length=1, max_length=32)
    roles: list[Role] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _consistent(self) -> ClientCreate:
        if self.token_endpoint_auth_method is None:
            self.token_endpoint_auth_method = (
                "none" if self.client_type == "public" else "client_secret_basic"
            )
        check_client_shape(
            client_type=self.client_type,
            auth_method=self.token_endpoint_auth_method,
            grant_types=self.grant_types,
            redirect_uris=self.redirect_uris,
        )
        return self


class ClientUpdate(BaseModel):
    """Changes to a client; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    grant_types: list[GrantType] | None = Field(default=None, min_length=1, max_length=3)
    scopes: list[Scope] | None = Field(default=None, max_length=50)
    redirect_uris: list[RedirectUri] | None = Field(default=None, max_length=20)
    post_logout_redirect_uris: list[RedirectUri] | None = Field(default=None, max_length=20)
    org_id: str | None = Field(default=None, min_length=1, max_length=32)
    roles: list[Role] | None = Field(default=None, max_length=10)
    enabled: bool | None = None


def check_client_shape(
    *,
    client_type: str,
    auth_method: str,
    grant_types: Sequence[str],
    redirect_uris: Sequence[str],
) -> None:
    """Raise ValueError unless the type, authentication, grants and redirect URIs fit together."""
    if client_type == "public" and auth_method != "none":
        raise ValueError("a public client authenticates with 'none' (and PKCE)")
    if client_type == "confidential" and auth_method == "none":
        raise ValueError("a confidential client authenticates with its secret")
    if client_type == "public" and "client_credentials" in grant_types:
        raise ValueError("a public client cannot use client_credentials")
    if "authorization_code" in grant_types and not redirect_uris:
        raise ValueError("authorization_code needs at least one redirect URI")
    if "refresh_token" in grant_types and "authorization_code" not in grant_types:
        raise ValueError("refresh_token comes with authorization_code")


class Client(BaseModel):
    """A registered client, without its secret."""

    model_config = ConfigDict(from_attributes=True)

    client_id: str
    name: str
    client_type: ClientType
    token_endpoint_auth_method: AuthMethod
    grant_types: list[GrantType]
    scopes: list[str]
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    org_id: str | None
    roles: list[str]
    enabled: bool
    created_at: UtcDateTime
    updated_at: UtcDateTime
    secret_rotated_at: UtcDateTime | None


class ClientWithSecret(Client):
    """A client as created or after a secret rotation: the secret is shown this once."""

    client_secret: str | None = Field(
        description="Store it now: only a keyed hash is kept, it cannot be shown again."
    )
