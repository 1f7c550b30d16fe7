/*
 * writes.h: the replicated write executor.
 *
 * Writes are versioned, idempotent upserts (see docs/architecture.md): every
 * row carries the version of the write that made it, and a statement only
 * replaces a row whose version is lower.  A write runs on every writable
 * placement (active or repairing) of each shard it touches, one pipeline per
 * node.  It is acknowledged only when, for every touched shard, at least one
 * placement committed and every placement that failed has been marked stale
 * in the metadata; a shard where no placement committed fails the request.
 *
 * Versions come from a hybrid clock: (wall-clock microseconds, kept
 * strictly increasing) << 10 | coordinator_id, so versions from several
 * coordinators never collide and have one global order.
 */
#ifndef VX_WRITES_H
#define VX_WRITES_H

#include "shardmap.h"
#include "workerconn.h"

typedef struct WriteOp WriteOp;

typedef struct WriteShard {
	const SmShard *shard;
	bool touched;
	int nok;
	int nfailed;
	PGresult *res;		/* result of the first placement that committed */
	char *errmsg;
	char sqlstate[6];
	bool sql_error;
	char node[64];
} WriteShard;

/* Build the statement for one shard (index i of the collection). */
typedef void (*WriteBuild)(void *arg, int i, const SmShard *shard, StrBuf *sql, ParamList *params);
typedef void (*WriteDone)(WriteOp *w, void *arg);

struct WriteOp {
	ShardMap *map;
	const SmCollection *coll;
	int nshards;
	WriteShard *shards;
	bool mark_stale;	/* false for DDL: failures are just reported */
	bool ok;			/* every touched shard committed somewhere and stale marks are in */
	char *errmsg;		/* when !ok */
	char errcode[32];
	char sqlstate[6];
	int inflight;
	WriteBuild build;
	void *build_arg;
	WriteDone done;
	void *done_arg;
	struct WriteJob *jobs;
	int64_t *stale;
	int nstale;
	PgJob *meta_job;
	bool include_all;	/* DDL: every placement whatever its state */
	bool cancelled;
};

/* A new write version (hybrid clock, see above). */
int64_t writes_next_version(void);

/*
 * Run build's statement on every writable placement of the shards marked in
 * touched (NULL: all shards).  done runs once from the loop.
 */
WriteOp *writes_start(ShardMap *map, const SmCollection *c, const bool *touched,
					  bool mark_stale, bool include_all, WriteBuild build, void *build_arg,
					  WriteDone done, void *done_arg);
/* The client left: let the write finish (it must still mark stale
 * placements), but free it instead of calling done. */
void writes_detach(WriteOp *w);
void writes_free(WriteOp *w);

#endif
