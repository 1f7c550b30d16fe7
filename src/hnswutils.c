/*
 * hnswutils.c
 *	  Shared pieces of the HNSW access method: distances, values, pages,
 *	  heaps, the visited set, the on-disk layer search and neighbour
 *	  selection.
 */
#include "hnsw.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufpage.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/varbit.h"

#include "distance.h"
#include "vector.h"

/* Maps the C-language distance functions we know to a kernel. */
static HnswKind
KindFromProc(Oid procid, bool hasNorm)
{
	HeapTuple	tup;
	Form_pg_proc proc;
	const char *name;
	bool		isbit;
	HnswKind	kind = HNSW_KIND_FMGR;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(procid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", procid);
	proc = (Form_pg_proc) GETSTRUCT(tup);
	name = NameStr(proc->proname);
	isbit = proc->pronargs == 2 && proc->proargtypes.values[0] == BITOID;

	if (proc->prolang == ClanguageId && proc->pronargs == 2)
	{
		if (isbit)
		{
			if (strcmp(name, "hamming_distance") == 0)
				kind = HNSW_KIND_HAMMING;
			else if (strcmp(name, "jaccard_distance") == 0)
				kind = HNSW_KIND_JACCARD;
		}
		else if (strcmp(name, "vector_l2_squared_distance") == 0 ||
				 strcmp(name, "l2_distance") == 0)
			kind = HNSW_KIND_L2;
		else if (strcmp(name, "vector_negative_inner_product") == 0)
			kind = hasNorm ? HNSW_KIND_COSINE : HNSW_KIND_IP;
		else if (strcmp(name, "cosine_distance") == 0 ||
				 strcmp(name, "vector_spherical_distance") == 0)
			kind = HNSW_KIND_COSINE;
		else if (strcmp(name, "l1_distance") == 0)
			kind = HNSW_KIND_L1;
	}
	ReleaseSysCache(tup);
	return kind;
}

/*
 * Fills *support for the index's only column.  forGraph asks for the
 * distance that builds the graph: for inner product that is HNSW_KIND_MIPS,
 * a Euclidean distance after lifting the vectors onto a sphere, since inner
 * product is no metric (an element is not its own nearest neighbour) and
 * the neighbour heuristic then prunes lists down to one or two links.
 * Scans walk that graph with inner product.  The caller sets maxNormSq
 * from the metapage.
 */
void
HnswInitSupport(Relation index, HnswSupport *support, bool forGraph)
{
	Oid			distoid = index_getprocid(index, 1, HNSW_DISTANCE_PROC);
	bool		hasNorm = OidIsValid(index_getprocid(index, 1, HNSW_NORM_PROC));

	support->distproc = index_getprocinfo(index, 1, HNSW_DISTANCE_PROC);
	support->normproc = hasNorm ? index_getprocinfo(index, 1, HNSW_NORM_PROC) : NULL;
	support->collation = index->rd_indcollation[0];
	support->kind = KindFromProc(distoid, hasNorm);
	support->normalize = (support->kind == HNSW_KIND_COSINE);
	support->maxNormSq = 0;
	support->m = HnswGetM(index);
	support->scanBound = false;
	if (forGraph && support->kind == HNSW_KIND_IP)
		support->kind = HNSW_KIND_MIPS;
}

/* Returns the distance between two stored values (lower is nearer). */
float
HnswDistance(HnswSupport *support, const char *a, const char *b)
{
	/* vectron: high-dimension codes (hnswquant.c) */
	if (support->kind <= HNSW_KIND_L1 || support->kind == HNSW_KIND_MIPS)
	{
		if (HnswQuantIs(a) || HnswQuantIs(b))
			return HnswQuantDistance(support, a, b);
	}
	switch (support->kind)
	{
		case HNSW_KIND_L2:
			return distance_kernels->l2_squared(((const VectorData *) a)->x,
												((const VectorData *) b)->x,
												((const VectorData *) a)->dim);
		case HNSW_KIND_IP:
		case HNSW_KIND_COSINE:
			return -distance_kernels->inner_product(((const VectorData *) a)->x,
													((const VectorData *) b)->x,
													((const VectorData *) a)->dim);
		case HNSW_KIND_L1:
			return distance_kernels->l1(((const VectorData *) a)->x,
										((const VectorData *) b)->x,
										((const VectorData *) a)->dim);
		case HNSW_KIND_HAMMING:
			return (float) distance_kernels->hamming(VARBITS((VarBit *) a),
													 VARBITS((VarBit *) b),
													 VARBITBYTES((VarBit *) a));
		case HNSW_KIND_JACCARD:
			{
				uint64_t	andc,
							orc;

				distance_kernels->jaccard_parts(VARBITS((VarBit *) a),
												VARBITS((VarBit *) b),
												VARBITBYTES((VarBit *) a),
												&andc, &orc);
				if (orc == 0)
					return 1.0f;
				return 1.0f - (float) ((double) andc / (double) orc);
			}
		case HNSW_KIND_MIPS:
			{
				/*
				 * Each vector x is lifted to (x, sqrt(R^2 - |x|^2)), R^2 =
				 * maxNormSq, which puts all of them on one sphere; there the
				 * Euclidean order from a query (q, 0) is the inner product
				 * order, so the graph is built with Euclidean distances of the
				 * lifted vectors.  Norms above R are clamped.
				 */
				float		dot,
							na,
							nb;
				double		ea,
							eb;

				distance_kernels->cosine_parts(((const VectorData *) a)->x,
											   ((const VectorData *) b)->x,
											   ((const VectorData *) a)->dim,
											   &dot, &na, &nb);
				ea = sqrt(Max(support->maxNormSq - na, 0.0));
				eb = sqrt(Max(support->maxNormSq - nb, 0.0));
				return (float) ((double) na + nb - 2.0 * dot + (ea - eb) * (ea - eb));
			}
		case HNSW_KIND_FMGR:
			break;
	}
	return (float) DatumGetFloat8(FunctionCall2Coll(support->distproc,
													support->collation,
													PointerGetDatum(a),
													PointerGetDatum(b)));
}

/* Returns the number of dimensions (or bits) of a stored value. */
int
HnswValueDims(HnswSupport *support, const char *value)
{
	switch (support->kind)
	{
		case HNSW_KIND_HAMMING:
		case HNSW_KIND_JACCARD:
			return VARBITLEN((VarBit *) value);
		case HNSW_KIND_FMGR:
			return -1;
		default:
			return ((const VectorData *) value)->dim;
	}
}

/*
 * Returns a palloc'd, detoasted copy of value as the index stores it (unit
 * length under cosine).  Sets *ok to false when the value is not indexed
 * (a zero vector under cosine).
 */
char *
HnswFormValue(HnswSupport *support, Datum value, bool *ok)
{
	char	   *copy = (char *) PG_DETOAST_DATUM_COPY(value);

	*ok = true;
	if (support->kind == HNSW_KIND_COSINE)
	{
		Vector		v = (Vector) copy;
		double		norm = sqrt((double) distance_kernels->inner_product(v->x, v->x, v->dim));
		int			i;

		if (!(norm > 0) || isinf(norm))
		{
			*ok = false;
			return copy;
		}
		for (i = 0; i < v->dim; i++)
			v->x[i] = (float) (v->x[i] / norm);
	}
	else if (support->normproc != NULL)
	{
		double		norm = DatumGetFloat8(FunctionCall1Coll(support->normproc,
															support->collation,
															PointerGetDatum(copy)));

		if (!(norm > 0))
			*ok = false;
	}
	/* vectron: high dimensions are stored as SQ8 codes (hnswquant.c) */
	if (*ok && !support->scanBound &&
		HnswQuantWanted(support, ((const VectorData *) copy)->dim))
		return HnswQuantize(copy);
	return copy;
}

/* Returns the size of an element tuple of the given level. */
Size
HnswElementSize(int m, int level, Size valuesize)
{
	return HNSW_ELEMENT_VALUEOFF(m, level) + valuesize;
}

/*
 * Draws a level from the HNSW distribution (mL = 1/ln m), capped so that
 * the element still fits on a page.
 */
int
HnswRandomLevel(int m, Size valuesize)
{
	double		u = 1.0 - pg_prng_double(&pg_global_prng_state);
	int			level = (int) floor(-log(u) / log((double) m));

	if (level > HNSW_MAX_LEVEL)
		level = HNSW_MAX_LEVEL;
	while (level > 0 && HnswElementSize(m, level, valuesize) > HNSW_MAX_TUPLE_SIZE)
		level--;
	return level;
}

/* Initialises an empty element page. */
void
HnswInitPage(Page page)
{
	HnswPageOpaque opaque;

	PageInit(page, BLCKSZ, sizeof(HnswPageOpaqueData));
	opaque = HnswPageGetOpaque(page);
	opaque->nextblkno = InvalidBlockNumber;
	opaque->flags = 0;
	opaque->page_id = HNSW_PAGE_ID;
}

/* Initialises the metapage of an empty index. */
void
HnswInitMetaPage(Page page, int m, int efConstruction)
{
	HnswMetaPage meta;

	HnswInitPage(page);
	meta = HnswPageGetMeta(page);
	meta->magic = HNSW_MAGIC;
	meta->version = HNSW_VERSION;
	meta->m = m;
	meta->efConstruction = efConstruction;
	meta->dims = -1;
	meta->entryBlkno = InvalidBlockNumber;
	meta->entryOffno = InvalidOffsetNumber;
	meta->entryLevel = -1;
	meta->insertPage = InvalidBlockNumber;
	meta->maxNormSq = 0;
	((PageHeader) page)->pd_lower = ((char *) meta + sizeof(HnswMetaPageData)) - (char *) page;
}

/* Copies the metapage into *meta. */
void
HnswReadMeta(Relation index, HnswMetaPageData *meta)
{
	Buffer		buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
	HnswMetaPage m;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	m = HnswPageGetMeta(BufferGetPage(buf));
	if (m->magic != HNSW_MAGIC)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" is not a valid hnsw index",
						RelationGetRelationName(index))));
	*meta = *m;
	UnlockReleaseBuffer(buf);
}

