-- Casts between vector and arrays, and vector(n) typmod coercion.
\set VERBOSITY terse

SELECT ARRAY[1,2,3]::vector;
SELECT ARRAY[1.5,2.5]::real[]::vector;
SELECT ARRAY[1.5,2.5]::double precision[]::vector;
SELECT ARRAY[1.5,2.5]::numeric[]::vector;
SELECT '[1,2,3]'::vector::real[];
SELECT ARRAY[1,2,3]::vector(3);
SELECT ARRAY[1,2,3]::vector(2);
SELECT '{}'::int[]::vector;
SELECT ARRAY[1,NULL]::vector;
SELECT ARRAY[[1,2],[3,4]]::vector;
SELECT ARRAY['NaN']::real[]::vector;
SELECT ARRAY['Infinity']::double precision[]::vector;
SELECT ARRAY[1e39]::double precision[]::vector;
SELECT ARRAY[1e39]::numeric[]::vector;
SELECT '[1,2,3]'::vector::vector(3);
SELECT '[1,2,3]'::vector::vector(2);

-- assignment casts from arrays, implicit cast to real[]
CREATE TABLE t_cast (v vector(2));
INSERT INTO t_cast VALUES (ARRAY[1,2]), (ARRAY[1.5,2.5]::real[]), (ARRAY[0.25,0.5]::float8[]), (ARRAY[3,4]::numeric[]);
INSERT INTO t_cast VALUES (ARRAY[1,2,3]);
SELECT v FROM t_cast ORDER BY v;
CREATE TABLE t_arr (a real[]);
INSERT INTO t_arr SELECT v FROM t_cast;
SELECT a, array_length(a, 1) FROM t_arr ORDER BY a;
DROP TABLE t_arr;
UPDATE t_cast SET v = ARRAY[9,9,9];
DROP TABLE t_cast;

-- the cast catalogue matches pgvector's contexts (a = assignment, i = implicit)
SELECT castsource::regtype, casttarget::regtype, castcontext
FROM pg_cast WHERE casttarget = 'vector'::regtype OR castsource = 'vector'::regtype
ORDER BY 1::text, 2::text;
