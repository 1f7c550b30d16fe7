/*
 * quota.h: per-user quotas on vectors and on dimension x count (issue 5),
 * beside the collections quota that authz.c keeps.
 *
 * What counts: the live points of the collections a user owns
 * (vectron_meta.collection_owner), and for dimension x count each
 * collection's points times its dimension.  Writes to a collection count
 * against its owner's quota, whoever makes them; collections without an
 * owner (made while auth was off) have no quota.
 *
 * How it is counted: vectron_meta.collection_usage keeps one live-point
 * count per collection.  With auth on, an upsert's statement on each shard
 * also returns how many of its ids were not live before (new or
 * resurrected points), a delete returns how many live points it removed,
 * and after the write is acknowledged the coordinator adds the sum (from the
 * first placement of each shard that committed) to the collection's row in
 * one statement.  Every coordinator reloads the counts and the quotas with
 * the accounts snapshot (auth_cache_poll_ms).
 *
 * Admission: an upsert or an import batch of n points is admitted when the
 * owner's usage plus n stays within both quotas, counting every point of
 * the batch as new (an update of existing points near the limit is refused
 * too: the check cannot know which ids exist without asking the shards).
 * n is reserved from admission until the count is written back, so
 * concurrent writes through one coordinator cannot pass the limit together.
 * With several coordinators, writes admitted on different coordinators
 * within one poll interval do not see each other: each can add up to the
 * remaining quota, so the limit can be passed by at most that much.
 * A collection with no usage row (made before this migration) is seeded
 * once from count(*) of its shards; writes made while auth is off are not
 * counted (their statements are left as they were).
 */
#ifndef VX_QUOTA_H
#define VX_QUOTA_H

#include "shardmap.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Counting is on (auth on): upserts use the statement that counts. */
bool quota_counting(void);

/* Reload quotas and counts from the metadata database (async). */
void quota_poll(void);
void quota_free(void);

/* This coordinator set user's quotas (-1: unlimited). */
void quota_set_user(long long user, long long vectors, long long dimension_count);
/* A user's quotas, -1 when unlimited. */
long long quota_vectors(long long user);
long long quota_dimension_count(long long user);
/* A user's usage: live points and points x dimension of the collections they own. */
void quota_usage(long long user, long long *vectors, long long *dimension_count);

/*
 * Admit a write of up to npoints new points into c: true (with *reserved
 * set, to give back to quota_settle) or false with a message naming the
 * quota in msg.  Always true, reserving nothing, with auth off.
 */
bool quota_reserve(const SmCollection *c, long long npoints, long long *reserved, char *msg,
				   size_t msglen);
/*
 * A write to collection id has finished: add delta (live points added,
 * negative for deletes) to its count and give back the reservation once
 * the metadata row is written.
 */
void quota_settle(int64_t coll_id, long long reserved, long long delta);

#endif
