#!/usr/bin/env bash
# bench_quota_count.sh: the worker-side cost of the quota count (quota.c).
# One throwaway PostgreSQL with the extension, a shard-shaped table with an
# HNSW index, then pgbench runs the coordinator's upsert statement as it is
# with auth off ("plain") and with the count of new ids that auth on adds
# ("count"), interleaved at random in one run so both see the same load.
# Prints each script's average latency.  Not part of `make check`.
#   test/coordinator/bench_quota_count.sh          (MIXSECS=90 by default)
set -euo pipefail
export VX_ROOT=${VX_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd $VX_ROOT
source scripts/lib/pg.sh
W=$(mktemp -d); chmod 755 "$W"
vx_pg_tmp_install "$W/inst"
vx_pg_start perfw
trap 'vx_pg_stop perfw; rm -rf "$W"' EXIT
P="$VX_PGBIN/psql -X -q -h 127.0.0.1 -p $VX_PERFW_PORT -U postgres -d postgres"
vx_runas $P -c "CREATE EXTENSION vectron; CREATE SCHEMA vectron_shards;
 CREATE TABLE vectron_shards.t (id text PRIMARY KEY, v vector(128), payload jsonb, version bigint NOT NULL, deleted boolean NOT NULL DEFAULT false);
 CREATE INDEX ON vectron_shards.t USING hnsw (v vector_l2_ops) WITH (m = 16, ef_construction = 64);
 CREATE SEQUENCE ver;"
ROWS="SELECT (:base + g)::text AS id, ('[' || array_to_string(array(SELECT random() FROM generate_series(1,128) WHERE g > 0), ',') || ']') AS v FROM generate_series(1,100) g"
cat > $W/plain.sql <<SQL
\set base random(0, 20000)
INSERT INTO vectron_shards.t AS t (id, v, payload, version, deleted)
SELECT r.id, r.v::vector, NULL, nextval('ver'), false FROM ($ROWS) r
ON CONFLICT (id) DO UPDATE SET v = excluded.v, payload = excluded.payload, version = excluded.version, deleted = false
WHERE t.version < excluded.version;
SQL
cat > $W/count.sql <<SQL
\set base random(0, 20000)
WITH r AS ($ROWS),
 old AS (SELECT id FROM vectron_shards.t WHERE id = ANY(ARRAY(SELECT id FROM r)) AND NOT deleted),
 ins AS (INSERT INTO vectron_shards.t AS t (id, v, payload, version, deleted)
   SELECT r.id, r.v::vector, NULL, nextval('ver'), false FROM r
   ON CONFLICT (id) DO UPDATE SET v = excluded.v, payload = excluded.payload, version = excluded.version, deleted = false
   WHERE t.version < excluded.version RETURNING t.id)
SELECT count(*) FROM ins WHERE NOT EXISTS (SELECT 1 FROM old WHERE old.id = ins.id);
SQL
chmod a+r $W/*.sql; chmod a+rx $W
B="$VX_PGBIN/pgbench -n -h 127.0.0.1 -p $VX_PERFW_PORT -U postgres -T ${SECS:-15} postgres"
# warm up (fills the table to ~20k ids), then alternate
vx_runas $B -f $W/plain.sql -T 20 | grep -E "^tps" || true
# both statements interleaved at random in one run: per-script latency under the same load
vx_runas $B -f $W/plain.sql@1 -f $W/count.sql@1 -T ${MIXSECS:-90} | grep -E "^SQL script|latency average|^ - number of transactions|weight"
vx_runas $P -At -c "SELECT count(*) FROM vectron_shards.t"
