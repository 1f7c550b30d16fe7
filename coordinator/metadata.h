/*
 * metadata.h: the metadata database.  Its schema `vectron_meta` is created
 * and upgraded by numbered migrations applied at start, under an advisory
 * lock so that several coordinators starting together apply each once.
 *
 * Tables (columns listed in metadata.c's first migration):
 *   node(id, name, host, port, dbname, state active|draining)
 *   collection(id, name, dimension, metric, shard_count, replication_factor,
 *              index_options, metadata, tags, state creating|active)
 *   shard(id, collection_id, shard_index, hash_min, hash_max)
 *   placement(id, shard_id, node_id, state active|stale|building|repairing)
 *   cleanup(id, node_id, table_name): shard tables still to drop
 *   map_version(version): bumped (with NOTIFY vectron_map) by every change
 * and the accounts tables of issue 5 (migrations 3 and 4): app_user,
 * api_key, refresh_family, refresh_token, collection_owner, grant_, audit,
 * and revocation, whose triggers NOTIFY vectron_auth on every change.
 * Changes go through SQL functions in that schema, which serialise on a
 * transaction-level advisory lock.
 */
#ifndef VX_METADATA_H
#define VX_METADATA_H

#include "util.h"
#include "workerconn.h"

#define META_NOTIFY_CHANNEL "vectron_map"
/* accounts changed: payload "<kind>:<id>" (see migration 4) or "rights" */
#define META_AUTH_CHANNEL "vectron_auth"
/* SQLSTATE the metadata functions raise for "not enough active nodes" */
#define META_ERR_NODES "VX001"

/* Apply pending migrations (blocking; only at start, before the loop). */
bool metadata_migrate(const char *dsn, char *err, size_t errlen) VX_WARN_UNUSED;

/* Latest schema version this binary knows. */
int metadata_schema_version(void);

/* The pool for asynchronous metadata statements. */
void metadata_init(const char *dsn, PgNotifyCallback on_notify);
PgPool *metadata_pool(void);
/* The LISTEN connection for map changes (NOTIFY vectron_map). */
PgPool *metadata_listener(void);
/*
 * The LISTEN connection for account changes (NOTIFY vectron_auth), made on
 * the first call; authz.c keeps it connected from its poll timer.
 */
PgPool *metadata_auth_listen(const char *dsn, PgNotifyCallback on_notify);

/* SQL texts used by shardmap.c and the API. */
extern const char *const META_SQL_MAP;
extern const char *const META_SQL_VERSION;

#endif
