/*
 * hnswlinks.c
 *	  Keeping every element of an HNSW graph reachable.
 *
 * The neighbour-selection heuristic prunes a full list without knowing
 * whether the element it drops has any other incoming link; if it has
 * none, no search can find it again (until VACUUM relinked it).  Two
 * guards live here:
 *
 *  - On disk (used by hnswinsert.c when a back link prunes a list, under
 *	  the update lock): before a live element loses a link, HnswHasOtherLink
 *	  checks that some other element still links to it on that level, else
 *	  HnswAppendLink gives it a link from the element being inserted, which
 *	  is written (its own WAL record) before the pruned list is.  If neither
 *	  is possible the caller keeps it in the list.  The check looks at the
 *	  element's own neighbours, which nearly always link back (links are
 *	  made in both directions), so it costs one or two buffer reads.
 *
 *  - In memory (the build): HnswLinkOrphansMem, called once before the
 *	  graph is written, walks every level from the entry point and links
 *	  each element no path reaches from the nearest reached element of that
 *	  level, so the written graph has no unreachable element.  Orphans are
 *	  rare (a few per thousand at most, more with many identical values),
 *	  so the nearest element is found by brute force.
 */
#include "hnsw.h"

#include "miscadmin.h"
#include "utils/memutils.h"

/*
 * Returns true if the element at tid lists target on level lc.  Locks the
 * page in share mode only for the look.
 */
static bool
ListsTarget(Relation index, ItemPointer tid, int lc, ItemPointer target)
{
	Buffer		buf = ReadBuffer(index, ItemPointerGetBlockNumber(tid));
	HnswElementTuple etup;
	bool		found = false;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	etup = HnswGetElement(BufferGetPage(buf), ItemPointerGetOffsetNumber(tid));
	if (etup != NULL && !etup->deleted && etup->level >= lc)
	{
		int			start = HNSW_LAYER_START(etup->m, lc);
		int			n = HnswLayerCount(etup, lc);
		int			i;

		for (i = 0; i < n && !found; i++)
			if (ItemPointerEquals(&etup->neighbors[start + i], target))
				found = true;
	}
	UnlockReleaseBuffer(buf);
	return found;
}

/*
 * Returns true if the element at tid can lose the link from except on level
 * lc without becoming unreachable there: it is dead or deleted (nobody
 * searches for it), or another element links to it on lc.  Candidates are
 * the element's own neighbours and extra (may be NULL), typically the
 * element being inserted.  A false answer may be conservative.
 */
bool
HnswHasOtherLink(Relation index, ItemPointer tid, int lc, ItemPointer except,
				 ItemPointer extra)
{
	Buffer		buf = ReadBuffer(index, ItemPointerGetBlockNumber(tid));
	HnswElementTuple etup;
	ItemPointerData list[2 * HNSW_MAX_M];
	int			n = 0,
				i;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	etup = HnswGetElement(BufferGetPage(buf), ItemPointerGetOffsetNumber(tid));
	if (etup == NULL || etup->deleted || etup->ntids == 0 || etup->level < lc)
	{
		UnlockReleaseBuffer(buf);
		return true;
	}
	n = HnswLayerCount(etup, lc);
	memcpy(list, &etup->neighbors[HNSW_LAYER_START(etup->m, lc)], sizeof(ItemPointerData) * n);
	UnlockReleaseBuffer(buf);

	if (extra != NULL && !ItemPointerEquals(extra, except) &&
		!ItemPointerEquals(extra, tid) && ListsTarget(index, extra, lc, tid))
		return true;
	for (i = 0; i < n; i++)
	{
		if (ItemPointerEquals(&list[i], except) || ItemPointerEquals(&list[i], tid))
			continue;
		if (ListsTarget(index, &list[i], lc, tid))
			return true;
	}
	return false;
}

/*
 * Appends target to the list of the element at owner on level lc if it has
 * room (or already lists it).  One WAL record.  Returns true if the link is
 * there afterwards.
 */
