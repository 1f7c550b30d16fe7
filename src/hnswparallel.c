/*
 * hnswparallel.c
 *	  Parallel HNSW build: the leader and its workers link one shared
 *	  in-memory graph, which the leader then writes as a serial build does.
 *
 * PostgreSQL 15 starts parallel index-build workers only for btree, so the
 * AM creates its own parallel context (entry point HnswParallelBuildMain in
 * this library).  One DSM segment holds a HnswShared header, the parallel
 * heap scan descriptor and an arena sized from maintenance_work_mem (less
 * when the table is known to need less).  Elements grow from the front of
 * the arena as a dense array; values and neighbour lists grow from its end.
 * Everything refers to elements by number and to values and lists by arena
 * offset, since the segment maps at a different address in every process.
 *
 * The build runs in two launches of the same context:
 *
 *  1. load: every participant (workers and the leader) runs
 *	   table_index_build_scan over a parallel heap scan and appends its
 *	   tuples' values to the arena (one spinlock per tuple).  If the arena
 *	   fills, the rest is ignored and the caller falls back to the serial
 *	   build (which raises the usual NOTICE and inserts the overflow on disk).
 *  2. link: the leader alone sorts the elements by heap TID (heap order, as
 *	   the serial build), fixes the inner-product norm bound, draws levels
 *	   and allocates neighbour lists; then every participant takes the next
 *	   element number from an atomic counter and inserts it.
 *
 * Locking in phase 2: each element has an LWLock guarding its neighbour
 * lists and its TIDs.  A search copies a list under a share lock; a back
 * link (and its pruning) runs under the neighbour's exclusive lock.  No
 * process holds two element locks at once.  An element's own lists are all
 * written before the first back link makes it visible, so nobody reads or
 * changes them meanwhile.  The entry point has its own LWLock: an element
 * whose level is above the entry's holds it exclusively for its whole
 * insert (rare: about log_m(n) times), everyone else reads it shared.
 * Values and levels never change in phase 2.
 *
 * Progress: participants count scanned and linked tuples in shared atomics;
 * the leader reports them as tuples_done while it works.
 */
#include "hnsw.h"

#include <math.h>

#include "access/parallel.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_type.h"
#include "commands/progress.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "optimizer/paths.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "portability/instr_time.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#define HNSW_PKEY_SHARED		UINT64CONST(0x564E580000000001)
#define HNSW_PKEY_ARENA			UINT64CONST(0x564E580000000002)
#define HNSW_PKEY_BUFFER_USAGE	UINT64CONST(0x564E580000000003)
#define HNSW_PKEY_WAL_USAGE		UINT64CONST(0x564E580000000004)

#define HNSW_PHASE_SCAN		1
#define HNSW_PHASE_LINK		2

/* An element of the shared graph */
typedef struct HnswSharedElement
{
	LWLock		lock;			/* guards the lists and heaptids in phase 2 */
	uint64		valueoff;		/* arena offset of the value */
	uint64		neighborsoff;	/* arena offset of the lists */
	uint8		level;
	uint8		ntids;			/* 0: merged into an identical element */
	ItemPointerData heaptids[HNSW_HEAPTIDS];
} HnswSharedElement;

/* The header of the segment */
typedef struct HnswShared
{
	/* set up by the leader before each launch */
	Oid			heaprelid;
	Oid			indexrelid;
	bool		isconcurrent;
	int			phase;
	int			trancheId;
	Size		arenasize;
	double		maxNormSq;
	int			nelems;			/* phase 2: the number of elements */

	/* phase 1, under mutex */
	slock_t		mutex;
	int			nloaded;
	Size		tailbytes;		/* used from the end of the arena */
	int			dims;
	bool		full;
	double		reltuples;		/* heap tuples seen by all participants */

	pg_atomic_uint64 nscanned;	/* indexable tuples seen */

	/* phase 2 */
	pg_atomic_uint32 next;		/* next element to link */
	pg_atomic_uint64 nlinked;
	pg_atomic_uint64 nlinkedByWorkers;
	LWLock		entryLock;
	int32		entry;

	/* the parallel heap scan descriptor follows, BUFFERALIGNed */
} HnswShared;

#define HnswSharedScan(sh) \
	((ParallelTableScanDesc) ((char *) (sh) + BUFFERALIGN(sizeof(HnswShared))))

