-- hnsw_iterative: iterative scans return rows past ef_search.
SET enable_seqscan = off;

-- ---- 500 identical vectors: all are returned with iterative scans ----
CREATE TABLE dup (id int, val vector(3));
INSERT INTO dup SELECT i, '[1,1,1]' FROM generate_series(1, 500) i;
CREATE INDEX ON dup USING hnsw (val vector_l2_ops);
SET hnsw.ef_search = 10;
SELECT count(*) FROM (SELECT id FROM dup ORDER BY val <-> '[1,1,1]') s;
SET hnsw.iterative_scan = relaxed_order;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM dup ORDER BY val <-> '[1,1,1]') s;
SET hnsw.iterative_scan = strict_order;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM dup ORDER BY val <-> '[1,1,1]') s;
-- the same after inserts and deletes
INSERT INTO dup SELECT i, '[1,1,1]' FROM generate_series(501, 600) i;
DELETE FROM dup WHERE id % 3 = 0;
VACUUM dup;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM dup ORDER BY val <-> '[1,1,1]') s;
SELECT * FROM vectron_hnsw_check('dup_val_idx') WHERE kind <> 'unreachable';
DROP TABLE dup;

-- ---- a 1% filter returns its k rows ----
SELECT setseed(0.25);
CREATE TABLE f (id int, category int, val vector(4));
INSERT INTO f SELECT i, i % 100, ARRAY(SELECT random() FROM generate_series(1, 4) WHERE i > 0)::real[]::vector
	FROM generate_series(1, 5000) i;
CREATE INDEX ON f USING hnsw (val vector_l2_ops);
SET hnsw.ef_search = 40;
SET hnsw.iterative_scan = off;
SELECT count(*) <= 10 AS few FROM (SELECT id FROM f WHERE category = 7 ORDER BY val <-> '[0.5,0.5,0.5,0.5]' LIMIT 10) s;
SET hnsw.iterative_scan = relaxed_order;
SELECT count(*) FROM (SELECT id FROM f WHERE category = 7 ORDER BY val <-> '[0.5,0.5,0.5,0.5]' LIMIT 10) s;
SET hnsw.iterative_scan = strict_order;
SELECT count(*) FROM (SELECT id FROM f WHERE category = 7 ORDER BY val <-> '[0.5,0.5,0.5,0.5]' LIMIT 10) s;
-- strict order: distances never decrease
SELECT bool_and(d >= prev) FROM (
	SELECT d, lag(d, 1, 0::float8) OVER (ORDER BY rn) AS prev FROM (
		SELECT val <-> '[0.5,0.5,0.5,0.5]' AS d, row_number() OVER () AS rn
		FROM (SELECT val FROM f WHERE category = 7 ORDER BY val <-> '[0.5,0.5,0.5,0.5]' LIMIT 30) s1) s2) s3;
-- max_scan_tuples bounds the scan
SET hnsw.max_scan_tuples = 50;
SELECT count(*) < 10 AS bounded FROM (SELECT id FROM f WHERE category = 7 ORDER BY val <-> '[0.5,0.5,0.5,0.5]' LIMIT 10) s;
RESET hnsw.max_scan_tuples;
-- a filter matching nothing ends
SELECT count(*) FROM (SELECT id FROM f WHERE category = 1000 ORDER BY val <-> '[0.5,0.5,0.5,0.5]' LIMIT 10) s;
DROP TABLE f;