/* Returns the element tuple at off, or NULL when there is none. */
HnswElementTuple
HnswGetElement(Page page, OffsetNumber off)
{
	ItemId		iid;
	HnswElementTuple etup;

	if (off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(page))
		return NULL;
	iid = PageGetItemId(page, off);
	if (!ItemIdIsNormal(iid) || ItemIdGetLength(iid) < offsetof(HnswElementTupleData, neighbors))
		return NULL;
	etup = (HnswElementTuple) PageGetItem(page, iid);
	if (etup->type != HNSW_ELEMENT_TUPLE)
		return NULL;
	return etup;
}

/*
 * Returns a palloc'd copy of the element tuple at tid, or NULL if there is
 * no element there or it was deleted.
 */
HnswElementTuple
HnswCopyElement(Relation index, ItemPointer tid)
{
	Buffer		buf = ReadBuffer(index, ItemPointerGetBlockNumber(tid));
	Page		page;
	HnswElementTuple etup;
	HnswElementTuple copy = NULL;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	etup = HnswGetElement(page, ItemPointerGetOffsetNumber(tid));
	if (etup != NULL && !etup->deleted)
	{
		Size		len = ItemIdGetLength(PageGetItemId(page, ItemPointerGetOffsetNumber(tid)));

		copy = palloc(len);
		memcpy(copy, etup, len);
	}
	UnlockReleaseBuffer(buf);
	return copy;
}

