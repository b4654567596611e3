"""Who is calling and what they may do: token and S3 access key minting and lookup,
scopes, principals.

Scopes follow Djinn's grammar (``resource:perm[,perm] ...``) so one token works in both
dialects. Tokens are random, shown once, and stored only as SHA-256 hashes. Access keys
carry the same scopes; their secrets are derived, never stored (``core.keys``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from .clock import Clock
from .errors import Forbidden, Invalid, NotFound, Unauthenticated
from .keys import ACCESS_KEY_ID, derive_secret, key_token_hash, new_access_key_id, new_salt
from .models import AccessKey, Namespace, Token, User, Visibility
from .ports import AccountStore

RESOURCES = (
    "build",
    "invite",
    "image",
    "namespace",
    "object",
    "variable",
    "key",
    "cron",
    "webhook",
)
PERMISSIONS = ("read", "write", "delete")
ALL_SCOPES = frozenset(f"{r}:{p}" for r in RESOURCES for p in PERMISSIONS)
TOKEN_PREFIX = "stw_"
# Djinn's usernames (``gordon.freeman``) plus ``_``, which stowage has always allowed. A
# name of dots alone would be a ``.``/``..`` segment in ``/n/{user}/…`` URLs.
USER_NAME = re.compile(r"^(?!\.+$)[a-zA-Z0-9._-]{1,64}$")
TOKEN_CACHE_SECONDS = 1.0  # how long a revoked token may still be honoured, at most
TOKEN_CACHE_SIZE = 10_000
V = TypeVar("V")


def parse_scopes(text: str) -> frozenset[str]:
    """Expand ``object:read,write namespace:read`` into ``{"object:read", ...}``."""
    scopes: set[str] = set()
    for item in text.split():
        resource, sep, perms = item.partition(":")
        if not sep or not perms:
            raise Invalid(f"scope {item!r} is not of the form resource:perm[,perm]")
        if resource not in RESOURCES:
            raise Invalid(f"unknown scope resource {resource!r}; known: {', '.join(RESOURCES)}")
        for perm in perms.split(","):
            if perm not in PERMISSIONS:
                raise Invalid(
                    f"unknown permission {perm!r} in scope {item!r}; "
                    f"known: {', '.join(PERMISSIONS)}"
                )
            scopes.add(f"{resource}:{perm}")
    return frozenset(scopes)


def format_scopes(scopes: frozenset[str]) -> str:
    """The inverse of ``parse_scopes``, in a stable order."""
    parts = []
    for resource in RESOURCES:
        perms = [p for p in PERMISSIONS if f"{resource}:{p}" in scopes]
        if perms:
            parts.append(f"{resource}:{','.join(perms)}")
    return " ".join(parts)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the user and the scopes of the token they presented."""

    user: User
    scopes: frozenset[str]
    token_id: int = 0

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this token lacks the {scope} scope")


def as_seen_by(user: User, viewer: Principal | None) -> User:
    """``user`` as ``viewer`` may see them. An email address is shown to its owner alone:
    user JSON appears in public objects and namespaces, which anyone may read anonymously,
    and in collaborator and invite lists. ``is_admin`` grants nothing here either, since an
    admin's token is as likely as any other to sit in a CI secret; operators who need the
    addresses read them from the database."""
    if viewer is not None and viewer.user.id == user.id:
        return user
    return replace(user, email=None)


