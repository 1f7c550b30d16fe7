#!/usr/bin/env python3
"""auth_revocation.py: revocation and rate limits across two coordinators
(issue 5), against real PostgreSQL and the real coordinator.

Brings up a cluster with `bin/vectron cluster up --auth --workers 1`
(coordinator A) and starts a second coordinator B on the same metadata
database with the same signing key, both with a slow backstop poll
(auth_cache_poll_ms = POLL_MS) so that what arrives faster came by
LISTEN/NOTIFY.  Checks, measuring and printing every delay:

  * an SDK JWT minted on A fails on A within 3 s of its key being revoked
    on B (NOTIFY vectron_auth), three times;
  * the same with both LISTEN connections killed (pg_terminate_backend):
    within the poll interval, and the listeners come back;
  * rotation past grace: the old secret's tokens (minted before the
    rotation, and during the grace) fail on both coordinators once the
    grace ends, the new secret's token keeps working;
  * user deletion on B: the user's login and SDK tokens fail on A;
  * logout writes a family revocation row;
  * rate limits with two coordinators: one SDK token pinned to A gets
    about rate x T + burst accepted requests in T seconds; spread over A
    and B it gets about twice that (each coordinator has its own buckets),
    and a 429 carries Retry-After.

Appends "PASS auth-rev:..." / "FAIL auth-rev:..." to $VX_RESULTS.
"""
import http.client
import importlib.machinery
import json
import os
import statistics
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
CLUSTER = os.path.join(WORK, "revcluster")

POLL_MS = 4000          # backstop poll of both coordinators
RATE, BURST = 10, 10    # per-key token bucket of both coordinators
RATE_SECS = 4.0         # length of each rate-limit measurement

passed = failed = 0


def say(s):
    print(s, flush=True)


def check(name, cond, detail=""):
    global passed, failed
    ok = bool(cond)
    if ok:
        passed += 1
    else:
        failed += 1
        say("   FAIL %s %s" % (name, detail))
    if RESULTS:
        with open(RESULTS, "a") as f:
            f.write(("PASS " if ok else "FAIL ") + "auth-rev:" + name + "\n")
    return ok


