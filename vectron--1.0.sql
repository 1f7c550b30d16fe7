/* vectron--1.0.sql: the vector type, its functions, operators, casts,
 * aggregates and btree opclass, then the HNSW access method. */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION vectron" to load this file. \quit

-- ==== the vector type ====

CREATE TYPE vector;

CREATE FUNCTION vector_in(cstring, oid, integer) RETURNS vector
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_out(vector) RETURNS cstring
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_typmod_in(cstring[]) RETURNS integer
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_typmod_out(integer) RETURNS cstring
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_recv(internal, oid, integer) RETURNS vector
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_send(vector) RETURNS bytea
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE vector (
	INPUT     = vector_in,
	OUTPUT    = vector_out,
	TYPMOD_IN = vector_typmod_in,
	TYPMOD_OUT = vector_typmod_out,
	RECEIVE   = vector_recv,
	SEND      = vector_send,
	STORAGE   = external
);

COMMENT ON TYPE vector IS 'vector of float4 values, up to 16000 dimensions; vector(n) fixes the count';
COMMENT ON FUNCTION vector_in(cstring, oid, integer) IS 'text input of a vector, e.g. [1,2,3]';
COMMENT ON FUNCTION vector_out(vector) IS 'text output of a vector';
COMMENT ON FUNCTION vector_typmod_in(cstring[]) IS 'type modifier input: the number of dimensions';
COMMENT ON FUNCTION vector_typmod_out(integer) IS 'type modifier output';
COMMENT ON FUNCTION vector_recv(internal, oid, integer) IS 'binary input: int16 dim, int16 unused, float4 values (big-endian)';
COMMENT ON FUNCTION vector_send(vector) IS 'binary output: int16 dim, int16 unused, float4 values (big-endian)';

-- ==== distance functions ====

CREATE FUNCTION l2_distance(vector, vector) RETURNS float8
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION inner_product(vector, vector) RETURNS float8
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION cosine_distance(vector, vector) RETURNS float8
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION l1_distance(vector, vector) RETURNS float8
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_l2_squared_distance(vector, vector) RETURNS float8
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_negative_inner_product(vector, vector) RETURNS float8
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_spherical_distance(vector, vector) RETURNS float8
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION l2_distance(vector, vector) IS 'Euclidean distance';
COMMENT ON FUNCTION inner_product(vector, vector) IS 'inner (dot) product';
COMMENT ON FUNCTION cosine_distance(vector, vector) IS 'cosine distance, 1 - cosine similarity (NaN for a zero vector)';
COMMENT ON FUNCTION l1_distance(vector, vector) IS 'Manhattan (L1) distance';
COMMENT ON FUNCTION vector_l2_squared_distance(vector, vector) IS 'squared Euclidean distance';
COMMENT ON FUNCTION vector_negative_inner_product(vector, vector) IS 'negative inner product, the <#> operator';
COMMENT ON FUNCTION vector_spherical_distance(vector, vector) IS 'angular distance of unit vectors, in [0, 1]';

-- ==== utility functions ====

CREATE FUNCTION vector_dims(vector) RETURNS integer
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_norm(vector) RETURNS float8
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION l2_normalize(vector) RETURNS vector
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION subvector(vector, integer, integer) RETURNS vector
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION binary_quantize(vector) RETURNS bit
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION vector_dims(vector) IS 'number of dimensions';
COMMENT ON FUNCTION vector_norm(vector) IS 'Euclidean norm';
COMMENT ON FUNCTION l2_normalize(vector) IS 'the vector scaled to unit Euclidean norm (a zero vector stays zero)';
COMMENT ON FUNCTION subvector(vector, integer, integer) IS 'count elements starting at a 1-based position';
COMMENT ON FUNCTION binary_quantize(vector) IS 'one bit per element, set where the element is positive';

-- ==== arithmetic ====

