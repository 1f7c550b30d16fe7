-- Distance and utility functions on vector.
\set VERBOSITY terse

-- distances
SELECT l2_distance('[0,0]', '[3,4]');
SELECT l2_distance('[1,2,3]', '[1,2,3]');
SELECT inner_product('[1,2]', '[3,4]');
SELECT vector_negative_inner_product('[1,2]', '[3,4]');
SELECT cosine_distance('[1,2]', '[2,4]');
SELECT cosine_distance('[1,0]', '[0,1]');
SELECT cosine_distance('[1,1]', '[-1,-1]');
SELECT cosine_distance('[0,0]', '[1,1]');
SELECT cosine_distance('[1,1]', '[0,0]');
SELECT l1_distance('[0,0]', '[3,-4]');
SELECT vector_l2_squared_distance('[0,0]', '[3,4]');
SELECT round(vector_spherical_distance('[1,0]', '[0,1]')::numeric, 6);
SELECT l2_distance('[1,2]', '[1,2,3]');
SELECT inner_product('[1,2]', '[1,2,3]');
SELECT cosine_distance('[1,2]', '[1,2,3]');
SELECT l1_distance('[1,2]', '[1,2,3]');
SELECT l2_distance('[3e38]', '[-3e38]');

-- long vectors exercise every SIMD tail: compare with numeric arithmetic
WITH v AS (
  SELECT n,
         array_agg(((i * 7) % 13 - 6)::real / 4 ORDER BY i) AS a,
         array_agg(((i * 5) % 11 - 5.5)::real / 8 ORDER BY i) AS b
  FROM generate_series(1, 70) n, generate_series(1, n) i GROUP BY n)
SELECT count(*) FILTER (WHERE abs(l2_distance(a::vector, b::vector) -
         sqrt((SELECT sum((x - y) ^ 2) FROM unnest(a, b) u(x, y)))) > 1e-5) AS l2_bad,
       count(*) FILTER (WHERE abs(inner_product(a::vector, b::vector) -
         (SELECT sum(x * y) FROM unnest(a, b) u(x, y))) > 1e-4) AS ip_bad,
       count(*) FILTER (WHERE abs(l1_distance(a::vector, b::vector) -
         (SELECT sum(abs(x - y)) FROM unnest(a, b) u(x, y))) > 1e-4) AS l1_bad,
       count(*) FILTER (WHERE abs(cosine_distance(a::vector, b::vector) -
         (1 - (SELECT sum(x * y) / sqrt(sum(x * x) * sum(y * y)) FROM unnest(a, b) u(x, y)))) > 1e-5) AS cos_bad
FROM v;

-- every kernel set gives the same answers
SET vectron.kernels = 'scalar';
SELECT l2_distance('[1,2,3,4,5,6,7,8,9]', '[9,8,7,6,5,4,3,2,1]'), l1_distance('[1,2,3]', '[3,2,1]');
SET vectron.kernels = 'avx2';
SELECT l2_distance('[1,2,3,4,5,6,7,8,9]', '[9,8,7,6,5,4,3,2,1]'), l1_distance('[1,2,3]', '[3,2,1]');
RESET vectron.kernels;
SELECT l2_distance('[1,2,3,4,5,6,7,8,9]', '[9,8,7,6,5,4,3,2,1]'), l1_distance('[1,2,3]', '[3,2,1]');
SET vectron.nonexistent = 1;

-- utilities
SELECT vector_dims('[1,2,3]');
SELECT vector_norm('[3,4]');
SELECT vector_norm('[0,0]');
SELECT l2_normalize('[3,4]');
SELECT l2_normalize('[0,0]');
SELECT l2_normalize('[1e-30,1e-30]');
SELECT subvector('[1,2,3,4,5]', 2, 3);
SELECT subvector('[1,2,3,4,5]', 4, 10);
SELECT subvector('[1,2,3,4,5]', -1, 3);
SELECT subvector('[1,2,3,4,5]', 1, 0);
SELECT subvector('[1,2,3,4,5]', 6, 1);
SELECT subvector('[1,2,3,4,5]', 2147483647, 2147483647);
SELECT binary_quantize('[1,0,-1,2,0.5,-3,0,1,1]');
SELECT binary_quantize('[0]');

-- strictness: NULL in, NULL out
SELECT l2_distance(NULL, '[1]') IS NULL AS is_null, vector_dims(NULL) IS NULL AS dims_null;
