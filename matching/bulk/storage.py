"""Storing: the rows go through COPY's binary format into a temporary table, then replace the
annonces' stored matches (first_seen_at and notified_at survive a recomputation)."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from .. import engine
from .load import compose
from .select import BulkResult

# --------------------------------------------------------------------------- storing

_COMPONENTS = tuple(engine.WEIGHTS)
# Each match goes through COPY's binary format: its numbers as fixed-width fields built by
# numpy in one piece, then its reasons (jsonb, version byte 1 + JSON text) as the last field.
_NUMBER_COLUMNS = (
    ("annonce_id", "bigint", ">i8"),
    ("counterpart_id", "bigint", ">i8"),
    ("is_farm", "bigint", ">i8"),
    ("counterpart_annonce_id", "bigint", ">i8"),
    ("rank", "bigint", ">i8"),
    ("score", "double precision", ">f8"),
    *((f"c_{name}", "double precision", ">f8") for name in _COMPONENTS),
    ("distance_m", "double precision", ">f8"),
    ("drive_minutes", "double precision", ">f8"),
)
_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + np.array([0, 0], dtype=">i4").tobytes()
_PGCOPY_TRAILER = np.array([-1], dtype=">i2").tobytes()


def binary_rows(result: BulkResult) -> bytes:
    """The rows as COPY binary tuples: numbers (fixed width, no NULLs), then the reasons."""
    n = len(result.annonce_id)
    fields = [("count", ">i2")]
    for name, _sql_type, dtype in _NUMBER_COLUMNS:
        fields += [(f"{name}_len", ">i4"), (name, dtype)]
    fields.append(("reasons_len", ">i4"))
    rows = np.zeros(n, dtype=fields)
    rows["count"] = len(_NUMBER_COLUMNS) + 1
    values = {
        "annonce_id": result.annonce_id,
        "counterpart_id": result.counterpart_id,
        "is_farm": result.counterpart_is_farm.astype(np.int64),
        "counterpart_annonce_id": result.counterpart_annonce_id,
        "rank": result.rank,
        "score": result.score,
        **{f"c_{name}": result.components[name] for name in _COMPONENTS},
        "distance_m": result.distance_m,
        "drive_minutes": result.drive_minutes,
    }
    for name, _sql_type, _dtype in _NUMBER_COLUMNS:
        rows[f"{name}_len"] = 8
        rows[name] = values[name]
    reasons = [b"\x01" + text.encode() for text in result.reasons]  # jsonb binary = version 1 + text
    rows["reasons_len"] = [len(r) for r in reasons]
    width = rows.dtype.itemsize
    fixed = rows.tobytes()
    return b"".join(piece for i, text in enumerate(reasons) for piece in (fixed[i * width : (i + 1) * width], text))


def store(results, *, annonce_ids: list[int], now=None, timings: dict | None = None) -> int:
    """Replace the stored matches of these annonces; pairs already known keep first_seen_at and notified_at.

    `results` may be a generator (`compute_iter`): each chunk of rows is copied and inserted by
    a writer thread on the same connection and transaction while the next chunk is computed,
    so PostgreSQL works on the other core in the meantime.
    """
    now = now or timezone.now()
    timings = {} if timings is None else timings
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        timings[name] = time.perf_counter() - clock[0]
        clock[0] = time.perf_counter()

    components = sql.SQL(", ").join(
        sql.SQL("{}, {}").format(sql.Literal(name), sql.Identifier(f"c_{name}")) for name in _COMPONENTS
    )
    columns = sql.SQL(", ").join(
        [sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(sql_type)) for name, sql_type, _dtype in _NUMBER_COLUMNS]
        + [sql.SQL("reasons jsonb")]
    )
    insert = compose(
        """
        INSERT INTO {match} (annonce_id, amap_id, farm_id, counterpart_annonce_id, rank, score,
            components, reasons, distance_m, drive_minutes, computed_at, first_seen_at, notified_at)
        SELECT n.annonce_id, a.id, f.id, NULLIF(n.counterpart_annonce_id, 0), n.rank, n.score,
            jsonb_build_object({components}), n.reasons, n.distance_m, n.drive_minutes, %s,
            COALESCE(s.first_seen_at, %s), s.notified_at
        FROM tmp_match n
        -- No foreign keys on this derived table: never store a row whose objects are gone.
        JOIN {annonce} x ON x.id = n.annonce_id
        LEFT JOIN {amap} a ON n.is_farm = 0 AND a.id = n.counterpart_id
        LEFT JOIN {farm} f ON n.is_farm = 1 AND f.id = n.counterpart_id
        LEFT JOIN tmp_seen s ON s.annonce_id = n.annonce_id AND s.counterpart_id = n.counterpart_id
            AND s.is_farm = (n.is_farm = 1)
        WHERE a.id IS NOT NULL OR f.id IS NOT NULL
        """,
        components=components,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # The joins below hash many rows: in memory rather than in batches spilled to disk, and
        # without JIT-compiling expressions (compiling costs more than it saves here).
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute("SET LOCAL jit = off")
        # ON COMMIT DROP is not enough inside an outer transaction (tests): dropped explicitly too.
        cursor.execute("DROP TABLE IF EXISTS tmp_match, tmp_annonce, tmp_seen")
        cursor.execute(sql.SQL("CREATE TEMP TABLE tmp_match ({}) ON COMMIT DROP").format(columns))
        cursor.execute("CREATE TEMP TABLE tmp_annonce (id bigint PRIMARY KEY) ON COMMIT DROP")
        raw = cursor.cursor
        with raw.copy("COPY tmp_annonce (id) FROM STDIN") as copy:
            copy.write("".join(f"{pk}\n" for pk in annonce_ids))
        cursor.execute("ANALYZE tmp_annonce")
        lap("prepare")
        # What was already announced stays announced: carry first_seen_at and notified_at over,
        # then replace every stored match of these annonces.
        cursor.execute(
            compose(
                """
                CREATE TEMP TABLE tmp_seen ON COMMIT DROP AS
                SELECT m.annonce_id, COALESCE(m.amap_id, m.farm_id) AS counterpart_id,
                       m.farm_id IS NOT NULL AS is_farm, m.first_seen_at, m.notified_at
                FROM {match} m JOIN tmp_annonce t ON t.id = m.annonce_id
                """
            )
        )
        cursor.execute("ANALYZE tmp_seen")
        lap("seen")
        cursor.execute(compose("DELETE FROM {match} m USING tmp_annonce t WHERE m.annonce_id = t.id"))
        lap("delete")
        writer = _ChunkWriter(connection.connection, insert=insert, params=[now, now])
        try:
            for result in results:
                writer.put(binary_rows(result))
        finally:
            stored = writer.close()
        lap("compute_copy_insert")
        cursor.execute("DROP TABLE tmp_match, tmp_annonce, tmp_seen")
    lap("commit")
    return stored


class _ChunkWriter:
    """A thread that copies each chunk of rows into tmp_match and inserts it into the match table.

    It uses the very psycopg connection (same session and transaction) of the caller, which
    must not use it meanwhile; most of its time is spent waiting for PostgreSQL, without the GIL.
    """

    def __init__(self, raw_connection, *, insert, params):
        self.raw = raw_connection
        self.insert = insert
        self.params = params
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.stored = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="match-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self.raw.cursor() as cursor:
                while (rows := self.queue.get()) is not None:
                    cursor.execute("TRUNCATE tmp_match")
                    with cursor.copy("COPY tmp_match FROM STDIN WITH (FORMAT BINARY)") as copy:
                        copy.write(_PGCOPY_HEADER)
                        copy.write(rows)
                        copy.write(_PGCOPY_TRAILER)
                    cursor.execute("ANALYZE tmp_match")
                    cursor.execute(self.insert, self.params)
                    self.stored += cursor.rowcount
        except BaseException as error:  # noqa: BLE001 - handed over to the caller's thread
            self.error = error
            while self.queue.get() is not None:  # let the producer finish; nothing more is written
                pass

    def put(self, rows: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(rows)

    def close(self) -> int:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.stored
