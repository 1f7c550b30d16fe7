#!/usr/bin/env python3
"""integration.py: the coordinator against real PostgreSQL processes.

Runs on the cluster the REST suites share (auth on, TLS when the cluster
has it; scripts/lib/rest_cluster.py), or, run by hand, on a private one
brought up the same way in $VX_WORK: 1 metadata node, 3 workers, the
coordinator.  Every request carries the cluster admin's SDK JWT.  Drives
the REST API, checks search results against a brute-force top-k computed
here, then runs the fault tests (a worker stopped with pg_ctl -m immediate
mid-stream, the coordinator killed mid-stream) and leaves the cluster as it
found it (the coordinator restarted after the SIGTERM test).  Appends
"PASS name" / "FAIL name" to $VX_RESULTS.
"""
import importlib.machinery
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

ROOT = os.environ.get("VX_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RESULTS = os.environ.get("VX_RESULTS")
WORK = os.environ.get("VX_WORK", "/tmp")
CLI = os.path.join(ROOT, "bin", "vectron")
vectron = importlib.machinery.SourceFileLoader("vectron_cli", CLI).load_module()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import restclient  # noqa: E402

passed = failed = 0


def record(name, ok, detail=""):
    global passed, failed
    line = ("PASS " if ok else "FAIL ") + "coordinator-int:" + name
    if ok:
        passed += 1
    else:
        failed += 1
        print("   FAIL %s %s" % (name, detail))
    if RESULTS:
        with open(RESULTS, "a") as f:
            f.write(line + "\n")


def check(name, cond, detail=""):
    record(name, bool(cond), detail)
    return bool(cond)


CL = None        # the restclient.Cluster under test
LOG0 = 0         # where this run starts in coordinator.log


def Client(port):
    """A keep-alive connection to a coordinator of the cluster under test
    (https on a --tls cluster), sending the admin's SDK JWT.  The streamed
    60,000-point import can take minutes on a loaded machine."""
    return CL.client(port, timeout=300)


def connect(port):
    """A raw socket to a coordinator (TLS-wrapped on a --tls cluster)."""
    return CL.connect(port)


def auth_line():
    """The Authorization header line for hand-written requests."""
    return CL.auth_header_bytes()


class short_deadline:
    """Worker deadlines of ms (worker_timeout_ms reloads on SIGHUP) while a
    test waits for one to pass; the cluster's own deadline is longer, so
    that a loaded machine does not make other tests' queries time out."""

    def __init__(self, ms):
        self.ms = ms
        self.conf = os.path.join(CLUSTER, "coordinator.conf")

    def __enter__(self):
        with open(self.conf) as f:
            self.orig = f.read()
        with open(self.conf, "a") as f:
            f.write("worker_timeout_ms = %d\n" % self.ms)
        os.kill(vectron.coordinator_pid(CLUSTER), signal.SIGHUP)
        time.sleep(0.5)

    def __exit__(self, *a):
        with open(self.conf, "w") as f:
            f.write(self.orig)
        os.kill(vectron.coordinator_pid(CLUSTER), signal.SIGHUP)
        time.sleep(0.5)


def read_log():
    """The coordinator log of this run (a shared cluster's log also holds
    what the suites before this one did)."""
    return CL.log_since(LOG0)


def is_error(body, code=None):
    return isinstance(body, dict) and "error" in body and isinstance(body["error"], dict) \
        and "code" in body["error"] and "message" in body["error"] \
        and (code is None or body["error"]["code"] == code)


def l2(a, b):
    return math.sqrt(sum((x - y) * (x - y) for x, y in zip(a, b)))


def brute(points, q, k, pred=None):
    cand = [(l2(v, q), pid) for pid, (v, p) in points.items() if pred is None or pred(p)]
    cand.sort()
    return [pid for _, pid in cand[:k]]


def psql(port, sql):
    st = vectron.load_state(CLUSTER)
    r = vectron.runas([os.path.join(st["pgbin"], "psql"), "-X", "-A", "-t", "-q", "-h", "127.0.0.1",
                       "-p", str(port), "-U", "postgres", "-d", "postgres", "-c", sql],
                      capture_output=True, text=True)
    return r.stdout.strip()


CLUSTER = restclient.shared_dir() or os.path.join(WORK, "cluster")


def lock_table(port, table):
    """Hold an ACCESS EXCLUSIVE lock on a shard table from a psql session;
    returns the process (write ROLLBACK to it to release)."""
    st = vectron.load_state(CLUSTER)
    cmd = [os.path.join(st["pgbin"], "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    p.stdin.write("BEGIN; LOCK TABLE vectron_shards.%s IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(0);\n" % table)
    p.stdin.flush()
    time.sleep(0.3)
    return p


def unlock_table(p):
    p.stdin.write("ROLLBACK;\n\\q\n")
    p.stdin.flush()
    p.wait(timeout=10)


def shard_tables(port):
    return psql(port, "SELECT tablename FROM pg_tables WHERE schemaname = 'vectron_shards'").split()


def main():
    global CL, LOG0
    # max_body_bytes 8 MiB comes with the cluster (scripts/lib/rest_cluster.py);
    # the deadline failover test shortens worker deadlines for itself
    t0 = time.time()
    CL, out = restclient.open_cluster(CLUSTER)
    if not check("cluster-up", CL is not None, out):
        return
    LOG0 = CL.log_offset()
    st = vectron.load_state(CLUSTER)
    print("   cluster %s in %.1fs (%s, auth %s)" % ("shared" if not CL.owned else "up", time.time() - t0,
                                                    CL.url, "on" if CL.auth else "off"))
    c = Client(st["coordinator_port"])
    try:
        run_tests(c, st)
    except Exception:
        traceback.print_exc()
        record("exception", False, traceback.format_exc())
    finally:
        log = os.path.join(CLUSTER, "coordinator.log")
        if failed and os.path.exists(log):
            print("   --- coordinator.log (tail)")
            for line in read_log().splitlines()[-40:]:
                print("   " + line.rstrip())
        CL.close()


def test_dead_versions(c):
    """Rows updated many times leave dead versions in the shard's HNSW
    index until VACUUM; a search must still return k rows when k live rows
    exist (the workers scan iteratively, skipping what is not visible)."""
    s, b = c.req("POST", "/v1/collections", {"name": "deadver", "dimension": 4, "shards": 1,
                                             "replication_factor": 1})
    if not check("deadver-create", s == 201, (s, b)):
        return
    rnd = random.Random(5)
    pts = {}
    for rnd_i in range(40):
        batch = []
        for i in range(30):
            v = [rnd.uniform(-1, 1) for _ in range(4)]
            pts[str(i)] = (v, None)
            batch.append({"id": str(i), "vector": v})
        s, b = c.req("PUT", "/v1/collections/deadver/points", {"points": batch})
        if s != 200:
            break
    check("deadver-upserts", s == 200, (s, b))
    ok = True
    for _ in range(5):
        q = [rnd.uniform(-1, 1) for _ in range(4)]
        s, b = c.req("POST", "/v1/collections/deadver/search", {"vector": q, "k": 30})
        if s != 200 or [r["id"] for r in b["results"]] != brute(pts, q, 30):
            ok = False
            detail = (s, len(b.get("results", [])) if isinstance(b, dict) else b)
    check("deadver-search-returns-all-k", ok, "" if ok else detail)
    c.req("DELETE", "/v1/collections/deadver")


def run_tests(c, st):
    port = st["coordinator_port"]
    has_hnsw = psql(st["workers"][0]["port"], "SELECT count(*) FROM pg_am WHERE amname = 'hnsw'") == "1"
    print("   workers have hnsw: %s" % has_hnsw)
    test_dead_versions(c)

    # ---- basics: health, openapi, nodes
    s, b = c.req("GET", "/healthz")
    check("healthz", s == 200 and b["status"] == "ok")
    s, b = c.req("GET", "/v1/openapi.json")
    check("openapi-served", s == 200 and b.get("openapi", "").startswith("3.1"))
    s, b = c.req("GET", "/v1/admin/nodes")
    check("nodes-list", s == 200 and sorted(n["name"] for n in b["nodes"]) == ["w1", "w2", "w3"]
          and all(n["up"] for n in b["nodes"]), b)
    w1 = st["workers"][0]
    s, b = c.req("POST", "/v1/admin/nodes", {"name": "w1", "host": "127.0.0.1", "port": w1["port"]})
    check("nodes-add-duplicate-409", s == 409 and is_error(b, "NODE_EXISTS"), (s, b))
    s, b = c.req("POST", "/v1/admin/nodes", {"name": "Bad-Name", "host": "127.0.0.1", "port": 1})
    check("nodes-add-bad-name-400", s == 400 and is_error(b, "INVALID_ARGUMENT") and "name" in b["error"]["message"])
    dead = vectron.free_port()
    s, b = c.req("POST", "/v1/admin/nodes", {"name": "ghost", "host": "127.0.0.1", "port": dead})
    check("nodes-add-unreachable", s in (502, 503) and is_error(b, "NODE_UNREACHABLE"), (s, b))
    s, b = c.req("DELETE", "/v1/admin/nodes/nosuch")
    check("nodes-remove-unknown-404", s == 404 and is_error(b, "NODE_NOT_FOUND"), (s, b))

    # ---- HTTP layer: errors are JSON
    s, b = c.req("GET", "/nope")
    check("http-unknown-route-404", s == 404 and is_error(b, "NOT_FOUND"))
    s, b = c.req("PATCH", "/v1/collections")
    check("http-405", s == 405 and is_error(b, "METHOD_NOT_ALLOWED"))
    s, b = c.req("POST", "/v1/collections", raw=b'{"name": "x", ')
    check("http-malformed-json-400", s == 400 and is_error(b, "INVALID_JSON"))
    s, b = c.req("POST", "/v1/collections", raw=b'[1,2]')
    check("http-json-not-object-400", s == 400 and is_error(b, "INVALID_JSON"))
    s, b = c.req("POST", "/v1/collections", raw=b"")
    check("http-empty-body-400", s == 400 and is_error(b, "INVALID_JSON"))
    # 413 from Content-Length, before the body is read; the client may see a
    # reset while it still sends, but the JSON answer is readable
    big = b'{"points":[' + b" " * (9 << 20) + b"]}"
    sock = connect(port)
    sock.settimeout(10)
    try:
        sock.sendall(b"PUT /v1/collections/x/points HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n" % (auth_line(), len(big)) + big)
    except OSError:
        pass
    try:
        got = sock.recv(4096)
    except OSError:
        got = b""
    sock.close()
    check("http-413-json", got.startswith(b"HTTP/1.1 413") and b'"PAYLOAD_TOO_LARGE"' in got, got[:200])
    # 413 while streaming (chunked: no Content-Length up front)
    sock = connect(port)
    sock.sendall(b"PUT /v1/collections/x/points HTTP/1.1\r\nHost: x\r\n%sTransfer-Encoding: chunked\r\n\r\n" % auth_line())
    chunk = b"a" * 65536
    got = b""
    try:
        for _ in range(200):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except OSError:
        pass
    sock.settimeout(5)
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                break
            got += d
    except OSError:
        pass
    sock.close()
    check("http-413-streaming", got.startswith(b"HTTP/1.1 413") and b"PAYLOAD_TOO_LARGE" in got, got[:200])
    sock = connect(port)
    sock.sendall(b"GARBAGE\r\n\r\n")
    sock.settimeout(5)
    got = sock.recv(4096)
    sock.close()
    check("http-garbage-400-json", got.startswith(b"HTTP/1.1 400") and b'"BAD_REQUEST"' in got, got[:200])
    # keep-alive and pipelining: two requests in one write, two answers
    sock = connect(port)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/collections HTTP/1.1\r\nHost: x\r\n%s\r\n" % auth_line())
    sock.settimeout(5)
    got = b""
    while got.count(b"HTTP/1.1 200") < 2:
        d = sock.recv(65536)
        if not d:
            break
        got += d
    sock.close()
    check("http-keepalive-pipelined", got.count(b"HTTP/1.1 200") == 2 and b"Connection: keep-alive" in got)
    s, b = c.req("GET", "/healthz")
    check("server-still-serving", s == 200)

    # ---- SIGHUP reloads reloadable settings; a bad file keeps the old ones
    conf = os.path.join(CLUSTER, "coordinator.conf")
    orig = open(conf).read()
    pid = vectron.coordinator_pid(CLUSTER)
    s0, _ = c.req("POST", "/v1/collections", {"name": "hup", "dimension": 2})
    pts = [{"id": i, "vector": [i, i]} for i in range(6)]
    with open(conf, "a") as f:
        f.write("max_batch_points = 5\n")
    os.kill(pid, signal.SIGHUP)
    time.sleep(0.5)
    s1, b1 = c.req("PUT", "/v1/collections/hup/points", {"points": pts})
    with open(conf, "a") as f:
        f.write("max_batch_points = lots\n")
    os.kill(pid, signal.SIGHUP)
    time.sleep(0.5)
    s2, b2 = c.req("PUT", "/v1/collections/hup/points", {"points": pts})
    with open(conf, "w") as f:
        f.write(orig)
    os.kill(pid, signal.SIGHUP)
    time.sleep(0.5)
    s3, b3 = c.req("PUT", "/v1/collections/hup/points", {"points": pts})
    log = read_log()
    check("sighup-reload-applies", s0 == 201 and s1 == 400 and "at most 5" in b1["error"]["message"], (s1, b1))
    check("sighup-bad-file-keeps-old", s2 == 400 and "reload failed, keeping the old settings" in log
          and "coordinator.conf:" in log.split("reload failed")[-1], (s2, b2))
    check("sighup-restore", s3 == 200 and b3 == {"upserted": 6}, (s3, b3))
    c.req("DELETE", "/v1/collections/hup")

    # ---- collection validation
    bad = [
        ({"name": "Bad", "dimension": 3}, "name"),
        ({"name": "x" * 64, "dimension": 3}, "name"),
        ({"name": "ok1", "dimension": 0}, "dimension"),
        ({"name": "ok1", "dimension": 4097}, "dimension"),
        ({"name": "ok1"}, "dimension"),
        ({"name": "ok1", "dimension": 3, "metric": "hamming"}, "metric"),
        ({"name": "ok1", "dimension": 3, "shards": 0}, "shards"),
        ({"name": "ok1", "dimension": 3, "replication_factor": 0}, "replication_factor"),
        ({"name": "ok1", "dimension": 3, "replication_factor": 4}, "replication_factor"),
        ({"name": "ok1", "dimension": 3, "index": {"m": 1}}, "index.m"),
        ({"name": "ok1", "dimension": 3, "bogus": 1}, "bogus"),
        ({"name": "ok1", "dimension": 3, "metadata": [1]}, "metadata"),
    ]
    for i, (body, field) in enumerate(bad):
        s, b = c.req("POST", "/v1/collections", body)
        check("collection-invalid-%d-%s" % (i, field), s == 400 and is_error(b) and field in b["error"]["message"], (s, b))
    s, b = c.req("GET", "/v1/collections/nosuch")
    check("collection-unknown-404", s == 404 and is_error(b, "COLLECTION_NOT_FOUND"))
    s, b = c.req("POST", "/v1/collections/nosuch/search", {"vector": [1], "k": 1})
    check("search-unknown-collection-404", s == 404 and is_error(b, "COLLECTION_NOT_FOUND"))

    # ---- create collections of several shapes
    shapes = [("s1r1", 1, 1), ("s4r2", 4, 2), ("s3r3", 3, 3), ("s8r1", 8, 1)]
    dim = 16
    for name, sh, rf in shapes:
        s, b = c.req("POST", "/v1/collections", {"name": name, "dimension": dim, "shards": sh,
                                                  "replication_factor": rf, "metadata": {"team": "t"}})
        ok = s == 201 and len(b["shard_placements"]) == sh and all(
            len(p["placements"]) == rf and len({x["node"] for x in p["placements"]}) == rf
            for p in b["shard_placements"])
        check("collection-create-%s" % name, ok, (s, b))
    s, b = c.req("POST", "/v1/collections", {"name": "s1r1", "dimension": dim})
    check("collection-create-duplicate-409", s == 409 and is_error(b, "COLLECTION_EXISTS"))
    s, b = c.req("GET", "/v1/collections")
    check("collection-list", s == 200 and {x["name"] for x in b["collections"]} >= {n for n, _, _ in shapes})

    # ---- data: ~20k points over the collections, exact coordinates
    rnd = random.Random(42)

    def mkvec():
        return [rnd.randint(-16, 16) / 4.0 for _ in range(dim)]

    data = {}
    for name, sh, rf in shapes:
        n = 8000 if name == "s4r2" else 4000
        pts = {}
        for i in range(n):
            pid = str(i) if i % 3 else "p-%d" % i
            payload = {"cat": i % 5, "tag": ["a", "b"][i % 2], "price": i % 100,
                       "nested": {"level": i % 3}, "labels": ["x%d" % (i % 4), "all"]}
            pts[pid] = (mkvec(), payload)
        data[name] = pts
        items = list(pts.items())
        ok = True
        t = time.time()
        for j in range(0, len(items), 1000):
            batch = [{"id": int(pid) if pid.isdigit() and int(pid) % 2 else pid, "vector": v, "payload": p}
                     for pid, (v, p) in items[j:j + 1000]]
            s, b = c.req("PUT", "/v1/collections/%s/points" % name, {"points": batch})
            ok = ok and s == 200 and b == {"upserted": len(batch)}
        check("upsert-%s-%d" % (name, n), ok, (s, b))
        print("   upsert %s: %d points in %.2fs" % (name, n, time.time() - t))
    # counts
    for name, _, _ in shapes:
        s, b = c.req("GET", "/v1/collections/" + name)
        check("collection-get-count-%s" % name, s == 200 and b["count"] == len(data[name]) and not b["count_partial"], (s, b.get("count")))

    # ---- search vs brute force
    def search_ok(name, q, k, flt=None, pred=None, ef=None):
        body = {"vector": q, "k": k}
        if flt is not None:
            body["filter"] = flt
        if ef:
            body["ef_search"] = ef
        s, b = c.req("POST", "/v1/collections/%s/search" % name, body)
        if s != 200:
            return False, (s, b)
        got = [r["id"] for r in b["results"]]
        want = brute(data[name], q, k, pred)
        if has_hnsw:
            # nothing to find: the right answer is an empty result
            rec = len(set(got) & set(want)) / len(want) if want else float(not got)
            return rec >= 0.9 and len(got) == len(want), (rec, got[:5], want[:5])
        dist_ok = all(abs(r["distance"] - l2(data[name][r["id"]][0], q)) < 1e-4 for r in b["results"])
        return got == want and dist_ok and b["partial"] is False, (got[:5], want[:5])

    for name, _, _ in shapes:
        allok, det = True, None
        for qi in range(5):
            q = mkvec()
            ok, d = search_ok(name, q, 10 if qi % 2 else 37, ef=100)
            if not ok:
                allok, det = False, d
        check("search-exact-topk-%s" % name, allok, det)
    q = mkvec()
    ok, d = search_ok("s4r2", q, 1000, ef=1000)
    check("search-k-1000", ok, d)

    # filters
    filters = [
        ("match", {"must": [{"key": "tag", "match": "a"}]}, lambda p: p["tag"] == "a"),
        ("range", {"must": [{"key": "price", "range": {"gte": 10, "lt": 20}}]}, lambda p: 10 <= p["price"] < 20),
        ("any", {"must": [{"key": "cat", "any": [1, 3]}]}, lambda p: p["cat"] in (1, 3)),
        ("must_not", {"must_not": [{"key": "cat", "match": 0}]}, lambda p: p["cat"] != 0),
        ("should", {"should": [{"key": "cat", "match": 2}, {"key": "price", "range": {"lt": 5}}]},
         lambda p: p["cat"] == 2 or p["price"] < 5),
        ("dotted", {"must": [{"key": "nested.level", "match": 1}]}, lambda p: p["nested"]["level"] == 1),
        ("array-contains", {"must": [{"key": "labels", "match": "x2"}]}, lambda p: "x2" in p["labels"]),
        ("nested-filter", {"must": [{"should": [{"key": "cat", "match": 1}, {"key": "cat", "match": 4}]},
                                    {"key": "tag", "match": "b"}]},
         lambda p: p["cat"] in (1, 4) and p["tag"] == "b"),
        ("no-match", {"must": [{"key": "tag", "match": "zzz"}]}, lambda p: False),
        ("missing-key", {"must": [{"key": "nokey", "range": {"gt": 0}}]}, lambda p: False),
    ]
    for fname, flt, pred in filters:
        ok, d = search_ok("s4r2", mkvec(), 10, flt, pred, ef=200)
        check("search-filter-%s" % fname, ok, d)
    for i, flt in enumerate([{"must": [{"key": "a", "range": {"gt": "x"}}]}, {"must": "x"},
                             {"must": [{"key": "a.", "match": 1}]}, {"nope": []}]):
        s, b = c.req("POST", "/v1/collections/s4r2/search", {"vector": mkvec(), "k": 5, "filter": flt})
        check("search-filter-invalid-%d" % i, s == 400 and is_error(b, "INVALID_FILTER"), (s, b))
    s, b = c.req("POST", "/v1/collections/s4r2/search",
                 {"vector": mkvec(), "k": 5, "filter": {"must": [{"key": "tag'); DROP TABLE x; --", "match": "a"}]}})
    check("search-filter-injection-harmless", s == 200 and b["results"] == [], (s, b))
    s, b = c.req("GET", "/v1/collections/s4r2")
    check("search-filter-injection-no-damage", s == 200 and b["count"] == len(data["s4r2"]))

    # search validation
    for i, (body, field) in enumerate([
            ({"vector": [1.0] * (dim - 1), "k": 5}, "vector"),
            ({"vector": [1.0] * dim, "k": 0}, "k"),
            ({"vector": [1.0] * dim, "k": 1001}, "k"),
            ({"vector": [1.0] * dim, "k": "5"}, "k"),
            ({"vector": ["a"] * dim, "k": 5}, "vector"),
            ({"k": 5}, "vector"),
            ({"vector": [1.0] * dim, "k": 5, "ef_search": 0}, "ef_search"),
            ({"vector": [1.0] * dim, "k": 5, "with_payload": "yes"}, "with_payload"),
            ({"vector": [1.0] * dim, "k": 5, "extra": 1}, "extra")]):
        s, b = c.req("POST", "/v1/collections/s4r2/search", body)
        check("search-invalid-%d-%s" % (i, field), s == 400 and is_error(b, "INVALID_ARGUMENT") and field in b["error"]["message"], (s, b))

    # with_vector / with_payload
    q = mkvec()
    s, b = c.req("POST", "/v1/collections/s4r2/search", {"vector": q, "k": 3, "with_vector": True, "with_payload": False})
    check("search-with-vector", s == 200 and all("vector" in r and "payload" not in r and r["vector"] == data["s4r2"][r["id"]][0] for r in b["results"]), b)

    # the vector fast path (read without jansson's values) answers as the
    # generic path does; an escaped key makes the coordinator use the latter
    q = mkvec()
    s1, b1 = c.req("POST", "/v1/collections/s4r2/search", raw=json.dumps({"vector": q, "k": 5, "ef_search": 500}).encode())
    s2, b2 = c.req("POST", "/v1/collections/s4r2/search",
                   raw=('{"vect\\u006fr": %s, "k": 5, "ef_search": 500}' % json.dumps(q)).encode())
    check("search-fast-path-equals-generic", s1 == 200 and b1 == b2, (s1, s2, b1, b2))
    s1, b1 = c.req("POST", "/v1/collections/s4r2/search",
                   raw=('{"vector": %s, "vector": %s, "k": 5}' % (json.dumps(q), json.dumps(q))).encode())
    check("search-duplicate-vector-key", s1 == 400 and is_error(b1, "INVALID_JSON"), (s1, b1))
    spelled = "[" + ",".join(["-0", "1E0", "2.5e-1", "3"] + ["%.17g" % x for x in q[4:]]) + "]"
    s1, b1 = c.req("POST", "/v1/collections/s4r2/search", raw=('{"k": 3, "ef_search": 500, "vector": %s}' % spelled).encode())
    s2, b2 = c.req("POST", "/v1/collections/s4r2/search", {"k": 3, "ef_search": 500, "vector": [0.0, 1.0, 0.25, 3.0] + q[4:]})
    check("search-fast-path-number-spellings", s1 == 200 and b1 == b2, (s1, b1, b2))
    # Server-Timing: the slowest worker's own time fits inside the round trip
    # the coordinator saw (a stale transaction start would not), also after an
    # idle second on the connection
    timing_ok = True
    for _ in range(2):
        time.sleep(1.1)
        s1, b1 = c.req("POST", "/v1/collections/s4r2/search", {"vector": mkvec(), "k": 5})
        stime = getattr(c, "last_headers", {}).get("server-timing", "")
        parts = dict(p.strip().split(";dur=") for p in stime.split(",") if ";dur=" in p)
        timing_ok = timing_ok and s1 == 200 and set(parts) == {"parse", "shard", "worker", "merge"} and \
            0 < float(parts["worker"]) <= float(parts["shard"]) + 0.5
    check("search-server-timing", timing_ok, stime)
    # more distinct shard statements than a connection keeps prepared (64):
    # it starts over (DEALLOCATE ALL) and every answer stays right
    ok = True
    for k in range(1, 81):
        s1, b1 = c.req("POST", "/v1/collections/s4r2/search", {"vector": q, "k": k, "with_payload": k % 2 == 0})
        ok = ok and s1 == 200 and len(b1["results"]) == k and (("payload" in b1["results"][0]) == (k % 2 == 0))
    check("search-prepared-statements-start-over", ok, (s1, b1 if s1 != 200 else None))

    # batch search equals single searches
    qs = [mkvec() for _ in range(5)]
    s, b = c.req("POST", "/v1/collections/s3r3/search/batch", {"searches": [{"vector": x, "k": 7} for x in qs]})
    ok = s == 200 and len(b["results"]) == 5
    for i, x in enumerate(qs):
        s2, b2 = c.req("POST", "/v1/collections/s3r3/search", {"vector": x, "k": 7})
        ok = ok and [r["id"] for r in b["results"][i]] == [r["id"] for r in b2["results"]]
    check("search-batch", ok)
    s, b = c.req("POST", "/v1/collections/s3r3/search/batch", {"searches": [{"vector": qs[0], "k": 1}, {"vector": [1], "k": 1}]})
    check("search-batch-invalid-names-index", s == 400 and "searches[1]" in b["error"]["message"], b)

    # ---- points get / ids
    s, b = c.req("POST", "/v1/collections/s4r2/points/get", {"ids": [1, "1", "p-0", "p-3", "nosuch"], "with_vector": True})
    ok = s == 200 and [p["id"] for p in b["points"]] == ["1", "p-0", "p-3"]
    ok = ok and b["points"][0]["vector"] == data["s4r2"]["1"][0] and b["points"][0]["payload"] == data["s4r2"]["1"][1]
    check("points-get-int-and-string-ids", ok, b)
    for i, body in enumerate([{"ids": []}, {"ids": [None]}, {"ids": ["x" * 257]}, {}]):
        s, b = c.req("POST", "/v1/collections/s4r2/points/get", body)
        check("points-get-invalid-%d" % i, s == 400 and is_error(b, "INVALID_ARGUMENT"), (s, b))
    for i, (pts, field) in enumerate([
            ([{"id": "a", "vector": [1] * (dim + 1)}], "vector"),
            ([{"vector": [1] * dim}], "id"),
            ([{"id": 1.5, "vector": [1] * dim}], "id"),
            ([{"id": "a", "vector": [1] * dim, "payload": 3}], "payload"),
            ([{"id": "", "vector": [1] * dim}], "id"),
            ([], "points")]):
        s, b = c.req("PUT", "/v1/collections/s4r2/points", {"points": pts})
        check("upsert-invalid-%d-%s" % (i, field), s == 400 and is_error(b, "INVALID_ARGUMENT") and field in b["error"]["message"], (s, b))

    # update in place and duplicates in a batch (last wins)
    v1, v2 = mkvec(), mkvec()
    s, b = c.req("PUT", "/v1/collections/s4r2/points", {"points": [{"id": "dup", "vector": v1, "payload": {"n": 1}},
                                                                   {"id": "dup", "vector": v2, "payload": {"n": 2}}]})
    s2, b2 = c.req("POST", "/v1/collections/s4r2/points/get", {"ids": ["dup"], "with_vector": True})
    check("upsert-duplicate-ids-last-wins", s == 200 and b["upserted"] == 1 and b2["points"][0]["payload"] == {"n": 2} and b2["points"][0]["vector"] == v2, (b, b2))
    data["s4r2"]["dup"] = (v2, {"n": 2})

    # ---- deletes
    ids = ["p-0", "4", 5, "nosuch"]
    s, b = c.req("POST", "/v1/collections/s4r2/points/delete", {"ids": ids})
    check("points-delete-ids", s == 200 and b == {"deleted": 3}, b)
    s, b = c.req("POST", "/v1/collections/s4r2/points/delete", {"ids": ids})
    check("points-delete-ids-again-0", s == 200 and b == {"deleted": 0}, b)
    for pid in ("p-0", "4", "5"):
        del data["s4r2"][pid]
    s, b = c.req("POST", "/v1/collections/s4r2/points/get", {"ids": ["p-0", "4", "5"]})
    check("points-deleted-gone", s == 200 and b["points"] == [])
    want = sum(1 for p in data["s4r2"].values() if p[1].get("price") == 7)
    s, b = c.req("POST", "/v1/collections/s4r2/points/delete", {"filter": {"must": [{"key": "price", "match": 7}]}})
    check("points-delete-filter", s == 200 and b == {"deleted": want}, (b, want))
    data["s4r2"] = {k: v for k, v in data["s4r2"].items() if v[1].get("price") != 7}
    s, b = c.req("GET", "/v1/collections/s4r2")
    check("points-count-after-deletes", b["count"] == len(data["s4r2"]), (b["count"], len(data["s4r2"])))
    ok, d = search_ok("s4r2", mkvec(), 20, ef=100)
    check("search-after-deletes", ok, d)
    s, b = c.req("POST", "/v1/collections/s4r2/points/delete", {"ids": ["a"], "filter": {}})
    check("points-delete-both-400", s == 400 and is_error(b, "INVALID_ARGUMENT"))
    # an older write cannot resurrect: upsert again after delete works (newer version)
    s, b = c.req("PUT", "/v1/collections/s4r2/points", {"points": [{"id": "p-0", "vector": v1}]})
    s2, b2 = c.req("POST", "/v1/collections/s4r2/points/get", {"ids": ["p-0"]})
    check("upsert-after-delete", s == 200 and len(b2["points"]) == 1)
    data["s4r2"]["p-0"] = (v1, None)

    # ---- import (NDJSON)
    lines = []
    for i in range(300):
        lines.append(json.dumps({"id": "imp-%d" % i, "vector": mkvec(), "payload": {"i": i}}))
    lines.insert(10, "{not json")
    lines.insert(20, json.dumps({"id": "bad", "vector": [1]}))
    s, b = c.req("POST", "/v1/collections/s1r1/points/import", raw=("\n".join(lines) + "\n").encode())
    check("import-ndjson", s == 200 and b["imported"] == 300 and [e["line"] for e in b["errors"]] == [11, 21], b)

    # the import's vector fast path stores what jansson's path stores (an
    # escaped key, or a repeated one, goes the generic way: the last wins)
    c.req("POST", "/v1/collections", {"name": "fastpath", "dimension": dim, "shards": 2})
    v = mkvec()
    spelled = "[" + ",".join(["-0", "1E0", "2.5e-1"] + ["%.17g" % x for x in v[3:]]) + "]"
    want = [0.0, 1.0, 0.25] + v[3:]
    raw = ('{"id":"fp-1","vector":%s}\n{"id":"fp-2","vect\\u006fr":%s}\n{"id":"fp-3","vector":[1],"vector":%s}\n'
           % (spelled, spelled, spelled))
    s, b = c.req("POST", "/v1/collections/fastpath/points/import", raw=raw.encode())
    s2, b2 = c.req("POST", "/v1/collections/fastpath/points/get", {"ids": ["fp-1", "fp-2", "fp-3"], "with_vector": True})
    got = {p["id"]: p["vector"] for p in (b2 or {}).get("points", [])}
    check("import-fast-path-equals-generic", s == 200 and b.get("imported") == 3 and got.get("fp-1") is not None
          and got.get("fp-1") == got.get("fp-2") == got.get("fp-3")
          and all(abs(x - y) <= 1e-6 * max(1.0, abs(y)) for x, y in zip(got["fp-1"], want)), (b, got))
    c.req("DELETE", "/v1/collections/fastpath")   # later checks count every shard table

    # streamed import larger than max_body_bytes (8 MiB here): parsed as it arrives
    s, b = c.req("POST", "/v1/collections", {"name": "imp", "dimension": 16, "shards": 2})
    rows = []
    for i in range(60000):
        rows.append('{"id":"i%d","vector":[%s],"payload":{"n":%d}}' % (i, ",".join("%.4f" % (rnd.random()) for _ in range(16)), i))
    rows.insert(30000, "garbage")
    blob = ("\n".join(rows)).encode()
    t = time.time()
    s, b = Client(port).req("POST", "/v1/collections/imp/points/import", raw=blob, headers={"Content-Type": "application/x-ndjson"})
    el = time.time() - t
    s2, b2 = c.req("GET", "/v1/collections/imp")
    check("import-streamed-beyond-body-limit", len(blob) > (8 << 20) and s == 200 and b.get("imported") == 60000
          and [e["line"] for e in b.get("errors", [])] == [30001] and b2.get("count") == 60000, (s, str(b)[:200], b2.get("count")))
    print("   streamed import: %d bytes, 60000 points in %.2fs" % (len(blob), el))
    s, b = c.req("POST", "/v1/collections/imp/points/get", {"ids": ["i59999", "i0"], "with_vector": False})
    check("import-last-line-without-newline", s == 200 and [p["id"] for p in b["points"]] == ["i59999", "i0"], b)
    c.req("DELETE", "/v1/collections/imp")
    s, b = c.req("POST", "/v1/collections/nosuch/points/import", raw=b'{"id":1}\n')
    check("import-unknown-collection-404", s == 404 and is_error(b, "COLLECTION_NOT_FOUND"))

    # ---- nodes: drain, remove with placements, remove empty node
    s, b = c.req("DELETE", "/v1/admin/nodes/w1")
    check("nodes-remove-with-placements-409", s == 409 and is_error(b, "NODE_HAS_PLACEMENTS"), (s, b))
    # on a --tls cluster the new worker is SSL-only too (the coordinator verifies it)
    w4 = vectron.pg_start_instance(CLUSTER, "w4", True, st["pgbin"], **({"tls": True} if st.get("tls") else {}))
    s, b = c.req("POST", "/v1/admin/nodes", {"name": "w4", "host": "localhost", "port": w4["port"]})
    check("nodes-add-by-hostname", s == 201, (s, b))
    s, b = c.req("POST", "/v1/admin/nodes/w4/drain")
    check("nodes-drain", s == 200 and b["state"] == "draining", b)
    s, b = c.req("POST", "/v1/collections", {"name": "after_drain", "dimension": 4, "shards": 6, "replication_factor": 3})
    check("drained-node-gets-no-placements", s == 201 and all(p["node"] != "w4" for sp in b["shard_placements"] for p in sp["placements"]), b)
    s, b = c.req("DELETE", "/v1/admin/nodes/w4")
    check("nodes-remove-empty", s == 200, (s, b))
    vectron.runas([os.path.join(st["pgbin"], "pg_ctl"), "-D", w4["data"], "-m", "immediate", "stop"], capture_output=True)

    # ---- delete collection; tables dropped on workers
    s, b = c.req("GET", "/v1/collections/after_drain")
    ad_prefix = "c%s_" % b.get("id")
    s, b = c.req("DELETE", "/v1/collections/after_drain")
    check("collection-delete", s == 200)
    s, b = c.req("DELETE", "/v1/collections/after_drain")
    check("collection-delete-again-404", s == 404 and is_error(b, "COLLECTION_NOT_FOUND"))
    s, b = c.req("GET", "/v1/collections/after_drain")
    check("collection-deleted-get-404", s == 404)
    # no table of after_drain is left on any worker (the cluster may hold
    # other suites' collections, so count only this collection's tables)
    gone = False
    for _ in range(50):
        n = sum(len([t for t in shard_tables(w["port"]) if t.startswith(ad_prefix)]) for w in st["workers"])
        if n == 0:
            gone = True
            break
        time.sleep(0.1)
    check("collection-delete-drops-tables", gone and ad_prefix != "cNone_", (n, ad_prefix))

    # ---- a client that hangs up cancels its worker query
    s, b = c.req("GET", "/v1/collections/s1r1")
    check("collection-get-id-and-tables", isinstance(b.get("id"), int) and
          all(sp["table"].startswith("c%d_s" % b["id"]) for sp in b["shard_placements"]), b)
    node = b["shard_placements"][0]["placements"][0]["node"]
    wport = [w["port"] for w in st["workers"] if w["name"] == node][0]
    t1 = [b_sp["table"] for b_sp in c.req("GET", "/v1/collections/s1r1")[1]["shard_placements"]]
    check("find-s1r1-table", len(t1) == 1 and t1[0] in shard_tables(wport), t1)
    if t1:
        locker = vectron.runas([os.path.join(st["pgbin"], "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(wport),
                                "-U", "postgres", "-d", "postgres"], input=None, capture_output=False) if False else None
        cmd = [os.path.join(st["pgbin"], "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(wport), "-U", "postgres", "-d", "postgres"]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        locker = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        locker.stdin.write("BEGIN; LOCK TABLE vectron_shards.%s IN ACCESS EXCLUSIVE MODE;\n" % t1[0])
        locker.stdin.flush()
        time.sleep(0.5)
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'vectron-coordinator%' AND wait_event_type = 'Lock'"
        h0 = CL.log_offset()    # the log of this test only (a deadline may have passed before)
        sock = connect(port)
        body = json.dumps({"vector": [0.0] * dim, "k": 3}).encode()
        sock.sendall(b"POST /v1/collections/s1r1/search HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s" % (auth_line(), len(body), body))
        blocked = False
        end = time.time() + 10      # the TLS handshake and the token check come first
        while time.time() < end:
            if psql(wport, waiting) == "1":
                blocked = True
                break
            time.sleep(0.05)
        sock.close()
        ended = False
        for _ in range(60):
            if psql(wport, waiting) == "0":
                ended = True
                break
            time.sleep(0.1)
        locker.stdin.write("ROLLBACK;\n\\q\n")
        locker.stdin.flush()
        locker.wait(timeout=10)
        log = CL.log_since(h0)
        # cancelled by the hang-up (the connection was dropped), not by the 2 s deadline
        check("client-hangup-cancels-worker-query", blocked and ended and "went away; cancelling" in log
              and "passed its deadline" not in log, (blocked, ended))
        s, b = c.req("POST", "/v1/collections/s1r1/search", {"vector": [0.0] * dim, "k": 3})
        check("search-after-cancel", s == 200 and len(b["results"]) == 3)
        # a worker's SQL error passes through with its SQLSTATE and node
        psql(wport, "ALTER TABLE vectron_shards.%s RENAME TO broken_%s" % (t1[0], t1[0]))
        s, b = c.req("POST", "/v1/collections/s1r1/search", {"vector": [0.0] * dim, "k": 3})
        check("worker-error-passes-through", s == 502 and is_error(b, "WORKER_ERROR") and b["error"].get("sqlstate") == "42P01" and b["error"].get("node") == node, (s, b))
        psql(wport, "ALTER TABLE vectron_shards.broken_%s RENAME TO %s" % (t1[0], t1[0]))
        s, b = c.req("POST", "/v1/collections/s1r1/search", {"vector": [0.0] * dim, "k": 3})
        check("worker-error-recovers", s == 200, (s, b))

    # ---- a second coordinator on the same metadata sees changes (NOTIFY)
    conf2 = os.path.join(CLUSTER, "coordinator2.conf")
    port2 = vectron.free_port()
    with open(os.path.join(CLUSTER, "coordinator.conf")) as f:
        text = f.read()
    text = text.replace("listen_port = %d" % port, "listen_port = %d" % port2)
    text += "coordinator_id = 1\nmap_poll_ms = 60000\n"
    with open(conf2, "w") as f:
        f.write(text)
    log2 = open(os.path.join(CLUSTER, "coordinator2.log"), "ab")
    p2 = subprocess.Popen([vectron.coordinator_bin(), "-c", conf2], stdout=log2, stderr=log2)
    try:
        c2 = Client(port2)
        up = False
        for _ in range(100):
            try:
                if c2.req("GET", "/healthz")[0] == 200:
                    up = True
                    break
            except OSError:
                time.sleep(0.05)
        check("second-coordinator-up", up)
        s, b = c.req("POST", "/v1/collections", {"name": "shared", "dimension": 4, "shards": 2, "replication_factor": 2})
        t = time.time()
        seen = False
        while time.time() - t < 5:
            if c2.req("GET", "/v1/collections/shared")[0] == 200:
                seen = True
                break
            time.sleep(0.02)
        check("second-coordinator-sees-create-via-notify", seen and time.time() - t < 2, time.time() - t)
        s, b = c2.req("PUT", "/v1/collections/shared/points", {"points": [{"id": i, "vector": [i, 0, 0, 0]} for i in range(50)]})
        s2, b2 = c.req("POST", "/v1/collections/shared/search", {"vector": [10.2, 0, 0, 0], "k": 3})
        check("write-on-one-read-on-other", s == 200 and [r["id"] for r in b2["results"]] == ["10", "11", "9"], (b, b2))
        s, b = c2.req("DELETE", "/v1/collections/shared")
        gone = False
        for _ in range(100):
            if c.req("GET", "/v1/collections/shared")[0] == 404:
                gone = True
                break
            time.sleep(0.02)
        check("second-coordinator-delete-seen", s == 200 and gone)
    finally:
        p2.send_signal(signal.SIGTERM)
        p2.wait(timeout=15)

    # ---- faults: a worker dies mid-stream
    fault_worker(c, st, data, mkvec)
    fault_coordinator(c, st, mkvec)

    # ---- SIGTERM drains: a request in flight still gets its answer, then exit 0
    pid = vectron.coordinator_pid(CLUSTER)
    s, b = c.req("GET", "/v1/collections/s3r3")
    mine = {sp["table"] for sp in b["shard_placements"]}
    locks = []
    for w in st["workers"]:
        for t in shard_tables(w["port"]):
            if t in mine:
                locks.append(lock_table(w["port"], t))
    result = {}

    def slow():
        result["r"] = Client(port).req("POST", "/v1/collections/s3r3/search", {"vector": mkvec(), "k": 3})
    th = threading.Thread(target=slow)
    th.start()
    time.sleep(0.5)
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.5)
    refused = False
    try:
        Client(port).req("GET", "/healthz")
    except OSError:
        refused = True
    alive_while_busy = vectron.pid_alive(pid)
    for lk in locks:
        unlock_table(lk)
    th.join(timeout=20)
    for _ in range(100):
        if not vectron.pid_alive(pid):
            break
        time.sleep(0.05)
    log = read_log()
    check("sigterm-stops-accepting", refused)
    check("sigterm-waits-for-inflight", alive_while_busy and result.get("r", (0,))[0] == 200, result)
    check("sigterm-drains-and-exits", not vectron.pid_alive(pid) and "exiting" in log.split("signal 15")[-1])
    # leave the cluster as it was found: its coordinator running
    subprocess.run([sys.executable, CLI, "cluster", "restart-coordinator", "--dir", CLUSTER], capture_output=True)


def stream(c_port, name, mkvec, stop, acked, errors, stats):
    cl = Client(c_port)
    i = 0
    while not stop.is_set():
        batch = [{"id": "f-%d-%d" % (threading.get_ident() % 1000, i * 20 + j), "vector": mkvec()} for j in range(20)]
        try:
            s, b = cl.req("PUT", "/v1/collections/%s/points" % name, {"points": batch})
            if s == 200:
                acked.extend(p["id"] for p in batch)
            else:
                errors.append(("upsert", s, b))
            s, b = cl.req("POST", "/v1/collections/%s/search" % name, {"vector": batch[0]["vector"], "k": 5})
            stats["searches"] += 1
            if s != 200:
                errors.append(("search", s, b))
        except Exception as e:
            errors.append(("exc", str(e)))
            time.sleep(0.05)
        i += 1


def fault_worker(c, st, data, mkvec):
    port = st["coordinator_port"]
    stop = threading.Event()
    acked, errors, stats = [], [], {"searches": 0}
    rnd = random.Random(7)

    def mv():
        return [rnd.randint(-16, 16) / 4.0 for _ in range(16)]
    th = threading.Thread(target=stream, args=(port, "s4r2", mv, stop, acked, errors, stats))
    th.start()
    time.sleep(1.0)
    w2 = st["workers"][1]
    vectron.runas([os.path.join(st["pgbin"], "pg_ctl"), "-D", w2["data"], "-m", "immediate", "-w", "stop"], capture_output=True)
    time.sleep(2.0)
    stop.set()
    th.join()
    check("fault-worker-stream-no-errors", not errors and len(acked) > 100, (errors[:3], len(acked)))
    check("fault-worker-searches-kept-answering", stats["searches"] > 20, stats)
    # every acknowledged write is readable with the worker still down
    missing = []
    for j in range(0, len(acked), 500):
        s, b = c.req("POST", "/v1/collections/s4r2/points/get", {"ids": acked[j:j + 500]})
        got = {p["id"] for p in b.get("points", [])} if s == 200 else set()
        missing += [x for x in acked[j:j + 500] if x not in got]
    check("fault-worker-acked-writes-readable", not missing, missing[:5])
    s, b = c.req("GET", "/v1/collections/s4r2")
    stale = [p for sp in b["shard_placements"] for p in sp["placements"] if p["state"] == "stale"]
    check("fault-worker-placements-marked-stale", s == 200 and stale and all(p["node"] == "w2" for p in stale), b.get("shard_placements"))
    # the s1r1 / s8r1 collections have shards only on w2: 503, or partial with allow_partial
    s, b = c.req("POST", "/v1/collections/s8r1/search", {"vector": mkvec(), "k": 5})
    check("fault-worker-no-replica-503", s == 503 and is_error(b, "SHARD_UNAVAILABLE"), (s, b))
    s, b = c.req("POST", "/v1/collections/s8r1/search", {"vector": mkvec(), "k": 5, "allow_partial": True})
    check("fault-worker-allow-partial", s == 200 and b["partial"] is True and b["missing_shards"] and len(b["results"]) == 5, (s, b))
    s, b = c.req("GET", "/v1/admin/nodes")
    check("fault-worker-node-down", s == 200 and [n["up"] for n in b["nodes"] if n["name"] == "w2"] == [False], b)
    # a collection deleted while a node is down: its tables there go when it returns
    s, b = c.req("GET", "/v1/collections/s8r1")
    s8_tables = {sp["table"] for sp in b["shard_placements"]}
    s, b = c.req("DELETE", "/v1/collections/s8r1")
    check("delete-with-node-down", s == 200, (s, b))
    # restart: the stale placement is repaired and replicas converge
    vectron.runas([os.path.join(st["pgbin"], "pg_ctl"), "-D", w2["data"], "-l", os.path.join(w2["dir"], "server.log"), "-w", "start"], capture_output=True)
    repaired = False
    for _ in range(150):
        s, b = c.req("GET", "/v1/collections/s4r2")
        if s == 200 and all(p["state"] == "active" for sp in b["shard_placements"] for p in sp["placements"]):
            repaired = True
            break
        time.sleep(0.2)
    check("fault-worker-stale-repaired", repaired, b.get("shard_placements") if isinstance(b, dict) else b)
    # replicas hold the same rows
    same = True
    s, b = c.req("GET", "/v1/collections/s4r2")
    cid = None
    for w in st["workers"]:
        pass
    tables = {}
    for w in st["workers"]:
        out = psql(w["port"], "SELECT tablename FROM pg_tables WHERE schemaname = 'vectron_shards'")
        for t in out.split():
            tables.setdefault(t, []).append(w["port"])
    for t, ports in tables.items():
        sums = {psql(p, "SELECT count(*) || ':' || coalesce(sum(hashtext(id || coalesce(v::text, '') || deleted::text)), 0) FROM vectron_shards.%s" % t) for p in ports}
        if len(sums) != 1:
            same = False
    check("fault-worker-replicas-converge", repaired and same, tables)
    left = []
    for _ in range(60):
        left = [t for t in shard_tables(w2["port"]) if t in s8_tables]
        if not left:
            break
        time.sleep(0.2)
    check("delete-finishes-on-returned-node", not left, left)

    # a placement that passes its deadline is dropped and the shard retried
    s, b = c.req("GET", "/v1/collections/s3r3")
    mine = {sp["table"] for sp in b["shard_placements"]}
    victim = st["workers"][0]
    locks = [lock_table(victim["port"], t) for t in shard_tables(victim["port"]) if t in mine]
    t0 = time.time()
    oks = 0
    with short_deadline(2000):
        for _ in range(4):
            s, b = c.req("POST", "/v1/collections/s3r3/search", {"vector": mkvec(), "k": 5})
            oks += s == 200 and len(b["results"]) == 5
    took = time.time() - t0
    for lk in locks:
        unlock_table(lk)
    log = read_log()
    check("deadline-failover-to-replica", oks == 4 and ("deadline" in log or "57014" in log), (oks, took))


def fault_coordinator(c, st, mkvec):
    port = st["coordinator_port"]
    stop = threading.Event()
    acked, errors, stats = [], [], {"searches": 0}
    rnd = random.Random(9)

    def mv():
        return [rnd.randint(-16, 16) / 4.0 for _ in range(16)]
    th = threading.Thread(target=stream, args=(port, "s3r3", mv, stop, acked, errors, stats))
    th.start()
    time.sleep(1.0)
    r = subprocess.run([sys.executable, CLI, "cluster", "restart-coordinator", "--kill", "--dir", CLUSTER], capture_output=True, text=True)
    time.sleep(1.0)
    stop.set()
    th.join()
    check("fault-coordinator-restarted", r.returncode == 0, r.stderr)
    missing = []
    for j in range(0, len(acked), 500):
        s, b = c.req("POST", "/v1/collections/s3r3/points/get", {"ids": acked[j:j + 500]})
        got = {p["id"] for p in b.get("points", [])} if s == 200 else set()
        missing += [x for x in acked[j:j + 500] if x not in got]
    check("fault-coordinator-acked-writes-readable", len(acked) > 50 and not missing, (len(acked), missing[:5]))
    s, b = c.req("POST", "/v1/collections/s3r3/search", {"vector": mkvec(), "k": 5})
    check("fault-coordinator-serving-after-restart", s == 200 and len(b["results"]) == 5)


if __name__ == "__main__":
    main()
    print("   coordinator integration: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