class TokenCache(Generic[V]):
    """Credentials found recently, by what a request presents (a token, an access key
    id), with what they resolve to (a principal; for a key also its secret): every
    request presents one, and looking it up is a query.

    An entry lives ``ttl`` seconds from just before the lookup that made it, so whatever
    revokes a token (the CLI, another worker, another replica), every process refuses it
    within ``ttl`` of the commit. Only tokens that were found are kept: a new token works at
    once, and an unknown one costs a lookup as it always did. At ``size`` entries the
    expired ones go, then the oldest half."""

    def __init__(self, ttl: float, size: int) -> None:
        self._ttl = ttl
        self._size = size
        self._entries: dict[str, tuple[float, int, V]] = {}  # expiry, token id, value

    def cached(self, presented: str) -> V | None:
        """The value of ``presented`` while its entry lives, without awaiting anything."""
        entry = self._entries.get(presented)
        if entry is not None:
            if entry[0] > time.monotonic():
                return entry[2]
            del self._entries[presented]
        return None

    async def resolve(
        self, presented: str, lookup: Callable[[], Awaitable[tuple[int, V] | None]]
    ) -> V | None:
        """The cached value of ``presented``, else ``lookup``'s (token id, value), kept."""
        value = self.cached(presented)
        if value is not None:
            return value
        looked_up_at = time.monotonic()  # before the query: its snapshot is no older
        found = await lookup()
        if found is None:
            return None
        self._put(presented, *found, looked_up_at)
        return found[1]

    def _put(self, presented: str, token_id: int, value: V, looked_up_at: float) -> None:
        if len(self._entries) >= self._size:
            self._entries = {k: e for k, e in self._entries.items() if e[0] > looked_up_at}
        if len(self._entries) >= self._size:
            for oldest in list(self._entries)[: self._size // 2 or 1]:
                del self._entries[oldest]
        self._entries[presented] = (looked_up_at + self._ttl, token_id, value)

    def forget(self, token_id: int) -> None:
        """Drop a token this process revoked (or a key it rotated), which needs no waiting."""
        self._entries = {k: e for k, e in self._entries.items() if e[1] != token_id}


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: Token
    secret: str  # the only time the plain token exists


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: AccessKey
    secret: str  # derived again on every request, but shown to a person only now


class AccessService:
    """Users, bearer tokens and S3 access keys. ``server_secret`` (the presign secret,
    shared by replicas) is what key secrets are derived from."""

    def __init__(self, meta: AccountStore, clock: Clock, server_secret: bytes) -> None:
        self._meta = meta
        self._clock = clock
        self._server_secret = server_secret
        self._tokens: TokenCache[Principal] = TokenCache(TOKEN_CACHE_SECONDS, TOKEN_CACHE_SIZE)
        self._keys: TokenCache[tuple[Principal, str]] = TokenCache(
            TOKEN_CACHE_SECONDS, TOKEN_CACHE_SIZE
        )

    async def authenticate(self, bearer: str | None) -> Principal:
        if not bearer:
            raise Unauthenticated("missing bearer token: send 'Authorization: Bearer <token>'")
        # Kept by the token itself, which this process holds anyway while it answers: a
        # cached caller costs a dict lookup, not a SHA-256 and an await.
        principal = self._tokens.cached(bearer)
        if principal is None:
            principal = await self._tokens.resolve(
                bearer, lambda: self._find_token(hash_token(bearer))
            )
        if principal is None:
            raise Unauthenticated("invalid or revoked token")
        return principal

    async def _find_token(self, token_hash: str) -> tuple[int, Principal] | None:
        found = await self._meta.find_token(token_hash)
        if found is None:
            return None
        token, user = found
        return token.id, Principal(user=user, scopes=token.scopes, token_id=token.id)

    async def create_user(self, name: str, email: str | None, is_admin: bool = False) -> User:
        if not USER_NAME.match(name):
            raise Invalid("user name must be 1-64 ASCII letters, digits, '.', '-' or '_'")
        created = await self._meta.create_user(name, email, is_admin, self._clock.now_ms())
        if created is None:
            raise Invalid(f"user {name!r} already exists")
        return created

    async def _user(self, name: str) -> User:
        user = await self._meta.get_user_by_name(name)
        if user is None:
            raise NotFound(f"no user named {name!r}")
        return user

    async def _user_id(self, name: str | None) -> int | None:
        """The id to filter a list by: None lists everyone's."""
        return None if name is None else (await self._user(name)).id

    async def issue_token(self, user_name: str, scopes: frozenset[str], name: str) -> IssuedToken:
        user = await self._user(user_name)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = await self._meta.create_token(
            user.id, name, hash_token(secret), secret[:12], scopes, self._clock.now_ms()
        )
        return IssuedToken(token=token, secret=secret)

    async def list_tokens(self, user_name: str | None) -> list[tuple[Token, User]]:
        """Bearer tokens only: access keys are listed by ``list_keys``."""
        return await self._meta.list_tokens(await self._user_id(user_name))

    async def revoke_token(self, token_id: int) -> None:
        if not await self._meta.revoke_token(token_id, self._clock.now_ms()):
            raise NotFound(f"no live token with id {token_id}")
        self._tokens.forget(token_id)

    # --- S3 access keys -----------------------------------------------------------------

    def _secret(self, key: AccessKey) -> str:
        return derive_secret(self._server_secret, key.access_key_id, key.secret_salt)

    async def create_key(self, user_name: str, scopes: frozenset[str], name: str) -> IssuedKey:
        user = await self._user(user_name)
        access_key_id = new_access_key_id()
        key = await self._meta.create_access_key(
            user.id,
            name,
            access_key_id,
            key_token_hash(access_key_id),
            new_salt(),
            scopes,
            self._clock.now_ms(),
        )
        return IssuedKey(key=key, secret=self._secret(key))

    async def list_keys(self, user_name: str | None) -> list[tuple[AccessKey, User]]:
        return await self._meta.list_access_keys(await self._user_id(user_name))

    async def revoke_key(self, access_key_id: str) -> None:
        token_id = await self._meta.revoke_access_key(access_key_id, self._clock.now_ms())
        if token_id is None:
            raise NotFound(f"no live access key {access_key_id!r}")
        self._keys.forget(token_id)

    async def rotate_key(self, access_key_id: str) -> IssuedKey:
        """A new salt, so a new secret; the old one is refused by this process at once and
        by every other within ``TOKEN_CACHE_SECONDS``, as a revoked token is."""
        key = await self._meta.set_secret_salt(access_key_id, new_salt())
        if key is None:
            raise NotFound(f"no live access key {access_key_id!r}")
        self._keys.forget(key.id)
        return IssuedKey(key=key, secret=self._secret(key))

    async def key_for(self, access_key_id: str) -> tuple[Principal, str] | None:
        """The caller a request signed with this access key acts as (the key's user and
        scopes, its token id) and the secret to check the signature with; None for an
        unknown or revoked key. Cached like bearer tokens: a revoked or rotated key stops
        working everywhere within ``TOKEN_CACHE_SECONDS``. An id that cannot be a key (the
        header is the client's) is refused without a query."""
        if not ACCESS_KEY_ID.match(access_key_id):
            return None
        return await self._keys.resolve(access_key_id, lambda: self._find_key(access_key_id))

    async def _find_key(self, access_key_id: str) -> tuple[int, tuple[Principal, str]] | None:
        found = await self._meta.find_access_key(access_key_id)
        if found is None:
            return None
        key, user = found
        return key.id, (Principal(user=user, scopes=key.scopes, token_id=key.id), self._secret(key))


def may_read(
    viewer_id: int | None, owner_id: int, root: Namespace | None, collaborating: bool
) -> bool:
    """Djinn's visibility rules, used by both dialects: the owner always; outside a
    namespace nobody else; inside one, by the root's visibility (public: anyone; internal:
    anyone signed in; private: the root's owner and its collaborators)."""
    if viewer_id is not None and viewer_id == owner_id:
        return True
    if root is None:
        return False
    if root.visibility is Visibility.PUBLIC:
        return True
    if viewer_id is None:
        return False
    if root.visibility is Visibility.INTERNAL:
        return True
    return viewer_id == root.owner_id or collaborating


def may_modify(
    viewer_id: int | None, owner_id: int, root: Namespace | None, collaborating: bool
) -> bool:
    """Who may add to, delete from or complete in a place: the owner, or inside a namespace
    the root's owner and collaborators (so a collaborator can delete another's object)."""
    if viewer_id is None:
        return False
    if root is None:
        return viewer_id == owner_id
    return viewer_id == root.owner_id or collaborating
