/*
 * shardmap.h: the cached shard map.  The map is an immutable snapshot
 * built from the metadata database in one query; a new version replaces
 * the whole snapshot (never patched piecemeal).  Requests hold a reference
 * to the snapshot they started with.  Reloads happen on NOTIFY-free version
 * polls (health.c's timer), after this coordinator's own changes, and on
 * demand.
 */
#ifndef VX_SHARDMAP_H
#define VX_SHARDMAP_H

#include "util.h"

#include <jansson.h>
#include <stdint.h>

typedef enum SmMetric { SM_L2, SM_IP, SM_COSINE, SM_L1 } SmMetric;
typedef enum SmPlacementState { SM_ACTIVE, SM_STALE, SM_BUILDING, SM_REPAIRING } SmPlacementState;

typedef struct SmNode {
	int id;
	char name[64];
	char host[256];
	int port;
	char dbname[64];
	bool draining;
} SmNode;

typedef struct SmPlacement {
	int64_t id;
	int node_id;
	SmPlacementState state;
	const SmNode *node;
} SmPlacement;

typedef struct SmShard {
	int64_t id;
	int index;
	int64_t hash_min;
	int64_t hash_max;
	int nplacements;
	SmPlacement *placements;
	char table[64];		/* c<collection>_s<shard> */
} SmShard;

typedef struct SmCollection {
	int64_t id;
	char name[64];
	int dimension;
	SmMetric metric;
	int replication_factor;
	bool active;
	json_t *index;
	json_t *metadata;
	char created_at[64];
	int nshards;
	SmShard *shards;
	int64_t *hash_mins;
} SmCollection;

typedef struct ShardMap {
	int refcount;
	int64_t version;
	int nnodes;
	SmNode *nodes;
	int ncollections;
	SmCollection *collections;
} ShardMap;

typedef void (*ShardMapReadyCallback)(void *arg, bool ok);

/* Load the first map (blocking; at start only). */
bool shardmap_load_initial(const char *dsn, char *err, size_t errlen) VX_WARN_UNUSED;
/* Parse the map JSON (pure; used by tests). */
ShardMap *shardmap_parse(const char *json, char *err, size_t errlen);

/* The current snapshot with a reference taken; release when done. */
ShardMap *shardmap_acquire(void);
void shardmap_release(ShardMap *map);

/* Reload now; cb (may be NULL) runs once the new map is in place. */
void shardmap_reload(ShardMapReadyCallback cb, void *arg);
/* Cheap check of the version; reloads when it moved. */
void shardmap_poll(void);
int64_t shardmap_version(void);

const SmCollection *shardmap_collection(const ShardMap *map, const char *name);
const SmCollection *shardmap_collection_by_id(const ShardMap *map, int64_t id);
const SmNode *shardmap_node(const ShardMap *map, const char *name);
const SmNode *shardmap_node_by_id(const ShardMap *map, int id);
/* The shard that owns a point id. */
const SmShard *shardmap_route(const SmCollection *c, const char *id, size_t len);

const char *shardmap_metric_name(SmMetric m);
/* The SQL distance operator of a metric. */
const char *shardmap_metric_op(SmMetric m);
const char *shardmap_placement_state_name(SmPlacementState s);

#endif
