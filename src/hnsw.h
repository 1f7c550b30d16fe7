/*
 * hnsw.h
 *	  Structs, constants and prototypes of the HNSW index access method.
 *
 * See hnsw.c for the design (page layout, locking, WAL order).
 */
#ifndef VECTRON_HNSW_H
#define VECTRON_HNSW_H

#include "vectron.h"

#include "access/amapi.h"
#include "access/genam.h"
#include "access/generic_xlog.h"
#include "access/reloptions.h"
#include "nodes/execnodes.h"
#include "storage/bufmgr.h"
#include "storage/itemptr.h"
#include "utils/relcache.h"

/* Options and their limits, shared by reloptions and checks */
#define HNSW_DEFAULT_M				16
#define HNSW_MIN_M					2
#define HNSW_MAX_M					100
#define HNSW_DEFAULT_EF_CONSTRUCTION 64
#define HNSW_MIN_EF_CONSTRUCTION	4
#define HNSW_MAX_EF_CONSTRUCTION	1000
#define HNSW_DEFAULT_EF_SEARCH		40
#define HNSW_MIN_EF_SEARCH			1
#define HNSW_MAX_EF_SEARCH			1000
#define HNSW_DEFAULT_MAX_SCAN_TUPLES 20000

/* Hard cap on levels; a tuple's level is also capped so that it fits a page */
#define HNSW_MAX_LEVEL				16

/* Heap TIDs kept per element: identical vectors share one element */
#define HNSW_HEAPTIDS				10

/* Support function numbers */
#define HNSW_DISTANCE_PROC			1
#define HNSW_NORM_PROC				2

#define HNSW_METAPAGE_BLKNO			0
#define HNSW_MAGIC					0x56584E48	/* "HNXV" */
#define HNSW_VERSION				1
#define HNSW_PAGE_ID				0xFF91

/* Pseudo page number of the heavyweight lock that serialises writers */
#define HNSW_UPDATE_LOCK			0

/* Tuple types */
#define HNSW_ELEMENT_TUPLE			1

/* Values of hnsw.iterative_scan */
typedef enum HnswIterativeScanMode
{
	HNSW_ITERATIVE_OFF,
	HNSW_ITERATIVE_RELAXED,
	HNSW_ITERATIVE_STRICT
} HnswIterativeScanMode;

/* Build phases reported in pg_stat_progress_create_index */
#define HNSW_PHASE_LOAD				2
#define HNSW_PHASE_WRITE			3

extern int	hnsw_ef_search;
extern int	hnsw_iterative_scan;
extern int	hnsw_max_scan_tuples;
extern double hnsw_scan_mem_multiplier;

/* Reloptions */
typedef struct HnswOptions
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int			m;
	int			efConstruction;
} HnswOptions;

/* Special space of every page */
typedef struct HnswPageOpaqueData
{
	BlockNumber nextblkno;		/* unused, kept for future chaining */
	uint16		flags;
	uint16		page_id;		/* HNSW_PAGE_ID, for tools */
} HnswPageOpaqueData;

typedef HnswPageOpaqueData *HnswPageOpaque;

#define HnswPageGetOpaque(page) ((HnswPageOpaque) PageGetSpecialPointer(page))

/* Block 0: the metapage */
typedef struct HnswMetaPageData
{
	uint32		magic;
	uint32		version;
	uint16		m;
	uint16		efConstruction;
	int32		dims;			/* of the first indexed value; -1 unknown */
	BlockNumber entryBlkno;		/* entry point, InvalidBlockNumber if empty */
	OffsetNumber entryOffno;
	int16		entryLevel;
	BlockNumber insertPage;		/* last page, where inserts try first */
	double		maxNormSq;		/* inner product: squared norm bound of the graph */
} HnswMetaPageData;

typedef HnswMetaPageData *HnswMetaPage;

#define HnswPageGetMeta(page) ((HnswMetaPage) PageGetContents(page))

