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
    # tombstone GC every second, for tombstones older than 4 s; short
    # repair leases (test_maintenance)
    os.environ["VECTRON_TOMBSTONE_GC_INTERVAL"] = "1"
    os.environ["VECTRON_TOMBSTONE_RETENTION"] = "4"
    os.environ["VECTRON_REPAIR_LEASE_MS"] = "3000"
    os.environ["VECTRON_MOVE_LEASE_MS"] = "6000"
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
    if os.environ.get("VX_OPS_ONLY") == "maintenance":     # a shortcut while developing
        test_maintenance(st)
        print("   %d passed, %d failed" % (passed, failed))
        return

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
    test_maintenance(st)
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


# ---------------------------------------------------------------- maintenance:
# tombstone GC, repair leases, asynchronous DNS

def metric_value(text, name, **labels):
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, val = line.rpartition(" ")
        if key.split("{")[0] == name and all('%s="%s"' % (k, v) in key for k, v in labels.items()):
            return float(val)
    return None


def restart_coordinator(extra_env=None, kill=False):
    env = dict(os.environ)
    env.update(extra_env or {})
    args = [sys.executable, CLI, "cluster", "restart-coordinator", "--dir", CLUSTER] + (["--kill"] if kill else [])
    return subprocess.run(args, capture_output=True, text=True, env=env)


def stop_worker(st, w):
    vectron.runas([os.path.join(st["pgbin"], "pg_ctl"), "-D", w["data"], "-m", "immediate", "-w", "stop"],
                  capture_output=True)


def start_worker(st, w):
    vectron.runas([os.path.join(st["pgbin"], "pg_ctl"), "-D", w["data"], "-l",
                   os.path.join(w["dir"], "server.log"), "-w", "start"], capture_output=True)


def all_active(port, coll):
    s, b, _ = req(port, "GET", "/v1/admin/collections")
    c = [c for c in b.get("collections", []) if c["name"] == coll]
    return bool(c) and all(p["state"] == "active" for sh in c[0]["shard_detail"] for p in sh["placements"])


def table_digest(st, w, table, where="true"):
    """Every row of a shard table on one worker: id, version, deleted, vector, payload."""
    return psql(st, w["port"], "SELECT count(*) || ':' || coalesce(md5(string_agg(id || '|' || version || '|' || "
                               "deleted || '|' || coalesce(v::text, '') || '|' || coalesce(payload::text, ''), "
                               "',' ORDER BY id)), '') FROM vectron_shards.%s WHERE %s" % (table, where))


def tombstones(st, w, table):
    return int(psql(st, w["port"], "SELECT count(*) FROM vectron_shards.%s WHERE deleted" % table) or -1)


def test_maintenance(st):
    test_tombstone_gc(st)
    test_repair_lease(st)
    test_move_lease(st)
    test_async_dns(st)


