/*
 * hnswbuild.c
 *	  Building an HNSW index: the graph is built in memory, then written.
 *
 * Elements get dense numbers in heap order, so the visited set of a search
 * is a tag array (one uint32 per element, reset by bumping an epoch) and
 * neighbour lists are int32 arrays.  Distances use the SIMD kernels
 * directly.  When the graph is complete, tuples are laid out page by page,
 * neighbour numbers become TIDs, and the pages are written through shared
 * buffers and WAL-logged in bulk with log_newpage_range.
 *
 * When the graph outgrows maintenance_work_mem, what exists is written out,
 * a NOTICE says so, and the remaining tuples go through the on-disk insert
 * path of hnswinsert.c.
 *
 * With max_parallel_maintenance_workers > 0 and a table big enough, the
 * graph is built by the leader and its workers in shared memory instead
 * (hnswparallel.c), then written by WriteGraph below; if the shared arena
 * fills, the build starts over here, serially.
 */
#include "hnsw.h"

#include "access/tableam.h"
#include "access/xloginsert.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "catalog/index.h"
#include "commands/progress.h"
#include "miscadmin.h"
#include "storage/smgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "distance.h"
#include "vector.h"

/* An element of the in-memory graph */
typedef struct BuildElement
{
	char	   *value;
	int32	   *neighbors;		/* HNSW_NEIGHBOR_SLOTS(m, level), -1 = empty */
	uint8		level;
	uint8		ntids;
	ItemPointerData heaptids[HNSW_HEAPTIDS];
	BlockNumber blkno;			/* assigned when written */
	OffsetNumber offno;
} BuildElement;

typedef struct HnswBuildState
{
	Relation	heap;
	Relation	index;
	HnswSupport support;
	int			m;
	int			efConstruction;
	int			dims;

	BuildElement *elems;
	int			nelems;
	int			capelems;
	int			entry;			/* element number, -1 if none */
	uint32	   *tags;			/* visited set: tags[e] == epoch */
	uint32		epoch;
	HnswHeap	cand;
	HnswHeap	result;

	MemoryContext graphCtx;
	MemoryContext tmpCtx;
	Size		memLimit;
	bool		flushed;		/* graph written; insert on disk from now */
	double		indtuples;
} HnswBuildState;

static inline float
ElemDistance(HnswBuildState *bs, const char *query, int e)
{
	return HnswDistance(&bs->support, query, bs->elems[e].value);
}

/*
 * Searches level lc from the given entries with beam ef.  Leaves the best
 * ef elements in bs->result (as a max-heap on -distance).
 */
static void
SearchLayerMem(HnswBuildState *bs, const char *query, int *entries, int nentries,
			   int ef, int lc)
{
	int			i;
	int			start = HNSW_LAYER_START(bs->m, lc);
	int			cap = HNSW_LAYER_CAPACITY(bs->m, lc);

	if (++bs->epoch == 0)
	{
		memset(bs->tags, 0, sizeof(uint32) * bs->capelems);
		bs->epoch = 1;
	}
	bs->cand.n = 0;
	bs->result.n = 0;
	for (i = 0; i < nentries; i++)
	{
		int			e = entries[i];
		float		d;

		if (bs->tags[e] == bs->epoch)
			continue;
		bs->tags[e] = bs->epoch;
		d = ElemDistance(bs, query, e);
		HnswHeapPush(&bs->cand, d, e);
		HnswHeapPush(&bs->result, -d, e);
	}
	while (bs->result.n > ef)
		HnswHeapPop(&bs->result);

	while (bs->cand.n > 0)
	{
		HnswHeapEntry c = HnswHeapTop(&bs->cand);
		int32	   *nb;
		int			j;

		if (bs->result.n >= ef && c.key > -HnswHeapTop(&bs->result).key)
			break;
		HnswHeapPop(&bs->cand);
		nb = bs->elems[c.idx].neighbors + start;
		for (j = 0; j < cap && nb[j] >= 0; j++)
			if (bs->tags[nb[j]] != bs->epoch)
				__builtin_prefetch(bs->elems[nb[j]].value);
		for (j = 0; j < cap && nb[j] >= 0; j++)
		{
			int			n = nb[j];
			float		d;

			if (bs->tags[n] == bs->epoch)
				continue;
			bs->tags[n] = bs->epoch;
			d = ElemDistance(bs, query, n);
			if (bs->result.n < ef || d < -HnswHeapTop(&bs->result).key)
			{
				HnswHeapPush(&bs->cand, d, n);
				HnswHeapPush(&bs->result, -d, n);
				if (bs->result.n > ef)
					HnswHeapPop(&bs->result);
			}
		}
	}
}

