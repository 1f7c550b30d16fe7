/*
 * metadata.c: migrations of the metadata schema, and its connection pool.
 * Each migration runs in one transaction together with the row that
 * records it in vectron_meta.schema_migrations.
 */
#include "metadata.h"

#include "log.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const migrations[] = {
	/* 1: the catalog */
	"CREATE TABLE vectron_meta.map_version (\n"
	"  id int PRIMARY KEY CHECK (id = 1),\n"
	"  version bigint NOT NULL);\n"
	"INSERT INTO vectron_meta.map_version VALUES (1, 1);\n"
	"CREATE TABLE vectron_meta.node (\n"
	"  id serial PRIMARY KEY,\n"
	"  name text NOT NULL UNIQUE,\n"
	"  host text NOT NULL,\n"
	"  port int NOT NULL CHECK (port BETWEEN 1 AND 65535),\n"
	"  dbname text NOT NULL,\n"
	"  state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining')),\n"
	"  created_at timestamptz NOT NULL DEFAULT now());\n"
	"CREATE TABLE vectron_meta.collection (\n"
	"  id bigserial PRIMARY KEY,\n"
	"  name text NOT NULL UNIQUE,\n"
	"  dimension int NOT NULL,\n"
	"  metric text NOT NULL CHECK (metric IN ('l2', 'ip', 'cosine', 'l1')),\n"
	"  shard_count int NOT NULL,\n"
	"  replication_factor int NOT NULL,\n"
	"  index_options jsonb NOT NULL DEFAULT '{}',\n"
	"  metadata jsonb NOT NULL DEFAULT '{}',\n"
	"  tags jsonb NOT NULL DEFAULT '[]',\n"
	"  state text NOT NULL DEFAULT 'creating' CHECK (state IN ('creating', 'active')),\n"
	"  created_at timestamptz NOT NULL DEFAULT now());\n"
	"CREATE TABLE vectron_meta.shard (\n"
	"  id bigserial PRIMARY KEY,\n"
	"  collection_id bigint NOT NULL REFERENCES vectron_meta.collection ON DELETE CASCADE,\n"
	"  shard_index int NOT NULL,\n"
	"  hash_min bigint NOT NULL,\n"
	"  hash_max bigint NOT NULL,\n"
	"  UNIQUE (collection_id, shard_index));\n"
	"CREATE TABLE vectron_meta.placement (\n"
	"  id bigserial PRIMARY KEY,\n"
	"  shard_id bigint NOT NULL REFERENCES vectron_meta.shard ON DELETE CASCADE,\n"
	"  node_id int NOT NULL REFERENCES vectron_meta.node,\n"
	"  state text NOT NULL DEFAULT 'active'\n"
	"    CHECK (state IN ('active', 'stale', 'building', 'repairing')),\n"
	"  UNIQUE (shard_id, node_id));\n"
	"CREATE TABLE vectron_meta.cleanup (\n"
	"  id bigserial PRIMARY KEY,\n"
	"  node_id int NOT NULL REFERENCES vectron_meta.node ON DELETE CASCADE,\n"
	"  table_name text NOT NULL,\n"
	"  created_at timestamptz NOT NULL DEFAULT now());\n"
	"CREATE FUNCTION vectron_meta.bump() RETURNS bigint LANGUAGE plpgsql AS $$\n"
	"DECLARE v bigint;\n"
	"BEGIN\n"
	"  UPDATE vectron_meta.map_version SET version = version + 1 RETURNING version INTO v;\n"
	"  PERFORM pg_notify('vectron_map', v::text);\n"
	"  RETURN v;\n"
	"END $$;\n"
	"CREATE FUNCTION vectron_meta.create_collection(p_name text, p_dim int, p_metric text,\n"
	"    p_shards int, p_rf int, p_index jsonb, p_meta jsonb) RETURNS bigint\n"
	"LANGUAGE plpgsql AS $$\n"
	"DECLARE cid bigint; sid bigint; nodes int[]; n int;\n"
	"BEGIN\n"
	"  PERFORM pg_advisory_xact_lock(72010);\n"
	"  SELECT array_agg(id ORDER BY cnt, id) INTO nodes FROM (\n"
	"    SELECT nd.id, (SELECT count(*) FROM vectron_meta.placement p WHERE p.node_id = nd.id) AS cnt\n"
	"    FROM vectron_meta.node nd WHERE nd.state = 'active') s;\n"
	"  n := coalesce(array_length(nodes, 1), 0);\n"
	"  IF n < p_rf THEN\n"
	"    RAISE EXCEPTION 'replication_factor % needs % active nodes; the cluster has %',\n"
	"      p_rf, p_rf, n USING ERRCODE = 'VX001';\n"
	"  END IF;\n"
	"  INSERT INTO vectron_meta.collection (name, dimension, metric, shard_count,\n"
	"      replication_factor, index_options, metadata)\n"
	"    VALUES (p_name, p_dim, p_metric, p_shards, p_rf, p_index, p_meta) RETURNING id INTO cid;\n"
	"  FOR i IN 0 .. p_shards - 1 LOOP\n"
	"    INSERT INTO vectron_meta.shard (collection_id, shard_index, hash_min, hash_max)\n"
	"      VALUES (cid, i, (i * 4294967296 + p_shards - 1) / p_shards,\n"
	"              ((i + 1) * 4294967296 + p_shards - 1) / p_shards - 1)\n"
	"      RETURNING id INTO sid;\n"
	"    FOR r IN 0 .. p_rf - 1 LOOP\n"
	"      INSERT INTO vectron_meta.placement (shard_id, node_id)\n"
	"        VALUES (sid, nodes[1 + (i + r) % n]);\n"
	"    END LOOP;\n"
	"  END LOOP;\n"
	"  PERFORM vectron_meta.bump();\n"
	"  RETURN cid;\n"
	"END $$;\n"
	/* drop: shard tables go to the cleanup list, the rows go away */
	"CREATE FUNCTION vectron_meta.drop_collection(p_id bigint) RETURNS boolean\n"
	"LANGUAGE plpgsql AS $$\n"
	"BEGIN\n"
	"  PERFORM pg_advisory_xact_lock(72010);\n"
	"  INSERT INTO vectron_meta.cleanup (node_id, table_name)\n"
	"    SELECT p.node_id, 'c' || s.collection_id || '_s' || s.id\n"
	"    FROM vectron_meta.shard s JOIN vectron_meta.placement p ON p.shard_id = s.id\n"
	"    WHERE s.collection_id = p_id;\n"
	"  DELETE FROM vectron_meta.collection WHERE id = p_id;\n"
	"  IF NOT FOUND THEN RETURN false; END IF;\n"
	"  PERFORM vectron_meta.bump();\n"
	"  RETURN true;\n"
	"END $$;\n"
	"CREATE FUNCTION vectron_meta.remove_node(p_name text) RETURNS text\n"
	"LANGUAGE plpgsql AS $$\n"
	"DECLARE nid int; cnt bigint;\n"
	"BEGIN\n"
	"  PERFORM pg_advisory_xact_lock(72010);\n"
	"  SELECT id INTO nid FROM vectron_meta.node WHERE name = p_name;\n"
	"  IF nid IS NULL THEN RETURN 'not_found'; END IF;\n"
	"  SELECT count(*) INTO cnt FROM vectron_meta.placement WHERE node_id = nid;\n"
	"  IF cnt > 0 THEN RETURN 'has_placements:' || cnt; END IF;\n"
	"  DELETE FROM vectron_meta.node WHERE id = nid;\n"
	"  PERFORM vectron_meta.bump();\n"
	"  RETURN 'ok';\n"
	"END $$;\n",
};

