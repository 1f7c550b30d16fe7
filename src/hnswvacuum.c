/*
 * hnswvacuum.c
 *	  VACUUM for HNSW: remove dead heap TIDs and repair the graph.
 *
 * Five passes, each crash-safe on its own (see hnsw.c):
 *   1. Every element loses its dead heap TIDs.  An element left with none
 *	    still routes searches but is never returned or linked to anew.  No
 *	    heavyweight lock: inserts never add a TID to an empty element.
 *   2. Under the update lock, every live element whose lists point at an
 *	    empty element gets new lists: its live neighbours, the live
 *	    neighbours of the empty ones and what a search for its own value
 *	    finds, chosen with the heuristic and topped up with the pruned ones.
 *	    Then every live element no live element links to on level 0 gets
 *	    links back from its nearest elements, as an insert would.
 *   3. If the entry point is empty, the live element of highest level
 *	    becomes the entry point (or the index becomes empty).
 *   4. Empty elements are flagged deleted and their lists cleared.  Nothing
 *	    points at them any more; their space is not reused, so a TID held by
 *	    a concurrent scan never changes meaning.
 *   5. A walk from the entry point finds live elements no path reaches
 *	    (rewritten lists can cut off a group that links only to itself) and
 *	    links each from its nearest reached element (hnswlinks.c).
 */
#include "hnsw.h"

#include "commands/vacuum.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

/* Returns true if any neighbour of etup on any level is in dead. */
static bool
PointsAtDead(HnswElementTuple etup, HnswTidSet *dead)
{
	int			lc,
				i;

	for (lc = 0; lc <= etup->level; lc++)
	{
		int			start = HNSW_LAYER_START(etup->m, lc);
		int			n = HnswLayerCount(etup, lc);

		for (i = 0; i < n; i++)
			if (HnswTidSetContains(dead, &etup->neighbors[start + i]))
				return true;
	}
	return false;
}

/*
 * Rewrites the lists of the live element at tid that point at dead elements:
 * the candidates are its live neighbours, the live neighbours of its dead
 * ones, and what a search for its own value (ef_construction) finds.
 */
