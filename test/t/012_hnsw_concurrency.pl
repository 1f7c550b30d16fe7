# 012_hnsw_concurrency.pl: concurrent inserts and searches on one HNSW index.
#
# pgbench runs insert clients and search clients side by side for a fixed
# number of transactions (no timing involved); every transaction must
# succeed, no deadlock may occur, and afterwards the index structure is
# clean, every row is reachable, and a VACUUM after deletes keeps it so.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Vectron::TestData qw(extension_name);
use Vectron::HnswTest qw(skip_without_hnsw structure_ok all_rows_found);

my $ext = extension_name();
my $node = PostgreSQL::Test::Cluster->new('concurrency');
$node->init;
$node->append_conf('postgresql.conf', "max_connections = 50\ndeadlock_timeout = '100ms'");
$node->start;
$node->safe_psql('postgres', "CREATE EXTENSION $ext");
skip_without_hnsw($node, 'postgres');

$node->safe_psql('postgres', q{
	CREATE TABLE items (id bigserial PRIMARY KEY, v vector(24));
	INSERT INTO items (v) SELECT (SELECT array_agg(random())::vector(24) FROM generate_series(1, 24) WHERE i > 0)
	FROM generate_series(1, 2000) i;
	CREATE INDEX items_v ON items USING hnsw (v vector_l2_ops) WITH (m = 8, ef_construction = 32);
});

my $tmp = PostgreSQL::Test::Utils::tempdir;
my %scripts = (
	'insert.sql' => "INSERT INTO items (v) SELECT array_agg(random())::vector(24) FROM generate_series(1, 24);\n",
	'search.sql' => "SELECT id FROM items ORDER BY v <-> (SELECT array_agg(random())::vector(24) FROM generate_series(1, 24)) LIMIT 10;\n",
	'delete.sql' => "\\set id random(1, 4000)\nDELETE FROM items WHERE id = :id;\n",
	'vacuum.sql' => "VACUUM items;\n",
	'update.sql' => "\\set id random(1, 2000)\nUPDATE items SET v = (SELECT array_agg(random())::vector(24) FROM generate_series(1, 24)) WHERE id = :id;\n",
);
for my $f (keys %scripts)
{
	open my $fh, '>', "$tmp/$f" or die;
	print $fh $scripts{$f};
	close $fh;
}

$node->command_ok(
	[ 'pgbench', '-n', '-c', '8', '-j', '2', '-t', '250',
	  '-f', "$tmp/insert.sql\@4", '-f', "$tmp/search.sql\@4", '-f', "$tmp/update.sql\@1",
	  '-d', $node->connstr('postgres') ],
	'pgbench: 8 clients mixing inserts, searches and updates, 2000 transactions, all succeed');

my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM items');
cmp_ok($rows, '>', 2000, "rows were inserted concurrently ($rows)");
my ($found, $total);
{
	# A pruned neighbour list never drops an element's last incoming link
	# (hnswlinks.c), so every row is reachable without waiting for VACUUM.
	structure_ok($node, 'postgres', 'items_v', 'after concurrent writes');
	($found, $total) = all_rows_found($node, 'postgres', 'items', 'v', '<->');
	is($found, $total, "every row is reachable after concurrent inserts ($found of $total)");
}

# deletes + VACUUM while searches run
$node->safe_psql('postgres', 'DELETE FROM items WHERE id % 3 = 0');
$node->command_ok(
	[ 'pgbench', '-n', '-c', '4', '-j', '2', '-t', '100',
	  '-f', "$tmp/search.sql\@1", '-f', "$tmp/insert.sql\@1",
	  '-d', $node->connstr('postgres') ],
	'searches and inserts run while rows are deleted');
$node->safe_psql('postgres', 'VACUUM items');
structure_ok($node, 'postgres', 'items_v', 'after VACUUM');
($found, $total) = all_rows_found($node, 'postgres', 'items', 'v', '<->');
is($found, $total, "every live row is reachable after VACUUM ($found of $total)");
is($node->safe_psql('postgres', q{SET enable_seqscan = off;
	SELECT count(*) FROM (SELECT id FROM items ORDER BY v <-> array_fill(0.5, ARRAY[24])::vector LIMIT 50) x
	WHERE id % 3 = 0 AND id <= 2000}), 0, 'deleted rows are not returned');

# Inserts search the graph in a lock mode that lets other inserts write but
# not VACUUM (hnswinsert.c); with VACUUM and deletes racing them, no new
# element may link to a deleted one (deleted_link), no row may be lost and
# nothing may deadlock.
$node->command_ok(
	[ 'pgbench', '-n', '-c', '4', '-j', '2', '-t', '80',
	  '-f', "$tmp/insert.sql\@6", '-f', "$tmp/delete.sql\@3", '-f', "$tmp/vacuum.sql\@1",
	  '-d', $node->connstr('postgres') ],
	'inserts run while other clients delete rows and VACUUM');
structure_ok($node, 'postgres', 'items_v', 'after inserts racing VACUUM');
$node->safe_psql('postgres', 'VACUUM items');
structure_ok($node, 'postgres', 'items_v', 'after inserts racing VACUUM, then VACUUM');
($found, $total) = all_rows_found($node, 'postgres', 'items', 'v', '<->');
is($found, $total, "every live row is reachable after inserts racing VACUUM ($found of $total)");

$node->stop;
done_testing();