/* One participant's state */
typedef struct HnswParticipant
{
	HnswShared *shared;
	char	   *arena;
	HnswSharedElement *elems;
	Relation	heap;
	Relation	index;
	HnswSupport support;
	int			m;
	int			efConstruction;
	bool		leader;
	MemoryContext tmpCtx;

	/* phase 2 search state */
	uint32	   *tags;
	uint32		epoch;
	HnswHeap	cand;
	HnswHeap	result;
} HnswParticipant;

/* What the leader keeps between HnswParallelBuildGraph and HnswParallelEnd */
struct HnswParallelBuild
{
	ParallelContext *pcxt;
	Snapshot	snapshot;
	HnswShared *shared;
	char	   *arena;
	BufferUsage *bufferusage;
	WalUsage   *walusage;
	HnswParallelResult result;
};

static int	hnsw_tranche_id = 0;

#define ElemValue(p, e)		((p)->arena + (p)->elems[e].valueoff)
#define ElemNeighbors(p, e)	((int32 *) ((p)->arena + (p)->elems[e].neighborsoff))

static inline float
PDistance(HnswParticipant *p, const char *query, int e)
{
	return HnswDistance(&p->support, query, ElemValue(p, e));
}

/* Called for every heap tuple a participant's share of the scan returns. */
static void
ParallelScanCallback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
					 bool tupleIsAlive, void *state)
{
	HnswParticipant *p = (HnswParticipant *) state;
	volatile HnswShared *sh = p->shared;
	MemoryContext old;
	char	   *value;
	bool		ok;
	int			dims,
				expected;
	int			idx = -1;
	Size		need,
				off = 0;
	uint64		n;

	if (isnull[0] || sh->full)
		return;
	old = MemoryContextSwitchTo(p->tmpCtx);
	value = HnswFormValue(&p->support, values[0], &ok);
	if (!ok)
	{
		MemoryContextSwitchTo(old);
		MemoryContextReset(p->tmpCtx);
		return;
	}
	dims = HnswValueDims(&p->support, value);
	if (HnswElementSize(p->m, 0, VARSIZE(value)) > HNSW_MAX_TUPLE_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value too large for hnsw index \"%s\"", RelationGetRelationName(index)),
				 errdetail("An element needs %zu bytes, and at most %zu fit on a page.",
						   HnswElementSize(p->m, 0, VARSIZE(value)), (Size) HNSW_MAX_TUPLE_SIZE),
				 errhint("Index fewer dimensions, or use a smaller m.")));

	need = MAXALIGN(VARSIZE(value));
	SpinLockAcquire(&sh->mutex);
	if (sh->dims < 0)
		sh->dims = dims;
	expected = sh->dims;
	if (expected == dims && !sh->full)
	{
		Size		front = (Size) (sh->nloaded + 1) * sizeof(HnswSharedElement);
		Size		reserve = (Size) (sh->nloaded + 1) * (2 * p->m + 2) * sizeof(int32);

		if (front + reserve + sh->tailbytes + need <= sh->arenasize)
		{
			idx = sh->nloaded++;
			sh->tailbytes += need;
			off = sh->arenasize - sh->tailbytes;
		}
		else
			sh->full = true;
	}
	SpinLockRelease(&sh->mutex);
	if (expected != dims)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d dimensions, not %d", expected, dims)));

	if (idx >= 0)
	{
		HnswSharedElement *e = &p->elems[idx];

		memset(e, 0, sizeof(HnswSharedElement));
		e->valueoff = off;
		memcpy(p->arena + off, value, VARSIZE(value));
		e->ntids = 1;
		e->heaptids[0] = *tid;
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(p->tmpCtx);

	n = pg_atomic_add_fetch_u64(&p->shared->nscanned, 1);
	if (p->leader && (n & 255) == 0)
		pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64) n);
}

/* Phase 1 for one participant: its share of the parallel heap scan. */
static void
ParallelScan(HnswParticipant *p, IndexInfo *indexInfo)
{
	TableScanDesc scan = table_beginscan_parallel(p->heap, HnswSharedScan(p->shared));
	double		reltuples;

	reltuples = table_index_build_scan(p->heap, p->index, indexInfo, true, p->leader,
									   ParallelScanCallback, p, scan);
	SpinLockAcquire(&p->shared->mutex);
	p->shared->reltuples += reltuples;
	SpinLockRelease(&p->shared->mutex);
}