/*
 * An element: one index tuple per distinct value, holding its heap TIDs, its
 * neighbour lists for every level (2m slots at level 0, m at each level
 * above, unused slots invalid and at the end of each list) and the value
 * itself, a plain 4-byte-header varlena at a MAXALIGNed offset.
 */
typedef struct HnswElementTupleData
{
	uint8		type;			/* HNSW_ELEMENT_TUPLE */
	uint8		level;
	uint8		deleted;		/* removed by VACUUM; no links point here */
	uint8		m;				/* the index's m, so tuples describe themselves */
	uint16		ntids;			/* live heap TIDs; 0 = dead, still routes */
	uint16		valueoff;		/* offset of the value from the tuple start */
	ItemPointerData heaptids[HNSW_HEAPTIDS];
	ItemPointerData neighbors[FLEXIBLE_ARRAY_MEMBER];
} HnswElementTupleData;

typedef HnswElementTupleData *HnswElementTuple;

#define HNSW_LAYER_CAPACITY(m, lc)	((lc) == 0 ? 2 * (m) : (m))
#define HNSW_LAYER_START(m, lc)		((lc) == 0 ? 0 : 2 * (m) + ((lc) - 1) * (m))
#define HNSW_NEIGHBOR_SLOTS(m, level) (2 * (m) + (level) * (m))
#define HNSW_ELEMENT_VALUEOFF(m, level) \
	MAXALIGN(offsetof(HnswElementTupleData, neighbors) + \
			 sizeof(ItemPointerData) * HNSW_NEIGHBOR_SLOTS(m, level))
#define HnswElementValue(etup)		((char *) (etup) + (etup)->valueoff)

/* Largest tuple that fits on an otherwise empty page */
#define HNSW_MAX_TUPLE_SIZE \
	(BLCKSZ - MAXALIGN(SizeOfPageHeaderData + sizeof(ItemIdData)) - \
	 MAXALIGN(sizeof(HnswPageOpaqueData)))

/* How distances are computed for an index column */
typedef enum HnswKind
{
	HNSW_KIND_L2,				/* squared Euclidean */
	HNSW_KIND_IP,				/* negative inner product */
	HNSW_KIND_COSINE,			/* negative inner product of unit vectors */
	HNSW_KIND_L1,
	HNSW_KIND_HAMMING,
	HNSW_KIND_JACCARD,
	HNSW_KIND_MIPS,				/* graph of ip: Euclidean after lifting onto a sphere */
	HNSW_KIND_FMGR				/* unknown function: call it through fmgr */
} HnswKind;

typedef struct HnswSupport
{
	HnswKind	kind;
	bool		normalize;		/* cosine: store unit vectors, skip zeros */
	bool		scanBound;		/* scan: full query, lower bounds to codes */
	double		maxNormSq;		/* MIPS: squared radius of the lifting sphere */
	int			m;				/* the index's m (whether a full vector fits) */
	FmgrInfo   *distproc;
	FmgrInfo   *normproc;
	Oid			collation;
} HnswSupport;

/* A min-heap of (distance, index) pairs; a max-heap stores -distance */
typedef struct HnswHeapEntry
{
	float		key;
	int32		idx;
} HnswHeapEntry;

typedef struct HnswHeap
{
	HnswHeapEntry *a;
	int			n;
	int			cap;
} HnswHeap;

/* An open-addressing set of element TIDs */
typedef struct HnswTidSet
{
	uint64	   *keys;
	uint32		mask;
	uint32		count;
} HnswTidSet;

/* An element met during an on-disk search (kept small: scans meet thousands) */
typedef struct HnswItem
{
	ItemPointerData tid;		/* of the element tuple */
	uint8		level;
	uint8		ntids;
	int16		nneighbors;		/* -1: list not copied yet */
	float		dist;
	ItemPointerData *heaptids;	/* copy, live elements only */
	ItemPointerData *neighbors; /* copy of its list at the searched level */
	char	   *value;			/* copy of the value, when asked for */
} HnswItem;

