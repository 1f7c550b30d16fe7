/*
 * hnswinsert.c
 *	  Inserting one value into an existing HNSW index (aminsert), also used
 *	  by the build when the in-memory graph outgrows maintenance_work_mem.
 *
 * The search for neighbours runs under the HNSW_UPDATE_LOCK heavyweight lock
 * in a mode that only keeps VACUUM out, the writes in a mode that also keeps
 * other writers out, so writers see a stable graph (see HnswInsertValue and
 * docs/hnsw.md, Locking).  WAL order: the new
 * element first (it links out, nothing links in), then one record per
 * neighbour that gains a link back, then the metapage if the entry point
 * moves up.  A crash between records leaves an element that is only less
 * reachable, never a link to something that does not exist.
 *
 * A back link that prunes a full list never takes the last incoming link
 * away from an element (ProtectDropped, with hnswlinks.c): the element is
 * linked from the new element first (its own record, before the pruned
 * list's), or it stays in the list.
 */
#include "hnsw.h"

#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

/* A neighbour chosen for the new element, with its distance and value */
typedef struct HnswChosen
{
	ItemPointerData tid;
	float		dist;
	char	   *value;
} HnswChosen;

/*
 * Adds heaptid to the element at tid holding an identical value.  Returns
 * false when the element cannot take it (full, dead or deleted).
 */
static bool
AddHeapTid(Relation index, ItemPointer tid, ItemPointer heaptid)
{
	Buffer		buf = ReadBuffer(index, ItemPointerGetBlockNumber(tid));
	GenericXLogState *state;
	Page		page;
	HnswElementTuple etup;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	etup = HnswGetElement(BufferGetPage(buf), ItemPointerGetOffsetNumber(tid));
	if (etup == NULL || etup->deleted || etup->ntids == 0 || etup->ntids >= HNSW_HEAPTIDS)
	{
		UnlockReleaseBuffer(buf);
		return false;
	}
	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, buf, 0);
	etup = HnswGetElement(page, ItemPointerGetOffsetNumber(tid));
	etup->heaptids[etup->ntids++] = *heaptid;
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
	return true;
}

/*
 * Writes a new element tuple on the insert page (or a new page) and updates
 * the metapage's insert page, dimensions and, for the first element, the
 * entry point, all in one record.  Returns the new tuple's TID.
 */
static ItemPointerData
WriteElement(Relation index, HnswElementTuple etup, Size size, int dims,
			 bool setEntry)
{
	Buffer		metabuf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
	Buffer		buf = InvalidBuffer;
	BlockNumber blkno;
	bool		isnew = false;
	GenericXLogState *state;
	Page		page;
	HnswMetaPage meta;
	OffsetNumber off;
	ItemPointerData tid;

	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	blkno = HnswPageGetMeta(BufferGetPage(metabuf))->insertPage;
	if (BlockNumberIsValid(blkno))
	{
		buf = ReadBuffer(index, blkno);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		if (PageGetFreeSpace(BufferGetPage(buf)) < MAXALIGN(size))
		{
			UnlockReleaseBuffer(buf);
			buf = InvalidBuffer;
		}
	}
	if (!BufferIsValid(buf))
	{
		LockRelationForExtension(index, ExclusiveLock);
		buf = ReadBuffer(index, P_NEW);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		UnlockRelationForExtension(index, ExclusiveLock);
		blkno = BufferGetBlockNumber(buf);
		isnew = true;
	}

	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, buf, isnew ? GENERIC_XLOG_FULL_IMAGE : 0);
	if (isnew)
		HnswInitPage(page);
	off = PageAddItem(page, (Item) etup, size, InvalidOffsetNumber, false, false);
	if (off == InvalidOffsetNumber)
		elog(ERROR, "failed to add element to hnsw index \"%s\"",
			 RelationGetRelationName(index));
	meta = HnswPageGetMeta(GenericXLogRegisterBuffer(state, metabuf, 0));
	meta->insertPage = blkno;
	if (meta->dims < 0)
		meta->dims = dims;
	if (setEntry)
	{
		meta->entryBlkno = blkno;
		meta->entryOffno = off;
		meta->entryLevel = etup->level;
	}
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
	UnlockReleaseBuffer(metabuf);
	ItemPointerSet(&tid, blkno, off);
	return tid;
}

