#!/usr/bin/env python3
"""tls_integration.py: TLS end to end (issue 5), against real PostgreSQL and
the real coordinator.

Brings up `bin/vectron cluster up --tls --auth` (a throwaway CA, HTTPS on
the coordinator with optional client certificates, SSL-only PostgreSQL
nodes, coordinator -> PostgreSQL with sslmode=verify-full and a client
certificate), then checks:
  - the files: PostgreSQL's key is 0600 and owned by postgres; cluster env
    prints an https URL and the CA; the CLI works with VECTRON_CA_FILE only;
  - HTTPS with the CA works, keep-alive keeps one TLS connection, a body
    streamed past max_body_bytes still imports, a client that hangs up
    mid-request cancels its worker query;
  - refused: plain HTTP on the TLS port, a client without the CA, TLS 1.1
    (offered by a client that can speak it), a TLS 1.2 cipher outside the
    list;
  - a second coordinator with tls_client_auth = require refuses a client
    without a certificate or with one from another CA, and accepts the
    cluster's client certificate; SIGHUP reloads its certificate, and a bad
    file on reload keeps the old one;
  - PostgreSQL side: pg_stat_ssl on a worker and on the metadata node shows
    the coordinator's connections with ssl = true and its client DN, and a
    TCP connection without SSL is rejected by pg_hba;
  - a wrong CA in pg_sslrootcert: with it for everything the coordinator
    does not start and says why; with the right CA for the metadata DSN
    only, the workers are unreachable with a certificate error; a host
    name that is not in the certificate fails verify-full.
Appends "PASS tls-int:..." / "FAIL tls-int:..." to $VX_RESULTS.
"""
import http.client
import importlib.machinery
import json
import os
import pwd
import signal
import socket
import ssl
import subprocess
import sys
import time
import traceback

