/*
 * rebalance.h: plans and runs shard moves that even out placements across
 * nodes and empty draining nodes (see rebalance.c).
 */
#ifndef VX_REBALANCE_H
#define VX_REBALANCE_H

#include "http.h"

#include <stdint.h>

/* One placement as the planner sees it. */
typedef struct RbPlacement {
	int64_t shard_id;
	int node;			/* index into the node array */
	int64_t bytes;
} RbPlacement;

typedef struct RbNode {
	const char *name;
	bool eligible;		/* may receive placements: active, not draining, up */
	bool draining;		/* must end with no placements */
	bool down;			/* does not answer: its placements are copied from a replica */
} RbNode;

typedef struct RbMove {
	int64_t shard_id;
	int from, to;		/* node indexes */
	int replace;		/* -1, or the down node whose placement this copy replaces */
	int64_t bytes;
} RbMove;

/*
 * Plan moves (pure): first every placement on a draining node goes to the
 * eligible node with the fewest placements (then bytes) that holds no
 * placement of that shard -- copied from another replica when the draining
 * node is down (re-replication), and skipped when no replica is left; then, while the fullest eligible node
 * has two placements more than the emptiest, one placement moves between
 * them (the largest that keeps replicas on distinct nodes).  pl is updated
 * to the planned layout.  Returns the number of moves written to out (at
 * most max).
 */
int rebalance_plan(RbNode *nodes, int nnodes, RbPlacement *pl, int npl, RbMove *out, int max);

/* Moves of the current job by state (pending, running, done, failed). */
void rebalance_counts(int *pending, int *running, int *done, int *failed);

/* POST /v1/admin/rebalance {"dry_run":bool}; GET /v1/admin/rebalance. */
void rebalance_handle_post(HttpRequest *req);
void rebalance_handle_get(HttpRequest *req);

#endif
