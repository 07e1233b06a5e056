"""The public pages' data version (migration directory 0012): what cached anonymous pages are keyed by."""

from __future__ import annotations

from django.db import connections, router

from ..models import Amap


def public_version() -> int | None:
    """A number that changes at the commit of any change to what public pages show; None if unknown.

    Database triggers bump it (AMAPs, farms, networks, partnerships, products, their links, contracts),
    bulk writes included. Read from the database the page's own reads go to (the router may send an
    anonymous visitor's reads to a replica): read before the data, the version is never newer than it.
    One row by its key: a fraction of a millisecond.
    """
    with connections[router.db_for_read(Amap)].cursor() as cursor:
        cursor.execute("SELECT version FROM directory_public_version WHERE id = 1")
        row = cursor.fetchone()
    return row[0] if row else None
