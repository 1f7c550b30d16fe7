# 014_hnsw_semantics.pl: what an HNSW index scan returns, compared with
# pgvector's behaviour for the same SQL.
#  - A NULL query vector (or a zero vector under cosine) cannot be ordered
#    by; the scan still returns every indexed row, in some order, as pgvector
#    does, rather than nothing.
#  - 500 identical vectors are all returned with an iterative scan.
#  - With hnsw.iterative_scan, a filter matching 1% of the rows still gives
#    k rows.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Vectron::TestData qw(extension_name);
use Vectron::HnswTest qw(skip_without_hnsw);

my $ext = extension_name();
my $node = PostgreSQL::Test::Cluster->new('semantics');
$node->init;
$node->start;
$node->safe_psql('postgres', "CREATE EXTENSION $ext");
skip_without_hnsw($node, 'postgres');

for my $c ([ 'vector_l2_ops', '<->', 4 ], [ 'vector_ip_ops', '<#>', 4 ],
	[ 'vector_cosine_ops', '<=>', 3 ], [ 'vector_l1_ops', '<+>', 4 ])
{
	my ($opclass, $op, $want) = @$c;
	$node->safe_psql('postgres', qq{
		CREATE TABLE t (val vector(3));
		INSERT INTO t (val) VALUES ('[0,0,0]'), ('[1,2,3]'), ('[1,1,1]'), (NULL);
		CREATE INDEX ON t USING hnsw (val $opclass);
		INSERT INTO t (val) VALUES ('[1,2,4]');
	});
	is($node->safe_psql('postgres', qq{SET enable_seqscan = off;
		SELECT count(*) FROM (SELECT * FROM t ORDER BY val $op (SELECT NULL::vector)) t2}),
		$want, "$opclass: a NULL query returns every indexed row ($want)");
	if ($opclass eq 'vector_cosine_ops')
	{
		is($node->safe_psql('postgres', qq{SET enable_seqscan = off;
			SELECT count(*) FROM (SELECT * FROM t ORDER BY val <=> '[0,0,0]') t2}),
			3, 'cosine: a zero query returns every indexed row (3)');
		is($node->safe_psql('postgres', qq{SET enable_seqscan = off;
			SELECT string_agg(val::text, ' ') FROM (SELECT * FROM t ORDER BY val <=> '[3,3,3]') t2}),
			'[1,1,1] [1,2,3] [1,2,4]', 'cosine: zero vectors and NULLs are not indexed');
	}
	$node->safe_psql('postgres', 'DROP TABLE t');
}

# 500 identical vectors among others, all returned by an iterative scan
$node->safe_psql('postgres', q{
	CREATE TABLE dup (id serial PRIMARY KEY, v vector(4));
	INSERT INTO dup (v) SELECT '[1,1,1,1]' FROM generate_series(1, 500);
	INSERT INTO dup (v) SELECT ARRAY[random(), random(), random(), random()] FROM generate_series(1, 500);
	CREATE INDEX ON dup USING hnsw (v vector_l2_ops);
});
{
	is($node->safe_psql('postgres', q{SET enable_seqscan = off; SET hnsw.iterative_scan = relaxed_order;
		SELECT count(*) FROM (SELECT id FROM dup ORDER BY v <-> '[1,1,1,1]' LIMIT 500) x
		JOIN dup USING (id) WHERE dup.v = '[1,1,1,1]'}), 500, '500 identical vectors are all returned');
}
is($node->safe_psql('postgres', q{SELECT count(*) FROM vectron_hnsw_check('dup_v_idx')}), '0',
	'the build leaves no duplicate element unreachable');

# the same through the insert path: the index exists before the rows do, so
# 50 elements of 10 TIDs each are linked one by one, all reachable
$node->safe_psql('postgres', q{
	CREATE TABLE dup2 (id serial PRIMARY KEY, v vector(4));
	CREATE INDEX dup2_v ON dup2 USING hnsw (v vector_l2_ops);
	INSERT INTO dup2 (v) SELECT ARRAY[random(), random(), random(), random()] FROM generate_series(1, 250);
	INSERT INTO dup2 (v) SELECT '[1,1,1,1]' FROM generate_series(1, 500);
	INSERT INTO dup2 (v) SELECT ARRAY[random(), random(), random(), random()] FROM generate_series(1, 250);
});
is($node->safe_psql('postgres', q{SET enable_seqscan = off; SET hnsw.iterative_scan = relaxed_order;
	SELECT count(*) FROM (SELECT id FROM dup2 ORDER BY v <-> '[1,1,1,1]' LIMIT 500) x
	JOIN dup2 USING (id) WHERE dup2.v = '[1,1,1,1]'}), 500, 'inserted one by one, 500 identical vectors are all returned');
is($node->safe_psql('postgres', q{SELECT count(*) FROM vectron_hnsw_check('dup2_v')}), '0',
	'vectron_hnsw_check finds nothing wrong with the duplicates');

# filtered search at 1% selectivity returns k rows with an iterative scan
$node->safe_psql('postgres', q{
	CREATE TABLE f (id int PRIMARY KEY, category int, v vector(8));
	INSERT INTO f SELECT i, i % 100, (SELECT array_agg(random())::vector(8) FROM generate_series(1, 8) WHERE i > 0)
	FROM generate_series(1, 20000) i;
	CREATE INDEX ON f USING hnsw (v vector_l2_ops);
	ANALYZE f;
});
for my $mode ('relaxed_order', 'strict_order')
{
	is($node->safe_psql('postgres', qq{SET enable_seqscan = off; SET hnsw.iterative_scan = $mode;
		SELECT count(*) FROM (SELECT id FROM f WHERE category = 7 ORDER BY v <-> array_fill(0.5, ARRAY[8])::vector LIMIT 10) x}),
		10, "$mode: a 1% filter still returns 10 rows");
}
is($node->safe_psql('postgres', q{SET enable_seqscan = off; SET hnsw.iterative_scan = strict_order;
	SELECT bool_and(d >= lag_d) FROM (SELECT d, lag(d, 1, 0::float8) OVER (ORDER BY ord) AS lag_d FROM
	(SELECT v <-> array_fill(0.5, ARRAY[8])::vector AS d, row_number() OVER () AS ord
	 FROM (SELECT v FROM f WHERE category = 7 ORDER BY v <-> array_fill(0.5, ARRAY[8])::vector LIMIT 10) y) z) w}),
	't', 'strict_order returns rows in distance order');

$node->stop;
done_testing();
