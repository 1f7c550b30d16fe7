-- hnsw_highdim: vectors above one page (SQ8 codes, exact re-rank).
SET enable_seqscan = off;
SELECT setseed(0.5);
-- 400 vectors of 3072 dimensions around 8 centres
CREATE TABLE c (k int, x real[]);
INSERT INTO c SELECT k, ARRAY(SELECT random() * 2 - 1 FROM generate_series(1, 3072) WHERE k > 0)
	FROM generate_series(1, 8) k;
CREATE TABLE h (id int, cat int, val vector(3072));
INSERT INTO h SELECT i, i % 10,
	ARRAY(SELECT c.x[d] + 0.3 * (random() - 0.5) FROM generate_series(1, 3072) d WHERE i > 0)::vector
	FROM generate_series(1, 300) i JOIN c ON c.k = 1 + i % 8;
CREATE TABLE q (qid int, val vector(3072));
INSERT INTO q SELECT j, ARRAY(SELECT c.x[d] + 0.3 * (random() - 0.5) FROM generate_series(1, 3072) d WHERE j > 0)::vector
	FROM generate_series(1, 4) j JOIN c ON c.k = j;

-- index order is exact distance order and recall against a seq scan
CREATE FUNCTION hd_check(op text) RETURNS TABLE (sorted bool, recall numeric) LANGUAGE plpgsql AS $$
DECLARE r record; got int[]; want int[]; d float8[]; tot int := 0; hit int := 0; ok bool := true;
BEGIN
	FOR r IN SELECT * FROM q LOOP
		SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = on;
		EXECUTE format('SELECT array_agg(id ORDER BY n), array_agg(dd ORDER BY n) FROM (SELECT id, val %s $1 AS dd, row_number() OVER () n FROM (SELECT id, val FROM h ORDER BY val %s $1 LIMIT 10) s) s2', op, op)
			INTO got, d USING r.val;
		SET LOCAL enable_seqscan = on; SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off;
		EXECUTE format('SELECT array_agg(id) FROM (SELECT id FROM h ORDER BY val %s $1 LIMIT 10) s', op)
			INTO want USING r.val;
		FOR i IN 2 .. coalesce(array_length(d, 1), 0) LOOP
			IF d[i] < d[i - 1] THEN ok := false; END IF;
		END LOOP;
		tot := tot + 10;
		hit := hit + (SELECT count(*) FROM unnest(got) g WHERE g = ANY (want));
	END LOOP;
	RETURN QUERY SELECT ok, round(hit::numeric / tot, 2);
END $$;

CREATE INDEX h_l2 ON h USING hnsw (val vector_l2_ops);
SELECT sorted, recall >= 0.95 AS good FROM hd_check('<->');
-- inserts after build, deletes, VACUUM
INSERT INTO h SELECT id + 1000, cat, val FROM h WHERE id <= 50;
DELETE FROM h WHERE id % 7 = 0;
VACUUM h;
SELECT sorted, recall >= 0.95 AS good FROM hd_check('<->');
SELECT * FROM vectron_hnsw_check('h_l2') WHERE kind <> 'unreachable';
-- a filter with an iterative scan returns its rows in order
SET hnsw.iterative_scan = relaxed_order;
EXPLAIN (COSTS OFF) SELECT id FROM h WHERE cat = 3 ORDER BY val <-> (SELECT val FROM q WHERE qid = 1) LIMIT 5;
CREATE TABLE fi AS SELECT array_agg(id) a FROM (SELECT id FROM h WHERE cat = 3 ORDER BY val <-> (SELECT val FROM q WHERE qid = 1) LIMIT 5) s;
SET enable_seqscan = on; SET enable_indexscan = off; SET enable_bitmapscan = off;
SELECT fi.a = (SELECT array_agg(id) FROM (SELECT id FROM h WHERE cat = 3 ORDER BY val <-> (SELECT val FROM q WHERE qid = 1) LIMIT 5) s) AS same_as_exact FROM fi;
RESET enable_indexscan; RESET enable_bitmapscan; SET enable_seqscan = off;
DROP TABLE fi;
RESET hnsw.iterative_scan;
DROP INDEX h_l2;

