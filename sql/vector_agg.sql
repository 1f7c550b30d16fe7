-- avg(vector) and sum(vector), including parallel aggregation.
\set VERBOSITY terse

SELECT avg(v), sum(v) FROM (VALUES ('[1,2,3]'::vector), ('[3,4,5]'), (NULL)) t(v);
SELECT avg(v), sum(v) FROM (VALUES (NULL::vector)) t(v);
SELECT avg(v) FROM (SELECT '[1,2]'::vector WHERE false) t(v);
SELECT avg(v) FROM (VALUES ('[1,2]'::vector), ('[1,2,3]')) t(v);
SELECT sum(v) FROM (VALUES ('[1,2]'::vector), ('[1,2,3]')) t(v);
SELECT sum(v) FROM (VALUES ('[3e38]'::vector), ('[3e38]')) t(v);
-- averaging accumulates in double: no drift over many rows
SELECT avg(v) FROM (SELECT '[0.1,1000000]'::vector FROM generate_series(1, 100000)) t(v);

-- parallel plan with partial aggregation gives the same answer
CREATE TABLE t_agg (v vector(2));
INSERT INTO t_agg SELECT ARRAY[i % 10, (i % 7) * 2]::vector FROM generate_series(1, 100000) i;
ANALYZE t_agg;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT avg(v), sum(v) FROM t_agg;
SELECT avg(v), sum(v) FROM t_agg;
RESET ALL;
SELECT avg(v), sum(v) FROM t_agg;
DROP TABLE t_agg;

-- every function is parallel safe, immutable and strict where it should be
SELECT p.proname, p.provolatile, p.proparallel, p.proisstrict
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'vectron'
WHERE p.prokind = 'f' AND (p.provolatile <> 'i' OR p.proparallel <> 's' OR NOT p.proisstrict)
ORDER BY 1;
