// compat.test.js: the pgvector client library for Node.js (npm "pgvector",
// with node-postgres) used unchanged against the vectron extension.
// Connection settings come from the usual PG* environment variables.
const test = require('node:test');
const assert = require('node:assert');
const pg = require('pg');
const pgvector = require('pgvector/pg');

test('pgvector-node reads and writes vectron vectors', async () => {
  const client = new pg.Client();
  await client.connect();
  try {
    await client.query('CREATE EXTENSION IF NOT EXISTS vectron');
    await pgvector.registerTypes(client);
    await client.query('DROP TABLE IF EXISTS node_items');
    await client.query('CREATE TABLE node_items (id int PRIMARY KEY, embedding vector(3))');

    const rows = [[1, [1, 1, 1]], [2, [2, 2, 2]], [3, [1, 1, 2]], [4, [0.1, -2.5e-7, 3e20]]];
    for (const [id, v] of rows) {
      await client.query('INSERT INTO node_items VALUES ($1, $2)', [id, pgvector.toSql(v)]);
    }

    const all = await client.query('SELECT id, embedding FROM node_items ORDER BY id');
    assert.deepStrictEqual(all.rows[0].embedding, [1, 1, 1]);
    assert.strictEqual(all.rows[3].embedding.length, 3);
    assert.ok(Math.abs(all.rows[3].embedding[1] - -2.5e-7) < 1e-12);
    assert.ok(Math.abs(all.rows[3].embedding[2] / 3e20 - 1) < 1e-6);

    const nn = await client.query(
      'SELECT id FROM node_items ORDER BY embedding <-> $1 LIMIT 3', [pgvector.toSql([1, 1, 1])]);
    assert.deepStrictEqual(nn.rows.map((r) => r.id), [1, 3, 2]);

    const dist = await client.query(
      'SELECT embedding <=> $1 AS cos, embedding <#> $1 AS nip FROM node_items WHERE id = 2',
      [pgvector.toSql([1, 1, 1])]);
    assert.ok(Math.abs(dist.rows[0].cos) < 1e-7);
    assert.strictEqual(dist.rows[0].nip, -6);

    await assert.rejects(
      client.query('INSERT INTO node_items VALUES (9, $1)', [pgvector.toSql([1, 2])]),
      (err) => err.code === '22000' && /expected 3 dimensions, not 2/.test(err.message));
    await client.query('DROP TABLE node_items');
  } finally {
    await client.end();
  }
});
