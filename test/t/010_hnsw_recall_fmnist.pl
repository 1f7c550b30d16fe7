# 010_hnsw_recall_fmnist.pl: recall@10 of the HNSW index on real data.
#
# A 10,000-image Fashion-MNIST subset (784 dimensions) and 200 test images
# as queries, for every opclass: vector_l2_ops, vector_ip_ops,
# vector_cosine_ops, vector_l1_ops, and bit_hamming_ops / bit_jaccard_ops on
# binary_quantize(v).  Exact ground truth and recall (counting ties: a hit is
# any result whose true distance is at most the true 10th distance) come from
# bench/vdata, cached.  At hnsw.ef_search = 100 recall must be >= 0.99, also
# for an index that got half its rows by insert after the build, and after
# deleting half the rows and vacuuming.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Vectron::TestData qw(extension_name load_fmnist ground_truth recall_of);

my $N = 10000;
my $Q = 200;
my $K = 10;
my $ext = extension_name();

my $node = PostgreSQL::Test::Cluster->new('recall');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '512MB'\nshared_buffers = '256MB'\nfsync = off");
$node->start;
$node->safe_psql('postgres', "CREATE EXTENSION $ext");
if ($node->safe_psql('postgres', "SELECT count(*) FROM pg_am WHERE amname = 'hnsw'") == 0)
{
	$node->stop;
	plan skip_all => 'this build has no hnsw access method';
}
$node->safe_psql('postgres', q{
	CREATE TABLE items (id int PRIMARY KEY, label int, v vector(784));
	CREATE TABLE queries (id int PRIMARY KEY, label int, v vector(784));
});
load_fmnist($node, 'postgres', 'items', 'train', 0, $N);
load_fmnist($node, 'postgres', 'queries', 'test', 0, $Q);
$node->safe_psql('postgres', q{
	ALTER TABLE items ADD COLUMN b bit(784);
	UPDATE items SET b = binary_quantize(v)::bit(784);
	ALTER TABLE queries ADD COLUMN b bit(784);
	UPDATE queries SET b = binary_quantize(v)::bit(784);
	VACUUM ANALYZE items;
	VACUUM ANALYZE queries;
});

# Run all queries in one statement; returns { qid => [ids] }.
sub search
{
	my ($col, $op) = @_;
	my $sql = qq{
		SET enable_seqscan = off;
		SET hnsw.ef_search = 100;
		SELECT q.id, (SELECT string_agg(n.id::text, ',' ORDER BY n.ord)
		              FROM (SELECT i.id, row_number() OVER () AS ord
		                    FROM (SELECT id FROM items ORDER BY $col $op q.$col LIMIT $K) i) n)
		FROM queries q ORDER BY q.id;
	};
	my %res;
	for my $line (split /\n/, $node->safe_psql('postgres', $sql))
	{
		my ($q, $ids) = split /\|/, $line;
		$res{$q} = [ split /,/, ($ids // '') ];
	}
	return \%res;
}

# The plan of one query (a literal query vector, as a client would send)
# uses the index; with $force, sequential scans are disabled.
sub uses_index
{
	my ($col, $op, $index, $force) = @_;
	my $q = $node->safe_psql('postgres', "SELECT $col FROM queries WHERE id = 0");
	my $type = $col eq 'b' ? 'bit(784)' : 'vector(784)';
	my $plan = $node->safe_psql('postgres', qq{
		SET enable_seqscan = @{[ $force ? 'off' : 'on' ]};
		EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY $col $op '$q'::$type LIMIT $K;
	});
	return $plan =~ /Index Scan using $index/;
}

my @cases = (
	[ 'l2',      'v', '<->', 'vector_l2_ops' ],
	[ 'ip',      'v', '<#>', 'vector_ip_ops' ],
	[ 'cosine',  'v', '<=>', 'vector_cosine_ops' ],
	[ 'l1',      'v', '<+>', 'vector_l1_ops' ],
	[ 'hamming', 'b', '<~>', 'bit_hamming_ops' ],
	[ 'jaccard', 'b', '<%>', 'bit_jaccard_ops' ],
);

for my $c (@cases)
{
	my ($metric, $col, $op, $opclass) = @$c;
	my $truth = ground_truth("fmnist:train:0:$N", "fmnist:test:0:$Q", $K, $metric);
	$node->safe_psql('postgres',
		"CREATE INDEX idx_$metric ON items USING hnsw ($col $opclass) WITH (m = 16, ef_construction = 64)");
	ok(uses_index($col, $op, "idx_$metric", 1), "$opclass: the planner uses the index");
	my $r = recall_of($truth, search($col, $op), $K, "fmnist:train:0:$N", "fmnist:test:0:$Q", $metric);
	cmp_ok($r, '>=', 0.99, "$opclass: recall\@$K >= 0.99 at ef_search 100 (got $r)");
	$node->safe_psql('postgres', "DROP INDEX idx_$metric");
}

# Half the rows inserted after the build: build on an empty copy of the
# first half, then insert the second half row by row through the index.
{
	my $truth = ground_truth("fmnist:train:0:$N", "fmnist:test:0:$Q", $K, 'l2');
	$node->safe_psql('postgres', q{
		CREATE TABLE all_items AS SELECT * FROM items;
		DELETE FROM items WHERE id >= 5000;
		VACUUM items;
		CREATE INDEX idx_ins ON items USING hnsw (v vector_l2_ops);
		INSERT INTO items SELECT * FROM all_items WHERE id >= 5000;
	});
	my $r = recall_of($truth, search('v', '<->'), $K, "fmnist:train:0:$N", "fmnist:test:0:$Q", 'l2');
	cmp_ok($r, '>=', 0.99, "l2: recall >= 0.99 with half the rows inserted after the build (got $r)");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM items'), $N, 'all rows present');
}

# Delete half the rows, vacuum, and compare with exact results over the rest
# (the true 10th distance comes from a sequential scan, since the base set
# changed; a hit is any result within it).
{
	$node->safe_psql('postgres', 'DELETE FROM items WHERE id % 2 = 0; VACUUM items;');
	my $r = $node->safe_psql('postgres', qq{
		SET enable_indexscan = off;
		SET enable_bitmapscan = off;
		CREATE TABLE kth AS
			SELECT q.id, (SELECT max(d) FROM (SELECT v <-> q.v AS d FROM items ORDER BY 1 LIMIT $K) x) AS kth
			FROM queries q;
		RESET enable_indexscan;
		SET enable_seqscan = off;
		SET hnsw.ef_search = 100;
		CREATE TABLE res AS
			SELECT q.id AS qid, r.id, r.d FROM queries q,
			LATERAL (SELECT id, v <-> q.v AS d FROM items ORDER BY v <-> q.v LIMIT $K) r;
		SELECT round(count(*) FILTER (WHERE r.d <= k.kth + 1e-6)::numeric / ($Q * $K), 4)
		FROM res r JOIN kth k ON k.id = r.qid;
	});
	cmp_ok($r, '>=', 0.99, "l2: recall >= 0.99 after deleting half the rows and VACUUM (got $r)");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM res WHERE id % 2 = 0'), 0,
		'no deleted row is returned');
}

$node->stop;
done_testing();