#define HNSW_ITEM_CHUNK_BITS	10
#define HNSW_ITEM_CHUNK			(1 << HNSW_ITEM_CHUNK_BITS)
#define HNSW_ARENA_BLOCK		(32 * 1024)

/* State of an on-disk layer search; resumable for iterative scans */
typedef struct HnswSearch
{
	Relation	index;
	HnswSupport *support;
	const char *query;
	int			m;
	int			lc;				/* level searched */
	bool		keepValues;
	HnswItem  **chunks;			/* items, HNSW_ITEM_CHUNK per chunk */
	int			nchunks;
	int			maxchunks;
	int			nitems;
	char	   *arena;			/* bump allocator for small copies */
	Size		arenaleft;
	HnswTidSet	visited;
	HnswHeap	cand;			/* to expand, nearest first */
	HnswHeap	result;			/* best ef live elements, farthest first */
	HnswHeap	discarded;		/* evaluated, pushed out of result */
	int64		evaluated;
	Size		memused;
} HnswSearch;

#define HnswSearchItem(s, i) \
	(&(s)->chunks[(i) >> HNSW_ITEM_CHUNK_BITS][(i) & (HNSW_ITEM_CHUNK - 1)])

/* hnsw.c */
extern int	HnswGetM(Relation index);
extern int	HnswGetEfConstruction(Relation index);

/* hnswutils.c */
extern void HnswInitSupport(Relation index, HnswSupport *support, bool forGraph);
extern float HnswDistance(HnswSupport *support, const char *a, const char *b);
extern char *HnswFormValue(HnswSupport *support, Datum value, bool *ok);
extern int	HnswValueDims(HnswSupport *support, const char *value);
extern int	HnswRandomLevel(int m, Size valuesize);
extern Size HnswElementSize(int m, int level, Size valuesize);
extern void HnswInitPage(Page page);
extern void HnswInitMetaPage(Page page, int m, int efConstruction);
extern void HnswReadMeta(Relation index, HnswMetaPageData *meta);
extern HnswElementTuple HnswGetElement(Page page, OffsetNumber off);
extern int	HnswLayerCount(HnswElementTuple etup, int lc);
extern HnswElementTuple HnswCopyElement(Relation index, ItemPointer tid);

extern void HnswHeapInit(HnswHeap *h, int cap);
extern void HnswHeapPush(HnswHeap *h, float key, int32 idx);
extern HnswHeapEntry HnswHeapPop(HnswHeap *h);
#define HnswHeapTop(h) ((h)->a[0])

extern void HnswTidSetInit(HnswTidSet *s, int cap);
extern bool HnswTidSetAdd(HnswTidSet *s, ItemPointer tid);
extern bool HnswTidSetContains(HnswTidSet *s, ItemPointer tid);

extern void HnswSearchInit(HnswSearch *s, Relation index, HnswSupport *support,
						   const char *query, int m, int lc, bool keepValues);
extern int	HnswSearchAddEntry(HnswSearch *s, ItemPointer tid);
extern void HnswSearchRun(HnswSearch *s, int ef, int64 maxEvaluated, Size maxMem);
extern int	HnswSearchGreedy(Relation index, HnswSupport *support, const char *query,
							 int m, ItemPointer entry, int fromLevel, int toLevel,
							 ItemPointer result);
extern int	HnswFarthest(const float *dists, int n);
extern int *HnswSelectNeighbors(HnswSupport *support, char **values, float *dists,
								int n, int cap, bool keepPruned, int *nselected);

/* hnswinsert.c */
extern bool hnswinsert(Relation index, Datum *values, bool *isnull,
					   ItemPointer heap_tid, Relation heap,
					   IndexUniqueCheck checkUnique, bool indexUnchanged,
					   IndexInfo *indexInfo);