bool
HnswAppendLink(Relation index, ItemPointer owner, int lc, ItemPointer target)
{
	Buffer		buf;
	GenericXLogState *state;
	HnswElementTuple etup;
	int			start,
				cap,
				count,
				i;

	if (ItemPointerEquals(owner, target))
		return false;
	buf = ReadBuffer(index, ItemPointerGetBlockNumber(owner));
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	etup = HnswGetElement(BufferGetPage(buf), ItemPointerGetOffsetNumber(owner));
	if (etup == NULL || etup->deleted || etup->level < lc)
	{
		UnlockReleaseBuffer(buf);
		return false;
	}
	start = HNSW_LAYER_START(etup->m, lc);
	cap = HNSW_LAYER_CAPACITY(etup->m, lc);
	count = HnswLayerCount(etup, lc);
	for (i = 0; i < count; i++)
		if (ItemPointerEquals(&etup->neighbors[start + i], target))
		{
			UnlockReleaseBuffer(buf);
			return true;
		}
	if (count >= cap)
	{
		UnlockReleaseBuffer(buf);
		return false;
	}
	state = GenericXLogStart(index);
	etup = HnswGetElement(GenericXLogRegisterBuffer(state, buf, 0),
						  ItemPointerGetOffsetNumber(owner));
	etup->neighbors[start + count] = *target;
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
	return true;
}

/* ---- the in-memory build graph ---- */

/* Accessors of the caller's element array (see HnswLinkOrphansMem) */
typedef struct OrphanGraph
{
	char	   *base;
	Size		stride;
	Size		offValue;
	Size		offNeighbors;
	Size		offLevel;
	int			m;
	int			n;
} OrphanGraph;

static inline char *
GValue(OrphanGraph *g, int e)
{
	return *(char **) (g->base + g->stride * e + g->offValue);
}

static inline int32 *
GNeighbors(OrphanGraph *g, int e)
{
	return *(int32 **) (g->base + g->stride * e + g->offNeighbors);
}

static inline int
GLevel(OrphanGraph *g, int e)
{
	return *(uint8 *) (g->base + g->stride * e + g->offLevel);
}

/* Marks everything reachable from start on level lc, breadth first. */
static void
MarkFrom(OrphanGraph *g, int lc, int start, bool *reached, int *queue)
{
	int			head = 0,
				tail = 0;
	int			cap = HNSW_LAYER_CAPACITY(g->m, lc);

	if (reached[start])
		return;
	reached[start] = true;
	queue[tail++] = start;
	while (head < tail)
	{
		int			e = queue[head++];
		int32	   *list = GNeighbors(g, e) + HNSW_LAYER_START(g->m, lc);
		int			i;

		for (i = 0; i < cap && list[i] >= 0; i++)
		{
			int			x = list[i];

			if (!reached[x])
			{
				reached[x] = true;
				queue[tail++] = x;
			}
		}
	}
}

/*
 * Counts, for every element, the links to it on level lc (from elements of
 * that level).
 */
static void
CountIncoming(OrphanGraph *g, int lc, int *incoming)
{
	int			cap = HNSW_LAYER_CAPACITY(g->m, lc);
	int			e,
				i;

	memset(incoming, 0, sizeof(int) * g->n);
	for (e = 0; e < g->n; e++)
	{
		int32	   *list;

		if (GNeighbors(g, e) == NULL || GLevel(g, e) < lc)
			continue;
		list = GNeighbors(g, e) + HNSW_LAYER_START(g->m, lc);
		for (i = 0; i < cap && list[i] >= 0; i++)
			incoming[list[i]]++;
	}
}

/*
 * Links orphan o into the list of a reached element of level lc: the
 * nearest one with room, else the nearest one, replacing its farthest
 * neighbour that keeps another incoming link.  Returns false if no
 * element could take it.
 */