/*
 * Links e into n's list on level lc, pruning n's list when full.  With
 * force, e replaces n's farthest neighbour instead of going through the
 * heuristic.  Returns true if e is in the list afterwards.
 */
static bool
AddLinkMem(HnswBuildState *bs, int n, int e, int lc, float dist, bool force)
{
	BuildElement *ne = &bs->elems[n];
	int32	   *list = ne->neighbors + HNSW_LAYER_START(bs->m, lc);
	int			cap = HNSW_LAYER_CAPACITY(bs->m, lc);
	int			count = 0;
	char	  **values;
	float	   *dists;
	int		   *sel;
	int			nsel,
				i;
	bool		kept = false;
	int32		ids[2 * HNSW_MAX_M + 1];

	while (count < cap && list[count] >= 0)
		count++;
	for (i = 0; i < count; i++)
		if (list[i] == e)
			return true;
	if (count < cap)
	{
		list[count] = e;
		return true;
	}
	values = palloc(sizeof(char *) * (cap + 1));
	dists = palloc(sizeof(float) * (cap + 1));
	for (i = 0; i < cap; i++)
	{
		ids[i] = list[i];
		values[i] = bs->elems[list[i]].value;
		dists[i] = ElemDistance(bs, ne->value, list[i]);
	}
	if (force)
	{
		int			far = HnswFarthest(dists, cap);
		list[far] = e;
		pfree(values);
		pfree(dists);
		return true;
	}
	ids[cap] = e;
	values[cap] = bs->elems[e].value;
	dists[cap] = dist;
	sel = HnswSelectNeighbors(&bs->support, values, dists, cap + 1, cap, false, &nsel);
	for (i = 0; i < cap; i++)
	{
		list[i] = i < nsel ? ids[sel[i]] : -1;
		if (i < nsel && sel[i] == cap)
			kept = true;
	}
	pfree(values);
	pfree(dists);
	pfree(sel);
	return kept;
}

/* Makes room for one more element. */
static void
GrowElements(HnswBuildState *bs)
{
	MemoryContext old = MemoryContextSwitchTo(bs->graphCtx);
	int			newcap = bs->capelems * 2;

	bs->elems = repalloc_huge(bs->elems, sizeof(BuildElement) * newcap);
	bs->tags = repalloc_huge(bs->tags, sizeof(uint32) * newcap);
	memset(bs->tags + bs->capelems, 0, sizeof(uint32) * (newcap - bs->capelems));
	bs->capelems = newcap;
	MemoryContextSwitchTo(old);
}

/*
 * Links element q (collected, not yet in the graph) into the in-memory
 * graph, or merges its heap TID into an element holding the same value.
 */