static void
RepairElement(Relation index, HnswSupport *support, ItemPointer tid, HnswTidSet *dead,
			  HnswMetaPageData *meta)
{
	HnswElementTuple etup = HnswCopyElement(index, tid);
	int			m,
				lc,
				i,
				j;
	ItemPointerData *newlists;
	bool		changed = false;
	Buffer		buf;
	GenericXLogState *state;
	Page		page;
	HnswElementTuple target;

	if (etup == NULL || etup->ntids == 0)
		return;
	m = etup->m;
	newlists = palloc(sizeof(ItemPointerData) * HNSW_NEIGHBOR_SLOTS(m, etup->level));
	memcpy(newlists, etup->neighbors, sizeof(ItemPointerData) * HNSW_NEIGHBOR_SLOTS(m, etup->level));

	for (lc = 0; lc <= etup->level; lc++)
	{
		int			start = HNSW_LAYER_START(m, lc);
		int			cap = HNSW_LAYER_CAPACITY(m, lc);
		int			n = HnswLayerCount(etup, lc);
		ItemPointerData *cands = palloc(sizeof(ItemPointerData) * (cap + cap * cap));
		int			ncands = 0;
		bool		hasDead = false;
		char	  **values;
		float	   *dists;
		ItemPointerData *ctids;
		int			nv = 0;
		int		   *sel;
		int			nsel;

		for (i = 0; i < n; i++)
			if (HnswTidSetContains(dead, &etup->neighbors[start + i]))
				hasDead = true;
		if (!hasDead)
			continue;

		for (i = 0; i < n; i++)
		{
			ItemPointer nb = &etup->neighbors[start + i];

			if (!HnswTidSetContains(dead, nb))
			{
				int			k;
				bool		dup = false;

				for (k = 0; k < ncands && !dup; k++)
					if (ItemPointerEquals(&cands[k], nb))
						dup = true;
				if (!dup)
					cands[ncands++] = *nb;
			}
			else
			{
				HnswElementTuple d = HnswCopyElement(index, nb);
				int			dn;

				if (d == NULL || d->level < lc)
					continue;
				dn = HnswLayerCount(d, lc);
				for (j = 0; j < dn; j++)
				{
					ItemPointer c = &d->neighbors[HNSW_LAYER_START(d->m, lc) + j];
					int			k;
					bool		dup = ItemPointerEquals(c, tid) || HnswTidSetContains(dead, c);

					for (k = 0; k < ncands && !dup; k++)
						if (ItemPointerEquals(&cands[k], c))
							dup = true;
					if (!dup)
						cands[ncands++] = *c;
				}
			}
		}

		/* what a search for the element's own value finds on this level */
		if (BlockNumberIsValid(meta->entryBlkno) && meta->entryLevel >= lc)
		{
			ItemPointerData entry;
			HnswSearch	search;

			ItemPointerSet(&entry, meta->entryBlkno, meta->entryOffno);
			if (HnswSearchGreedy(index, support, HnswElementValue(etup), m, &entry,
								 meta->entryLevel, lc, &entry))
			{
				HnswSearchInit(&search, index, support, HnswElementValue(etup), m, lc, false);
				HnswSearchAddEntry(&search, &entry);
				HnswSearchRun(&search, meta->efConstruction, 0, 0);
				cands = repalloc(cands, sizeof(ItemPointerData) * (ncands + search.result.n));
				for (i = 0; i < search.result.n; i++)
				{
					ItemPointer c = &HnswSearchItem(&search, search.result.a[i].idx)->tid;
					int			k;
					bool		dup = ItemPointerEquals(c, tid) || HnswTidSetContains(dead, c);

					for (k = 0; k < ncands && !dup; k++)
						if (ItemPointerEquals(&cands[k], c))
							dup = true;
					if (!dup)
						cands[ncands++] = *c;
				}
			}
		}

		values = palloc(sizeof(char *) * Max(ncands, 1));
		dists = palloc(sizeof(float) * Max(ncands, 1));
		ctids = palloc(sizeof(ItemPointerData) * Max(ncands, 1));
		for (i = 0; i < ncands; i++)
		{
			HnswElementTuple c = HnswCopyElement(index, &cands[i]);

			if (c == NULL || c->ntids == 0 || c->level < lc)
				continue;
			values[nv] = HnswElementValue(c);
			dists[nv] = HnswDistance(support, HnswElementValue(etup), values[nv]);
			ctids[nv++] = cands[i];
		}
		sel = HnswSelectNeighbors(support, values, dists, nv, cap, true, &nsel);
		for (i = 0; i < cap; i++)
		{
			if (i < nsel)
				newlists[start + i] = ctids[sel[i]];
			else
				ItemPointerSetInvalid(&newlists[start + i]);
		}
		changed = true;
	}
	if (!changed)
		return;

	buf = ReadBuffer(index, ItemPointerGetBlockNumber(tid));
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, buf, 0);
	target = HnswGetElement(page, ItemPointerGetOffsetNumber(tid));
	if (target == NULL || target->deleted || target->level != etup->level)
		GenericXLogAbort(state);
	else
	{
		memcpy(target->neighbors, newlists,
			   sizeof(ItemPointerData) * HNSW_NEIGHBOR_SLOTS(m, etup->level));
		GenericXLogFinish(state);
	}
	UnlockReleaseBuffer(buf);
}

/*
 * Gives the live element at tid, which no element links to on level 0 any
 * more, links from the elements nearest to it, as an insert would.
 */
