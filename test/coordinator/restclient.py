"""restclient.py: the HTTP side of the REST test suites (stdlib only).

One place for what integration.py, auth_integration.py, ops.py, the SDK
runner and the auth-off smoke test used to copy each for themselves:

  Client        a keep-alive connection to one coordinator: JSON in, JSON
                out, a default bearer token (a string, or a callable that
                mints a fresh one), https with a private CA.
  request()     one request on a fresh connection, with the answer's headers.
  Cluster       a running `vectron cluster up` directory as the tests see it:
                its coordinator's address and scheme, the CA of a --tls
                cluster, the admin's API key and SDK JWTs minted from it
                (re-minted before they expire), raw sockets (TLS-wrapped
                when the cluster is), the coordinator log from an offset.
  open_cluster  the cluster a suite runs on: the one the check harness
                shares ($VX_REST_CLUSTER, see scripts/lib/rest_cluster.py), or
                a private one brought up the same way when a suite is run
                by hand.

A token argument left out means "the client's default"; token=None means
"no Authorization header", which the auth tests rely on.
"""
import glob
import http.client
import json
import os
import re
import socket
import ssl
import sys
import time

_DEFAULT = object()


def tls_context(ca):
    """A client context that trusts only the given CA file (hostnames and
    chains checked as usual), or None for plain http."""
    if not ca:
        return None
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _as_context(tls):
    if tls is None or isinstance(tls, ssl.SSLContext):
        return tls
    return tls_context(tls)


def _token_value(token):
    return token() if callable(token) else token


def _decode(text):
    try:
        return json.loads(text) if text else None
    except ValueError:
        return {"_raw": text.decode(errors="replace")}


class Client:
    """One keep-alive connection to a coordinator.  req() answers
    (status, decoded JSON body); the answer's headers (lower-cased names)
    are in last_headers.  A dropped connection is reopened once."""

    def __init__(self, port, host="127.0.0.1", tls=None, token=None, timeout=60):
        self.port = port
        self.host = host
        self.tls = _as_context(tls)
        self.token = token
        self.timeout = timeout
        self.conn = None
        self.last_headers = {}

    def like(self, port=None, token=_DEFAULT):
        """A new client with this one's settings (own connection)."""
        return Client(self.port if port is None else port, self.host, self.tls,
                      self.token if token is _DEFAULT else token, self.timeout)

    def _connect(self):
        if self.tls is not None:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=self.tls)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def req(self, method, path, body=None, token=_DEFAULT, raw=None, headers=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        tok = _token_value(self.token if token is _DEFAULT else token)
        for attempt in range(2):
            if self.conn is None:
                self.conn = self._connect()
            try:
                h = {"Content-Type": "application/json"}
                if tok:
                    h["Authorization"] = "Bearer " + tok
                h.update(headers or {})
                self.conn.request(method, path, body=data, headers=h)
                r = self.conn.getresponse()
                text = r.read()
                self.last_headers = dict((k.lower(), v) for k, v in r.getheaders())
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, _decode(text)
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn = None
                if attempt:
                    raise
        return None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def request(port, method, path, body=None, headers=None, raw=False, token=None, host="127.0.0.1",
            tls=None, timeout=60):
    """One request on a fresh connection: (status, JSON body or, with
    raw=True, the text, headers with lower-cased names)."""
    c = Client(port, host, tls, token, timeout)
    c.conn = c._connect()
    h = {"Content-Type": "application/json"}
    tok = _token_value(token)
    if tok:
        h["Authorization"] = "Bearer " + tok
    h.update(headers or {})
    c.conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=h)
    r = c.conn.getresponse()
    text = r.read()
    hdrs = dict((k.lower(), v) for k, v in r.getheaders())
    c.close()
    if raw:
        return r.status, text.decode(), hdrs
    return r.status, _decode(text), hdrs


