/*
 * hnswscan.c
 *	  Index scans: ORDER BY value <op> query, nearest first.
 *
 * The first call to amgettuple descends from the entry point and runs the
 * level-0 beam search with ef = hnsw.ef_search, then hands out the heap
 * TIDs of the results, nearest first.  With hnsw.iterative_scan on, the
 * search resumes when they run out: the elements it had pushed out of its
 * beam become results and candidates again, and another round of width
 * ef_search runs, until hnsw.max_scan_tuples distances were computed or
 * the memory bound (work_mem * hnsw.scan_mem_multiplier) is reached.
 * strict_order drops rows nearer than one already returned; relaxed_order
 * returns them.
 */
#include "hnsw.h"

#include "access/relscan.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/rel.h"

typedef struct HnswScanOpaqueData
{
	MemoryContext ctx;
	HnswSupport support;
	char	   *query;			/* NULL: the scan returns nothing */
	bool		started;
	HnswSearch *search;
	int		   *out;			/* item numbers of the current round, nearest first */
	int			nout;
	int			outpos;
	int			tidpos;
	float		lastDist;
	bool		anyReturned;
	bool		quant;			/* elements are codes: return lower bounds */
	/* a NULL query (or a zero one under cosine) returns every row, as pgvector */
	bool		fullScan;
	BlockNumber nextBlock;
	BlockNumber nblocks;
	ItemPointerData *pageTids;
	int			npageTids;
	int			pageTidPos;
} HnswScanOpaqueData;

typedef HnswScanOpaqueData *HnswScanOpaque;

/* ambeginscan */
IndexScanDesc
hnswbeginscan(Relation index, int nkeys, int norderbys)
{
	IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
	HnswScanOpaque so = palloc0(sizeof(HnswScanOpaqueData));

	/* fixed 64 kB blocks: big blocks would be mmap'd and page-faulted anew per scan */
	so->ctx = AllocSetContextCreate(CurrentMemoryContext, "hnsw scan",
									0, 64 * 1024, 64 * 1024);
	HnswInitSupport(index, &so->support, false);
	so->support.scanBound = true;	/* full query; lower bounds to codes */
	if (norderbys > 0)
	{
		/* lower bounds for high-dimension codes (the AM allocates these) */
		scan->xs_orderbyvals = palloc0(sizeof(Datum) * norderbys);
		scan->xs_orderbynulls = palloc(sizeof(bool) * norderbys);
		memset(scan->xs_orderbynulls, true, sizeof(bool) * norderbys);
	}
	scan->opaque = so;
	return scan;
}

/* amrescan: takes the query vector from the ORDER BY key. */
void
hnswrescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	MemoryContext old;

	if (so->started)
		HnswCountScan(so->search ? so->search->evaluated : 0);
	MemoryContextReset(so->ctx);
	so->query = NULL;
	so->started = false;
	so->search = NULL;
	so->out = NULL;
	so->nout = so->outpos = so->tidpos = 0;
	so->anyReturned = false;
	so->fullScan = false;
	so->pageTids = NULL;
	so->npageTids = so->pageTidPos = 0;

	if (keys && scan->numberOfKeys > 0)
		memmove(scan->keyData, keys, scan->numberOfKeys * sizeof(ScanKeyData));
	if (orderbys && scan->numberOfOrderBys > 0)
		memmove(scan->orderByData, orderbys, scan->numberOfOrderBys * sizeof(ScanKeyData));

	if (scan->numberOfOrderBys > 0 && !(scan->orderByData[0].sk_flags & SK_ISNULL))
	{
		bool		ok;
		char	   *q;

		old = MemoryContextSwitchTo(so->ctx);
		q = HnswFormValue(&so->support, scan->orderByData[0].sk_argument, &ok);
		if (ok)
		{
			so->query = q;
			so->quant = HnswQuantWanted(&so->support, HnswValueDims(&so->support, q));
		}
		else
			so->fullScan = true;
		MemoryContextSwitchTo(old);
	}
	else
		so->fullScan = true;
}

/* Moves the search's current results into so->out, nearest first. */
static void
TakeResults(HnswScanOpaque so)
{
	HnswSearch *s = so->search;
	int			n = s->result.n;
	int			i;

	so->out = repalloc(so->out, sizeof(int) * Max(n, 1));
	for (i = n - 1; i >= 0; i--)
		so->out[i] = HnswHeapPop(&s->result).idx;
	so->nout = n;
	so->outpos = 0;
	so->tidpos = 0;
}

/*
 * Returns the beam width of a scan.  Inner-product scans get twice
 * hnsw.ef_search: the graph is built on vectors lifted onto a sphere, and
 * the query, lifted to (q, 0), lies inside it, where a beam of ef_search
 * reaches about 0.98 of the recall other metrics reach.
 */
static int
ScanEf(HnswScanOpaque so)
{
	return so->support.kind == HNSW_KIND_IP ? 2 * hnsw_ef_search : hnsw_ef_search;
}