static void
RelinkElement(Relation index, HnswSupport *support, ItemPointer tid, HnswTidSet *dead,
			  HnswMetaPageData *meta)
{
	HnswElementTuple etup = HnswCopyElement(index, tid);
	ItemPointerData entry;
	HnswSearch	search;
	char	  **values;
	float	   *dists;
	ItemPointerData *tids;
	int			n = 0,
				i,
				nsel;
	int		   *sel;
	bool		linked = false;

	if (etup == NULL || etup->ntids == 0 || !BlockNumberIsValid(meta->entryBlkno))
		return;
	ItemPointerSet(&entry, meta->entryBlkno, meta->entryOffno);
	if (!HnswSearchGreedy(index, support, HnswElementValue(etup), etup->m, &entry,
						  meta->entryLevel, 0, &entry))
		return;
	HnswSearchInit(&search, index, support, HnswElementValue(etup), etup->m, 0, true);
	HnswSearchAddEntry(&search, &entry);
	HnswSearchRun(&search, meta->efConstruction, 0, 0);
	values = palloc(sizeof(char *) * Max(search.result.n, 1));
	dists = palloc(sizeof(float) * Max(search.result.n, 1));
	tids = palloc(sizeof(ItemPointerData) * Max(search.result.n, 1));
	for (i = 0; i < search.result.n; i++)
	{
		HnswItem   *item = HnswSearchItem(&search, search.result.a[i].idx);

		if (ItemPointerEquals(&item->tid, tid) || HnswTidSetContains(dead, &item->tid) ||
			item->value == NULL)
			continue;
		values[n] = item->value;
		dists[n] = item->dist;
		tids[n++] = item->tid;
	}
	sel = HnswSelectNeighbors(support, values, dists, n, 2 * etup->m, false, &nsel);
	for (i = 0; i < nsel; i++)
		if (HnswAddBackLink(index, support, &tids[sel[i]], 0, tid,
							HnswElementValue(etup), dists[sel[i]], false, NULL, NULL))
			linked = true;
	if (!linked && nsel > 0)
		HnswAddBackLink(index, support, &tids[sel[0]], 0, tid,
						HnswElementValue(etup), dists[sel[0]], true, NULL, NULL);
}

