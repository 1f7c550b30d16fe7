#!/usr/bin/env python3
"""run_sdk_tests.py: the Python and JavaScript SDKs against a live cluster.

Runs on the cluster the REST suites share (`bin/vectron cluster up --auth`,
with --tls when available: scripts/lib/rest_cluster.py), or, run by hand,
on a private one brought up the same way in $VX_WORK.  The SDKs trust a
--tls cluster's CA through the environment ($VECTRON_CA_FILE, $VECTRON_CA,
$NODE_EXTRA_CA_CERTS).  Logs in as the bootstrap admin with the Python
SDK, makes scoped API keys, and drives every SDK call against real coordinator and worker processes:
results are compared with a brute-force top-k computed here, errors with
the documented codes.  Then it runs the JavaScript SDK's node:test file
(sdk.test.mjs) against the same cluster with a fresh key.  Appends
"PASS sdk:..." / "FAIL sdk:..." lines to $VX_RESULTS.
"""
import array
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
import traceback

ROOT = os.environ.get("VX_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
import vectron  # noqa: E402  (the SDK under test)
sys.path.insert(0, os.path.join(ROOT, "test", "lib"))
from vxresults import Results  # noqa: E402
sys.path.insert(0, os.path.join(ROOT, "test", "coordinator"))
import restclient  # noqa: E402

WORK = os.environ.get("VX_WORK", "/tmp")
CLI = os.path.join(ROOT, "bin", "vectron")
CLUSTER = restclient.shared_dir() or os.path.join(WORK, "sdk-cluster")
CL = None       # the restclient.Cluster under test
RESULTS = Results("sdk")
record, check = RESULTS.record, RESULTS.check


def raises(name, exc_type, code, fn):
    """fn() must raise exc_type with the given error code."""
    try:
        fn()
    except exc_type as e:
        got = getattr(e, "code", None)
        return check(name, code is None or got == code, "code %s, wanted %s" % (got, code))
    except Exception as e:  # noqa: BLE001
        return check(name, False, "raised %r" % e)
    return check(name, False, "did not raise")


def l2(a, b):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def brute(points, q, k, pred=None):
    cand = sorted((l2(v, q), pid) for pid, (v, p) in points.items() if pred is None or pred(p))
    return [pid for _, pid in cand[:k]]


def f32(x):
    return array.array("f", [x])[0]


def python_tests(url, cred):
    admin = vectron.Client(url)
    raises("python:no-credentials-401", vectron.Unauthorized, "UNAUTHORIZED", admin.list_collections)
    admin.login(cred.get("email", "admin@localhost"), cred["password"])
    check("python:login-me-admin", admin.me().get("role") == "admin")
    key = admin.create_key("sdk-write", role="write", collections=["sdk_docs", "sdk_js"])
    check("python:create-key-prefix", key["key"].startswith("vk_"))
    ro = admin.create_key("sdk-ro", role="readonly", collections=["sdk_docs"])

    c = vectron.Client(url, api_key=key["key"])
    docs = c.create_collection("sdk_docs", dimension=8, metric="l2", shards=2, replication_factor=2,
                               m=16, ef_construction=64, metadata={"owner": "sdk-test"})
    info = docs.info()
    check("python:create-collection", info["dimension"] == 8 and info["shards"] == 2
          and info["replication_factor"] == 2, info)
    raises("python:create-existing-409", vectron.Conflict, "COLLECTION_EXISTS",
           lambda: c.create_collection("sdk_docs", dimension=8))
    raises("python:create-out-of-scope-403", vectron.Forbidden, None,
           lambda: c.create_collection("sdk_other", dimension=8))
    raises("python:bad-dimension-400", vectron.BadRequest, "INVALID_ARGUMENT",
           lambda: c.create_collection("sdk_js", dimension=0))

    rnd = random.Random(7)
    points = {}
    batch = []
    for i in range(300):
        v = [f32(rnd.uniform(-1, 1)) for _ in range(8)]
        payload = {"group": i % 3, "tag": "t%d" % (i % 5)}
        points[str(i)] = (v, payload)
        # mix the shapes the SDK accepts: tuples with int ids, dicts, array.array vectors
        if i % 3 == 0:
            batch.append((i, v, payload))
        elif i % 3 == 1:
            batch.append({"id": str(i), "vector": array.array("f", v), "payload": payload})
        else:
            batch.append({"id": str(i), "vector": tuple(v), "payload": payload})
    n = docs.upsert(batch, batch_size=64)
    check("python:upsert-count", n == 300, n)
    check("python:collection-count", docs.count() == 300, docs.count())

    ok = True
    for t in range(20):
        q = [rnd.uniform(-1, 1) for _ in range(8)]
        got = [r["id"] for r in docs.search(q, k=10, ef_search=300)]
        if got != brute(points, q, 10):
            ok = False
    check("python:search-equals-brute-force", ok)
    q = [0.1] * 8
    hits = docs.search(q, k=5, ef_search=300, with_payload=True)
    check("python:search-distance-and-payload",
          all(abs(h["distance"] - l2(points[h["id"]][0], q)) < 1e-4 and h["payload"] == points[h["id"]][1]
              for h in hits), hits)
    flt = {"must": [{"key": "group", "match": 1}]}
    got = [r["id"] for r in docs.search(q, k=10, filter=flt, ef_search=300)]
    check("python:filtered-search", got == brute(points, q, 10, lambda p: p["group"] == 1), got)
    full = docs.search(q, k=3, full_response=True)
    check("python:full-response", full.get("partial") is False and len(full["results"]) == 3, full)
    qs = [[rnd.uniform(-1, 1) for _ in range(8)] for _ in range(3)]
    batch_res = docs.search_batch([{"vector": x, "k": 4, "ef_search": 300} for x in qs])
    check("python:search-batch", [[r["id"] for r in res] for res in batch_res]
          == [[r["id"] for r in docs.search(x, k=4, ef_search=300)] for x in qs])
    raises("python:search-wrong-dimension-400", vectron.BadRequest, "INVALID_ARGUMENT",
           lambda: docs.search([1, 2, 3], k=3))
    # an admin sees 404 for a missing collection; other users get 403 for a
    # collection they own no right on, whether it exists or not
    raises("python:missing-collection-404", vectron.NotFound, "COLLECTION_NOT_FOUND",
           lambda: admin.collection("sdk_nope").search([0] * 8))

    got = docs.get([5, "6", "nope"], with_vector=True)
    byid = {p["id"]: p for p in got}
    check("python:get-by-ids", sorted(byid) == ["5", "6"]
          and all([f32(x) for x in byid[i]["vector"]] == points[i][0] for i in ("5", "6"))
          and byid["5"]["payload"] == points["5"][1], got)

    def gen():
        for i in range(300, 500):
            v = [f32(rnd.uniform(-1, 1)) for _ in range(8)]
            points[str(i)] = (v, {"group": i % 3})
            yield {"id": i, "vector": v, "payload": {"group": i % 3}}
    r = docs.import_points(gen(), chunk_points=64)
    check("python:import-streamed", r["imported"] == 200 and r["errors"] == [], r)
    check("python:count-after-import", docs.count() == 500)

    check("python:delete-ids", docs.delete(ids=[str(i) for i in range(10)]) == 10)
    for i in range(10):
        points.pop(str(i))
    n_g2 = sum(1 for v, p in points.values() if p["group"] == 2)
    check("python:delete-filter", docs.delete(filter={"must": [{"key": "group", "match": 2}]}) == n_g2)
    points = {k: v for k, v in points.items() if v[1]["group"] != 2}
    check("python:count-after-deletes", docs.count() == len(points), (docs.count(), len(points)))
    got = [r["id"] for r in docs.search(q, k=10, ef_search=300)]
    check("python:search-after-deletes", got == brute(points, q, 10), got)
    raises("python:delete-needs-one-of", ValueError, None, lambda: docs.delete())

    # concurrent searches through one client: one connection per thread
    errs = []

    def worker():
        try:
            for _ in range(20):
                docs.search([rnd.uniform(-1, 1) for _ in range(8)], k=5)
        except Exception as e:  # noqa: BLE001
            errs.append(e)
    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check("python:threads-share-client", not errs, errs[:1])

    # an expired token is minted again transparently
    c._token_expiry = 0.0
    old = c._token
    docs.search(q, k=1)
    check("python:token-reminted", c._token != old)

    # readonly key: search yes, writes no
    r_cli = vectron.Client(url, api_key=ro["key"])
    check("python:readonly-search", len(r_cli.collection("sdk_docs").search(q, k=2)) == 2)
    raises("python:readonly-upsert-403", vectron.Forbidden, "FORBIDDEN",
           lambda: r_cli.collection("sdk_docs").upsert([("x", [0] * 8)]))

    # revocation reaches the SDK: its token fails, re-minting fails, Unauthorized is raised
    admin.revoke_key(ro["id"])
    deadline = time.time() + 10
    revoked = False
    while time.time() < deadline and not revoked:
        try:
            r_cli.collection("sdk_docs").search(q, k=1)
            time.sleep(0.2)
        except vectron.Unauthorized:
            revoked = True
    check("python:revoked-key-401", revoked)

    # logout: the refresh token family is revoked
    refresh = admin._refresh_token
    admin.logout()
    raises("python:refresh-after-logout-401", vectron.Unauthorized, None,
           lambda: vectron.Client(url).request("POST", "/v1/auth/refresh", {"refresh_token": refresh},
                                               auth=False))
    raises("python:bad-url", ValueError, None, lambda: vectron.Client("ftp://x"))
    return c, key


def console_tests(url):
    """The management console: served without credentials under a strict
    CSP, and every REST path its script calls exists in docs/openapi.yaml."""
    import http.client
    import re
    import urllib.parse
    import yaml
    u = urllib.parse.urlsplit(url)

    def get(path, method="GET"):
        if CL.tls is not None:
            c = http.client.HTTPSConnection(u.hostname, u.port, timeout=10, context=CL.tls)
        else:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        c.request(method, path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r, body
    r, body = get("/console/")
    check("console:index-served", r.status == 200 and r.getheader("Content-Type", "").startswith("text/html")
          and b"/console/app.js" in body, r.status)
    csp = r.getheader("Content-Security-Policy") or ""
    check("console:csp", "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp)
    check("console:nosniff", r.getheader("X-Content-Type-Options") == "nosniff")
    r, js = get("/console/app.js")
    check("console:script-served", r.status == 200 and "javascript" in r.getheader("Content-Type", ""))
    with open(os.path.join(ROOT, "console", "app.js"), "rb") as f:
        check("console:script-is-the-source", js == f.read())
    r, _ = get("/console/style.css")
    check("console:style-served", r.status == 200 and r.getheader("Content-Type", "").startswith("text/css"))
    r, body = get("/console/nope.js")
    check("console:unknown-file-404-json", r.status == 404 and json.loads(body)["error"]["code"] == "NOT_FOUND")
    r, body = get("/console/", "POST")
    # with auth on, a POST is not a public request: 401 before the route's 405
    check("console:post-refused-json", r.status in (401, 405)
          and json.loads(body)["error"]["code"] in ("UNAUTHORIZED", "METHOD_NOT_ALLOWED"), r.status)
    with open(os.path.join(ROOT, "docs", "openapi.yaml")) as f:
        spec = yaml.safe_load(f)
    pats = {}
    for p, ops in spec["paths"].items():
        rx = "^" + "/".join("[^/]+" if seg.startswith("{") else re.escape(seg) for seg in p.split("/")) + "$"
        pats[re.compile(rx)] = {m.upper() for m in ops}
    calls = re.findall(r"api\('([A-Z]+)', [`']([^`']+)[`']", js.decode())
    bad = []
    for method, path in calls:
        path = re.sub(r"\$\{[^}]+\}", "x", path)
        if not any(rx.match(path) and method in ms for rx, ms in pats.items()):
            bad.append("%s %s" % (method, path))
    check("console:calls-match-openapi", len(calls) >= 15 and not bad, (len(calls), bad))


def js_tests(url, api_key):
    """Run sdk.test.mjs with node:test against the same cluster."""
    env = dict(os.environ, VECTRON_URL=url, VECTRON_API_KEY=api_key, NODE_NO_WARNINGS="1")
    r = subprocess.run(["node", "--test", os.path.join(ROOT, "test", "clients", "sdk", "sdk.test.mjs")],
                       env=env, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    n = 0
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("ok ") or s.startswith("not ok "):
            # node 18 and 20 print "ok N - name" for each test
            ok = s.startswith("ok ")
            name = s.split(" - ", 1)[1] if " - " in s else s
            record("js:" + name.replace(" ", "-"), ok)
            n += 1
    if n == 0 or r.returncode != 0:
        print(out[-3000:])
        if n == 0:
            record("js:ran", False, "no test results")


def main():
    global CL
    # cheap argon2 and no rate limits come with the cluster (scripts/lib/rest_cluster.py)
    CL, out = restclient.open_cluster(CLUSTER)
    if not check("cluster-up", CL is not None and CL.auth, out):
        return 1
    try:
        cred = CL.cred
        url = CL.url
        if CL.ca:
            # the SDKs (and node's fetch) trust the cluster's CA
            for k in ("VECTRON_CA_FILE", "VECTRON_CA", "NODE_EXTRA_CA_CERTS"):
                os.environ[k] = CL.ca
        try:
            c, key = python_tests(url, cred)
        except Exception:  # noqa: BLE001
            record("python:unexpected-exception", False, traceback.format_exc())
            c = None
        if c is not None and key is not None:
            js_tests(url, key["key"])
        console_tests(url)
    finally:
        CL.close()
    print("   sdk: %d passed, %d failed" % (RESULTS.passed, RESULTS.failed))
    return 1 if RESULTS.failed else 0


if __name__ == "__main__":
    sys.exit(main())