#define N_MIGRATIONS ((int) (sizeof(migrations) / sizeof(migrations[0])))

const char *const META_SQL_VERSION = "SELECT version FROM vectron_meta.map_version";

const char *const META_SQL_MAP =
	"SELECT json_build_object(\n"
	" 'version', (SELECT version FROM vectron_meta.map_version),\n"
	" 'nodes', coalesce((SELECT json_agg(json_build_object('id', n.id, 'name', n.name,\n"
	"    'host', n.host, 'port', n.port, 'dbname', n.dbname, 'state', n.state) ORDER BY n.id)\n"
	"    FROM vectron_meta.node n), '[]'),\n"
	" 'collections', coalesce((SELECT json_agg(json_build_object('id', c.id, 'name', c.name,\n"
	"    'dimension', c.dimension, 'metric', c.metric, 'replication_factor', c.replication_factor,\n"
	"    'index', c.index_options, 'metadata', c.metadata, 'state', c.state,\n"
	"    'created_at', c.created_at,\n"
	"    'shards', (SELECT json_agg(json_build_object('id', s.id, 'index', s.shard_index,\n"
	"        'hash_min', s.hash_min, 'hash_max', s.hash_max,\n"
	"        'placements', (SELECT json_agg(json_build_object('id', p.id, 'node_id', p.node_id,\n"
	"            'state', p.state) ORDER BY p.id)\n"
	"          FROM vectron_meta.placement p WHERE p.shard_id = s.id)) ORDER BY s.shard_index)\n"
	"      FROM vectron_meta.shard s WHERE s.collection_id = c.id)) ORDER BY c.id)\n"
	"    FROM vectron_meta.collection c), '[]'))";