static void
InsertMem(HnswBuildState *bs, int q)
{
	int			m = bs->m;
	BuildElement *qe = &bs->elems[q];
	char	   *value = qe->value;
	int			level;
	int			top,
				lc,
				i,
				entryLevel;
	int			cur;
	int		   *found[HNSW_MAX_LEVEL + 1];
	float	   *founddist[HNSW_MAX_LEVEL + 1];
	int			nfound[HNSW_MAX_LEVEL + 1];

	level = HnswRandomLevel(m, VARSIZE(value));
	qe->level = level;
	qe->neighbors = NULL;
	if (bs->entry < 0)
	{
		qe->neighbors = MemoryContextAlloc(bs->graphCtx,
										   sizeof(int32) * HNSW_NEIGHBOR_SLOTS(m, level));
		memset(qe->neighbors, -1, sizeof(int32) * HNSW_NEIGHBOR_SLOTS(m, level));
		bs->entry = q;
		return;
	}

	entryLevel = bs->elems[bs->entry].level;
	cur = bs->entry;
	for (lc = entryLevel; lc > level; lc--)
	{
		SearchLayerMem(bs, value, &cur, 1, 1, lc);
		cur = HnswHeapTop(&bs->result).idx;
	}
	top = Min(level, entryLevel);
	for (lc = top; lc >= 0; lc--)
	{
		int			n;

		if (lc == top)
			SearchLayerMem(bs, value, &cur, 1, bs->efConstruction, lc);
		else
			SearchLayerMem(bs, value, found[lc + 1], nfound[lc + 1], bs->efConstruction, lc);
		n = bs->result.n;
		found[lc] = palloc(sizeof(int) * Max(n, 1));
		founddist[lc] = palloc(sizeof(float) * Max(n, 1));
		for (i = 0; i < n; i++)
		{
			found[lc][i] = bs->result.a[i].idx;
			founddist[lc][i] = -bs->result.a[i].key;
		}
		nfound[lc] = n;
	}

	/* an identical value takes the heap TID; q stays out of the graph */
	for (i = 0; i < nfound[0]; i++)
	{
		BuildElement *e = &bs->elems[found[0][i]];

		if (e->ntids < HNSW_HEAPTIDS && VARSIZE(e->value) == VARSIZE(value) &&
			memcmp(e->value, value, VARSIZE(value)) == 0)
		{
			e->heaptids[e->ntids++] = qe->heaptids[0];
			qe->ntids = 0;
			return;
		}
	}

	qe->neighbors = MemoryContextAlloc(bs->graphCtx,
									   sizeof(int32) * HNSW_NEIGHBOR_SLOTS(m, level));
	memset(qe->neighbors, -1, sizeof(int32) * HNSW_NEIGHBOR_SLOTS(m, level));

	for (lc = top; lc >= 0; lc--)
	{
		int			n = nfound[lc];
		char	  **values = palloc(sizeof(char *) * Max(n, 1));
		int		   *sel;
		int			nsel;
		bool		linked = false;

		for (i = 0; i < n; i++)
			values[i] = bs->elems[found[lc][i]].value;
		sel = HnswSelectNeighbors(&bs->support, values, founddist[lc], n,
								  HNSW_LAYER_CAPACITY(m, lc), false, &nsel);
		for (i = 0; i < nsel; i++)
			qe->neighbors[HNSW_LAYER_START(m, lc) + i] = found[lc][sel[i]];
		for (i = 0; i < nsel; i++)
			if (AddLinkMem(bs, found[lc][sel[i]], q, lc, founddist[lc][sel[i]], false))
				linked = true;
		/* nobody kept a link: the nearest neighbour must, or q is unreachable */
		if (!linked && nsel > 0)
			AddLinkMem(bs, found[lc][sel[0]], q, lc, founddist[lc][sel[0]], true);
	}
	if (level > entryLevel)
		bs->entry = q;
}

/*
 * Builds the graph over the collected elements: fixes the inner-product
 * graph's norm bound first, then links the elements in heap order.
 */
static void
BuildGraph(HnswBuildState *bs)
{
	MemoryContext old;
	int			i;

	if (bs->support.kind == HNSW_KIND_MIPS)
	{
		double		maxsq = 0;

		for (i = 0; i < bs->nelems; i++)
		{
			double		sq = HnswValueNormSq(bs->elems[i].value);

			if (sq > maxsq)
				maxsq = sq;
		}
		bs->support.maxNormSq = maxsq;
	}
	for (i = 0; i < bs->nelems; i++)
	{
		old = MemoryContextSwitchTo(bs->tmpCtx);
		InsertMem(bs, i);
		MemoryContextSwitchTo(old);
		MemoryContextReset(bs->tmpCtx);
		if ((i & 255) == 0)
		{
			CHECK_FOR_INTERRUPTS();
			pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, i);
		}
	}
}

/*
 * Lays the in-memory graph out on pages, writes them (metapage first) and
 * WAL-logs them.  The relation must be empty.
 */