/* Returns how many neighbours the element has at level lc. */
int
HnswLayerCount(HnswElementTuple etup, int lc)
{
	int			start = HNSW_LAYER_START(etup->m, lc);
	int			cap = HNSW_LAYER_CAPACITY(etup->m, lc);
	int			n = 0;

	while (n < cap && ItemPointerIsValid(&etup->neighbors[start + n]))
		n++;
	return n;
}

/* ---- binary heap with float keys, smallest first ---- */

void
HnswHeapInit(HnswHeap *h, int cap)
{
	h->cap = Max(cap, 16);
	h->n = 0;
	h->a = palloc(sizeof(HnswHeapEntry) * h->cap);
}

void
HnswHeapPush(HnswHeap *h, float key, int32 idx)
{
	int			i;

	if (h->n == h->cap)
	{
		h->cap *= 2;
		h->a = repalloc(h->a, sizeof(HnswHeapEntry) * h->cap);
	}
	i = h->n++;
	while (i > 0)
	{
		int			p = (i - 1) / 2;

		if (h->a[p].key <= key)
			break;
		h->a[i] = h->a[p];
		i = p;
	}
	h->a[i].key = key;
	h->a[i].idx = idx;
}

HnswHeapEntry
HnswHeapPop(HnswHeap *h)
{
	HnswHeapEntry top = h->a[0];
	HnswHeapEntry last = h->a[--h->n];
	int			i = 0;

	for (;;)
	{
		int			c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->a[c + 1].key < h->a[c].key)
			c++;
		if (last.key <= h->a[c].key)
			break;
		h->a[i] = h->a[c];
		i = c;
	}
	if (h->n > 0)
		h->a[i] = last;
	return top;
}

