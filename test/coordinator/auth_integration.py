#!/usr/bin/env python3
"""auth_integration.py: issue 5 end to end, against real PostgreSQL and the
real coordinator.

Runs on the cluster the REST suites share, `bin/vectron cluster up --auth`
(ES256 key, pepper and bootstrap admin password in 0600 files, an admin
API key in credentials.json; cheap argon2 parameters and open registration
in its settings: scripts/lib/rest_cluster.py), or, run by hand, on a
private one brought up the same way.  Checks the CLI side (file modes,
`cluster env`, a CLI command authenticated by VECTRON_API_KEY), and starts
a second coordinator B on the same metadata with a low per-key rate limit.
(Suite 55 runs the whole REST API with auth on as the cluster's admin;
58 is the auth-off smoke test.)
Drives the route x token type x role table of docs/security.md (allowed /
401 / 403), forged and malformed tokens, refresh rotation and reuse,
key revocation on both coordinators, rotation grace, grants, user deletion,
the audit log and rate limits, logout ending login JWTs, password change
and admin-issued resets, vector and dimension x count quotas and
`vectron user create` (run_acct_tests), then greps every log and this run's own
output for every secret it created.  Appends "PASS auth-int:..." /
"FAIL auth-int:..." to $VX_RESULTS.
"""
import base64
import http.client
import importlib.machinery
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import traceback

ROOT = os.environ.get("VX_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RESULTS = os.environ.get("VX_RESULTS")
WORK = os.environ.get("VX_WORK", "/tmp")
CLI = os.path.join(ROOT, "bin", "vectron")
vectron = importlib.machinery.SourceFileLoader("vectron_cli", CLI).load_module()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import restclient  # noqa: E402
CLUSTER = restclient.shared_dir() or os.path.join(WORK, "authcluster")
AUTHDIR = os.path.join(WORK, "authkeys")

passed = failed = 0
ADMIN = {}
OUT = io.StringIO()          # everything this test prints, for the secret grep
SECRETS = []                 # every secret created


def say(s):
    OUT.write(s + "\n")
    print(s)


def record(name, ok, detail=""):
    global passed, failed
    line = ("PASS " if ok else "FAIL ") + "auth-int:" + name
    if ok:
        passed += 1
    else:
        failed += 1
        say("   FAIL %s %s" % (name, detail))
    if RESULTS:
        with open(RESULTS, "a") as f:
            f.write(line + "\n")


def check(name, cond, detail=""):
    record(name, bool(cond), detail)
    return bool(cond)


def secret(s):
    SECRETS.append(s)
    return s


# Client(port): a keep-alive connection without a default token (each call
# passes its own, or none); the cluster's coordinator is reached through
# CL.client(token=None), which adds https on a --tls cluster.
Client = restclient.Client
CL = None


def code_of(b):
    return (b or {}).get("error", {}).get("code") if isinstance(b, dict) else None


# ---- JWT forging with the openssl CLI ----

def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def der_to_raw(der):
    # ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7f)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\x00")
        out += v.rjust(32, b"\x00")
        i += 2 + n
    return out


def es256(keyfile, header, claims):
    signing = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", keyfile], input=signing.encode(),
                         capture_output=True, check=True).stdout
    return signing + "." + b64u(der_to_raw(sig))


def hs256(key, header, claims):
    import hashlib
    import hmac
    signing = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims).encode())
    return signing + "." + b64u(hmac.new(key, signing.encode(), hashlib.sha256).digest())


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


def main():
    global CL
    t0 = time.time()
    # test settings: the shared cluster has them (scripts/lib/rest_cluster.py);
    # coordinator B takes them from this environment
    test_env = {"VECTRON_AUTH_ARGON2_T": "1", "VECTRON_AUTH_ARGON2_M_KIB": "256",
                "VECTRON_AUTH_REGISTRATION": "open", "VECTRON_AUTH_RATE_IP": "100000",
                "VECTRON_AUTH_RATE_IP_BURST": "100000", "VECTRON_AUTH_CACHE_POLL_MS": "500"}
    os.environ.update(test_env)
    # r is `cluster up`'s output
    CL, up_out = restclient.open_cluster(CLUSTER)
    r = subprocess.CompletedProcess([], 0 if CL else 1, up_out if CL else "", "" if CL else up_out)
    say("   " + r.stdout.strip().replace("\n", "\n   "))
    if not check("cluster-up-auth", r.returncode == 0 and CL.auth, r.stderr + r.stdout):
        return
    st = vectron.load_state(CLUSTER)
    say("   cluster up in %.1fs" % (time.time() - t0))
    b_proc = None
    try:
        ad = os.path.join(CLUSTER, "auth")
        key = os.path.join(ad, "es256.pem")
        cred_path = os.path.join(CLUSTER, "credentials.json")
        with open(cred_path) as f:
            cred = json.load(f)
        ADMIN["pw"] = secret(cred["password"])
        secret(cred["api_key"])
        with open(os.path.join(ad, "pepper")) as f:
            secret(f.read())
        with open(key) as f:
            for line in f.read().splitlines():
                if "-----" not in line and len(line) > 20:
                    secret(line)
        pub = subprocess.run(["openssl", "ec", "-in", key, "-pubout"], capture_output=True,
                             check=True).stdout
        modes = [oct(os.stat(p_).st_mode & 0o777) for p_ in
                 (cred_path, key, os.path.join(ad, "pepper"), os.path.join(ad, "admin-password"))]
        check("cli:secret-files-0600", modes == ["0o600"] * 4, modes)
        check("cli:up-prints-path-not-secrets", cred_path in r.stdout and
              not any(x in r.stdout + r.stderr for x in SECRETS), r.stdout)
        r = subprocess.run([sys.executable, CLI, "cluster", "env", "--dir", CLUSTER],
                           capture_output=True, text=True)
        ex = dict(l[len("export "):].split("=", 1) for l in r.stdout.splitlines() if l.startswith("export "))
        # (a --tls cluster adds the CA file to trust)
        tls_env = {"VECTRON_CA_FILE", "NODE_EXTRA_CA_CERTS"}
        check("cli:env", r.returncode == 0 and set(ex) - tls_env == {"VECTRON_URL", "VECTRON_API_KEY", "VECTRON_TOKEN"}
              and (not CL.ca or "VECTRON_CA_FILE" in ex) and
              ex["VECTRON_API_KEY"] == cred["api_key"], sorted(ex))
        if "VECTRON_TOKEN" in ex:
            secret(ex["VECTRON_TOKEN"])
            s, b = CL.client(token=None).req("GET", "/v1/admin/nodes", token=ex["VECTRON_TOKEN"])
            check("cli:env-token-works", s == 200 and len(b["nodes"]) == len(st["workers"]), (s, b))
        cenv = dict(CL.env(), VECTRON_URL=ex.get("VECTRON_URL", ""), VECTRON_API_KEY=cred["api_key"])
        r = subprocess.run([sys.executable, CLI, "nodes", "list"], capture_output=True, text=True, env=cenv)
        check("cli:api-key-mints-token", r.returncode == 0 and "w1" in r.stdout, r.stdout + r.stderr)
        # B signs with its own key k2 and also accepts A's k1 (rotation, several issuers)
        os.makedirs(AUTHDIR, exist_ok=True)
        key2 = os.path.join(AUTHDIR, "k2.pem")
        subprocess.run("openssl ecparam -name prime256v1 -genkey -noout | "
                       "openssl pkcs8 -topk8 -nocrypt -out %s" % key2, shell=True, check=True)
        os.chmod(key2, 0o600)
        with open(key2) as f:
            for line in f.read().splitlines():
                if "-----" not in line and len(line) > 20:
                    secret(line)
        envb = dict(os.environ)
        envb.update({"VECTRON_AUTH": "on", "VECTRON_AUTH_SIGNING_KEY": "file:" + key2,
                     "VECTRON_AUTH_SIGNING_KID": "k2", "VECTRON_AUTH_VERIFY_KEYS": "k1=file:" + key,
                     "VECTRON_AUTH_ADMIN_ALLOW": "10.9.8.0/24, 192.168.77.1",
                     "VECTRON_AUTH_PEPPER": "file:" + os.path.join(ad, "pepper"),
                     "VECTRON_AUTH_RATE_KEY": "5", "VECTRON_AUTH_RATE_KEY_BURST": "10"})
        b_port = vectron.free_port()
        b_proc = start_b(st, b_port, envb)
        check("coordinator-b-up", b_proc is not None)
        c = CL.client(token=None)
        cb = Client(b_port)
        run_tests(c, cb, st, key, pub)
    except Exception:
        traceback.print_exc()
        record("exception", False, traceback.format_exc())
    finally:
        if b_proc:
            b_proc.terminate()
            b_proc.wait(timeout=20)
        grep_secrets()
        for lg in ("coordinator.log", "coordinatorB.log"):
            log = os.path.join(CLUSTER, lg)
            if failed and os.path.exists(log):
                say("   --- %s (tail)" % lg)
                with open(log, errors="replace") as f:
                    for line in f.readlines()[-25:]:
                        say("   " + line.rstrip())
        CL.close()


