#!/usr/bin/env python3
"""auth_off_smoke.py: the REST API with auth = off, in a few seconds.

The REST suites run with auth on (and TLS when the cluster has it).  This
smoke test covers the other setting: it starts one more coordinator on the
shared cluster's metadata and workers (scripts/lib/rest_cluster.py; run by
hand, on a private cluster brought up the same way), from the cluster's own
coordinator.conf with `--auth=off` on the command line, and checks that
without any credentials a client can create a collection, upsert, search
(against a brute-force top-k), get, delete points and delete the
collection, and reach an admin route; while the cluster's own coordinator
still answers the same request without a token with 401.  The extra
coordinator is stopped at the end.  Under 30 s.  Appends
"PASS auth-off:..." / "FAIL auth-off:..." to $VX_RESULTS.
"""
import math
import os
import random
import signal
import subprocess
import sys
import time
import traceback

ROOT = os.environ.get("VX_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "test", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import restclient  # noqa: E402
from vxresults import Results  # noqa: E402

WORK = os.environ.get("VX_WORK", "/tmp")
CLUSTER = restclient.shared_dir() or os.path.join(WORK, "noauth-cluster")
COORD = os.environ.get("VECTRON_COORDINATOR") or os.path.join(ROOT, "coordinator", "vectron-coordinator")
R = Results("auth-off")
check = R.check
NAME = "smoke_noauth"


def start_noauth(cl, port):
    """The coordinator with auth off: the cluster's config, other port and id."""
    log = open(cl.log_path("coordinator-noauth.log"), "ab")
    p = subprocess.Popen([COORD, "-c", os.path.join(cl.dir, "coordinator.conf"), "--auth=off",
                          "--listen_port=%d" % port, "--coordinator_id=3"],
                         stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    c = cl.client(port=port, token=None, timeout=10)
    for _ in range(200):
        try:
            if c.req("GET", "/healthz")[0] == 200:
                return p, c
        except OSError:
            pass
        if p.poll() is not None:
            return p, None
        time.sleep(0.05)
    return p, None


def l2(a, b):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def run(cl, c):
    s, b = c.req("POST", "/v1/collections", {"name": NAME, "dimension": 4, "shards": 2,
                                             "replication_factor": 2})
    check("create", s == 201 and len(b["shard_placements"]) == 2, (s, b))
    rnd = random.Random(3)
    pts = {str(i): [rnd.randint(-8, 8) / 4.0 for _ in range(4)] for i in range(200)}
    s, b = c.req("PUT", "/v1/collections/%s/points" % NAME,
                 {"points": [{"id": k, "vector": v, "payload": {"i": int(k)}} for k, v in pts.items()]})
    check("upsert", s == 200 and b == {"upserted": 200}, (s, b))
    ok, det = True, None
    for _ in range(5):
        q = [rnd.uniform(-2, 2) for _ in range(4)]
        s, b = c.req("POST", "/v1/collections/%s/search" % NAME, {"vector": q, "k": 5, "ef_search": 200})
        want = [k for _, k in sorted((l2(v, q), k) for k, v in pts.items())[:5]]
        if s != 200 or [r["id"] for r in b["results"]] != want:
            ok, det = False, (s, b, want)
    check("search-equals-brute-force", ok, det)
    s, b = c.req("POST", "/v1/collections/%s/points/get" % NAME, {"ids": ["7", "8", "nope"]})
    check("get", s == 200 and sorted(p["id"] for p in b["points"]) == ["7", "8"]
          and all(p["payload"] == {"i": int(p["id"])} for p in b["points"]), (s, b))
    s, b = c.req("POST", "/v1/collections/%s/points/delete" % NAME, {"ids": ["7", "8", "nope"]})
    check("delete-points", s == 200 and b == {"deleted": 2}, (s, b))
    s, b = c.req("GET", "/v1/collections/" + NAME)
    check("count-after-delete", s == 200 and b["count"] == 198, (s, b.get("count") if isinstance(b, dict) else b))
    s, b = c.req("GET", "/v1/admin/nodes")
    check("admin-route-open", s == 200 and len(b["nodes"]) == len(cl.state["workers"]), (s, b))
    # the cluster's own coordinator (auth on) refuses the same request without a token
    s, b = cl.client(token=None).req("GET", "/v1/collections/" + NAME)
    check("auth-on-coordinator-still-401", s == 401, (s, b))
    s, b = c.req("DELETE", "/v1/collections/" + NAME)
    check("delete-collection", s == 200, (s, b))
    s, b = c.req("GET", "/v1/collections/" + NAME)
    check("deleted-404", s == 404, (s, b))


def main():
    cl, out = restclient.open_cluster(CLUSTER)
    if not check("cluster", cl is not None, out):
        return 1
    t0 = time.time()
    p = None
    try:
        port = restclient.free_port()
        p, c = start_noauth(cl, port)
        if check("coordinator-up", c is not None, cl.log_since(0, "coordinator-noauth.log")[-2000:]):
            run(cl, c)
    except Exception:  # noqa: BLE001
        R.record("exception", False, traceback.format_exc())
    finally:
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        cl.close()
    el = time.time() - t0
    check("under-30s", el < 30, "%.1fs" % el)
    print("   auth-off smoke: %d passed, %d failed in %.1fs" % (R.passed, R.failed, el))
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
