# 021_hnsw_parallel_build.pl: the parallel HNSW build (src/hnswparallel.c).
#
# With max_parallel_maintenance_workers = 2 on 10,000 seeded 128-dimension
# clustered vectors (the data of 017), the build must:
#  - launch workers, for loading and for linking (DEBUG1 line of the leader);
#  - leave an index vectron_hnsw_check finds nothing wrong with;
#  - reach recall@10 >= 0.99 at ef_search 100 (ties counted) for
#    vector_l2_ops, within 0.01 of the serial build, and for vector_ip_ops
#    (whose norm bound the leader fixes between the phases and the workers
#    read) >= 0.97 at ef_search 400, within 0.03 of the serial build;
#  - report progress that a second session sees reach tuples_total;
#  - fall back to the serial build, with the NOTICE and its hint, when the
#    shared arena is too small for the table.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Vectron::TestData qw(extension_name);

my $ext = extension_name();
my $node = PostgreSQL::Test::Cluster->new('parallel_build');
$node->init;
$node->append_conf('postgresql.conf',
	"maintenance_work_mem = '256MB'\nfsync = off\nmax_worker_processes = 8\nmax_parallel_workers = 8");
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
	CREATE TABLE items (id int PRIMARY KEY, v vector(128)) WITH (parallel_workers = 2);
	INSERT INTO items SELECT i, point_near(i % 100, i) FROM generate_series(1, 10000) i;
	CREATE TABLE queries AS SELECT i AS id, point_near((i * 7) % 100, i) AS v FROM generate_series(1, 100) i;
	ANALYZE items;
});