def login(c, email, pw):
    s, b = c.req("POST", "/v1/auth/login", {"email": email, "password": pw})
    if s != 200:
        raise AssertionError("login %s: %s %s" % (email, s, b))
    secret(b["access_token"])
    secret(b["refresh_token"])
    return b


def mkkey(c, tok, role, colls=("*",), **kw):
    body = {"name": "k-" + role, "role": role, "collections": list(colls)}
    body.update(kw)
    s, b = c.req("POST", "/v1/keys", body, token=tok)
    if s != 201:
        raise AssertionError("key %s: %s %s" % (role, s, b))
    secret(b["key"])
    return b


def sdk(c, key):
    s, b = c.req("POST", "/v1/auth/token", {"api_key": key})
    if s != 200:
        raise AssertionError("token: %s %s" % (s, b))
    return secret(b["access_token"])


def mkcoll(c, tok, name):
    return c.req("POST", "/v1/collections", {"name": name, "dimension": 2, "shards": 1,
                                             "replication_factor": 1}, token=tok)


def run_tests(c, cb, st, keyfile, pubpem):
    s, b = c.req("GET", "/healthz")
    check("health-public", s == 200, (s, b))
    s, b = c.req("GET", "/v1/collections")
    check("no-token-401", s == 401 and code_of(b) == "UNAUTHORIZED" and
          "bearer" in c.last_headers.get("www-authenticate", "").lower(), (s, b))
    s, b = c.req("GET", "/v1/auth/jwks.json")
    check("jwks", s == 200 and b["keys"][0]["kty"] == "EC" and b["keys"][0]["kid"] == "k1" and
          "d" not in b["keys"][0], (s, b))

    adm = login(c, "admin@localhost", ADMIN["pw"])
    admin = adm["access_token"]
    s, me = c.req("GET", "/v1/me", token=admin)
    check("me-admin", s == 200 and me["role"] == "admin" and me["token_type"] == "login", (s, me))
    admin_id = me["user_id"]

    # users: alice registers (write), admin makes bob (readonly) and carol (write)
    pw = {u: secret("Pw-" + secrets.token_hex(10)) for u in ("alice", "bob", "carol")}
    s, b = c.req("POST", "/v1/auth/register", {"email": "alice@example.com", "password": pw["alice"]})
    check("register", s == 201 and isinstance(b.get("user_id"), int), (s, b))
    alice_id = b.get("user_id")
    s, b = c.req("POST", "/v1/auth/register", {"email": "ALICE@example.com", "password": pw["alice"]})
    check("register-duplicate-409", s == 409 and code_of(b) == "USER_EXISTS", (s, b))
    s, b = c.req("POST", "/v1/admin/users", {"email": "bob@example.com", "password": pw["bob"],
                                             "role": "readonly"}, token=admin)
    check("admin-create-user", s == 201, (s, b))
    bob_id = b.get("user_id")
    s, b = c.req("POST", "/v1/admin/users", {"email": "carol@example.com", "password": pw["carol"],
                                             "role": "write"}, token=admin)
    carol_id = b.get("user_id")
    s, b = c.req("GET", "/v1/admin/users", token=admin)
    check("admin-list-users", s == 200 and {"admin@localhost", "alice@example.com", "bob@example.com",
                                            "carol@example.com"} <= {u["email"] for u in b["users"]} and
          all("password_hash" not in u for u in b["users"]), (s, b))
    s, b = c.req("POST", "/v1/auth/login", {"email": "alice@example.com", "password": "wrong-password"})
    check("login-wrong-password-401", s == 401 and code_of(b) == "UNAUTHORIZED", (s, b))
    s, b = c.req("POST", "/v1/auth/login", {"email": "nobody@example.com", "password": "whatever-pw"})
    check("login-unknown-user-401", s == 401, (s, b))

    alice = login(c, "alice@example.com", pw["alice"])["access_token"]
    bob = login(c, "bob@example.com", pw["bob"])["access_token"]
    carol = login(c, "carol@example.com", pw["carol"])["access_token"]

    # keys: the SDK tokens of the table belong to the admin, scoped to *
    k = {r: mkkey(c, admin, r) for r in ("readonly", "write", "admin")}
    s, b = c.req("POST", "/v1/keys", {"name": "x", "role": "admin", "collections": ["*"]}, token=alice)
    check("key-role-above-user-403", s == 403, (s, b))
    s, b = c.req("GET", "/v1/keys", token=admin)
    check("keys-list-no-secrets", s == 200 and {k[r]["id"] for r in k} <= {x["id"] for x in b["keys"]} and
          all("key" not in x and "hash" not in x for x in b["keys"]) and
          not any(k[r]["key"] in json.dumps(b) for r in k), (s, b))
    tokens = {"none": None, "login-readonly": bob, "login-write": alice, "login-admin": admin,
              "sdk-readonly": sdk(c, k["readonly"]["key"]), "sdk-write": sdk(c, k["write"]["key"]),
              "sdk-admin": sdk(c, k["admin"]["key"])}
    s, b = c.req("GET", "/v1/me", token=tokens["sdk-write"])
    check("me-sdk", s == 200 and b["token_type"] == "sdk" and b["key"]["id"] == k["write"]["id"], (s, b))

    # collections: "ca" owned by the admin (bob granted readonly), "cw" by alice
    s, b = mkcoll(c, admin, "ca")
    check("create-ca", s == 201, (s, b))
    s, b = mkcoll(c, alice, "cw")
    check("create-cw-by-write-user", s == 201, (s, b))
    s, b = mkcoll(c, carol, "cw")
    time.sleep(0.7)     # past a snapshot reload: the metadata is the truth
    owner = vectron_psql(st, "SELECT user_id FROM vectron_meta.collection_owner WHERE name = 'cw'")
    check("owner:failed-create-keeps-owner", s == 409 and owner == str(alice_id) and
          c.req("PUT", "/v1/collections/cw/points", {"points": [{"id": 9, "vector": [1, 2]}]},
                token=carol)[0] == 403, (s, owner))
    s, b = c.req("POST", "/v1/collections/ca/grants", {"user_id": bob_id, "role": "readonly"}, token=admin)
    check("grant-bob", s == 201, (s, b))
    coll = {"login-readonly": "ca", "login-write": "cw"}

    # ---- the table of docs/security.md, first part
    Y, U, F = "yes", 401, 403
    order = ["none", "login-readonly", "login-write", "login-admin", "sdk-readonly", "sdk-write", "sdk-admin"]
    rows = [
        ("health", "GET", "/healthz", None, [Y, Y, Y, Y, Y, Y, Y]),
        ("auth", "GET", "/v1/auth/jwks.json", None, [Y, Y, Y, Y, Y, Y, Y]),
        ("me", "GET", "/v1/me", None, [U, Y, Y, Y, Y, Y, Y]),
        ("keys", "GET", "/v1/keys", None, [U, Y, Y, Y, F, F, F]),
        ("collection_list", "GET", "/v1/collections", None, [U, Y, Y, Y, Y, Y, Y]),
        ("data_read", "POST", "/v1/collections/{c}/search", {"vector": [0.5, 0.5], "k": 1}, [U, Y, Y, Y, Y, Y, Y]),
        ("data_read_get", "GET", "/v1/collections/{c}", None, [U, Y, Y, Y, Y, Y, Y]),
        ("data_write", "PUT", "/v1/collections/{c}/points",
         {"points": [{"id": 1, "vector": [0.1, 0.2]}]}, [U, F, Y, Y, F, Y, Y]),
        ("collection_create", "POST", "/v1/collections", "create", [U, F, Y, Y, F, Y, Y]),
        ("collection_delete", "DELETE", "/v1/collections/{d}", None, [U, F, Y, Y, F, Y, Y]),
        ("grants", "POST", "/v1/collections/{c}/grants", {"user_id": 999999, "role": "readonly"},
         [U, F, Y, Y, F, F, F]),
        ("admin_cluster", "GET", "/v1/admin/nodes", None, [U, F, F, Y, F, F, Y]),
        ("admin_users", "GET", "/v1/admin/users", None, [U, F, F, Y, F, F, F]),
        ("auth_password_reset", "POST", "/v1/auth/password-reset",
         {"reset_token": "vp_0123456789abcdef_" + "0" * 64, "new_password": "whatever-123"}, [Y, Y, Y, Y, Y, Y, Y]),
        ("admin_users_reset", "POST", "/v1/admin/users/999999/password-reset", {}, [U, F, F, Y, F, F, F]),
        ("admin_users_quota", "PUT", "/v1/admin/users/999999/quota", {"vectors": 1}, [U, F, F, Y, F, F, F]),
    ]
    n = 0
    for route, method, path, body, want in rows:
        for who, exp in zip(order, want):
            tok = tokens[who]
            cname = coll.get(who, "ca")
            p = path.replace("{c}", cname)
            bd = body
            if body == "create":
                bd = {"name": "t_" + who.replace("-", "_"), "dimension": 2, "shards": 1,
                      "replication_factor": 1}
            if "{d}" in p:
                mine = "t_" + who.replace("-", "_")
                # a token that could create deletes its own; others try "ca"
                p = p.replace("{d}", mine if exp == Y else "ca")
            s, b = c.req(method, p, bd, token=tok)
            if exp == Y:
                # 404 USER_NOT_FOUND on the grant to user 999999 means RBAC let it through,
                # and so does the reset handler's own 401 for an unknown reset token
                ok = s < 400 or (route in ("grants", "admin_users_reset", "admin_users_quota") and
                                 s == 404 and code_of(b) == "USER_NOT_FOUND") or \
                    (route == "auth_password_reset" and s == 401 and
                     "reset token" in (b or {}).get("error", {}).get("message", ""))
            else:
                ok = s == exp and code_of(b) == ("UNAUTHORIZED" if exp == 401 else "FORBIDDEN")
            check("table:%s:%s" % (route, who), ok, (method, p, s, b))
            n += 1
    say("   table: %d cells" % n)

    # ---- second table: rights on a collection (login write = carol, sdk scope)
    s, b = c.req("POST", "/v1/collections/cw/search", {"vector": [0.5, 0.5], "k": 1}, token=carol)
    check("rights:read-none-403", s == 403, (s, b))
    s, b = c.req("POST", "/v1/collections/cw/grants", {"user_id": carol_id, "role": "readonly"}, token=carol)
    check("rights:grant-by-non-owner-403", s == 403, (s, b))
    s, b = c.req("POST", "/v1/collections/cw/grants", {"user_id": carol_id, "role": "readonly"}, token=alice)
    check("rights:owner-grants", s == 201, (s, b))
    s, b = c.req("POST", "/v1/collections/cw/search", {"vector": [0.5, 0.5], "k": 1}, token=carol)
    check("rights:read-granted-read", s == 200, (s, b))
    s, b = c.req("PUT", "/v1/collections/cw/points", {"points": [{"id": 2, "vector": [1, 2]}]}, token=carol)
    check("rights:write-granted-read-403", s == 403, (s, b))
    s, b = c.req("POST", "/v1/collections/cw/grants", {"user_id": carol_id, "role": "write"}, token=alice)
    s, b = c.req("PUT", "/v1/collections/cw/points", {"points": [{"id": 2, "vector": [1, 2]}]}, token=carol)
    check("rights:write-granted-write", s == 200, (s, b))
    s, b = c.req("DELETE", "/v1/collections/cw", token=carol)
    check("rights:delete-granted-write-403", s == 403, (s, b))
    s, b = c.req("DELETE", "/v1/collections/cw/grants/%d" % carol_id, token=alice)
    check("rights:revoke-grant", s == 200, (s, b))
    s, b = c.req("POST", "/v1/collections/cw/search", {"vector": [0.5, 0.5], "k": 1}, token=carol)
    check("rights:after-revoke-403", s == 403, (s, b))
    # key scope: a key of alice's scoped to cw cannot touch ca, and narrows
    ka = mkkey(c, alice, "write", colls=("cw",))
    ta = sdk(c, ka["key"])
    s, b = c.req("PUT", "/v1/collections/cw/points", {"points": [{"id": 3, "vector": [1, 2]}]}, token=ta)
    check("scope:in-scope-write", s == 200, (s, b))
    s, b = mkcoll(c, ta, "out_of_scope")
    check("scope:create-out-of-scope-403", s == 403, (s, b))
    s, b = c.req("GET", "/v1/collections/ca", token=ta)
    check("scope:read-out-of-scope-403", s == 403, (s, b))
    names = lambda b: sorted(x["name"] for x in (b or {}).get("collections", []))
    s, b = c.req("GET", "/v1/collections", token=ta)
    check("list:filtered-by-key-scope", s == 200 and names(b) == ["cw"], (s, names(b)))
    s, b = c.req("GET", "/v1/collections", token=carol)
    check("list:filtered-by-rights", s == 200 and names(b) == [], (s, names(b)))
    s, b = c.req("GET", "/v1/collections", token=bob)
    check("list:granted-visible", s == 200 and names(b) == ["ca"], (s, names(b)))
    s, b = c.req("GET", "/v1/collections", token=admin)
    # (a shared cluster also holds the other suites' collections)
    check("list:admin-sees-all", s == 200 and {"ca", "cw"} <= set(names(b)), (s, names(b)))

    # ---- forged and malformed tokens: each 401, nothing else affected
    now = int(time.time())
    good = {"iss": "vectron", "aud": "vectron-api", "sub": str(admin_id), "iat": now, "nbf": now,
            "exp": now + 300, "jti": secrets.token_hex(16), "token_type": "login", "role": "admin"}
    hdr = {"alg": "ES256", "typ": "JWT", "kid": "k1"}
    os.makedirs(AUTHDIR, exist_ok=True)
    other = os.path.join(AUTHDIR, "other.pem")
    subprocess.run("openssl ecparam -name prime256v1 -genkey -noout -out %s" % other, shell=True, check=True)
    real = es256(keyfile, hdr, good)
    s, b = c.req("GET", "/v1/admin/users", token=real)
    check("forge:control-real-signature-ok", s == 200, (s, b))
    parts = real.split(".")
    bad_sig = parts[2][:-2] + ("AA" if parts[2][-2:] != "AA" else "BB")
    forged = {
        "tampered-signature": parts[0] + "." + parts[1] + "." + bad_sig,
        "tampered-payload": parts[0] + "." + b64u(json.dumps(dict(good, sub=str(bob_id))).encode()) + "." + parts[2],
        "wrong-key": es256(other, hdr, good),
        "unknown-kid": es256(keyfile, dict(hdr, kid="nope"), good),
        "alg-none": b64u(json.dumps({"alg": "none", "typ": "JWT", "kid": "k1"}).encode()) + "." + parts[1] + ".",
        "alg-none-dummy-sig": b64u(json.dumps({"alg": "none", "kid": "k1"}).encode()) + "." + parts[1] + ".AAAA",
        "hs256-with-public-key": hs256(pubpem, dict(hdr, alg="HS256"), good),
        "expired": es256(keyfile, hdr, dict(good, iat=now - 4000, nbf=now - 4000, exp=now - 3000)),
        "not-yet-valid": es256(keyfile, hdr, dict(good, nbf=now + 3000, exp=now + 4000)),
        "wrong-audience": es256(keyfile, hdr, dict(good, aud="someone-else")),
        "wrong-issuer": es256(keyfile, hdr, dict(good, iss="evil")),
        "unknown-user": es256(keyfile, hdr, dict(good, sub="424242")),
        "sdk-unknown-key": es256(keyfile, hdr, dict(good, token_type="sdk", key_id="0123456789abcdef",
                                                    collections=["*"])),
        "garbage": "not.a.jwt",
        "oversized": "eyJ" + "A" * 9000 + ".eyJ.AAAA",
    }
    for name, t in forged.items():
        s, b = c.req("GET", "/v1/admin/users", token=t)
        check("forge:%s-401" % name, s == 401 and code_of(b) == "UNAUTHORIZED", (s, b))
    for name, h in {"basic": "Basic YWRtaW46cGFzcw==", "bearer-empty": "Bearer ",
                    "raw-api-key": "Bearer " + k["admin"]["key"], "no-scheme": admin}.items():
        s, b = c.req("GET", "/v1/admin/users", headers={"Authorization": h})
        check("malformed:%s-401" % name, s == 401 and code_of(b) == "UNAUTHORIZED", (s, b))
    s, b = c.req("GET", "/v1/admin/users", token=admin)
    check("forge:nothing-else-affected", s == 200, (s, b))

    # ---- refresh: rotation, reuse revokes the family, logout
    lg = login(c, "carol@example.com", pw["carol"])
    s, r1 = c.req("POST", "/v1/auth/refresh", {"refresh_token": lg["refresh_token"]})
    check("refresh:rotates", s == 200 and r1["refresh_token"] != lg["refresh_token"] and
          r1["token_type"] == "Bearer" and r1["expires_in"] > 0, (s, r1))
    secret(r1["refresh_token"])
    secret(r1["access_token"])
    s, b = c.req("GET", "/v1/me", token=r1["access_token"])
    check("refresh:new-access-works", s == 200 and b["user_id"] == carol_id, (s, b))
    s, b = c.req("POST", "/v1/auth/refresh", {"refresh_token": lg["refresh_token"]})
    check("refresh:reuse-401", s == 401, (s, b))
    s, b = c.req("POST", "/v1/auth/refresh", {"refresh_token": r1["refresh_token"]})
    check("refresh:family-revoked-after-reuse", s == 401, (s, b))
    lg2 = login(c, "carol@example.com", pw["carol"])
    s, b = c.req("POST", "/v1/auth/logout", {"refresh_token": lg2["refresh_token"]})
    check("logout", s == 200, (s, b))
    s, b = c.req("POST", "/v1/auth/refresh", {"refresh_token": lg2["refresh_token"]})
    check("refresh:after-logout-401", s == 401, (s, b))
    s, b = c.req("POST", "/v1/auth/refresh", {"refresh_token": "vr_0123456789abcdef_" + "0" * 64})
    check("refresh:unknown-401", s == 401, (s, b))

    # ---- several verification keys: B signs with k2 and accepts k1; A knows only k1
    s, b = cb.req("GET", "/v1/auth/jwks.json")
    check("kid:jwks-two-keys", s == 200 and sorted(k_["kid"] for k_ in b["keys"]) == ["k1", "k2"], (s, b))
    s, b = cb.req("GET", "/v1/me", token=admin)
    check("kid:k1-token-on-b", s == 200, (s, b))
    lb = login(cb, "carol@example.com", pw["carol"])
    s, b = cb.req("GET", "/v1/me", token=lb["access_token"])
    check("kid:k2-token-on-b", s == 200, (s, b))
    s, b = c.req("GET", "/v1/me", token=lb["access_token"])
    check("kid:k2-token-on-a-401", s == 401, (s, b))

    # ---- admin IP allow-list: B allows admin routes only from 10.9.8.0/24
    s, b = cb.req("GET", "/v1/admin/nodes", token=admin)
    check("allowlist:admin-route-403-on-b", s == 403 and code_of(b) == "FORBIDDEN", (s, b))
    s, b = cb.req("GET", "/v1/collections", token=admin)
    check("allowlist:data-route-ok-on-b", s == 200, (s, b))

    # ---- two refreshes racing with one token: one wins, and the family is revoked
    import threading
    lr = login(c, "carol@example.com", pw["carol"])
    res = []

    def race():
        res.append(c.like().req("POST", "/v1/auth/refresh", {"refresh_token": lr["refresh_token"]}))
    ths = [threading.Thread(target=race) for _ in range(2)]
    for t_ in ths:
        t_.start()
    for t_ in ths:
        t_.join()
    codes = sorted(r_[0] for r_ in res)
    for r_ in res:
        if r_[0] == 200:
            secret(r_[1]["refresh_token"])
            secret(r_[1]["access_token"])
    check("refresh:race-one-wins", codes == [200, 401], codes)
    win = [r_[1] for r_ in res if r_[0] == 200]
    if win:
        s, b = c.req("POST", "/v1/auth/refresh", {"refresh_token": win[0]["refresh_token"]})
        check("refresh:race-family-revoked", s == 401, (s, b))

    # ---- key revocation, on this coordinator at once and on B within seconds
    kr = mkkey(c, admin, "write")
    tr = sdk(c, kr["key"])
    time.sleep(1.2)
    s1, _ = c.req("GET", "/v1/collections", token=tr)
    s2, _ = cb.req("GET", "/v1/collections", token=tr)
    check("revoke:works-before", s1 == 200 and s2 == 200, (s1, s2))
    s, b = c.req("DELETE", "/v1/keys/" + kr["id"], token=admin)
    check("revoke:delete", s == 200, (s, b))
    s, b = c.req("GET", "/v1/collections", token=tr)
    check("revoke:token-401-at-once", s == 401, (s, b))
    t1 = time.time()
    while time.time() - t1 < 5:
        s, b = cb.req("GET", "/v1/collections", token=tr)
        if s == 401:
            break
        time.sleep(0.1)
    check("revoke:token-401-on-other-coordinator", s == 401, (s, b))
    say("   revocation seen by coordinator B after %.2fs" % (time.time() - t1))
    s, b = c.req("POST", "/v1/auth/token", {"api_key": kr["key"]})
    check("revoke:exchange-401", s == 401, (s, b))
    s, b = c.req("DELETE", "/v1/keys/" + k["write"]["id"], token=alice)
    check("revoke:other-users-key-404", s == 404, (s, b))

    # ---- rotation with grace
    kg = mkkey(c, admin, "readonly")
    s, rot = c.req("POST", "/v1/keys/%s/rotate" % kg["id"], {"grace_seconds": 2}, token=admin)
    check("rotate", s == 200 and rot["id"] == kg["id"] and rot["key"] != kg["key"] and
          rot.get("previous_expires_at"), (s, rot))
    secret(rot["key"])
    s1, _ = c.req("POST", "/v1/auth/token", {"api_key": kg["key"]})
    s2, _ = c.req("POST", "/v1/auth/token", {"api_key": rot["key"]})
    check("rotate:both-work-in-grace", s1 == 200 and s2 == 200, (s1, s2))
    time.sleep(2.5)
    s1, _ = c.req("POST", "/v1/auth/token", {"api_key": kg["key"]})
    s2, _ = c.req("POST", "/v1/auth/token", {"api_key": rot["key"]})
    check("rotate:old-fails-after-grace", s1 == 401 and s2 == 200, (s1, s2))
    kx = mkkey(c, admin, "readonly", expires_at="2001-01-01T00:00:00Z")
    s, b = c.req("POST", "/v1/auth/token", {"api_key": kx["key"]})
    check("key:expired-401", s == 401, (s, b))

    # ---- rate limit per key on B (5/s, burst 10)
    tl = sdk(c, mkkey(c, admin, "readonly")["key"])
    time.sleep(1.2)     # B learns of the new key from its next snapshot
    codes = []
    for _ in range(30):
        s, b = cb.req("GET", "/v1/collections", token=tl)
        codes.append(s)
        if s == 429:
            ra = cb.last_headers.get("retry-after")
            code = code_of(b)
    check("ratelimit:429", 429 in codes and codes[0] == 200, codes)
    if 429 in codes:
        check("ratelimit:retry-after", ra is not None and int(ra) >= 1 and code == "RATE_LIMITED", (ra, code))
    s, b = c.req("GET", "/v1/collections", token=tl)
    check("ratelimit:per-coordinator", s == 200, (s, b))

    # ---- refusals are counted in /metrics, by a fixed set of reasons
    def metric_sum(cl, name, label=None):
        s, b = cl.req("GET", "/metrics", token=admin)
        total = 0.0
        for line in (b or {}).get("_raw", "").splitlines():
            if line.startswith(name) and (label is None or label in line):
                total += float(line.rsplit(" ", 1)[1])
        return s, total
    s, _ = metric_sum(cb, "vectron_rate_limited_total")
    check("metrics:admin-allow-list-on-b-403", s == 403, s)   # B's admin routes: other networks only
    s, nexp = metric_sum(c, "vectron_auth_failures_total", 'reason="expired"')
    s2, nforb = metric_sum(c, "vectron_auth_failures_total", 'reason="forbidden"')
    s3, ninv = metric_sum(c, "vectron_auth_failures_total", 'reason="invalid"')
    check("metrics:auth-failures-by-reason", s == 200 and nexp >= 1 and nforb >= 1 and ninv >= 1,
          (s, nexp, nforb, ninv))
    s, before = metric_sum(c, "vectron_auth_failures_total", 'reason="missing"')
    c.req("GET", "/v1/keys")
    s, after = metric_sum(c, "vectron_auth_failures_total", 'reason="missing"')
    check("metrics:missing-credential-counted", after == before + 1, (before, after))

    # ---- user deletion: cascade, collections handed to the admin
    ka2 = mkkey(c, alice, "write", colls=("cw",))
    s, b = c.req("DELETE", "/v1/admin/users/%d" % alice_id, token=admin)
    check("user-delete", s == 200 and b.get("collections_handed_to") == admin_id, (s, b))
    s, b = c.req("GET", "/v1/me", token=alice)
    check("user-delete:login-token-401", s == 401, (s, b))
    s, b = c.req("POST", "/v1/auth/token", {"api_key": ka2["key"]})
    check("user-delete:keys-gone", s == 401, (s, b))
    owner = vectron_psql(st, "SELECT user_id FROM vectron_meta.collection_owner WHERE name = 'cw'")
    check("user-delete:collection-handed-to-admin", owner == str(admin_id), owner)
    s, b = c.req("DELETE", "/v1/admin/users/%d" % alice_id, token=bob)
    check("user-delete:non-admin-403", s == 403, (s, b))

    # ---- quotas (collections) and changing one's password
    s, b = c.req("PUT", "/v1/admin/users/%d/quota" % carol_id, {"collections": 1}, token=bob)
    check("quota:non-admin-403", s == 403, (s, b))
    s, b = c.req("PUT", "/v1/admin/users/%d/quota" % carol_id, {"collections": 1}, token=admin)
    check("quota:set", s == 200 and b["quotas"]["collections"] == 1, (s, b))
    s, b = mkcoll(c, carol, "q1")
    check("quota:under-limit-201", s == 201, (s, b))
    s, b = mkcoll(c, carol, "q2")
    check("quota:over-limit-403", s == 403 and code_of(b) == "QUOTA_EXCEEDED", (s, b))
    s, b = c.req("GET", "/v1/me", token=carol)
    check("quota:me", s == 200 and b["quotas"]["collections"] == 1 and b["usage"]["collections"] == 1, (s, b))
    s, b = c.req("PUT", "/v1/admin/users/%d/quota" % carol_id, {"collections": None}, token=admin)
    s, b = mkcoll(c, carol, "q2")
    check("quota:lifted", s == 201, (s, b))
    newpw = secret("New-" + secrets.token_hex(10))
    s, b = c.req("POST", "/v1/me/password", {"current_password": "not-the-password", "new_password": newpw}, token=bob)
    check("password:wrong-current-403", s == 403, (s, b))
    s, b = c.req("POST", "/v1/me/password", {"current_password": pw["bob"], "new_password": newpw},
                 token=tokens["sdk-admin"])
    check("password:sdk-token-403", s == 403, (s, b))
    s, b = c.req("POST", "/v1/me/password", {"current_password": pw["bob"], "new_password": newpw}, token=bob)
    check("password:change", s == 200, (s, b))
    s, b = c.req("POST", "/v1/auth/login", {"email": "bob@example.com", "password": pw["bob"]})
    check("password:old-fails", s == 401, (s, b))
    s, b = c.req("POST", "/v1/auth/login", {"email": "bob@example.com", "password": newpw})
    check("password:new-works", s == 200, (s, b))
    if s == 200:
        secret(b["access_token"])
        secret(b["refresh_token"])

    # ---- audit
    s, b = c.req("GET", "/v1/admin/audit", token=admin)
    acts = set(e["action"] for e in (b or {}).get("events", []))
    check("audit", s == 200 and {"login", "key.create", "key.revoke", "user.delete", "refresh.reuse",
                                 "authenticate", "collection.create", "collection.delete",
                                 "quota.set", "password.change", "grant.set"} <= acts, (s, sorted(acts)))
    s, b = c.req("GET", "/v1/admin/audit?action=login", token=admin)
    check("audit:filter", s == 200 and b["events"] and all(e["action"] == "login" for e in b["events"]), s)

    # ---- injection: SQL and JSON tricks get a 400 or are stored literally
    evil_email = "eve'); DROP TABLE vectron_meta.api_key;--@example.com"
    evil_pw = secret("Pw-" + secrets.token_hex(8) + "'\"\\;--")
    s, b = c.req("POST", "/v1/auth/register", {"email": evil_email, "password": evil_pw})
    check("inject:email-stored-literally", s == 201, (s, b))
    s, b = c.req("POST", "/v1/auth/login", {"email": evil_email, "password": evil_pw})
    check("inject:login-with-tricky-password", s == 200, (s, b))
    if s == 200:
        secret(b["access_token"])
        secret(b["refresh_token"])
    s, b = mkcoll(c, admin, "x'; DROP TABLE vectron_meta.app_user;--")
    check("inject:collection-name-400", s == 400, (s, b))
    evil_name = "k\"}'; DELETE FROM vectron_meta.app_user;-- {\"a\":1}"
    s, b = c.req("POST", "/v1/keys", {"name": evil_name, "role": "readonly", "collections": ["*"]}, token=admin)
    check("inject:key-name-created", s == 201, (s, b))
    if s == 201:
        secret(b["key"])
    s, b = c.req("GET", "/v1/keys", token=admin)
    check("inject:key-name-literal", s == 200 and any(x["name"] == evil_name for x in b["keys"]), s)
    s, b = c.req("POST", "/v1/keys", {"name": "n", "role": "readonly", "collections": ["a\",\"b"]}, token=admin)
    check("inject:array-literal-trick-400", s == 400, (s, b))
    s, b = c.req("POST", "/v1/keys", {"name": "n", "role": "admin' OR '1'='1", "collections": ["*"]}, token=admin)
    check("inject:role-400", s == 400, (s, b))
    s, b = c.req("POST", "/v1/collections/ca/grants", {"user_id": "1 OR 1=1", "role": "write"}, token=admin)
    check("inject:grant-user-id-400", s == 400, (s, b))
    s, b = c.req("DELETE", "/v1/keys/%27%20OR%20%271%27=%271", token=admin)
    check("inject:key-id-404", s == 404, (s, b))
    s, b = c.req("DELETE", "/v1/admin/users/1%20OR%201=1", token=admin)
    check("inject:user-id-404", s == 404, (s, b))
    s, b = c.req("POST", "/v1/auth/login", raw=b'{"email":"admin@example.com","email":"x@y.z","password":"aaaaaaaa"}')
    check("inject:duplicate-json-key-400", s == 400 and code_of(b) == "INVALID_JSON", (s, b))
    s, b = c.req("POST", "/v1/auth/login", {"email": "admin@example.com\u0000x", "password": "aaaaaaaa"})
    check("inject:nul-in-email-400", s == 400, (s, b))
    s, b = c.req("POST", "/v1/auth/token", {"api_key": ["vk_x"]})
    check("inject:api-key-wrong-type-401", s == 401, (s, b))
    counts = vectron_psql(st, "SELECT (SELECT count(*) FROM vectron_meta.app_user) > 0, "
                              "(SELECT count(*) FROM vectron_meta.api_key) > 0, "
                              "(SELECT count(*) FROM vectron_meta.collection WHERE name = 'ca')")
    s, b = c.req("GET", "/v1/admin/users", token=admin)
    check("inject:tables-intact", counts == "t|t|1" and s == 200 and
          any(u["email"] == evil_email.lower() for u in b["users"]), (counts, s))

    run_acct_tests(c, cb, st, admin, admin_id)

    # ---- stored forms: hashes only
    rows_ = vectron_psql(st, "SELECT hash FROM vectron_meta.api_key UNION ALL "
                             "SELECT hash FROM vectron_meta.refresh_token UNION ALL "
                             "SELECT hash FROM vectron_meta.password_reset UNION ALL "
                             "SELECT password_hash FROM vectron_meta.app_user")
    check("stored-hashed", rows_ and all(x.startswith(("hmac-sha256:", "$argon2id$"))
                                         for x in rows_.split()), rows_[:200])



