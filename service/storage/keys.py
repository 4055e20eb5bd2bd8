"""API keys: random bearer tokens that belong to a tenant, stored only as a hash.

Their shape and offline check are in ``service.storage.key_format``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from service.storage.connections import Connections
from service.storage.errors import SchemaBehind, translate_unavailable
from service.storage.key_format import KEY_PREFIX, KeyChecker
from service.storage.tables import api_keys, deployment_secrets, tenants

KEY_CHECK_ROW = "api_key_check"
SHOWN_PREFIX_LENGTH = len(KEY_PREFIX) + 8
DEVELOPMENT_TENANT = "development"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key and the tenant it belongs to."""

    key_id: int
    tenant_id: int
    tenant: str


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: int
    tenant: str
    prefix: str
    label: str
    created_at: datetime
    revoked_at: datetime | None
    checked: bool  # False: made before keys carried a check (replace it)


def ensure_tenant(connection, tenant: str, now: datetime) -> int:
    """The tenant's id, created if it is new."""
    existing = connection.execute(
        sa.select(tenants.c.id).where(tenants.c.name == tenant)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    return connection.execute(
        sa.insert(tenants).values(name=tenant, created_at=now).returning(tenants.c.id)
    ).scalar_one()


class ApiKeyStore:
    def __init__(self, storage: Connections) -> None:
        self._storage = storage

    @translate_unavailable
    def create(self, tenant: str, label: str = "") -> tuple[str, ApiKeyInfo]:
        """A new key for the tenant (created if new). The key itself is returned only here."""
        now = datetime.now(UTC)
        with self._storage.transaction() as connection:
            key = KeyChecker(_key_check_secret(connection)).new_key()
            tenant_id = ensure_tenant(connection, tenant, now)
            key_id = connection.execute(
                sa.insert(api_keys)
                .values(
                    tenant_id=tenant_id,
                    key_hash=hash_key(key),
                    prefix=key[:SHOWN_PREFIX_LENGTH],
                    label=label,
                    created_at=now,
                    checked=True,
                )
                .returning(api_keys.c.id)
            ).scalar_one()
        return key, ApiKeyInfo(key_id, tenant, key[:SHOWN_PREFIX_LENGTH], label, now, None, True)

    @translate_unavailable
    def list(self, tenant: str | None = None) -> list[ApiKeyInfo]:
        query = (
            sa.select(
                api_keys.c.id,
                tenants.c.name,
                api_keys.c.prefix,
                api_keys.c.label,
                api_keys.c.created_at,
                api_keys.c.revoked_at,
                api_keys.c.checked,
            )
            .join(tenants, tenants.c.id == api_keys.c.tenant_id)
            .order_by(api_keys.c.id)
        )
        if tenant is not None:
            query = query.where(tenants.c.name == tenant)
        with self._storage.autocommit() as connection:
            return [ApiKeyInfo(*row) for row in connection.execute(query)]

    @translate_unavailable
    def key_checker(self) -> tuple[KeyChecker, bool]:
        """The offline key check, and whether any unrevoked legacy (unchecked) key exists."""
        with self._storage.autocommit() as connection:
            secret = _key_check_secret(connection)
            legacy = connection.execute(
                sa.select(api_keys.c.id)
                .where(api_keys.c.checked.is_(False), api_keys.c.revoked_at.is_(None))
                .limit(1)
            ).first()
        return KeyChecker(secret), legacy is not None

    @translate_unavailable
    def revoke(self, key_id: int) -> bool:
        """Revoke a key; False when there is no such key or it was already revoked."""
        with self._storage.transaction() as connection:
            result = connection.execute(
                sa.update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        return result.rowcount == 1

    @translate_unavailable
    def authenticate(self, key: str) -> Principal | None:
        """The principal for a presented key, or None when it is unknown or revoked."""
        with self._storage.autocommit() as connection:
            row = connection.execute(_PRINCIPAL_BY_KEY, {"key_hash": hash_key(key)}).first()
        if row is None or row.revoked_at is not None:
            return None
        return Principal(row.id, row.tenant_id, row.name)

    @translate_unavailable
    def tenant_id(self, tenant: str) -> int | None:
        """The id of the tenant with this name; None when there is none."""
        with self._storage.autocommit() as connection:
            return connection.execute(
                sa.select(tenants.c.id).where(tenants.c.name == tenant)
            ).scalar_one_or_none()

    @translate_unavailable
    def any_exist(self) -> bool:
        with self._storage.autocommit() as connection:
            return connection.execute(sa.select(api_keys.c.id).limit(1)).first() is not None

    def ensure_development_key(self) -> str | None:
        """On a database with no keys at all, a key for the development tenant; else None."""
        if self.any_exist():
            return None
        key, _ = self.create(DEVELOPMENT_TENANT, label="created at first start")
        return key


def _key_check_secret(connection) -> str:
    secret = connection.execute(
        sa.select(deployment_secrets.c.value).where(deployment_secrets.c.name == KEY_CHECK_ROW)
    ).scalar_one_or_none()
    if secret is None:  # the schema is behind: answered like any unmigrated database
        raise SchemaBehind("the database has no key-check secret: run the migrations")
    return secret


# Built once: building the SELECT costs more CPU than running it.
_PRINCIPAL_BY_KEY = (
    sa.select(api_keys.c.id, api_keys.c.tenant_id, tenants.c.name, api_keys.c.revoked_at)
    .join(tenants, tenants.c.id == api_keys.c.tenant_id)
    .where(api_keys.c.key_hash == sa.bindparam("key_hash"))
)
