// Vectron's JavaScript SDK: a client for the coordinator's REST API.
//
// Design: plain ES module with no dependencies; it uses the global fetch of
// Node.js 18+ (undici, with keep-alive) and of browsers.  index.d.ts gives
// the TypeScript types.  Authentication is nothing (auth = off), a fixed
// bearer token, an API key exchanged for a short-lived SDK JWT at
// /v1/auth/token (re-minted 30 s before expiry and once more on a 401), or
// a password login renewed with its refresh token.  Only requests that are
// safe to repeat (GET, search, point get, upsert by id) are retried, and
// only on network errors, 429 (after Retry-After) and 503.
// For https with a private CA in Node.js: the caFile option or $VECTRON_CA_FILE
// (requests then go through node:https with that CA), or NODE_EXTRA_CA_CERTS.

const env = (typeof process !== 'undefined' && process.env) ? process.env : {};

export class VectronError extends Error {
  constructor(status, code, message, requestId = null, retryAfter = null) {
    super(`${code} (HTTP ${status}): ${message}`);
    this.name = 'VectronError';
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }
}

function toList(vector) {
  if (vector == null || typeof vector[Symbol.iterator] !== 'function') {
    throw new TypeError('a vector must be an array or typed array of numbers');
  }
  return Array.from(vector, Number);
}

function toPoint(p) {
  if (Array.isArray(p)) {
    if (p.length < 2 || p.length > 3) throw new TypeError('a point tuple is [id, vector, payload?]');
    const out = { id: p[0], vector: toList(p[1]) };
    if (p[2] != null) out.payload = p[2];
    return out;
  }
  if (p == null || p.id == null || p.vector == null) throw new TypeError("a point needs an 'id' and a 'vector'");
  const out = { id: p.id, vector: toList(p.vector) };
  if (p.payload != null) out.payload = p.payload;
  return out;
}

