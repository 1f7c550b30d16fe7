# 015_hnsw_crash_recovery.pl: the HNSW index survives crashes.
#
# Expected state after each crash:
#   - a plain CREATE INDEX whose backend is killed (SIGKILL, so the whole
#     cluster goes through crash recovery) leaves no index;
#   - a killed CREATE INDEX CONCURRENTLY leaves an INVALID index that
#     REINDEX repairs;
#   - an immediate shutdown during concurrent inserts leaves a usable index:
#     after recovery and VACUUM, vectron_hnsw_check is clean and every
#     committed row is found by a search for its own vector.
# Crashes are triggered from pg_stat_progress_create_index or a row count,
# never from a sleep.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Vectron::TestData qw(extension_name);

my $ext = extension_name();
my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '256MB'\nrestart_after_crash = on");
$node->start;
$node->safe_psql('postgres', "CREATE EXTENSION $ext");
$node->safe_psql('postgres', q{
	SELECT setseed(0.11);
	CREATE TABLE items (id int PRIMARY KEY, v vector(64));
	INSERT INTO items SELECT i, ARRAY(SELECT random() FROM generate_series(1, 64) WHERE i > 0)::real[]::vector
		FROM generate_series(1, 30000) i;
});

# Starts a statement in the background; returns the harness and the
# backend's pid (found by application_name).
my $nbg = 0;
sub start_bg
{
	my ($sql) = @_;
	my $app = 'bg' . ++$nbg;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ $node->installed_command('psql'), '-X', '-d',
			$node->connstr('postgres') . " application_name=$app", '-c', $sql ],
		'>', \$out, '2>', \$err);
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = '$app' AND state = 'active' AND backend_type = 'client backend'")
	  or die "background statement did not start";
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE application_name = '$app' AND backend_type = 'client backend'");
	return ($h, $pid);
}

# Waits until the build of $pid has loaded some tuples.
sub wait_for_build
{
	my ($pid) = @_;
	return $node->poll_query_until('postgres', qq{
		SELECT tuples_done > 1000 FROM pg_stat_progress_create_index WHERE pid = $pid
	});
}

# ---- 1: kill -9 the backend of a plain CREATE INDEX ----
my ($bg, $pid) = start_bg('CREATE INDEX items_v ON items USING hnsw (v vector_l2_ops);');
ok(wait_for_build($pid), 'the build reports progress in pg_stat_progress_create_index');
kill 'KILL', $pid;
$bg->finish;
$node->poll_query_until('postgres', 'SELECT true') or die 'no recovery';
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 'items_v'"),
	'0', 'a killed CREATE INDEX leaves no index');

# ---- 2: terminate CREATE INDEX CONCURRENTLY ----
($bg, $pid) = start_bg('CREATE INDEX CONCURRENTLY items_v ON items USING hnsw (v vector_l2_ops);');
ok(wait_for_build($pid), 'the concurrent build reports progress');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$bg->finish;
is($node->safe_psql('postgres',
		"SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_v'::regclass"),
	'f', 'a killed CREATE INDEX CONCURRENTLY leaves an INVALID index');
$node->safe_psql('postgres', 'REINDEX INDEX items_v');
is($node->safe_psql('postgres',
		"SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_v'::regclass"),
	't', 'REINDEX makes it valid');
is($node->safe_psql('postgres', "SELECT count(*) FROM vectron_hnsw_check('items_v') WHERE kind <> 'unreachable'"),
	'0', 'and vectron_hnsw_check is clean');

# ---- 3: immediate stop during concurrent inserts ----
$node->safe_psql('postgres', 'DELETE FROM items WHERE id > 5000; VACUUM items;');
my $script = $node->basedir . '/insert.sql';
open(my $fh, '>', $script) or die;
print $fh q{INSERT INTO items SELECT nextval('ids'), ARRAY(SELECT random() FROM generate_series(1, 64))::real[]::vector;
};
close($fh);
$node->safe_psql('postgres', "CREATE SEQUENCE ids START 100001");
my @cmd = ($node->installed_command('pgbench'), '-n', '-c', '3', '-t', '100000',
	'-f', $script, '-h', $node->host, '-p', $node->port, 'postgres');
my ($out, $err) = ('', '');
my $h = IPC::Run::start(\@cmd, '>', \$out, '2>', \$err);
$node->poll_query_until('postgres', 'SELECT count(*) > 1500 FROM items WHERE id > 100000')
  or die 'inserts did not start';
$node->stop('immediate');
$h->finish;
$node->start;
my $committed = $node->safe_psql('postgres', 'SELECT count(*) FROM items');
ok($committed > 6500, "rows committed before the crash ($committed)");
$node->safe_psql('postgres', 'VACUUM items');
is($node->safe_psql('postgres', "SELECT string_agg(kind || ' ' || detail, '; ') FROM vectron_hnsw_check('items_v') WHERE kind <> 'unreachable'"),
	'', 'vectron_hnsw_check is clean after recovery and VACUUM');
my $unreachable = $node->safe_psql('postgres', "SELECT count(*) FROM vectron_hnsw_check('items_v') WHERE kind = 'unreachable'");
cmp_ok($unreachable, '<=', $committed / 500, "at most 0.2% of elements unreachable ($unreachable)");
my $missing = $node->safe_psql('postgres', q{
	SET enable_seqscan = off;
	SET hnsw.ef_search = 200;
	SELECT count(*) FROM items a
	WHERE NOT EXISTS (SELECT 1 FROM (SELECT id FROM items b ORDER BY b.v <-> a.v LIMIT 1) s WHERE s.id = a.id);
});
cmp_ok($missing, '<=', $committed / 200,
	"committed rows are found by a search for their own vector ($missing of $committed missed)");
$node->safe_psql('postgres', q{
	INSERT INTO items SELECT i, ARRAY(SELECT random() FROM generate_series(1, 64) WHERE i > 0)::real[]::vector
		FROM generate_series(200001, 200100) i;
});
is($node->safe_psql('postgres', "SELECT count(*) FROM vectron_hnsw_check('items_v') WHERE kind <> 'unreachable'"),
	'0', 'the index takes inserts after recovery');

$node->stop;
done_testing();