/* Passes 2 to 5 of the vacuum, under the update lock. */
static void
RepairGraph(IndexVacuumInfo *info, HnswTidSet *dead)
{
	Relation	index = info->index;
	HnswSupport support;
	BlockNumber nblocks,
				blkno;
	ItemPointerData best;
	int			bestLevel = -1;
	HnswMetaPageData meta;
	ItemPointerData entry;
	MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "hnsw vacuum repair",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old;

	HnswInitSupport(index, &support, true);
	LockPage(index, HNSW_UPDATE_LOCK, ExclusiveLock);
	HnswReadMeta(index, &meta);
	support.maxNormSq = meta.maxNormSq;
	nblocks = RelationGetNumberOfBlocks(index);
	ItemPointerSetInvalid(&best);

	/* 2: repair lists pointing at dead elements */
	for (blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++)
	{
		Buffer		buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, info->strategy);
		Page		page;
		OffsetNumber off,
					maxoff;
		ItemPointerData torepair[MaxIndexTuplesPerPage];
		int			nrepair = 0,
					i;

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		maxoff = PageGetMaxOffsetNumber(page);
		for (off = FirstOffsetNumber; off <= maxoff; off++)
		{
			HnswElementTuple etup = HnswGetElement(page, off);

			if (etup == NULL || etup->deleted || etup->ntids == 0)
				continue;
			if (etup->level > bestLevel)
			{
				bestLevel = etup->level;
				ItemPointerSet(&best, blkno, off);
			}
			if (PointsAtDead(etup, dead))
			{
				ItemPointerSet(&torepair[nrepair], blkno, off);
				nrepair++;
			}
		}
		UnlockReleaseBuffer(buf);
		for (i = 0; i < nrepair; i++)
		{
			old = MemoryContextSwitchTo(tmp);
			RepairElement(index, &support, &torepair[i], dead, &meta);
			MemoryContextSwitchTo(old);
			MemoryContextReset(tmp);
		}
		vacuum_delay_point();
	}

	/* 2b: relink live elements that lost every incoming link on level 0 */
	{
		HnswTidSet	linked;
		ItemPointerData *orphans = NULL;
		int			norphans = 0,
					maxorphans = 0,
					pass,
					i;
		ItemPointerData entry0;

		HnswTidSetInit(&linked, 1024);
		ItemPointerSet(&entry0, meta.entryBlkno, meta.entryOffno);
		for (pass = 0; pass < 2; pass++)
		{
			for (blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++)
			{
				Buffer		buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, info->strategy);
				Page		page;
				OffsetNumber off,
							maxoff;

				LockBuffer(buf, BUFFER_LOCK_SHARE);
				page = BufferGetPage(buf);
				maxoff = PageGetMaxOffsetNumber(page);
				for (off = FirstOffsetNumber; off <= maxoff; off++)
				{
					HnswElementTuple etup = HnswGetElement(page, off);
					ItemPointerData t;
					int			n,
								j;

					if (etup == NULL || etup->deleted || etup->ntids == 0)
						continue;
					ItemPointerSet(&t, blkno, off);
					if (pass == 0)
					{
						n = HnswLayerCount(etup, 0);
						for (j = 0; j < n; j++)
							HnswTidSetAdd(&linked, &etup->neighbors[j]);
					}
					else if (!HnswTidSetContains(&linked, &t) && !ItemPointerEquals(&t, &entry0))
					{
						if (norphans == maxorphans)
						{
							maxorphans = Max(64, maxorphans * 2);
							orphans = orphans ? repalloc(orphans, sizeof(ItemPointerData) * maxorphans)
								: palloc(sizeof(ItemPointerData) * maxorphans);
						}
						orphans[norphans++] = t;
					}
				}
				UnlockReleaseBuffer(buf);
			}
		}
		for (i = 0; i < norphans; i++)
		{
			old = MemoryContextSwitchTo(tmp);
			RelinkElement(index, &support, &orphans[i], dead, &meta);
			MemoryContextSwitchTo(old);
			MemoryContextReset(tmp);
			vacuum_delay_point();
		}
	}

	/* 3: move the entry point off a dead element */
	HnswReadMeta(index, &meta);
	ItemPointerSet(&entry, meta.entryBlkno, meta.entryOffno);
	if (BlockNumberIsValid(meta.entryBlkno) && HnswTidSetContains(dead, &entry))
	{
		Buffer		metabuf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
		GenericXLogState *state;
		HnswMetaPage mp;

		LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
		state = GenericXLogStart(index);
		mp = HnswPageGetMeta(GenericXLogRegisterBuffer(state, metabuf, 0));
		if (bestLevel >= 0)
		{
			mp->entryBlkno = ItemPointerGetBlockNumber(&best);
			mp->entryOffno = ItemPointerGetOffsetNumber(&best);
			mp->entryLevel = bestLevel;
		}
		else
		{
			mp->entryBlkno = InvalidBlockNumber;
			mp->entryOffno = InvalidOffsetNumber;
			mp->entryLevel = -1;
		}
		GenericXLogFinish(state);
		UnlockReleaseBuffer(metabuf);
	}

	/* 4: flag dead elements deleted */
	for (blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++)
	{
		Buffer		buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, info->strategy);
		GenericXLogState *state = NULL;
		Page		page;
		OffsetNumber off,
					maxoff;

		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(buf);
		maxoff = PageGetMaxOffsetNumber(page);
		for (off = FirstOffsetNumber; off <= maxoff; off++)
		{
			HnswElementTuple etup = HnswGetElement(page, off);
			int			i;

			if (etup == NULL || etup->deleted || etup->ntids > 0)
				continue;
			if (state == NULL)
			{
				state = GenericXLogStart(index);
				page = GenericXLogRegisterBuffer(state, buf, 0);
				etup = HnswGetElement(page, off);
			}
			etup->deleted = 1;
			for (i = 0; i < HNSW_NEIGHBOR_SLOTS(etup->m, etup->level); i++)
				ItemPointerSetInvalid(&etup->neighbors[i]);
		}
		if (state != NULL)
			GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
		vacuum_delay_point();
	}

	/* 5: nothing live may be left that no path reaches (see hnswlinks.c) */
	HnswLinkUnreachable(index, &support, info->strategy);

	UnlockPage(index, HNSW_UPDATE_LOCK, ExclusiveLock);
	MemoryContextDelete(tmp);
}

