"""Public reads to a read replica, everything else to the primary (README « Au-delà d'une machine »).

The rule is deliberately simple, so that nobody ever reads their own write from a lagging copy:
- only while `PublicReadsMiddleware` marks the request as a public read: a GET or HEAD without a
  session cookie (an anonymous visitor; anyone logged in, or anything that posts, reads the primary);
- only models of the public directory: `directory`, `geo`, `maps`;
- not inside a transaction the code opened, and not after a write in the same request (the first
  write pins the rest of the request to the primary);
- and only when a replica is configured (`DATABASE_REPLICA_URL` → `DATABASE_READ_REPLICA`).
Commands and jobs never run inside the middleware, so they always use the primary.
Only ORM queries are routed: the hand-written SQL of the nearest search (directory.selectors.nearest)
and of the tiles (maps.selectors) runs on `django.db.connection`, the primary, until those take
`connections[router.db_for_read(Amap)]`.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

REPLICA_APPS = frozenset({"directory", "geo", "maps"})
SAFE_METHODS = frozenset({"GET", "HEAD"})

_public_read: ContextVar[bool] = ContextVar("atlas_public_read", default=False)


@contextmanager
def public_reads():
    """Mark the enclosed code as a public read (what the middleware does for an anonymous GET)."""
    token = _public_read.set(True)
    try:
        yield
    finally:
        _public_read.reset(token)


def _in_code_transaction(alias: str) -> bool:
    # A test case's wrapping transaction (Django marks it) is not one the code opened.
    return any(not getattr(block, "_from_testcase", False) for block in connections[alias].atomic_blocks)


class PrimaryReplicaRouter:
    def db_for_read(self, model, **hints):
        replica = settings.DATABASE_READ_REPLICA
        if (
            replica
            and _public_read.get()
            and model._meta.app_label in REPLICA_APPS
            and not _in_code_transaction(DEFAULT_DB_ALIAS)
        ):
            return replica
        # Said explicitly: Django would otherwise follow an instance's hint back to the replica.
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        _public_read.set(False)  # read-your-writes: the rest of this request reads the primary
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica holds the same rows as the primary

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS  # the replica follows the primary's schema by replication


class PublicReadsMiddleware:
    """Marks an anonymous GET/HEAD as a public read, which the router may send to the replica."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not (
            settings.DATABASE_READ_REPLICA
            and request.method in SAFE_METHODS
            and settings.SESSION_COOKIE_NAME not in request.COOKIES
        ):
            return self.get_response(request)
        with public_reads():
            return self.get_response(request)