/*
 * Searches level lc of the shared graph from the given entries with beam
 * ef, copying each expanded list under its element's share lock.  Leaves
 * the best ef elements in p->result (a max-heap on -distance).
 */
static void
SearchLayerShared(HnswParticipant *p, const char *query, int *entries, int nentries,
				  int ef, int lc)
{
	int			start = HNSW_LAYER_START(p->m, lc);
	int			cap = HNSW_LAYER_CAPACITY(p->m, lc);
	int32		nb[2 * HNSW_MAX_M];
	int			i;

	if (++p->epoch == 0)
	{
		memset(p->tags, 0, sizeof(uint32) * p->shared->nelems);
		p->epoch = 1;
	}
	p->cand.n = 0;
	p->result.n = 0;
	for (i = 0; i < nentries; i++)
	{
		int			e = entries[i];
		float		d;

		if (p->tags[e] == p->epoch)
			continue;
		p->tags[e] = p->epoch;
		d = PDistance(p, query, e);
		HnswHeapPush(&p->cand, d, e);
		HnswHeapPush(&p->result, -d, e);
	}
	while (p->result.n > ef)
		HnswHeapPop(&p->result);

	while (p->cand.n > 0)
	{
		HnswHeapEntry c = HnswHeapTop(&p->cand);
		LWLock	   *lock = &p->elems[c.idx].lock;
		int			j;

		if (p->result.n >= ef && c.key > -HnswHeapTop(&p->result).key)
			break;
		HnswHeapPop(&p->cand);
		LWLockAcquire(lock, LW_SHARED);
		memcpy(nb, ElemNeighbors(p, c.idx) + start, sizeof(int32) * cap);
		LWLockRelease(lock);
		for (j = 0; j < cap && nb[j] >= 0; j++)
			if (p->tags[nb[j]] != p->epoch)
				__builtin_prefetch(ElemValue(p, nb[j]));
		for (j = 0; j < cap && nb[j] >= 0; j++)
		{
			int			n = nb[j];
			float		d;

			if (p->tags[n] == p->epoch)
				continue;
			p->tags[n] = p->epoch;
			d = PDistance(p, query, n);
			if (p->result.n < ef || d < -HnswHeapTop(&p->result).key)
			{
				HnswHeapPush(&p->cand, d, n);
				HnswHeapPush(&p->result, -d, n);
				if (p->result.n > ef)
					HnswHeapPop(&p->result);
			}
		}
	}
}

/*
 * Links e into n's list on level lc under n's exclusive lock, pruning the
 * list with the heuristic when it is full; with force, e replaces n's
 * farthest neighbour instead.  Returns true if e is in the list afterwards.
 */
static bool
AddLinkShared(HnswParticipant *p, int n, int e, int lc, float dist, bool force)
{
	LWLock	   *lock = &p->elems[n].lock;
	int32	   *list = ElemNeighbors(p, n) + HNSW_LAYER_START(p->m, lc);
	int			cap = HNSW_LAYER_CAPACITY(p->m, lc);
	char	   *nvalue = ElemValue(p, n);
	char	   *values[2 * HNSW_MAX_M + 1];
	float		dists[2 * HNSW_MAX_M + 1];
	int32		ids[2 * HNSW_MAX_M + 1];
	int			count = 0;
	int		   *sel;
	int			nsel,
				i;
	bool		kept = false;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	while (count < cap && list[count] >= 0)
		count++;
	for (i = 0; i < count; i++)
		if (list[i] == e)
		{
			LWLockRelease(lock);
			return true;
		}
	if (count < cap)
	{
		list[count] = e;
		LWLockRelease(lock);
		return true;
	}
	for (i = 0; i < cap; i++)
	{
		ids[i] = list[i];
		values[i] = ElemValue(p, list[i]);
		dists[i] = HnswDistance(&p->support, nvalue, values[i]);
	}
	if (force)
	{
		list[HnswFarthest(dists, cap)] = e;
		LWLockRelease(lock);
		return true;
	}
	ids[cap] = e;
	values[cap] = ElemValue(p, e);
	dists[cap] = dist;
	sel = HnswSelectNeighbors(&p->support, values, dists, cap + 1, cap, false, &nsel);
	for (i = 0; i < cap; i++)
	{
		list[i] = i < nsel ? ids[sel[i]] : -1;
		if (i < nsel && sel[i] == cap)
			kept = true;
	}
	LWLockRelease(lock);
	return kept;
}

