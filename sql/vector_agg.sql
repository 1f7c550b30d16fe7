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

-- the transition functions are callable from SQL: bad states are rejected
SELECT vector_avg('{0}') IS NULL AS no_rows;
SELECT vector_avg('{1}');
SELECT vector_avg('{}');
SELECT vector_avg('{NULL,1}');
SELECT vector_avg('{{1,2}}');
SELECT vector_accum('{0}', '[1,2]'), vector_accum('{1,2,3}', '[1,2]');
SELECT vector_accum('{0,0}', '[1,2,3]');
SELECT vector_combine('{1,2}', '{3,4}'), vector_combine('{0}', '{2,4,6}');
SELECT vector_combine('{1,2}', '{3,4,5}');
SELECT vector_combine('{0}', (SELECT array_agg(n) FROM generate_series(1, 16002) n)) IS NULL;