CREATE FUNCTION vector_add(vector, vector) RETURNS vector
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_sub(vector, vector) RETURNS vector
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_mul(vector, vector) RETURNS vector
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_concat(vector, vector) RETURNS vector
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION vector_add(vector, vector) IS 'element-wise sum';
COMMENT ON FUNCTION vector_sub(vector, vector) IS 'element-wise difference';
COMMENT ON FUNCTION vector_mul(vector, vector) IS 'element-wise product';
COMMENT ON FUNCTION vector_concat(vector, vector) IS 'concatenation';

-- ==== comparison ====

CREATE FUNCTION vector_lt(vector, vector) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_le(vector, vector) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_eq(vector, vector) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_ne(vector, vector) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_ge(vector, vector) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_gt(vector, vector) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_cmp(vector, vector) RETURNS int4
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION vector_lt(vector, vector) IS 'less than, element by element';
COMMENT ON FUNCTION vector_le(vector, vector) IS 'less than or equal, element by element';
COMMENT ON FUNCTION vector_eq(vector, vector) IS 'equal';
COMMENT ON FUNCTION vector_ne(vector, vector) IS 'not equal';
COMMENT ON FUNCTION vector_ge(vector, vector) IS 'greater than or equal, element by element';
COMMENT ON FUNCTION vector_gt(vector, vector) IS 'greater than, element by element';
COMMENT ON FUNCTION vector_cmp(vector, vector) IS 'btree comparison: elements in order, then dimension count';

-- ==== aggregates ====

CREATE FUNCTION vector_accum(double precision[], vector) RETURNS double precision[]
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_avg(double precision[]) RETURNS vector
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_combine(double precision[], double precision[]) RETURNS double precision[]
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION vector_accum(double precision[], vector) IS 'avg(vector) transition: count and sums in double';
COMMENT ON FUNCTION vector_avg(double precision[]) IS 'avg(vector) final function';
COMMENT ON FUNCTION vector_combine(double precision[], double precision[]) IS 'avg(vector) combine function for parallel aggregation';

CREATE AGGREGATE avg(vector) (
	SFUNC = vector_accum,
	STYPE = double precision[],
	FINALFUNC = vector_avg,
	COMBINEFUNC = vector_combine,
	INITCOND = '{0}',
	PARALLEL = SAFE
);

CREATE AGGREGATE sum(vector) (
	SFUNC = vector_add,
	STYPE = vector,
	COMBINEFUNC = vector_add,
	PARALLEL = SAFE
);

COMMENT ON AGGREGATE avg(vector) IS 'element-wise average';
COMMENT ON AGGREGATE sum(vector) IS 'element-wise sum';

-- ==== casts ====

CREATE FUNCTION vector(vector, integer, boolean) RETURNS vector
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION array_to_vector(integer[], integer, boolean) RETURNS vector
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION array_to_vector(real[], integer, boolean) RETURNS vector
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION array_to_vector(double precision[], integer, boolean) RETURNS vector
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION array_to_vector(numeric[], integer, boolean) RETURNS vector
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_to_float4(vector, integer, boolean) RETURNS real[]
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION vector(vector, integer, boolean) IS 'cast to vector(n): checks the dimension count';
COMMENT ON FUNCTION array_to_vector(integer[], integer, boolean) IS 'cast integer[] to vector';
COMMENT ON FUNCTION array_to_vector(real[], integer, boolean) IS 'cast real[] to vector';
COMMENT ON FUNCTION array_to_vector(double precision[], integer, boolean) IS 'cast double precision[] to vector';
COMMENT ON FUNCTION array_to_vector(numeric[], integer, boolean) IS 'cast numeric[] to vector';
COMMENT ON FUNCTION vector_to_float4(vector, integer, boolean) IS 'cast vector to real[]';

CREATE CAST (vector AS vector)
	WITH FUNCTION vector(vector, integer, boolean) AS IMPLICIT;