def jwt_claims(tok):
    p = tok.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))


def wait_status(fn, want, secs=5.0):
    """Call fn() until its status is want (or secs pass); returns (s, b, seconds)."""
    t1 = time.time()
    while True:
        s, b = fn()
        if s == want or time.time() - t1 > secs:
            return s, b, time.time() - t1
        time.sleep(0.25)


def run_acct_tests(c, cb, st, admin, admin_id):
    """Issue 5, second part: logout revokes login JWTs, admin-issued password
    resets, vector and dimension x count quotas, `vectron user create`."""
    pw = {u: secret("Pw-" + secrets.token_hex(10)) for u in ("dave", "erin", "frank", "gina")}
    uid = {}
    for u in pw:
        s, b = c.req("POST", "/v1/admin/users", {"email": u + "@example.com", "password": pw[u],
                                                 "role": "write"}, token=admin)
        check("acct:create-%s" % u, s == 201, (s, b))
        uid[u] = (b or {}).get("user_id")

    # ---- logout makes the session's login JWTs fail (fam claim + revoked-family set)
    l1 = login(c, "dave@example.com", pw["dave"])
    l2 = login(c, "dave@example.com", pw["dave"])
    fam = jwt_claims(l1["access_token"]).get("fam")
    check("logout-jwt:fam-claim", fam and fam != jwt_claims(l2["access_token"]).get("fam"),
          jwt_claims(l1["access_token"]))
    s1, _ = c.req("GET", "/v1/keys", token=l1["access_token"])
    # B knows dave after its next snapshot
    s2, _, _ = wait_status(lambda: cb.req("GET", "/v1/me", token=l1["access_token"]), 200)
    check("logout-jwt:works-before", s1 == 200 and s2 == 200, (s1, s2))
    s, b = c.req("POST", "/v1/auth/logout", {"refresh_token": l1["refresh_token"]})
    check("logout-jwt:logout", s == 200, (s, b))
    s, b = c.req("GET", "/v1/keys", token=l1["access_token"])
    check("logout-jwt:401-at-once", s == 401 and code_of(b) == "UNAUTHORIZED", (s, b))
    s, b, secs = wait_status(lambda: cb.req("GET", "/v1/me", token=l1["access_token"]), 401)
    check("logout-jwt:401-on-other-coordinator", s == 401, (s, b))
    say("   logout seen by coordinator B after %.2fs" % secs)
    s, b = c.req("GET", "/v1/keys", token=l2["access_token"])
    check("logout-jwt:other-session-unaffected", s == 200, (s, b))
    s, b = c.req("POST", "/v1/auth/refresh", {"refresh_token": l2["refresh_token"]})
    if s == 200:
        secret(b["access_token"])
        secret(b["refresh_token"])
    check("logout-jwt:refresh-keeps-family", s == 200 and
          jwt_claims(b["access_token"]).get("fam") == jwt_claims(l2["access_token"]).get("fam"), (s, b))

    # a password change ends the other sessions (refresh and login JWT), not the caller's
    l3 = login(c, "dave@example.com", pw["dave"])
    dpw = secret("Dave-" + secrets.token_hex(10))
    s, b = c.req("POST", "/v1/me/password", {"current_password": pw["dave"], "new_password": dpw},
                 token=l2["access_token"])
    check("password-change:ok", s == 200, (s, b))
    s, b = c.req("GET", "/v1/keys", token=l2["access_token"])
    check("password-change:own-session-goes-on", s == 200, (s, b))
    s, b, _ = wait_status(lambda: c.req("GET", "/v1/keys", token=l3["access_token"]), 401)
    check("password-change:other-login-jwt-401", s == 401, (s, b))
    s, b = c.req("POST", "/v1/auth/refresh", {"refresh_token": l3["refresh_token"]})
    check("password-change:other-refresh-401", s == 401, (s, b))

    # ---- admin-issued password reset
    le = login(c, "erin@example.com", pw["erin"])
    ur = "/v1/admin/users/%d/password-reset"
    s, b = c.req("POST", ur % uid["erin"], {}, token=le["access_token"])
    check("reset:non-admin-403", s == 403 and code_of(b) == "FORBIDDEN", (s, b))
    s, b = c.req("POST", ur % 999999, {}, token=admin)
    check("reset:unknown-user-404", s == 404 and code_of(b) == "USER_NOT_FOUND", (s, b))
    s, b = c.req("POST", ur % uid["erin"], {"ttl_seconds": 0}, token=admin)
    check("reset:bad-ttl-400", s == 400, (s, b))
    s, r1 = c.req("POST", ur % uid["erin"], None, token=admin)
    tok1 = secret(r1["reset_token"]) if s == 201 else None
    check("reset:issue", s == 201 and tok1.startswith("vp_") and r1.get("expires_at", "").endswith("Z") and
          r1["user_id"] == uid["erin"], (s, r1))
    s, r2 = c.req("POST", ur % uid["erin"], {"ttl_seconds": 600}, token=admin)
    tok2 = secret(r2["reset_token"]) if s == 201 else None
    newpw = secret("Reset-" + secrets.token_hex(10))
    s, b = c.req("POST", "/v1/auth/password-reset", {"reset_token": tok1, "new_password": newpw})
    check("reset:superseded-token-401", s == 401 and code_of(b) == "UNAUTHORIZED", (s, b))
    s, b = c.req("POST", "/v1/auth/password-reset", {"reset_token": tok2, "new_password": "short"})
    check("reset:short-password-400", s == 400, (s, b))
    s, b = c.req("POST", "/v1/auth/password-reset", {"reset_token": "vp_0123456789abcdef_" + "0" * 64,
                                                     "new_password": newpw})
    check("reset:unknown-token-401", s == 401, (s, b))
    s, b = c.req("POST", "/v1/auth/password-reset", {"reset_token": tok2[:-1] + ("0" if tok2[-1] != "0" else "1"),
                                                     "new_password": newpw})
    check("reset:wrong-secret-401", s == 401, (s, b))
    s, b = c.req("POST", "/v1/auth/password-reset", {"reset_token": tok2, "new_password": newpw})
    check("reset:works", s == 200 and b.get("reset") is True, (s, b))
    s, b = c.req("POST", "/v1/auth/password-reset", {"reset_token": tok2, "new_password": newpw + "x"})
    check("reset:second-use-401", s == 401, (s, b))
    s, b = c.req("POST", "/v1/auth/login", {"email": "erin@example.com", "password": pw["erin"]})
    check("reset:old-password-401", s == 401, (s, b))
    s, b = c.req("POST", "/v1/auth/login", {"email": "erin@example.com", "password": newpw})
    check("reset:new-password-works", s == 200, (s, b))
    if s == 200:
        secret(b["access_token"])
        secret(b["refresh_token"])
    s, b = c.req("POST", "/v1/auth/refresh", {"refresh_token": le["refresh_token"]})
    check("reset:sessions-revoked", s == 401, (s, b))
    s, b, _ = wait_status(lambda: c.req("GET", "/v1/keys", token=le["access_token"]), 401)
    check("reset:old-login-jwt-401", s == 401, (s, b))
    # two uses of one token at once: exactly one wins
    import threading
    s, r5 = c.req("POST", ur % uid["erin"], {}, token=admin)
    tok5 = secret(r5["reset_token"]) if s == 201 else ""
    res = []
    racepw = [secret("Race-" + secrets.token_hex(8)) for _ in range(2)]

    def use(p_):
        res.append(c.like().req("POST", "/v1/auth/password-reset", {"reset_token": tok5, "new_password": p_}))
    ths = [threading.Thread(target=use, args=(p_,)) for p_ in racepw]
    for t_ in ths:
        t_.start()
    for t_ in ths:
        t_.join()
    check("reset:race-one-wins", sorted(r_[0] for r_ in res) == [200, 401], [r_[0] for r_ in res])
    s, r3 = c.req("POST", ur % uid["erin"], {"ttl_seconds": 1}, token=admin)
    tok3 = secret(r3["reset_token"]) if s == 201 else ""
    time.sleep(2.2)
    s, b = c.req("POST", "/v1/auth/password-reset", {"reset_token": tok3, "new_password": newpw + "y"})
    check("reset:expired-401", s == 401, (s, b))
    s, r4 = c.req("POST", ur % uid["frank"], {}, token=admin)
    tok4 = secret(r4["reset_token"]) if s == 201 else ""
    s, b = c.req("DELETE", "/v1/admin/users/%d" % uid["frank"], token=admin)
    s, b = c.req("POST", "/v1/auth/password-reset", {"reset_token": tok4, "new_password": newpw + "z"})
    check("reset:deleted-user-401", s == 401, (s, b))
    s, b = c.req("GET", "/v1/admin/audit", token=admin)
    acts = [e["action"] for e in (b or {}).get("events", [])]
    check("reset:audited", "password.reset.issue" in acts and "password.reset" in acts, sorted(set(acts)))
    rows_ = vectron_psql(st, "SELECT hash FROM vectron_meta.password_reset")
    check("reset:stored-hashed", rows_ and all(x.startswith("hmac-sha256:") for x in rows_.split()) and
          not any(t_ and t_ in rows_ for t_ in (tok1, tok2, tok3, tok4)), rows_[:100])

    # ---- quotas: vectors and dimension x count, counted on acknowledged writes
    gt = login(c, "gina@example.com", pw["gina"])["access_token"]
    s, b = c.req("POST", "/v1/collections", {"name": "qv", "dimension": 2, "shards": 2,
                                             "replication_factor": 1}, token=gt)
    check("quota-v:create", s == 201, (s, b))
    uq = "/v1/admin/users/%d/quota" % uid["gina"]
    s, b = c.req("PUT", uq, {"vectors": -1}, token=admin)
    check("quota-v:bad-value-400", s == 400, (s, b))
    s, b = c.req("PUT", uq, {}, token=admin)
    check("quota-v:empty-400", s == 400, (s, b))
    s, b = c.req("PUT", uq, {"vectors": 5}, token=admin)
    check("quota-v:set", s == 200 and b["quotas"] == {"collections": None, "vectors": 5,
                                                      "dimension_count": None}, (s, b))
    pts = lambda ids: {"points": [{"id": i, "vector": [i, i + 0.5]} for i in ids]}
    s, b = c.req("PUT", "/v1/collections/qv/points", pts([1, 2, 3]), token=gt)
    check("quota-v:under-limit", s == 200, (s, b))
    s, b = c.req("PUT", "/v1/collections/qv/points", pts([4, 5]), token=gt)
    check("quota-v:to-limit", s == 200, (s, b))
    s, b, _ = wait_status(lambda: (lambda r: (r[0] if r[1]["usage"]["vectors"] == 5 else -1, r[1]))(
        c.req("GET", "/v1/me", token=gt)), 200)
    check("quota-v:me-usage", s == 200 and b["usage"] == {"collections": 1, "vectors": 5, "dimension_count": 10}
          and b["quotas"]["vectors"] == 5, (s, b))
    s, b = c.req("PUT", "/v1/collections/qv/points", pts([6]), token=gt)
    check("quota-v:over-limit-403", s == 403 and code_of(b) == "QUOTA_EXCEEDED" and
          "vector quota" in b["error"]["message"], (s, b))
    s, b = c.req("GET", "/v1/collections/qv", token=gt)
    s2, b2 = c.req("POST", "/v1/collections/qv/points/get", {"ids": [1, 2, 3, 4, 5, 6]}, token=gt)
    got = sorted(str(p_["id"]) for p_ in (b2 or {}).get("points", []))
    check("quota-v:data-intact", s == 200 and b.get("count") == 5 and got == ["1", "2", "3", "4", "5"],
          (s, b, got))
    ndjson = b"".join(json.dumps({"id": i, "vector": [i, i]}).encode() + b"\n" for i in (7, 8))
    s, b = c.req("POST", "/v1/collections/qv/points/import", raw=ndjson, token=gt,
                 headers={"Content-Type": "application/x-ndjson"})
    check("quota-v:import-403", s == 403 and code_of(b) == "QUOTA_EXCEEDED", (s, b))
    s, b = c.req("POST", "/v1/collections/qv/points/delete", {"ids": [1, 2]}, token=gt)
    check("quota-v:delete", s == 200 and b.get("deleted") == 2, (s, b))
    s, b = c.req("PUT", "/v1/collections/qv/points", pts([6, 7]), token=gt)
    check("quota-v:delete-frees-quota", s == 200, (s, b))
    s, b, secs = wait_status(lambda: (lambda r: (r[0] if (r[1] or {}).get("usage", {}).get("vectors") == 5 else -1,
                                                r[1]))(cb.req("GET", "/v1/me", token=gt)), 200)
    check("quota-v:usage-on-other-coordinator", s == 200, (s, b))
    s, b = cb.req("PUT", "/v1/collections/qv/points", pts([8]), token=gt)
    check("quota-v:enforced-on-other-coordinator", s == 403 and code_of(b) == "QUOTA_EXCEEDED", (s, b))
    counted = vectron_psql(st, "SELECT u.points FROM vectron_meta.collection_usage u "
                               "JOIN vectron_meta.collection c ON c.id = u.collection_id WHERE c.name = 'qv'")
    check("quota-v:metadata-count", counted == "5", counted)
    # dimension x count: 5 points x 2 = 10 used
    s, b = c.req("PUT", uq, {"vectors": None, "dimension_count": 12}, token=admin)
    check("quota-dc:set", s == 200 and b["quotas"]["vectors"] is None and b["quotas"]["dimension_count"] == 12,
          (s, b))
    s, b = c.req("PUT", "/v1/collections/qv/points", pts([8]), token=gt)
    check("quota-dc:to-limit", s == 200, (s, b))
    s, b = c.req("PUT", "/v1/collections/qv/points", pts([9]), token=gt)
    check("quota-dc:over-limit-403", s == 403 and code_of(b) == "QUOTA_EXCEEDED" and
          "dimension_count" in b["error"]["message"], (s, b))
    s, b, _ = wait_status(lambda: (lambda r: (r[0] if r[1]["usage"]["dimension_count"] == 12 else -1, r[1]))(
        c.req("GET", "/v1/me", token=gt)), 200)
    check("quota-dc:me", s == 200 and b["usage"]["vectors"] == 6 and b["quotas"]["dimension_count"] == 12, (s, b))
    s, b = c.req("PUT", uq, {"dimension_count": None}, token=admin)
    s, b = c.req("PUT", "/v1/collections/qv/points", pts([9]), token=gt)
    check("quota-dc:lifted", s == 200, (s, b))

    # ---- vectron user create: the first admin, straight into the metadata database
    os.makedirs(AUTHDIR, exist_ok=True)
    pwf = os.path.join(AUTHDIR, "root-password")
    rootpw = secret("Root-" + secrets.token_hex(12))
    vectron.write_private(pwf, rootpw + "\n")
    r = subprocess.run([sys.executable, CLI, "user", "create", "--admin", "--email", "Root2@Example.com",
                        "--password-file", pwf, "--dir", CLUSTER], capture_output=True, text=True)
    say("   " + (r.stdout + r.stderr).strip())
    check("cli-user:create-admin", r.returncode == 0 and "created admin user" in r.stdout, r.stdout + r.stderr)
    s, b = c.req("POST", "/v1/auth/login", {"email": "root2@example.com", "password": rootpw})
    check("cli-user:login", s == 200, (s, b))
    if s == 200:
        secret(b["access_token"])
        secret(b["refresh_token"])
        s, b, _ = wait_status(lambda: c.req("GET", "/v1/admin/users", token=b["access_token"]), 200)
        check("cli-user:admin-users", s == 200 and any(u["email"] == "root2@example.com" and u["role"] == "admin"
                                                        for u in b["users"]), (s, b))
    h = vectron_psql(st, "SELECT password_hash FROM vectron_meta.app_user WHERE email = 'root2@example.com'")
    check("cli-user:argon2id-hash", h.startswith("$argon2id$v=19$m=256,t=1,p=1$"), h[:40])
    r = subprocess.run([sys.executable, CLI, "user", "create", "--admin", "--email", "root2@example.com",
                        "--password-file", pwf, "--dir", CLUSTER], capture_output=True, text=True)
    check("cli-user:duplicate-fails", r.returncode != 0 and "already exists" in r.stderr, r.stderr)
    ropw = secret("Ro-" + secrets.token_hex(12))
    r = subprocess.run([sys.executable, CLI, "user", "create", "--role", "readonly", "--email", "ro@example.com",
                        "--dir", CLUSTER], capture_output=True, text=True,
                       env=dict(os.environ, VECTRON_USER_PASSWORD=ropw))
    check("cli-user:create-readonly-env", r.returncode == 0, r.stdout + r.stderr)
    s, b = c.req("POST", "/v1/auth/login", {"email": "ro@example.com", "password": ropw})
    if s == 200:
        secret(b["access_token"])
        secret(b["refresh_token"])
        s, b, _ = wait_status(lambda: c.req("GET", "/v1/admin/users", token=b["access_token"]), 403)
    check("cli-user:readonly-not-admin", s == 403, (s, b))


def vectron_psql(st, sql):
    r = vectron.runas([os.path.join(st["pgbin"], "psql"), "-X", "-A", "-t", "-q", "-h", "127.0.0.1",
                       "-p", str(st["meta"]["port"]), "-U", "postgres", "-d", "postgres", "-c", sql],
                      capture_output=True, text=True)
    return r.stdout.strip()


def grep_secrets():
    texts = {"test-output": OUT.getvalue()}
    for dp, dn, fn in os.walk(CLUSTER):
        for f in fn:
            if f.endswith(".log") or "log" in dp.split(os.sep)[-1]:
                p = os.path.join(dp, f)
                try:
                    with open(p, errors="replace") as fh:
                        texts[os.path.relpath(p, CLUSTER)] = fh.read()
                except OSError:
                    pass
    leaks = []
    for s in set(SECRETS):
        for name, t in texts.items():
            if s and s in t:
                leaks.append(name)
    check("no-secret-in-logs (%d secrets, %d files)" % (len(set(SECRETS)), len(texts) - 1),
          not leaks and len(texts) > 2, sorted(set(leaks)))


if __name__ == "__main__":
    main()
    say("   auth integration: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