/*
 * Inserts element q into the shared graph, or merges its heap TID into an
 * element holding the same value.  Mirrors InsertMem of hnswbuild.c, with
 * q's own lists written before any back link makes q visible.
 */
static void
InsertShared(HnswParticipant *p, int q)
{
	HnswShared *sh = p->shared;
	HnswSharedElement *qe = &p->elems[q];
	char	   *value = ElemValue(p, q);
	int32	   *qlists = ElemNeighbors(p, q);
	int			m = p->m;
	int			level = qe->level;
	bool		holdEntry = false;
	int			entry,
				entryLevel,
				top,
				lc,
				i,
				cur;
	int		   *found[HNSW_MAX_LEVEL + 1];
	float	   *founddist[HNSW_MAX_LEVEL + 1];
	int			nfound[HNSW_MAX_LEVEL + 1];
	int		   *sel[HNSW_MAX_LEVEL + 1];
	int			nsel[HNSW_MAX_LEVEL + 1];

	LWLockAcquire(&sh->entryLock, LW_SHARED);
	entry = sh->entry;
	if (entry < 0 || level > p->elems[entry].level)
	{
		LWLockRelease(&sh->entryLock);
		LWLockAcquire(&sh->entryLock, LW_EXCLUSIVE);
		entry = sh->entry;
		holdEntry = (entry < 0 || level > p->elems[entry].level);
	}
	if (entry < 0)
	{
		sh->entry = q;
		LWLockRelease(&sh->entryLock);
		return;
	}
	if (!holdEntry)
		LWLockRelease(&sh->entryLock);

	entryLevel = p->elems[entry].level;
	cur = entry;
	for (lc = entryLevel; lc > level; lc--)
	{
		SearchLayerShared(p, value, &cur, 1, 1, lc);
		cur = HnswHeapTop(&p->result).idx;
	}
	top = Min(level, entryLevel);
	for (lc = top; lc >= 0; lc--)
	{
		int			n;

		if (lc == top)
			SearchLayerShared(p, value, &cur, 1, p->efConstruction, lc);
		else
			SearchLayerShared(p, value, found[lc + 1], nfound[lc + 1], p->efConstruction, lc);
		n = p->result.n;
		found[lc] = palloc(sizeof(int) * Max(n, 1));
		founddist[lc] = palloc(sizeof(float) * Max(n, 1));
		for (i = 0; i < n; i++)
		{
			found[lc][i] = p->result.a[i].idx;
			founddist[lc][i] = -p->result.a[i].key;
		}
		nfound[lc] = n;
	}

	/* an identical value takes the heap TID; q stays out of the graph */
	for (i = 0; i < nfound[0]; i++)
	{
		int			f = found[0][i];
		char	   *fv = ElemValue(p, f);
		bool		merged = false;

		if (VARSIZE(fv) != VARSIZE(value) || memcmp(fv, value, VARSIZE(value)) != 0)
			continue;
		LWLockAcquire(&p->elems[f].lock, LW_EXCLUSIVE);
		if (p->elems[f].ntids < HNSW_HEAPTIDS)
		{
			p->elems[f].heaptids[p->elems[f].ntids++] = qe->heaptids[0];
			merged = true;
		}
		LWLockRelease(&p->elems[f].lock);
		if (merged)
		{
			qe->ntids = 0;
			if (holdEntry)
				LWLockRelease(&sh->entryLock);
			return;
		}
	}

	/* q's own lists, complete before anyone can reach q */
	for (lc = top; lc >= 0; lc--)
	{
		int			n = nfound[lc];
		char	  **values = palloc(sizeof(char *) * Max(n, 1));

		for (i = 0; i < n; i++)
			values[i] = ElemValue(p, found[lc][i]);
		sel[lc] = HnswSelectNeighbors(&p->support, values, founddist[lc], n,
									  HNSW_LAYER_CAPACITY(m, lc), false, &nsel[lc]);
		for (i = 0; i < nsel[lc]; i++)
			qlists[HNSW_LAYER_START(m, lc) + i] = found[lc][sel[lc][i]];
	}

	/* back links, top level first as the serial build */
	for (lc = top; lc >= 0; lc--)
	{
		bool		linked = false;

		for (i = 0; i < nsel[lc]; i++)
			if (AddLinkShared(p, found[lc][sel[lc][i]], q, lc, founddist[lc][sel[lc][i]], false))
				linked = true;
		/* nobody kept a link: the nearest neighbour must, or q is unreachable */
		if (!linked && nsel[lc] > 0)
			AddLinkShared(p, found[lc][sel[lc][0]], q, lc, founddist[lc][sel[lc][0]], true);
	}

	if (holdEntry)
	{
		sh->entry = q;
		LWLockRelease(&sh->entryLock);
	}
}

