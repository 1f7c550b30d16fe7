-- Operators on vector: distances, arithmetic, concatenation, comparison.
\set VERBOSITY terse

SELECT '[0,0]'::vector <-> '[3,4]';
SELECT '[1,2]'::vector <#> '[3,4]';
SELECT '[1,2]'::vector <=> '[2,4]';
SELECT '[0,0]'::vector <+> '[3,-4]';
SELECT '[1,2]'::vector <-> '[1,2,3]';

SELECT '[1,2,3]'::vector + '[4,5,6]';
SELECT '[1,2,3]'::vector - '[4,5,6]';
SELECT '[1,2,3]'::vector * '[4,5,6]';
SELECT '[1,2]'::vector || '[3]';
SELECT '[1,2]'::vector + '[1,2,3]';
SELECT '[3e38]'::vector + '[3e38]';
SELECT '[-3e38]'::vector - '[3e38]';
SELECT '[1e38]'::vector * '[1e38]';
SELECT '[1e-38]'::vector * '[1e-38]';
SELECT array_fill(1, ARRAY[10000])::vector || array_fill(1, ARRAY[6001])::vector;

SELECT '[1,2]'::vector < '[1,3]', '[1,2]'::vector <= '[1,2]', '[1,2]'::vector = '[1,2]',
       '[1,2]'::vector <> '[1,2]', '[1,3]'::vector >= '[1,2]', '[1,3]'::vector > '[1,2]';
SELECT '[1,2]'::vector < '[1,2,0]', '[1,2,0]'::vector > '[1,2]', '[1,2]'::vector = '[1,2,0]';

-- ordering and nearest-neighbour queries without an index
CREATE TABLE items (id int, v vector(3));
INSERT INTO items VALUES (1, '[1,1,1]'), (2, '[2,2,2]'), (3, '[1,1,2]'), (4, NULL), (5, '[-1,-1,-1]');
SELECT id, v <-> '[1,1,1]' AS l2 FROM items ORDER BY v <-> '[1,1,1]', id LIMIT 3;
SELECT id, v <#> '[1,1,1]' AS nip FROM items ORDER BY v <#> '[1,1,1]', id LIMIT 3;
SELECT id, round((v <=> '[1,1,1]')::numeric, 6) AS cos FROM items ORDER BY v <=> '[1,1,1]', id LIMIT 3;
SELECT id, v <+> '[1,1,1]' AS l1 FROM items ORDER BY v <+> '[1,1,1]', id LIMIT 3;
DROP TABLE items;
