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
 *  - After VACUUM rewrote the lists that pointed at removed elements,
 *	  HnswLinkUnreachable walks the graph from the entry point and links
 *	  every live element the walk missed from its nearest reached element.
 *
 *  - In memory (the build): HnswLinkOrphansMem, called once before the
 *	  graph is written, walks every level from the entry point and links
 *	  each element no path reaches from the nearest reached element of that
 *	  level, so the written graph has no unreachable element.  The linking
 *	  element is the nearest reached one among the orphan's own neighbours;
 *	  only when none is reached are all elements compared (orphans are
 *	  rare, a few per thousand at most).
 */
#include "hnsw.h"

#include "commands/vacuum.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/rel.h"

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
 * element being inserted.  With depth > 0 a neighbour that links back only
 * counts if something other than tid links to it in turn, so that a pair
 * linking only to each other is not taken as reachable.  A false answer
 * may be conservative.
 */
static bool
HasOtherLink(Relation index, ItemPointer tid, int lc, ItemPointer except,
			 ItemPointer extra, int depth)
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
		if (ListsTarget(index, &list[i], lc, tid) &&
			(depth == 0 || HasOtherLink(index, &list[i], lc, tid, NULL, depth - 1)))
			return true;
	}
	return false;
}

/* HasOtherLink with one level of anchoring; see there. */
bool
HnswHasOtherLink(Relation index, ItemPointer tid, int lc, ItemPointer except,
				 ItemPointer extra)
{
	return HasOtherLink(index, tid, lc, except, extra, 1);
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
 * Links orphan o into the list of a reached element of level lc (with
 * ownOnly one of o's own neighbours, else any): the nearest one with
 * room, else the nearest one, replacing its farthest neighbour that keeps
 * another incoming link.  Returns false if no element could take it.
 */
static bool
LinkOrphan(OrphanGraph *g, HnswSupport *support, int lc, int o, bool *reached,
		   int *incoming, bool ownOnly)
{
	int			cap = HNSW_LAYER_CAPACITY(g->m, lc);
	int			bestRoom = -1,
				bestAny = -1;
	float		dRoom = 0,
				dAny = 0;
	int			e,
				i;
	char	   *ov = GValue(g, o);
	int32	   *own = GNeighbors(g, o) + HNSW_LAYER_START(g->m, lc);
	int			k,
				pass;

	/*
	 * With ownOnly among the orphan's own neighbours (its nearest, and
	 * usually reached), else among all elements.
	 */
	for (pass = ownOnly ? 0 : 1; pass < (ownOnly ? 1 : 2); pass++)
	{
		int			limit = pass == 0 ? cap : g->n;

		for (k = 0; k < limit; k++)
		{
			int32	   *list;
			float		d;

			if (pass == 0 && own[k] < 0)
				break;
			e = pass == 0 ? own[k] : k;
			if (e == o || !reached[e] || GNeighbors(g, e) == NULL || GLevel(g, e) < lc)
				continue;
			if ((k & 1023) == 1023)
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
				if (LinkOrphan(&g, support, lc, e, reached, incoming, true) ||
					LinkOrphan(&g, support, lc, e, reached, incoming, false))
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

/* ---- on disk, after VACUUM ---- */

/*
 * Adds to reached every live element a path from start reaches (over all
 * levels), breadth first.  Returns how many were added.
 */
static int
MarkFromDisk(Relation index, BufferAccessStrategy strategy, ItemPointer start,
			 HnswTidSet *reached)
{
	ItemPointerData *queue;
	int			head = 0,
				tail = 0,
				cap = 1024;

	if (!HnswTidSetAdd(reached, start))
		return 0;
	queue = palloc(sizeof(ItemPointerData) * cap);
	queue[tail++] = *start;
	while (head < tail)
	{
		ItemPointerData cur = queue[head++];
		Buffer		buf;
		HnswElementTuple etup;
		ItemPointerData list[HNSW_NEIGHBOR_SLOTS(HNSW_MAX_M, HNSW_MAX_LEVEL)];
		int			n = 0,
					i;

		if ((head & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		buf = ReadBufferExtended(index, MAIN_FORKNUM, ItemPointerGetBlockNumber(&cur),
								 RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		etup = HnswGetElement(BufferGetPage(buf), ItemPointerGetOffsetNumber(&cur));
		if (etup != NULL && !etup->deleted)
		{
			for (i = 0; i < HNSW_NEIGHBOR_SLOTS(etup->m, etup->level); i++)
				if (ItemPointerIsValid(&etup->neighbors[i]))
					list[n++] = etup->neighbors[i];
		}
		UnlockReleaseBuffer(buf);
		for (i = 0; i < n; i++)
		{
			if (!HnswTidSetAdd(reached, &list[i]))
				continue;
			if (tail == cap)
			{
				cap *= 2;
				queue = repalloc(queue, sizeof(ItemPointerData) * cap);
			}
			queue[tail++] = list[i];
		}
	}
	pfree(queue);
	return tail;
}

/* Orders (distance, index) pairs nearest first. */
static int
CompareByDist(const void *a, const void *b)
{
	const HnswHeapEntry *x = a;
	const HnswHeapEntry *y = b;

	return (x->key > y->key) - (x->key < y->key);
}

/*
 * Gives the live element at tid (no path reaches it) a link on level 0 from
 * the nearest element a search from the entry point finds: the nearest
 * whose list has room, else through the heuristic, else by force.
 */
static bool
LinkFromNearest(Relation index, HnswSupport *support, ItemPointer tid,
				HnswMetaPageData *meta)
{
	HnswElementTuple etup = HnswCopyElement(index, tid);
	ItemPointerData entry;
	HnswSearch	s;
	HnswHeapEntry *order;
	int			n = 0,
				i;

	if (etup == NULL || etup->ntids == 0)
		return false;
	ItemPointerSet(&entry, meta->entryBlkno, meta->entryOffno);
	if (!HnswSearchGreedy(index, support, HnswElementValue(etup), etup->m, &entry,
						  meta->entryLevel, 0, &entry))
		return false;
	HnswSearchInit(&s, index, support, HnswElementValue(etup), etup->m, 0, true);
	HnswSearchAddEntry(&s, &entry);
	HnswSearchRun(&s, meta->efConstruction, 0, 0);
	order = palloc(sizeof(HnswHeapEntry) * Max(s.result.n, 1));
	for (i = 0; i < s.result.n; i++)
	{
		HnswItem   *item = HnswSearchItem(&s, s.result.a[i].idx);

		if (ItemPointerEquals(&item->tid, tid) || item->value == NULL)
			continue;
		order[n].key = item->dist;
		order[n++].idx = s.result.a[i].idx;
	}
	qsort(order, n, sizeof(HnswHeapEntry), CompareByDist);
	for (i = 0; i < n; i++)
		if (HnswAppendLink(index, &HnswSearchItem(&s, order[i].idx)->tid, 0, tid))
			return true;
	if (n == 0)
		return false;
	if (HnswAddBackLink(index, support, &HnswSearchItem(&s, order[0].idx)->tid, 0, tid,
						HnswElementValue(etup), order[0].key, false, NULL, NULL))
		return true;
	return HnswAddBackLink(index, support, &HnswSearchItem(&s, order[0].idx)->tid, 0, tid,
						   HnswElementValue(etup), order[0].key, true, NULL, NULL);
}

/*
 * Links every live element that no path from the entry point reaches (a
 * VACUUM that rewrote lists can cut off a group of elements that still link
 * to each other).  Walks the graph from the entry point, relinks what it
 * missed, and walks again from each relinked element; a few rounds at most.
 * The caller holds the update lock.  Returns the number of links added.
 */
int
HnswLinkUnreachable(Relation index, HnswSupport *support, BufferAccessStrategy strategy)
{
	HnswMetaPageData meta;
	HnswTidSet	reached;
	ItemPointerData entry;
	BlockNumber nblocks = RelationGetNumberOfBlocks(index),
				blkno;
	MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "hnsw relink",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(tmp);
	int			added = 0,
				round;

	HnswReadMeta(index, &meta);
	if (!BlockNumberIsValid(meta.entryBlkno))
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(tmp);
		return 0;
	}
	ItemPointerSet(&entry, meta.entryBlkno, meta.entryOffno);
	HnswTidSetInit(&reached, 1024);
	MarkFromDisk(index, strategy, &entry, &reached);
	for (round = 0; round < 3; round++)
	{
		int			missed = 0;

		for (blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++)
		{
			Buffer		buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, strategy);
			Page		page;
			OffsetNumber off,
						maxoff;
			ItemPointerData orphans[MaxIndexTuplesPerPage];
			int			norphans = 0,
						i;

			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			maxoff = PageGetMaxOffsetNumber(page);
			for (off = FirstOffsetNumber; off <= maxoff; off++)
			{
				HnswElementTuple etup = HnswGetElement(page, off);
				ItemPointerData t;

				if (etup == NULL || etup->deleted || etup->ntids == 0)
					continue;
				ItemPointerSet(&t, blkno, off);
				if (!HnswTidSetContains(&reached, &t))
					orphans[norphans++] = t;
			}
			UnlockReleaseBuffer(buf);
			for (i = 0; i < norphans; i++)
			{
				if (HnswTidSetContains(&reached, &orphans[i]))
					continue;
				missed++;
				if (LinkFromNearest(index, support, &orphans[i], &meta))
				{
					added++;
					MarkFromDisk(index, strategy, &orphans[i], &reached);
				}
			}
			vacuum_delay_point();
		}
		if (missed == 0)
			break;
		/* a forced link may have cut off another element: walk again */
		HnswTidSetInit(&reached, 1024);
		MarkFromDisk(index, strategy, &entry, &reached);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(tmp);
	if (added > 0)
		elog(DEBUG1, "hnsw vacuum linked %d unreachable elements of \"%s\"",
			 added, RelationGetRelationName(index));
	return added;
}