/*
 * The list of the element at ntid on level lc is about to become
 * list[0..*count) (cap slots), from orig[0..norig).  Every live element
 * that would leave it without another incoming link on lc first gets one
 * from newtid if that list has room (see hnswlinks.c), else stays: in a
 * free slot, or in place of a member that has another link, or in place of
 * newtid.  Returns false if newtid had to give its place up, in which case
 * the list is left as it was.
 */
static bool
ProtectDropped(Relation index, ItemPointer ntid, int lc, ItemPointer newtid,
			   ItemPointerData *orig, int norig, ItemPointerData *list,
			   int *count, int cap)
{
	bool		stays[2 * HNSW_MAX_M + 1] = {0};
	int			i,
				j;

	for (i = 0; i < norig; i++)
	{
		bool		in = false;
		bool		placed = false;

		for (j = 0; j < *count && !in; j++)
			if (ItemPointerEquals(&list[j], &orig[i]))
				in = true;
		if (in)
			continue;
		if (HnswHasOtherLink(index, &orig[i], lc, ntid, newtid))
			continue;
		if (newtid != NULL && HnswAppendLink(index, newtid, lc, &orig[i]))
			continue;
		if (*count < cap)
		{
			stays[*count] = true;
			list[(*count)++] = orig[i];
			continue;
		}
		/* the farthest member (the heuristic keeps them nearest first) that can go */
		for (j = *count - 1; j >= 0 && !placed; j--)
		{
			if (stays[j] || (newtid != NULL && ItemPointerEquals(&list[j], newtid)))
				continue;
			if (HnswHasOtherLink(index, &list[j], lc, ntid, newtid))
			{
				list[j] = orig[i];
				stays[j] = true;
				placed = true;
			}
		}
		if (!placed)
		{
			memcpy(list, orig, sizeof(ItemPointerData) * norig);
			*count = norig;
			return false;
		}
	}
	return true;
}

/*
 * Gives the element at ntid (at distance dist from the new element) a link
 * back to newtid on level lc, pruning its list with the heuristic when full;
 * with force, the new element replaces the farthest neighbour instead.
 * Returns true if the link is there afterwards.
 */
