# 012_hnsw_concurrency_standby.pl: concurrent inserts and searches, and a
# streaming standby.
#
# pgbench runs insert clients and search clients against one hnsw index for
# a fixed number of transactions; afterwards vectron_hnsw_check must be
# clean and every row findable.  The index is WAL-logged with GenericXLog
# only, so a streaming standby replays it and must return exactly the
# primary's results.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Vectron::TestData qw(extension_name);

my $ext = extension_name();
my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->start;
$primary->safe_psql('postgres', "CREATE EXTENSION $ext");
$primary->safe_psql('postgres', q{
	SELECT setseed(0.7);
	CREATE TABLE items (id bigserial PRIMARY KEY, v vector(32));
	INSERT INTO items (v) SELECT ARRAY(SELECT random() FROM generate_series(1, 32) WHERE i > 0)::real[]::vector
		FROM generate_series(1, 3000) i;
	CREATE INDEX items_v ON items USING hnsw (v vector_l2_ops) WITH (m = 8, ef_construction = 32);
});
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;

# ---- pgbench: inserts and searches at once ----
$primary->pgbench(
	'-n -c 4 -j 2 -t 150',
	0,
	[qr{processed: 600/600}],
	[qr{^$}],
	'mixed insert and search clients',
	{
		'001_insert' => q{INSERT INTO items (v) SELECT ARRAY(SELECT random() FROM generate_series(1, 32))::real[]::vector;},
		'002_search' => q{SET enable_seqscan = off;
SELECT id FROM items ORDER BY v <-> (SELECT ARRAY(SELECT random() FROM generate_series(1, 32))::real[]::vector) LIMIT 10;},
		'003_delete' => q{DELETE FROM items WHERE id = (SELECT (random() * 3000)::int + 1);},
	});
is($primary->safe_psql('postgres', "SELECT count(*) FROM vectron_hnsw_check('items_v') WHERE kind <> 'unreachable'"),
	'0', 'vectron_hnsw_check is clean after the concurrent run');
$primary->safe_psql('postgres', 'VACUUM items');
is($primary->safe_psql('postgres', "SELECT string_agg(kind || ' ' || detail, '; ') FROM vectron_hnsw_check('items_v') WHERE kind <> 'unreachable'"),
	'', 'and after VACUUM');
my $rows = $primary->safe_psql('postgres', 'SELECT count(*) FROM items');
my $missing = $primary->safe_psql('postgres', q{
	SET enable_seqscan = off;
	SET hnsw.ef_search = 200;
	SELECT count(*) FROM items a
	WHERE NOT EXISTS (SELECT 1 FROM (SELECT id FROM items b ORDER BY b.v <-> a.v LIMIT 1) s WHERE s.id = a.id);
});
cmp_ok($missing, '<=', $rows / 200, "rows are found by a search for their own vector ($missing of $rows missed)");

# ---- the standby replays the index ----
$primary->wait_for_catchup($standby);
my $q = q{
	SET enable_seqscan = off;
	SELECT string_agg(id::text, ',' ORDER BY n, id) FROM (
		SELECT q.n, x.id FROM generate_series(1, 20) q(n),
		LATERAL (SELECT id FROM items ORDER BY v <-> (SELECT v FROM items ORDER BY id OFFSET q.n * 50 LIMIT 1) LIMIT 5) x) s;
};
my $on_primary = $primary->safe_psql('postgres', $q);
my $on_standby = $standby->safe_psql('postgres', $q);
ok(length($on_primary) > 0, 'the primary answers');
is($on_standby, $on_primary, 'the standby returns the same results as the primary');
is($standby->safe_psql('postgres', "SELECT count(*) FROM vectron_hnsw_check('items_v') WHERE kind <> 'unreachable'"),
	'0', 'vectron_hnsw_check is clean on the standby');

$standby->stop;
$primary->stop;
done_testing();