const enc = encodeURIComponent;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Client {
  constructor({ url, apiKey, token, timeoutMs = 30000, retries = 2, caFile } = {}) {
    this.url = (url || env.VECTRON_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
    if (!/^https?:\/\/[^/]+/.test(this.url)) throw new TypeError(`url must be http(s)://host[:port], got ${this.url}`);
    this.timeoutMs = timeoutMs;
    this.retries = Math.max(0, retries | 0);
    this._apiKey = apiKey ?? env.VECTRON_API_KEY ?? null;
    this._token = token ?? env.VECTRON_TOKEN ?? null;
    this._fixedToken = this._token != null;
    this._expiry = 0;
    this._refresh = null;
    this._minting = null;
    this._caFile = this.url.startsWith('https:') ? (caFile ?? env.VECTRON_CA_FILE ?? null) : null;
    this._agent = null;
  }

  // fetch's subset we use, over node:https with the CA in caFile (global
  // fetch cannot take a CA without undici's Agent, which Node does not export).
  async _fetchWithCa(url, { method, headers, body, signal }) {
    const https = await import('node:https');
    if (!this._agent) {
      const { readFileSync } = await import('node:fs');
      this._agent = new https.Agent({ keepAlive: true, ca: readFileSync(this._caFile) });
    }
    return new Promise((resolve, reject) => {
      const rq = https.request(url, { method, headers, agent: this._agent, signal }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode, headers: { get: (n) => res.headers[n.toLowerCase()] ?? null },
            text: async () => text });
        });
      });
      rq.on('error', reject);
      rq.end(body);
    });
  }

  async _send(method, path, body, auth, contentType) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = contentType || 'application/json';
    if (auth) {
      const t = await this._bearer();
      if (t) headers.authorization = `Bearer ${t}`;
    }
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), this.timeoutMs);
    let resp, text;
    try {
      resp = await (this._caFile ? this._fetchWithCa.bind(this) : fetch)(this.url + path, {
        method, headers, signal: ctrl.signal,
        body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
      });
      text = await resp.text();
    } catch (e) {
      const err = new VectronError(0, 'CONNECTION_FAILED', `${method} ${path}: ${e.message}`);
      err.cause = e;
      throw err;
    } finally {
      clearTimeout(timer);
    }
    let parsed = null;
    if (text) {
      try { parsed = JSON.parse(text); } catch { parsed = { error: { code: 'bad_response', message: text.slice(0, 200) } }; }
    }
    return { status: resp.status, headers: resp.headers, body: parsed };
  }

  /** Send one request; resolves to the decoded body or rejects with VectronError. */
  async request(method, path, body, { retry = method === 'GET', auth = true, contentType } = {}) {
    const attempts = 1 + (retry ? this.retries : 0);
    let reminted = false;
    for (let attempt = 0; ; attempt++) {
      let r;
      try {
        r = await this._send(method, path, body, auth, contentType);
      } catch (e) {
        if (attempt + 1 < attempts) { await sleep(50 * (attempt + 1)); continue; }
        throw e;
      }
      if (r.status >= 200 && r.status < 300) return r.body;
      if (r.status === 401 && auth && !reminted && (this._apiKey || this._refresh)) {
        reminted = true;
        this._expiry = 0;
        r = await this._send(method, path, body, auth, contentType);
        if (r.status >= 200 && r.status < 300) return r.body;
      }
      const ra = r.headers.get('retry-after');
      if ((r.status === 429 || r.status === 503) && attempt + 1 < attempts) {
        await sleep(ra ? Math.min(Number(ra) * 1000, 10000) : 200 * (attempt + 1));
        continue;
      }
      const e = (r.body && r.body.error) || { code: `HTTP_${r.status}`, message: 'unexpected response' };
      throw new VectronError(r.status, e.code, e.message, r.headers.get('x-request-id'), ra ? Number(ra) : null);
    }
  }

  async _bearer() {
    if (this._fixedToken) return this._token;
    if (this._token && this._expiry > Date.now() + 30000) return this._token;
    if (!this._apiKey && !this._refresh) return this._token;
    // one mint at a time; concurrent requests wait for it
    if (!this._minting) {
      this._minting = (async () => {
        if (this._apiKey) {
          const b = await this.request('POST', '/v1/auth/token', { api_key: this._apiKey }, { auth: false });
          this._token = b.access_token;
          this._expiry = Date.now() + (b.expires_in || 60) * 1000;
        } else {
          const b = await this.request('POST', '/v1/auth/refresh', { refresh_token: this._refresh }, { auth: false });
          this._takeLogin(b);
        }
      })().finally(() => { this._minting = null; });
    }
    await this._minting;
    return this._token;
  }

  _takeLogin(b) {
    this._token = b.access_token;
    this._refresh = b.refresh_token || null;
    this._expiry = Date.now() + (b.expires_in || 60) * 1000;
    this._fixedToken = false;
  }

  async login(email, password) {
    const b = await this.request('POST', '/v1/auth/login', { email, password }, { auth: false });
    this._apiKey = null;
    this._takeLogin(b);
    return b;
  }

  async logout() {
    if (!this._refresh) return null;
    const b = await this.request('POST', '/v1/auth/logout', { refresh_token: this._refresh }, { auth: false });
    this._token = null; this._refresh = null; this._expiry = 0;
    return b;
  }

  me() { return this.request('GET', '/v1/me'); }

  createKey({ name, role = 'write', collections = ['*'], expiresAt } = {}) {
    const body = { name, role, collections };
    if (expiresAt) body.expires_at = expiresAt;
    return this.request('POST', '/v1/keys', body);
  }

  async listKeys({ allUsers = false } = {}) {
    return (await this.request('GET', '/v1/keys' + (allUsers ? '?all=1' : ''))).keys;
  }

  revokeKey(id) { return this.request('DELETE', `/v1/keys/${enc(id)}`); }

  rotateKey(id, graceSeconds = 0) {
    return this.request('POST', `/v1/keys/${enc(id)}/rotate`, { grace_seconds: graceSeconds });
  }

  async createCollection({ name, dimension, metric = 'l2', shards = 1, replicationFactor = 1, m, efConstruction, metadata }) {
    const body = { name, dimension, metric, shards, replication_factor: replicationFactor };
    const index = {};
    if (m != null) index.m = m;
    if (efConstruction != null) index.ef_construction = efConstruction;
    if (Object.keys(index).length) body.index = index;
    if (metadata != null) body.metadata = metadata;
    await this.request('POST', '/v1/collections', body);
    return new Collection(this, name);
  }

  async listCollections() { return (await this.request('GET', '/v1/collections')).collections; }
  getCollection(name) { return this.request('GET', `/v1/collections/${enc(name)}`); }
  deleteCollection(name) { return this.request('DELETE', `/v1/collections/${enc(name)}`); }
  collection(name) { return new Collection(this, name); }

  health() { return this.request('GET', '/healthz', undefined, { auth: false }); }
  ready() { return this.request('GET', '/readyz', undefined, { auth: false }); }
  nodes() { return this.request('GET', '/v1/admin/nodes'); }
  stats() { return this.request('GET', '/v1/admin/stats'); }
}