ROOT = os.environ.get("VX_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "test", "lib"))
from vxresults import Results  # noqa: E402

WORK = os.environ.get("VX_WORK", "/tmp")
CLI = os.path.join(ROOT, "bin", "vectron")
vectron = importlib.machinery.SourceFileLoader("vectron_cli", CLI).load_module()
CLUSTER = os.path.join(WORK, "tlscluster")
TLS = os.path.join(CLUSTER, "tls")
R = Results("tls-int")
check = R.check
PROCS = []


def ctx_with_ca(cert=None, key=None):
    c = ssl.create_default_context(cafile=os.path.join(TLS, "ca.pem"))
    if cert:
        c.load_cert_chain(cert, key)
    return c


def req(port, method, path, body=None, token=None, ctx=None, conn=None, raw=None, headers=None,
        host="127.0.0.1"):
    """One HTTPS request; returns (status, decoded body, connection)."""
    c = conn or http.client.HTTPSConnection(host, port, timeout=30, context=ctx or ctx_with_ca())
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = "Bearer " + token
    h.update(headers or {})
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    text = r.read()
    try:
        b = json.loads(text) if text else None
    except ValueError:
        b = {"_raw": text.decode(errors="replace")}
    return r.status, b, c


def fails(fn):
    """Run fn; the exception text if it raised, else None."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 -- any failure is what we look for
        return "%s: %s" % (type(e).__name__, e)
    return None


def psql(port, sql, sockdir):
    cmd = [os.path.join(vectron.pgbin(), "psql"), "-X", "-A", "-t", "-q", "-h", sockdir, "-p", str(port),
           "-U", "postgres", "-d", "postgres", "-c", sql]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, cwd="/").stdout.strip()


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True)


def other_ca(d):
    """A second, unrelated CA and a client certificate signed by it."""
    os.makedirs(d, exist_ok=True)
    key, pem = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-subj", "/CN=some other CA", "-days", "2", "-out", pem,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    ck, cc = os.path.join(d, "client.key"), os.path.join(d, "client.pem")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", ck, "-subj", "/CN=intruder", "-out", cc + ".csr")
    openssl("x509", "-req", "-in", cc + ".csr", "-CA", pem, "-CAkey", key, "-CAcreateserial",
            "-days", "2", "-out", cc)
    return pem, cc, ck


def start_coordinator(name, port, flags, wait=True):
    """Another coordinator on the cluster's config file, with flags on top."""
    log = os.path.join(CLUSTER, name + ".log")
    p = subprocess.Popen([vectron.coordinator_bin(), "-c", os.path.join(CLUSTER, "coordinator.conf"),
                          "--listen_port=%d" % port] + flags, stdout=open(log, "ab"),
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    PROCS.append(p)
    if not wait:
        return p, log
    for _ in range(200):
        if p.poll() is not None:
            return None, log
        try:
            s, _, _ = req(port, "GET", "/healthz", ctx=ctx_with_ca(os.path.join(TLS, "client.pem"),
                                                                    os.path.join(TLS, "client.key")))
            if s in (200, 503):
                return p, log
        except OSError:
            time.sleep(0.05)
    return p, log


def read(path):
    with open(path) as f:
        return f.read()


def stop(p):
    if p and p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def main():
    t0 = time.time()
    r = subprocess.run([sys.executable, CLI, "cluster", "up", "--tls", "--auth", "--workers", "2",
                        "--dir", CLUSTER], capture_output=True, text=True,
                       env=dict(os.environ, VECTRON_AUTH_ARGON2_T="1", VECTRON_AUTH_ARGON2_M_KIB="256"))
    print("   " + r.stdout.strip().replace("\n", "\n   "))
    if not check("cluster-up-tls", r.returncode == 0, r.stderr + r.stdout):
        return
    print("   cluster up in %.1fs" % (time.time() - t0))
    try:
        run(vectron.load_state(CLUSTER))
    finally:
        for p in PROCS:
            stop(p)


def run(st):
    port = st["coordinator_port"]
    ca = os.path.join(TLS, "ca.pem")
    ccert, ckey = os.path.join(TLS, "client.pem"), os.path.join(TLS, "client.key")
    w1 = st["workers"][0]

    # ---- files and the CLI
    k = os.stat(os.path.join(w1["data"], "server.key"))
    check("pg-key-0600-owned-by-postgres", (k.st_mode & 0o777) == 0o600 and
          (os.geteuid() != 0 or pwd.getpwuid(k.st_uid).pw_name == "postgres"), oct(k.st_mode))
    check("ca-key-0600", (os.stat(os.path.join(TLS, "ca.key")).st_mode & 0o777) == 0o600)
    r = subprocess.run([sys.executable, CLI, "cluster", "env", "--dir", CLUSTER], capture_output=True, text=True)
    ex = dict(l[len("export "):].split("=", 1) for l in r.stdout.splitlines() if l.startswith("export "))
    check("env-https-and-ca", ex.get("VECTRON_URL") == "https://127.0.0.1:%d" % port and
          ex.get("VECTRON_CA_FILE") == ca and "VECTRON_TOKEN" in ex, sorted(ex))
    token = ex.get("VECTRON_TOKEN", "")
    env = dict(os.environ, **ex)
    r = subprocess.run([sys.executable, CLI, "nodes", "list"], capture_output=True, text=True, env=env)
    check("cli-with-ca-file", r.returncode == 0 and "w1" in r.stdout, r.stdout + r.stderr)
    env.pop("VECTRON_CA_FILE")
    r = subprocess.run([sys.executable, CLI, "nodes", "list"], capture_output=True, text=True, env=env)
    check("cli-without-ca-fails", r.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in r.stderr, r.stderr)

    # ---- the SDKs with the CA from VECTRON_CA_FILE (Python) / caFile and the env (JS)
    sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
    try:
        import vectron as sdk  # clients/python (the CLI module is loaded as vectron_cli)
        cl = sdk.Client(url=ex.get("VECTRON_URL"), api_key=ex.get("VECTRON_API_KEY"), ca_file=ca)
        check("python-sdk-ca-file", len(cl.nodes()["nodes"]) == 2)
        e = fails(lambda: sdk.Client(url=ex.get("VECTRON_URL"), token=token, ca_file=os.devnull).nodes())
        check("python-sdk-wrong-ca-fails", e is not None, e)
    except Exception as e:  # noqa: BLE001
        check("python-sdk-ca-file", False, repr(e))
    js = ("import { Client } from %s;\n"
          "const a = new Client({ caFile: process.argv[2] });\n"
          "const b = new Client();\n"
          "const n = (await a.request('GET', '/v1/admin/nodes')).nodes.length;\n"
          "const m = (await b.request('GET', '/v1/admin/nodes')).nodes.length;\n"
          "console.log(`nodes ${n} ${m}`);\n" % json.dumps(os.path.join(ROOT, "clients", "js", "index.js")))
    jsf = os.path.join(CLUSTER, "ca_check.mjs")
    with open(jsf, "w") as f:
        f.write(js)
    jenv = dict(os.environ, VECTRON_URL=ex.get("VECTRON_URL", ""), VECTRON_API_KEY=ex.get("VECTRON_API_KEY", ""),
                VECTRON_CA_FILE=ca)
    r = subprocess.run(["node", jsf, ca], capture_output=True, text=True, env=jenv)
    check("js-sdk-ca-file-and-env", r.stdout.strip() == "nodes 2 2", r.stdout + r.stderr[-500:])

    # ---- HTTPS works; keep-alive; streamed body; names in the certificate
    s, b, c = req(port, "POST", "/v1/collections", {"name": "t", "dimension": 4, "shards": 2}, token)
    check("https-create-collection", s == 201, (s, b))
    sock = c.sock
    pts = [{"id": str(i), "vector": [i, i % 7, 1, 0]} for i in range(200)]
    s1, b1, _ = req(port, "PUT", "/v1/collections/t/points", {"points": pts}, token, conn=c)
    s2, b2, _ = req(port, "POST", "/v1/collections/t/search", {"vector": [3, 3, 1, 0], "k": 3}, token, conn=c)
    check("https-upsert-search", s1 == 200 and s2 == 200 and b2["results"][0]["id"] == "3", (s1, s2, b2))
    check("https-keep-alive-one-connection", c.sock is sock and sock is not None)
    c.close()
    s, b, _ = req(port, "GET", "/healthz", host="localhost")
    check("https-by-name-localhost", s == 200, s)

    # ---- refusals on the HTTPS port
    def plain():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/healthz")
        c.getresponse().read()
    e = fails(plain)
    check("plain-http-refused", e is not None, e)
    e = fails(lambda: req(port, "GET", "/healthz", ctx=ssl.create_default_context()))
    check("no-ca-fails-verification", e is not None and "CERTIFICATE_VERIFY_FAILED" in e, e)

    def old(maxv, ciphers="DEFAULT:@SECLEVEL=0"):
        # a client that can really speak TLS 1.0/1.1 (Debian's default config cannot)
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.load_verify_locations(ca)
        c.minimum_version = ssl.TLSVersion.TLSv1
        c.maximum_version = maxv
        c.set_ciphers(ciphers)
        return lambda: req(port, "GET", "/healthz", ctx=c)
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    e = fails(old(ssl.TLSVersion.TLSv1_1))
    ok12 = fails(old(ssl.TLSVersion.TLSv1_2))
    check("tls11-refused-by-server", e is not None and "NO_PROTOCOLS_AVAILABLE" not in e and ok12 is None,
          (e, ok12))
    e = fails(old(ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0"))
    check("tls12-cbc-sha1-cipher-refused", e is not None, e)
    log = read(os.path.join(CLUSTER, "coordinator.log"))
    check("handshake-failures-logged", "TLS handshake failed: unsupported protocol" in log and
          "TLS handshake failed: http request" in log)

    # ---- the PostgreSQL side: SSL only, the coordinator verified with its client certificate
    q = ("SELECT s.ssl, coalesce(s.client_dn, '') FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
         "WHERE a.application_name = 'vectron-coordinator'")
    rows = psql(w1["port"], q, w1["dir"]).splitlines()
    check("worker-pg-stat-ssl", rows and all(x == "t|/CN=vectron-coordinator" for x in rows), rows)
    rows = psql(st["meta"]["port"], q, st["meta"]["dir"]).splitlines()
    check("metadata-pg-stat-ssl", rows and all(x == "t|/CN=vectron-coordinator" for x in rows), rows)
    r = subprocess.run([os.path.join(vectron.pgbin(), "psql"), "-X", "-c", "SELECT 1",
                        "host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable" % w1["port"]],
                       capture_output=True, text=True)
    check("worker-rejects-non-ssl-tcp", r.returncode != 0 and "no encryption" in r.stderr, r.stderr)

    # ---- a client that hangs up over TLS cancels its worker query
    s, b, _ = req(port, "GET", "/v1/collections/t", token=token)
    sp = b["shard_placements"][0]
    node = [w for w in st["workers"] if w["name"] == sp["placements"][0]["node"]][0]
    cmd = [os.path.join(vectron.pgbin(), "psql"), "-X", "-q", "-h", node["dir"], "-p", str(node["port"]),
           "-U", "postgres", "-d", "postgres"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    locker = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              text=True, cwd="/")
    locker.stdin.write("BEGIN; LOCK TABLE vectron_shards.%s IN ACCESS EXCLUSIVE MODE;\n" % sp["table"])
    locker.stdin.flush()
    waiting = ("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'vectron-coordinator%' "
               "AND wait_event_type = 'Lock' AND query LIKE '%ORDER BY v%'")
    held = ("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE c.relname = '%s' AND l.mode = 'AccessExclusiveLock' AND l.granted" % sp["table"])
    any(psql(node["port"], held, node["dir"]) == "1" or time.sleep(0.05) for _ in range(100))
    ts = ctx_with_ca().wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")
    body = json.dumps({"vector": [0, 0, 0, 0], "k": 3}).encode()
    ts.sendall(b"POST /v1/collections/t/search HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (token.encode(), len(body), body))
    blocked = any(psql(node["port"], waiting, node["dir"]) == "1" or time.sleep(0.05) for _ in range(60))
    ts.close()
    ended = any(psql(node["port"], waiting, node["dir"]) == "0" or time.sleep(0.1) for _ in range(60))
    locker.stdin.write("ROLLBACK;\n\\q\n")
    locker.stdin.flush()
    locker.wait(timeout=10)
    check("tls-client-hangup-cancels-worker-query", blocked and ended and
          "went away; cancelling" in read(os.path.join(CLUSTER, "coordinator.log")), (blocked, ended))

    # ---- a shard move between SSL-only workers (the subscription connects over SSL)
    s, b, _ = req(port, "GET", "/v1/admin/collections", token=token)
    sh = [x for c in b["collections"] if c["name"] == "t" for x in c["shard_detail"] if x["index"] == 0][0]
    src = sh["placements"][0]["node"]
    dst = [w["name"] for w in st["workers"] if w["name"] != src][0]
    t = time.time()
    s, b, _ = req(port, "POST", "/v1/admin/shards/%d/move" % sh["id"], {"from": src, "to": dst}, token)
    m = None
    while s == 202 and time.time() - t < 40:
        _, m, _ = req(port, "GET", "/v1/admin/moves/%d" % b["move_id"], token=token)
        if m["state"] != "running":
            break
        time.sleep(0.2)
    s2, b2, _ = req(port, "POST", "/v1/collections/t/search", {"vector": [3, 3, 1, 0], "k": 3}, token=token)
    check("shard-move-over-ssl", s == 202 and m and m["state"] == "done" and s2 == 200 and
          b2["results"][0]["id"] == "3", (s, b, m))
    print("   shard move over SSL: %.1fs" % (time.time() - t))

    # ---- coordinator B: client certificates required, small body limit, own cert files for SIGHUP
    bdir = os.path.join(CLUSTER, "b-tls")
    os.makedirs(bdir, exist_ok=True)
    for n in ("server.pem", "server.key"):
        with open(os.path.join(TLS, n), "rb") as f, open(os.path.join(bdir, n), "wb") as g:
            g.write(f.read())
    bport = vectron.free_port()
    bproc, blog = start_coordinator("coordinatorB", bport, [
        "--coordinator_id=2", "--tls_client_auth=require", "--max_body_bytes=1048576",
        "--tls_cert_file=" + os.path.join(bdir, "server.pem"), "--tls_key_file=" + os.path.join(bdir, "server.key")])
    check("b-started", bproc is not None, read(blog)[-2000:])
    if bproc:
        e = fails(lambda: req(bport, "GET", "/healthz"))
        check("require-refuses-no-client-cert", e is not None, e)
        opem, occ, ock = other_ca(os.path.join(CLUSTER, "otherca"))
        e = fails(lambda: req(bport, "GET", "/healthz", ctx=ctx_with_ca(occ, ock)))
        check("require-refuses-cert-of-other-ca", e is not None, e)
        mctx = ctx_with_ca(ccert, ckey)
        s, b, c = req(bport, "GET", "/v1/collections/t", token=token, ctx=mctx)
        check("require-accepts-client-cert", s == 200 and b["name"] == "t", (s, b))
        benv = dict(os.environ, VECTRON_URL="https://127.0.0.1:%d" % bport, VECTRON_TOKEN=token,
                    VECTRON_CA_FILE=ca)
        r1 = subprocess.run([sys.executable, CLI, "collection", "get", "t"], capture_output=True, text=True, env=benv)
        benv.update(VECTRON_CLIENT_CERT=ccert, VECTRON_CLIENT_KEY=ckey)
        r2 = subprocess.run([sys.executable, CLI, "collection", "get", "t"], capture_output=True, text=True, env=benv)
        check("cli-client-cert", r1.returncode != 0 and r2.returncode == 0 and '"name": "t"' in r2.stdout,
              (r1.stderr[-300:], r2.stdout[-300:], r2.stderr[-300:]))
        # a body past max_body_bytes: refused when buffered, streamed through by the import
        big = [{"id": "b%d" % i, "vector": [i, 0, 0, 1], "payload": {"pad": "x" * 200}} for i in range(6000)]
        t = mctx.wrap_socket(socket.create_connection(("127.0.0.1", bport)), server_hostname="127.0.0.1")
        t.sendall(b"PUT /v1/collections/t/points HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                  b"Content-Length: 2000000\r\n\r\n" % token.encode())
        got = t.recv(4096)
        t.close()
        check("tls-body-limit-413", got.startswith(b"HTTP/1.1 413") and b"PAYLOAD_TOO_LARGE" in got, got[:200])
        nd = "\n".join(json.dumps(p) for p in big).encode()
        s, b, c = req(bport, "POST", "/v1/collections/t/points/import", token=token, ctx=mctx, raw=nd,
                      headers={"Content-Type": "application/x-ndjson"})
        check("tls-streamed-import-past-limit", len(nd) > (1 << 20) and s == 200 and b.get("imported") == 6000,
              (len(nd), s, str(b)[:200]))
        # SIGHUP: a new certificate is served to new connections; a bad file keeps the old one
        def serial():
            t = mctx.wrap_socket(socket.create_connection(("127.0.0.1", bport)), server_hostname="127.0.0.1")
            der = t.getpeercert(binary_form=True)
            t.close()
            return der
        before = serial()
        vectron.tls_issue(TLS, "server2", "localhost", ["basicConstraints=critical,CA:FALSE",
                          "keyUsage=critical,digitalSignature", "extendedKeyUsage=serverAuth", vectron.TLS_SAN])
        os.replace(os.path.join(TLS, "server2.pem"), os.path.join(bdir, "server.pem"))
        os.replace(os.path.join(TLS, "server2.key"), os.path.join(bdir, "server.key"))
        bproc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        after = serial()
        check("sighup-reloads-certificate", before != after and "TLS certificate reloaded" in read(blog))
        with open(os.path.join(bdir, "server.pem"), "w") as f:
            f.write("not a certificate\n")
        bproc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        check("sighup-bad-cert-keeps-old", serial() == after and "TLS reload failed, keeping the old" in read(blog)
              and bproc.poll() is None)
        stop(bproc)

    # ---- bad TLS files stop the start, naming the setting and the path
    for name, flags, want in (
            ("missing-cert", ["--tls_cert_file=/nonexistent/cert.pem"], "tls_cert_file /nonexistent/cert.pem: cannot open"),
            ("key-mismatch", ["--tls_key_file=" + ckey], "tls_key_file %s does not match" % ckey),
            ("require-without-ca", ["--tls_client_auth=require", "--tls_ca_file="], "needs tls_ca_file")):
        p, lg = start_coordinator("bad-" + name, vectron.free_port(), ["--coordinator_id=6"] + flags, wait=False)
        try:
            rc = p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            rc = None
        check("start-error-" + name, rc == 2 and want in read(lg), (rc, read(lg)[-300:]))

    # ---- verification of PostgreSQL's certificates
    wrong = os.path.join(CLUSTER, "otherca", "ca.pem")
    cport = vectron.free_port()
    cproc, clog = start_coordinator("coordinatorC", cport, ["--coordinator_id=3", "--pg_sslrootcert=" + wrong],
                                    wait=False)
    try:
        rc = cproc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        rc = None
    clogt = read(clog)
    check("wrong-ca-coordinator-does-not-start", rc not in (None, 0) and "certificate verify failed" in clogt
          and "metadata" in clogt, (rc, clogt[-600:]))
    meta_ok = ("host=127.0.0.1 port=%d dbname=postgres user=postgres sslrootcert=%s"
               % (st["meta"]["port"], ca))
    dport = vectron.free_port()
    dproc, dlog = start_coordinator("coordinatorD", dport, [
        "--coordinator_id=4", "--pg_sslrootcert=" + wrong, "--metadata_dsn=" + meta_ok])
    check("wrong-worker-ca-coordinator-starts", dproc is not None, read(dlog)[-1000:])
    if dproc:
        s, b, _ = req(dport, "POST", "/v1/collections/t/search", {"vector": [3, 3, 1, 0], "k": 3}, token)
        msg = json.dumps(b)
        print("   wrong worker CA: HTTP %d %s" % (s, msg[:300]))
        check("wrong-worker-ca-clear-error", s >= 500 and "certificate verify failed" in msg, (s, b))
        check("wrong-worker-ca-logged", "certificate verify failed" in read(dlog))
        stop(dproc)
    eport = vectron.free_port()
    eproc, elog = start_coordinator("coordinatorE", eport, [
        "--coordinator_id=5", "--metadata_dsn=host=not-in-the-cert hostaddr=127.0.0.1 port=%d "
        "dbname=postgres user=postgres" % st["meta"]["port"]], wait=False)
    try:
        rc = eproc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        rc = None
    elogt = read(elog)
    check("verify-full-checks-host-name", rc not in (None, 0) and "does not match host name" in elogt,
          (rc, elogt[-600:]))


if __name__ == "__main__":
    t = time.time()
    try:
        main()
    except Exception:
        traceback.print_exc()
        R.record("exception", False)
    finally:
        if os.path.exists(vectron.state_path(CLUSTER)):
            subprocess.run([sys.executable, CLI, "cluster", "down", "--dir", CLUSTER], capture_output=True)
    print("   tls-int: %d passed, %d failed in %.1fs" % (R.passed, R.failed, time.time() - t))
    sys.exit(1 if R.failed else 0)