def test_tombstone_gc(st):
    """Delete tombstones are collected once older than tombstone_retention
    (4 s here) on every replica, never while a placement of the shard is
    stale, and deleted points stay deleted through a worker restart and
    repair."""
    port = st["coordinator_port"]
    workers = {w["name"]: w for w in st["workers"]}
    s, b, _ = req(port, "POST", "/v1/collections", {"name": "gc", "dimension": 8, "shards": 2,
                                                    "replication_factor": 2})
    if not check("gc-create", s == 201, (s, b)):
        return
    rnd = random.Random(21)
    pts = [{"id": "g%d" % i, "vector": [rnd.uniform(-1, 1) for _ in range(8)], "payload": {"i": i}}
           for i in range(3000)]
    for k in range(0, len(pts), 1000):
        req(port, "PUT", "/v1/collections/gc/points", {"points": pts[k:k + 1000]})
    shards = [shard_of(port, "gc", i) for i in range(2)]
    placements = [(sh["table"], workers[p["node"]]) for sh in shards for p in sh["placements"]]
    s0, t0, _ = req(port, "GET", "/metrics", raw=True)
    before = metric_value(t0, "vectron_tombstones_collected_total") or 0
    # 1. delete 1000 points: tombstones first, gone from every replica later
    first = ["g%d" % i for i in range(1000)]
    s, b, _ = req(port, "POST", "/v1/collections/gc/points/delete", {"ids": first})
    t_del = time.time()
    check("gc-delete", s == 200 and b["deleted"] == 1000, (s, b))
    now = sum(tombstones(st, w, t) for t, w in placements)
    check("gc-tombstones-written", now == 2000 or time.time() - t_del > 3.5, (now, time.time() - t_del))
    gone = wait_for(lambda: all(tombstones(st, w, t) == 0 for t, w in placements), 20, 0.2)
    took = time.time() - t_del
    print("   tombstones of 1000 deleted points collected on every replica after %.1fs" % took)
    check("gc-collected-every-replica", gone and took >= 3.5,
          (took, [(t, w["name"], tombstones(st, w, t)) for t, w in placements]))
    live = sum(int(psql(st, w["port"], "SELECT count(*) FROM vectron_shards.%s" % t)) for t, w in placements)
    check("gc-live-rows-kept", live == 2 * 2000, live)
    s, text, _ = req(port, "GET", "/metrics", raw=True)
    check("gc-metric", (metric_value(text, "vectron_tombstones_collected_total") or 0) - before >= 2000
          and (metric_value(text, "vectron_tombstone_gc_passes_total", result="done") or 0) >= 1,
          [l for l in text.splitlines() if "tombstone" in l])

    # 2. a replica down during a delete is stale: the surviving replica keeps
    # its tombstones (GC does not run on that shard) however old they get;
    # after the restart the repair copies them, then GC removes them, and
    # nothing comes back
    down = shards[0]["placements"][1]["node"]
    wd = workers[down]
    stop_worker(st, wd)
    second = ["g%d" % i for i in range(1000, 1500)]
    s, b, _ = req(port, "POST", "/v1/collections/gc/points/delete", {"ids": second})
    check("gc-delete-with-replica-down", s == 200 and b["deleted"] == 500, (s, b))
    meta = st["meta"]["port"]
    stale = psql(st, meta, "SELECT count(*) FROM vectron_meta.placement p JOIN vectron_meta.node n ON n.id = p.node_id "
                           "WHERE n.name = '%s' AND p.state = 'stale'" % down)
    time.sleep(6.5)  # > retention + 2 GC intervals: these tombstones are now old enough
    held = []
    for sh in shards:
        on_down = any(p["node"] == down for p in sh["placements"])
        for p in sh["placements"]:
            if p["node"] != down:
                held.append((sh["table"], p["node"], on_down, tombstones(st, workers[p["node"]], sh["table"])))
    check("gc-not-while-stale", int(stale or 0) >= 1 and all(n > 0 for _, _, on_down, n in held if on_down),
          (stale, held))
    # a shard with no placement on the stopped worker is collected meanwhile
    healthy = [n for _, _, on_down, n in held if not on_down]
    check("gc-runs-on-fully-active-shards", all(n == 0 for n in healthy), held)
    start_worker(st, wd)
    ok = wait_for(lambda: all_active(port, "gc") and all(tombstones(st, w, t) == 0 for t, w in placements), 40, 0.3)
    check("gc-after-repair-collected", ok, [(t, w["name"], tombstones(st, w, t)) for t, w in placements])
    deleted = first + second
    resurrected = set()
    for _ in range(4):  # reads go round-robin over replicas
        for k in range(0, len(deleted), 1000):
            s, b, _ = req(port, "POST", "/v1/collections/gc/points/get", {"ids": deleted[k:k + 1000]})
            resurrected.update(p["id"] for p in (b or {}).get("points", []))
    on_disk = sum(int(psql(st, w["port"], "SELECT count(*) FROM vectron_shards.%s WHERE id IN (%s)"
                           % (t, ",".join("'%s'" % i for i in deleted)))) for t, w in placements)
    check("gc-deleted-stay-deleted", not resurrected and on_disk == 0, (sorted(resurrected)[:10], on_disk))
    same = all(len({table_digest(st, workers[p["node"]], sh["table"]) for p in sh["placements"]}) == 1
               for sh in shards)
    s, b, _ = req(port, "GET", "/v1/collections/gc")
    check("gc-replicas-identical", same and b["count"] == 1500, (same, b.get("count")))
    req(port, "DELETE", "/v1/collections/gc")


