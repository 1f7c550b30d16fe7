-- hnsw_bit: the hnsw index on bit columns (Hamming and Jaccard).
SET enable_seqscan = off;

-- ---- bit_hamming_ops ----
CREATE TABLE t (val bit(3));
INSERT INTO t (val) VALUES (B'000'), (B'100'), (B'111'), (NULL);
CREATE INDEX ON t USING hnsw (val bit_hamming_ops);
INSERT INTO t (val) VALUES (B'110');
EXPLAIN (COSTS OFF) SELECT * FROM t ORDER BY val <~> B'111' LIMIT 3;
SELECT * FROM t ORDER BY val <~> B'111';
SELECT COUNT(*) FROM (SELECT * FROM t ORDER BY val <~> (SELECT NULL::bit)) t2;
SELECT * FROM vectron_hnsw_check('t_val_idx') WHERE kind <> 'unreachable';
DROP TABLE t;

-- ---- bit_jaccard_ops ----
CREATE TABLE t (val bit(4));
INSERT INTO t (val) VALUES (B'0000'), (B'1100'), (B'1111'), (NULL);
CREATE INDEX ON t USING hnsw (val bit_jaccard_ops);
INSERT INTO t (val) VALUES (B'1110');
EXPLAIN (COSTS OFF) SELECT * FROM t ORDER BY val <%> B'1111' LIMIT 3;
SELECT * FROM t ORDER BY val <%> B'1111';
DROP TABLE t;

-- ---- many duplicates ----
CREATE TABLE t (id int, val bit(16));
INSERT INTO t SELECT i, (i % 7)::bit(16) FROM generate_series(1, 700) i;
CREATE INDEX ON t USING hnsw (val bit_hamming_ops);
SET hnsw.ef_search = 200;
SELECT count(*) FROM (SELECT * FROM t ORDER BY val <~> 3::bit(16) LIMIT 100) s WHERE val = 3::bit(16);
SELECT * FROM vectron_hnsw_check('t_val_idx') WHERE kind <> 'unreachable';

-- ---- errors ----
\set VERBOSITY terse
SELECT * FROM t ORDER BY val <~> B'101' LIMIT 1;
DROP TABLE t;
