"""The Vectron REST client.

Design: one `Client` per coordinator URL.  Each thread gets its own
keep-alive HTTP(S) connection (http.client is not thread-safe), opened on
first use and reopened after a connection error.  Authentication is one of:
nothing (auth = off), a fixed bearer token, an API key exchanged for a
short-lived SDK JWT at /v1/auth/token (re-minted 30 s before it expires and
once more on a 401), or a login with email and password (the login JWT is
renewed with the refresh token).

Retries are limited to requests that are safe to repeat: every GET, search,
point get and upsert (an upsert by id is idempotent on the server), and only
for connection failures, 429 (after Retry-After) and 503.  Collection
creation, deletes and imports are never retried automatically.

Only the Python standard library is used, so the SDK installs anywhere
Debian's python3 runs.
"""
import http.client
import json
import os
import ssl
import threading
import time
import urllib.parse

from .errors import VectronError, ConnectionFailed, error_from_response

_RETRYABLE_STATUS = (429, 503)


def _as_list(vector):
    """A vector as a JSON-ready list of floats: lists, tuples, array.array
    and anything with tolist() (numpy) are accepted."""
    if hasattr(vector, "tolist"):
        vector = vector.tolist()
    if not isinstance(vector, (list, tuple)):
        try:
            vector = list(vector)
        except TypeError:
            raise TypeError("a vector must be a sequence of numbers, got %s" % type(vector).__name__)
    return [float(x) for x in vector]


def _point(p):
    """A point as the REST API wants it, from a dict or an (id, vector[,
    payload]) tuple."""
    if isinstance(p, dict):
        if "id" not in p or "vector" not in p:
            raise ValueError("a point needs an 'id' and a 'vector'")
        out = {"id": p["id"], "vector": _as_list(p["vector"])}
        if p.get("payload") is not None:
            out["payload"] = p["payload"]
        return out
    if isinstance(p, (tuple, list)) and len(p) in (2, 3):
        out = {"id": p[0], "vector": _as_list(p[1])}
        if len(p) == 3 and p[2] is not None:
            out["payload"] = p[2]
        return out
    raise TypeError("a point is a dict with id/vector[/payload] or an (id, vector[, payload]) tuple")


