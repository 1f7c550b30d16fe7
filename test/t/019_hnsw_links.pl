# 019_hnsw_links.pl: no element of an HNSW graph is ever left unreachable.
#
# A small m (4) and clustered data make neighbour lists fill and get pruned
# all the time, which is when an element can lose its last incoming link.
# Before hnswlinks.c this setup left ~25 of 4,000 inserted elements and ~80
# of 11,000 built ones unreachable; vectron_hnsw_check must now report
# nothing after concurrent inserts, after deletes and VACUUM, and after a
# build over many duplicates.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Vectron::TestData qw(extension_name);
use Vectron::HnswTest qw(skip_without_hnsw all_rows_found);

my $ext = extension_name();
my $node = PostgreSQL::Test::Cluster->new('links');
$node->init;
$node->start;
$node->safe_psql('postgres', "CREATE EXTENSION $ext");
skip_without_hnsw($node, 'postgres');

# 4^16 grid points with a little noise: many near-ties
my $point = q{(SELECT array_agg(floor(random() * 4)::int + random() * 0.01)::vector(16) FROM generate_series(1, 16) WHERE g > 0)};

$node->safe_psql('postgres', q{
	CREATE TABLE items (id serial PRIMARY KEY, v vector(16));
	CREATE INDEX items_v ON items USING hnsw (v vector_l2_ops) WITH (m = 4, ef_construction = 16);
});
my $tmp = PostgreSQL::Test::Utils::tempdir;
open my $fh, '>', "$tmp/ins.sql" or die;
print $fh "INSERT INTO items (v) SELECT $point FROM generate_series(1, 10) g;\n";
close $fh;
$node->command_ok(
	[ 'pgbench', '-n', '-c', '4', '-j', '2', '-t', '100', '-f', "$tmp/ins.sql",
	  '-d', $node->connstr('postgres') ],
	'pgbench: 4 clients insert 4,000 rows');

sub problems
{
	my ($index) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(string_agg(kind || '=' || n, ' '), 'none') FROM
		 (SELECT kind, count(*) n FROM vectron_hnsw_check('$index') GROUP BY kind) x");
}

is(problems('items_v'), 'none', 'after concurrent inserts no element is unreachable');
my ($found, $total) = all_rows_found($node, 'postgres', 'items', 'v', '<->');
is($found, $total, "every row is found through the index ($found of $total)");

$node->safe_psql('postgres', 'DELETE FROM items WHERE id % 2 = 0');
$node->safe_psql('postgres', 'VACUUM items');
is(problems('items_v'), 'none', 'after deleting half and VACUUM no element is unreachable');

$node->safe_psql('postgres', qq{
	CREATE TABLE b (v vector(16));
	INSERT INTO b SELECT $point FROM generate_series(1, 8000) g;
	INSERT INTO b SELECT v FROM b LIMIT 3000;
	CREATE INDEX b_v ON b USING hnsw (v vector_l2_ops) WITH (m = 4, ef_construction = 16);
});
is(problems('b_v'), 'none', 'a build over 11,000 rows (3,000 duplicated) leaves no element unreachable');

$node->stop;
done_testing();
