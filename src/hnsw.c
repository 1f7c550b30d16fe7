/*
 * hnsw.c
 *	  The HNSW index access method: handler, reloptions, GUCs and cost
 *	  estimate.
 *
 * Design
 * ------
 * An HNSW index is a multi-layer proximity graph.  Every distinct indexed
 * value is an "element" with a random level; on each level from 0 to its
 * own it keeps a list of neighbours (2m on level 0, m above).  A search
 * descends greedily from the entry point through the upper levels and then
 * runs a best-first beam search of width ef on level 0.
 *
 * Pages.  Block 0 is the metapage (m, ef_construction, dimensions, entry
 * point and the page where inserts go).  Every other block holds element
 * tuples.  An element tuple keeps together everything one hop of a search
 * needs: its heap TIDs (up to HNSW_HEAPTIDS; identical values share an
 * element), its neighbour lists for all its levels, and the value itself.
 * So a hop reads one page under one share lock, computes the distance on
 * the page with the SIMD kernel and copies out the neighbour list.  The
 * tuple has a fixed size for its level, so neighbour lists are rewritten in
 * place.  An element must fit on one page: with m = 16, full vectors of up
 * to 1,970 dimensions; above that (or when the vector would not fit at the
 * index's m) the element holds an SQ8 code and scans re-rank from the heap
 * (hnswquant.c, docs/hnsw.md).
 *
 * Build.  ambuild reads the heap and builds the graph in memory (dense
 * element numbers, tag-array visited set, kernels called directly) within
 * maintenance_work_mem, then lays out the tuples, resolves neighbour
 * numbers into TIDs and writes the pages in one pass, WAL-logged with
 * log_newpage_range.  With parallel workers the graph lives in a DSM
 * arena that leader and workers fill together (hnswparallel.c).  If
 * memory runs out, the graph built so far is written and the remaining
 * tuples are inserted one by one (NOTICE).
 *
 * Locking.  Scans take only buffer share locks, one page at a time.
 * An insert searches for its neighbours holding the heavyweight lock on
 * the pseudo page HNSW_UPDATE_LOCK in RowShareLock mode (only VACUUM's
 * repair, in ExclusiveLock, waits for it), then writes under
 * ShareUpdateExclusiveLock, so the graph has one writer at a time and no
 * buffer lock is held while waiting for another (hnswinsert.c).  Elements are never moved or reused, so a TID read by a
 * concurrent scan stays valid; a removed element is only flagged deleted.
 *
 * WAL.  Every page change goes through GenericXLog, at most 2 pages per
 * record.  An insert writes, in this order: (1) the new element with its
 * own neighbour lists, (2) one record per neighbour that gains a link back,
 * (3) the metapage if the entry point changes.  Each prefix of that
 * sequence is a valid graph: links only ever point at elements that exist.
 * VACUUM (hnswvacuum.c) first empties heap TIDs (the element still routes
 * searches), then rewrites the lists that point at emptied elements, then
 * moves the entry point, and only then flags the emptied elements deleted.
 */
#include "hnsw.h"

#include <float.h>
#include <malloc.h>
#include <math.h>

#include "access/relscan.h"
#include "commands/progress.h"
#include "catalog/pg_type.h"
#include "commands/vacuum.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/selfuncs.h"
#include "utils/spccache.h"

int			hnsw_ef_search = HNSW_DEFAULT_EF_SEARCH;
int			hnsw_iterative_scan = HNSW_ITERATIVE_OFF;
int			hnsw_max_scan_tuples = HNSW_DEFAULT_MAX_SCAN_TUPLES;
double		hnsw_scan_mem_multiplier = 1.0;

static relopt_kind hnsw_relopt_kind;

static const struct config_enum_entry hnsw_iterative_scan_options[] = {
	{"off", HNSW_ITERATIVE_OFF, false},
	{"relaxed_order", HNSW_ITERATIVE_RELAXED, false},
	{"strict_order", HNSW_ITERATIVE_STRICT, false},
	{NULL, 0, false}
};