bool
HnswAddBackLink(Relation index, HnswSupport *support, ItemPointer ntid, int lc,
				ItemPointer newtid, char *newvalue, float dist, bool force,
				ItemPointerData *dropped, int *ndropped)
{
	Buffer		buf = ReadBuffer(index, ItemPointerGetBlockNumber(ntid));
	HnswElementTuple etup;
	ItemPointerData list[2 * HNSW_MAX_M + 1];
	ItemPointerData orig[2 * HNSW_MAX_M + 1];
	int			norig;
	int			count,
				cap,
				m,
				i;
	char	   *nvalue;
	GenericXLogState *state;
	Page		page;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	etup = HnswGetElement(BufferGetPage(buf), ItemPointerGetOffsetNumber(ntid));
	if (etup == NULL || etup->deleted || etup->ntids == 0 || etup->level < lc)
	{
		UnlockReleaseBuffer(buf);
		return false;
	}
	m = etup->m;
	cap = HNSW_LAYER_CAPACITY(m, lc);
	count = HnswLayerCount(etup, lc);
	memcpy(list, &etup->neighbors[HNSW_LAYER_START(m, lc)], sizeof(ItemPointerData) * count);
	nvalue = palloc(VARSIZE(HnswElementValue(etup)));
	memcpy(nvalue, HnswElementValue(etup), VARSIZE(HnswElementValue(etup)));
	LockBuffer(buf, BUFFER_LOCK_UNLOCK);
	norig = count;
	memcpy(orig, list, sizeof(ItemPointerData) * count);

	for (i = 0; i < count; i++)
		if (ItemPointerEquals(&list[i], newtid))
		{
			ReleaseBuffer(buf);
			return true;
		}

	if (count < cap)
		list[count++] = *newtid;
	else
	{
		char	  **values = palloc(sizeof(char *) * (count + 1));
		float	   *dists = palloc(sizeof(float) * (count + 1));
		ItemPointerData *tids = palloc(sizeof(ItemPointerData) * (count + 1));
		int			n = 0;
		int		   *sel;
		int			nsel;
		bool		kept = false;

		for (i = 0; i < count; i++)
		{
			HnswElementTuple copy = HnswCopyElement(index, &list[i]);
			char	   *v;

			if (copy == NULL)
				continue;
			v = HnswElementValue(copy);
			values[n] = v;
			dists[n] = HnswDistance(support, nvalue, v);
			tids[n++] = list[i];
		}
		if (force && n == count)
		{
			int			far = HnswFarthest(dists, n);

			tids[far] = *newtid;
			memcpy(list, tids, sizeof(ItemPointerData) * n);
		}
		else if (n < cap)
		{
			memcpy(list, tids, sizeof(ItemPointerData) * n);
			list[n] = *newtid;
			count = n + 1;
		}
		else
		{
			values[n] = newvalue;
			dists[n] = dist;
			tids[n++] = *newtid;
			sel = HnswSelectNeighbors(support, values, dists, n, cap, false, &nsel);
			for (i = 0; i < nsel; i++)
				if (sel[i] == n - 1)
					kept = true;
			if (!kept)
			{
				ReleaseBuffer(buf);
				return false;
			}
			for (i = 0; i < nsel; i++)
				list[i] = tids[sel[i]];
			count = nsel;
		}
	}

	/* nobody may lose the last link to it; those who leave may be relinked */
	if (!ProtectDropped(index, ntid, lc, newtid, orig, norig, list, &count, cap))
	{
		ReleaseBuffer(buf);
		return false;
	}
	if (dropped != NULL)
	{
		int			k;

		for (k = 0; k < norig; k++)
		{
			bool		in = false;

			for (i = 0; i < count && !in; i++)
				if (ItemPointerEquals(&list[i], &orig[k]))
					in = true;
			if (!in && *ndropped < 2 * HNSW_MAX_M)
				dropped[(*ndropped)++] = orig[k];
		}
	}

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, buf, 0);
	etup = HnswGetElement(page, ItemPointerGetOffsetNumber(ntid));
	if (etup == NULL || etup->deleted)
	{
		GenericXLogAbort(state);
		UnlockReleaseBuffer(buf);
		return false;
	}
	for (i = 0; i < cap; i++)
	{
		if (i < count)
			etup->neighbors[HNSW_LAYER_START(m, lc) + i] = list[i];
		else
			ItemPointerSetInvalid(&etup->neighbors[HNSW_LAYER_START(m, lc) + i]);
	}
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
	return true;
}

/*
 * Adds the neighbours the new element displaced from other lists (the
 * heuristic dropped them because the new element is nearer to them) to the
 * new element's own list on level lc while it has room, so that they stay
 * reachable through it.
 */
static void
LinkDisplaced(Relation index, ItemPointer newtid, int lc, ItemPointerData *dropped, int ndropped)
{
	Buffer		buf = ReadBuffer(index, ItemPointerGetBlockNumber(newtid));
	GenericXLogState *state;
	HnswElementTuple etup;
	int			count,
				cap,
				start,
				i,
				j;
	bool		changed = false;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(index);
	etup = HnswGetElement(GenericXLogRegisterBuffer(state, buf, 0),
						  ItemPointerGetOffsetNumber(newtid));
	if (etup == NULL || etup->deleted || etup->level < lc)
	{
		GenericXLogAbort(state);
		UnlockReleaseBuffer(buf);
		return;
	}
	start = HNSW_LAYER_START(etup->m, lc);
	cap = HNSW_LAYER_CAPACITY(etup->m, lc);
	count = HnswLayerCount(etup, lc);
	for (i = 0; i < ndropped && count < cap; i++)
	{
		bool		dup = ItemPointerEquals(&dropped[i], newtid);

		for (j = 0; j < count && !dup; j++)
			if (ItemPointerEquals(&etup->neighbors[start + j], &dropped[i]))
				dup = true;
		if (!dup)
		{
			etup->neighbors[start + count++] = dropped[i];
			changed = true;
		}
	}
	if (changed)
		GenericXLogFinish(state);
	else
		GenericXLogAbort(state);
	UnlockReleaseBuffer(buf);
}

