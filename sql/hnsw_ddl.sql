-- hnsw_ddl: the index through DDL: empty tables, REINDEX, CONCURRENTLY,
-- partitions, expressions, unlogged tables, the planner, amvalidate.

-- ---- amvalidate on every opclass ----
SELECT opcname, amvalidate(c.oid) FROM pg_opclass c JOIN pg_am a ON a.oid = c.opcmethod
	WHERE a.amname = 'hnsw' ORDER BY opcname;

-- ---- empty table, then rows ----
CREATE TABLE t (id int, val vector(3));
CREATE INDEX t_idx ON t USING hnsw (val vector_l2_ops);
SET enable_seqscan = off;
SELECT * FROM t ORDER BY val <-> '[1,1,1]' LIMIT 1;
SELECT * FROM vectron_hnsw_check('t_idx') WHERE kind <> 'unreachable';
INSERT INTO t SELECT i, ARRAY[i, i % 10, 1]::real[]::vector FROM generate_series(1, 200) i;
SELECT id FROM t ORDER BY val <-> '[3,3.1,1]' LIMIT 3;

-- ---- REINDEX and REINDEX CONCURRENTLY ----
REINDEX INDEX t_idx;
SELECT id FROM t ORDER BY val <-> '[3,3.1,1]' LIMIT 3;
REINDEX INDEX CONCURRENTLY t_idx;
SELECT id FROM t ORDER BY val <-> '[3,3.1,1]' LIMIT 3;
SELECT * FROM vectron_hnsw_check('t_idx') WHERE kind <> 'unreachable';

-- ---- CREATE INDEX CONCURRENTLY, with duplicate vectors ----
DROP INDEX t_idx;
INSERT INTO t SELECT 1000 + i, '[5,5,5]' FROM generate_series(1, 30) i;
CREATE INDEX CONCURRENTLY t_idx ON t USING hnsw (val vector_l2_ops);
SELECT indisvalid FROM pg_index WHERE indexrelid = 't_idx'::regclass;
SET hnsw.ef_search = 100;
SELECT count(*) FROM (SELECT id FROM t ORDER BY val <-> '[5,5,5]' LIMIT 30) s WHERE id > 1000;
RESET hnsw.ef_search;
SELECT * FROM vectron_hnsw_check('t_idx') WHERE kind <> 'unreachable';

-- ---- TRUNCATE ----
TRUNCATE t;
SELECT * FROM t ORDER BY val <-> '[1,1,1]' LIMIT 1;
INSERT INTO t VALUES (1, '[1,1,1]');
SELECT id FROM t ORDER BY val <-> '[1,1,1]' LIMIT 1;
DROP TABLE t;

-- ---- the planner: ORDER BY ... LIMIT uses the index, plain scans do not ----
RESET enable_seqscan;
CREATE TABLE big (id int, val vector(3));
INSERT INTO big SELECT i, ARRAY[i % 97, i % 89, i % 83]::real[]::vector FROM generate_series(1, 20000) i;
CREATE INDEX big_idx ON big USING hnsw (val vector_l2_ops);
ANALYZE big;
EXPLAIN (COSTS OFF) SELECT id FROM big ORDER BY val <-> '[1,2,3]' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM big WHERE id < 100;
EXPLAIN (COSTS OFF) SELECT count(*) FROM big;
EXPLAIN (COSTS OFF) SELECT id FROM big WHERE val = '[1,2,3]';
DROP TABLE big;

-- ---- partitioned table ----
SET enable_seqscan = off;
CREATE TABLE p (id int, val vector(3)) PARTITION BY RANGE (id);
CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (100);
CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (100) TO (200);
INSERT INTO p SELECT i, ARRAY[i, 0, 0]::real[]::vector FROM generate_series(0, 199) i;
CREATE INDEX p_idx ON p USING hnsw (val vector_l2_ops);
EXPLAIN (COSTS OFF) SELECT id FROM p ORDER BY val <-> '[99.6,0,0]' LIMIT 3;
SELECT id FROM p ORDER BY val <-> '[99.6,0,0]' LIMIT 3;
DROP TABLE p;

-- ---- expression index ----
CREATE TABLE e (id int, val vector);
INSERT INTO e VALUES (1, '[1,2,3]'), (2, '[4,5,6]'), (3, '[1,1,1]');
CREATE INDEX e_idx ON e USING hnsw ((val::vector(3)) vector_l2_ops);
EXPLAIN (COSTS OFF) SELECT id FROM e ORDER BY val::vector(3) <-> '[4,4,4]' LIMIT 2;
SELECT id FROM e ORDER BY val::vector(3) <-> '[4,4,4]' LIMIT 2;
DROP TABLE e;

-- ---- unlogged table ----
CREATE UNLOGGED TABLE u (id int, val vector(3));
CREATE INDEX u_idx ON u USING hnsw (val vector_cosine_ops);
INSERT INTO u VALUES (1, '[1,2,3]'), (2, '[-1,-2,-3]');
SELECT id FROM u ORDER BY val <=> '[1,2,3.5]' LIMIT 1;
DROP TABLE u;

-- ---- temporary table ----
CREATE TEMP TABLE tt (id int, val vector(2));
CREATE INDEX ON tt USING hnsw (val vector_l1_ops);
INSERT INTO tt VALUES (1, '[1,2]'), (2, '[3,4]');
SELECT id FROM tt ORDER BY val <+> '[3,3]' LIMIT 1;
DROP TABLE tt;
