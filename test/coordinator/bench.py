#!/usr/bin/env python3
"""bench.py: rough numbers for the coordinator (not a test; not run by make check).

Needs a running cluster (`bin/vectron cluster up --dir D`) and psycopg 3.

  python3 test/coordinator/bench.py --dir D [--n 20000] [--dim 128]

Reports, for a 1-shard rf=1 collection (so one worker does the whole query):
- search latency through the coordinator (HTTP keep-alive, one client) vs the
  same SQL sent straight to the worker with psycopg, p50/p99; the difference is
  the coordinator's overhead plus HTTP/JSON;
- search QPS with several client processes;
- upsert throughput through the coordinator (batches of 1000) vs COPY into an
  identical table on one worker.
"""
import argparse
import http.client
import json
import multiprocessing
import os
import random
import statistics
import sys
import time

import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def req(conn, method, path, body):
    conn.request(method, path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        raise RuntimeError("%d %s" % (r.status, data[:200]))
    return json.loads(data)


def qps_worker(args):
    port, name, dim, seconds, seed = args
    rnd = random.Random(seed)
    c = http.client.HTTPConnection("127.0.0.1", port)
    n, t0 = 0, time.time()
    while time.time() - t0 < seconds:
        req(c, "POST", "/v1/collections/%s/search" % name,
            {"vector": [rnd.random() for _ in range(dim)], "k": 10, "with_payload": False})
        n += 1
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--clients", type=int, default=4)
    a = ap.parse_args()
    st = json.load(open(os.path.join(a.dir, "cluster.json")))
    port = st["coordinator_port"]
    c = http.client.HTTPConnection("127.0.0.1", port)
    rnd = random.Random(1)
    name = "bench_%d" % random.randint(0, 1 << 30)
    info = req(c, "POST", "/v1/collections", {"name": name, "dimension": a.dim, "shards": 1, "replication_factor": 1})
    node = info["shard_placements"][0]["placements"][0]["node"]
    wport = [w["port"] for w in st["workers"] if w["name"] == node][0]
    dsn = "host=127.0.0.1 port=%d user=postgres dbname=postgres" % wport
    vecs = [[round(rnd.random(), 6) for _ in range(a.dim)] for _ in range(a.n)]

    # upsert through the coordinator
    t0 = time.time()
    for j in range(0, a.n, 1000):
        req(c, "PUT", "/v1/collections/%s/points" % name,
            {"points": [{"id": str(i), "vector": vecs[i]} for i in range(j, min(a.n, j + 1000))]})
    t_coord = time.time() - t0
    # COPY into an identical table on the worker
    with psycopg.connect(dsn, autocommit=True) as pg:
        pg.execute("DROP TABLE IF EXISTS bench_copy")
        pg.execute("CREATE TABLE bench_copy (id text PRIMARY KEY, v vector(%d), payload jsonb, "
                   "version bigint NOT NULL, deleted boolean NOT NULL DEFAULT false)" % a.dim)
        t0 = time.time()
        with pg.cursor() as cur:
            with cur.copy("COPY bench_copy (id, v, version) FROM STDIN") as cp:
                for i, v in enumerate(vecs):
                    cp.write_row((str(i), "[" + ",".join(map(str, v)) + "]", 1))
        t_copy = time.time() - t0
        pg.execute("DROP TABLE bench_copy")
    print("upsert: coordinator %.0f vectors/s, direct COPY %.0f vectors/s (%.0f%%)"
          % (a.n / t_coord, a.n / t_copy, 100.0 * t_copy / t_coord))

    # search latency: coordinator vs direct SQL on the worker
    table = None
    with psycopg.connect(dsn, autocommit=True) as pg:
        table = pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'vectron_shards' "
                           "ORDER BY tablename DESC LIMIT 1").fetchone()[0]
        # pick the table of this collection: the one with n rows
        for (t,) in pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'vectron_shards'").fetchall():
            if pg.execute("SELECT count(*) FROM vectron_shards.%s" % t).fetchone()[0] == a.n:
                table = t
        qs = [[rnd.random() for _ in range(a.dim)] for _ in range(a.queries)]
        direct = []
        sql = ("SELECT id, v <-> %%s::vector AS d, NULL::jsonb, NULL::text FROM vectron_shards.%s "
               "WHERE NOT deleted ORDER BY v <-> %%s::vector LIMIT 10" % table)
        for q in qs[:20]:
            pg.execute(sql, (str(q), str(q))).fetchall()
        for q in qs:
            t0 = time.perf_counter()
            pg.execute(sql, (str(q), str(q))).fetchall()
            direct.append((time.perf_counter() - t0) * 1000)
    coord = []
    for q in qs[:20]:
        req(c, "POST", "/v1/collections/%s/search" % name, {"vector": q, "k": 10, "with_payload": False})
    for q in qs:
        t0 = time.perf_counter()
        req(c, "POST", "/v1/collections/%s/search" % name, {"vector": q, "k": 10, "with_payload": False})
        coord.append((time.perf_counter() - t0) * 1000)
    print("search (1 shard, %d x %d-d, exact, k=10): direct SQL p50 %.2f ms p99 %.2f ms; "
          "coordinator p50 %.2f ms p99 %.2f ms; overhead p50 %.2f ms p99 %.2f ms"
          % (a.n, a.dim, pct(direct, 50), pct(direct, 99), pct(coord, 50), pct(coord, 99),
             pct(coord, 50) - pct(direct, 50), pct(coord, 99) - pct(direct, 99)))
    with multiprocessing.Pool(a.clients) as pool:
        t0 = time.time()
        counts = pool.map(qps_worker, [(port, name, a.dim, 5.0, s) for s in range(a.clients)])
        el = time.time() - t0
    print("search QPS with %d clients: %.0f" % (a.clients, sum(counts) / el))
    req(c, "DELETE", "/v1/collections/%s" % name, {})


if __name__ == "__main__":
    main()
