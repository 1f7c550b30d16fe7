-- hnsw_vector: the hnsw index on vector columns, one section per opclass.
-- Tables are small enough that ef_search covers every row, so the index's
-- answer must equal the exact one.
SET enable_seqscan = off;

-- ---- vector_l2_ops ----
CREATE TABLE t (val vector(3));
INSERT INTO t (val) VALUES ('[0,0,0]'), ('[1,2,3]'), ('[1,1,1]'), (NULL);
CREATE INDEX ON t USING hnsw (val vector_l2_ops);
INSERT INTO t (val) VALUES ('[1,2,4]');
EXPLAIN (COSTS OFF) SELECT * FROM t ORDER BY val <-> '[3,3,3]' LIMIT 3;
SELECT * FROM t ORDER BY val <-> '[3,3,3]';
SELECT COUNT(*) FROM (SELECT * FROM t ORDER BY val <-> (SELECT NULL::vector)) t2;
SELECT COUNT(*) FROM t;
SELECT * FROM vectron_hnsw_check('t_val_idx') WHERE kind <> 'unreachable';
TRUNCATE t;
SELECT * FROM t ORDER BY val <-> '[3,3,3]';
DROP TABLE t;

-- ---- vector_ip_ops ----
CREATE TABLE t (val vector(3));
INSERT INTO t (val) VALUES ('[0,0,0]'), ('[1,2,3]'), ('[1,1,1]'), (NULL);
CREATE INDEX ON t USING hnsw (val vector_ip_ops);
INSERT INTO t (val) VALUES ('[1,2,4]');
EXPLAIN (COSTS OFF) SELECT * FROM t ORDER BY val <#> '[3,3,3]' LIMIT 3;
SELECT * FROM t ORDER BY val <#> '[3,3,3]';
SELECT COUNT(*) FROM (SELECT * FROM t ORDER BY val <#> (SELECT NULL::vector)) t2;
DROP TABLE t;

-- ---- vector_cosine_ops: zero vectors are not indexed ----
CREATE TABLE t (val vector(3));
INSERT INTO t (val) VALUES ('[0,0,0]'), ('[1,2,3]'), ('[1,1,1]'), (NULL);
CREATE INDEX ON t USING hnsw (val vector_cosine_ops);
INSERT INTO t (val) VALUES ('[1,2,4]'), ('[0,0,0]');
EXPLAIN (COSTS OFF) SELECT * FROM t ORDER BY val <=> '[3,3,3]' LIMIT 3;
SELECT * FROM t ORDER BY val <=> '[3,3,3]';
SELECT COUNT(*) FROM (SELECT * FROM t ORDER BY val <=> '[0,0,0]') t2;
SELECT COUNT(*) FROM (SELECT * FROM t ORDER BY val <=> (SELECT NULL::vector)) t2;
DROP TABLE t;

-- ---- vector_l1_ops ----
CREATE TABLE t (val vector(3));
INSERT INTO t (val) VALUES ('[0,0,0]'), ('[1,2,3]'), ('[1,1,1]'), (NULL);
CREATE INDEX ON t USING hnsw (val vector_l1_ops);
INSERT INTO t (val) VALUES ('[1,2,4]');
EXPLAIN (COSTS OFF) SELECT * FROM t ORDER BY val <+> '[3,3,3]' LIMIT 3;
SELECT * FROM t ORDER BY val <+> '[3,3,3]';
DROP TABLE t;

-- ---- more rows than ef_search: index answer vs exact answer ----
SELECT setseed(0.5);
CREATE TABLE items (id int, val vector(8));
INSERT INTO items SELECT i, ARRAY(SELECT round(random() * 100)::real FROM generate_series(1, 8) WHERE i > 0)::vector
	FROM generate_series(1, 2000) i;
CREATE INDEX items_l2 ON items USING hnsw (val vector_l2_ops) WITH (m = 8, ef_construction = 32);
INSERT INTO items SELECT i, ARRAY(SELECT round(random() * 100)::real FROM generate_series(1, 8) WHERE i > 0)::vector
	FROM generate_series(2001, 2500) i;
SET hnsw.ef_search = 100;
CREATE TEMP TABLE approx AS SELECT id FROM items ORDER BY val <-> '[50,50,50,50,50,50,50,50]' LIMIT 10;
RESET enable_seqscan;
SET enable_indexscan = off;
CREATE TEMP TABLE exact AS SELECT id FROM items ORDER BY val <-> '[50,50,50,50,50,50,50,50]' LIMIT 10;
RESET enable_indexscan;
SELECT count(*) AS hits FROM approx JOIN exact USING (id);
SELECT * FROM vectron_hnsw_check('items_l2') WHERE kind <> 'unreachable';

-- ---- deletes and VACUUM ----
DELETE FROM items WHERE id % 2 = 0;
VACUUM items;
SELECT * FROM vectron_hnsw_check('items_l2') WHERE kind <> 'unreachable';
SET enable_seqscan = off;
SELECT count(*) AS even_rows FROM (SELECT id FROM items ORDER BY val <-> '[50,50,50,50,50,50,50,50]' LIMIT 50) s WHERE id % 2 = 0;
SELECT count(*) FROM (SELECT id FROM items ORDER BY val <-> '[50,50,50,50,50,50,50,50]' LIMIT 50) s;
DELETE FROM items;
VACUUM items;
SELECT * FROM vectron_hnsw_check('items_l2') WHERE kind <> 'unreachable';
SELECT * FROM items ORDER BY val <-> '[50,50,50,50,50,50,50,50]' LIMIT 1;
INSERT INTO items VALUES (1, '[1,1,1,1,1,1,1,1]');
SELECT * FROM items ORDER BY val <-> '[50,50,50,50,50,50,50,50]' LIMIT 1;
SELECT * FROM vectron_hnsw_check('items_l2') WHERE kind <> 'unreachable';
DROP TABLE items;

-- ---- errors ----
\set VERBOSITY terse
CREATE TABLE t (val vector(3));
CREATE INDEX ON t USING hnsw (val vector_l2_ops);
INSERT INTO t VALUES ('[1,2,3]');
SELECT * FROM t ORDER BY val <-> '[1,2]' LIMIT 1;
DROP TABLE t;
CREATE TABLE t (val vector);
CREATE INDEX ON t USING hnsw (val vector_l2_ops);
INSERT INTO t VALUES ('[1,2,3]');
INSERT INTO t VALUES ('[1,2]');
DROP TABLE t;
CREATE TABLE t (val vector(9000));
CREATE INDEX ON t USING hnsw (val vector_l2_ops);
INSERT INTO t SELECT array_fill(1, ARRAY[9000])::vector;
DROP TABLE t;
CREATE TABLE t (a int);
CREATE INDEX ON t USING hnsw (a);
SELECT * FROM vectron_hnsw_check('pg_class_oid_index') WHERE kind <> 'unreachable';
DROP TABLE t;