static bool
LinkOrphan(OrphanGraph *g, HnswSupport *support, int lc, int o, bool *reached,
		   int *incoming)
{
	int			cap = HNSW_LAYER_CAPACITY(g->m, lc);
	int			bestRoom = -1,
				bestAny = -1;
	float		dRoom = 0,
				dAny = 0;
	int			e,
				i;
	char	   *ov = GValue(g, o);

	for (e = 0; e < g->n; e++)
	{
		int32	   *list;
		float		d;

		if (e == o || !reached[e] || GNeighbors(g, e) == NULL || GLevel(g, e) < lc)
			continue;
		if ((e & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		list = GNeighbors(g, e) + HNSW_LAYER_START(g->m, lc);
		d = HnswDistance(support, ov, GValue(g, e));
		if (bestAny < 0 || d < dAny)
		{
			bestAny = e;
			dAny = d;
		}
		if (list[cap - 1] < 0 && (bestRoom < 0 || d < dRoom))
		{
			bestRoom = e;
			dRoom = d;
		}
	}
	if (bestRoom >= 0)
	{
		int32	   *list = GNeighbors(g, bestRoom) + HNSW_LAYER_START(g->m, lc);

		for (i = 0; i < cap && list[i] >= 0; i++)
			;
		list[i] = o;
		incoming[o]++;
		return true;
	}
	if (bestAny >= 0)
	{
		int32	   *list = GNeighbors(g, bestAny) + HNSW_LAYER_START(g->m, lc);
		char	   *bv = GValue(g, bestAny);
		int			far = -1;
		float		dfar = 0;

		for (i = 0; i < cap; i++)
		{
			float		d;

			if (incoming[list[i]] < 2)
				continue;
			d = HnswDistance(support, bv, GValue(g, list[i]));
			if (far < 0 || d > dfar)
			{
				far = i;
				dfar = d;
			}
		}
		if (far >= 0)
		{
			incoming[list[far]]--;
			list[far] = o;
			incoming[o]++;
			return true;
		}
	}
	return false;
}

/*
 * Links every element of the in-memory build graph that no path from the
 * entry point reaches, level by level.  The graph is described by the
 * caller's element array: nelems elements of stride bytes, each holding a
 * char * value, an int32 * neighbour array (HNSW_NEIGHBOR_SLOTS(m, level)
 * slots, -1 = empty; NULL for an element merged into another) and a uint8
 * level at the given offsets.  Returns the number of links added.
 */
int
HnswLinkOrphansMem(HnswSupport *support, int m, void *elems, Size stride,
				   Size offValue, Size offNeighbors, Size offLevel,
				   int nelems, int entry)
{
	OrphanGraph g;
	MemoryContext ctx;
	MemoryContext old;
	bool	   *reached;
	int		   *queue;
	int		   *incoming;
	int			lc,
				e,
				added = 0;

	if (entry < 0 || nelems <= 1)
		return 0;
	g.base = elems;
	g.stride = stride;
	g.offValue = offValue;
	g.offNeighbors = offNeighbors;
	g.offLevel = offLevel;
	g.m = m;
	g.n = nelems;

	ctx = AllocSetContextCreate(CurrentMemoryContext, "hnsw orphan links",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(ctx);
	reached = palloc_extended(sizeof(bool) * nelems, MCXT_ALLOC_HUGE);
	queue = palloc_extended(sizeof(int) * nelems, MCXT_ALLOC_HUGE);
	incoming = palloc_extended(sizeof(int) * nelems, MCXT_ALLOC_HUGE);

	for (lc = GLevel(&g, entry); lc >= 0; lc--)
	{
		int			pass;
		bool		again = true;

		/* a replaced link can orphan an element already passed: look again */
		for (pass = 0; pass < 3 && again; pass++)
		{
			again = false;
			memset(reached, 0, sizeof(bool) * nelems);
			CountIncoming(&g, lc, incoming);
			MarkFrom(&g, lc, entry, reached, queue);
			for (e = 0; e < nelems; e++)
			{
				if (reached[e] || GNeighbors(&g, e) == NULL || GLevel(&g, e) < lc)
					continue;
				again = true;
				if (LinkOrphan(&g, support, lc, e, reached, incoming))
				{
					added++;
					MarkFrom(&g, lc, e, reached, queue);
				}
			}
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(ctx);
	if (added > 0)
		elog(DEBUG1, "hnsw build linked %d unreachable elements", added);
	return added;
}
