/*
 * repair.h: repair of stale placements.  A placement that missed a write
 * is "stale" and serves nothing.  Once its node answers again, repair
 * (1) claims it in the metadata as "repairing" -- from then on every write
 * also goes to it -- (2) copies every row (tombstones included) from an
 * active placement of the same shard with the versioned upsert, in id
 * order, 2000 rows per round trip, deleting rows of each id range that
 * the source does not have, (3) compares row count and a hash of
 * (id, version) on both sides, copying again while they differ (a write
 * planned on the older map may land on the source late), and (4) marks it
 * "active".  Versioned upserts commute, so writes that run during the copy
 * cannot be undone by it.  One repair runs at a time per coordinator.
 */
#ifndef VX_REPAIR_H
#define VX_REPAIR_H

/* Start a repair if one is due and none is running (called by health.c). */
void repair_tick(void);

#endif
