/*
 * gc.h: the tombstone garbage collector.  Removes delete tombstones older
 * than tombstone_retention from shards whose placements are all active and
 * hold no older version of the id, so that no late write, replay or repair
 * can bring a deleted point back (the argument is at the top of gc.c).
 * health.c runs a pass every tombstone_gc_interval seconds.
 */
#ifndef VX_GC_H
#define VX_GC_H

#include <stdbool.h>

/* Called when a pass ends: rows removed (over placements), and whether some
 * shard was skipped (not fully active, or a node failed). */
typedef void (*GcDoneCallback)(void *arg, long long collected, bool skipped);

/* Start a pass; false when one is already running. */
bool gc_run(GcDoneCallback cb, void *arg);
bool gc_running(void);

#endif