/* ---- open-addressing set of TIDs ---- */

static inline uint64
TidKey(ItemPointer tid)
{
	return (((uint64) ItemPointerGetBlockNumberNoCheck(tid)) << 16 |
			ItemPointerGetOffsetNumberNoCheck(tid)) + 1;
}

static inline uint32
TidHash(uint64 key)
{
	return (uint32) ((key * UINT64CONST(0x9E3779B97F4A7C15)) >> 32);
}

void
HnswTidSetInit(HnswTidSet *s, int cap)
{
	uint32		size = 64;

	while (size < (uint32) cap * 2)
		size *= 2;
	s->keys = palloc0(sizeof(uint64) * size);
	s->mask = size - 1;
	s->count = 0;
}

static void
TidSetGrow(HnswTidSet *s)
{
	uint64	   *old = s->keys;
	uint32		oldsize = s->mask + 1;
	uint32		i;

	s->keys = palloc0(sizeof(uint64) * oldsize * 2);
	s->mask = oldsize * 2 - 1;
	for (i = 0; i < oldsize; i++)
	{
		if (old[i] != 0)
		{
			uint32		j = TidHash(old[i]) & s->mask;

			while (s->keys[j] != 0)
				j = (j + 1) & s->mask;
			s->keys[j] = old[i];
		}
	}
	pfree(old);
}

/* Adds tid; returns true if it was not there before. */
bool
HnswTidSetAdd(HnswTidSet *s, ItemPointer tid)
{
	uint64		key = TidKey(tid);
	uint32		j;

	if ((s->count + 1) * 2 > s->mask + 1)
		TidSetGrow(s);
	j = TidHash(key) & s->mask;
	while (s->keys[j] != 0)
	{
		if (s->keys[j] == key)
			return false;
		j = (j + 1) & s->mask;
	}
	s->keys[j] = key;
	s->count++;
	return true;
}

bool
HnswTidSetContains(HnswTidSet *s, ItemPointer tid)
{
	uint64		key = TidKey(tid);
	uint32		j = TidHash(key) & s->mask;

	while (s->keys[j] != 0)
	{
		if (s->keys[j] == key)
			return true;
		j = (j + 1) & s->mask;
	}
	return false;
}

/* ---- on-disk layer search ---- */

/*
 * Buffer hints: for the index this backend searched last, the buffer each
 * block was found in.  ReadRecentBuffer pins a hinted buffer after checking
 * under its header lock that it still holds the block, which skips the
 * shared buffer-mapping hash lookup (a sixth of a resident scan's time,
 * mostly cache misses).  A stale hint only costs the usual ReadBuffer.
 * Process-local, one int per block, for blocks below HINT_MAX_BLOCKS.
 */
#define HINT_MAX_BLOCKS		(1 << 20)