class Client:
    def __init__(self, port):
        self.port = port
        self.conn = None
        self.headers = {}

    def req(self, method, path, body=None, token=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                h = {"Content-Type": "application/json"}
                if token:
                    h["Authorization"] = "Bearer " + token
                self.conn.request(method, path, body=json.dumps(body).encode() if body is not None else None,
                                  headers=h)
                r = self.conn.getresponse()
                text = r.read()
                self.headers = dict((k.lower(), v) for k, v in r.getheaders())
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                try:
                    return r.status, json.loads(text) if text else None
                except ValueError:
                    return r.status, None
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn = None
                if attempt:
                    raise
        return None


def psql(st, sql):
    r = vectron.runas([os.path.join(st["pgbin"], "psql"), "-X", "-A", "-t", "-q", "-h", "127.0.0.1",
                       "-p", str(st["meta"]["port"]), "-U", "postgres", "-d", "postgres", "-c", sql],
                      capture_output=True, text=True)
    return r.stdout.strip()


def start_b(st, port, env):
    log = open(os.path.join(CLUSTER, "coordinatorB.log"), "ab")
    dsn = "host=127.0.0.1 port=%d dbname=postgres user=postgres" % st["meta"]["port"]
    p = subprocess.Popen([vectron.coordinator_bin(), "--listen_port=%d" % port, "--metadata_dsn=" + dsn,
                          "--map_poll_ms=500", "--coordinator_id=2"], stdout=log, stderr=log,
                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    for _ in range(200):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return p
        except OSError:
            pass
        if p.poll() is not None:
            return None
        time.sleep(0.05)
    return None


def wait_status(cl, token, want, limit, path="/v1/collections", every=0.05):
    """Request path every `every` s until it answers want; the delay, or None."""
    t0 = time.time()
    while True:
        s, _ = cl.req("GET", path, token=token)
        if s == want:
            return time.time() - t0
        if time.time() - t0 > limit:
            return None
        time.sleep(every)


def main():
    t0 = time.time()
    os.environ.update({"VECTRON_AUTH_ARGON2_T": "1", "VECTRON_AUTH_ARGON2_M_KIB": "256",
                       "VECTRON_AUTH_RATE_IP": "100000", "VECTRON_AUTH_RATE_IP_BURST": "100000",
                       "VECTRON_AUTH_RATE_KEY": str(RATE), "VECTRON_AUTH_RATE_KEY_BURST": str(BURST),
                       "VECTRON_AUTH_CACHE_POLL_MS": str(POLL_MS)})
    r = subprocess.run([sys.executable, CLI, "cluster", "up", "--auth", "--workers", "1", "--dir", CLUSTER],
                       capture_output=True, text=True)
    if not check("cluster-up", r.returncode == 0, r.stderr + r.stdout):
        return
    st = vectron.load_state(CLUSTER)
    say("   cluster up in %.1fs" % (time.time() - t0))
    b_proc = None
    try:
        ad = os.path.join(CLUSTER, "auth")
        envb = dict(os.environ)
        envb.update({"VECTRON_AUTH": "on", "VECTRON_AUTH_SIGNING_KEY": "file:" + os.path.join(ad, "es256.pem"),
                     "VECTRON_AUTH_PEPPER": "file:" + os.path.join(ad, "pepper")})
        b_port = vectron.free_port()
        b_proc = start_b(st, b_port, envb)
        if check("coordinator-b-up", b_proc is not None):
            with open(os.path.join(ad, "admin-password")) as f:
                run(st, Client(st["coordinator_port"]), Client(b_port), f.read())
    except Exception:
        traceback.print_exc()
        check("exception", False, traceback.format_exc())
    finally:
        if b_proc:
            b_proc.terminate()
            b_proc.wait(timeout=20)
        if failed:
            for lg in ("coordinator.log", "coordinatorB.log"):
                p = os.path.join(CLUSTER, lg)
                if os.path.exists(p):
                    say("   --- %s (tail)" % lg)
                    with open(p, errors="replace") as f:
                        for line in f.readlines()[-20:]:
                            say("   " + line.rstrip())
        subprocess.run([sys.executable, CLI, "cluster", "down", "--dir", CLUSTER], capture_output=True)


def login(c, email, pw):
    s, b = c.req("POST", "/v1/auth/login", {"email": email, "password": pw})
    if s != 200:
        raise AssertionError("login %s: %s %s" % (email, s, b))
    return b


def mkkey(c, tok, role="readonly"):
    s, b = c.req("POST", "/v1/keys", {"name": "rev", "role": role, "collections": ["*"]}, token=tok)
    if s != 201:
        raise AssertionError("key: %s %s" % (s, b))
    return b


def sdk(c, key):
    s, b = c.req("POST", "/v1/auth/token", {"api_key": key})
    if s != 200:
        raise AssertionError("token: %s %s" % (s, b))
    return b["access_token"], b["expires_in"]


def listeners(st):
    return int(psql(st, "SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN vectron_auth'") or 0)


def run(st, a, b, admin_pw):
    admin = login(a, "admin@localhost", admin_pw)["access_token"]
    poll_s = POLL_MS / 1000.0
    check("two-listeners", listeners(st) == 2, listeners(st))

    # a key made on A reaches B by NOTIFY, long before B's next poll
    k = mkkey(a, admin)
    tok, _ = sdk(a, k["key"])
    d = wait_status(b, tok, 200, poll_s + 2)
    say("   new key usable on B after %s s" % ("%.3f" % d if d is not None else "never"))
    check("new-key-reaches-b-by-notify", d is not None and d < poll_s / 2, d)

    # ---- revoke on B, the token minted on A fails on A (NOTIFY), 3 times
    delays = []
    for i in range(3):
        k = mkkey(a, admin)
        tok, _ = sdk(a, k["key"])
        s, _ = a.req("GET", "/v1/collections", token=tok)
        check("notify:%d:works-before" % i, s == 200, s)
        s, _ = b.req("DELETE", "/v1/keys/" + k["id"], token=admin)
        check("notify:%d:revoked-on-b" % i, s == 200, s)
        d = wait_status(a, tok, 401, 10)
        delays.append(d if d is not None else 99.0)
        check("notify:%d:401-on-a-within-3s" % i, d is not None and d <= 3.0, d)
    say("   revoked on B, token 401 on A after %s s (NOTIFY; poll every %.1f s)"
        % (", ".join("%.3f" % x for x in delays), poll_s))
    check("notify:faster-than-poll", statistics.median(delays) < poll_s / 3, delays)

    # ---- the LISTEN connections killed: the poll (or the reconnect it makes) catches it
    k = mkkey(a, admin)
    tok, _ = sdk(a, k["key"])
    killed = psql(st, "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE query = 'LISTEN vectron_auth') s")
    s, _ = b.req("DELETE", "/v1/keys/" + k["id"], token=admin)
    check("poll:listeners-killed", killed == "2" and s == 200, (killed, s))
    d = wait_status(a, tok, 401, poll_s + 5)
    say("   LISTEN killed: token 401 on A after %s s (poll interval %.1f s)"
        % ("%.3f" % d if d is not None else "never", poll_s))
    check("poll:401-within-poll-interval", d is not None and d <= poll_s + 1.5, d)
    t1 = time.time()
    while listeners(st) < 2 and time.time() - t1 < poll_s + 3:
        time.sleep(0.2)
    check("poll:listeners-back", listeners(st) == 2, listeners(st))
    with open(os.path.join(CLUSTER, "coordinator.log"), errors="replace") as f:
        n = f.read().count("auth: listening on vectron_auth")
    check("poll:a-listener-reconnected", n >= 2, n)
    k = mkkey(a, admin)
    tok, _ = sdk(a, k["key"])
    b.req("DELETE", "/v1/keys/" + k["id"], token=admin)
    d = wait_status(a, tok, 401, 10)
    say("   after the listeners reconnected: 401 on A after %s s" % ("%.3f" % d if d is not None else "never"))
    check("poll:notify-again", d is not None and d <= 3.0, d)

    # ---- rotation past grace: the old secret's tokens fail when the grace ends
    g = mkkey(a, admin)
    t_old, _ = sdk(a, g["key"])
    grace = 3
    s, rot = b.req("POST", "/v1/keys/%s/rotate" % g["id"], {"grace_seconds": grace}, token=admin)
    check("rotate", s == 200, (s, rot))
    t_rot = time.time()
    t_grace, ttl_grace = sdk(a, g["key"])
    t_new, ttl_new = sdk(a, rot["key"])
    check("rotate:grace-token-clamped", ttl_grace <= grace and ttl_new > grace, (ttl_grace, ttl_new))
    sa = [a.req("GET", "/v1/collections", token=t)[0] for t in (t_old, t_grace, t_new)]
    sb = [b.req("GET", "/v1/collections", token=t)[0] for t in (t_old, t_grace, t_new)]
    check("rotate:all-work-in-grace", sa == [200] * 3 and sb == [200] * 3, (sa, sb))
    # slower than the key's rate limit: the three tokens share its bucket
    d = wait_status(a, t_old, 401, grace + 5, every=0.25)
    say("   rotation with grace %d s: the old secret's token 401 on A %s s after the rotation"
        % (grace, "%.2f" % (time.time() - t_rot) if d is not None else "never"))
    check("rotate:old-token-401-after-grace", d is not None and grace - 1.0 <= time.time() - t_rot <= grace + 3.0,
          time.time() - t_rot)
    sa = [a.req("GET", "/v1/collections", token=t)[0] for t in (t_old, t_grace, t_new)]
    time.sleep(0.2)
    sb = [b.req("GET", "/v1/collections", token=t)[0] for t in (t_old, t_grace, t_new)]
    check("rotate:after-grace-old-401-new-200", sa == [401, 401, 200] and sb == [401, 401, 200], (sa, sb))

    # ---- user deletion on B: login and SDK tokens fail on A
    s, u = a.req("POST", "/v1/admin/users", {"email": "dora@example.com", "password": "dora-pw-123456",
                                              "role": "write"}, token=admin)
    check("user:create", s == 201, (s, u))
    dora = login(a, "dora@example.com", "dora-pw-123456")
    dk = mkkey(a, dora["access_token"], "write")
    dtok, _ = sdk(a, dk["key"])
    sa = [a.req("GET", "/v1/me", token=t)[0] for t in (dora["access_token"], dtok)]
    check("user:works-before", sa == [200, 200], sa)
    s, _ = b.req("DELETE", "/v1/admin/users/%d" % u["user_id"], token=admin)
    check("user:deleted-on-b", s == 200, s)
    d1 = wait_status(a, dora["access_token"], 401, 10, "/v1/me")
    d2 = wait_status(a, dtok, 401, 10, "/v1/me")
    say("   user deleted on B: login token 401 on A after %s s, SDK token after %s s" % (d1, d2))
    check("user:tokens-401-on-a", d1 is not None and d1 <= 3 and d2 is not None and d2 <= 3, (d1, d2))
    n = psql(st, "SELECT count(*) FROM vectron_meta.revocation WHERE kind = 'user' AND target = '%d'"
             % u["user_id"])
    check("user:revocation-row", n == "1", n)

    # ---- logout: the family goes on the revocation list
    before = int(psql(st, "SELECT count(*) FROM vectron_meta.revocation WHERE kind = 'family'") or 0)
    ses = login(a, "admin@localhost", admin_pw)
    s, _ = b.req("POST", "/v1/auth/logout", {"refresh_token": ses["refresh_token"]}, token=ses["access_token"])
    after = int(psql(st, "SELECT count(*) FROM vectron_meta.revocation WHERE kind = 'family'") or 0)
    check("family:logout-row", s == 200 and after == before + 1, (s, before, after))

    rate_limits(a, b, admin)


def hammer(cl, token, secs, out):
    """Send requests back to back for secs; out gets (accepted, refused, retry-afters)."""
    ok = no = 0
    ras = []
    end = time.time() + secs
    while time.time() < end:
        s, body = cl.req("GET", "/v1/collections", token=token)
        if s == 200:
            ok += 1
        elif s == 429:
            no += 1
            ras.append((cl.headers.get("retry-after"), (body or {}).get("error", {}).get("code")))
    out.append((ok, no, ras))


def rate_limits(a, b, admin):
    expect1 = RATE * RATE_SECS + BURST
    # one coordinator: a fresh key, all requests to A
    tok, _ = sdk(a, mkkey(a, admin)["key"])
    out = []
    hammer(a, tok, RATE_SECS, out)
    one_ok, one_no, ras = out[0]
    # two coordinators: another fresh key, one client on each
    tok2, _ = sdk(a, mkkey(a, admin)["key"])
    wait_status(b, tok2, 200, 3)        # B knows the key (one request spent there)
    time.sleep(1.0 * BURST / RATE)      # ... and its bucket is full again
    out2 = []
    th = [threading.Thread(target=hammer, args=(cl, tok2, RATE_SECS, out2)) for cl in (Client(a.port), Client(b.port))]
    for t in th:
        t.start()
    for t in th:
        t.join()
    two_ok = sum(x[0] for x in out2)
    two_no = sum(x[1] for x in out2)
    ras += [r_ for x in out2 for r_ in x[2]]
    say("   rate limit %d/s burst %d per key, %.0f s: pinned to A %d accepted (%.1f/s; expected %d), "
        "%d refused; spread over A and B %d accepted (%.1f/s), %d refused; ratio %.2f"
        % (RATE, BURST, RATE_SECS, one_ok, one_ok / RATE_SECS, expect1, one_no, two_ok, two_ok / RATE_SECS,
           two_no, two_ok / max(one_ok, 1)))
    check("ratelimit:one-coordinator-about-rate", 0.8 * expect1 <= one_ok <= 1.2 * expect1 and one_no > 0,
          (one_ok, expect1, one_no))
    check("ratelimit:two-coordinators-about-2x", 1.6 <= two_ok / max(one_ok, 1) <= 2.4 and two_no > 0,
          (two_ok, one_ok))
    # every 429 of this coordinator is counted in its /metrics
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
    conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + admin})
    r = conn.getresponse()
    text = r.read().decode(errors="replace")
    conn.close()
    n429 = sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith("vectron_rate_limited_total"))
    check("ratelimit:429s-counted-in-metrics", r.status == 200 and n429 >= one_no > 0,
          (r.status, n429, one_no))
    say("   Retry-After values on 429: %s" % sorted(set(ra for ra, _ in ras)))
    check("ratelimit:429-retry-after", ras and all(ra is not None and int(ra) >= 1 and code == "RATE_LIMITED"
                                                   for ra, code in ras), ras[:5])


if __name__ == "__main__":
    main()
    say("   auth revocation: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
