/*
 * hnswcheck.c
 *	  vectron_hnsw_check(regclass): walks an HNSW index and reports
 *	  structural problems, one row each (kind, element, detail).
 *
 * Kinds: bad_metapage, bad_element (malformed tuple or bad level),
 * dangling_link (to no element), deleted_link (to an element VACUUM
 * removed), bad_link (to an element without that level, to itself, twice,
 * or after an empty slot), bad_entry_point, bad_heap_tid (beyond the heap
 * or at an unused line pointer) and unreachable (a live element that no
 * path from the entry point reaches).  An empty result means the index is
 * sound.
 */
#include "hnsw.h"

#include "access/heapam.h"
#include "catalog/index.h"
#include "access/htup_details.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufpage.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/rel.h"

typedef struct CheckEntry
{
	ItemPointerData tid;		/* hash key */
	int			level;
	int			ntids;
	bool		deleted;
	bool		reached;
} CheckEntry;

typedef struct CheckState
{
	Tuplestorestate *store;
	TupleDesc	desc;
	int			nproblems;
} CheckState;

static void
Report(CheckState *cs, const char *kind, ItemPointer tid, const char *fmt,...)
	pg_attribute_printf(4, 5);

/* Adds one problem row. */
static void
Report(CheckState *cs, const char *kind, ItemPointer tid, const char *fmt,...)
{
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	StringInfoData buf;
	va_list		args;

	initStringInfo(&buf);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	values[0] = CStringGetTextDatum(kind);
	if (tid != NULL)
	{
		ItemPointer copy = palloc(sizeof(ItemPointerData));

		*copy = *tid;
		values[1] = PointerGetDatum(copy);
	}
	else
		nulls[1] = true;
	values[2] = CStringGetTextDatum(buf.data);
	tuplestore_putvalues(cs->store, cs->desc, values, nulls);
	cs->nproblems++;
}

/* Checks that a heap TID points at a used line pointer of the heap. */
static void
CheckHeapTid(CheckState *cs, Relation heap, BlockNumber heapblocks,
			 ItemPointer elem, ItemPointer htid)
{
	BlockNumber blk = ItemPointerGetBlockNumberNoCheck(htid);
	OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(htid);
	Buffer		buf;
	Page		page;

	if (!ItemPointerIsValid(htid) || blk >= heapblocks)
	{
		Report(cs, "bad_heap_tid", elem, "heap TID (%u,%u) is beyond the heap's %u blocks",
			   blk, off, heapblocks);
		return;
	}
	buf = ReadBuffer(heap, blk);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (off > PageGetMaxOffsetNumber(page) || !ItemIdIsUsed(PageGetItemId(page, off)))
		Report(cs, "bad_heap_tid", elem, "heap TID (%u,%u) points at no tuple", blk, off);
	UnlockReleaseBuffer(buf);
}