CREATE INDEX h_ip ON h USING hnsw (val vector_ip_ops);
SELECT sorted, recall >= 0.95 AS good FROM hd_check('<#>');
SELECT * FROM vectron_hnsw_check('h_ip') WHERE kind <> 'unreachable';
DROP INDEX h_ip;
CREATE INDEX h_cos ON h USING hnsw (val vector_cosine_ops);
SELECT sorted, recall >= 0.95 AS good FROM hd_check('<=>');
SELECT * FROM vectron_hnsw_check('h_cos') WHERE kind <> 'unreachable';
DROP INDEX h_cos;
CREATE INDEX h_l1 ON h USING hnsw (val vector_l1_ops);
SELECT sorted, recall >= 0.95 AS good FROM hd_check('<+>');
SELECT * FROM vectron_hnsw_check('h_l1') WHERE kind <> 'unreachable';
DROP INDEX h_l1;

-- 4096 dimensions index too
CREATE TABLE h4 (id int, val vector(4096));
INSERT INTO h4 SELECT i, ARRAY(SELECT random() FROM generate_series(1, 4096) WHERE i > 0)::vector
	FROM generate_series(1, 60) i;
CREATE INDEX ON h4 USING hnsw (val vector_l2_ops);
INSERT INTO h4 SELECT i, ARRAY(SELECT random() FROM generate_series(1, 4096) WHERE i > 0)::vector
	FROM generate_series(61, 80) i;
SELECT count(*) FROM (SELECT id FROM h4 ORDER BY val <-> (SELECT val FROM h4 WHERE id = 70) LIMIT 5) s;
SELECT id FROM h4 ORDER BY val <-> (SELECT val FROM h4 WHERE id = 70) LIMIT 1;
-- between a full element and 2,001 dimensions: codes when the full vector
-- does not fit a level-0 element (1,971-2,000 at m = 16, from 1,719 at m = 100)
CREATE FUNCTION hd_edge(d int, mm int) RETURNS TABLE (dims int, m int, found bool, nearest_self bool, clean bool)
LANGUAGE plpgsql AS $$
DECLARE n int; s int;
BEGIN
	CREATE TABLE he (id int, val vector);
	EXECUTE format('INSERT INTO he SELECT i, ARRAY(SELECT random() FROM generate_series(1, %s) WHERE i > 0)::vector FROM generate_series(1, 30) i', d);
	EXECUTE format('CREATE INDEX he_idx ON he USING hnsw (val vector_l2_ops) WITH (m = %s, ef_construction = %s)', mm, 2 * mm);
	EXECUTE format('INSERT INTO he SELECT i, ARRAY(SELECT random() FROM generate_series(1, %s) WHERE i > 0)::vector FROM generate_series(31, 40) i', d);
	SET LOCAL enable_seqscan = off;
	SELECT count(*) INTO n FROM (SELECT id FROM he ORDER BY val <-> (SELECT val FROM he WHERE id = 35) LIMIT 40) x;
	SELECT id INTO s FROM he ORDER BY val <-> (SELECT val FROM he WHERE id = 35) LIMIT 1;
	RETURN QUERY SELECT d, mm, n = 40, s = 35,
		NOT EXISTS (SELECT 1 FROM vectron_hnsw_check('he_idx') WHERE kind <> 'unreachable');
	DROP TABLE he;
END $$;
SET hnsw.iterative_scan = relaxed_order;
SELECT * FROM hd_edge(1970, 16);
SELECT * FROM hd_edge(1971, 16);
SELECT * FROM hd_edge(2000, 16);
SELECT * FROM hd_edge(1718, 100);
SELECT * FROM hd_edge(1719, 100);
SELECT * FROM hd_edge(4096, 100);
RESET hnsw.iterative_scan;
DROP FUNCTION hd_edge;
DROP TABLE h, h4, c, q;
DROP FUNCTION hd_check;