static RelFileNode hintNode;
static Buffer *hints;
static BlockNumber nhints;

/* ReadBuffer for a search, through the buffer hints. */
static Buffer
SearchReadBuffer(Relation index, BlockNumber blkno)
{
	Buffer		buf;

	if (!RelFileNodeEquals(hintNode, index->rd_node))
	{
		hintNode = index->rd_node;
		if (hints != NULL)
			memset(hints, 0, sizeof(Buffer) * nhints);
	}
	if (blkno < nhints)
	{
		buf = hints[blkno];
		if (buf != InvalidBuffer &&
			ReadRecentBuffer(index->rd_node, MAIN_FORKNUM, blkno, buf))
		{
			pgstat_count_buffer_hit(index);
			return buf;
		}
	}
	else if (blkno < HINT_MAX_BLOCKS)
	{
		BlockNumber n = Max(Max(nhints * 2, blkno + 1), 1024);

		n = Min(n, HINT_MAX_BLOCKS);
		if (hints == NULL)
			hints = MemoryContextAllocZero(TopMemoryContext, sizeof(Buffer) * n);
		else
		{
			hints = repalloc(hints, sizeof(Buffer) * n);
			memset(hints + nhints, 0, sizeof(Buffer) * (n - nhints));
		}
		nhints = n;
	}
	buf = ReadBuffer(index, blkno);
	if (blkno < nhints)
		hints[blkno] = buf;
	return buf;
}

/* Starts a search of level lc for query. */
void
HnswSearchInit(HnswSearch *s, Relation index, HnswSupport *support,
			   const char *query, int m, int lc, bool keepValues)
{
	s->index = index;
	s->support = support;
	s->query = query;
	s->m = m;
	s->lc = lc;
	s->keepValues = keepValues;
	s->maxchunks = 16;
	s->nchunks = 0;
	s->chunks = palloc(sizeof(HnswItem *) * s->maxchunks);
	s->nitems = 0;
	s->arena = NULL;
	s->arenaleft = 0;
	HnswTidSetInit(&s->visited, lc == 0 ? 2048 : 64);
	HnswHeapInit(&s->cand, lc == 0 ? 512 : 64);
	HnswHeapInit(&s->result, lc == 0 ? 512 : 64);
	HnswHeapInit(&s->discarded, lc == 0 ? 2048 : 64);
	s->evaluated = 0;
	s->memused = 0;
}

/* Returns size bytes (a multiple of 2) from the search's bump allocator. */
static void *
ArenaAlloc(HnswSearch *s, Size size)
{
	void	   *p;

	if (size > s->arenaleft)
	{
		s->arena = palloc(HNSW_ARENA_BLOCK);
		s->arenaleft = HNSW_ARENA_BLOCK;
		s->memused += HNSW_ARENA_BLOCK;
	}
	p = s->arena;
	s->arena += size;
	s->arenaleft -= size;
	return p;
}

/* Copies the element's neighbour list at the searched level into item. */
static void
CopyNeighbors(HnswSearch *s, HnswItem *item, HnswElementTuple etup)
{
	int			n = HnswLayerCount(etup, s->lc);

	item->nneighbors = n;
	item->neighbors = NULL;
	if (n > 0)
	{
		item->neighbors = ArenaAlloc(s, sizeof(ItemPointerData) * n);
		memcpy(item->neighbors, &etup->neighbors[HNSW_LAYER_START(etup->m, s->lc)],
			   sizeof(ItemPointerData) * n);
	}
}

/*
 * Records an evaluated element and returns its item number.  Its neighbour
 * list is copied only when it is to be expanded (withNeighbors).
 */