def test_repair_lease(st):
    """A coordinator killed (SIGKILL) while it repairs a placement leaves it
    'repairing' under its lease; another coordinator takes the repair over
    once the lease (3 s here) has expired, and the placement ends active
    with the same rows as the healthy replica."""
    port = st["coordinator_port"]
    meta = st["meta"]["port"]
    workers = {w["name"]: w for w in st["workers"]}
    # a slow copy (a pause between 2000-row batches) so that the kill lands mid-repair
    r = restart_coordinator({"VECTRON_TEST_REPAIR_BATCH_DELAY_MS": "500"})
    check("lease-restart-slow", r.returncode == 0, r.stderr)
    s, b, _ = req(port, "POST", "/v1/collections", {"name": "lease", "dimension": 8, "shards": 1,
                                                    "replication_factor": 2})
    if not check("lease-create", s == 201, (s, b)):
        return
    rnd = random.Random(31)
    pts = [{"id": "l%d" % i, "vector": [rnd.uniform(-1, 1) for _ in range(8)], "payload": {"v": 0}}
           for i in range(10000)]
    for k in range(0, len(pts), 2000):
        req(port, "PUT", "/v1/collections/lease/points", {"points": pts[k:k + 2000]})
    sh = shard_of(port, "lease", 0)
    healthy, victim = [workers[p["node"]] for p in sh["placements"]]
    pid_sql = ("SELECT p.id FROM vectron_meta.placement p JOIN vectron_meta.node n ON n.id = p.node_id "
               "WHERE p.shard_id = %d AND n.name = '%s'" % (sh["id"], victim["name"]))
    plid = psql(st, meta, pid_sql)
    state_sql = ("SELECT state || ' ' || coalesce(lease_owner, '-') || ' ' || "
                 "coalesce((lease_expires > now())::text, '-') FROM vectron_meta.placement WHERE id = %s" % plid)
    stop_worker(st, victim)
    upd = [{"id": "l%d" % i, "vector": [rnd.uniform(-1, 1) for _ in range(8)], "payload": {"v": 1}}
           for i in range(0, 10000, 7)]
    s, b, _ = req(port, "PUT", "/v1/collections/lease/points", {"points": upd})
    s2, b2, _ = req(port, "POST", "/v1/collections/lease/points/delete", {"ids": ["l%d" % i for i in range(1, 10000, 11)]})
    check("lease-writes-with-replica-down", s == 200 and s2 == 200 and psql(st, meta, state_sql).startswith("stale"),
          (s, b, s2, b2, psql(st, meta, state_sql)))
    start_worker(st, victim)
    # the trigger: the metadata shows our coordinator holding the repair
    seen = wait_for(lambda: (lambda v: v if v.startswith("repairing ") else None)(psql(st, meta, state_sql)), 30, 0.05)
    pid = vectron.coordinator_pid(CLUSTER)
    os.kill(pid, 9)
    died = wait_for(lambda: not vectron.pid_alive(pid), 10, 0.02)
    left = psql(st, meta, state_sql)
    check("lease-killed-mid-repair", seen and died and left.startswith("repairing 0@") and left.endswith(" true")
          and table_digest(st, victim, sh["table"]) != table_digest(st, healthy, sh["table"]), (seen, died, left))
    # another coordinator (id 7, another lease identity) takes over after expiry
    t0 = time.time()
    r = restart_coordinator({"VECTRON_COORDINATOR_ID": "7"})
    check("lease-other-coordinator-up", r.returncode == 0, r.stderr)
    owner7 = wait_for(lambda: (lambda v: v if v.startswith("repairing 7@") else None)(psql(st, meta, state_sql)), 30, 0.05)
    taken = time.time() - t0
    done = wait_for(lambda: psql(st, meta, state_sql).startswith("active - -"), 60, 0.2)
    print("   repair taken over %.1fs after the new coordinator started (lease 3 s)" % taken)
    # live rows at once; with the tombstones too once the GC (which may run
    # between two reads) has had its turn on both
    same = table_digest(st, victim, sh["table"], "NOT deleted") == table_digest(st, healthy, sh["table"], "NOT deleted")
    same = same and wait_for(lambda: table_digest(st, victim, sh["table"]) == table_digest(st, healthy, sh["table"]), 15)
    check("lease-taken-over-and-active", owner7 and done and same,
          (owner7, psql(st, meta, state_sql), table_digest(st, victim, sh["table"]),
           table_digest(st, healthy, sh["table"])))
    s, text, _ = req(port, "GET", "/metrics", raw=True)
    check("lease-takeover-metric", metric_value(text, "vectron_repair_takeovers_total") == 1,
          [l for l in text.splitlines() if "takeover" in l])
    took_log = any("taking over from 0@" in (l.get("msg") or l.get("_text", "")) for l in log_lines(st))
    check("lease-takeover-logged", took_log)
    s, b, _ = req(port, "GET", "/v1/collections/lease")
    check("lease-count", s == 200 and b["count"] == 10000 - len(range(1, 10000, 11)), (s, b.get("count")))
    req(port, "DELETE", "/v1/collections/lease")
    r = restart_coordinator()
    check("lease-restart-default", r.returncode == 0, r.stderr)