/* Registers the reloptions and GUCs; called once from _PG_init. */
void
HnswInit(void)
{
	hnsw_relopt_kind = add_reloption_kind();
	add_int_reloption(hnsw_relopt_kind, "m",
					  "Max number of connections per element and level",
					  HNSW_DEFAULT_M, HNSW_MIN_M, HNSW_MAX_M, AccessExclusiveLock);
	add_int_reloption(hnsw_relopt_kind, "ef_construction",
					  "Size of the dynamic candidate list for construction",
					  HNSW_DEFAULT_EF_CONSTRUCTION, HNSW_MIN_EF_CONSTRUCTION,
					  HNSW_MAX_EF_CONSTRUCTION, AccessExclusiveLock);

	DefineCustomIntVariable("hnsw.ef_search",
							"Sets the size of the dynamic candidate list for search",
							"Valid range is 1..1000.",
							&hnsw_ef_search, HNSW_DEFAULT_EF_SEARCH,
							HNSW_MIN_EF_SEARCH, HNSW_MAX_EF_SEARCH,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("hnsw.iterative_scan",
							 "Sets the mode for iterative scans",
							 "With relaxed_order or strict_order, a scan continues past ef_search "
							 "until the query has its rows or hnsw.max_scan_tuples is reached.",
							 &hnsw_iterative_scan, HNSW_ITERATIVE_OFF,
							 hnsw_iterative_scan_options,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("hnsw.max_scan_tuples",
							"Sets the max number of elements an iterative scan visits",
							NULL, &hnsw_max_scan_tuples, HNSW_DEFAULT_MAX_SCAN_TUPLES,
							1, INT_MAX, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("hnsw.scan_mem_multiplier",
							 "Sets the multiple of work_mem an iterative scan may use",
							 NULL, &hnsw_scan_mem_multiplier, 1.0, 1.0, 1000.0,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("hnsw");
	HnswCountersInit();

#ifdef M_MMAP_THRESHOLD
	/*
	 * A scan or insert allocates a few hundred kB and frees it again.  With
	 * glibc's defaults those blocks are mmap'd or trimmed off the heap each
	 * time, and every query page-faults its memory in anew, which costs more
	 * than the search itself on virtual machines.  Keep up to 16 MB.
	 */
	mallopt(M_MMAP_THRESHOLD, 16 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 32 * 1024 * 1024);
#endif
}

/* Parses and validates reloptions. */
static bytea *
hnswoptions(Datum reloptions, bool validate)
{
	static const relopt_parse_elt tab[] = {
		{"m", RELOPT_TYPE_INT, offsetof(HnswOptions, m)},
		{"ef_construction", RELOPT_TYPE_INT, offsetof(HnswOptions, efConstruction)},
	};
	HnswOptions *opts;

	opts = (HnswOptions *) build_reloptions(reloptions, validate, hnsw_relopt_kind,
											sizeof(HnswOptions), tab, lengthof(tab));
	if (validate && opts != NULL && opts->efConstruction < 2 * opts->m)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ef_construction must be greater than or equal to 2 * m"),
				 errdetail("ef_construction is %d and m is %d.",
						   opts->efConstruction, opts->m)));
	return (bytea *) opts;
}

/* Returns the index's m. */
int
HnswGetM(Relation index)
{
	HnswOptions *opts = (HnswOptions *) index->rd_options;

	return opts ? opts->m : HNSW_DEFAULT_M;
}

/* Returns the index's ef_construction. */
int
HnswGetEfConstruction(Relation index)
{
	HnswOptions *opts = (HnswOptions *) index->rd_options;

	return opts ? opts->efConstruction : HNSW_DEFAULT_EF_CONSTRUCTION;
}

/*
 * Estimates the cost of a scan.  Without ORDER BY the index is useless, so
 * it is priced out.
 *
 * With it, a search evaluates about max(ef_search, LIMIT) * 2m elements at
 * level 0 plus m per upper level.  Each evaluation is a buffer access of a
 * cached page (charged cpu_index_tuple_cost for the pin, lock and tuple)
 * plus a distance, charged one operator call plus one per 256 dimensions:
 * bench_kernels measures a 784-d AVX2 distance at about 43 ns, three to
 * four times a plain operator call.
 * Page I/O is charged only for the part of the index that does not fit
 * effective_cache_size: an HNSW index is read at random and is only usable
 * when it is cached, which is what that setting tells the planner.  We do
 * not use genericcostestimate: it charges random_page_cost for every page
 * the search touches, while the competing plan, a sequential scan plus a
 * top-N sort, is charged almost nothing for vectors stored out of line in
 * TOAST (their detoasting and distances are costed as one operator call
 * per row), so a realistic index never won with default settings.
 *
 * The scan must produce need = LIMIT / (selectivity of the other quals)
 * rows.  Without hnsw.iterative_scan it returns at most about ef_search
 * rows, so when need is larger (a selective filter, a LIMIT above
 * ef_search, or no LIMIT at all) it would silently return fewer rows than
 * asked: it then gets a large fixed penalty (HNSW_UNDELIVERABLE_COST, far
 * below disable_cost), so any exact plan wins, while with enable_seqscan
 * off the index is still used, as pgvector users expect.  With
 * iterative scans the search grows with need instead.  A LIMIT given as a
 * parameter counts as fitting ef_search.
 *
 * All of this happens before the first row, so startup cost = total cost.
 */
#define HNSW_UNDELIVERABLE_COST 1.0e8

static void
hnswcostestimate(PlannerInfo *root, IndexPath *path, double loop_count,
				 Cost *indexStartupCost, Cost *indexTotalCost,
				 Selectivity *indexSelectivity, double *indexCorrelation,
				 double *indexPages)
{
	IndexOptInfo *index = path->indexinfo;
	HnswMetaPageData meta;
	double		tuples = Max(index->tuples, 1.0);
	double		pages = Max((double) index->pages, 1.0);
	double		k,
				visits,
				perVisit,
				uncached,
				startup,
				sel,
				need;
	int			dims;

	if (path->indexorderbys == NIL)
	{
		*indexStartupCost = get_float8_infinity();
		*indexTotalCost = get_float8_infinity();
		*indexSelectivity = 0;
		*indexCorrelation = 0;
		*indexPages = 0;
		return;
	}

	{
		Relation	rel = index_open(index->indexoid, NoLock);

		HnswReadMeta(rel, &meta);
		index_close(rel, NoLock);
	}
	dims = meta.dims > 0 ? meta.dims : 128;
	/* bits: one popcount handles 64 of them */
	if (index->opcintype[0] == BITOID)
		dims = dims / 32;

	perVisit = cpu_index_tuple_cost + cpu_operator_cost * (1.0 + dims / 256.0);
	uncached = 0;
	if (pages > effective_cache_size)
		uncached = 1.0 - effective_cache_size / pages;

	/* rows the scan must produce, given the LIMIT and the other quals */
	sel = index->rel->tuples > 0 ? index->rel->rows / index->rel->tuples : 1.0;
	sel = Min(Max(sel, 1e-6), 1.0);
	if (root->limit_tuples > 0)
		need = root->limit_tuples / sel;
	else if (root->parse->limitCount != NULL)
		need = hnsw_ef_search;
	else
		need = tuples;

	if (hnsw_iterative_scan == HNSW_ITERATIVE_OFF && need > hnsw_ef_search)
	{
		/* could not deliver every row asked for */
		startup = HNSW_UNDELIVERABLE_COST + tuples * perVisit +
			pages * uncached * random_page_cost;
		*indexPages = pages;
	}
	else
	{
		k = Max(hnsw_ef_search, need);
		visits = k * 2 * meta.m + Max(meta.entryLevel, 0) * meta.m;
		if (visits > tuples)
			visits = tuples;
		startup = visits * perVisit + Min(visits, pages) * uncached * random_page_cost;
		*indexPages = Min(visits, pages);
	}
	*indexStartupCost = startup;
	*indexTotalCost = startup;
	*indexSelectivity = 1.0;
	*indexCorrelation = 0;
	(void) loop_count;
}

/* Names the build phases for pg_stat_progress_create_index. */
static char *
hnswbuildphasename(int64 phasenum)
{
	switch (phasenum)
	{
		case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
			return "initializing";
		case HNSW_PHASE_LOAD:
			return "loading tuples";
		case HNSW_PHASE_WRITE:
			return "writing pages";
		default:
			return NULL;
	}
}

PG_FUNCTION_INFO_V1(hnswhandler);
/* Returns the IndexAmRoutine of the hnsw access method. */
Datum
hnswhandler(PG_FUNCTION_ARGS)
{
	IndexAmRoutine *amroutine = makeNode(IndexAmRoutine);

	amroutine->amstrategies = 0;
	amroutine->amsupport = 2;
	amroutine->amoptsprocnum = 0;
	amroutine->amcanorder = false;
	amroutine->amcanorderbyop = true;
	amroutine->amcanbackward = false;
	amroutine->amcanunique = false;
	amroutine->amcanmulticol = false;
	amroutine->amoptionalkey = true;
	amroutine->amsearcharray = false;
	amroutine->amsearchnulls = false;
	amroutine->amstorage = false;
	amroutine->amclusterable = false;
	amroutine->ampredlocks = false;
	amroutine->amcanparallel = false;
	amroutine->amcaninclude = false;
	amroutine->amusemaintenanceworkmem = false;
	amroutine->amparallelvacuumoptions = VACUUM_OPTION_PARALLEL_BULKDEL;
	amroutine->amkeytype = InvalidOid;

	amroutine->ambuild = hnswbuild;
	amroutine->ambuildempty = hnswbuildempty;
	amroutine->aminsert = hnswinsert;
	amroutine->ambulkdelete = hnswbulkdelete;
	amroutine->amvacuumcleanup = hnswvacuumcleanup;
	amroutine->amcanreturn = NULL;
	amroutine->amcostestimate = hnswcostestimate;
	amroutine->amoptions = hnswoptions;
	amroutine->amproperty = NULL;
	amroutine->ambuildphasename = hnswbuildphasename;
	amroutine->amvalidate = hnswvalidate;
	amroutine->amadjustmembers = NULL;
	amroutine->ambeginscan = hnswbeginscan;
	amroutine->amrescan = hnswrescan;
	amroutine->amgettuple = hnswgettuple;
	amroutine->amgetbitmap = NULL;
	amroutine->amendscan = hnswendscan;
	amroutine->ammarkpos = NULL;
	amroutine->amrestrpos = NULL;
	amroutine->amestimateparallelscan = NULL;
	amroutine->aminitparallelscan = NULL;
	amroutine->amparallelrescan = NULL;

	PG_RETURN_POINTER(amroutine);
}
