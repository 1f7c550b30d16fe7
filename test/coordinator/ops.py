#!/usr/bin/env python3
"""ops.py: the operations features (issue 6) against real PostgreSQL
processes and the real coordinator.

Brings up its own local cluster with `bin/vectron cluster up` (1 metadata
node, 3 workers, the coordinator, auth off) with JSON logs, a 300 ms
slow-query threshold and a 500 ms stats report.  It does not use the
cluster the other REST suites share (scripts/lib/rest_cluster.py) because
what it checks is cluster-wide and process-wide: totals of collections,
points and placements, counters since the coordinator started, a log that
is JSON from its first line, a rebalance that moves every placement in the
cluster, nodes added and removed, coordinators crashed mid-move with a
test-only setting.  On a shared cluster those would depend on what the
suites before it left behind.  It checks:
health and readiness (with a worker stopped and started again), /metrics
through `promtool check metrics`, request ids (in, out, and on the worker
as application_name), the JSON access log, the slow log, the admin
statistics endpoints and CLI tables, and a backup / restore round trip into
another shard count.  Appends "PASS ops:name" / "FAIL ops:name" to
$VX_RESULTS.
"""
import importlib.machinery
import json
import os
import random
import shutil
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
CLUSTER = os.path.join(WORK, "ops-cluster")

passed = failed = 0


def record(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("   FAIL %s %s" % (name, str(detail)[:2000]))
    if RESULTS:
        with open(RESULTS, "a") as f:
            f.write(("PASS " if ok else "FAIL ") + "ops:" + name + "\n")


def check(name, cond, detail=""):
    record(name, bool(cond), detail)
    return bool(cond)


def req(port, method, path, body=None, headers=None, raw=False):
    """One request on a fresh connection: (status, body, headers)."""
    return restclient.request(port, method, path, body, headers, raw)


def psql(st, port, sql):
    r = vectron.runas([os.path.join(st["pgbin"], "psql"), "-X", "-A", "-t", "-q", "-h", "127.0.0.1",
                       "-p", str(port), "-U", "postgres", "-d", "postgres", "-c", sql],
                      capture_output=True, text=True)
    return r.stdout.strip()


def cli(st, *args):
    env = dict(os.environ, VECTRON_URL="http://127.0.0.1:%d" % st["coordinator_port"],
               VX_PGBIN=st["pgbin"])
    return subprocess.run([sys.executable, CLI] + list(args), capture_output=True, text=True, env=env)


def wait_for(fn, timeout=20, step=0.2):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


def log_lines(st):
    out = []
    with open(os.path.join(CLUSTER, "coordinator.log"), errors="replace") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"_text": line})
    return out


def main():
    os.environ["VECTRON_LOG_FORMAT"] = "json"
    os.environ["VECTRON_SLOW_QUERY_MS"] = "300"
    os.environ["VECTRON_STATS_REPORT_MS"] = "500"
    os.environ["VECTRON_HEALTH_INTERVAL_MS"] = "300"
    os.environ["VECTRON_MAX_BODY_BYTES"] = str(16 << 20)
    t0 = time.time()
    r = subprocess.run([sys.executable, CLI, "cluster", "up", "--workers", "3", "--dir", CLUSTER],
                       capture_output=True, text=True)
    if not check("cluster-up", r.returncode == 0, r.stderr + r.stdout):
        return
    st = vectron.load_state(CLUSTER)
    print("   cluster up in %.1fs" % (time.time() - t0))
    try:
        run(st)
    except Exception:
        traceback.print_exc()
        record("exception", False, traceback.format_exc())
    finally:
        log = os.path.join(CLUSTER, "coordinator.log")
        if failed and os.path.exists(log):
            print("   --- coordinator.log (tail)")
            with open(log, errors="replace") as f:
                for line in f.readlines()[-30:]:
                    print("   " + line.rstrip()[:400])
        subprocess.run([sys.executable, CLI, "cluster", "down", "--dir", CLUSTER], capture_output=True)