# exact top-10 distances per query, for both operators
$node->safe_psql('postgres', q{
	SET enable_indexscan = off;
	SET enable_bitmapscan = off;
	CREATE TABLE truth AS SELECT q.id AS qid,
		(SELECT max(d) FROM (SELECT v <-> q.v AS d FROM items ORDER BY 1 LIMIT 10) x) AS l2,
		(SELECT max(d) FROM (SELECT v <#> q.v AS d FROM items ORDER BY 1 LIMIT 10) x) AS ip
	FROM queries q;
});

# recall@10 counting ties: a hit is any result within the true 10th distance
sub recall
{
	my ($op, $col, $ef) = @_;
	$ef //= 100;
	return $node->safe_psql('postgres', qq{
		SET enable_seqscan = off;
		SET hnsw.ef_search = $ef;
		SELECT round(count(*) FILTER (WHERE x.d <= t.$col + 1e-4)::numeric / 1000, 4)
		FROM queries q JOIN truth t ON t.qid = q.id,
			LATERAL (SELECT v $op q.v AS d FROM items ORDER BY v $op q.v LIMIT 10) x;
	});
}

# builds with the given settings; returns the leader's messages
sub build
{
	my ($sql, $settings) = @_;
	my ($stdout, $stderr);
	$node->psql('postgres', "SET client_min_messages = debug1; $settings; $sql",
		stdout => \$stdout, stderr => \$stderr, on_error_die => 1);
	return $stderr;
}

my $par = 'SET max_parallel_maintenance_workers = 2';

# serial reference
build('CREATE INDEX items_v ON items USING hnsw (v vector_l2_ops)', 'SET max_parallel_maintenance_workers = 0');
my $serial = recall('<->', 'l2');
$node->safe_psql('postgres', 'DROP INDEX items_v');

my $log = build('CREATE INDEX items_v ON items USING hnsw (v vector_l2_ops)', $par);
my ($load, $link) = $log =~ /(\d+) parallel workers launched to load and (\d+) to link/;
ok(defined $load && $load >= 1 && $link >= 1,
	'workers launched for loading and linking (' . ($load // 'none') . ', ' . ($link // 'none') . ')')
  or diag($log);
is($node->safe_psql('postgres', "SELECT count(*) FROM vectron_hnsw_check('items_v')"),
	'0', 'vectron_hnsw_check is clean after a parallel build');
my $r = recall('<->', 'l2');
cmp_ok($r, '>=', 0.99, "l2 recall@10 after a parallel build ($r; serial $serial)");
cmp_ok($r, '>=', $serial - 0.01, 'l2 recall of the parallel build matches the serial one');
is($node->safe_psql('postgres', 'SELECT count(*) FROM items WHERE id > 0'), '10000', 'row count');
is($node->safe_psql('postgres', q{
	SET enable_seqscan = off; SET hnsw.iterative_scan = relaxed_order; SET hnsw.max_scan_tuples = 1000000;
	SELECT count(*) FROM (SELECT id FROM items ORDER BY v <-> (SELECT v FROM items WHERE id = 1) LIMIT 10000) x}),
	'10000', 'every row is found through the parallel-built index');
$node->safe_psql('postgres', 'DROP INDEX items_v');

# inner product on this data is harder: at ef_search 100 serial builds
# reach 0.84-0.93 from one build to the next, at 400 0.99-1.0; the parallel
# build is held to 0.97 there and to the serial one
build('CREATE INDEX items_ip ON items USING hnsw (v vector_ip_ops)', 'SET max_parallel_maintenance_workers = 0');
my $serial_ip = recall('<#>', 'ip', 400);
$node->safe_psql('postgres', 'DROP INDEX items_ip');
$log = build('CREATE INDEX items_ip ON items USING hnsw (v vector_ip_ops)', $par);
like($log, qr/[1-9]\d* parallel workers launched to load/, 'workers launched for vector_ip_ops');
is($node->safe_psql('postgres', "SELECT count(*) FROM vectron_hnsw_check('items_ip')"),
	'0', 'vectron_hnsw_check is clean (vector_ip_ops)');
$r = recall('<#>', 'ip', 400);
cmp_ok($r, '>=', 0.97, "ip recall@10 at ef_search 400 after a parallel build ($r)");
cmp_ok($r, '>=', $serial_ip - 0.03, "ip recall of the parallel build ($r) matches the serial one ($serial_ip)");
$node->safe_psql('postgres', 'DROP INDEX items_ip');

# progress, watched from a second session; pg_stat_clear_snapshot() makes
# each read of the view a fresh one inside the function's transaction
$node->safe_psql('postgres', q{
CREATE FUNCTION watch_build(rel regclass) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r record;
	seen bool := false;
	maxdone bigint := -1;
	total bigint := -1;
	reached bool := false;
	t0 timestamptz := clock_timestamp();
BEGIN
	LOOP
		PERFORM pg_stat_clear_snapshot();
		SELECT tuples_done, tuples_total INTO r FROM pg_stat_progress_create_index WHERE relid = rel;
		IF FOUND THEN
			seen := true;
			maxdone := greatest(maxdone, r.tuples_done);
			total := greatest(total, r.tuples_total);
			IF r.tuples_total > 0 AND r.tuples_done = r.tuples_total THEN reached := true; END IF;
		ELSIF seen OR clock_timestamp() - t0 > interval '180 s' THEN
			EXIT;
		END IF;
	END LOOP;
	RETURN format('%s %s %s %s', seen, maxdone, total, reached);
END $$;
});
my ($in, $out, $err) = ('', '', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-At', '-d', $node->connstr('postgres'),
	  '-c', "SELECT watch_build('items')" ], \$in, \$out, \$err);
# the watcher's loop is running once it shows in pg_stat_activity
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE 'SELECT watch_build%'")
  or die 'watcher did not start';
build('CREATE INDEX items_v ON items USING hnsw (v vector_l2_ops)', $par);
$h->finish;
chomp $out;
my ($seen, $maxdone, $total, $reached) = split / /, $out;
is($seen, 't', 'the build shows in pg_stat_progress_create_index') or diag("$out $err");
is($total, '10000', 'tuples_total is the table size');
is($maxdone, '10000', 'tuples_done reaches 10000');
is($reached, 't', 'tuples_done was seen equal to tuples_total');
$node->safe_psql('postgres', 'DROP INDEX items_v');

# CREATE INDEX CONCURRENTLY: the scan runs under an MVCC snapshot shared
# with the workers, and validation then asks for every TID
$node->safe_psql('postgres', 'UPDATE items SET v = v WHERE id % 10 = 0');
$log = '';
{
	my ($o, $e);
	$node->psql('postgres',
		"SET client_min_messages = debug1; $par; CREATE INDEX CONCURRENTLY items_cic ON items USING hnsw (v vector_l2_ops)",
		stdout => \$o, stderr => \$e, on_error_die => 1);
	$log = $e;
}
like($log, qr/[1-9]\d* parallel workers launched to load/, 'workers launched for CREATE INDEX CONCURRENTLY');
is($node->safe_psql('postgres', "SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_cic'::regclass"),
	't', 'the concurrently built index is valid');
is($node->safe_psql('postgres', "SELECT count(*) FROM vectron_hnsw_check('items_cic')"),
	'0', 'vectron_hnsw_check is clean after CREATE INDEX CONCURRENTLY');
is($node->safe_psql('postgres', q{
	SET enable_seqscan = off; SET hnsw.iterative_scan = relaxed_order; SET hnsw.max_scan_tuples = 1000000;
	SELECT count(*) FROM (SELECT id FROM items ORDER BY v <-> (SELECT v FROM items WHERE id = 1) LIMIT 20000) x}),
	'10000', 'every live row is found through it');
$node->safe_psql('postgres', 'DROP INDEX items_cic');

# too little memory for the shared arena: the serial build takes over, with
# the NOTICE and hint, and the index is still sound
$node->safe_psql('postgres', q{
	CREATE TABLE small (id int, v vector(128)) WITH (parallel_workers = 2);
	INSERT INTO small SELECT id, v FROM items WHERE id <= 2500;
	ANALYZE small;
});
$log = build('CREATE INDEX small_v ON small USING hnsw (v vector_l2_ops)',
	"$par; SET maintenance_work_mem = '1MB'");
like($log, qr/shared arena is full/, 'the shared arena fills up');
like($log, qr/NOTICE:  hnsw graph no longer fits into maintenance_work_mem/, 'NOTICE raised');
like($log, qr/HINT:  Increase maintenance_work_mem/, 'with its hint');
is($node->safe_psql('postgres', "SELECT count(*) FROM vectron_hnsw_check('small_v')"),
	'0', 'vectron_hnsw_check is clean after the fallback');
is($node->safe_psql('postgres', q{
	SET enable_seqscan = off; SET hnsw.iterative_scan = relaxed_order; SET hnsw.max_scan_tuples = 1000000;
	SELECT count(*) FROM (SELECT id FROM small ORDER BY v <-> (SELECT v FROM small WHERE id = 1) LIMIT 5000) x}),
	'2500', 'every row is found after the fallback');

$node->stop;
done_testing();
