// Vectron console: a single-page view of a cluster over the coordinator's
// REST API (docs/openapi.yaml).  Served by the coordinator at /console/
// with a strict CSP; it uses only same-origin requests.
//
// Auth: when the coordinator runs with auth = on, the user logs in with
// email and password; the login JWT stays in memory and the refresh token
// in sessionStorage (gone when the tab closes), and the JWT is renewed with
// it before it expires.  With auth = off (/v1/me answers AUTH_DISABLED) the
// console works without a login and hides keys and users.
// Every value from the server is put in the page with textContent, never
// as HTML.

const state = { token: null, expiry: 0, authOn: true, role: null, tab: 'overview', timer: null, detail: null };

function $(sel) { return document.querySelector(sel); }

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : String(c)));
  return e;
}

function flash(msg, info = false) {
  const f = $('#flash');
  f.textContent = msg;
  f.className = info ? 'info' : '';
  f.hidden = !msg;
  if (msg) setTimeout(() => { if (f.textContent === msg) f.hidden = true; }, 6000);
}

class ApiError extends Error {
  constructor(status, code, message) { super(`${code}: ${message}`); this.status = status; this.code = code; }
}

async function refresh() {
  const rt = sessionStorage.getItem('vectron.refresh');
  if (!rt) return false;
  const r = await fetch('/v1/auth/refresh', { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: rt }) });
  if (!r.ok) { sessionStorage.removeItem('vectron.refresh'); return false; }
  takeTokens(await r.json());
  return true;
}

function takeTokens(b) {
  state.token = b.access_token;
  state.expiry = Date.now() + (b.expires_in || 60) * 1000;
  if (b.refresh_token) sessionStorage.setItem('vectron.refresh', b.refresh_token);
}

// One API call; renews the login JWT first when it is about to expire.
async function api(method, path, body) {
  if (state.authOn && state.token && state.expiry < Date.now() + 30000) await refresh();
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!r.ok) {
    const e = (data && data.error) || { code: `HTTP_${r.status}`, message: text.slice(0, 200) };
    if (r.status === 401 && state.authOn) showLogin();
    throw new ApiError(r.status, e.code, e.message);
  }
  return data;
}

