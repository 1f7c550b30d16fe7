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
	/* 2 (operations, issue 6): each coordinator's recent figures */
	"CREATE TABLE vectron_meta.coordinator_stats (\n"
	"  coordinator text PRIMARY KEY,\n"
	"  coordinator_id int NOT NULL,\n"
	"  version text NOT NULL,\n"
	"  started_at timestamptz NOT NULL,\n"
	"  reported_at timestamptz NOT NULL DEFAULT now(),\n"
	"  requests_1m bigint NOT NULL,\n"
	"  errors_1m bigint NOT NULL,\n"
	"  qps float8 NOT NULL,\n"
	"  p50_ms float8 NOT NULL,\n"
	"  p95_ms float8 NOT NULL,\n"
	"  p99_ms float8 NOT NULL,\n"
	"  requests_total bigint NOT NULL,\n"
	"  points_upserted_total bigint NOT NULL,\n"
	"  searches_total bigint NOT NULL,\n"
	"  inflight int NOT NULL);\n"
	/* shard moves: the record that lets an interrupted move be finished
	 * or rolled back (shardmove.c) */
	"CREATE TABLE vectron_meta.shard_move (\n"
	"  id bigserial PRIMARY KEY,\n"
	"  shard_id bigint NOT NULL,\n"
	"  table_name text NOT NULL,\n"
	"  from_node int NOT NULL,\n"
	"  to_node int NOT NULL,\n"
	"  source_placement bigint NOT NULL,\n"
	"  target_placement bigint NOT NULL,\n"
	"  replace_placement bigint,\n"
	"  replace_node int,\n"
	"  state text NOT NULL DEFAULT 'running'\n"
	"    CHECK (state IN ('running', 'done', 'rolled_back')),\n"
	"  step text NOT NULL DEFAULT 'begin',\n"
	"  switched boolean NOT NULL DEFAULT false,\n"
	"  sub_oid bigint,\n"
	"  rows_copied bigint,\n"
	"  error text,\n"
	"  owner text NOT NULL,\n"
	"  started_at timestamptz NOT NULL DEFAULT now(),\n"
	"  updated_at timestamptz NOT NULL DEFAULT now(),\n"
	"  finished_at timestamptz);\n"
	"CREATE UNIQUE INDEX shard_move_one_running ON vectron_meta.shard_move (shard_id)\n"
	"  WHERE state = 'running';\n"
	/* p_replace NULL: a move (the source placement goes at the switch);
	 * else re-replication: copy from p_from, and the placement on the node
	 * p_replace (gone for good) goes instead */
	"CREATE FUNCTION vectron_meta.move_begin(p_shard bigint, p_from text, p_to text,\n"
	"  p_owner text, p_replace text) RETURNS bigint\n"
	"LANGUAGE plpgsql AS $$\n"
	"DECLARE f int; t int; t_state text; src bigint; tgt bigint; tab text; mid bigint;\n"
	"  rep bigint; rep_node int;\n"
	"BEGIN\n"
	"  PERFORM pg_advisory_xact_lock(72010);\n"
	"  SELECT 'c' || collection_id || '_s' || id INTO tab FROM vectron_meta.shard WHERE id = p_shard;\n"
	"  IF tab IS NULL THEN RAISE EXCEPTION 'shard % does not exist', p_shard USING ERRCODE = 'VXM01'; END IF;\n"
	"  SELECT id INTO f FROM vectron_meta.node WHERE name = p_from;\n"
	"  SELECT id, state INTO t, t_state FROM vectron_meta.node WHERE name = p_to;\n"
	"  IF f IS NULL OR t IS NULL THEN\n"
	"    RAISE EXCEPTION 'node \"%\" does not exist', CASE WHEN f IS NULL THEN p_from ELSE p_to END\n"
	"      USING ERRCODE = 'VXM02';\n"
	"  END IF;\n"
	"  IF t_state <> 'active' THEN\n"
	"    RAISE EXCEPTION 'node \"%\" is draining', p_to USING ERRCODE = 'VXM05';\n"
	"  END IF;\n"
	"  SELECT id INTO src FROM vectron_meta.placement\n"
	"    WHERE shard_id = p_shard AND node_id = f AND state = 'active';\n"
	"  IF src IS NULL THEN\n"
	"    RAISE EXCEPTION 'shard % has no active placement on node \"%\"', p_shard, p_from\n"
	"      USING ERRCODE = 'VXM03';\n"
	"  END IF;\n"
	"  IF p_replace IS NOT NULL THEN\n"
	"    SELECT p.id, p.node_id INTO rep, rep_node\n"
	"      FROM vectron_meta.placement p JOIN vectron_meta.node n ON n.id = p.node_id\n"
	"      WHERE p.shard_id = p_shard AND n.name = p_replace;\n"
	"    IF rep IS NULL THEN\n"
	"      RAISE EXCEPTION 'node \"%\" holds no placement of shard %', p_replace, p_shard\n"
	"        USING ERRCODE = 'VXM03';\n"
	"    END IF;\n"
	"  END IF;\n"
	"  IF EXISTS (SELECT 1 FROM vectron_meta.placement WHERE shard_id = p_shard AND node_id = t) THEN\n"
	"    RAISE EXCEPTION 'node \"%\" already holds a placement of shard %', p_to, p_shard\n"
	"      USING ERRCODE = 'VXM04';\n"
	"  END IF;\n"
	"  DELETE FROM vectron_meta.cleanup WHERE node_id = t AND table_name = tab;\n"
	"  INSERT INTO vectron_meta.placement (shard_id, node_id, state)\n"
	"    VALUES (p_shard, t, 'building') RETURNING id INTO tgt;\n"
	"  INSERT INTO vectron_meta.shard_move (shard_id, table_name, from_node, to_node,\n"
	"    source_placement, target_placement, replace_placement, replace_node, owner)\n"
	"    VALUES (p_shard, tab, f, t, src, tgt, rep, rep_node, p_owner) RETURNING id INTO mid;\n"
	"  PERFORM vectron_meta.bump();\n"
	"  RETURN mid;\n"
	"END $$;\n"
	/* the atomic map switch: the target becomes active, the source goes */
	"CREATE FUNCTION vectron_meta.move_switch(p_move bigint) RETURNS void\n"
	"LANGUAGE plpgsql AS $$\n"
	"DECLARE m vectron_meta.shard_move;\n"
	"BEGIN\n"
	"  PERFORM pg_advisory_xact_lock(72010);\n"
	"  SELECT * INTO m FROM vectron_meta.shard_move WHERE id = p_move FOR UPDATE;\n"
	"  IF m.state <> 'running' THEN RAISE EXCEPTION 'move % is %', p_move, m.state; END IF;\n"
	"  IF m.switched THEN RETURN; END IF;\n"
	"  UPDATE vectron_meta.placement SET state = 'active' WHERE id = m.target_placement;\n"
	"  IF NOT FOUND THEN RAISE EXCEPTION 'move %: target placement is gone', p_move; END IF;\n"
	"  DELETE FROM vectron_meta.placement\n"
	"    WHERE id = coalesce(m.replace_placement, m.source_placement);\n"
	"  UPDATE vectron_meta.shard_move SET switched = true, step = 'switched', updated_at = now()\n"
	"    WHERE id = p_move;\n"
	"  PERFORM vectron_meta.bump();\n"
	"END $$;\n"
	"CREATE FUNCTION vectron_meta.move_end(p_move bigint, p_error text) RETURNS void\n"
	"LANGUAGE plpgsql AS $$\n"
	"DECLARE m vectron_meta.shard_move;\n"
	"BEGIN\n"
	"  PERFORM pg_advisory_xact_lock(72010);\n"
	"  SELECT * INTO m FROM vectron_meta.shard_move WHERE id = p_move FOR UPDATE;\n"
	"  IF m.state <> 'running' THEN RETURN; END IF;\n"
	"  IF m.switched THEN\n"
	"    -- the old copy: the source after a move; after re-replication the\n"
	"    -- replaced node's, dropped if it ever comes back\n"
	"    INSERT INTO vectron_meta.cleanup (node_id, table_name)\n"
	"      VALUES (CASE WHEN m.replace_placement IS NULL THEN m.from_node\n"
	"              ELSE m.replace_node END, m.table_name);\n"
	"    UPDATE vectron_meta.shard_move SET state = 'done', step = 'done', error = p_error,\n"
	"      updated_at = now(), finished_at = now() WHERE id = p_move;\n"
	"  ELSE\n"
	"    DELETE FROM vectron_meta.placement WHERE id = m.target_placement;\n"
	"    UPDATE vectron_meta.shard_move SET state = 'rolled_back', step = 'rolled_back',\n"
	"      error = p_error, updated_at = now(), finished_at = now() WHERE id = p_move;\n"
	"  END IF;\n"
	"  PERFORM vectron_meta.bump();\n"
	"END $$;\n",
	/* 3 (accounts, issue 5): users, API keys, refresh families, grants, audit */
	"CREATE TABLE vectron_meta.app_user (\n"
	"  id bigserial PRIMARY KEY,\n"
	"  email text NOT NULL UNIQUE,\n"
	"  password_hash text NOT NULL,\n"
	"  role text NOT NULL CHECK (role IN ('admin', 'write', 'readonly')),\n"
	"  max_collections int CHECK (max_collections >= 0),\n"
	"  created_at timestamptz NOT NULL DEFAULT now());\n"
	"CREATE TABLE vectron_meta.api_key (\n"
	"  id text PRIMARY KEY,\n"
	"  user_id bigint NOT NULL REFERENCES vectron_meta.app_user(id) ON DELETE CASCADE,\n"
	"  name text NOT NULL,\n"
	"  role text NOT NULL CHECK (role IN ('admin', 'write', 'readonly')),\n"
	"  collections text[] NOT NULL,\n"
	"  hash text NOT NULL,\n"
	"  previous_hash text,\n"
	"  previous_expires_at timestamptz,\n"
	"  expires_at timestamptz,\n"
	"  revoked boolean NOT NULL DEFAULT false,\n"
	"  created_at timestamptz NOT NULL DEFAULT now(),\n"
	"  last_used_at timestamptz);\n"
	"CREATE INDEX ON vectron_meta.api_key (user_id);\n"
	"CREATE TABLE vectron_meta.refresh_family (\n"
	"  id bigserial PRIMARY KEY,\n"
	"  user_id bigint NOT NULL REFERENCES vectron_meta.app_user(id) ON DELETE CASCADE,\n"
	"  revoked boolean NOT NULL DEFAULT false,\n"
	"  created_at timestamptz NOT NULL DEFAULT now());\n"
	"CREATE TABLE vectron_meta.refresh_token (\n"
	"  id text PRIMARY KEY,\n"
	"  family_id bigint NOT NULL REFERENCES vectron_meta.refresh_family(id) ON DELETE CASCADE,\n"
	"  hash text NOT NULL,\n"
	"  expires_at timestamptz NOT NULL,\n"
	"  used_at timestamptz);\n"
	"CREATE TABLE vectron_meta.collection_owner (\n"
	"  name text PRIMARY KEY,\n"
	"  user_id bigint NOT NULL REFERENCES vectron_meta.app_user(id) ON DELETE CASCADE,\n"
	"  created_at timestamptz NOT NULL DEFAULT now());\n"
	"CREATE TABLE vectron_meta.grant_ (\n"
	"  collection text NOT NULL,\n"
	"  user_id bigint NOT NULL REFERENCES vectron_meta.app_user(id) ON DELETE CASCADE,\n"
	"  role text NOT NULL CHECK (role IN ('write', 'readonly')),\n"
	"  PRIMARY KEY (collection, user_id));\n"
	"CREATE TABLE vectron_meta.audit (\n"
	"  id bigserial PRIMARY KEY,\n"
	"  at timestamptz NOT NULL DEFAULT now(),\n"
	"  actor text, action text NOT NULL, target text, source_ip text,\n"
	"  request_id text, outcome text NOT NULL);\n",
	/*
	 * accounts, second part (issue 5): admin-issued password-reset tokens
	 * (stored hashed like refresh tokens), vector and dimension x count
	 * quotas, per-collection live point counts for them (quota.c), and the
	 * time a refresh family was revoked, so that coordinators can refuse
	 * the login JWTs of recently revoked families (authfam.c).
	 */
	"CREATE TABLE vectron_meta.password_reset (\n"
	"  id text PRIMARY KEY,\n"
	"  user_id bigint NOT NULL REFERENCES vectron_meta.app_user(id) ON DELETE CASCADE,\n"
	"  hash text NOT NULL,\n"
	"  expires_at timestamptz NOT NULL,\n"
	"  used_at timestamptz,\n"
	"  created_by bigint,\n"
	"  created_at timestamptz NOT NULL DEFAULT now());\n"
	"CREATE INDEX ON vectron_meta.password_reset (user_id);\n"
	"ALTER TABLE vectron_meta.app_user\n"
	"  ADD COLUMN max_vectors bigint CHECK (max_vectors >= 0),\n"
	"  ADD COLUMN max_dimension_count bigint CHECK (max_dimension_count >= 0);\n"
	"CREATE TABLE vectron_meta.collection_usage (\n"
	"  collection_id bigint PRIMARY KEY\n"
	"    REFERENCES vectron_meta.collection(id) ON DELETE CASCADE,\n"
	"  points bigint NOT NULL DEFAULT 0 CHECK (points >= 0),\n"
	"  updated_at timestamptz NOT NULL DEFAULT now());\n"
	"ALTER TABLE vectron_meta.refresh_family ADD COLUMN revoked_at timestamptz;\n"
	"UPDATE vectron_meta.refresh_family SET revoked_at = now() WHERE revoked;\n"
	"CREATE FUNCTION vectron_meta.family_revoked_at() RETURNS trigger\n"
	"LANGUAGE plpgsql AS $$\n"
	"BEGIN\n"
	"  IF NEW.revoked AND NOT OLD.revoked THEN NEW.revoked_at = now(); END IF;\n"
	"  RETURN NEW;\n"
	"END $$;\n"
	"CREATE TRIGGER family_revoked_at BEFORE UPDATE OF revoked ON vectron_meta.refresh_family\n"
	"  FOR EACH ROW EXECUTE FUNCTION vectron_meta.family_revoked_at();\n"
	"CREATE INDEX ON vectron_meta.refresh_family (revoked_at) WHERE revoked;\n",
	/*
	 * 5 (issue 5, revocation): the revocation list, written by triggers in
	 * the transaction of the change, which also NOTIFY vectron_auth so that
	 * every coordinator reloads its accounts snapshot at once (authz.c).
	 *   kind key:    tokens of API key `target` from effective_at on; with
	 *                issued_before (a rotation: effective_at is the end of
	 *                the grace) only those with iat <= issued_before or
	 *                exp <= effective_at, i.e. minted from the old secret
	 *   kind family: login tokens of refresh family `target`
	 *   kind user:   every token of user `target`
	 * Rows older than two days are pruned: no token lives that long.
	 */
	"ALTER TABLE vectron_meta.api_key ADD COLUMN rotated_at timestamptz;\n"
	"CREATE TABLE vectron_meta.revocation (\n"
	"  id bigserial PRIMARY KEY,\n"
	"  kind text NOT NULL CHECK (kind IN ('key', 'family', 'user')),\n"
	"  target text NOT NULL,\n"
	"  effective_at timestamptz NOT NULL DEFAULT now(),\n"
	"  issued_before bigint,\n"
	"  created_at timestamptz NOT NULL DEFAULT now());\n"
	"CREATE INDEX ON vectron_meta.revocation (effective_at);\n"
	"CREATE FUNCTION vectron_meta.revoke(p_kind text, p_target text, p_at timestamptz,\n"
	"    p_before bigint) RETURNS void LANGUAGE plpgsql AS $$\n"
	"BEGIN\n"
	"  INSERT INTO vectron_meta.revocation (kind, target, effective_at, issued_before)\n"
	"    VALUES (p_kind, p_target, p_at, p_before);\n"
	"  PERFORM pg_notify('vectron_auth', p_kind || ':' || p_target);\n"
	"END $$;\n"
	/* rotation: stamp rotated_at (the watermark of the old secret's tokens) */
	"CREATE FUNCTION vectron_meta.api_key_stamp() RETURNS trigger LANGUAGE plpgsql AS $$\n"
	"BEGIN\n"
	"  IF NEW.hash IS DISTINCT FROM OLD.hash THEN NEW.rotated_at := now(); END IF;\n"
	"  RETURN NEW;\n"
	"END $$;\n"
	"CREATE TRIGGER api_key_stamp BEFORE UPDATE ON vectron_meta.api_key\n"
	"  FOR EACH ROW EXECUTE FUNCTION vectron_meta.api_key_stamp();\n"
	"CREATE FUNCTION vectron_meta.api_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$\n"
	"BEGIN\n"
	"  IF TG_OP = 'INSERT' THEN\n"
	"    PERFORM pg_notify('vectron_auth', 'key+:' || NEW.id);\n"
	"  ELSIF TG_OP = 'DELETE' THEN\n"
	"    PERFORM vectron_meta.revoke('key', OLD.id, now(), NULL);\n"
	"  ELSIF NEW.revoked AND NOT OLD.revoked THEN\n"
	"    PERFORM vectron_meta.revoke('key', NEW.id, now(), NULL);\n"
	"  ELSIF NEW.hash IS DISTINCT FROM OLD.hash THEN\n"
	/* a rotation during a running grace cuts the secret before it now */
	"    IF OLD.rotated_at IS NOT NULL AND OLD.previous_expires_at > now() THEN\n"
	"      PERFORM vectron_meta.revoke('key', NEW.id, now(),\n"
	"        floor(extract(epoch FROM OLD.rotated_at))::bigint);\n"
	"    END IF;\n"
	"    PERFORM vectron_meta.revoke('key', NEW.id, coalesce(NEW.previous_expires_at, now()),\n"
	"      floor(extract(epoch FROM NEW.rotated_at))::bigint);\n"
	"  ELSIF NEW.expires_at IS DISTINCT FROM OLD.expires_at\n"
	"     OR NEW.role IS DISTINCT FROM OLD.role\n"
	"     OR NEW.collections IS DISTINCT FROM OLD.collections THEN\n"
	"    PERFORM pg_notify('vectron_auth', 'key~:' || NEW.id);\n"
	"  END IF;\n"
	"  RETURN NULL;\n"
	"END $$;\n"
	"CREATE TRIGGER api_key_changed AFTER INSERT OR UPDATE OR DELETE ON vectron_meta.api_key\n"
	"  FOR EACH ROW EXECUTE FUNCTION vectron_meta.api_key_changed();\n"
	"CREATE FUNCTION vectron_meta.family_changed() RETURNS trigger LANGUAGE plpgsql AS $$\n"
	"BEGIN\n"
	"  IF TG_OP = 'DELETE' THEN\n"
	"    PERFORM vectron_meta.revoke('family', OLD.id::text, now(), NULL);\n"
	"  ELSIF NEW.revoked AND NOT OLD.revoked THEN\n"
	"    PERFORM vectron_meta.revoke('family', NEW.id::text, now(), NULL);\n"
	"  END IF;\n"
	"  RETURN NULL;\n"
	"END $$;\n"
	"CREATE TRIGGER family_changed AFTER UPDATE OR DELETE ON vectron_meta.refresh_family\n"
	"  FOR EACH ROW EXECUTE FUNCTION vectron_meta.family_changed();\n"
	"CREATE FUNCTION vectron_meta.user_changed() RETURNS trigger LANGUAGE plpgsql AS $$\n"
	"BEGIN\n"
	"  IF TG_OP = 'DELETE' THEN\n"
	"    PERFORM vectron_meta.revoke('user', OLD.id::text, now(), NULL);\n"
	"  ELSIF TG_OP = 'INSERT' OR NEW.role IS DISTINCT FROM OLD.role\n"
	"     OR NEW.max_collections IS DISTINCT FROM OLD.max_collections THEN\n"
	"    PERFORM pg_notify('vectron_auth', 'user~:' || NEW.id);\n"
	"  END IF;\n"
	"  RETURN NULL;\n"
	"END $$;\n"
	"CREATE TRIGGER user_changed AFTER INSERT OR UPDATE OR DELETE ON vectron_meta.app_user\n"
	"  FOR EACH ROW EXECUTE FUNCTION vectron_meta.user_changed();\n"
	/* owners and grants: no revocation row, but every snapshot reloads */
	"CREATE FUNCTION vectron_meta.rights_changed() RETURNS trigger LANGUAGE plpgsql AS $$\n"
	"BEGIN\n"
	"  PERFORM pg_notify('vectron_auth', 'rights');\n"
	"  RETURN NULL;\n"
	"END $$;\n"
	"CREATE TRIGGER rights_changed AFTER INSERT OR UPDATE OR DELETE ON vectron_meta.grant_\n"
	"  FOR EACH STATEMENT EXECUTE FUNCTION vectron_meta.rights_changed();\n"
	"CREATE TRIGGER rights_changed AFTER INSERT OR UPDATE OR DELETE\n"
	"  ON vectron_meta.collection_owner\n"
	"  FOR EACH STATEMENT EXECUTE FUNCTION vectron_meta.rights_changed();\n",
	/* 6 (operations): the lease of a repair (repair.c); a
	 * 'repairing' placement whose lease has expired can be taken over */
	"ALTER TABLE vectron_meta.placement ADD COLUMN lease_owner text,\n"
	"  ADD COLUMN lease_expires timestamptz;\n",
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
static PgPool *meta_auth_listener;

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
metadata_auth_listen(const char *dsn, PgNotifyCallback on_notify)
{
	if (!meta_auth_listener)
		meta_auth_listener = workerconn_listener("metadata-auth-listen", dsn, META_AUTH_CHANNEL,
												 on_notify);
	return meta_auth_listener;
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
