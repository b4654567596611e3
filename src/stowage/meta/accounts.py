"""Users, their API tokens and their S3 access keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..core.models import AccessKey, Token, User
from . import records
from .database import Database
from .prepared import Prepared
from .schema import tokens, users

R = TypeVar("R")

# A token row is a bearer token or an S3 access key (migration 0007), never both: a key's
# ``token_hash`` is computable from its public id, so bearer lookups must not see key rows.
BEARER = tokens.c.access_key_id.is_(None)
ACCESS_KEY = tokens.c.access_key_id.is_not(None)


def _live_key(access_key_id: str) -> Any:
    return and_(tokens.c.access_key_id == access_key_id, tokens.c.revoked_at_ms.is_(None))


class SqlAccounts(Database):
    """``core.ports.AccountStore``: users, their tokens and their access keys."""

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
        return await self._insert_token(
            records.token, user_id, name, token_hash, scopes, now_ms, prefix=prefix
        )

    async def _insert_token(
        self,
        mapper: Callable[[records.AnyRow], R],
        user_id: int,
        name: str,
        token_hash: str,
        scopes: frozenset[str],
        now_ms: int,
        **kind: str,
    ) -> R:
        """A token row of either kind; ``kind`` holds the columns particular to it."""
        stmt = (
            insert(tokens)
            .values(
                user_id=user_id,
                name=name,
                token_hash=token_hash,
                scopes=" ".join(sorted(scopes)),
                created_at_ms=now_ms,
                **kind,
            )
            .returning(*tokens.c)
        )
        return await self._write(lambda conn: mapper(conn.execute(stmt).one()))

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
            tokens.c.token_hash == bindparam("token_hash"),
            tokens.c.revoked_at_ms.is_(None),
            BEARER,
        )
    )

    async def find_token(self, token_hash: str) -> tuple[Token, User] | None:
        return await self._first(self._FIND_TOKEN, self._token_and_user, {"token_hash": token_hash})

    async def list_tokens(self, user_id: int | None) -> list[tuple[Token, User]]:
        return await self._list(BEARER, user_id, self._token_and_user)

    async def _list(
        self, kind: Any, user_id: int | None, mapper: Callable[[records.AnyRow], R]
    ) -> list[R]:
        """Token rows of one ``kind`` (BEARER or ACCESS_KEY) with their users, oldest first."""
        stmt = self._TOKEN_WITH_USER.where(kind).order_by(tokens.c.id)
        if user_id is not None:
            stmt = stmt.where(tokens.c.user_id == user_id)
        return await self._read(lambda conn: [mapper(r) for r in conn.execute(stmt).all()])

    async def revoke_token(self, token_id: int, now_ms: int) -> bool:
        stmt = (
            update(tokens)
            .where(tokens.c.id == token_id, tokens.c.revoked_at_ms.is_(None), BEARER)
            .values(revoked_at_ms=now_ms)
        )
        return await self._write(lambda conn: conn.execute(stmt).rowcount == 1)

    # --- S3 access keys: token rows with an access key id ---------------------------------

    async def create_access_key(
        self,
        user_id: int,
        name: str,
        access_key_id: str,
        token_hash: str,
        secret_salt: str,
        scopes: frozenset[str],
        now_ms: int,
    ) -> AccessKey:
        return await self._insert_token(
            records.access_key,
            user_id,
            name,
            token_hash,
            scopes,
            now_ms,
            prefix="",  # a bearer token's first characters; a key shows its id instead
            access_key_id=access_key_id,
            secret_salt=secret_salt,
        )

    @staticmethod
    def _key_and_user(row: records.AnyRow) -> tuple[AccessKey, User]:
        return records.access_key(row), records.user(row, prefix="u_")

    async def find_access_key(self, access_key_id: str) -> tuple[AccessKey, User] | None:
        """Plain Core, not prepared: ``AccessService`` caches what this finds for a second."""
        stmt = self._TOKEN_WITH_USER.where(_live_key(access_key_id))
        return await self._first(stmt, self._key_and_user)

    async def list_access_keys(self, user_id: int | None) -> list[tuple[AccessKey, User]]:
        return await self._list(ACCESS_KEY, user_id, self._key_and_user)

    async def revoke_access_key(self, access_key_id: str, now_ms: int) -> int | None:
        stmt = (
            update(tokens)
            .where(_live_key(access_key_id))
            .values(revoked_at_ms=now_ms)
            .returning(tokens.c.id)
        )
        return await self._write(lambda conn: conn.execute(stmt).scalar_one_or_none())

    async def set_secret_salt(self, access_key_id: str, secret_salt: str) -> AccessKey | None:
        stmt = (
            update(tokens)
            .where(_live_key(access_key_id))
            .values(secret_salt=secret_salt)
            .returning(*tokens.c)
        )
        row = await self._write(lambda conn: conn.execute(stmt).one_or_none())
        return None if row is None else records.access_key(row)

    # --- users by id, for the relations Djinn embeds ------------------------------------

    async def get_users(self, ids: set[int]) -> dict[int, User]:
        if not ids:
            return {}
        stmt = select(users).where(users.c.id.in_(sorted(ids)))
        return await self._read(lambda conn: {r.id: records.user(r) for r in conn.execute(stmt)})

    async def get_user_by_handle(self, handle: str) -> User | None:
        """A user by name, or by email address."""
        return await self._one_user(or_(users.c.name == handle, users.c.email == handle))