class Client:
    """A connection to a Vectron coordinator.

    url defaults to $VECTRON_URL; api_key to $VECTRON_API_KEY; token to
    $VECTRON_TOKEN; ca_file (for https with a private CA) to $VECTRON_CA_FILE
    (or $VECTRON_CA).
    """

    def __init__(self, url=None, api_key=None, token=None, timeout=30.0,
                 ca_file=None, retries=2, user_agent="vectron-python/1.0"):
        url = url or os.environ.get("VECTRON_URL") or "http://127.0.0.1:8080"
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError("url must be http://host[:port] or https://host[:port], got %r" % url)
        self.url = url.rstrip("/")
        self._scheme = u.scheme
        self._host = u.hostname
        self._port = u.port or (443 if u.scheme == "https" else 80)
        self._prefix = u.path.rstrip("/")
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self._user_agent = user_agent
        self._api_key = api_key if api_key is not None else os.environ.get("VECTRON_API_KEY")
        self._token = token if token is not None else os.environ.get("VECTRON_TOKEN")
        self._token_expiry = None if self._token else 0.0
        self._refresh_token = None
        self._auth_lock = threading.Lock()
        self._local = threading.local()
        self._ssl = None
        if self._scheme == "https":
            ca_file = ca_file or os.environ.get("VECTRON_CA_FILE") or os.environ.get("VECTRON_CA")
            self._ssl = ssl.create_default_context(cafile=ca_file)

    # ------------------------------------------------------------ transport

    def _conn(self):
        c = getattr(self._local, "conn", None)
        if c is None:
            if self._scheme == "https":
                c = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout,
                                                context=self._ssl)
            else:
                c = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
            self._local.conn = c
        return c

    def _drop_conn(self):
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
        self._local.conn = None

    def close(self):
        """Close this thread's connection (others close when collected)."""
        self._drop_conn()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _send(self, method, path, body, headers, auth):
        """One HTTP exchange; returns (status, headers, parsed JSON or None)."""
        h = {"User-Agent": self._user_agent, "Accept": "application/json"}
        if body is not None and not callable(body) and "Content-Type" not in (headers or {}):
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        if auth:
            tok = self._bearer()
            if tok:
                h["Authorization"] = "Bearer " + tok
        conn = self._conn()
        try:
            if callable(body):      # a streamed body: a generator of bytes
                h["Transfer-Encoding"] = "chunked"
                conn.request(method, self._prefix + path, body=body(), headers=h, encode_chunked=True)
            else:
                data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
                conn.request(method, self._prefix + path, body=data, headers=h)
            r = conn.getresponse()
            raw = r.read()
        except (OSError, http.client.HTTPException) as e:
            self._drop_conn()
            raise ConnectionFailed("%s %s: %s" % (method, path, e)) from e
        if (r.getheader("Connection") or "").lower() == "close":
            self._drop_conn()
        parsed = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = {"error": {"code": "bad_response", "message": raw[:200].decode(errors="replace")}}
        return r.status, r, parsed

    def request(self, method, path, body=None, headers=None, retry=None, auth=True, expect=(200, 201)):
        """Send one request and return the decoded JSON body; raises a
        VectronError subclass for any status outside `expect`.  `retry`
        defaults to True for GET only."""
        if retry is None:
            retry = method == "GET"
        attempts = 1 + (self.retries if retry else 0)
        reminted = False
        for attempt in range(attempts):
            try:
                status, resp, parsed = self._send(method, path, body, headers, auth)
            except ConnectionFailed:
                if attempt + 1 < attempts:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise
            if status in expect:
                return parsed
            if status == 401 and auth and not reminted and self._can_reauth():
                reminted = True
                self._token_expiry = 0.0
                status, resp, parsed = self._send(method, path, body, headers, auth)
                if status in expect:
                    return parsed
            if status in _RETRYABLE_STATUS and attempt + 1 < attempts:
                wait = resp.getheader("Retry-After")
                try:
                    wait = min(float(wait), 10.0) if wait else 0.2 * (attempt + 1)
                except ValueError:
                    wait = 0.2 * (attempt + 1)
                time.sleep(wait)
                continue
            raise error_from_response(status, parsed, resp.getheader("X-Request-Id"),
                                      resp.getheader("Retry-After"))
        raise VectronError(0, "retries_exhausted", "%s %s failed" % (method, path))

    # ------------------------------------------------------------ auth

    def _can_reauth(self):
        return bool(self._api_key or self._refresh_token)

    def _bearer(self):
        """The bearer token to send, minting or refreshing it when it is
        about to expire."""
        if self._token_expiry is None:          # a fixed token given by the caller
            return self._token
        if self._token and self._token_expiry > time.time() + 30:
            return self._token
        with self._auth_lock:
            if self._token and self._token_expiry > time.time() + 30:
                return self._token
            if self._api_key:
                body = self.request("POST", "/v1/auth/token", {"api_key": self._api_key}, auth=False)
                self._token = body["access_token"]
                self._token_expiry = time.time() + float(body.get("expires_in", 60))
            elif self._refresh_token:
                body = self.request("POST", "/v1/auth/refresh", {"refresh_token": self._refresh_token},
                                    auth=False)
                self._take_login(body)
        return self._token

    def _take_login(self, body):
        self._token = body["access_token"]
        self._refresh_token = body.get("refresh_token")
        self._token_expiry = time.time() + float(body.get("expires_in", 60))

    def login(self, email, password):
        """Log in with a password: later requests use the login JWT, renewed
        with the refresh token.  Returns the token response."""
        body = self.request("POST", "/v1/auth/login", {"email": email, "password": password}, auth=False)
        with self._auth_lock:
            self._api_key = None
            self._take_login(body)
        return body

    def logout(self):
        """Revoke this login's refresh token family."""
        if not self._refresh_token:
            return None
        body = self.request("POST", "/v1/auth/logout", {"refresh_token": self._refresh_token}, auth=False)
        with self._auth_lock:
            self._token, self._refresh_token, self._token_expiry = None, None, 0.0
        return body

    def me(self):
        return self.request("GET", "/v1/me")

    def create_key(self, name, role="write", collections=("*",), expires_at=None):
        """Create an API key; the returned dict's "key" is the secret, shown once."""
        body = {"name": name, "role": role, "collections": list(collections)}
        if expires_at is not None:
            body["expires_at"] = expires_at
        return self.request("POST", "/v1/keys", body)

    def list_keys(self, all_users=False):
        return self.request("GET", "/v1/keys" + ("?all=1" if all_users else ""))["keys"]

    def revoke_key(self, key_id):
        return self.request("DELETE", "/v1/keys/%s" % urllib.parse.quote(str(key_id), safe=""))

    def rotate_key(self, key_id, grace_seconds=0):
        return self.request("POST", "/v1/keys/%s/rotate" % urllib.parse.quote(str(key_id), safe=""),
                            {"grace_seconds": int(grace_seconds)})

    # ------------------------------------------------------------ collections

    def create_collection(self, name, dimension, metric="l2", shards=1, replication_factor=1,
                          m=None, ef_construction=None, metadata=None):
        """Create a collection and return its handle."""
        body = {"name": name, "dimension": int(dimension), "metric": metric,
                "shards": int(shards), "replication_factor": int(replication_factor)}
        index = {}
        if m is not None:
            index["m"] = int(m)
        if ef_construction is not None:
            index["ef_construction"] = int(ef_construction)
        if index:
            body["index"] = index
        if metadata is not None:
            body["metadata"] = metadata
        self.request("POST", "/v1/collections", body)
        return Collection(self, name)

    def list_collections(self):
        return self.request("GET", "/v1/collections")["collections"]

    def get_collection(self, name):
        """The collection's definition, point count and shard placements."""
        return self.request("GET", "/v1/collections/" + _name(name))

    def delete_collection(self, name):
        return self.request("DELETE", "/v1/collections/" + _name(name))

    def collection(self, name):
        """A handle on an existing collection (no request is made)."""
        return Collection(self, name)

    # ------------------------------------------------------------ operations

    def health(self):
        return self.request("GET", "/healthz", auth=False)

    def ready(self):
        """The /readyz body; a cluster that is not ready raises Unavailable."""
        return self.request("GET", "/readyz", auth=False)

    def nodes(self):
        return self.request("GET", "/v1/admin/nodes")

    def add_node(self, name, host, port, dbname="postgres"):
        return self.request("POST", "/v1/admin/nodes",
                            {"name": name, "host": host, "port": int(port), "dbname": dbname})

    def drain_node(self, name):
        return self.request("POST", "/v1/admin/nodes/%s/drain" % _name(name))

    def remove_node(self, name):
        return self.request("DELETE", "/v1/admin/nodes/" + _name(name))

    def stats(self):
        return self.request("GET", "/v1/admin/stats")