/* Starts the search: descends from the entry point, runs level 0. */
static void
StartSearch(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	HnswMetaPageData meta;
	ItemPointerData entry;
	int			dims;

	HnswReadMeta(index, &meta);
	so->out = palloc(sizeof(int));
	if (!BlockNumberIsValid(meta.entryBlkno))
		return;
	dims = HnswValueDims(&so->support, so->query);
	if (meta.dims >= 0 && dims != meta.dims)
	{
		if (so->support.kind == HNSW_KIND_HAMMING || so->support.kind == HNSW_KIND_JACCARD)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("different bit lengths %d and %d", meta.dims, dims)));
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("different vector dimensions %d and %d", meta.dims, dims)));
	}
	ItemPointerSet(&entry, meta.entryBlkno, meta.entryOffno);
	if (!HnswSearchGreedy(index, &so->support, so->query, meta.m, &entry,
						  meta.entryLevel, 0, &entry))
		return;
	so->search = palloc(sizeof(HnswSearch));
	HnswSearchInit(so->search, index, &so->support, so->query, meta.m, 0, false);
	HnswSearchAddEntry(so->search, &entry);
	HnswSearchRun(so->search, ScanEf(so), 0, 0);
	TakeResults(so);
}

/*
 * Runs one more round of an iterative scan.  Returns false when the scan
 * is exhausted or out of budget.
 */
static bool
ContinueSearch(HnswScanOpaque so)
{
	HnswSearch *s = so->search;
	Size		maxMem = (Size) ((double) work_mem * 1024.0 * hnsw_scan_mem_multiplier);

	if (s == NULL)
		return false;
	if (s->evaluated >= hnsw_max_scan_tuples || s->memused >= maxMem)
		return false;
	/* what the beam pushed out becomes candidate and result again */
	while (s->discarded.n > 0)
	{
		HnswHeapEntry e = HnswHeapPop(&s->discarded);

		HnswHeapPush(&s->cand, e.key, e.idx);
		HnswHeapPush(&s->result, -e.key, e.idx);
	}
	if (s->cand.n == 0 && s->result.n == 0)
		return false;
	HnswSearchRun(s, ScanEf(so), hnsw_max_scan_tuples, maxMem);
	TakeResults(so);
	return so->nout > 0;
}

/*
 * Returns the next heap TID of a scan without a usable query: every indexed
 * row, in index order.
 */
static bool
FullScanNext(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;

	if (so->pageTids == NULL)
	{
		so->pageTids = MemoryContextAlloc(so->ctx, sizeof(ItemPointerData) *
										  MaxIndexTuplesPerPage * HNSW_HEAPTIDS);
		so->nextBlock = HNSW_METAPAGE_BLKNO + 1;
		so->nblocks = RelationGetNumberOfBlocks(scan->indexRelation);
		pgstat_count_index_scan(scan->indexRelation);
	}
	while (so->pageTidPos >= so->npageTids)
	{
		Buffer		buf;
		Page		page;
		OffsetNumber off,
					maxoff;

		if (so->nextBlock >= so->nblocks)
			return false;
		CHECK_FOR_INTERRUPTS();
		buf = ReadBuffer(scan->indexRelation, so->nextBlock++);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		maxoff = PageGetMaxOffsetNumber(page);
		so->npageTids = so->pageTidPos = 0;
		for (off = FirstOffsetNumber; off <= maxoff; off++)
		{
			HnswElementTuple etup = HnswGetElement(page, off);
			int			i;

			if (etup == NULL || etup->deleted)
				continue;
			for (i = 0; i < etup->ntids && i < HNSW_HEAPTIDS; i++)
				so->pageTids[so->npageTids++] = etup->heaptids[i];
		}
		UnlockReleaseBuffer(buf);
	}
	scan->xs_heaptid = so->pageTids[so->pageTidPos++];
	scan->xs_recheck = false;
	scan->xs_recheckorderby = false;
	return true;
}

/* amgettuple: returns the next heap TID, nearest first. */
bool
hnswgettuple(IndexScanDesc scan, ScanDirection dir)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	MemoryContext old;

	if (so->fullScan)
		return FullScanNext(scan);
	if (so->query == NULL)
		return false;

	old = MemoryContextSwitchTo(so->ctx);
	if (!so->started)
	{
		pgstat_count_index_scan(scan->indexRelation);
		so->started = true;
		StartSearch(scan);
	}

	for (;;)
	{
		while (so->outpos < so->nout)
		{
			HnswItem   *item = HnswSearchItem(so->search, so->out[so->outpos]);

			if (so->tidpos == 0 && hnsw_iterative_scan == HNSW_ITERATIVE_STRICT &&
				so->anyReturned && item->dist < so->lastDist)
			{
				so->outpos++;
				continue;
			}
			if (so->tidpos < item->ntids)
			{
				scan->xs_heaptid = item->heaptids[so->tidpos++];
				scan->xs_recheck = false;
				scan->xs_recheckorderby = false;
				if (so->quant)
				{
					/* item->dist is a lower bound: the executor re-ranks */
					scan->xs_orderbyvals[0] =
						Float8GetDatum(HnswQuantOrderValue(&so->support, item->dist));
					scan->xs_orderbynulls[0] = false;
					scan->xs_recheckorderby = true;
				}
				so->lastDist = item->dist;
				so->anyReturned = true;
				MemoryContextSwitchTo(old);
				return true;
			}
			so->outpos++;
			so->tidpos = 0;
		}
		if (hnsw_iterative_scan == HNSW_ITERATIVE_OFF || !ContinueSearch(so))
			break;
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextSwitchTo(old);
	return false;
}

/* amendscan */
void
hnswendscan(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;

	if (so->started)
		HnswCountScan(so->search ? so->search->evaluated : 0);
	MemoryContextDelete(so->ctx);
	pfree(so);
	scan->opaque = NULL;
}