/* Phase 2 for one participant: links elements until none is left. */
static void
ParallelLink(HnswParticipant *p)
{
	HnswShared *sh = p->shared;
	int			nelems = sh->nelems;

	p->tags = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint32) * Max(nelems, 1));
	memset(p->tags, 0, sizeof(uint32) * Max(nelems, 1));
	p->epoch = 0;
	HnswHeapInit(&p->cand, 1024);
	HnswHeapInit(&p->result, 1024);
	for (;;)
	{
		uint32		q = pg_atomic_fetch_add_u32(&sh->next, 1);
		MemoryContext old;
		uint64		done;

		if (q >= (uint32) nelems)
			break;
		old = MemoryContextSwitchTo(p->tmpCtx);
		InsertShared(p, (int) q);
		MemoryContextSwitchTo(old);
		MemoryContextReset(p->tmpCtx);
		done = pg_atomic_add_fetch_u64(&sh->nlinked, 1);
		if (!p->leader)
			pg_atomic_fetch_add_u64(&sh->nlinkedByWorkers, 1);
		else if ((done & 255) == 0)
			pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64) done);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Sets up a participant's state over the mapped segment. */
static void
InitParticipant(HnswParticipant *p, HnswShared *sh, char *arena, Relation heap,
				Relation index, bool leader)
{
	memset(p, 0, sizeof(HnswParticipant));
	p->shared = sh;
	p->arena = arena;
	p->elems = (HnswSharedElement *) arena;
	p->heap = heap;
	p->index = index;
	p->m = HnswGetM(index);
	p->efConstruction = HnswGetEfConstruction(index);
	p->leader = leader;
	HnswInitSupport(index, &p->support, true);
	p->support.maxNormSq = sh->maxNormSq;
	p->tmpCtx = AllocSetContextCreate(CurrentMemoryContext, "hnsw parallel build tuple",
									  ALLOCSET_DEFAULT_SIZES);
}

/* Entry point of a parallel worker (named in CreateParallelContext). */
PGDLLEXPORT void HnswParallelBuildMain(dsm_segment *seg, shm_toc *toc);

void
HnswParallelBuildMain(dsm_segment *seg, shm_toc *toc)
{
	HnswShared *sh = shm_toc_lookup(toc, HNSW_PKEY_SHARED, false);
	char	   *arena = shm_toc_lookup(toc, HNSW_PKEY_ARENA, false);
	BufferUsage *bufferusage = shm_toc_lookup(toc, HNSW_PKEY_BUFFER_USAGE, false);
	WalUsage   *walusage = shm_toc_lookup(toc, HNSW_PKEY_WAL_USAGE, false);
	LOCKMODE	heapLockmode = sh->isconcurrent ? ShareUpdateExclusiveLock : ShareLock;
	Relation	heap,
				index;
	HnswParticipant p;

	LWLockRegisterTranche(sh->trancheId, "vectron_hnsw_build");
	heap = table_open(sh->heaprelid, heapLockmode);
	index = index_open(sh->indexrelid, RowExclusiveLock);
	InitParticipant(&p, sh, arena, heap, index, false);

	InstrStartParallelQuery();
	if (sh->phase == HNSW_PHASE_SCAN)
	{
		IndexInfo  *indexInfo = BuildIndexInfo(index);

		indexInfo->ii_Concurrent = sh->isconcurrent;
		ParallelScan(&p, indexInfo);
	}
	else
		ParallelLink(&p);
	InstrEndParallelQuery(&bufferusage[ParallelWorkerNumber],
						  &walusage[ParallelWorkerNumber]);

	index_close(index, RowExclusiveLock);
	table_close(heap, heapLockmode);
}