function fmt(v) {
  if (v == null) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en') : v.toFixed(3);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// A table of objects: columns are the given keys, or every key seen.
function table(rows, cols, { onRow, actions } = {}) {
  if (!rows || rows.length === 0) return el('p', { class: 'muted' }, 'none');
  cols = cols || [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const head = el('tr', {}, ...cols.map((c) => el('th', {}, c)), ...(actions ? [el('th')] : []));
  const body = rows.map((r) => {
    const tr = el('tr', onRow ? { class: 'clickable', onclick: () => onRow(r) } : {},
      ...cols.map((c) => {
        const v = r[c];
        const td = el('td', {}, typeof v === 'object' && v !== null ? el('code', {}, fmt(v)) : fmt(v));
        if (c === 'state' || c === 'health' || c === 'status') td.className = `state-${v}`;
        return td;
      }));
    if (actions) tr.append(el('td', {}, ...actions(r)));
    return tr;
  });
  return el('table', {}, el('thead', {}, head), el('tbody', {}, ...body));
}

function put(sel, node) { const t = $(sel); t.replaceChildren(node); }

function guard(fn) {
  return async (...args) => {
    try { await fn(...args); } catch (e) { flash(e.message); }
  };
}

// ------------------------------------------------------------------ views

const views = {
  async overview() {
    try {
      const r = await api('GET', '/readyz');
      put('#ready', el('p', { class: 'ok' }, r.ready === false ? 'not ready' : 'ready: every shard has an active placement'));
    } catch (e) {
      put('#ready', el('p', { class: 'bad' }, `not ready: ${e.message}`));
    }
    const s = await api('GET', '/v1/admin/stats');
    const cards = Object.entries(s.totals || {}).map(([k, v]) => el('div', { class: 'card' }, el('b', {}, fmt(v)), k));
    $('#totals').replaceChildren(...cards);
    put('#coordinators', table(s.coordinators));
  },

  async collections() {
    const r = await api('GET', '/v1/admin/collections');
    const rows = r.collections.map((c) => ({ name: c.name, dimension: c.dimension, metric: c.metric,
      shards: Array.isArray(c.shards) ? c.shards.length : c.shards, replication_factor: c.replication_factor,
      count: c.count ?? c.points, bytes: c.bytes ?? c.index_bytes, _raw: c }));
    put('#collection-list', table(rows, ['name', 'dimension', 'metric', 'shards', 'replication_factor', 'count', 'bytes'], {
      onRow: (row) => { state.detail = row._raw; showDetail(); },
      actions: (row) => [el('button', { class: 'danger', onclick: guard(async (ev) => {
        ev.stopPropagation();
        if (!confirm(`Delete collection ${row.name} and all its points?`)) return;
        await api('DELETE', `/v1/collections/${encodeURIComponent(row.name)}`);
        flash(`deleted ${row.name}`, true);
        await views.collections();
      }) }, 'Delete')],
    }));
    if (r.node_errors && r.node_errors.length) flash(`some nodes did not answer: ${fmt(r.node_errors)}`);
    if (state.detail) state.detail = r.collections.find((c) => c.name === state.detail.name) || null;
    showDetail();
  },

  async search() {
    const r = await api('GET', '/v1/collections');
    const sel = $('#search-collection');
    const cur = sel.value;
    sel.replaceChildren(...r.collections.map((c) => el('option', { value: c.name }, `${c.name} (${c.dimension}-d ${c.metric})`)));
    if (cur) sel.value = cur;
  },

  async nodes() {
    const r = await api('GET', '/v1/admin/nodes');
    put('#node-list', table(r.nodes, null, {
      actions: (n) => [
        el('button', { onclick: guard(async () => {
          await api('POST', `/v1/admin/nodes/${encodeURIComponent(n.name)}/drain`);
          flash(`draining ${n.name}`, true); await views.nodes();
        }) }, 'Drain'),
        el('button', { class: 'danger', onclick: guard(async () => {
          if (!confirm(`Remove node ${n.name}?`)) return;
          await api('DELETE', `/v1/admin/nodes/${encodeURIComponent(n.name)}`);
          flash(`removed ${n.name}`, true); await views.nodes();
        }) }, 'Remove')],
    }));
  },

  async moves() {
    const r = await api('GET', '/v1/admin/moves');
    put('#move-list', table(r.moves || []));
  },

  async slow() {
    const r = await api('GET', '/v1/admin/slow');
    put('#slow-list', table(r.requests || r.slow || []));
  },

  async keys() {
    const r = await api('GET', '/v1/keys');
    put('#key-list', table(r.keys, ['id', 'name', 'role', 'collections', 'created_at', 'last_used_at', 'expires_at', 'revoked'], {
      actions: (k) => k.revoked ? [] : [el('button', { class: 'danger', onclick: guard(async () => {
        if (!confirm(`Revoke key ${k.name}? Its tokens stop working within seconds.`)) return;
        await api('DELETE', `/v1/keys/${encodeURIComponent(k.id)}`);
        await views.keys();
      }) }, 'Revoke')],
    }));
  },

  async users() {
    const r = await api('GET', '/v1/admin/users');
    put('#user-list', table(r.users, null, {
      actions: (u) => [el('button', { class: 'danger', onclick: guard(async () => {
        if (!confirm(`Delete user ${u.email}, their keys and sessions?`)) return;
        await api('DELETE', `/v1/admin/users/${encodeURIComponent(u.id ?? u.user_id)}`);
        await views.users();
      }) }, 'Delete')],
    }));
  },
};

function showDetail() {
  const c = state.detail;
  $('#detail-name').textContent = c ? c.name : '…';
  if (!c) { put('#collection-detail', el('p', {}, 'click a collection')); return; }
  const shards = Array.isArray(c.shards) ? c.shards : (c.shard_placements || []);
  put('#collection-detail', table(shards));
}

async function show(tab) {
  state.tab = tab;
  for (const s of document.querySelectorAll('main > section')) s.hidden = s.id !== tab;
  for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.tab === tab);
  clearInterval(state.timer);
  try { await views[tab](); } catch (e) { flash(e.message); }
  if (tab === 'overview' || tab === 'moves') state.timer = setInterval(guard(views[tab]), 5000);
}

function showLogin() {
  clearInterval(state.timer);
  state.token = null;
  for (const s of document.querySelectorAll('main > section')) s.hidden = s.id !== 'login';
  $('#tabs').hidden = true;
  $('#logout').hidden = true;
}

async function start() {
  // Who am I?  AUTH_DISABLED means the coordinator runs with auth = off.
  try {
    const me = await api('GET', '/v1/me');
    state.role = me.role;
    $('#who').textContent = `${me.email} (${me.role})`;
  } catch (e) {
    if (e.code === 'AUTH_DISABLED') {
      state.authOn = false;
      $('#who').textContent = 'auth off';
      for (const t of ['keys', 'users']) document.querySelector(`[data-tab=${t}]`).hidden = true;
    } else if (e.status === 401 && (await refresh())) {
      return start();
    } else {
      showLogin();
      return;
    }
  }
  if (state.authOn && state.role !== 'admin') {
    for (const t of ['overview', 'nodes', 'moves', 'slow', 'users']) document.querySelector(`[data-tab=${t}]`).hidden = true;
    state.tab = 'collections';
  }
  $('#tabs').hidden = false;
  $('#logout').hidden = !state.authOn;
  await show(state.tab === 'login' ? 'overview' : state.tab);
}

// ------------------------------------------------------------------ forms

function formData(form) { return Object.fromEntries(new FormData(form).entries()); }

$('#login-form').addEventListener('submit', guard(async (ev) => {
  ev.preventDefault();
  const f = formData(ev.target);
  const b = await api('POST', '/v1/auth/login', { email: f.email, password: f.password });
  takeTokens(b);
  ev.target.reset();
  await start();
}));

$('#logout').addEventListener('click', guard(async () => {
  const rt = sessionStorage.getItem('vectron.refresh');
  sessionStorage.removeItem('vectron.refresh');
  if (rt) await api('POST', '/v1/auth/logout', { refresh_token: rt }).catch(() => {});
  showLogin();
}));

$('#create-form').addEventListener('submit', guard(async (ev) => {
  ev.preventDefault();
  const f = formData(ev.target);
  await api('POST', '/v1/collections', { name: f.name, dimension: Number(f.dimension), metric: f.metric,
    shards: Number(f.shards), replication_factor: Number(f.replication_factor) });
  flash(`created ${f.name}`, true);
  await views.collections();
}));

$('#search-form').addEventListener('submit', guard(async (ev) => {
  ev.preventDefault();
  const f = formData(ev.target);
  const name = encodeURIComponent(f.collection);
  const q = f.query.trim();
  let vector;
  if (q.startsWith('[')) {
    vector = JSON.parse(q);
  } else {
    const got = await api('POST', `/v1/collections/${name}/points/get`, { ids: [q], with_vector: true, with_payload: false });
    if (!got.points.length) throw new Error(`no point with id ${q}`);
    vector = got.points[0].vector;
  }
  const body = { vector, k: Number(f.k) || 10, with_payload: true };
  if (f.ef_search) body.ef_search = Number(f.ef_search);
  if (f.filter.trim()) body.filter = JSON.parse(f.filter);
  const t0 = performance.now();
  const r = await api('POST', `/v1/collections/${name}/search`, body);
  $('#search-time').textContent = `${r.results.length} results in ${(performance.now() - t0).toFixed(1)} ms` +
    (r.partial ? ` (partial: shards ${fmt(r.missing_shards)} missing)` : '');
  put('#search-results', table(r.results, ['id', 'distance', 'payload']));
}));

$('#node-form').addEventListener('submit', guard(async (ev) => {
  ev.preventDefault();
  const f = formData(ev.target);
  await api('POST', '/v1/admin/nodes', { name: f.name, host: f.host, port: Number(f.port), dbname: f.dbname });
  flash(`added ${f.name}`, true);
  await views.nodes();
}));

$('#rebalance-plan').addEventListener('click', guard(async () => {
  const r = await api('POST', '/v1/admin/rebalance', { dry_run: true });
  $('#rebalance-out').textContent = JSON.stringify(r, null, 2);
}));

$('#key-form').addEventListener('submit', guard(async (ev) => {
  ev.preventDefault();
  const f = formData(ev.target);
  const collections = f.collections.split(',').map((s) => s.trim()).filter(Boolean);
  const k = await api('POST', '/v1/keys', { name: f.name, role: f.role, collections });
  const p = $('#new-secret');
  p.querySelector('code').textContent = k.key;
  p.hidden = false;
  await views.keys();
}));

$('#user-form').addEventListener('submit', guard(async (ev) => {
  ev.preventDefault();
  const f = formData(ev.target);
  await api('POST', '/v1/admin/users', { email: f.email, password: f.password, role: f.role });
  ev.target.reset();
  await views.users();
}));

for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => show(b.dataset.tab));

start();
