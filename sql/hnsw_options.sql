-- hnsw_options: index options and GUCs, with their limits.
\set VERBOSITY terse
CREATE TABLE t (val vector(3));

-- ---- m ----
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (m = 1);
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (m = 101);
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (m = 'x');
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (m = 2, ef_construction = 4);

-- ---- ef_construction ----
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (ef_construction = 3);
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (ef_construction = 1001);
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (m = 16, ef_construction = 31);
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (m = 100, ef_construction = 200);
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (foo = 1);
ALTER INDEX t_val_idx SET (m = 1);
ALTER INDEX t_val_idx SET (m = 12);
SELECT reloptions FROM pg_class WHERE relname = 't_val_idx';

-- ---- the index rejects what it cannot do ----
CREATE INDEX ON t USING hnsw (val vector_l2_ops, val vector_l2_ops);
CREATE UNIQUE INDEX ON t USING hnsw (val vector_l2_ops);
CREATE INDEX ON t USING hnsw (val);

-- ---- GUCs ----
SHOW hnsw.ef_search;
SET hnsw.ef_search = 0;
SET hnsw.ef_search = 1001;
SET hnsw.ef_search = 1000;
SHOW hnsw.iterative_scan;
SET hnsw.iterative_scan = on;
SET hnsw.iterative_scan = relaxed_order;
SET hnsw.iterative_scan = strict_order;
SHOW hnsw.max_scan_tuples;
SET hnsw.max_scan_tuples = 0;
SHOW hnsw.scan_mem_multiplier;
SET hnsw.scan_mem_multiplier = 0;
SET hnsw.nonexistent = 1;
RESET ALL;
DROP TABLE t;