static int
NewItem(HnswSearch *s, ItemPointer tid, float dist, HnswElementTuple etup,
		bool withNeighbors)
{
	HnswItem   *item;

	if ((s->nitems & (HNSW_ITEM_CHUNK - 1)) == 0)
	{
		if (s->nchunks == s->maxchunks)
		{
			s->maxchunks *= 2;
			s->chunks = repalloc(s->chunks, sizeof(HnswItem *) * s->maxchunks);
		}
		s->chunks[s->nchunks++] = palloc(sizeof(HnswItem) * HNSW_ITEM_CHUNK);
		s->memused += sizeof(HnswItem) * HNSW_ITEM_CHUNK;
	}
	item = HnswSearchItem(s, s->nitems);
	item->tid = *tid;
	item->dist = dist;
	item->level = etup->level;
	item->ntids = Min(etup->ntids, HNSW_HEAPTIDS);
	item->heaptids = NULL;
	if (item->ntids > 0)
	{
		item->heaptids = ArenaAlloc(s, sizeof(ItemPointerData) * item->ntids);
		memcpy(item->heaptids, etup->heaptids, sizeof(ItemPointerData) * item->ntids);
	}
	item->nneighbors = -1;
	item->neighbors = NULL;
	if (withNeighbors)
		CopyNeighbors(s, item, etup);
	item->value = NULL;
	if (s->keepValues && withNeighbors)
	{
		char	   *v = HnswElementValue(etup);
		Size		len = VARSIZE(v);

		item->value = len <= HNSW_ARENA_BLOCK / 4 ? ArenaAlloc(s, MAXALIGN(len)) : palloc(len);
		memcpy(item->value, v, len);
		if (len > HNSW_ARENA_BLOCK / 4)
			s->memused += len;
	}
	s->memused += 3 * sizeof(HnswHeapEntry) + 16;
	return s->nitems++;
}

/* Reads the neighbour list of an item that was evaluated without it. */
static void
LoadNeighbors(HnswSearch *s, HnswItem *item)
{
	Buffer		buf = SearchReadBuffer(s->index, ItemPointerGetBlockNumber(&item->tid));
	HnswElementTuple etup;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	etup = HnswGetElement(BufferGetPage(buf), ItemPointerGetOffsetNumber(&item->tid));
	if (etup != NULL && !etup->deleted && etup->level >= s->lc)
		CopyNeighbors(s, item, etup);
	else
		item->nneighbors = 0;
	UnlockReleaseBuffer(buf);
}

/* Sorts a few TIDs in place (block, then offset): insertion sort, n <= 2 * HNSW_MAX_M. */
static void
SortTids(ItemPointerData *tids, int n)
{
	int			i,
				j;

	for (i = 1; i < n; i++)
	{
		ItemPointerData t = tids[i];

		for (j = i; j > 0 && ItemPointerCompare(&tids[j - 1], &t) > 0; j--)
			tids[j] = tids[j - 1];
		tids[j] = t;
	}
}

/*
 * Hints the CPU to fetch the element at off of a pinned (not yet locked)
 * page, so that its value streams in while the previous block is being
 * computed.  The line pointer is read without the content lock: elements
 * are never moved or removed, and a stale read only wastes a prefetch.
 * Always inlined: as a function of its own GCC finds it free of side
 * effects and deletes the calls.
 */
static pg_attribute_always_inline void
PrefetchElement(Buffer buf, OffsetNumber off)
{
	Page		page = BufferGetPage(buf);
	PageHeader	ph = (PageHeader) page;
	ItemId		iid;
	char	   *p;
	uint32		len,
				k;

	if (off < FirstOffsetNumber ||
		(Size) ph->pd_lower < SizeOfPageHeaderData + sizeof(ItemIdData) * off)
		return;
	iid = PageGetItemId(page, off);
	len = ItemIdGetLength(iid);
	if (ItemIdGetOffset(iid) + len > BLCKSZ)
		return;
	p = (char *) page + ItemIdGetOffset(iid);
	for (k = 0; k < len; k += 64)
		__builtin_prefetch(p + k);
}

/*
 * Computes the distance to each element in tids (visited already), one
 * buffer lock per block, and files it into the candidate, result and
 * discarded heaps.  The next block is pinned and its element prefetched
 * before the current one is locked and computed.
 */
