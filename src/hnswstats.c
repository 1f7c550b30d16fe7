/*
 * hnswstats.c
 *	  vectron_index_stats(regclass): one row describing an HNSW index, for
 *	  DBAs and the operations docs.
 *
 * It reads every page of the index once under share locks, one page at a
 * time (so it never blocks writers for long and sees each page
 * consistently, not the index as a whole), and, when check_heap is true,
 * fetches every heap TID the index holds to count the entries whose rows
 * are gone for the caller's snapshot: rows deleted or updated away whose
 * index entries VACUUM has not removed yet.  That part costs one heap
 * lookup per indexed row; pass check_heap => false on very large tables.
 *
 * Scan counts are not here: index scans count into PostgreSQL's own
 * statistics (pg_stat_user_indexes.idx_scan, idx_tup_read), which need no
 * preloading.  Counters PostgreSQL does not keep (distance computations)
 * are at the end of this file and need shared_preload_libraries.
 */
#include "hnsw.h"

#include "access/heapam.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#define STATS_COLUMNS 14

PG_FUNCTION_INFO_V1(vectron_index_stats);
/* Returns one row of counts describing the given hnsw index. */
Datum
vectron_index_stats(PG_FUNCTION_ARGS)
{
	Oid			indexoid = PG_GETARG_OID(0);
	bool		checkHeap = PG_GETARG_BOOL(1);
	TupleDesc	desc;
	Relation	index;
	Relation	heap;
	HnswMetaPageData meta;
	BlockNumber nblocks,
				blkno;
	int64		elements = 0,
				heapTids = 0,
				deadTids = 0,
				emptyElements = 0,
				removedElements = 0,
				degreeSum = 0;
	int64		perLevel[HNSW_MAX_LEVEL + 1] = {0};
	int			maxLevel = -1;
	Snapshot	snapshot = NULL;
	Datum		values[STATS_COLUMNS];
	bool		nulls[STATS_COLUMNS] = {0};
	Datum	   *levelDatums;
	ItemPointer entry;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	if (get_rel_relkind(indexoid) != RELKIND_INDEX)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an index", get_rel_name(indexoid))));
	heap = table_open(IndexGetRelation(indexoid, false), AccessShareLock);
	index = index_open(indexoid, AccessShareLock);
	if (index->rd_indam->amgettuple != hnswgettuple)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an hnsw index", RelationGetRelationName(index))));

	HnswReadMeta(index, &meta);
	if (checkHeap)
		snapshot = RegisterSnapshot(GetTransactionSnapshot());
	nblocks = RelationGetNumberOfBlocks(index);

	for (blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++)
	{
		Buffer		buf;
		Page		page;
		OffsetNumber off,
					maxoff;
		ItemPointerData *tids;
		int			ntids = 0;

		CHECK_FOR_INTERRUPTS();
		buf = ReadBuffer(index, blkno);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		maxoff = PageGetMaxOffsetNumber(page);
		tids = palloc(sizeof(ItemPointerData) * (maxoff + 1) * HNSW_HEAPTIDS);
		for (off = FirstOffsetNumber; off <= maxoff; off++)
		{
			HnswElementTuple etup = HnswGetElement(page, off);
			int			i;

			if (etup == NULL)
				continue;
			if (etup->deleted)
			{
				removedElements++;
				continue;
			}
			elements++;
			if (etup->ntids == 0)
				emptyElements++;
			if (etup->level <= HNSW_MAX_LEVEL)
			{
				perLevel[etup->level]++;
				maxLevel = Max(maxLevel, (int) etup->level);
			}
			degreeSum += HnswLayerCount(etup, 0);
			for (i = 0; i < etup->ntids && i < HNSW_HEAPTIDS; i++)
				tids[ntids++] = etup->heaptids[i];
		}
		UnlockReleaseBuffer(buf);

		/* heap lookups after the index page is released */
		heapTids += ntids;
		if (checkHeap)
		{
			int			i;

			for (i = 0; i < ntids; i++)
			{
				bool		allDead = false;

				if (!table_index_fetch_tuple_check(heap, &tids[i], snapshot, &allDead))
					deadTids++;
			}
		}
		pfree(tids);
	}
	if (snapshot)
		UnregisterSnapshot(snapshot);

	values[0] = Int64GetDatum((int64) nblocks);
	values[1] = Int64GetDatum((int64) nblocks * BLCKSZ);
	values[2] = Int64GetDatum(elements);
	values[3] = Int64GetDatum(heapTids);
	if (checkHeap)
		values[4] = Int64GetDatum(deadTids);
	else
		nulls[4] = true;
	values[5] = Int64GetDatum(emptyElements);
	values[6] = Int64GetDatum(removedElements);
	values[7] = Int32GetDatum(maxLevel);
	levelDatums = palloc(sizeof(Datum) * (maxLevel + 1 > 0 ? maxLevel + 1 : 1));
	for (int l = 0; l <= maxLevel; l++)
		levelDatums[l] = Int64GetDatum(perLevel[l]);
	values[8] = PointerGetDatum(construct_array(levelDatums, maxLevel + 1, INT8OID,
												sizeof(int64), FLOAT8PASSBYVAL,
												TYPALIGN_DOUBLE));
	if (elements > 0)
		values[9] = Float8GetDatum((double) degreeSum / (double) elements);
	else
		nulls[9] = true;
	if (BlockNumberIsValid(meta.entryBlkno))
	{
		entry = palloc(sizeof(ItemPointerData));
		ItemPointerSet(entry, meta.entryBlkno, meta.entryOffno);
		values[10] = PointerGetDatum(entry);
		values[11] = Int32GetDatum(meta.entryLevel);
	}
	else
	{
		nulls[10] = true;
		nulls[11] = true;
	}
	values[12] = Int32GetDatum(meta.m);
	values[13] = Int32GetDatum(meta.efConstruction);

	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * Cross-backend counters.  PostgreSQL 15 gives an extension shared memory
 * only when it is loaded by shared_preload_libraries, so these counters
 * exist only then; otherwise vectron_counters() says preloaded = false and
 * returns NULLs.  Backends add their counts once per scan or insert (not
 * per distance), so the atomics cost nothing measurable on the hot path.
 */
typedef struct HnswCounters
{
	pg_atomic_uint64 scans;
	pg_atomic_uint64 scanDistances;
	pg_atomic_uint64 inserts;
	pg_atomic_uint64 insertDistances;
} HnswCounters;

static HnswCounters *counters = NULL;
static shmem_request_hook_type prevShmemRequest = NULL;
static shmem_startup_hook_type prevShmemStartup = NULL;

static void
CountersShmemRequest(void)
{
	if (prevShmemRequest)
		prevShmemRequest();
	RequestAddinShmemSpace(MAXALIGN(sizeof(HnswCounters)));
}

static void
CountersShmemStartup(void)
{
	bool		found;

	if (prevShmemStartup)
		prevShmemStartup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	counters = ShmemInitStruct("vectron hnsw counters", sizeof(HnswCounters), &found);
	if (!found)
	{
		pg_atomic_init_u64(&counters->scans, 0);
		pg_atomic_init_u64(&counters->scanDistances, 0);
		pg_atomic_init_u64(&counters->inserts, 0);
		pg_atomic_init_u64(&counters->insertDistances, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Asks for the counters' shared memory when preloaded; from _PG_init. */
void
HnswCountersInit(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prevShmemRequest = shmem_request_hook;
	shmem_request_hook = CountersShmemRequest;
	prevShmemStartup = shmem_startup_hook;
	shmem_startup_hook = CountersShmemStartup;
}

/* Adds one finished index scan and its distance computations. */
void
HnswCountScan(int64 distances)
{
	if (counters == NULL)
		return;
	pg_atomic_fetch_add_u64(&counters->scans, 1);
	pg_atomic_fetch_add_u64(&counters->scanDistances, (uint64) distances);
}

/* Adds one inserted value and the distances its graph search computed. */
void
HnswCountInsert(int64 distances)
{
	if (counters == NULL)
		return;
	pg_atomic_fetch_add_u64(&counters->inserts, 1);
	pg_atomic_fetch_add_u64(&counters->insertDistances, (uint64) distances);
}

PG_FUNCTION_INFO_V1(vectron_counters);
/* Returns the cross-backend counters (NULLs unless preloaded). */
Datum
vectron_counters(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {0};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = BoolGetDatum(counters != NULL);
	if (counters != NULL)
	{
		values[1] = Int64GetDatum((int64) pg_atomic_read_u64(&counters->scans));
		values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&counters->scanDistances));
		values[3] = Int64GetDatum((int64) pg_atomic_read_u64(&counters->inserts));
		values[4] = Int64GetDatum((int64) pg_atomic_read_u64(&counters->insertDistances));
	}
	else
		nulls[1] = nulls[2] = nulls[3] = nulls[4] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