CREATE CAST (vector AS real[])
	WITH FUNCTION vector_to_float4(vector, integer, boolean) AS IMPLICIT;
CREATE CAST (integer[] AS vector)
	WITH FUNCTION array_to_vector(integer[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (real[] AS vector)
	WITH FUNCTION array_to_vector(real[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (double precision[] AS vector)
	WITH FUNCTION array_to_vector(double precision[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (numeric[] AS vector)
	WITH FUNCTION array_to_vector(numeric[], integer, boolean) AS ASSIGNMENT;

COMMENT ON CAST (vector AS vector) IS 'typmod coercion to vector(n)';
COMMENT ON CAST (vector AS real[]) IS 'vector to real[]';
COMMENT ON CAST (integer[] AS vector) IS 'integer[] to vector';
COMMENT ON CAST (real[] AS vector) IS 'real[] to vector';
COMMENT ON CAST (double precision[] AS vector) IS 'double precision[] to vector';
COMMENT ON CAST (numeric[] AS vector) IS 'numeric[] to vector';

-- ==== operators ====

CREATE OPERATOR <-> (
	LEFTARG = vector, RIGHTARG = vector, PROCEDURE = l2_distance,
	COMMUTATOR = '<->'
);
CREATE OPERATOR <#> (
	LEFTARG = vector, RIGHTARG = vector, PROCEDURE = vector_negative_inner_product,
	COMMUTATOR = '<#>'
);
CREATE OPERATOR <=> (
	LEFTARG = vector, RIGHTARG = vector, PROCEDURE = cosine_distance,
	COMMUTATOR = '<=>'
);
CREATE OPERATOR <+> (
	LEFTARG = vector, RIGHTARG = vector, PROCEDURE = l1_distance,
	COMMUTATOR = '<+>'
);
CREATE OPERATOR + (
	LEFTARG = vector, RIGHTARG = vector, PROCEDURE = vector_add,
	COMMUTATOR = +
);
CREATE OPERATOR - (
	LEFTARG = vector, RIGHTARG = vector, PROCEDURE = vector_sub
);
CREATE OPERATOR * (
	LEFTARG = vector, RIGHTARG = vector, PROCEDURE = vector_mul,
	COMMUTATOR = *
);
CREATE OPERATOR || (
	LEFTARG = vector, RIGHTARG = vector, PROCEDURE = vector_concat
);
CREATE OPERATOR < (
	LEFTARG = vector, RIGHTARG = vector, PROCEDURE = vector_lt,
	COMMUTATOR = > , NEGATOR = >= ,
	RESTRICT = scalarltsel, JOIN = scalarltjoinsel
);
CREATE OPERATOR <= (
	LEFTARG = vector, RIGHTARG = vector, PROCEDURE = vector_le,
	COMMUTATOR = >= , NEGATOR = > ,
	RESTRICT = scalarlesel, JOIN = scalarlejoinsel
);
CREATE OPERATOR = (
	LEFTARG = vector, RIGHTARG = vector, PROCEDURE = vector_eq,
	COMMUTATOR = = , NEGATOR = <> ,
	RESTRICT = eqsel, JOIN = eqjoinsel
);
CREATE OPERATOR <> (
	LEFTARG = vector, RIGHTARG = vector, PROCEDURE = vector_ne,
	COMMUTATOR = <> , NEGATOR = = ,
	RESTRICT = eqsel, JOIN = eqjoinsel
);
CREATE OPERATOR >= (
	LEFTARG = vector, RIGHTARG = vector, PROCEDURE = vector_ge,
	COMMUTATOR = <= , NEGATOR = < ,
	RESTRICT = scalargesel, JOIN = scalargejoinsel
);
CREATE OPERATOR > (
	LEFTARG = vector, RIGHTARG = vector, PROCEDURE = vector_gt,
	COMMUTATOR = < , NEGATOR = <= ,
	RESTRICT = scalargtsel, JOIN = scalargtjoinsel
);

COMMENT ON OPERATOR <->(vector, vector) IS 'Euclidean distance';
COMMENT ON OPERATOR <#>(vector, vector) IS 'negative inner product';
COMMENT ON OPERATOR <=>(vector, vector) IS 'cosine distance';
COMMENT ON OPERATOR <+>(vector, vector) IS 'Manhattan (L1) distance';
COMMENT ON OPERATOR +(vector, vector) IS 'element-wise sum';
COMMENT ON OPERATOR -(vector, vector) IS 'element-wise difference';
COMMENT ON OPERATOR *(vector, vector) IS 'element-wise product';
COMMENT ON OPERATOR ||(vector, vector) IS 'concatenation';
COMMENT ON OPERATOR <(vector, vector) IS 'less than';
COMMENT ON OPERATOR <=(vector, vector) IS 'less than or equal';
COMMENT ON OPERATOR =(vector, vector) IS 'equal';
COMMENT ON OPERATOR <>(vector, vector) IS 'not equal';
COMMENT ON OPERATOR >=(vector, vector) IS 'greater than or equal';
COMMENT ON OPERATOR >(vector, vector) IS 'greater than';

CREATE OPERATOR CLASS vector_ops
	DEFAULT FOR TYPE vector USING btree AS
	OPERATOR 1 < ,
	OPERATOR 2 <= ,
	OPERATOR 3 = ,
	OPERATOR 4 >= ,
	OPERATOR 5 > ,
	FUNCTION 1 vector_cmp(vector, vector);

COMMENT ON OPERATOR FAMILY vector_ops USING btree IS 'total order on vectors';
COMMENT ON OPERATOR CLASS vector_ops USING btree IS 'total order on vectors, for ORDER BY, DISTINCT and UNIQUE';

-- ==== bit distances ====

CREATE FUNCTION hamming_distance(bit, bit) RETURNS float8
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION jaccard_distance(bit, bit) RETURNS float8
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION hamming_distance(bit, bit) IS 'number of differing bits';
COMMENT ON FUNCTION jaccard_distance(bit, bit) IS 'Jaccard distance, 1 - |a AND b| / |a OR b|';

CREATE OPERATOR <~> (
	LEFTARG = bit, RIGHTARG = bit, PROCEDURE = hamming_distance,
	COMMUTATOR = '<~>'
);
CREATE OPERATOR <%> (
	LEFTARG = bit, RIGHTARG = bit, PROCEDURE = jaccard_distance,
	COMMUTATOR = '<%>'
);

COMMENT ON OPERATOR <~>(bit, bit) IS 'Hamming distance';
COMMENT ON OPERATOR <%>(bit, bit) IS 'Jaccard distance';

-- ==== HNSW access method ====

CREATE FUNCTION hnswhandler(internal) RETURNS index_am_handler
	AS 'MODULE_PATHNAME' LANGUAGE C;

CREATE ACCESS METHOD hnsw TYPE INDEX HANDLER hnswhandler;

COMMENT ON FUNCTION hnswhandler(internal) IS 'handler of the hnsw index access method';
COMMENT ON ACCESS METHOD hnsw IS 'hierarchical navigable small world graph index for nearest-neighbour search';

CREATE OPERATOR CLASS vector_l2_ops
	FOR TYPE vector USING hnsw AS
	OPERATOR 1 <-> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 vector_l2_squared_distance(vector, vector);

CREATE OPERATOR CLASS vector_ip_ops
	FOR TYPE vector USING hnsw AS
	OPERATOR 1 <#> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 vector_negative_inner_product(vector, vector);

CREATE OPERATOR CLASS vector_cosine_ops
	FOR TYPE vector USING hnsw AS
	OPERATOR 1 <=> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 vector_negative_inner_product(vector, vector),
	FUNCTION 2 vector_norm(vector);

CREATE OPERATOR CLASS vector_l1_ops
	FOR TYPE vector USING hnsw AS
	OPERATOR 1 <+> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 l1_distance(vector, vector);

CREATE OPERATOR CLASS bit_hamming_ops
	FOR TYPE bit USING hnsw AS
	OPERATOR 1 <~> (bit, bit) FOR ORDER BY float_ops,
	FUNCTION 1 hamming_distance(bit, bit);

CREATE OPERATOR CLASS bit_jaccard_ops
	FOR TYPE bit USING hnsw AS
	OPERATOR 1 <%> (bit, bit) FOR ORDER BY float_ops,
	FUNCTION 1 jaccard_distance(bit, bit);

COMMENT ON OPERATOR CLASS vector_l2_ops USING hnsw IS 'hnsw on vector by Euclidean distance (<->)';
COMMENT ON OPERATOR CLASS vector_ip_ops USING hnsw IS 'hnsw on vector by negative inner product (<#>)';
COMMENT ON OPERATOR CLASS vector_cosine_ops USING hnsw IS 'hnsw on vector by cosine distance (<=>); zero vectors are not indexed';
COMMENT ON OPERATOR CLASS vector_l1_ops USING hnsw IS 'hnsw on vector by taxicab distance (<+>)';
COMMENT ON OPERATOR CLASS bit_hamming_ops USING hnsw IS 'hnsw on bit by Hamming distance (<~>)';
COMMENT ON OPERATOR CLASS bit_jaccard_ops USING hnsw IS 'hnsw on bit by Jaccard distance (<%>)';
COMMENT ON OPERATOR FAMILY vector_l2_ops USING hnsw IS 'hnsw on vector by Euclidean distance';
COMMENT ON OPERATOR FAMILY vector_ip_ops USING hnsw IS 'hnsw on vector by negative inner product';
COMMENT ON OPERATOR FAMILY vector_cosine_ops USING hnsw IS 'hnsw on vector by cosine distance';
COMMENT ON OPERATOR FAMILY vector_l1_ops USING hnsw IS 'hnsw on vector by taxicab distance';
COMMENT ON OPERATOR FAMILY bit_hamming_ops USING hnsw IS 'hnsw on bit by Hamming distance';
COMMENT ON OPERATOR FAMILY bit_jaccard_ops USING hnsw IS 'hnsw on bit by Jaccard distance';

CREATE FUNCTION vectron_hnsw_check(index regclass,
	OUT kind text, OUT element tid, OUT detail text) RETURNS SETOF record
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT PARALLEL SAFE;

COMMENT ON FUNCTION vectron_hnsw_check(regclass) IS 'walks an hnsw index and returns one row per structural problem (none when sound)';

CREATE FUNCTION vectron_index_stats(index regclass, check_heap boolean DEFAULT true,
	OUT pages bigint, OUT bytes bigint, OUT elements bigint, OUT heap_tids bigint,
	OUT dead_tids bigint, OUT empty_elements bigint, OUT removed_elements bigint,
	OUT max_level integer, OUT elements_per_level bigint[], OUT avg_degree_level0 double precision,
	OUT entry_point tid, OUT entry_level integer, OUT m integer, OUT ef_construction integer)
	RETURNS record
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT PARALLEL SAFE;

COMMENT ON FUNCTION vectron_index_stats(regclass, boolean) IS 'one row describing an hnsw index: pages, elements, heap TIDs, entries whose rows are gone but not vacuumed (check_heap), levels, level-0 degree, entry point';

CREATE FUNCTION vectron_counters(OUT preloaded boolean, OUT scans bigint,
	OUT scan_distances bigint, OUT inserts bigint, OUT insert_distances bigint)
	RETURNS record
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT PARALLEL SAFE;

COMMENT ON FUNCTION vectron_counters() IS 'hnsw scans, inserts and distance computations across backends since start (only with vectron in shared_preload_libraries; NULLs otherwise)';