def test_move_lease(st):
    """A move whose coordinator died is adopted by another coordinator (with
    another identity) once the move's lease (move_lease_ms, 6 s here) has
    run out, and rolled back since it died before the switch."""
    port = st["coordinator_port"]
    meta = st["meta"]["port"]
    names = [w["name"] for w in st["workers"]]
    s, b, _ = req(port, "POST", "/v1/collections", {"name": "mvt", "dimension": 8, "shards": 1,
                                                    "replication_factor": 1})
    if not check("move-lease-create", s == 201, (s, b)):
        return
    rnd = random.Random(51)
    req(port, "PUT", "/v1/collections/mvt/points",
        {"points": [{"id": "t%d" % i, "vector": [rnd.uniform(-1, 1) for _ in range(8)]} for i in range(2000)]})
    sh = shard_of(port, "mvt", 0)
    src = sh["placements"][0]["node"]
    dst = [n for n in names if n != src][0]
    restart_coordinator({"VECTRON_TEST_MOVE_CRASH_AT": "sync"})
    s, b, _ = req(port, "POST", "/v1/admin/shards/%d/move" % sh["id"], {"from": src, "to": dst})
    mid = b.get("move_id") if s == 202 else None
    pid = vectron.coordinator_pid(CLUSTER)
    died = wait_for(lambda: not vectron.pid_alive(pid), 20)
    left = psql(st, meta, "SELECT state || ' ' || owner FROM vectron_meta.shard_move WHERE id = %s" % mid) if mid else ""
    t0 = time.time()
    r = restart_coordinator({"VECTRON_COORDINATOR_ID": "7"})
    m = wait_move(port, mid, 60) if mid else None
    took = time.time() - t0
    owner = psql(st, meta, "SELECT owner FROM vectron_meta.shard_move WHERE id = %s" % mid) if mid else ""
    print("   move of a dead coordinator adopted by another one after %.1fs (lease 6 s)" % took)
    sh2 = wait_for(lambda: (lambda x: x if x and [p["node"] for p in x["placements"]] == [src] else None)(
        shard_of(port, "mvt", 0)), 10)
    ws = wait_for(lambda: (lambda w: w if replication_clean(w) else None)(worker_state(st)), 20)
    s, b, _ = req(port, "GET", "/v1/collections/mvt")
    check("move-lease-adopted-by-other",
          died and left.startswith("running 0@") and r.returncode == 0 and m and m["state"] == "rolled_back"
          and owner.startswith("7@") and sh2 and sh2["placements"][0]["state"] == "active" and ws is not None
          and b.get("count") == 2000,
          (died, left, m, owner, sh2, worker_state(st), b.get("count")))
    req(port, "DELETE", "/v1/collections/mvt")
    r = restart_coordinator()
    check("move-lease-restart-default", r.returncode == 0, r.stderr)


class BlackHoleDNS:
    """A UDP 'name server' that reads queries and never answers."""

    def __init__(self):
        import socket
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            try:
                self.sock.recvfrom(4096)
                self.queries += 1
            except OSError:
                pass

    def close(self):
        self.stop.set()
        self.t.join()
        self.sock.close()


