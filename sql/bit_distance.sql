-- Hamming and Jaccard distances on bit strings.
\set VERBOSITY terse

SELECT hamming_distance(B'111', B'001'), B'111' <~> B'001';
SELECT jaccard_distance(B'1100', B'1010'), B'1100' <%> B'1010';
SELECT jaccard_distance(B'0000', B'0000'), jaccard_distance(B'1111', B'0000');
SELECT hamming_distance(B'11', B'111');
SELECT jaccard_distance(B'11', B'111');
-- lengths that exercise the 8-byte and 32-byte loops and their tails
SELECT n, hamming_distance(repeat('1', n)::varbit, repeat('0', n)::varbit) AS h,
       round(jaccard_distance(repeat('1', n)::varbit, ('0' || repeat('1', n - 1))::varbit)::numeric * n, 9) AS j_times_n
FROM (VALUES (1), (7), (8), (9), (63), (64), (65), (255), (256), (257), (1000)) t(n);
SELECT hamming_distance(repeat('10', 500)::varbit, repeat('01', 500)::varbit);
SELECT binary_quantize('[1,-1,1,-1]') <~> binary_quantize('[1,1,1,1]');
SELECT binary_quantize('[1,-1,1,-1]') <%> binary_quantize('[1,1,1,1]');