static void
WriteGraph(HnswBuildState *bs)
{
	int			m = bs->m;
	Size		avail = BLCKSZ - SizeOfPageHeaderData - MAXALIGN(sizeof(HnswPageOpaqueData));
	BlockNumber blkno = 1;
	OffsetNumber offno = FirstOffsetNumber;
	Size		used = 0;
	int			i;
	Buffer		buf;
	Page		page;
	PGAlignedBlock pagebuf;
	HnswMetaPage meta;
	BlockNumber nblocks;
	char	   *tupbuf = palloc(BLCKSZ);
	instr_time	t0,
				t1,
				t2;

	INSTR_TIME_SET_CURRENT(t0);
	HnswLinkOrphansMem(&bs->support, m, bs->elems, sizeof(BuildElement),
					   offsetof(BuildElement, value), offsetof(BuildElement, neighbors),
					   offsetof(BuildElement, level), bs->nelems, bs->entry);
	INSTR_TIME_SET_CURRENT(t1);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, HNSW_PHASE_WRITE);

	/* assign TIDs */
	for (i = 0; i < bs->nelems; i++)
	{
		BuildElement *e = &bs->elems[i];
		Size		sz;

		if (e->ntids == 0)
			continue;
		sz = MAXALIGN(HnswElementSize(m, e->level, VARSIZE(e->value))) + sizeof(ItemIdData);

		if (used + sz > avail)
		{
			blkno++;
			offno = FirstOffsetNumber;
			used = 0;
		}
		e->blkno = blkno;
		e->offno = offno++;
		used += sz;
	}
	nblocks = bs->entry >= 0 ? blkno + 1 : 1;

	/* the metapage */
	page = (Page) pagebuf.data;
	HnswInitMetaPage(page, m, bs->efConstruction);
	meta = HnswPageGetMeta(page);
	meta->dims = bs->dims;
	meta->maxNormSq = bs->support.maxNormSq;
	if (bs->entry >= 0)
	{
		meta->entryBlkno = bs->elems[bs->entry].blkno;
		meta->entryOffno = bs->elems[bs->entry].offno;
		meta->entryLevel = bs->elems[bs->entry].level;
		meta->insertPage = nblocks - 1;
	}
	buf = ReadBuffer(bs->index, P_NEW);
	Assert(BufferGetBlockNumber(buf) == HNSW_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	memcpy(BufferGetPage(buf), page, BLCKSZ);
	MarkBufferDirty(buf);
	UnlockReleaseBuffer(buf);

	/* the element pages */
	blkno = InvalidBlockNumber;
	for (i = 0; i <= bs->nelems; i++)
	{
		BuildElement *e = i < bs->nelems ? &bs->elems[i] : NULL;
		HnswElementTuple etup;
		Size		sz;
		int			j;

		if (e != NULL && e->ntids == 0)
			continue;

		if (blkno != InvalidBlockNumber && (e == NULL || e->blkno != blkno))
		{
			buf = ReadBuffer(bs->index, P_NEW);
			if (BufferGetBlockNumber(buf) != blkno)
				elog(ERROR, "unexpected block %u while writing hnsw index, expected %u",
					 BufferGetBlockNumber(buf), blkno);
			LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
			memcpy(BufferGetPage(buf), page, BLCKSZ);
			MarkBufferDirty(buf);
			UnlockReleaseBuffer(buf);
			CHECK_FOR_INTERRUPTS();
		}
		if (e == NULL)
			break;
		if (e->blkno != blkno)
		{
			HnswInitPage(page);
			blkno = e->blkno;
		}

		sz = HnswElementSize(m, e->level, VARSIZE(e->value));
		memset(tupbuf, 0, sz);
		etup = (HnswElementTuple) tupbuf;
		etup->type = HNSW_ELEMENT_TUPLE;
		etup->level = e->level;
		etup->m = m;
		etup->ntids = e->ntids;
		memcpy(etup->heaptids, e->heaptids, sizeof(ItemPointerData) * e->ntids);
		etup->valueoff = HNSW_ELEMENT_VALUEOFF(m, e->level);
		for (j = 0; j < HNSW_NEIGHBOR_SLOTS(m, e->level); j++)
		{
			int32		n = e->neighbors[j];

			if (n >= 0)
				ItemPointerSet(&etup->neighbors[j], bs->elems[n].blkno, bs->elems[n].offno);
			else
				ItemPointerSetInvalid(&etup->neighbors[j]);
		}
		memcpy(HnswElementValue(etup), e->value, VARSIZE(e->value));
		if (PageAddItem(page, (Item) etup, sz, InvalidOffsetNumber, false, false) != e->offno)
			elog(ERROR, "failed to add element to hnsw index page");
	}

	INSTR_TIME_SET_CURRENT(t2);
	if (RelationNeedsWAL(bs->index))
		log_newpage_range(bs->index, MAIN_FORKNUM, 0, nblocks, true);
	pfree(tupbuf);
	{
		instr_time	t3;

		INSTR_TIME_SET_CURRENT(t3);
		INSTR_TIME_SUBTRACT(t3, t2);
		INSTR_TIME_SUBTRACT(t2, t1);
		INSTR_TIME_SUBTRACT(t1, t0);
		elog(DEBUG1, "hnsw build: reachability pass %.3f s, pages %.3f s, WAL %.3f s (%u blocks)",
			 INSTR_TIME_GET_DOUBLE(t1), INSTR_TIME_GET_DOUBLE(t2), INSTR_TIME_GET_DOUBLE(t3),
			 nblocks);
	}
}

