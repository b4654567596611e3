"""Users and their API tokens."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..core.models import Token, User
from . import records
from .database import Database
from .prepared import Prepared
from .schema import tokens, users


class SqlAccounts(Database):
    """``core.ports.AccountStore``: users and their tokens."""

    async def create_user(
        self, name: str, email: str | None, is_admin: bool, now_ms: int
    ) -> User | None:
        """The new user, or None when the name was taken (by a racing create too)."""
        stmt = (
            insert(users)
            .values(name=name, email=email, is_admin=is_admin, created_at_ms=now_ms)
            .returning(*users.c)
        )
        try:
            return await self._write(lambda conn: records.user(conn.execute(stmt).one()))
        except IntegrityError:  # users.name is the one unique column a new user can break
            return None

    async def _one_user(self, where: Any) -> User | None:
        return await self._first(select(users).where(where), records.user)

    async def get_user_by_name(self, name: str) -> User | None:
        return await self._one_user(users.c.name == name)

    async def count_users(self) -> int:
        stmt = select(func.count()).select_from(users)
        return await self._read(lambda conn: conn.execute(stmt).scalar_one())

    async def create_token(
        self,
        user_id: int,
        name: str,
        token_hash: str,
        prefix: str,
        scopes: frozenset[str],
        now_ms: int,
    ) -> Token:
        stmt = (
            insert(tokens)
            .values(
                user_id=user_id,
                name=name,
                token_hash=token_hash,
                prefix=prefix,
                scopes=" ".join(sorted(scopes)),
                created_at_ms=now_ms,
            )
            .returning(*tokens.c)
        )
        return await self._write(lambda conn: records.token(conn.execute(stmt).one()))

    _TOKEN_WITH_USER = select(tokens, *[c.label(f"u_{c.name}") for c in users.c]).join(
        users, users.c.id == tokens.c.user_id
    )

    @staticmethod
    def _token_and_user(row: records.AnyRow) -> tuple[Token, User]:
        return records.token(row), records.user(row, prefix="u_")

    # Built once: these run on every request, and building a statement costs more than
    # running it on SQLite.
    _FIND_TOKEN = Prepared(
        _TOKEN_WITH_USER.where(
            tokens.c.token_hash == bindparam("token_hash"), tokens.c.revoked_at_ms.is_(None)
        )
    )

    async def find_token(self, token_hash: str) -> tuple[Token, User] | None:
        return await self._first(self._FIND_TOKEN, self._token_and_user, {"token_hash": token_hash})

    async def list_tokens(self, user_id: int | None) -> list[tuple[Token, User]]:
        stmt = self._TOKEN_WITH_USER.order_by(tokens.c.id)
        if user_id is not None:
            stmt = stmt.where(tokens.c.user_id == user_id)
        return await self._read(
            lambda conn: [self._token_and_user(r) for r in conn.execute(stmt).all()]
        )

    async def revoke_token(self, token_id: int, now_ms: int) -> bool:
        stmt = (
            update(tokens)
            .where(tokens.c.id == token_id, tokens.c.revoked_at_ms.is_(None))
            .values(revoked_at_ms=now_ms)
        )
        return await self._write(lambda conn: conn.execute(stmt).rowcount == 1)

    # --- users by id, for the relations Djinn embeds ------------------------------------

    async def get_users(self, ids: set[int]) -> dict[int, User]:
        if not ids:
            return {}
        stmt = select(users).where(users.c.id.in_(sorted(ids)))
        return await self._read(lambda conn: {r.id: records.user(r) for r in conn.execute(stmt)})

    async def get_user_by_handle(self, handle: str) -> User | None:
        """A user by name, or by email address."""
        return await self._one_user(or_(users.c.name == handle, users.c.email == handle))
