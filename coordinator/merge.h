/*
 * merge.h: the cross-shard top-k merge.  Each shard returns its own top k
 * ordered by (distance, id); a heap over the list heads takes the global
 * top k with ties broken by id (bytewise), so the answer does not depend
 * on which shard answered first.  An id met twice in a row (the same point
 * reported by two lists) is kept once.
 */
#ifndef VX_MERGE_H
#define VX_MERGE_H

typedef struct MergeItem {
	const char *id;
	double dist;
	int src;	/* caller's tags: list and row */
	int row;
} MergeItem;

/* Order two items by (dist, id). */
int merge_cmp(const MergeItem *a, const MergeItem *b);

/* Sort one list by (dist, id). */
void merge_sort(MergeItem *items, int n);

/* Merge nlists sorted lists into out (room for k); returns the count. */
int merge_topk(MergeItem *const *lists, const int *lens, int nlists, int k, MergeItem *out);

#endif