static PgPool *meta_pool;
static PgPool *meta_listener;

int
metadata_schema_version(void)
{
	return N_MIGRATIONS;
}

void
metadata_init(const char *dsn, PgNotifyCallback on_notify)
{
	meta_pool = workerconn_pool_dsn("metadata", dsn);
	meta_listener = workerconn_listener("metadata-listen", dsn, META_NOTIFY_CHANNEL, on_notify);
}

PgPool *
metadata_listener(void)
{
	return meta_listener;
}

PgPool *
metadata_pool(void)
{
	return meta_pool;
}

static bool
exec_ok(PGconn *c, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		snprintf(err, errlen, "metadata database: %s", PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

bool
metadata_migrate(const char *dsn, char *err, size_t errlen)
{
	PGconn *c = PQconnectdb(dsn);
	PGresult *r;
	int have;
	bool ok = false;

	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to the metadata database: %s", PQerrorMessage(c));
		PQfinish(c);
		return false;
	}
	if (!exec_ok(c, "SET client_min_messages = warning", err, errlen) ||
		!exec_ok(c, "SELECT pg_advisory_lock(72000)", err, errlen))
		goto out;
	if (!exec_ok(c,
				 "CREATE SCHEMA IF NOT EXISTS vectron_meta;"
				 "CREATE TABLE IF NOT EXISTS vectron_meta.schema_migrations ("
				 "  version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
				 err, errlen))
		goto unlock;
	r = PQexec(c, "SELECT coalesce(max(version), 0) FROM vectron_meta.schema_migrations");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "metadata database: %s", PQresultErrorMessage(r));
		PQclear(r);
		goto unlock;
	}
	have = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (have > N_MIGRATIONS) {
		snprintf(err, errlen,
				 "metadata schema is at version %d, newer than this coordinator knows (%d)", have,
				 N_MIGRATIONS);
		goto unlock;
	}
	for (int v = have + 1; v <= N_MIGRATIONS; v++) {
		char rec[128];

		snprintf(rec, sizeof(rec), "INSERT INTO vectron_meta.schema_migrations VALUES (%d)", v);
		if (!exec_ok(c, "BEGIN", err, errlen))
			goto unlock;
		if (!exec_ok(c, migrations[v - 1], err, errlen) || !exec_ok(c, rec, err, errlen)) {
			char keep[1024];

			util_strlcpy(keep, err, sizeof(keep));
			exec_ok(c, "ROLLBACK", err, errlen);
			snprintf(err, errlen, "migration %d failed: %s", v, keep);
			goto unlock;
		}
		if (!exec_ok(c, "COMMIT", err, errlen))
			goto unlock;
		log_info("metadata schema migrated to version %d", v);
	}
	ok = true;
unlock:
	{
		char e2[256];

		exec_ok(c, "SELECT pg_advisory_unlock(72000)", e2, sizeof(e2));
	}
out:
	PQfinish(c);
	return ok;
}