extern bool HnswAddBackLink(Relation index, HnswSupport *support, ItemPointer ntid, int lc,
							ItemPointer newtid, char *newvalue, float dist, bool force,
							ItemPointerData *dropped, int *ndropped);
extern void HnswInsertValue(Relation index, HnswSupport *support, char *value,
							ItemPointer heaptid);

/* hnswlinks.c */
extern bool HnswHasOtherLink(Relation index, ItemPointer tid, int lc, ItemPointer except,
							 ItemPointer extra);
extern bool HnswAppendLink(Relation index, ItemPointer owner, int lc, ItemPointer target);
extern int	HnswLinkUnreachable(Relation index, HnswSupport *support,
								BufferAccessStrategy strategy);
extern int	HnswLinkOrphansMem(HnswSupport *support, int m, void *elems, Size stride,
							   Size offValue, Size offNeighbors, Size offLevel,
							   int nelems, int entry);
/*
 * hnswquant.c: SQ8 codes for vectors of HNSW_QUANT_MIN_DIMS or more, and
 * for fewer when the full vector would not fit a level-0 element at the
 * index's m (from 1,719 dimensions at m = 100, 1,971 at m = 16)
 */
#define HNSW_QUANT_MIN_DIMS 2001
extern bool HnswQuantIs(const char *value);
extern bool HnswQuantWanted(HnswSupport *support, int dims);
extern char *HnswQuantize(const char *value);
extern double HnswValueNormSq(const char *value);
extern float HnswQuantDistance(HnswSupport *support, const char *a, const char *b);
extern double HnswQuantOrderValue(HnswSupport *support, float dist);

/* hnswbuild.c */
extern IndexBuildResult *hnswbuild(Relation heap, Relation index, IndexInfo *indexInfo);
extern void hnswbuildempty(Relation index);

/* hnswparallel.c: the parallel build's shared graph */
typedef struct HnswParallelBuild HnswParallelBuild;

typedef struct HnswParallelResult
{
	bool		ok;				/* false: the shared arena filled, build serially */
	int			nelems;			/* elements, merged ones included */
	int			entry;			/* element number, -1 if none */
	int			dims;
	double		maxNormSq;
	double		reltuples;		/* heap tuples scanned */
	double		indtuples;		/* tuples indexed */
	int			nworkersLaunched;
} HnswParallelResult;

extern int	HnswParallelWorkers(Relation heap, Relation index, IndexInfo *indexInfo);
extern HnswParallelBuild *HnswParallelBuildGraph(Relation heap, Relation index,
												 IndexInfo *indexInfo, int nworkers);
extern HnswParallelResult *HnswParallelGetResult(HnswParallelBuild *pb);
extern void HnswParallelGetElement(HnswParallelBuild *pb, int i, char **value,
								   int32 **neighbors, uint8 *level, uint8 *ntids,
								   ItemPointerData *heaptids);
extern void HnswParallelEnd(HnswParallelBuild *pb);

/* hnswscan.c */
extern IndexScanDesc hnswbeginscan(Relation index, int nkeys, int norderbys);
extern void hnswrescan(IndexScanDesc scan, ScanKey keys, int nkeys,
					   ScanKey orderbys, int norderbys);
extern bool hnswgettuple(IndexScanDesc scan, ScanDirection dir);
extern void hnswendscan(IndexScanDesc scan);

/* hnswvacuum.c */
extern IndexBulkDeleteResult *hnswbulkdelete(IndexVacuumInfo *info,
											 IndexBulkDeleteResult *stats,
											 IndexBulkDeleteCallback callback,
											 void *callback_state);
extern IndexBulkDeleteResult *hnswvacuumcleanup(IndexVacuumInfo *info,
												IndexBulkDeleteResult *stats);

/* hnswstats.c */
extern void HnswCountersInit(void);
extern void HnswCountScan(int64 distances);
extern void HnswCountInsert(int64 distances);

/* hnswvalidate.c */
extern bool hnswvalidate(Oid opclassoid);

#endif							/* VECTRON_HNSW_H */