/*
 * The number of workers to ask for.  plan_create_index_workers() judges by
 * the main fork, where a TOASTed vector takes a few bytes (a 60k x 784
 * table is 3 MB there and 240 MB in TOAST), so when it says 0 for a plain
 * column of a permanent table, the TOAST relation's size counts too, with
 * the same thresholds (min_parallel_table_scan_size, tripling per worker).
 */
int
HnswParallelWorkers(Relation heap, Relation index, IndexInfo *indexInfo)
{
	int			nworkers;
	BlockNumber pages;
	double		threshold;

	if (max_parallel_maintenance_workers <= 0 || !IsUnderPostmaster)
		return 0;
	nworkers = plan_create_index_workers(RelationGetRelid(heap), RelationGetRelid(index));
	if (nworkers > 0)
		return nworkers;

	if (heap->rd_rel->relpersistence == RELPERSISTENCE_TEMP ||
		indexInfo->ii_Expressions != NIL || indexInfo->ii_Predicate != NIL ||
		!OidIsValid(heap->rd_rel->reltoastrelid) ||
		RelationGetParallelWorkers(heap, -1) >= 0)
		return 0;
	pages = RelationGetNumberOfBlocks(heap);
	{
		Relation	toast = table_open(heap->rd_rel->reltoastrelid, AccessShareLock);

		pages += RelationGetNumberOfBlocks(toast);
		table_close(toast, AccessShareLock);
	}
	threshold = Max(min_parallel_table_scan_size, 1);
	nworkers = 0;
	while (pages >= threshold * 3 && nworkers < max_parallel_maintenance_workers)
	{
		nworkers++;
		threshold *= 3;
	}
	if (nworkers == 0 && pages >= threshold)
		nworkers = 1;
	return Min(nworkers, max_parallel_maintenance_workers);
}

/*
 * The arena size: maintenance_work_mem, or less when the statistics and the
 * column's declared dimensions show the table needs less (with a margin:
 * too small an arena only means the serial build instead).
 */
static Size
ArenaSize(Relation heap, Relation index, int m)
{
	Size		limit = (Size) maintenance_work_mem * 1024;
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(index), 0);
	BlockNumber relpages = heap->rd_rel->relpages;
	double		reltuples = heap->rd_rel->reltuples;
	double		tuples;
	Size		value;
	double		need;

	if (att->atttypmod <= 0 || relpages == 0 || reltuples <= 0)
		return limit;
	if (att->atttypid == BITOID || att->atttypid == VARBITOID)
		value = VARHDRSZ + sizeof(int32) + (att->atttypmod + 7) / 8;
	else
		value = 8 + sizeof(float4) * (Size) att->atttypmod;
	tuples = reltuples / relpages * Max(RelationGetNumberOfBlocks(heap), relpages);
	need = (tuples * 1.25 + 1000) *
		(sizeof(HnswSharedElement) + MAXALIGN(value) + (2 * m + 4) * sizeof(int32)) +
		(1 << 20);
	return need < (double) limit ? (Size) need : limit;
}

/* Orders elements by their heap TID. */
static int
CompareByTid(const void *a, const void *b)
{
	return ItemPointerCompare((ItemPointer) ((const HnswSharedElement *) a)->heaptids,
							  (ItemPointer) ((const HnswSharedElement *) b)->heaptids);
}

/*
 * Between the phases, in the leader alone: heap order, the inner-product
 * norm bound, levels and neighbour lists.  Returns false if the lists do
 * not fit in the arena.
 */