/* Called for every heap tuple by table_index_build_scan. */
static void
BuildCallback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
			  bool tupleIsAlive, void *state)
{
	HnswBuildState *bs = (HnswBuildState *) state;
	MemoryContext old;
	char	   *value;
	bool		ok;
	int			dims;

	if (isnull[0])
		return;
	old = MemoryContextSwitchTo(bs->tmpCtx);
	value = HnswFormValue(&bs->support, values[0], &ok);
	if (!ok)
	{
		MemoryContextSwitchTo(old);
		MemoryContextReset(bs->tmpCtx);
		return;
	}
	dims = HnswValueDims(&bs->support, value);
	if (bs->dims < 0)
		bs->dims = dims;
	else if (dims != bs->dims)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d dimensions, not %d", bs->dims, dims)));
	if (HnswElementSize(bs->m, 0, VARSIZE(value)) > HNSW_MAX_TUPLE_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value too large for hnsw index \"%s\"", RelationGetRelationName(index)),
				 errdetail("An element needs %zu bytes, and at most %zu fit on a page.",
						   HnswElementSize(bs->m, 0, VARSIZE(value)), (Size) HNSW_MAX_TUPLE_SIZE),
				 errhint("Index fewer dimensions, or use a smaller m.")));

	if (bs->flushed)
		HnswInsertValue(index, &bs->support, value, tid);
	else
	{
		BuildElement *e;

		if (bs->nelems == bs->capelems)
			GrowElements(bs);
		e = &bs->elems[bs->nelems++];
		memset(e, 0, sizeof(BuildElement));
		e->value = MemoryContextAlloc(bs->graphCtx, VARSIZE(value));
		memcpy(e->value, value, VARSIZE(value));
		e->ntids = 1;
		e->heaptids[0] = *tid;
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(bs->tmpCtx);

	bs->indtuples++;
	if (((int64) bs->indtuples) % 256 == 0)
		pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64) bs->indtuples);

	/* values plus the graph to come: about 2m + 2 links of 4 bytes each */
	if (!bs->flushed &&
		MemoryContextMemAllocated(bs->graphCtx, true) +
		(Size) bs->nelems * (2 * bs->m + 2) * (sizeof(int32) + 4) > bs->memLimit)
	{
		ereport(NOTICE,
				(errmsg("hnsw graph no longer fits into maintenance_work_mem after %.0f tuples",
						bs->indtuples),
				 errdetail("Building will take significantly longer."),
				 errhint("Increase maintenance_work_mem to speed up builds.")));
		BuildGraph(bs);
		WriteGraph(bs);
		bs->flushed = true;
		pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, HNSW_PHASE_LOAD);
		MemoryContextReset(bs->graphCtx);
		bs->elems = NULL;
		bs->tags = NULL;
	}
}

/*
 * Writes the graph a parallel build left in shared memory.  The elements
 * point into the segment, which stays mapped until HnswParallelEnd.
 */
static void
WriteParallelGraph(HnswBuildState *bs, HnswParallelBuild *pb)
{
	HnswParallelResult *res = HnswParallelGetResult(pb);
	int			i;

	bs->nelems = res->nelems;
	bs->capelems = Max(res->nelems, 1);
	bs->elems = MemoryContextAllocHuge(bs->graphCtx, sizeof(BuildElement) * bs->capelems);
	for (i = 0; i < res->nelems; i++)
	{
		BuildElement *e = &bs->elems[i];

		memset(e, 0, sizeof(BuildElement));
		HnswParallelGetElement(pb, i, &e->value, &e->neighbors, &e->level, &e->ntids,
							   e->heaptids);
	}
	bs->entry = res->entry;
	bs->dims = res->dims;
	bs->support.maxNormSq = res->maxNormSq;
	bs->indtuples = res->indtuples;
	WriteGraph(bs);
}

