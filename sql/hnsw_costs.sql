-- The cost model: with default planner settings an hnsw index serves
-- ORDER BY ... LIMIT, also on high-dimensional vectors stored out of line
-- (TOAST), and is not used without ORDER BY, or for ORDER BY without LIMIT.
SELECT setseed(0.42);
CREATE TABLE big (id int PRIMARY KEY, cat int, v vector(784));
INSERT INTO big SELECT i, i % 10, (SELECT array_agg(random())::vector(784) FROM generate_series(1, 784) WHERE i > 0)
FROM generate_series(1, 3000) i;
CREATE INDEX big_v ON big USING hnsw (v vector_l2_ops);
ANALYZE big;
SELECT current_setting('enable_seqscan') AS enable_seqscan;
-- the vectors are TOASTed: the heap itself is small
SELECT pg_relation_size('big') < 3000 * 784 * 4 / 4 AS heap_is_small;

EXPLAIN (COSTS OFF) SELECT id FROM big ORDER BY v <-> (SELECT v FROM big WHERE id = 1) LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM big ORDER BY v <-> (SELECT v FROM big WHERE id = 1) LIMIT 40;
-- an operator the index was not built for: no index
EXPLAIN (COSTS OFF) SELECT id FROM big ORDER BY v <=> (SELECT v FROM big WHERE id = 1) LIMIT 10;
-- LIMIT above ef_search: without iterative scans the index would return
-- only about ef_search rows, so the exact plan is chosen ...
EXPLAIN (COSTS OFF) SELECT id FROM big ORDER BY v <-> (SELECT v FROM big WHERE id = 1) LIMIT 100;
-- ... unless the scan may continue, or ef_search covers the LIMIT
SET hnsw.iterative_scan = relaxed_order;
EXPLAIN (COSTS OFF) SELECT id FROM big ORDER BY v <-> (SELECT v FROM big WHERE id = 1) LIMIT 100;
RESET hnsw.iterative_scan;
SET hnsw.ef_search = 100;
EXPLAIN (COSTS OFF) SELECT id FROM big ORDER BY v <-> (SELECT v FROM big WHERE id = 1) LIMIT 100;
RESET hnsw.ef_search;
-- a parameter LIMIT counts as fitting ef_search
PREPARE q(int) AS SELECT id FROM big ORDER BY v <-> (SELECT v FROM big WHERE id = 1) LIMIT $1;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE q(10);
RESET plan_cache_mode;
DEALLOCATE q;
-- no LIMIT: every row is wanted, a sort is cheaper
EXPLAIN (COSTS OFF) SELECT id FROM big ORDER BY v <-> (SELECT v FROM big WHERE id = 1);
-- no ORDER BY: never the hnsw index
EXPLAIN (COSTS OFF) SELECT id FROM big WHERE cat = 3;
EXPLAIN (COSTS OFF) SELECT count(*) FROM big;
-- a 10% filter: the index would have to return about ten times LIMIT rows
-- (and, without hnsw.iterative_scan, could not), so the planner sorts
EXPLAIN (COSTS OFF) SELECT id FROM big WHERE cat = 3 ORDER BY v <-> (SELECT v FROM big WHERE id = 1) LIMIT 10;
SET hnsw.iterative_scan = relaxed_order;
EXPLAIN (COSTS OFF) SELECT id FROM big WHERE cat = 3 ORDER BY v <-> (SELECT v FROM big WHERE id = 1) LIMIT 10;
RESET hnsw.iterative_scan;
-- with sequential scans disabled (as in many pgvector examples) the index
-- is used even where it may return fewer rows
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM big ORDER BY v <-> (SELECT v FROM big WHERE id = 1);
RESET enable_seqscan;
-- the index answers correctly under those plans
SELECT count(*) FROM (SELECT id FROM big ORDER BY v <-> (SELECT v FROM big WHERE id = 7) LIMIT 10) x;
SELECT id FROM big ORDER BY v <-> (SELECT v FROM big WHERE id = 7) LIMIT 1;

-- small vectors, small table
CREATE TABLE small (id int PRIMARY KEY, v vector(3));
INSERT INTO small SELECT i, ARRAY[random(), random(), random()]::vector FROM generate_series(1, 1000) i;
CREATE INDEX small_v ON small USING hnsw (v vector_l2_ops);
ANALYZE small;
EXPLAIN (COSTS OFF) SELECT id FROM small ORDER BY v <-> '[0.5,0.5,0.5]' LIMIT 5;
DROP TABLE big, small;
