# 018_hnsw_preload_counters.pl: with vectron in shared_preload_libraries,
# vectron_counters() adds up hnsw scans, inserts and distance computations
# across backends; without it, the counters are absent (NULLs), and the
# extension works the same.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Vectron::TestData qw(extension_name);
use Vectron::HnswTest qw(skip_without_hnsw);

my $ext = extension_name();
plan skip_all => 'vectron_counters is vectron-only' if $ext ne 'vectron';

my $node = PostgreSQL::Test::Cluster->new('preload');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'vectron'");
$node->start;
$node->safe_psql('postgres', "CREATE EXTENSION $ext");
skip_without_hnsw($node, 'postgres');

is($node->safe_psql('postgres', 'SELECT preloaded, scans, inserts FROM vectron_counters()'),
	't|0|0', 'preloaded: counters start at zero');

$node->safe_psql('postgres', q{
	CREATE TABLE items (id int PRIMARY KEY, v vector(8));
	CREATE INDEX items_v ON items USING hnsw (v vector_l2_ops);
	SELECT setseed(0.3);
	INSERT INTO items SELECT i, (SELECT array_agg(random())::vector(8) FROM generate_series(1, 8) WHERE i > 0)
	FROM generate_series(1, 500) i;
});
# the first insert into an empty index searches nothing; the other 499 do
is($node->safe_psql('postgres', 'SELECT inserts FROM vectron_counters()'), '499',
	'every insert into a non-empty graph counts');

# 20 searches from 4 separate backends
for my $b (1 .. 4)
{
	$node->safe_psql('postgres', q{
		SET enable_seqscan = off;
		SELECT count(*) FROM generate_series(1, 5) g,
			LATERAL (SELECT id FROM items ORDER BY v <-> (SELECT v FROM items WHERE id = g) LIMIT 5) x;
	});
}
my ($scans, $dist, $idist) = split /\|/, $node->safe_psql('postgres',
	'SELECT scans, scan_distances, insert_distances FROM vectron_counters()');
is($scans, 20, 'scans from four backends add up');
cmp_ok($dist, '>=', 20 * 40, 'each scan computed at least ef_search distances');
cmp_ok($idist, '>', 499, 'insert distances counted');

# without preloading: same extension, no counters
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
$node->restart;
is($node->safe_psql('postgres', q{
	SET enable_seqscan = off;
	SELECT count(*) FROM (SELECT id FROM items ORDER BY v <-> (SELECT v FROM items WHERE id = 1) LIMIT 5) x;
	SELECT preloaded, scans IS NULL, scan_distances IS NULL FROM vectron_counters()}),
	"5\nf|t|t", 'not preloaded: searches work, counters are NULL');

$node->stop;
done_testing();