/* ambuild: builds the index from the heap's contents. */
IndexBuildResult *
hnswbuild(Relation heap, Relation index, IndexInfo *indexInfo)
{
	HnswBuildState bs;
	IndexBuildResult *result;
	double		reltuples = 0;
	int			nworkers;
	bool		built = false;

	if (RelationGetNumberOfBlocks(index) != 0)
		elog(ERROR, "index \"%s\" already contains data", RelationGetRelationName(index));

	memset(&bs, 0, sizeof(bs));
	bs.heap = heap;
	bs.index = index;
	bs.m = HnswGetM(index);
	bs.efConstruction = HnswGetEfConstruction(index);
	bs.dims = -1;
	bs.entry = -1;
	bs.memLimit = (Size) maintenance_work_mem * 1024;
	HnswInitSupport(index, &bs.support, true);
	bs.graphCtx = AllocSetContextCreate(CurrentMemoryContext, "hnsw build graph",
										ALLOCSET_DEFAULT_SIZES);
	bs.tmpCtx = AllocSetContextCreate(CurrentMemoryContext, "hnsw build tuple",
									  ALLOCSET_DEFAULT_SIZES);
	bs.capelems = 1024;
	bs.elems = MemoryContextAlloc(bs.graphCtx, sizeof(BuildElement) * bs.capelems);
	bs.tags = MemoryContextAllocZero(bs.graphCtx, sizeof(uint32) * bs.capelems);
	HnswHeapInit(&bs.cand, 1024);
	HnswHeapInit(&bs.result, 1024);

	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, HNSW_PHASE_LOAD);
	if (heap->rd_rel->reltuples > 0)
		pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL,
									 (int64) heap->rd_rel->reltuples);

	nworkers = HnswParallelWorkers(heap, index, indexInfo);
	if (nworkers > 0)
	{
		HnswParallelBuild *pb = HnswParallelBuildGraph(heap, index, indexInfo, nworkers);

		if (HnswParallelGetResult(pb)->ok)
		{
			reltuples = HnswParallelGetResult(pb)->reltuples;
			WriteParallelGraph(&bs, pb);
			built = true;
		}
		HnswParallelEnd(pb);
		if (!built)
		{
			/* the shared arena filled up: start over, serially */
			MemoryContextReset(bs.graphCtx);
			bs.capelems = 1024;
			bs.elems = MemoryContextAlloc(bs.graphCtx, sizeof(BuildElement) * bs.capelems);
			bs.tags = MemoryContextAllocZero(bs.graphCtx, sizeof(uint32) * bs.capelems);
			pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, HNSW_PHASE_LOAD);
			pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, 0);
		}
	}

	if (!built)
	{
		reltuples = table_index_build_scan(heap, index, indexInfo, true, true,
										   BuildCallback, &bs, NULL);
		pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64) bs.indtuples);

		if (!bs.flushed)
		{
			BuildGraph(&bs);
			WriteGraph(&bs);
		}
	}

	MemoryContextDelete(bs.graphCtx);
	MemoryContextDelete(bs.tmpCtx);

	result = palloc(sizeof(IndexBuildResult));
	result->heap_tuples = reltuples;
	result->index_tuples = bs.indtuples;
	return result;
}

/* ambuildempty: writes the metapage of the init fork of an unlogged index. */
void
hnswbuildempty(Relation index)
{
	Page		page = (Page) palloc(BLCKSZ);

	HnswInitMetaPage(page, HnswGetM(index), HnswGetEfConstruction(index));
	PageSetChecksumInplace(page, HNSW_METAPAGE_BLKNO);
	smgrwrite(RelationGetSmgr(index), INIT_FORKNUM, HNSW_METAPAGE_BLKNO, (char *) page, true);
	log_newpage(&(RelationGetSmgr(index))->smgr_rnode.node, INIT_FORKNUM,
				HNSW_METAPAGE_BLKNO, page, true);
	smgrimmedsync(RelationGetSmgr(index), INIT_FORKNUM);
}