def free_port():
    """A loopback TCP port nothing listens on (the kernel's choice)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def find_ca(d, state=None):
    """The CA certificate of a `cluster up --tls` directory, or None.
    $VX_REST_CA wins; then what cluster.json records; then the
    coordinator.conf settings that name a CA; then D/tls/ca.{pem,crt}."""
    if os.environ.get("VX_REST_CA"):
        return os.environ["VX_REST_CA"]
    st = state or {}
    tls = st.get("tls")
    if isinstance(tls, dict):
        for k in ("ca", "ca_file", "ca_cert", "cafile"):
            if tls.get(k) and os.path.exists(tls[k]):
                return tls[k]
    for k in ("ca", "ca_file", "tls_ca"):
        if isinstance(st.get(k), str) and os.path.exists(st[k]):
            return st[k]
    conf = os.path.join(d, "coordinator.conf")
    if os.path.exists(conf) and _conf_value(conf, "tls_cert_file"):
        for k in ("pg_sslrootcert", "tls_ca_file"):
            v = _conf_value(conf, k)
            if v and os.path.exists(v):
                return v
    for p in sorted(glob.glob(os.path.join(d, "tls", "ca.pem")) + glob.glob(os.path.join(d, "tls", "ca.crt"))):
        return p
    return None


def _conf_value(path, key):
    with open(path) as f:
        for line in f:
            m = re.match(r"\s*%s\s*=\s*(.*?)\s*$" % re.escape(key), line)
            if m:
                v = m.group(1)
                if len(v) >= 2 and v[0] == v[-1] == '"':
                    v = v[1:-1]
                return v[5:] if v.startswith("file:") else v
    return None


class Cluster:
    """A running local cluster (a `vectron cluster up` directory)."""

    def __init__(self, d, owned=False):
        self.dir = os.path.abspath(d)
        self.owned = owned
        with open(os.path.join(self.dir, "cluster.json")) as f:
            self.state = json.load(f)
        self.port = self.state["coordinator_port"]
        self.ca = find_ca(self.dir, self.state)
        self.tls = tls_context(self.ca)
        self.scheme = "https" if self.ca else "http"
        self.url = "%s://127.0.0.1:%d" % (self.scheme, self.port)
        self.auth = bool(self.state.get("auth"))
        self.cred = {}
        cp = os.path.join(self.dir, "credentials.json")
        if self.auth and os.path.exists(cp):
            with open(cp) as f:
                self.cred = json.load(f)
        self.api_key = self.cred.get("api_key")
        self._tok = (None, 0.0)

    # ---- credentials
    def admin_token(self):
        """An admin SDK JWT minted from the cluster's admin API key, minted
        again a minute before it expires; None when auth is off."""
        if not self.api_key:
            return None
        tok, until = self._tok
        if tok and until > time.time() + 60:
            return tok
        s, b, _ = request(self.port, "POST", "/v1/auth/token", {"api_key": self.api_key}, tls=self.tls)
        if s != 200:
            raise RuntimeError("minting an admin token failed: %s %s" % (s, b))
        self._tok = (b["access_token"], time.time() + b.get("expires_in", 300))
        return b["access_token"]

    def auth_headers(self):
        t = self.admin_token()
        return {"Authorization": "Bearer " + t} if t else {}

    def auth_header_bytes(self):
        """The Authorization header line for hand-written requests."""
        t = self.admin_token()
        return ("Authorization: Bearer %s\r\n" % t).encode() if t else b""

    # ---- connections
    def client(self, port=None, token=_DEFAULT, timeout=60):
        """A Client for this cluster's coordinator (or another on port that
        serves the same TLS set-up); by default it sends an admin token."""
        tok = self.admin_token if token is _DEFAULT else token
        return Client(port or self.port, tls=self.tls, token=tok, timeout=timeout)

    def request(self, method, path, body=None, headers=None, raw=False, token=_DEFAULT, port=None):
        tok = self.admin_token if token is _DEFAULT else token
        return request(port or self.port, method, path, body, headers, raw, tok, tls=self.tls)

    def connect(self, port=None, timeout=None):
        """A raw socket to the coordinator, TLS-wrapped on a --tls cluster."""
        s = socket.create_connection(("127.0.0.1", port or self.port), timeout=timeout)
        if self.tls is not None:
            s = self.tls.wrap_socket(s, server_hostname="127.0.0.1")
        return s

    def env(self):
        """Environment for a CLI or SDK subprocess: URL, admin key, CA."""
        e = dict(os.environ, VECTRON_URL=self.url)
        if self.api_key:
            e["VECTRON_API_KEY"] = self.api_key
        e.pop("VECTRON_TOKEN", None)
        if self.ca:
            for k in ("VECTRON_CA_FILE", "VECTRON_CA", "NODE_EXTRA_CA_CERTS"):
                e[k] = self.ca
        return e

    # ---- the coordinator's log
    def log_path(self, name="coordinator.log"):
        return os.path.join(self.dir, name)

    def log_offset(self, name="coordinator.log"):
        try:
            return os.path.getsize(self.log_path(name))
        except OSError:
            return 0

    def log_since(self, offset, name="coordinator.log"):
        """The coordinator log written after offset (a shared cluster's log
        also holds what earlier suites did)."""
        with open(self.log_path(name), "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def close(self):
        """Take a private cluster down; a shared one is the harness's."""
        if self.owned:
            _rest_cluster().down(self.dir)


def _rest_cluster():
    root = os.environ.get("VX_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    lib = os.path.join(root, "scripts", "lib")
    if lib not in sys.path:
        sys.path.insert(0, lib)
    import rest_cluster
    return rest_cluster


def shared_dir():
    """The directory of the cluster the check harness shares, or None."""
    d = os.environ.get("VX_REST_CLUSTER")
    return d if d and os.path.exists(os.path.join(d, "cluster.json")) else None


def open_cluster(private_dir):
    """The shared cluster when the harness runs one; otherwise a private
    cluster brought up in private_dir with the same settings (taken down by
    close()).  Returns (Cluster, cluster-up output), or (None, error text)."""
    d = shared_dir()
    if d:
        out = ""
        p = os.path.join(os.path.dirname(d), os.path.basename(d) + ".up.out")
        if os.path.exists(p):
            with open(p) as f:
                out = f.read()
        return Cluster(d), out
    ok, out = _rest_cluster().up(private_dir)
    if not ok:
        return None, out
    return Cluster(private_dir, owned=True), out