static void
EvaluateBatch(HnswSearch *s, ItemPointerData *tids, int n, int ef)
{
	int			i = 0;
	Buffer		next = InvalidBuffer;

	if (n > 1)
		SortTids(tids, n);
	if (n > 0)
	{
		next = SearchReadBuffer(s->index, ItemPointerGetBlockNumber(&tids[0]));
		PrefetchElement(next, ItemPointerGetOffsetNumber(&tids[0]));
	}
	while (i < n)
	{
		BlockNumber blkno = ItemPointerGetBlockNumber(&tids[i]);
		Buffer		buf = next;
		Page		page;
		int			j;

		/* pin the following block and start fetching its element */
		next = InvalidBuffer;
		for (j = i + 1; j < n; j++)
		{
			if (ItemPointerGetBlockNumber(&tids[j]) != blkno)
			{
				next = SearchReadBuffer(s->index, ItemPointerGetBlockNumber(&tids[j]));
				PrefetchElement(next, ItemPointerGetOffsetNumber(&tids[j]));
				break;
			}
		}

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		for (; i < n && ItemPointerGetBlockNumber(&tids[i]) == blkno; i++)
		{
			HnswElementTuple etup = HnswGetElement(page, ItemPointerGetOffsetNumber(&tids[i]));
			float		d;
			bool		live;

			if (etup == NULL || etup->deleted || etup->level < s->lc)
				continue;
			d = HnswDistance(s->support, s->query, HnswElementValue(etup));
			s->evaluated++;
			live = etup->ntids > 0;
			if (s->result.n < ef || d < -HnswHeapTop(&s->result).key)
			{
				int			idx = NewItem(s, &tids[i], d, etup, true);

				HnswHeapPush(&s->cand, d, idx);
				if (live)
				{
					HnswHeapPush(&s->result, -d, idx);
					while (s->result.n > ef)
					{
						HnswHeapEntry e = HnswHeapPop(&s->result);

						HnswHeapPush(&s->discarded, -e.key, e.idx);
					}
				}
			}
			else if (live)
			{
				int			idx = NewItem(s, &tids[i], d, etup, false);

				HnswHeapPush(&s->discarded, d, idx);
			}
		}
		UnlockReleaseBuffer(buf);
	}
	Assert(!BufferIsValid(next));
}

/* Adds an entry point (evaluated unconditionally); returns items added. */
int
HnswSearchAddEntry(HnswSearch *s, ItemPointer tid)
{
	ItemPointerData t = *tid;
	int			before = s->nitems;

	if (!HnswTidSetAdd(&s->visited, &t))
		return 0;
	EvaluateBatch(s, &t, 1, INT_MAX);
	return s->nitems - before;
}

/*
 * Runs (or resumes) the best-first search with beam width ef.  Stops early
 * once maxEvaluated distances were computed or maxMem bytes used (0 = no
 * limit).
 */
void
HnswSearchRun(HnswSearch *s, int ef, int64 maxEvaluated, Size maxMem)
{
	ItemPointerData *batch = palloc(sizeof(ItemPointerData) * (2 * HNSW_MAX_M));

	while (s->result.n > ef)
	{
		HnswHeapEntry e = HnswHeapPop(&s->result);

		HnswHeapPush(&s->discarded, -e.key, e.idx);
	}
	while (s->cand.n > 0)
	{
		HnswHeapEntry c = HnswHeapTop(&s->cand);
		HnswItem   *item;
		int			nb = 0;
		int			j;

		if (s->result.n >= ef && c.key > -HnswHeapTop(&s->result).key)
			break;
		if (maxEvaluated > 0 && s->evaluated >= maxEvaluated)
			break;
		if (maxMem > 0 && s->memused >= maxMem)
			break;
		CHECK_FOR_INTERRUPTS();
		HnswHeapPop(&s->cand);
		item = HnswSearchItem(s, c.idx);
		if (item->nneighbors < 0)
			LoadNeighbors(s, item);
		for (j = 0; j < item->nneighbors; j++)
		{
			if (HnswTidSetAdd(&s->visited, &item->neighbors[j]))
				batch[nb++] = item->neighbors[j];
		}
		if (nb > 0)
			EvaluateBatch(s, batch, nb, ef);
	}
	pfree(batch);
}