/* ambulkdelete: removes the heap TIDs callback says are dead, then repairs. */
IndexBulkDeleteResult *
hnswbulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
			   IndexBulkDeleteCallback callback, void *callback_state)
{
	Relation	index = info->index;
	BlockNumber nblocks,
				blkno;
	HnswTidSet	dead;

	if (stats == NULL)
		stats = palloc0(sizeof(IndexBulkDeleteResult));
	HnswTidSetInit(&dead, 64);

	/* 1: drop dead heap TIDs */
	nblocks = RelationGetNumberOfBlocks(index);
	for (blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++)
	{
		Buffer		buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, info->strategy);
		GenericXLogState *state = NULL;
		Page		page;
		OffsetNumber off,
					maxoff;

		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(buf);
		maxoff = PageGetMaxOffsetNumber(page);
		for (off = FirstOffsetNumber; off <= maxoff; off++)
		{
			HnswElementTuple etup = HnswGetElement(page, off);
			ItemPointerData keep[HNSW_HEAPTIDS];
			int			nkeep = 0,
						i;

			if (etup == NULL || etup->deleted)
				continue;
			for (i = 0; i < etup->ntids; i++)
			{
				if (callback(&etup->heaptids[i], callback_state))
					stats->tuples_removed++;
				else
					keep[nkeep++] = etup->heaptids[i];
			}
			if (nkeep != etup->ntids)
			{
				if (state == NULL)
				{
					state = GenericXLogStart(index);
					page = GenericXLogRegisterBuffer(state, buf, 0);
					etup = HnswGetElement(page, off);
				}
				memcpy(etup->heaptids, keep, sizeof(ItemPointerData) * nkeep);
				for (i = nkeep; i < HNSW_HEAPTIDS; i++)
					ItemPointerSetInvalid(&etup->heaptids[i]);
				etup->ntids = nkeep;
			}
			stats->num_index_tuples += nkeep;
			if (nkeep == 0)
			{
				ItemPointerData t;

				ItemPointerSet(&t, blkno, off);
				HnswTidSetAdd(&dead, &t);
			}
		}
		if (state != NULL)
			GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
		vacuum_delay_point();
	}

	if (dead.count > 0)
		RepairGraph(info, &dead);

	stats->num_pages = RelationGetNumberOfBlocks(index);
	return stats;
}

/* amvacuumcleanup: reports the index's size and tuple count. */
IndexBulkDeleteResult *
hnswvacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	Relation	index = info->index;
	BlockNumber nblocks,
				blkno;

	if (info->analyze_only)
		return stats;
	if (stats == NULL)
	{
		stats = palloc0(sizeof(IndexBulkDeleteResult));
		nblocks = RelationGetNumberOfBlocks(index);
		for (blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++)
		{
			Buffer		buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, info->strategy);
			Page		page;
			OffsetNumber off,
						maxoff;

			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			maxoff = PageGetMaxOffsetNumber(page);
			for (off = FirstOffsetNumber; off <= maxoff; off++)
			{
				HnswElementTuple etup = HnswGetElement(page, off);

				if (etup != NULL && !etup->deleted)
					stats->num_index_tuples += etup->ntids;
			}
			UnlockReleaseBuffer(buf);
			vacuum_delay_point();
		}
	}
	stats->num_pages = RelationGetNumberOfBlocks(index);
	return stats;
}
