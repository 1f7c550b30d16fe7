#!/usr/bin/env python3
"""rest_cluster.py: the one local cluster the REST suites share.

scripts/check brings it up before the first suite that carries the line
`# vx: shared-rest-cluster` (55 coordinator integration, 56 auth
integration, 58 auth-off smoke, 59 SDKs), checks it after each of them,
and takes it down at the end:

  rest_cluster.py up DIR      `vectron cluster up --auth [--tls] --workers 3`
                              with the test settings below; prints
                              `export VX_REST_CLUSTER=DIR` for the harness
  rest_cluster.py heal DIR    after a suite: coordinator.conf as it was, every
                              PostgreSQL instance and the coordinator running,
                              no stray instance, exactly the cluster's workers
                              registered, active and up; stale placements get
                              15 s to be repaired, then are reported (a
                              collection a suite broke is no other's concern);
                              exit 1 when that cannot be restored (the harness
                              then records a failure and starts afresh)
  rest_cluster.py down DIR

Auth is always on (the REST suites run as the cluster's admin, or as the
users and keys they make).  TLS: VX_REST_TLS=1 passes --tls, 0 does not;
unset, it is on exactly when `vectron cluster up --help` lists --tls.
A suite run by hand (no harness) brings up a private cluster through up()
with the same settings (test/coordinator/restclient.py: open_cluster).

The settings are the union of what the suites used to set for their own
clusters; they go to `cluster up` through the environment (so the first
start has them) and are appended to coordinator.conf (so that a restart by
a fault test, with whatever environment it has, keeps them).
"""
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.environ.get("VX_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(ROOT, "bin", "vectron")
sys.path.insert(0, os.path.join(ROOT, "test", "coordinator"))

WORKERS = 3
SETTINGS = {
    # 55: streamed import beyond the body limit, 413s.  Worker deadlines of
    # the coordinator's default 30 s: 55's deadline test sets 2 s for itself,
    # and shorter ones for everything made the slow queries of a loaded
    # machine (a 2-core box running several checks) fail.
    "max_body_bytes": str(8 << 20),
    "worker_timeout_ms": "30000",
    # 56, 59: cheap argon2, open registration, no rate limit in the way of
    # the suites' request streams (56 tests limits on its own coordinator B)
    "auth_argon2_t": "1",
    "auth_argon2_m_kib": "256",
    "auth_registration": "open",
    "auth_rate_ip": "100000",
    "auth_rate_ip_burst": "100000",
    "auth_rate_key": "100000",
    "auth_rate_key_burst": "100000",
    "auth_cache_poll_ms": "500",
}


def _vectron():
    return importlib.machinery.SourceFileLoader("vectron_cli", CLI).load_module()


def tls_wanted():
    v = os.environ.get("VX_REST_TLS", "")
    if v in ("0", "1"):
        return v == "1"
    r = subprocess.run([sys.executable, CLI, "cluster", "up", "--help"], capture_output=True, text=True)
    return "--tls" in r.stdout


def up_out_path(d):
    return os.path.abspath(d).rstrip("/") + ".up.out"


def up(d, workers=WORKERS):
    """Bring the cluster up in d; returns (ok, output of cluster up)."""
    args = [sys.executable, CLI, "cluster", "up", "--auth", "--workers", str(workers), "--dir", d]
    if tls_wanted():
        args.insert(4, "--tls")
    env = dict(os.environ)
    env.update({"VECTRON_" + k.upper(): v for k, v in SETTINGS.items()})
    r = subprocess.run(args, capture_output=True, text=True, env=env)
    out = r.stdout + r.stderr
    with open(up_out_path(d), "w") as f:
        f.write(r.stdout)
    if r.returncode != 0:
        return False, out
    conf = os.path.join(d, "coordinator.conf")
    with open(conf, "a") as f:
        f.write("# test settings (scripts/lib/rest_cluster.py)\n")
        for k, v in SETTINGS.items():
            f.write("%s = %s\n" % (k, v))
    shutil.copyfile(conf, conf + ".orig")
    return True, out


def down(d):
    if os.path.exists(os.path.join(d, "cluster.json")):
        subprocess.run([sys.executable, CLI, "cluster", "down", "--dir", d], capture_output=True)
    for p in (up_out_path(d),):
        if os.path.exists(p):
            os.remove(p)


def _pg_running(vx, st, inst):
    return vx.runas([os.path.join(st["pgbin"], "pg_ctl"), "-D", inst["data"], "status"],
                    capture_output=True).returncode == 0


def heal(d, after=""):
    """Restore the shared cluster after a suite; returns (ok, actions)."""
    import restclient
    vx = _vectron()
    with open(os.path.join(d, "cluster.json")) as f:
        st = json.load(f)
    acts = []
    conf = os.path.join(d, "coordinator.conf")
    if os.path.exists(conf + ".orig"):
        with open(conf) as f, open(conf + ".orig") as g:
            changed = f.read() != g.read()
        if changed:
            shutil.copyfile(conf + ".orig", conf)
            acts.append("coordinator.conf restored")
    for inst in [st["meta"]] + st["workers"]:
        if not _pg_running(vx, st, inst):
            vx.runas([os.path.join(st["pgbin"], "pg_ctl"), "-D", inst["data"], "-l",
                      os.path.join(inst["dir"], "server.log"), "-w", "-t", "60", "start"], capture_output=True)
            acts.append("%s started" % inst["name"])
    # instances a suite added (w4, ...) and left running
    known = {i["name"] for i in [st["meta"]] + st["workers"]}
    for name in sorted(os.listdir(d)):
        data = os.path.join(d, name, "data")
        if name not in known and os.path.exists(os.path.join(data, "postmaster.pid")):
            vx.runas([os.path.join(st["pgbin"], "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"],
                     capture_output=True)
            acts.append("stray instance %s stopped" % name)
    pid = vx.coordinator_pid(d)
    alive = bool(pid and vx.pid_alive(pid))
    if alive:
        try:
            alive = restclient.Cluster(d).request("GET", "/healthz", token=None)[0] == 200
        except OSError:
            alive = False
    if not alive or any(a.endswith("restored") for a in acts):
        r = subprocess.run([sys.executable, CLI, "cluster", "restart-coordinator", "--dir", d],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return False, acts + ["coordinator restart failed: " + r.stderr.strip()]
        acts.append("coordinator restarted")
    cl = restclient.Cluster(d)
    want = {w["name"] for w in st["workers"]}
    s, b, _ = cl.request("GET", "/v1/admin/nodes")
    if s != 200:
        return False, acts + ["GET /v1/admin/nodes: %s %s" % (s, b)]
    for n in b["nodes"]:
        if n["name"] not in want:
            s2, b2, _ = cl.request("DELETE", "/v1/admin/nodes/" + n["name"])
            if s2 != 200:
                return False, acts + ["node %s left behind: %s %s" % (n["name"], s2, b2)]
            acts.append("node %s removed" % n["name"])
        elif n.get("state") not in (None, "active"):
            return False, acts + ["node %s is %s" % (n["name"], n.get("state"))]
    # workers up; placements a suite left stale are repaired on their own
    # when they have an active replica: wait a little for that, but a
    # collection a suite broke for good (rf 1 on a node that missed a
    # write) is only reported, since no other suite uses it
    end = time.time() + 15
    while True:
        s, b, _ = cl.request("GET", "/v1/admin/nodes")
        nodes_ok = s == 200 and {n["name"] for n in b["nodes"] if n["up"]} == want
        s, b, _ = cl.request("GET", "/v1/collections")
        names = [c["name"] for c in b.get("collections", [])] if s == 200 else None
        stale = []
        for name in names or []:
            s2, b2, _ = cl.request("GET", "/v1/collections/" + name)
            if s2 == 200:
                stale += ["%s/%s" % (name, p["node"]) for sp in b2["shard_placements"]
                          for p in sp["placements"] if p["state"] != "active"]
        if nodes_ok and names is not None and not stale:
            break
        if time.time() > end:
            if not nodes_ok or names is None:
                return False, acts + ["not healthy: nodes up %s, collections listed %s"
                                      % (nodes_ok, names is not None)]
            acts.append("placements still stale (left as they are): %s" % ", ".join(stale[:8]))
            break
        time.sleep(0.5)
    return True, acts


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("up", "heal", "down"):
        print(__doc__)
        return 2
    cmd, d = sys.argv[1], os.path.abspath(sys.argv[2])
    if cmd == "up":
        t0 = time.time()
        ok, out = up(d)
        if not ok:
            sys.stderr.write(out)
            return 1
        import restclient
        cl = restclient.Cluster(d)
        sys.stderr.write("   shared REST cluster: %s, auth on, tls %s, %d workers, up in %.1fs\n"
                         % (cl.url, "on" if cl.ca else "off", WORKERS, time.time() - t0))
        print("export VX_REST_CLUSTER=%s" % d)
        return 0
    if cmd == "heal":
        ok, acts = heal(d, sys.argv[3] if len(sys.argv) > 3 else "")
        for a in acts:
            sys.stderr.write("   shared REST cluster: %s\n" % a)
        return 0 if ok else 1
    down(d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
