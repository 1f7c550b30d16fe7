# 013_hnsw_standby.pl: the HNSW index replays on a streaming standby.
#
# Every page change is WAL-logged, so a standby that replays the primary's
# WAL answers index searches with the same results, for a built index and
# after inserts, deletes and VACUUM on the primary.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Vectron::TestData qw(extension_name);
use Vectron::HnswTest qw(skip_without_hnsw structure_ok);

my $ext = extension_name();
my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->start;
$primary->safe_psql('postgres', "CREATE EXTENSION $ext");
skip_without_hnsw($primary, 'postgres');

$primary->safe_psql('postgres', q{
	CREATE TABLE items (id int PRIMARY KEY, v vector(16));
	SELECT setseed(0.7);
	INSERT INTO items SELECT i, (SELECT array_agg(random())::vector(16) FROM generate_series(1, 16) WHERE i > 0)
	FROM generate_series(1, 3000) i;
	CREATE INDEX items_v ON items USING hnsw (v vector_l2_ops);
	CREATE TABLE queries AS SELECT i AS id, (SELECT array_agg(random())::vector(16) FROM generate_series(1, 16) WHERE i > 0) AS v
	FROM generate_series(1, 50) i;
});

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

my $search = q{
	SET enable_seqscan = off;
	SELECT q.id, (SELECT string_agg(x.id::text, ',') FROM
		(SELECT id FROM items ORDER BY v <-> q.v LIMIT 10) x) FROM queries q ORDER BY q.id;
};

sub compare
{
	my ($what) = @_;
	$primary->wait_for_catchup($standby);
	my $p = $primary->safe_psql('postgres', $search);
	my $s = $standby->safe_psql('postgres', $search);
	is($s, $p, "standby returns the primary's results $what");
	like($standby->safe_psql('postgres', "SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY v <-> '[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]' LIMIT 3"),
		qr/Index Scan using items_v/, "standby uses the index $what");
}

compare('after the build');

$primary->safe_psql('postgres', q{
	INSERT INTO items SELECT i, (SELECT array_agg(random())::vector(16) FROM generate_series(1, 16) WHERE i > 0)
	FROM generate_series(3001, 4000) i;
});
compare('after inserts');

$primary->safe_psql('postgres', 'DELETE FROM items WHERE id % 4 = 0; VACUUM items;');
compare('after deletes and VACUUM');
structure_ok($standby, 'postgres', 'items_v', 'on the standby');

$standby->stop;
$primary->stop;
done_testing();