/* Moves the entry point to tid at level. */
static void
SetEntryPoint(Relation index, ItemPointer tid, int level)
{
	Buffer		metabuf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
	GenericXLogState *state;
	HnswMetaPage meta;

	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(index);
	meta = HnswPageGetMeta(GenericXLogRegisterBuffer(state, metabuf, 0));
	meta->entryBlkno = ItemPointerGetBlockNumber(tid);
	meta->entryOffno = ItemPointerGetOffsetNumber(tid);
	meta->entryLevel = level;
	GenericXLogFinish(state);
	UnlockReleaseBuffer(metabuf);
}

/* What the search phase found: candidates and chosen neighbours per level */
typedef struct HnswFound
{
	int			top;			/* highest level searched, -1: index empty */
	HnswSearch *layers[HNSW_MAX_LEVEL + 1];
	HnswChosen *chosen[HNSW_MAX_LEVEL + 1];
	int			nchosen[HNSW_MAX_LEVEL + 1];
} HnswFound;

/*
 * The search phase: finds the new element's candidates on every level it
 * shares with the graph, from the entry point in meta, and chooses its
 * neighbours with the heuristic (filling etup's lists).  Reads pages with
 * buffer share locks only, like a scan, so it needs no heavyweight lock.
 */
static void
FindNeighbours(Relation index, HnswSupport *support, char *value,
			   HnswElementTuple etup, HnswMetaPageData *meta, HnswFound *f)
{
	int			m = etup->m;
	int			lc,
				i;
	int64		distances = 0;
	ItemPointerData entry;

	memset(f, 0, sizeof(HnswFound));
	f->top = -1;
	for (i = 0; i < HNSW_NEIGHBOR_SLOTS(m, etup->level); i++)
		ItemPointerSetInvalid(&etup->neighbors[i]);
	if (!BlockNumberIsValid(meta->entryBlkno))
		return;
	ItemPointerSet(&entry, meta->entryBlkno, meta->entryOffno);
	f->top = Min(etup->level, meta->entryLevel);
	if (!HnswSearchGreedy(index, support, value, m, &entry, meta->entryLevel, f->top, &entry))
		elog(ERROR, "hnsw index \"%s\" has a broken entry point",
			 RelationGetRelationName(index));
	for (lc = f->top; lc >= 0; lc--)
	{
		HnswSearch *s = palloc(sizeof(HnswSearch));

		HnswSearchInit(s, index, support, value, m, lc, true);
		if (lc == f->top)
			HnswSearchAddEntry(s, &entry);
		else
		{
			HnswSearch *up = f->layers[lc + 1];

			for (i = 0; i < up->result.n; i++)
				HnswSearchAddEntry(s, &HnswSearchItem(up, up->result.a[i].idx)->tid);
			if (up->result.n == 0)
				HnswSearchAddEntry(s, &entry);
		}
		HnswSearchRun(s, meta->efConstruction, 0, 0);
		f->layers[lc] = s;
		distances += s->evaluated;
	}
	HnswCountInsert(distances);

	/* choose neighbours with the heuristic and fill the lists */
	for (lc = f->top; lc >= 0; lc--)
	{
		HnswSearch *s = f->layers[lc];
		int			n = s->result.n;
		char	  **values = palloc(sizeof(char *) * Max(n, 1));
		float	   *dists = palloc(sizeof(float) * Max(n, 1));
		int		   *sel;
		int			nsel;

		for (i = 0; i < n; i++)
		{
			HnswItem   *item = HnswSearchItem(s, s->result.a[i].idx);

			values[i] = item->value;
			dists[i] = item->dist;
		}
		sel = HnswSelectNeighbors(support, values, dists, n,
								  HNSW_LAYER_CAPACITY(m, lc), false, &nsel);
		f->chosen[lc] = palloc(sizeof(HnswChosen) * Max(nsel, 1));
		f->nchosen[lc] = nsel;
		for (i = 0; i < nsel; i++)
		{
			HnswItem   *item = HnswSearchItem(s, s->result.a[sel[i]].idx);

			f->chosen[lc][i].tid = item->tid;
			f->chosen[lc][i].dist = item->dist;
			f->chosen[lc][i].value = item->value;
			etup->neighbors[HNSW_LAYER_START(m, lc) + i] = item->tid;
		}
	}
}