def run(st):
    port = st["coordinator_port"]
    workers = {w["name"]: w for w in st["workers"]}

    # ---- health and readiness
    s, b, h = req(port, "GET", "/healthz")
    check("healthz", s == 200 and b["status"] == "ok")
    s, b, h = req(port, "GET", "/readyz")
    check("readyz-ready", s == 200 and b == {"ready": True}, (s, b))
    s, b, h = req(port, "POST", "/readyz")
    check("readyz-405-json", s == 405 and b["error"]["code"] == "METHOD_NOT_ALLOWED", (s, b))

    # ---- data: rt (3 shards, rf 2) and one (1 shard, rf 1, on one node)
    s, b, _ = req(port, "POST", "/v1/collections", {"name": "rt", "dimension": 8, "shards": 3,
                                                    "replication_factor": 2})
    check("create-rt", s == 201, (s, b))
    s, b, _ = req(port, "POST", "/v1/collections", {"name": "one", "dimension": 8, "shards": 1,
                                                    "replication_factor": 1})
    check("create-one", s == 201, (s, b))
    one_node = b["shard_placements"][0]["placements"][0]["node"]
    rnd = random.Random(6)
    points = {}
    for i in range(3000):
        pid = str(i) if i % 3 else "p-%d" % i
        vec = [round(rnd.uniform(-1, 1), 6) for _ in range(8)]
        if i % 7 == 0:
            payload = None
        elif i % 7 == 1:
            payload = {"nested": {"a": [1, 2, {"b": "ü"}], "n": None}, "i": i}
        else:
            payload = {"color": rnd.choice(["red", "green", "blue"]), "price": i * 0.5}
        points[pid] = (vec, payload)
    batch = []
    for pid, (vec, payload) in points.items():
        p = {"id": pid, "vector": vec}
        if payload is not None:
            p["payload"] = payload
        batch.append(p)
    ok = True
    for k in range(0, len(batch), 1000):
        s, b, _ = req(port, "PUT", "/v1/collections/rt/points", {"points": batch[k:k + 1000]})
        ok = ok and s == 200 and b["upserted"] == len(batch[k:k + 1000])
    s, b, _ = req(port, "PUT", "/v1/collections/one/points", {"points": batch[:200]})
    check("upsert", ok and s == 200, (s, b))

    # ---- request ids
    s, b, h = req(port, "POST", "/v1/collections/rt/search", {"vector": [0] * 8, "k": 5},
                  headers={"X-Request-Id": "ops-test-1"})
    check("request-id-echoed", s == 200 and h.get("x-request-id") == "ops-test-1", h)
    s, b, h = req(port, "GET", "/healthz", headers={"X-Request-Id": "bad id with spaces"})
    gen1 = h.get("x-request-id", "")
    s, b, h = req(port, "GET", "/healthz", headers={"X-Request-Id": "x" * 65})
    gen2 = h.get("x-request-id", "")
    check("request-id-invalid-replaced", gen1 and gen2 and gen1 != gen2 and " " not in gen1
          and len(gen2) < 65, (gen1, gen2))

    # ---- metrics through promtool
    for _ in range(5):
        req(port, "POST", "/v1/collections/rt/search", {"vector": [0.1] * 8, "k": 3})
    req(port, "GET", "/v1/collections/nosuch")
    s, text, h = req(port, "GET", "/metrics", raw=True)
    check("metrics-200", s == 200 and h.get("content-type", "").startswith("text/plain; version=0.0.4"), h)
    mf = os.path.join(WORK, "ops-metrics.txt")
    with open(mf, "w") as f:
        f.write(text)
    pt = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    check("metrics-promtool", pt.returncode == 0, pt.stdout + pt.stderr)

    def metric(name, **labels):
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            key, _, val = line.rpartition(" ")
            if key.split("{")[0] != name:
                continue
            if all('%s="%s"' % (k, v) in key for k, v in labels.items()):
                return float(val)
        return None

    check("metrics-build-info", metric("vectron_build_info") == 1)
    check("metrics-requests-by-route",
          (metric("vectron_http_requests_total", method="POST", route="/v1/collections/{name}/search",
                  status="200") or 0) >= 6
          and metric("vectron_http_requests_total", route="/v1/collections/{name}", status="404") == 1,
          [l for l in text.splitlines() if l.startswith("vectron_http_requests_total")])
    check("metrics-latency-histogram",
          (metric("vectron_http_request_duration_seconds_count", route="/v1/collections/{name}/search")
           or 0) >= 6 and metric("vectron_http_request_duration_seconds_bucket",
                                 route="/v1/collections/{name}/search", le="+Inf") is not None)
    check("metrics-fanout-per-node", all(metric("vectron_fanout_shard_duration_seconds_count", node=n)
                                         for n in workers), text[:0])
    check("metrics-points-upserted", metric("vectron_points_upserted_total", collection="rt") == 3000
          and metric("vectron_points_upserted_total", collection="one") == 200)
    check("metrics-searches", (metric("vectron_searches_total", collection="rt") or 0) >= 6
          and (metric("vectron_search_results_total", collection="rt") or 0) >= 20)
    check("metrics-placements", sum(metric("vectron_placements", node=n, state="active") or 0
                                    for n in workers) == 7)
    check("metrics-pool", all(metric("vectron_pool_connections", node=n, state="idle") is not None
                              for n in workers))
    check("metrics-retries-family", "# TYPE vectron_fanout_retries_total counter" in text
          and metric("vectron_partial_results_total") == 0)

    # ---- slow log, per-shard timings, application_name on the worker
    w = workers[one_node]
    table = psql(st, w["port"], "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                               "WHERE nspname = 'vectron_shards' AND relkind = 'r' ORDER BY c.oid DESC LIMIT 1")
    cmd = [os.path.join(st["pgbin"], "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(w["port"]),
           "-U", "postgres", "-d", "postgres", "-c",
           "BEGIN; LOCK TABLE vectron_shards.%s IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(1.5); COMMIT;" % table]
    if vectron.is_root():
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    locker = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # wait until the lock is really held (psql can be slow to start on a busy machine)
    wait_for(lambda: psql(st, w["port"], "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                                        "WHERE c.relname = '%s' AND l.mode = 'AccessExclusiveLock' AND l.granted" % table) == "1",
             10, 0.05)
    res = {}

    def slow_search():
        res["r"] = req(port, "POST", "/v1/collections/one/search", {"vector": [0] * 8, "k": 3},
                       headers={"X-Request-Id": "ops-slow-1"})
    th = threading.Thread(target=slow_search)
    th.start()
    app = wait_for(lambda: psql(st, w["port"], "SELECT application_name FROM pg_stat_activity "
                                              "WHERE application_name LIKE 'vectron-coordinator ops-slow-1%'"), 3, 0.05)
    th.join()
    locker.wait()
    check("request-id-on-worker", app == "vectron-coordinator ops-slow-1", app)
    s, b, _ = res["r"]
    check("slow-search-answers", s == 200 and len(b["results"]) == 3, (s, b))
    s, b, _ = req(port, "GET", "/v1/admin/slow")
    ent = [e for e in b.get("requests", []) if e["request_id"] == "ops-slow-1"]
    check("slow-log-entry", s == 200 and b["threshold_ms"] == 300 and ent and ent[0]["latency_ms"] >= 1000
          and ent[0]["shards"] and ent[0]["shards"][0]["node"] == one_node
          and ent[0]["shards"][0]["ms"] >= 1000, b)
    s, b, _ = req(port, "GET", "/v1/admin/slow?limit=0")
    check("slow-log-bad-limit-400", s == 400 and b["error"]["code"] == "INVALID_ARGUMENT", (s, b))
    r = cli(st, "admin", "slow")
    check("cli-admin-slow", r.returncode == 0 and "ops-slow-1" in r.stdout and "slowest shard" in r.stdout,
          r.stdout + r.stderr)

    # ---- the JSON access log
    time.sleep(0.2)
    lines = log_lines(st)
    bad = [l for l in lines if "_text" in l]
    check("log-all-json", not bad and len(lines) > 20, bad[:3])
    acc = [l for l in lines if l.get("request_id") == "ops-test-1" and "status" in l]
    check("log-access-fields", acc and all(k in acc[0] for k in ("time", "level", "request_id", "route",
                                                                  "status", "latency_ms", "method"))
          and acc[0]["route"] == "/v1/collections/{name}/search" and acc[0]["status"] == 200, acc)
    e404 = [l for l in lines if l.get("status") == 404 and l.get("path") == "/v1/collections/nosuch"]
    check("log-error-code", e404 and e404[0].get("error_code") == "COLLECTION_NOT_FOUND", e404)
    sl = [l for l in lines if l.get("request_id") == "ops-slow-1" and l.get("slow")]
    check("log-slow-line", sl and sl[0]["level"] == "warning" and sl[0].get("shards"), sl)

    # ---- admin statistics and CLI tables
    def stats_ready():
        s, b, _ = req(port, "GET", "/v1/admin/stats")
        return b if s == 200 and b["coordinators"] and b["coordinators"][0]["requests_total"] > 10 else None
    b = wait_for(stats_ready, 10)
    t = (b or {}).get("totals", {})
    check("admin-stats", b and t["collections"] == 2 and t["points"] == 3200 and t["nodes_up"] == 3
          and t["coordinators"] == 1 and t["index_bytes"] > 0
          and b["coordinators"][0]["points_upserted_total"] == 3200, b)
    s, b, _ = req(port, "GET", "/v1/admin/collections")
    rt = [c for c in b["collections"] if c["name"] == "rt"]
    check("admin-collections", s == 200 and rt and rt[0]["points"] == 3000 and rt[0]["count_exact"]
          and sum(sh["count"] for sh in rt[0]["shard_detail"]) == 3000
          and all(len(sh["placements"]) == 2 and all(p["count"] == sh["count"] for p in sh["placements"])
                  for sh in rt[0]["shard_detail"]), b)
    s, b, _ = req(port, "GET", "/v1/admin/nodes")
    check("admin-nodes", s == 200 and len(b["nodes"]) == 3 and all(
        n["health"] == "ok" and n["version"].startswith("15") and n["disk_bytes"] > 0
        and n["connections"] >= 1 and n["extension_version"] for n in b["nodes"])
        and sum(n["placements"] for n in b["nodes"]) == 7, b)
    for sub, want in (("stats", "coordinator"), ("collections", "index"), ("nodes", "health")):
        r = cli(st, "admin", sub)
        check("cli-admin-" + sub, r.returncode == 0 and want in r.stdout, r.stdout + r.stderr)

    # ---- readiness with a worker down, then back
    wd = workers[one_node]
    vectron.runas([os.path.join(st["pgbin"], "pg_ctl"), "-D", wd["data"], "-m", "immediate", "-w", "stop"],
                  capture_output=True)
    got = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(req(port, "GET", "/readyz")), 15)
    s, b = (got[0], got[1]) if got else (None, None)
    check("readyz-503-worker-down", s == 503 and b["ready"] is False and any(
        m.get("component") == "shard" and m.get("collection") == "one" and m.get("shard") == 0
        for m in b["missing"]), (s, b))
    s, text, _ = req(port, "GET", "/metrics", raw=True)
    check("metrics-node-down", ('vectron_node_up{node="%s"} 0' % one_node) in text)
    s, b, _ = req(port, "GET", "/v1/admin/nodes")
    dn = [n for n in b.get("nodes", []) if n["name"] == one_node]
    check("admin-nodes-down", s == 200 and dn and dn[0]["up"] is False and "error" in dn[0], b)
    # rt (rf 2) keeps answering in full
    s, b, _ = req(port, "POST", "/v1/collections/rt/search", {"vector": [0.2] * 8, "k": 10})
    check("search-rf2-while-down", s == 200 and len(b["results"]) == 10 and not b["partial"], (s, b))
    vectron.runas([os.path.join(st["pgbin"], "pg_ctl"), "-D", wd["data"], "-l",
                   os.path.join(wd["dir"], "server.log"), "-w", "start"], capture_output=True)
    got = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(req(port, "GET", "/readyz")), 20)
    check("readyz-200-worker-back", got and got[1] == {"ready": True}, got)

    # ---- backup and restore round trip
    # wait for repairs (a write may have marked placements stale) to settle
    wait_for(lambda: all(p["state"] == "active" for c in req(port, "GET", "/v1/admin/collections")[1]["collections"]
                         for sh in c["shard_detail"] for p in sh["placements"]), 30)
    bdir = os.path.join(WORK, "ops-backup")
    shutil.rmtree(bdir, ignore_errors=True)
    t0 = time.time()
    r = cli(st, "backup", "--all", "--out", bdir)
    bt = time.time() - t0
    check("backup-all", r.returncode == 0 and os.path.exists(os.path.join(bdir, "rt", "manifest.json"))
          and os.path.exists(os.path.join(bdir, "one", "manifest.json")), r.stdout + r.stderr)
    with open(os.path.join(bdir, "rt", "manifest.json")) as f:
        man = json.load(f)
    check("backup-manifest", man["rows"] == 3000 and len(man["shards"]) == 3
          and man["collection"]["dimension"] == 8 and man["collection"]["replication_factor"] == 2
          and all(len(s["sha256"]) == 64 for s in man["shards"])
          and sum(s["rows"] for s in man["shards"]) == 3000, man)
    check("backup-progress", "shard 3/3" in r.stderr, r.stderr)
    bytes_total = sum(s["bytes"] for s in man["shards"])
    print("   backup of 3000 x 8-d points: %d bytes (%.1f bytes/point), %.2fs" % (bytes_total, bytes_total / 3000.0, bt))
    t0 = time.time()
    r = cli(st, "restore", "--in", bdir, "--collection", "rt", "--as", "rt2", "--shards", "2", "--rf", "1")
    print("   restore into 2 shards: %.2fs" % (time.time() - t0))
    check("restore-as", r.returncode == 0 and "checksums verified" in r.stdout, r.stdout + r.stderr)
    ids = list(points)
    same = True
    for k in range(0, len(ids), 1000):
        body = {"ids": ids[k:k + 1000], "with_vector": True, "with_payload": True}
        s1, b1, _ = req(port, "POST", "/v1/collections/rt/points/get", body)
        s2, b2, _ = req(port, "POST", "/v1/collections/rt2/points/get", body)
        key = lambda p: p["id"]
        if s1 != 200 or s2 != 200 or sorted(b1["points"], key=key) != sorted(b2["points"], key=key) \
                or len(b1["points"]) != len(ids[k:k + 1000]):
            same = False
            print("   differ:", s1, s2, str(b1)[:300], str(b2)[:300])
            break
    check("restore-same-points", same)
    s, b, _ = req(port, "GET", "/v1/collections/rt2")
    check("restore-definition", s == 200 and b["shards"] == 2 and b["replication_factor"] == 1
          and b["dimension"] == 8 and b["metric"] == "l2", b)
    same = True
    for q in range(10):
        v = [rnd.uniform(-1, 1) for _ in range(8)]
        body = {"vector": v, "k": 10, "ef_search": 1000, "with_payload": True}
        s1, b1, _ = req(port, "POST", "/v1/collections/rt/search", body)
        s2, b2, _ = req(port, "POST", "/v1/collections/rt2/search", body)
        if s1 != 200 or s2 != 200 or [(x["id"], round(x["distance"], 5), x["payload"]) for x in b1["results"]] != \
                [(x["id"], round(x["distance"], 5), x["payload"]) for x in b2["results"]]:
            same = False
            print("   search differs:", b1, b2)
            break
    check("restore-same-search", same)
    # a damaged backup is refused before anything is created
    bad = os.path.join(WORK, "ops-backup-bad")
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(os.path.join(bdir, "rt"), bad)
    with open(os.path.join(bad, man["shards"][1]["file"]), "r+b") as f:
        f.seek(40)
        c = f.read(1)
        f.seek(40)
        f.write(bytes([c[0] ^ 0xff]))
    r = cli(st, "restore", "--in", bad, "--as", "rt3")
    s, b, _ = req(port, "GET", "/v1/collections/rt3")
    check("restore-damaged-refused", r.returncode != 0 and "SHA-256" in r.stderr and s == 404, (r.stderr, s))
    # restoring onto an existing name fails with the API's 409
    r = cli(st, "restore", "--in", bdir, "--collection", "one")
    check("restore-existing-name-fails", r.returncode != 0 and "COLLECTION_EXISTS" in r.stderr, r.stderr)
    test_moves(st)
    test_rebalance(st)
    test_rereplication(st)
    print("   %d passed, %d failed" % (passed, failed))


def worker_state(st):
    """Per worker: replication slots, publications, subscriptions, shard tables."""
    out = {}
    for w in st["workers"]:
        out[w["name"]] = {
            "slots": psql(st, w["port"], "SELECT count(*) FROM pg_replication_slots"),
            "pubs": psql(st, w["port"], "SELECT count(*) FROM pg_publication"),
            "subs": psql(st, w["port"], "SELECT count(*) FROM pg_subscription"),
            "tables": set(psql(st, w["port"], "SELECT relname FROM pg_class WHERE relkind = 'r' AND "
                                              "relnamespace = 'vectron_shards'::regnamespace").split()),
        }
    return out


def replication_clean(ws):
    return all(v["slots"] == "0" and v["pubs"] == "0" and v["subs"] == "0"
               and not any(t.startswith("vx_move_") for t in v["tables"]) for v in ws.values())


def shard_of(port, coll, index):
    s, b, _ = req(port, "GET", "/v1/admin/collections")
    for c in b["collections"]:
        if c["name"] == coll:
            for sh in c["shard_detail"]:
                if sh["index"] == index:
                    return sh
    return None


def wait_move(port, mid, timeout=60):
    def done():
        s, b, _ = req(port, "GET", "/v1/admin/moves/%d" % mid)
        return b if s == 200 and b["state"] != "running" else None
    return wait_for(done, timeout, 0.1)


def test_moves(st):
    port = st["coordinator_port"]
    names = [w["name"] for w in st["workers"]]
    s, b, _ = req(port, "POST", "/v1/collections", {"name": "mv", "dimension": 8, "shards": 2,
                                                    "replication_factor": 1})
    check("move-create", s == 201, (s, b))
    rnd = random.Random(7)
    pre = [{"id": "m%d" % i, "vector": [rnd.uniform(-1, 1) for _ in range(8)], "payload": {"seq": 0}}
           for i in range(4000)]
    for k in range(0, len(pre), 1000):
        req(port, "PUT", "/v1/collections/mv/points", {"points": pre[k:k + 1000]})
    acked = {p["id"]: 0 for p in pre}
    ever = set(acked)
    stats = {"write_fail": 0, "writes": 0, "search_fail": 0, "searches": 0, "errors": []}
    stop = threading.Event()
    lock = threading.Lock()

    def writer(parity):
        wr = random.Random(parity)
        seq = 0
        while not stop.is_set():
            seq += 1
            ids = sorted({"m%d" % (2 * wr.randrange(3000) + parity) for _ in range(20)})
            pts = [{"id": i, "vector": [wr.uniform(-1, 1) for _ in range(8)], "payload": {"seq": seq}} for i in ids]
            with lock:
                ever.update(ids)
            try:
                s, b, _ = req(port, "PUT", "/v1/collections/mv/points", {"points": pts})
            except Exception as e:
                s, b = None, str(e)
            with lock:
                stats["writes"] += 1
                if s == 200:
                    for i in ids:
                        acked[i] = seq
                else:
                    stats["write_fail"] += 1
                    stats["errors"].append((s, b))

    def searcher():
        sr = random.Random(3)
        while not stop.is_set():
            try:
                s, b, _ = req(port, "POST", "/v1/collections/mv/search",
                              {"vector": [sr.uniform(-1, 1) for _ in range(8)], "k": 10})
            except Exception as e:
                s, b = None, str(e)
            with lock:
                stats["searches"] += 1
                if s != 200 or len(b["results"]) != 10 or b["partial"]:
                    stats["search_fail"] += 1
                    stats["errors"].append((s, b))

    sh = shard_of(port, "mv", 0)
    src = sh["placements"][0]["node"]
    dst = [n for n in names if n not in [p["node"] for p in sh["placements"]]][0]
    threads = [threading.Thread(target=writer, args=(0,)), threading.Thread(target=writer, args=(1,)),
               threading.Thread(target=searcher)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    t0 = time.time()
    s, b, _ = req(port, "POST", "/v1/admin/shards/%d/move" % sh["id"], {"from": src, "to": dst})
    ok = check("move-started-202", s == 202 and b["state"] == "running", (s, b))
    m = wait_move(port, b["move_id"]) if ok else None
    took = time.time() - t0
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    print("   move of %d rows under load: %.2fs; %d writes, %d searches during the run"
          % ((m or {}).get("rows_copied") or 0, took, stats["writes"], stats["searches"]))
    check("move-done", m and m["state"] == "done" and m["switched"], m)
    sh2 = shard_of(port, "mv", 0)
    check("move-map-switched", sh2 and [p["node"] for p in sh2["placements"]] == [dst]
          and sh2["placements"][0]["state"] == "active", sh2)
    check("move-no-failed-writes", stats["write_fail"] == 0 and stats["writes"] > 20, stats["errors"][:3])
    check("move-searches-never-failed", stats["search_fail"] == 0 and stats["searches"] > 20,
          stats["errors"][:3])
    # every acknowledged write is there, with its last acknowledged value, once
    ids = sorted(ever)
    got = {}
    dup = False
    for k in range(0, len(ids), 1000):
        s, b, _ = req(port, "POST", "/v1/collections/mv/points/get", {"ids": ids[k:k + 1000], "with_payload": True})
        for p in b["points"]:
            dup = dup or p["id"] in got
            got[p["id"]] = p["payload"]["seq"]
    lost = [i for i, q in acked.items() if got.get(i) != q]
    check("move-no-lost-writes", not lost, lost[:10])
    s, b, _ = req(port, "GET", "/v1/admin/collections")
    mvc = [c for c in b["collections"] if c["name"] == "mv"][0]
    check("move-no-duplicates", not dup and mvc["points"] == len(acked) == len(got), (dup, mvc["points"], len(acked), len(got)))
    ws = wait_for(lambda: (lambda w: w if replication_clean(w) and sh["table"] not in w[src]["tables"] else None)(worker_state(st)), 15)
    check("move-cleaned-up", ws and sh["table"] in ws[dst]["tables"], worker_state(st))
    s, text, _ = req(port, "GET", "/metrics", raw=True)
    check("move-metrics-route", 'route="/v1/admin/shards/{id}/move",status="202"' in text)
    r = cli(st, "admin", "moves")
    check("cli-admin-moves", r.returncode == 0 and "done" in r.stdout and src in r.stdout, r.stdout + r.stderr)

    # bad requests
    s, b, _ = req(port, "POST", "/v1/admin/shards/999999/move", {"from": src, "to": dst})
    check("move-unknown-shard-404", s == 404 and b["error"]["code"] == "SHARD_NOT_FOUND", (s, b))
    s, b, _ = req(port, "POST", "/v1/admin/shards/%d/move" % sh["id"], {"from": src, "to": dst})
    check("move-no-placement-409", s == 409 and b["error"]["code"] == "NO_ACTIVE_PLACEMENT", (s, b))
    s, b, _ = req(port, "POST", "/v1/admin/shards/%d/move" % sh["id"], {"from": dst, "to": dst})
    check("move-same-node-400", s == 400 and b["error"]["code"] == "INVALID_ARGUMENT", (s, b))
    s, b, _ = req(port, "GET", "/v1/admin/moves/424242")
    check("move-get-unknown-404", s == 404 and b["error"]["code"] == "MOVE_NOT_FOUND", (s, b))

    # a coordinator that dies during a move: before the switch the move is
    # rolled back at the next start, after it the move is finished
    steps = ["sync", "drain"]
    if os.environ.get("VX_CHECK_FULL") == "1":
        steps = ["target_table", "publication", "subscription", "sync", "index", "fence", "switch",
                 "grace", "drain", "cleanup"]
    count0 = mvc["points"]
    for step in steps:
        sh = shard_of(port, "mv", 1)
        src = sh["placements"][0]["node"]
        dst = [n for n in names if n != src][0]
        env = dict(os.environ, VECTRON_TEST_MOVE_CRASH_AT=step)
        subprocess.run([sys.executable, CLI, "cluster", "restart-coordinator", "--dir", CLUSTER],
                       capture_output=True, env=env)
        s, b, _ = req(port, "POST", "/v1/admin/shards/%d/move" % sh["id"], {"from": src, "to": dst})
        mid = b.get("move_id") if s == 202 else None
        pid = vectron.coordinator_pid(CLUSTER)
        died = wait_for(lambda: not vectron.pid_alive(pid), 20)
        subprocess.run([sys.executable, CLI, "cluster", "restart-coordinator", "--dir", CLUSTER],
                       capture_output=True)
        m = wait_move(port, mid, 60) if mid else None
        forward = step in ("grace", "drain", "cleanup")
        want = dst if forward else src
        # the map reload follows the move's end by a moment
        sh2 = wait_for(lambda: (lambda x: x if x and [p["node"] for p in x["placements"]] == [want] else None)(
            shard_of(port, "mv", 1)), 10) or shard_of(port, "mv", 1)
        ws = wait_for(lambda: (lambda w: w if replication_clean(w) else None)(worker_state(st)), 20)
        s, b, _ = req(port, "GET", "/v1/admin/collections")
        cnt = [c for c in b["collections"] if c["name"] == "mv"][0]["points"]
        check("move-crash-at-%s" % step,
              died and m and m["state"] == ("done" if forward else "rolled_back")
              and [p["node"] for p in sh2["placements"]] == [want]
              and sh2["placements"][0]["state"] == "active" and ws is not None
              and (forward or sh["table"] not in ws[dst]["tables"]) and cnt == count0,
              (step, died, m, sh2, worker_state(st), cnt, count0))
    # and a move after all that still works
    sh = shard_of(port, "mv", 1)
    src = sh["placements"][0]["node"]
    dst = [n for n in names if n != src][-1]
    r = cli(st, "shard", "move", str(sh["id"]), "--from", src, "--to", dst)
    check("cli-shard-move", r.returncode == 0 and "done" in r.stdout, r.stdout + r.stderr)


class Load:
    """An upsert stream (one thread, ids of coll) and a search stream, with
    the last acknowledged value of every id, to check after a data move."""

    def __init__(self, port, coll, ids):
        self.port, self.coll, self.ids = port, coll, ids
        self.acked, self.fail, self.n, self.sfail, self.sn, self.errors = {}, 0, 0, 0, 0, []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.write), threading.Thread(target=self.search)]

    def write(self):
        r = random.Random(11)
        seq = 1000000
        while not self.stop.is_set():
            seq += 1
            ids = sorted(set(r.choice(self.ids) for _ in range(20)))
            pts = [{"id": i, "vector": [r.uniform(-1, 1) for _ in range(8)], "payload": {"seq": seq}} for i in ids]
            try:
                s, b, _ = req(self.port, "PUT", "/v1/collections/%s/points" % self.coll, {"points": pts})
            except Exception as e:
                s, b = None, str(e)
            self.n += 1
            if s == 200:
                for i in ids:
                    self.acked[i] = seq
            else:
                self.fail += 1
                self.errors.append((s, b))

    def search(self):
        r = random.Random(12)
        while not self.stop.is_set():
            try:
                s, b, _ = req(self.port, "POST", "/v1/collections/%s/search" % self.coll,
                              {"vector": [r.uniform(-1, 1) for _ in range(8)], "k": 10})
            except Exception as e:
                s, b = None, str(e)
            self.sn += 1
            if s != 200 or len(b["results"]) != 10 or b["partial"]:
                self.sfail += 1
                self.errors.append((s, b))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        for t in self.threads:
            t.join()

    def lost(self):
        ids = sorted(self.acked)
        got = {}
        for k in range(0, len(ids), 1000):
            s, b, _ = req(self.port, "POST", "/v1/collections/%s/points/get" % self.coll,
                          {"ids": ids[k:k + 1000], "with_payload": True})
            for p in b["points"]:
                got[p["id"]] = p["payload"]["seq"]
        return [i for i, q in self.acked.items() if got.get(i) != q]


