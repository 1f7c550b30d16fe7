#!/usr/bin/python3
"""compat_psycopg.py: vectron's wire format through a real driver.

psycopg 3 (Debian's python3-psycopg) sends and receives vectors in the
binary format pgvector clients use (int16 dim, int16 0, float4 big-endian),
through parameters, results and COPY BINARY, and in text form.  Connection
settings come from the PG* environment variables.  Prints TAP.
"""
import struct
import sys

import psycopg
from psycopg.adapt import Dumper, Loader
from psycopg.pq import Format
from psycopg.types import TypeInfo

results = []


def ok(cond, what):
    results.append(cond)
    print(f"{'ok' if cond else 'not ok'} {len(results)} - {what}")


class Vector(list):
    """A list of floats that psycopg sends as a vector."""


class VectorBinaryDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj):
        return struct.pack(f">HH{len(obj)}f", len(obj), 0, *obj)


class VectorBinaryLoader(Loader):
    format = Format.BINARY

    def load(self, data):
        dim, unused = struct.unpack_from(">HH", data)
        assert unused == 0
        return list(struct.unpack_from(f">{dim}f", data, 4))


class VectorTextLoader(Loader):
    format = Format.TEXT

    def load(self, data):
        return [float(x) for x in bytes(data).decode()[1:-1].split(",")]


def main():
    with psycopg.connect(autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vectron")
        info = TypeInfo.fetch(conn, "vector")
        info.register(conn)
        VectorBinaryDumper.oid = info.oid
        conn.adapters.register_dumper(Vector, VectorBinaryDumper)
        conn.adapters.register_loader(info.oid, VectorBinaryLoader)
        conn.adapters.register_loader(info.oid, VectorTextLoader)

        conn.execute("DROP TABLE IF EXISTS py_items")
        conn.execute("CREATE TABLE py_items (id int PRIMARY KEY, v vector(3))")
        vals = {1: [1.0, 2.0, 3.0], 2: [0.5, -2.5e-7, 3e20], 3: [4.0, 5.0, 6.0]}

        # binary parameters
        with conn.cursor() as cur:
            cur.execute("INSERT INTO py_items VALUES (%s, %b)", (1, Vector(vals[1])))
        # COPY BINARY
        with conn.cursor() as cur:
            with cur.copy("COPY py_items (id, v) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int4", "vector"])
                copy.write_row((2, Vector(vals[2])))
                copy.write_row((3, Vector(vals[3])))

        # binary results equal what went in (float4 precision)
        with conn.cursor(binary=True) as cur:
            rows = cur.execute("SELECT id, v FROM py_items ORDER BY id").fetchall()
        same = all(
            struct.pack(">3f", *v) == struct.pack(">3f", *vals[i]) for i, v in rows)
        ok(len(rows) == 3 and same, "binary params, COPY BINARY and binary results round-trip")

        # text results
        with conn.cursor() as cur:
            rows = cur.execute("SELECT id, v FROM py_items ORDER BY id").fetchall()
        ok(rows[0][1] == [1.0, 2.0, 3.0], "text results parse")

        # binary parameter as a query vector
        with conn.cursor() as cur:
            ids = [r[0] for r in cur.execute(
                "SELECT id FROM py_items ORDER BY v <-> %b LIMIT 2", (Vector([4, 5, 6.5]),))]
        ok(ids == [3, 1], "nearest neighbours with a binary query parameter")

        # COPY BINARY out and back in
        with conn.cursor() as cur:
            with cur.copy("COPY py_items TO STDOUT (FORMAT BINARY)") as copy:
                data = b"".join(bytes(b) for b in copy)
            cur.execute("CREATE TABLE py_items2 (LIKE py_items)")
            with cur.copy("COPY py_items2 FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(data)
            n = cur.execute("SELECT count(*) FROM py_items a JOIN py_items2 b USING (id) WHERE a.v = b.v").fetchone()[0]
        ok(n == 3, "COPY BINARY out and in keeps every vector")

        # a bad binary value is refused with SQLSTATE 22P03 and no row
        try:
            with conn.cursor() as cur:
                with cur.copy("COPY py_items (id, v) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["int4", "bytea"])
                    copy.write_row((9, struct.pack(">HHf", 1, 7, 1.0)))
            ok(False, "bad reserved field refused")
        except psycopg.Error as e:
            ok(e.sqlstate == "22P03", f"bad reserved field refused with 22P03 (got {e.sqlstate})")
        ok(conn.execute("SELECT count(*) FROM py_items").fetchone()[0] == 3, "no partial row after the error")

        conn.execute("DROP TABLE py_items, py_items2")

    print(f"1..{len(results)}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