/*
 * The update lock modes of an insert (see HnswInsertValue); VACUUM takes
 * ExclusiveLock, which conflicts with both.
 */
#define HNSW_SEARCH_LOCKMODE	RowShareLock
#define HNSW_WRITE_LOCKMODE		ShareUpdateExclusiveLock

/* Releases both update lock modes an insert holds. */
static void
UnlockInsertLocks(Relation index)
{
	UnlockPage(index, HNSW_UPDATE_LOCK, HNSW_WRITE_LOCKMODE);
	UnlockPage(index, HNSW_UPDATE_LOCK, HNSW_SEARCH_LOCKMODE);
}

/* Checks the value's dimensions and size against the index (meta). */
static void
CheckValue(Relation index, HnswMetaPageData *meta, int dims, Size vsize)
{
	if (meta->dims >= 0 && dims != meta->dims)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d dimensions, not %d", meta->dims, dims)));
	if (HnswElementSize(meta->m, 0, vsize) > HNSW_MAX_TUPLE_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value too large for hnsw index \"%s\"", RelationGetRelationName(index)),
				 errdetail("An element needs %zu bytes, and at most %zu fit on a page.",
						   HnswElementSize(meta->m, 0, vsize), (Size) HNSW_MAX_TUPLE_SIZE),
				 errhint("Index fewer dimensions, or use a smaller m.")));
}

/*
 * Inserts value (as the index stores it) for heaptid into the graph on
 * disk.
 *
 * Two phases on the update lock (pseudo page HNSW_UPDATE_LOCK):
 *
 *  1. The search for neighbours (most of the cost) holds it in RowShareLock
 *	   mode, which conflicts only with VACUUM's ExclusiveLock: other inserts
 *	   run their searches and their writes meanwhile, VACUUM does not, so
 *	   no element the search finds gets deleted or relinked by VACUUM before
 *	   this insert is done.  Pages are read under buffer share locks as a
 *	   scan reads them; elements never move, so the TIDs found stay valid.
 *  2. The writes take it in ShareUpdateExclusiveLock mode as well, which
 *	   conflicts with itself (one writer at a time, as before) but not with
 *	   RowShareLock.  The metapage is read again: if the entry point moved
 *	   (another insert brought a higher level) or the index was empty, the
 *	   search is redone now.  Then the duplicate check, the element, the
 *	   back links with their link protection, and the entry point, all on a
 *	   graph no other writer changes.  An element another insert wrote after
 *	   our search is only a candidate we miss, as in any concurrent HNSW.
 *
 * Both are released at the end.  A writer waiting in phase 2 holds
 * RowShareLock, which a queued VACUUM conflicts with, so the lock manager
 * queues the writer ahead of it (no deadlock).
 */