static bool
PrepareLink(HnswParticipant *p)
{
	HnswShared *sh = p->shared;
	int			n = sh->nloaded;
	int			i;

	qsort(p->elems, n, sizeof(HnswSharedElement), CompareByTid);
	sh->maxNormSq = 0;
	if (p->support.kind == HNSW_KIND_MIPS)
	{
		for (i = 0; i < n; i++)
			sh->maxNormSq = Max(sh->maxNormSq, HnswValueNormSq(ElemValue(p, i)));
		p->support.maxNormSq = sh->maxNormSq;
	}
	for (i = 0; i < n; i++)
	{
		HnswSharedElement *e = &p->elems[i];
		int			level = HnswRandomLevel(p->m, VARSIZE(ElemValue(p, i)));
		Size		sz = sizeof(int32) * HNSW_NEIGHBOR_SLOTS(p->m, level);

		if ((Size) n * sizeof(HnswSharedElement) + sh->tailbytes + sz > sh->arenasize)
			return false;
		sh->tailbytes += sz;
		e->neighborsoff = sh->arenasize - sh->tailbytes;
		e->level = level;
		memset(p->arena + e->neighborsoff, -1, sz);
		LWLockInitialize(&e->lock, sh->trancheId);
	}
	sh->nelems = n;
	sh->entry = -1;
	LWLockInitialize(&sh->entryLock, sh->trancheId);
	pg_atomic_init_u32(&sh->next, 0);
	pg_atomic_init_u64(&sh->nlinked, 0);
	pg_atomic_init_u64(&sh->nlinkedByWorkers, 0);
	return true;
}

/* Launches the workers for the current phase. */
static int
Launch(HnswParallelBuild *pb, bool again)
{
	if (again)
		ReinitializeParallelDSM(pb->pcxt);
	LaunchParallelWorkers(pb->pcxt);
	/* a worker that fails to start must not leave us waiting forever */
	WaitForParallelWorkersToAttach(pb->pcxt);
	return pb->pcxt->nworkers_launched;
}

/* Waits for the phase's workers and adds their buffer and WAL usage. */
static void
WaitPhase(HnswParallelBuild *pb)
{
	int			i;

	WaitForParallelWorkersToFinish(pb->pcxt);
	for (i = 0; i < pb->pcxt->nworkers_launched; i++)
		InstrAccumParallelQuery(&pb->bufferusage[i], &pb->walusage[i]);
}

/*
 * Builds the graph with nworkers workers plus the leader.  On return the
 * graph sits in the segment (read it with HnswParallelGetElement) until
 * HnswParallelEnd; result.ok is false if the arena filled up, in which case
 * nothing was built and the caller builds serially.
 */