def _name(name):
    return urllib.parse.quote(str(name), safe="")


class Collection:
    """Points and searches of one collection."""

    def __init__(self, client, name):
        self.client = client
        self.name = name
        self._base = "/v1/collections/" + _name(name)

    def __repr__(self):
        return "Collection(%r)" % self.name

    def info(self):
        return self.client.get_collection(self.name)

    def count(self):
        return self.info().get("count")

    def upsert(self, points, batch_size=500):
        """Insert or replace points, sent in batches of batch_size; returns
        how many were upserted.  A point is a dict with id, vector and an
        optional payload, or an (id, vector[, payload]) tuple."""
        total = 0
        batch = []
        for p in points:
            batch.append(_point(p))
            if len(batch) >= batch_size:
                total += self._upsert(batch)
                batch = []
        if batch:
            total += self._upsert(batch)
        return total

    def _upsert(self, batch):
        return self.client.request("PUT", self._base + "/points", {"points": batch}, retry=True)["upserted"]

    def import_points(self, points, chunk_points=1000):
        """Stream points as NDJSON to the import endpoint (the server parses
        them as they arrive).  Returns {"imported": n, "errors": [...]}; bad
        lines are reported, not raised."""
        def body():
            buf = []
            for p in points:
                buf.append(json.dumps(_point(p), separators=(",", ":")))
                if len(buf) >= chunk_points:
                    yield ("\n".join(buf) + "\n").encode()
                    buf = []
            if buf:
                yield ("\n".join(buf) + "\n").encode()
        return self.client.request("POST", self._base + "/points/import", body,
                                   headers={"Content-Type": "application/x-ndjson"})

    def get(self, ids, with_vector=False, with_payload=True):
        """Points by id (missing ids are left out)."""
        body = {"ids": [str(i) if not isinstance(i, str) else i for i in ids],
                "with_vector": bool(with_vector), "with_payload": bool(with_payload)}
        r = self.client.request("POST", self._base + "/points/get", body, retry=True)
        return r.get("points", r)

    def delete(self, ids=None, filter=None):
        """Delete points by ids or by a payload filter; returns the count."""
        if (ids is None) == (filter is None):
            raise ValueError("give exactly one of ids or filter")
        body = {"ids": list(ids)} if ids is not None else {"filter": filter}
        return self.client.request("POST", self._base + "/points/delete", body)["deleted"]

    @staticmethod
    def _search_body(vector, k, filter, ef_search, with_payload, with_vector, allow_partial):
        body = {"vector": _as_list(vector), "k": int(k)}
        if filter is not None:
            body["filter"] = filter
        if ef_search is not None:
            body["ef_search"] = int(ef_search)
        if with_payload:
            body["with_payload"] = True
        if with_vector:
            body["with_vector"] = True
        if allow_partial:
            body["allow_partial"] = True
        return body

    def search(self, vector, k=10, filter=None, ef_search=None, with_payload=False,
               with_vector=False, allow_partial=False, full_response=False):
        """The k nearest points: a list of {"id","distance"[,"payload"]}.
        With full_response the whole body (with "partial" and
        "missing_shards") is returned instead."""
        body = self._search_body(vector, k, filter, ef_search, with_payload, with_vector, allow_partial)
        r = self.client.request("POST", self._base + "/search", body, retry=True)
        return r if full_response else r["results"]

    def search_batch(self, searches):
        """Several searches in one request; each item is a dict of search()
        keyword arguments (vector, k, filter, ...).  Returns one result list
        per search."""
        items = []
        for s in searches:
            s = dict(s)
            items.append(self._search_body(s.pop("vector"), s.pop("k", 10), s.pop("filter", None),
                                           s.pop("ef_search", None), s.pop("with_payload", False),
                                           s.pop("with_vector", False), s.pop("allow_partial", False)))
            if s:
                raise TypeError("unknown search arguments: %s" % ", ".join(sorted(s)))
        return self.client.request("POST", self._base + "/search/batch", {"searches": items},
                                   retry=True)["results"]
