-- Text and binary input/output of the vector type, typmods and bad input.
\set VERBOSITY terse

-- text round trip: whitespace tolerated, shortest round-trip output
SELECT '[1,2,3]'::vector;
SELECT ' [ 1 , 2.5 ,-3e-2 ] '::vector;
SELECT '[1.5e10,-0,0.1,1e-40]'::vector;
SELECT '[3.4028235e38]'::vector;
SELECT '[0.1,0.2,0.3]'::vector::text::vector = '[0.1,0.2,0.3]'::vector AS round_trip;
SELECT '[1,2,3]'::vector(3);
SELECT vector_dims(array_fill(1.5, ARRAY[16000])::vector);

-- typmod
CREATE TABLE t_typmod (v vector(3));
INSERT INTO t_typmod VALUES ('[1,2,3]');
INSERT INTO t_typmod VALUES ('[1,2]');
INSERT INTO t_typmod VALUES ('[1,2,3,4]'::vector);
SELECT * FROM t_typmod;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 't_typmod'::regclass AND attname = 'v';
DROP TABLE t_typmod;
SELECT '[1,2]'::vector(3);
SELECT '[1,2,3]'::vector(0);
SELECT '[1,2,3]'::vector(16001);
SELECT '[1,2,3]'::vector(3, 2);

-- malformed text (22P02)
SELECT ''::vector;
SELECT '['::vector;
SELECT '[1,2'::vector;
SELECT '1,2,3'::vector;
SELECT '[1,,2]'::vector;
SELECT '[1,2,]'::vector;
SELECT '[,1]'::vector;
SELECT '[1 2]'::vector;
SELECT '[a]'::vector;
SELECT '[1]x'::vector;
SELECT '[1][2]'::vector;
SELECT '[0x10]'::vector;

-- empty, non-finite, out of range, too many
SELECT '[]'::vector;
SELECT '[ ]'::vector;
SELECT '[NaN]'::vector;
SELECT '[1,nan]'::vector;
SELECT '[Infinity]'::vector;
SELECT '[-inf]'::vector;
SELECT '[1e39]'::vector;
SELECT '[-4e38]'::vector;
SELECT array_fill(1, ARRAY[16001])::vector;
SELECT ('[' || repeat('1,', 16000) || '1]')::vector;

-- binary send/recv in pgvector's layout: int16 dim, int16 0, float4 BE
SELECT vector_send('[1,2,3]'::vector);
SELECT vector_send('[-0.5]'::vector);

-- COPY text and binary round trip (through a client-side file)
CREATE TABLE t_copy (id int, v vector(3));
INSERT INTO t_copy VALUES (1, '[1,2,3]'), (2, '[0.1,-2.5e-7,3e20]'), (3, NULL);
CREATE TABLE t_copy2 (LIKE t_copy);
\copy t_copy TO 'results/t_copy.bin' WITH (FORMAT binary)
\copy t_copy2 FROM 'results/t_copy.bin' WITH (FORMAT binary)
SELECT a.id, a.v = b.v AS same FROM t_copy a JOIN t_copy2 b USING (id) ORDER BY id;
TRUNCATE t_copy2;
\copy t_copy TO 'results/t_copy.txt'
\copy t_copy2 FROM 'results/t_copy.txt'
SELECT * FROM t_copy2 ORDER BY id;
DROP TABLE t_copy, t_copy2;

-- storage: vectors of all sizes round trip through the heap and TOAST
CREATE TABLE t_big (v vector);
INSERT INTO t_big SELECT array_fill(i::real, ARRAY[i * 1000])::vector FROM generate_series(1, 16) i;
SELECT vector_dims(v), vector_norm(v) > 0 AS nonzero FROM t_big ORDER BY 1;
DROP TABLE t_big;

-- every kind of bad input gets its own SQLSTATE
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE q;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ' ' || SQLERRM;
END $$;
SELECT q, pg_temp.sqlstate_of(q) FROM (VALUES
  ($$SELECT '[1,,2]'::vector$$),
  ($$SELECT 'junk'::vector$$),
  ($$SELECT '[]'::vector$$),
  ($$SELECT '[1,2]'::vector(3)$$),
  ($$SELECT '[1,2]'::vector <-> '[1]'$$),
  ($$SELECT '[NaN]'::vector$$),
  ($$SELECT '[inf]'::vector$$),
  ($$SELECT '[1e39]'::vector$$),
  ($$SELECT array_fill(0, ARRAY[16001])::vector$$),
  ($$SELECT '[1]'::vector(16001)$$),
  ($$SELECT ARRAY[NULL::int]::vector$$),
  ($$SELECT '[3e38]'::vector + '[3e38]'$$)
) t(q);

-- binary input through COPY BINARY: good, bad reserved field, NaN, zero
-- dimensions, a length that disagrees with the dimensions, typmod mismatch
\set VERBOSITY sqlstate
CREATE TABLE t_bin (v vector);
CREATE TABLE t_bin2 (v vector(2));
\! printf 'PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0\0\1\0\0\0\14\0\2\0\0\77\200\0\0\300\0\0\0\377\377' > results/vec_good.bin
\! printf 'PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0\0\1\0\0\0\10\0\1\0\1\77\200\0\0\377\377' > results/vec_unused.bin
\! printf 'PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0\0\1\0\0\0\10\0\1\0\0\177\300\0\0\377\377' > results/vec_nan.bin
\! printf 'PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0\0\1\0\0\0\4\0\0\0\0\377\377' > results/vec_zero.bin
\! printf 'PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0\0\1\0\0\0\10\0\2\0\0\77\200\0\0\377\377' > results/vec_short.bin
\copy t_bin FROM 'results/vec_good.bin' WITH (FORMAT binary)
\copy t_bin FROM 'results/vec_unused.bin' WITH (FORMAT binary)
\copy t_bin FROM 'results/vec_nan.bin' WITH (FORMAT binary)
\copy t_bin FROM 'results/vec_zero.bin' WITH (FORMAT binary)
\copy t_bin FROM 'results/vec_short.bin' WITH (FORMAT binary)
\copy t_bin2 FROM 'results/vec_good.bin' WITH (FORMAT binary)
\copy t_bin2 FROM 'results/vec_unused.bin' WITH (FORMAT binary)
\! printf 'PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0\0\1\0\0\0\10\0\1\0\0\77\200\0\0\377\377' > results/vec_one.bin
\copy t_bin FROM 'results/vec_one.bin' WITH (FORMAT binary)
\copy t_bin2 FROM 'results/vec_one.bin' WITH (FORMAT binary)
\set VERBOSITY terse
SELECT * FROM t_bin;
SELECT * FROM t_bin2;
DROP TABLE t_bin, t_bin2;

-- syntax errors carry pgvector's details where it gives one
\set VERBOSITY default
SELECT '1,2,3'::vector;
SELECT '[1,2,3]9'::vector;
SELECT '[1,2'::vector;
\set VERBOSITY terse