HnswParallelBuild *
HnswParallelBuildGraph(Relation heap, Relation index, IndexInfo *indexInfo, int nworkers)
{
	HnswParallelBuild *pb = palloc0(sizeof(HnswParallelBuild));
	ParallelContext *pcxt;
	Size		estshared,
				arenasize;
	HnswShared *sh;
	HnswParticipant p;
	int			launched1,
				launched2;
	int			m = HnswGetM(index);
	instr_time	t0,
				t1,
				t2;

	INSTR_TIME_SET_CURRENT(t0);
	if (hnsw_tranche_id == 0)
		hnsw_tranche_id = LWLockNewTrancheId();
	LWLockRegisterTranche(hnsw_tranche_id, "vectron_hnsw_build");

	EnterParallelMode();
	pcxt = CreateParallelContext("vectron", "HnswParallelBuildMain", nworkers);
	pb->pcxt = pcxt;
	pb->snapshot = indexInfo->ii_Concurrent ?
		RegisterSnapshot(GetTransactionSnapshot()) : SnapshotAny;

	estshared = BUFFERALIGN(sizeof(HnswShared)) + table_parallelscan_estimate(heap, pb->snapshot);
	arenasize = MAXALIGN_DOWN(ArenaSize(heap, index, m));
	shm_toc_estimate_chunk(&pcxt->estimator, estshared);
	shm_toc_estimate_chunk(&pcxt->estimator, arenasize);
	shm_toc_estimate_chunk(&pcxt->estimator, mul_size(sizeof(BufferUsage), pcxt->nworkers));
	shm_toc_estimate_chunk(&pcxt->estimator, mul_size(sizeof(WalUsage), pcxt->nworkers));
	shm_toc_estimate_keys(&pcxt->estimator, 4);
	InitializeParallelDSM(pcxt);

	sh = shm_toc_allocate(pcxt->toc, estshared);
	memset(sh, 0, sizeof(HnswShared));
	sh->heaprelid = RelationGetRelid(heap);
	sh->indexrelid = RelationGetRelid(index);
	sh->isconcurrent = indexInfo->ii_Concurrent;
	sh->phase = HNSW_PHASE_SCAN;
	sh->trancheId = hnsw_tranche_id;
	sh->arenasize = arenasize;
	sh->dims = -1;
	sh->entry = -1;
	SpinLockInit(&sh->mutex);
	pg_atomic_init_u64(&sh->nscanned, 0);
	table_parallelscan_initialize(heap, HnswSharedScan(sh), pb->snapshot);
	pb->shared = sh;
	pb->arena = shm_toc_allocate(pcxt->toc, arenasize);
	pb->bufferusage = shm_toc_allocate(pcxt->toc, mul_size(sizeof(BufferUsage), pcxt->nworkers));
	pb->walusage = shm_toc_allocate(pcxt->toc, mul_size(sizeof(WalUsage), pcxt->nworkers));
	shm_toc_insert(pcxt->toc, HNSW_PKEY_SHARED, sh);
	shm_toc_insert(pcxt->toc, HNSW_PKEY_ARENA, pb->arena);
	shm_toc_insert(pcxt->toc, HNSW_PKEY_BUFFER_USAGE, pb->bufferusage);
	shm_toc_insert(pcxt->toc, HNSW_PKEY_WAL_USAGE, pb->walusage);

	/* phase 1: load */
	launched1 = Launch(pb, false);
	InitParticipant(&p, sh, pb->arena, heap, index, true);
	ParallelScan(&p, indexInfo);
	WaitPhase(pb);
	pb->result.reltuples = sh->reltuples;
	pb->result.indtuples = (double) pg_atomic_read_u64(&sh->nscanned);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64) pb->result.indtuples);
	if (sh->full || !PrepareLink(&p))
	{
		elog(DEBUG1, "hnsw build: the %zu-byte shared arena is full after %d tuples; building serially",
			 arenasize, sh->nloaded);
		pb->result.ok = false;
		return pb;
	}

	/* phase 2: link; the total is now known even without statistics */
	INSTR_TIME_SET_CURRENT(t1);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL, (int64) sh->nelems);
	sh->phase = HNSW_PHASE_LINK;
	launched2 = pcxt->nworkers > 0 ? Launch(pb, true) : 0;
	ParallelLink(&p);
	WaitPhase(pb);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE,
								 (int64) pg_atomic_read_u64(&sh->nlinked));

	INSTR_TIME_SET_CURRENT(t2);
	elog(DEBUG1, "hnsw build: %d parallel workers launched to load and %d to link (%d requested); workers linked %llu of %d elements",
		 launched1, launched2, nworkers,
		 (unsigned long long) pg_atomic_read_u64(&sh->nlinkedByWorkers), sh->nelems);
	INSTR_TIME_SUBTRACT(t2, t1);
	INSTR_TIME_SUBTRACT(t1, t0);
	elog(DEBUG1, "hnsw build: loading took %.3f s, linking %.3f s (arena %zu bytes, %zu used)",
		 INSTR_TIME_GET_DOUBLE(t1), INSTR_TIME_GET_DOUBLE(t2), arenasize,
		 (Size) sh->nelems * sizeof(HnswSharedElement) + sh->tailbytes);

	pb->result.ok = true;
	pb->result.nelems = sh->nelems;
	pb->result.entry = sh->entry;
	pb->result.dims = sh->dims;
	pb->result.maxNormSq = sh->maxNormSq;
	pb->result.nworkersLaunched = Max(launched1, launched2);
	return pb;
}

/* The result of a parallel build. */
HnswParallelResult *
HnswParallelGetResult(HnswParallelBuild *pb)
{
	return &pb->result;
}

/* Element i of the built graph; *neighbors is NULL for a merged one. */
void
HnswParallelGetElement(HnswParallelBuild *pb, int i, char **value, int32 **neighbors,
					   uint8 *level, uint8 *ntids, ItemPointerData *heaptids)
{
	HnswSharedElement *e = &((HnswSharedElement *) pb->arena)[i];

	*value = pb->arena + e->valueoff;
	*neighbors = e->ntids > 0 ? (int32 *) (pb->arena + e->neighborsoff) : NULL;
	*level = e->level;
	*ntids = e->ntids;
	memcpy(heaptids, e->heaptids, sizeof(ItemPointerData) * HNSW_HEAPTIDS);
}

/* Ends parallel mode and frees the segment. */
void
HnswParallelEnd(HnswParallelBuild *pb)
{
	if (IsMVCCSnapshot(pb->snapshot))
		UnregisterSnapshot(pb->snapshot);
	DestroyParallelContext(pb->pcxt);
	ExitParallelMode();
	pfree(pb);
}
