# 013_hnsw_recall_synthetic.pl: recall@10 on 10,000 seeded 128-dimension
# vectors (100 clusters, spread mostly along 16 dimensions, as embeddings
# have a low intrinsic dimension), with exact ground truth computed in SQL with the
# index disabled.  At hnsw.ef_search = 100 recall (counting ties) must be at
# least 0.99 after the build and after 5,000 inserts made after the build;
# after deleting half the rows and VACUUM it must match a rebuild.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Vectron::TestData qw(extension_name);

my $ext = extension_name();
my $node = PostgreSQL::Test::Cluster->new('synthetic');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '256MB'\nfsync = off");
$node->start;
$node->safe_psql('postgres', "CREATE EXTENSION $ext");
$node->safe_psql('postgres', q{
	SELECT setseed(0.3);
	CREATE TABLE centers AS SELECT c, ARRAY(SELECT random() FROM generate_series(1, 128) WHERE c >= 0) AS a
		FROM generate_series(0, 99) c;
	CREATE FUNCTION point_near(c int, i int) RETURNS vector LANGUAGE sql AS $$
		SELECT (SELECT array_agg(a[j] + (random() - 0.5) * CASE WHEN j <= 16 THEN 0.5 ELSE 0.02 END ORDER BY j)
			FROM generate_series(1, 128) j
			WHERE i > 0)::real[]::vector FROM centers WHERE centers.c = point_near.c $$;
	CREATE TABLE items (id int PRIMARY KEY, v vector(128));
	INSERT INTO items SELECT i, point_near(i % 100, i) FROM generate_series(1, 10000) i;
	CREATE TABLE queries AS SELECT i AS id, point_near((i * 7) % 100, i) AS v FROM generate_series(1, 100) i;
	CREATE INDEX items_v ON items USING hnsw (v vector_l2_ops);
});

# recall@10 counting ties: a hit is any result within the true 10th distance
sub recall
{
	return $node->safe_psql('postgres', q{
		SET enable_indexscan = off;
		CREATE TEMP TABLE truth AS SELECT q.id AS qid, max(x.d) AS d10 FROM queries q,
			LATERAL (SELECT v <-> q.v AS d FROM items ORDER BY v <-> q.v LIMIT 10) x GROUP BY q.id;
		RESET enable_indexscan;
		SET enable_seqscan = off;
		SET hnsw.ef_search = 100;
		SELECT round(count(*) FILTER (WHERE x.d <= t.d10 + 1e-6)::numeric / 1000, 4)
		FROM queries q JOIN truth t ON t.qid = q.id,
			LATERAL (SELECT v <-> q.v AS d FROM items ORDER BY v <-> q.v LIMIT 10) x;
	});
}

my $r = recall();
cmp_ok($r, '>=', 0.99, "recall@10 after the build ($r)");

$node->safe_psql('postgres', 'INSERT INTO items SELECT i, point_near(i % 100, i) FROM generate_series(10001, 15000) i');
$r = recall();
cmp_ok($r, '>=', 0.99, "recall@10 after 5,000 inserts ($r)");

# Deleting half leaves 75 points per cluster whose 10 nearest are much
# harder to tell apart (a fresh build reaches about 0.85 there), so VACUUM
# is held to the recall of a rebuild of the same rows; the Fashion-MNIST
# test (010) holds it to 0.99.
$node->safe_psql('postgres', 'DELETE FROM items WHERE id % 2 = 0; VACUUM items;');
$r = recall();
{
	is($node->safe_psql('postgres', "SELECT count(*) FROM vectron_hnsw_check('items_v')"),
		'0', 'vectron_hnsw_check is clean after VACUUM, no unreachable element either');
}
$node->safe_psql('postgres', 'REINDEX INDEX items_v');
my $fresh = recall();
cmp_ok($r, '>=', $fresh - 0.02, "recall@10 after deleting half and VACUUM ($r) matches a rebuild ($fresh)");
is($node->safe_psql('postgres', "SELECT count(*) FROM vectron_hnsw_check('items_v') WHERE kind <> 'unreachable'"),
	'0', 'vectron_hnsw_check is clean');

$node->stop;
done_testing();