PG_FUNCTION_INFO_V1(vectron_hnsw_check);
/* Returns one row per structural problem of the given hnsw index. */
Datum
vectron_hnsw_check(PG_FUNCTION_ARGS)
{
	Oid			indexoid = PG_GETARG_OID(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CheckState	cs;
	Relation	index;
	Relation	heap;
	Oid			heapoid;
	HTAB	   *elems;
	HASHCTL		ctl;
	BlockNumber nblocks,
				heapblocks,
				blkno;
	HnswMetaPageData meta;
	int			maxLevel = -1;
	HASH_SEQ_STATUS seq;
	CheckEntry *ce;
	List	   *queue = NIL;
	int			qpos = 0;
	int			pass;

	InitMaterializedSRF(fcinfo, 0);
	cs.store = rsinfo->setResult;
	cs.desc = rsinfo->setDesc;
	cs.nproblems = 0;

	heapoid = IndexGetRelation(indexoid, false);
	heap = table_open(heapoid, AccessShareLock);
	index = index_open(indexoid, AccessShareLock);
	if (index->rd_indam->amgettuple != hnswgettuple)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an hnsw index", RelationGetRelationName(index))));

	/* the metapage */
	{
		Buffer		buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		meta = *HnswPageGetMeta(BufferGetPage(buf));
		UnlockReleaseBuffer(buf);
	}
	if (meta.magic != HNSW_MAGIC || meta.version != HNSW_VERSION ||
		meta.m < HNSW_MIN_M || meta.m > HNSW_MAX_M)
	{
		Report(&cs, "bad_metapage", NULL, "magic %08x, version %u, m %u",
			   meta.magic, meta.version, meta.m);
		index_close(index, AccessShareLock);
		table_close(heap, AccessShareLock);
		return (Datum) 0;
	}

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(ItemPointerData);
	ctl.entrysize = sizeof(CheckEntry);
	ctl.hcxt = CurrentMemoryContext;
	elems = hash_create("hnsw check elements", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	nblocks = RelationGetNumberOfBlocks(index);
	heapblocks = RelationGetNumberOfBlocks(heap);

	/* pass 0 collects elements, pass 1 checks their links and heap TIDs */
	for (pass = 0; pass < 2; pass++)
	{
		for (blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++)
		{
			Buffer		buf = ReadBuffer(index, blkno);
			Page		page;
			OffsetNumber off,
						maxoff;
			HnswElementTuple *copies;
			ItemPointerData *tids;
			int			ncopies = 0,
						i;

			CHECK_FOR_INTERRUPTS();
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			maxoff = PageGetMaxOffsetNumber(page);
			copies = palloc(sizeof(HnswElementTuple) * (maxoff + 1));
			tids = palloc(sizeof(ItemPointerData) * (maxoff + 1));
			for (off = FirstOffsetNumber; off <= maxoff; off++)
			{
				ItemId		iid = PageGetItemId(page, off);

				if (!ItemIdIsNormal(iid))
					continue;
				copies[ncopies] = palloc(ItemIdGetLength(iid));
				memcpy(copies[ncopies], PageGetItem(page, iid), ItemIdGetLength(iid));
				ItemPointerSet(&tids[ncopies], blkno, off);
				if (pass == 0)
				{
					HnswElementTuple etup = copies[ncopies];
					Size		len = ItemIdGetLength(iid);

					if (len < offsetof(HnswElementTupleData, neighbors) ||
						etup->type != HNSW_ELEMENT_TUPLE || etup->m != meta.m ||
						etup->level > HNSW_MAX_LEVEL ||
						etup->valueoff != HNSW_ELEMENT_VALUEOFF(etup->m, etup->level) ||
						etup->ntids > HNSW_HEAPTIDS ||
						len < (Size) etup->valueoff + VARHDRSZ ||
						len != (Size) etup->valueoff + VARSIZE(HnswElementValue(etup)))
					{
						Report(&cs, "bad_element", &tids[ncopies], "malformed element tuple of %zu bytes", len);
						continue;
					}
				}
				ncopies++;
			}
			UnlockReleaseBuffer(buf);

			for (i = 0; i < ncopies; i++)
			{
				HnswElementTuple etup = copies[i];
				bool		found;
				int			lc,
							j;

				if (pass == 0)
				{
					ce = hash_search(elems, &tids[i], HASH_ENTER, &found);
					ce->level = etup->level;
					ce->ntids = etup->ntids;
					ce->deleted = etup->deleted != 0;
					ce->reached = false;
					if (!ce->deleted && etup->level > maxLevel)
						maxLevel = etup->level;
					continue;
				}
				ce = hash_search(elems, &tids[i], HASH_FIND, &found);
				if (!found)
					continue;
				if (ce->deleted)
				{
					for (j = 0; j < HNSW_NEIGHBOR_SLOTS(etup->m, etup->level); j++)
						if (ItemPointerIsValid(&etup->neighbors[j]))
						{
							Report(&cs, "bad_element", &tids[i], "deleted element still has links");
							break;
						}
					continue;
				}
				for (j = 0; j < etup->ntids; j++)
					CheckHeapTid(&cs, heap, heapblocks, &tids[i], &etup->heaptids[j]);
				for (lc = 0; lc <= etup->level; lc++)
				{
					int			start = HNSW_LAYER_START(etup->m, lc);
					int			cap = HNSW_LAYER_CAPACITY(etup->m, lc);
					bool		ended = false;

					for (j = 0; j < cap; j++)
					{
						ItemPointer nb = &etup->neighbors[start + j];
						CheckEntry *ne;
						int			k;

						if (!ItemPointerIsValid(nb))
						{
							ended = true;
							continue;
						}
						if (ended)
							Report(&cs, "bad_link", &tids[i], "level %d slot %d follows an empty slot", lc, j);
						ne = hash_search(elems, nb, HASH_FIND, &found);
						if (!found)
						{
							Report(&cs, "dangling_link", &tids[i], "level %d links to (%u,%u), which is no element",
								   lc, ItemPointerGetBlockNumberNoCheck(nb), ItemPointerGetOffsetNumberNoCheck(nb));
							continue;
						}
						if (ne->deleted)
							Report(&cs, "deleted_link", &tids[i], "level %d links to deleted element (%u,%u)",
								   lc, ItemPointerGetBlockNumber(nb), ItemPointerGetOffsetNumber(nb));
						if (ne->level < lc)
							Report(&cs, "bad_link", &tids[i], "level %d links to (%u,%u) of level %d",
								   lc, ItemPointerGetBlockNumber(nb), ItemPointerGetOffsetNumber(nb), ne->level);
						if (ItemPointerEquals(nb, &tids[i]))
							Report(&cs, "bad_link", &tids[i], "level %d links to itself", lc);
						for (k = 0; k < j; k++)
							if (ItemPointerEquals(nb, &etup->neighbors[start + k]))
								Report(&cs, "bad_link", &tids[i], "level %d links twice to (%u,%u)",
									   lc, ItemPointerGetBlockNumber(nb), ItemPointerGetOffsetNumber(nb));
					}
				}
			}
		}
	}

	/* the entry point, then reachability from it */
	if (BlockNumberIsValid(meta.entryBlkno))
	{
		ItemPointerData entry;
		bool		found;

		ItemPointerSet(&entry, meta.entryBlkno, meta.entryOffno);
		ce = hash_search(elems, &entry, HASH_FIND, &found);
		if (!found || ce->deleted)
			Report(&cs, "bad_entry_point", &entry, "entry point is %s",
				   found ? "deleted" : "no element");
		else
		{
			if (ce->level != meta.entryLevel)
				Report(&cs, "bad_entry_point", &entry, "entry point has level %d, metapage says %d",
					   ce->level, meta.entryLevel);
			if (maxLevel > ce->level)
				Report(&cs, "bad_entry_point", &entry, "entry point level %d is below the top level %d",
					   ce->level, maxLevel);
			ce->reached = true;
			queue = lappend(queue, ce);
		}
	}
	else if (maxLevel >= 0)
		Report(&cs, "bad_entry_point", NULL, "index has elements but no entry point");

	while (qpos < list_length(queue))
	{
		CheckEntry *cur = list_nth(queue, qpos++);
		HnswElementTuple etup;
		int			j;

		etup = HnswCopyElement(index, &cur->tid);
		if (etup == NULL)
			continue;
		for (j = 0; j < HNSW_NEIGHBOR_SLOTS(etup->m, etup->level); j++)
		{
			CheckEntry *ne;
			bool		found;

			if (!ItemPointerIsValid(&etup->neighbors[j]))
				continue;
			ne = hash_search(elems, &etup->neighbors[j], HASH_FIND, &found);
			if (found && !ne->reached && !ne->deleted)
			{
				ne->reached = true;
				queue = lappend(queue, ne);
			}
		}
		pfree(etup);
	}

	hash_seq_init(&seq, elems);
	while ((ce = hash_seq_search(&seq)) != NULL)
	{
		if (!ce->deleted && ce->ntids > 0 && !ce->reached)
			Report(&cs, "unreachable", &ce->tid, "live element of level %d is not reachable from the entry point",
				   ce->level);
	}

	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);
	return (Datum) 0;
}