def test_async_dns(st):
    """Host names resolve on the loop with evdns: a metadata DSN and a node
    with host=localhost work, and a name whose DNS server never answers
    fails with a clear error while other requests go on at full speed."""
    port = st["coordinator_port"]
    w1 = st["workers"][0]
    dns = BlackHoleDNS()
    conf = os.path.join(WORK, "ops-resolv.conf")
    with open(conf, "w") as f:
        f.write("nameserver 127.0.0.1:%d\noptions timeout:2 attempts:1\n" % dns.port)
    try:
        r = restart_coordinator({"VECTRON_RESOLV_CONF": conf, "VECTRON_METADATA_DSN":
                                 "host=localhost port=%d dbname=postgres user=postgres" % st["meta"]["port"]})
        check("dns-metadata-localhost-starts", r.returncode == 0, r.stderr)
        s, b, _ = req(port, "POST", "/v1/collections", {"name": "dnsc", "dimension": 8, "shards": 1,
                                                        "replication_factor": 1})
        s2, b2, _ = req(port, "GET", "/v1/collections/dnsc")
        check("dns-metadata-localhost-works", s == 201 and s2 == 200, (s, b, s2, b2))
        req(port, "DELETE", "/v1/collections/dnsc")
        # a node registered as localhost (the same server as w1, drained at
        # once so that nothing is placed on it)
        s, b, _ = req(port, "POST", "/v1/admin/nodes", {"name": "wlocal", "host": "localhost", "port": w1["port"]})
        s3, _, _ = req(port, "POST", "/v1/admin/nodes/wlocal/drain")
        up = wait_for(lambda: [n for n in req(port, "GET", "/v1/admin/nodes")[1]["nodes"]
                               if n["name"] == "wlocal" and n["up"] and n.get("health") == "ok"], 10)
        s4, _, _ = req(port, "DELETE", "/v1/admin/nodes/wlocal")
        check("dns-node-localhost", s == 201 and s3 == 200 and up and s4 == 200, (s, b, s3, up, s4))
        # baseline latency of a search, then the same while a node's name
        # waits on a DNS server that never answers
        req(port, "POST", "/v1/collections", {"name": "dnsq", "dimension": 8, "shards": 2, "replication_factor": 1})
        rnd = random.Random(41)
        req(port, "PUT", "/v1/collections/dnsq/points",
            {"points": [{"id": i, "vector": [rnd.uniform(-1, 1) for _ in range(8)]} for i in range(500)]})
        body = {"vector": [0.3] * 8, "k": 10}

        def timed():
            t = time.time()
            s, b, _ = req(port, "POST", "/v1/collections/dnsq/search", body)
            return time.time() - t, s == 200 and len(b["results"]) == 10
        base = sorted(timed()[0] for _ in range(30))
        res = {}

        def bad_add():
            t = time.time()
            res["r"] = req(port, "POST", "/v1/admin/nodes", {"name": "wbad", "host": "nowhere.vectron-test",
                                                             "port": 5432})
            res["t"] = time.time() - t
        th = threading.Thread(target=bad_add)
        q0 = dns.queries
        th.start()
        during, allok = [], True
        while th.is_alive():
            d, ok = timed()
            during.append(d)
            allok = allok and ok
        th.join()
        s, b, _ = res["r"]
        during.sort()
        med_b, med_d = base[len(base) // 2], during[len(during) // 2] if during else 0
        print("   unresolvable node: %.2fs to fail; %d searches meanwhile, median %.1f ms (baseline %.1f ms), "
              "max %.1f ms" % (res["t"], len(during), med_d * 1000, med_b * 1000, (during[-1] if during else 0) * 1000))
        check("dns-unresolvable-clear-error", s == 503 and b["error"]["code"] == "NODE_UNREACHABLE"
              and "cannot resolve" in b["error"]["message"] and "nowhere.vectron-test" in b["error"]["message"]
              and dns.queries > q0 and res["t"] >= 1.5, (s, b, res.get("t"), dns.queries - q0))
        check("dns-unresolvable-does-not-stall", allok and len(during) >= 10 and during[-1] < 1.0
              and med_d < max(5 * med_b, 0.05), (len(during), med_d, med_b, during[-3:]))
        s, b, _ = req(port, "GET", "/v1/admin/nodes")
        check("dns-unresolvable-not-added", s == 200 and not any(n["name"] == "wbad" for n in b["nodes"]), b)
        req(port, "DELETE", "/v1/collections/dnsq")
    finally:
        dns.close()
        r = restart_coordinator()
        check("dns-restart-default", r.returncode == 0, r.stderr)


if __name__ == "__main__":
    main()
