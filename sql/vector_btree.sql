-- The btree opclass: ORDER BY, DISTINCT, UNIQUE, index scans.
\set VERBOSITY terse

CREATE TABLE t_bt (id serial, v vector);
INSERT INTO t_bt (v) VALUES ('[1,2,3]'), ('[1,2]'), ('[0,5]'), ('[1,2,3]'), ('[-1]'), (NULL);
SELECT v FROM t_bt ORDER BY v;
SELECT DISTINCT v FROM t_bt ORDER BY v;
SELECT v, count(*) FROM t_bt GROUP BY v ORDER BY v;
CREATE UNIQUE INDEX t_bt_v ON t_bt (v);
DELETE FROM t_bt WHERE id = 4;
CREATE UNIQUE INDEX t_bt_v ON t_bt (v);
INSERT INTO t_bt (v) VALUES ('[0,5]');
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM t_bt WHERE v = '[1,2]';
SELECT id, v FROM t_bt WHERE v = '[1,2]';
SELECT v FROM t_bt WHERE v > '[0,5]' ORDER BY v;
RESET enable_seqscan;
DROP TABLE t_bt;

-- each object of the extension has a comment
SELECT pg_describe_object(d.classid, d.objid, 0) AS uncommented
FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'vectron'
WHERE d.deptype = 'e'
  AND obj_description(d.objid, (SELECT relname FROM pg_class WHERE oid = d.classid)) IS NULL
  AND d.classid <> 'pg_amproc'::regclass AND d.classid <> 'pg_amop'::regclass
ORDER BY 1;

-- ivfflat is not provided
CREATE TABLE t_ivf (v vector(3));
CREATE INDEX ON t_ivf USING ivfflat (v vector_l2_ops);
DROP TABLE t_ivf;