/*
 * Descends greedily from entry at fromLevel down to toLevel + 1 and returns
 * the nearest element found in *result (ef = 1 per level).  Returns 0 when
 * the entry point is gone.
 */
int
HnswSearchGreedy(Relation index, HnswSupport *support, const char *query,
				 int m, ItemPointer entry, int fromLevel, int toLevel,
				 ItemPointer result)
{
	ItemPointerData cur = *entry;
	int			lc;

	for (lc = fromLevel; lc > toLevel; lc--)
	{
		HnswSearch	s;
		int			best = -1;
		int			i;

		HnswSearchInit(&s, index, support, query, m, lc, false);
		HnswSearchAddEntry(&s, &cur);
		HnswSearchRun(&s, 1, 0, 0);
		for (i = 0; i < s.nitems; i++)
			if (best < 0 || HnswSearchItem(&s, i)->dist < HnswSearchItem(&s, best)->dist)
				best = i;
		if (best < 0)
			return 0;
		cur = HnswSearchItem(&s, best)->tid;
	}
	*result = cur;
	return 1;
}

/*
 * Returns the index of the largest of n distances, a random one among ties,
 * so that repeated forced links into a clique of equal vectors do not all
 * evict the same neighbour.
 */
int
HnswFarthest(const float *dists, int n)
{
	int			far = 0;
	int			ties = 1;
	int			i;

	for (i = 1; i < n; i++)
	{
		if (dists[i] > dists[far])
		{
			far = i;
			ties = 1;
		}
		else if (dists[i] == dists[far] &&
				 pg_prng_uint64_range(&pg_global_prng_state, 0, ties++) == 0)
			far = i;
	}
	return far;
}

static int
CompareFloatIdx(const void *a, const void *b)
{
	const HnswHeapEntry *x = a;
	const HnswHeapEntry *y = b;

	if (x->key < y->key)
		return -1;
	if (x->key > y->key)
		return 1;
	return x->idx - y->idx;
}

/*
 * Chooses up to cap of n candidates with the HNSW heuristic: nearest first,
 * skipping a candidate that is nearer to an already chosen one than to the
 * base.  With keepPruned, fills the remaining slots with skipped ones.
 * Returns the chosen indexes (palloc'd), nearest first.
 */
int *
HnswSelectNeighbors(HnswSupport *support, char **values, float *dists,
					int n, int cap, bool keepPruned, int *nselected)
{
	HnswHeapEntry *order = palloc(sizeof(HnswHeapEntry) * Max(n, 1));
	int		   *sel = palloc(sizeof(int) * Max(cap, 1));
	int		   *pruned = palloc(sizeof(int) * Max(n, 1));
	int			ns = 0,
				np = 0,
				i;

	for (i = 0; i < n; i++)
	{
		order[i].key = dists[i];
		order[i].idx = i;
	}
	if (n > 64)
		qsort(order, n, sizeof(HnswHeapEntry), CompareFloatIdx);
	else
	{
		/* the usual case (ef_construction or 2m + 1 candidates): insertion sort */
		int			j;

		for (i = 1; i < n; i++)
		{
			HnswHeapEntry t = order[i];

			for (j = i; j > 0 && CompareFloatIdx(&order[j - 1], &t) > 0; j--)
				order[j] = order[j - 1];
			order[j] = t;
		}
	}
	for (i = 0; i < n && ns < cap; i++)
	{
		int			c = order[i].idx;
		bool		good = true;
		int			j;

		for (j = 0; j < ns; j++)
		{
			if (HnswDistance(support, values[c], values[sel[j]]) < dists[c])
			{
				good = false;
				break;
			}
		}
		if (good)
			sel[ns++] = c;
		else
			pruned[np++] = c;
	}
	if (keepPruned)
		for (i = 0; i < np && ns < cap; i++)
			sel[ns++] = pruned[i];
	pfree(order);
	pfree(pruned);
	*nselected = ns;
	return sel;
}