def placement_counts(port):
    s, b, _ = req(port, "GET", "/v1/admin/collections")
    cnt = {}
    for c in b["collections"]:
        for sh in c["shard_detail"]:
            for p in sh["placements"]:
                cnt[p["node"]] = cnt.get(p["node"], 0) + 1
    return cnt


def test_rebalance(st):
    port = st["coordinator_port"]
    w4 = vectron.pg_start_instance(CLUSTER, "w4", True, st["pgbin"])
    try:
        s, b, _ = req(port, "POST", "/v1/admin/nodes", {"name": "w4", "host": "127.0.0.1", "port": w4["port"]})
        check("rebalance-add-node", s == 201, (s, b))
        before = placement_counts(port)
        s, b, _ = req(port, "POST", "/v1/admin/rebalance", {"dry_run": True})
        plan = b.get("moves", []) if s == 200 else []
        total = sum(before.values())
        check("rebalance-dry-run-plan", s == 200 and b["dry_run"] and plan
              and sum(1 for m in plan if m["to"] == "w4") == total // 4
              and all(m["state"] == "pending" and m["bytes"] > 0 for m in plan), (s, b, before))
        check("rebalance-dry-run-moves-nothing", placement_counts(port) == before)
        ids = ["m%d" % i for i in range(0, 6000, 3)]
        with Load(port, "mv", ids) as load:
            time.sleep(0.3)
            s, b, _ = req(port, "POST", "/v1/admin/rebalance", {})
            check("rebalance-started-202", s == 202 and b["state"] == "running" and b["total"] == len(plan), (s, b))
            s2, b2, _ = req(port, "POST", "/v1/admin/rebalance", {})
            check("rebalance-second-409", s2 == 409 and b2["error"]["code"] == "REBALANCE_RUNNING", (s2, b2))
            job = wait_for(lambda: (lambda r: r[1] if r[1]["state"] in ("done", "failed") else None)(
                req(port, "GET", "/v1/admin/rebalance")), 120, 0.2)
            time.sleep(0.3)
        after = placement_counts(port)
        check("rebalance-done", job and job["state"] == "done" and job["done"] == len(plan), job)
        check("rebalance-even", after.get("w4", 0) == total // 4 and max(after.values()) - min(after.values()) <= 1
              and sum(after.values()) == total, after)
        check("rebalance-no-failed-writes-or-searches", load.fail == 0 and load.sfail == 0 and load.n > 10,
              (load.fail, load.sfail, load.errors[:3]))
        lost = load.lost()
        check("rebalance-no-lost-writes", not lost, lost[:10])
        # drain w4: the rebalance empties it, then it can be removed
        s, b, _ = req(port, "POST", "/v1/admin/nodes/w4/drain")
        s, b, _ = req(port, "POST", "/v1/admin/rebalance", {"dry_run": True})
        check("rebalance-drain-plan", s == 200 and b["total"] >= after.get("w4", 0)
              and sum(1 for m in b["moves"] if m["from"] == "w4") == after.get("w4", 0), b)
        r = cli(st, "rebalance", "--wait")
        check("cli-rebalance", r.returncode == 0 and "done" in r.stdout, r.stdout + r.stderr)
        final = placement_counts(port)
        check("rebalance-drained", "w4" not in final and sum(final.values()) == total, final)
        s, b, _ = req(port, "DELETE", "/v1/admin/nodes/w4")
        check("rebalance-remove-drained-node", s == 200, (s, b))
        ws = wait_for(lambda: (lambda w: w if replication_clean(w) else None)(worker_state(st)), 15)
        check("rebalance-replication-clean", ws is not None, worker_state(st))
    finally:
        vectron.runas([os.path.join(st["pgbin"], "pg_ctl"), "-D", w4["data"], "-m", "immediate", "stop"],
                      capture_output=True)


