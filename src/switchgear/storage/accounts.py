"""Accounts and credentials in SQL: the tenancy rows behind sign-in and keys."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from switchgear.core.accounts import Credential
from switchgear.core.model import Account
from switchgear.errors import Conflict
from switchgear.storage import tables as t
from switchgear.storage.sqlbase import SqlBase


class AccountRows(SqlBase):
    """The accounts and credentials tables."""

    # --- accounts -----------------------------------------------------------

    async def add_account(
        self, email: str, name: str, password_hash: str, role: str = "tenant"
    ) -> Account:
        now = time.time()
        stmt = t.accounts.insert().values(
            email=email, name=name, password_hash=password_hash, created_at=now, role=role
        )
        try:
            res = await self._one_write(stmt)
        except IntegrityError:
            raise Conflict(f"an account with email {email!r} exists", field="email") from None
        return Account(int(res.inserted_primary_key[0]), email, name, now, role)

    async def account_by_email(self, email: str) -> tuple[Account, str] | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(t.accounts).where(t.accounts.c.email == email))
            ).first()
        if row is None:
            return None
        return Account(row.id, row.email, row.name, row.created_at, row.role), row.password_hash

    async def accounts(self) -> list[Account]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(t.accounts).order_by(t.accounts.c.id))).all()
        return [Account(r.id, r.email, r.name, r.created_at, r.role) for r in rows]

    async def set_password_hash(self, account_id: int, password_hash: str) -> None:
        await self._one_write(
            t.accounts.update()
            .where(t.accounts.c.id == account_id)
            .values(password_hash=password_hash)
        )

    # --- credentials --------------------------------------------------------

    async def add_credential(self, cred: Credential) -> None:
        stmt = t.credentials.insert().values(
            id=cred.id,
            account_id=cred.account_id,
            kind=cred.kind,
            secret_hash=cred.secret_hash,
            created_at=cred.created_at,
            expires_at=cred.expires_at,
            revoked_at=cred.revoked_at,
            scopes=list(cred.scopes),
            desc=cred.desc,
            attrs=dict(cred.attrs),
        )
        try:
            await self._one_write(stmt)
        except IntegrityError:
            raise Conflict("credential id exists", field="id") from None

    async def credentials(self, account_id: int | None = None) -> list[Credential]:
        q = sa.select(t.credentials).order_by(t.credentials.c.created_at)
        if account_id is not None:
            q = q.where(t.credentials.c.account_id == account_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [
            Credential(
                id=r.id,
                account_id=r.account_id,
                kind=r.kind,
                secret_hash=r.secret_hash,
                created_at=r.created_at,
                expires_at=r.expires_at,
                revoked_at=r.revoked_at,
                scopes=tuple(r.scopes),
                desc=r.desc,
                attrs=dict(r.attrs),
            )
            for r in rows
        ]

    async def revoke_credential(self, cred_id: str, at: float) -> None:
        await self._one_write(
            t.credentials.update().where(t.credentials.c.id == cred_id).values(revoked_at=at)
        )
