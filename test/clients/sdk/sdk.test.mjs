// The JavaScript SDK (clients/js) against a live cluster; run by
// run_sdk_tests.py with VECTRON_URL and a write key scoped to "sdk_js" in
// VECTRON_API_KEY.  Results are checked against a brute-force top-k.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, VectronError } from '../../../clients/js/index.js';

const client = new Client();
const dim = 6;
let seed = 12345;
const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 * 2 - 1; };
const f32 = (x) => Math.fround(x);
const points = new Map();
const l2 = (a, b) => Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]) ** 2, 0));
const brute = (q, k, pred = () => true) => [...points.entries()]
  .filter(([, p]) => pred(p.payload))
  .map(([id, p]) => [l2(p.vector, q), id])
  .sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1))
  .slice(0, k).map((x) => x[1]);

test('create collection', async () => {
  const col = await client.createCollection({ name: 'sdk_js', dimension: dim, metric: 'l2', shards: 3, replicationFactor: 1 });
  const info = await col.info();
  assert.equal(info.dimension, dim);
  assert.equal(info.shards, 3);
});

test('upsert with tuples, objects and typed arrays', async () => {
  const col = client.collection('sdk_js');
  const batch = [];
  for (let i = 0; i < 250; i++) {
    const vector = Array.from({ length: dim }, () => f32(rand()));
    const payload = { color: i % 2 ? 'red' : 'blue', n: i };
    points.set(String(i), { vector, payload });
    batch.push(i % 2 ? [i, Float32Array.from(vector), payload] : { id: String(i), vector, payload });
  }
  assert.equal(await col.upsert(batch, { batchSize: 100 }), 250);
  assert.equal(await col.count(), 250);
});

test('search equals brute force', async () => {
  const col = client.collection('sdk_js');
  for (let t = 0; t < 10; t++) {
    const q = Array.from({ length: dim }, rand);
    const got = (await col.search(q, { k: 8, efSearch: 300 })).map((h) => h.id);
    assert.deepEqual(got, brute(q, 8));
  }
});

test('filtered search and payloads', async () => {
  const col = client.collection('sdk_js');
  const q = Array(dim).fill(0.2);
  const hits = await col.search(q, { k: 5, efSearch: 300, withPayload: true, filter: { must: [{ key: 'color', match: 'red' }] } });
  assert.deepEqual(hits.map((h) => h.id), brute(q, 5, (p) => p.color === 'red'));
  for (const h of hits) assert.equal(h.payload.color, 'red');
  const full = await col.search(q, { k: 2, fullResponse: true });
  assert.equal(full.partial, false);
});

test('batch search', async () => {
  const col = client.collection('sdk_js');
  const qs = [0, 1, 2].map(() => Array.from({ length: dim }, rand));
  const res = await col.searchBatch(qs.map((vector) => ({ vector, k: 3, efSearch: 300 })));
  assert.deepEqual(res.map((r) => r.map((h) => h.id)), qs.map((q) => brute(q, 3)));
});

test('get, import, delete', async () => {
  const col = client.collection('sdk_js');
  const got = await col.get([1, '2', 'missing'], { withVector: true });
  assert.deepEqual(got.map((p) => p.id).sort(), ['1', '2']);
  for (const p of got) assert.deepEqual(p.vector.map(f32), points.get(p.id).vector);
  const extra = [];
  for (let i = 250; i < 300; i++) {
    const vector = Array.from({ length: dim }, () => f32(rand()));
    points.set(String(i), { vector, payload: { color: 'green', n: i } });
    extra.push({ id: i, vector, payload: { color: 'green', n: i } });
  }
  const r = await col.importPoints(extra);
  assert.equal(r.imported, 50);
  assert.deepEqual(r.errors, []);
  assert.equal(await col.delete({ ids: ['0', '1'] }), 2);
  assert.equal(await col.delete({ filter: { must: [{ key: 'color', match: 'green' }] } }), 50);
  assert.equal(await col.count(), 248);
});

test('errors carry status and code', async () => {
  const col = client.collection('sdk_js');
  await assert.rejects(col.search([1, 2], { k: 1 }), (e) => e instanceof VectronError && e.status === 400 && e.code === 'INVALID_ARGUMENT');
  await assert.rejects(client.getCollection('sdk_missing'), (e) => e instanceof VectronError && e.status === 403 && e.code === 'FORBIDDEN');
  await assert.rejects(client.createCollection({ name: 'sdk_js', dimension: dim }), (e) => e.status === 409 && e.code === 'COLLECTION_EXISTS');
  assert.throws(() => new Client({ url: 'ftp://x' }), TypeError);
  const anon = new Client({ apiKey: null, token: null });
  anon._apiKey = null;
  await assert.rejects(anon.listCollections(), (e) => e.status === 401 && e.code === 'UNAUTHORIZED');
});

test('delete collection', async () => {
  await client.deleteCollection('sdk_js');
  await assert.rejects(client.getCollection('sdk_js'), (e) => e.status === 404);
});