def test_rereplication(st):
    """A node gone for good: drain it, and the rebalance copies each of its
    placements from a surviving replica to another node (replication factor
    restored) while writes and searches go on."""
    port = st["coordinator_port"]
    w5 = vectron.pg_start_instance(CLUSTER, "w5", True, st["pgbin"])
    try:
        s, b, _ = req(port, "POST", "/v1/admin/nodes", {"name": "w5", "host": "127.0.0.1", "port": w5["port"]})
        check("rerepl-add-node", s == 201, (s, b))
        s, b, _ = req(port, "POST", "/v1/collections", {"name": "rr", "dimension": 8, "shards": 4,
                                                        "replication_factor": 2})
        on_w5 = sum(1 for sp in b.get("shard_placements", []) for p in sp["placements"] if p["node"] == "w5")
        check("rerepl-create", s == 201 and on_w5 > 0, (s, b))
        rnd = random.Random(5)
        ids = ["r%d" % i for i in range(2000)]
        pts = [{"id": i, "vector": [rnd.uniform(-1, 1) for _ in range(8)], "payload": {"seq": 0}} for i in ids]
        for k in range(0, len(pts), 1000):
            req(port, "PUT", "/v1/collections/rr/points", {"points": pts[k:k + 1000]})
        vectron.runas([os.path.join(st["pgbin"], "pg_ctl"), "-D", w5["data"], "-m", "immediate", "-w", "stop"],
                      capture_output=True)
        down = wait_for(lambda: any(n["name"] == "w5" and not n["up"] for n in req(port, "GET", "/v1/admin/nodes")[1]["nodes"]), 15)
        check("rerepl-node-down", down)
        with Load(port, "rr", ids) as load:
            time.sleep(0.3)
            s, b, _ = req(port, "POST", "/v1/admin/nodes/w5/drain")
            s, b, _ = req(port, "POST", "/v1/admin/rebalance", {"dry_run": True})
            rep = [m for m in b.get("moves", []) if m.get("replaces") == "w5"]
            check("rerepl-plan", s == 200 and len(rep) == on_w5 and all(m["from"] != "w5" and m["to"] != "w5" for m in rep), b)
            s, b, _ = req(port, "POST", "/v1/admin/rebalance", {})
            job = wait_for(lambda: (lambda r: r[1] if r[1]["state"] in ("done", "failed") else None)(
                req(port, "GET", "/v1/admin/rebalance")), 120, 0.2)
            time.sleep(0.3)
        check("rerepl-done", job and job["state"] == "done", job)
        s, b, _ = req(port, "GET", "/v1/admin/collections")
        rr = [c for c in b["collections"] if c["name"] == "rr"][0]
        check("rerepl-factor-restored", all(len(sh["placements"]) == 2 and all(p["state"] == "active" and p["node"] != "w5"
                                                                               for p in sh["placements"])
                                            and len({p["node"] for p in sh["placements"]}) == 2
                                            and sh["placements"][0]["count"] == sh["placements"][1]["count"]
                                            for sh in rr["shard_detail"]) and rr["points"] == 2000, rr)
        check("rerepl-no-failed-writes-or-searches", load.fail == 0 and load.sfail == 0 and load.n > 5,
              (load.fail, load.sfail, load.errors[:3]))
        lost = load.lost()
        check("rerepl-no-lost-writes", not lost, lost[:10])
        s, b, _ = req(port, "DELETE", "/v1/admin/nodes/w5")
        check("rerepl-remove-node", s == 200, (s, b))
        ws = wait_for(lambda: (lambda w: w if replication_clean(w) else None)(worker_state(st)), 15)
        check("rerepl-replication-clean", ws is not None, worker_state(st))
        s, text, _ = req(port, "GET", "/metrics", raw=True)
        pt = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        done_moves = [l for l in text.splitlines() if l.startswith('vectron_shard_moves_total{result="done"}')]
        check("metrics-moves-and-rebalance", pt.returncode == 0 and done_moves and float(done_moves[0].split()[-1]) >= 5
              and ('vectron_rebalance_moves{state="done"} %d' % job["done"]) in text
              and "vectron_shard_moves_running 0" in text, (pt.stdout + pt.stderr, done_moves))
    finally:
        vectron.runas([os.path.join(st["pgbin"], "pg_ctl"), "-D", w5["data"], "-m", "immediate", "stop"],
                      capture_output=True)


if __name__ == "__main__":
    main()