function searchBody({ vector, k = 10, filter, efSearch, withPayload, withVector, allowPartial, ...rest }) {
  const unknown = Object.keys(rest);
  if (unknown.length) throw new TypeError(`unknown search arguments: ${unknown.join(', ')}`);
  const b = { vector: toList(vector), k };
  if (filter != null) b.filter = filter;
  if (efSearch != null) b.ef_search = efSearch;
  if (withPayload) b.with_payload = true;
  if (withVector) b.with_vector = true;
  if (allowPartial) b.allow_partial = true;
  return b;
}

export class Collection {
  constructor(client, name) {
    this.client = client;
    this.name = name;
    this._base = `/v1/collections/${enc(name)}`;
  }

  info() { return this.client.getCollection(this.name); }
  async count() { return (await this.info()).count; }

  /** Upsert points ({id, vector, payload?} or [id, vector, payload?]) in batches. */
  async upsert(points, { batchSize = 500 } = {}) {
    let total = 0;
    let batch = [];
    for (const p of points) {
      batch.push(toPoint(p));
      if (batch.length >= batchSize) {
        total += (await this.client.request('PUT', `${this._base}/points`, { points: batch }, { retry: true })).upserted;
        batch = [];
      }
    }
    if (batch.length) total += (await this.client.request('PUT', `${this._base}/points`, { points: batch }, { retry: true })).upserted;
    return total;
  }

  /** Bulk import as NDJSON; resolves to {imported, errors}. */
  importPoints(points) {
    let body = '';
    for (const p of points) body += JSON.stringify(toPoint(p)) + '\n';
    return this.client.request('POST', `${this._base}/points/import`, body, { contentType: 'application/x-ndjson' });
  }

  async get(ids, { withVector = false, withPayload = true } = {}) {
    const b = await this.client.request('POST', `${this._base}/points/get`,
      { ids: ids.map(String), with_vector: withVector, with_payload: withPayload }, { retry: true });
    return b.points;
  }

  async delete({ ids, filter } = {}) {
    if ((ids == null) === (filter == null)) throw new TypeError('give exactly one of ids or filter');
    const b = await this.client.request('POST', `${this._base}/points/delete`, ids != null ? { ids } : { filter });
    return b.deleted;
  }

  /** The k nearest points; with fullResponse, the whole body (partial, missing_shards). */
  async search(vector, { fullResponse = false, ...opts } = {}) {
    const b = await this.client.request('POST', `${this._base}/search`, searchBody({ vector, ...opts }), { retry: true });
    return fullResponse ? b : b.results;
  }

  async searchBatch(searches) {
    const b = await this.client.request('POST', `${this._base}/search/batch`,
      { searches: searches.map(searchBody) }, { retry: true });
    return b.results;
  }
}
