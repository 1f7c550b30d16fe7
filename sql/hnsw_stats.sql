-- vectron_index_stats and PostgreSQL's own index statistics for hnsw.
SET enable_seqscan = off;
CREATE TABLE st (id int PRIMARY KEY, v vector(3));
CREATE INDEX st_v ON st USING hnsw (v vector_l2_ops) WITH (m = 4, ef_construction = 16);

-- empty index
SELECT pages, elements, heap_tids, dead_tids, max_level, elements_per_level,
       avg_degree_level0, entry_point, entry_level, m, ef_construction
FROM vectron_index_stats('st_v');

INSERT INTO st SELECT i, ARRAY[i, i % 7, i % 11]::real[]::vector FROM generate_series(1, 200) i;
-- five more rows with one value: they share an element
INSERT INTO st SELECT 1000 + i, '[5,5,5]' FROM generate_series(1, 5) i;

SELECT elements, heap_tids, dead_tids, empty_elements, removed_elements, m, ef_construction,
       bytes = pages * current_setting('block_size')::bigint AS bytes_ok,
       (SELECT sum(x) FROM unnest(elements_per_level) x) = elements AS levels_add_up,
       cardinality(elements_per_level) = max_level + 1 AS one_count_per_level,
       entry_level = max_level AS entry_on_top,
       avg_degree_level0 > 1 AND avg_degree_level0 <= 8 AS degree_in_range
FROM vectron_index_stats('st_v');

-- deleted rows stay in the index until VACUUM
DELETE FROM st WHERE id <= 20;
UPDATE st SET v = '[0,0,1]' WHERE id = 21;
SELECT elements, heap_tids, dead_tids FROM vectron_index_stats('st_v');
SELECT elements, heap_tids, dead_tids IS NULL AS not_checked FROM vectron_index_stats('st_v', false);
VACUUM st;
SELECT heap_tids, dead_tids, elements + removed_elements >= 186 AS accounted
FROM vectron_index_stats('st_v');
SELECT count(*) AS problems FROM vectron_hnsw_check('st_v');

-- searches count into pg_stat_user_indexes (no preloading needed)
SELECT pg_stat_force_next_flush();
SELECT idx_scan AS scans_before FROM pg_stat_user_indexes WHERE indexrelid = 'st_v'::regclass \gset
SELECT id FROM st ORDER BY v <-> '[3,3,3]' LIMIT 3;
SELECT id FROM st ORDER BY v <-> '[9,2,9]' LIMIT 2;
SELECT pg_stat_force_next_flush();
SELECT pg_stat_clear_snapshot();
SELECT idx_scan - :scans_before AS new_scans, idx_tup_read >= 5 AS tuples_counted
FROM pg_stat_user_indexes WHERE indexrelid = 'st_v'::regclass;

-- cross-backend counters need shared_preload_libraries (test/t/018 covers them)
SELECT preloaded, scans, scan_distances, inserts, insert_distances FROM vectron_counters();

-- errors
SELECT * FROM vectron_index_stats('st_pkey');
SELECT * FROM vectron_index_stats('st');
DROP TABLE st;