void
HnswInsertValue(Relation index, HnswSupport *support, char *value, ItemPointer heaptid)
{
	HnswMetaPageData meta;
	HnswMetaPageData locked;
	Size		vsize = VARSIZE(value);
	int			dims = HnswValueDims(support, value);
	int			m,
				level,
				lc,
				i;
	Size		size;
	HnswElementTuple etup;
	ItemPointerData newtid;
	HnswFound	f;

	/* phase 1: search, other inserts go on */
	LockPage(index, HNSW_UPDATE_LOCK, HNSW_SEARCH_LOCKMODE);
	HnswReadMeta(index, &meta);
	CheckValue(index, &meta, dims, vsize);
	support->maxNormSq = meta.maxNormSq;
	m = meta.m;

	level = HnswRandomLevel(m, vsize);
	size = HnswElementSize(m, level, vsize);
	etup = palloc0(size);
	etup->type = HNSW_ELEMENT_TUPLE;
	etup->level = level;
	etup->m = m;
	etup->ntids = 1;
	etup->heaptids[0] = *heaptid;
	etup->valueoff = HNSW_ELEMENT_VALUEOFF(m, level);
	memcpy(HnswElementValue(etup), value, vsize);

	FindNeighbours(index, support, value, etup, &meta, &f);

	/* phase 2: one writer at a time, recheck and write */
	LockPage(index, HNSW_UPDATE_LOCK, HNSW_WRITE_LOCKMODE);
	HnswReadMeta(index, &locked);
	CheckValue(index, &locked, dims, vsize);
	if (!BlockNumberIsValid(locked.entryBlkno) ||
		locked.entryBlkno != meta.entryBlkno ||
		locked.entryOffno != meta.entryOffno ||
		locked.entryLevel != meta.entryLevel ||
		locked.maxNormSq != meta.maxNormSq)
	{
		support->maxNormSq = locked.maxNormSq;
		FindNeighbours(index, support, value, etup, &locked, &f);
	}

	if (f.top < 0)
	{
		WriteElement(index, etup, size, dims, true);
		UnlockInsertLocks(index);
		return;
	}

	/* an identical value already indexed takes the heap TID */
	{
		HnswSearch *s = f.layers[0];

		for (i = 0; i < s->result.n; i++)
		{
			HnswItem   *item = HnswSearchItem(s, s->result.a[i].idx);

			if (VARSIZE(item->value) == vsize &&
				memcmp(item->value, value, vsize) == 0 &&
				AddHeapTid(index, &item->tid, heaptid))
			{
				UnlockInsertLocks(index);
				return;
			}
		}
	}

	/* WAL order: element, back-links, entry point */
	newtid = WriteElement(index, etup, size, dims, false);
	for (lc = f.top; lc >= 0; lc--)
	{
		bool		linked = false;

		ItemPointerData dropped[2 * HNSW_MAX_M];
		int			ndropped = 0;

		for (i = 0; i < f.nchosen[lc]; i++)
			if (HnswAddBackLink(index, support, &f.chosen[lc][i].tid, lc, &newtid,
								HnswElementValue(etup), f.chosen[lc][i].dist, false,
								dropped, &ndropped))
				linked = true;
		/* nobody kept a link: the nearest neighbour must, or it is unreachable */
		if (!linked && f.nchosen[lc] > 0)
			HnswAddBackLink(index, support, &f.chosen[lc][0].tid, lc, &newtid,
							HnswElementValue(etup), f.chosen[lc][0].dist, true,
							dropped, &ndropped);
		if (ndropped > 0)
			LinkDisplaced(index, &newtid, lc, dropped, ndropped);
	}
	if (level > locked.entryLevel)
		SetEntryPoint(index, &newtid, level);

	UnlockInsertLocks(index);
}

/* aminsert: index one heap tuple; NULLs and zero vectors under cosine are skipped. */
bool
hnswinsert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid,
		   Relation heap, IndexUniqueCheck checkUnique, bool indexUnchanged,
		   IndexInfo *indexInfo)
{
	MemoryContext ctx;
	MemoryContext old;
	HnswSupport support;
	char	   *value;
	bool		ok;

	if (isnull[0])
		return false;
	ctx = AllocSetContextCreate(CurrentMemoryContext, "hnsw insert",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(ctx);
	HnswInitSupport(index, &support, true);
	value = HnswFormValue(&support, values[0], &ok);
	if (ok)
		HnswInsertValue(index, &support, value, heap_tid);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(ctx);
	return false;
}
