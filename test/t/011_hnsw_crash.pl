# 011_hnsw_crash.pl: the HNSW index under crashes.
#
# Expected state after each crash:
#  - a backend killed during a plain CREATE INDEX: no index is left;
#  - killed during CREATE INDEX CONCURRENTLY: an INVALID index is left, and
#    REINDEX makes it valid and usable;
#  - the cluster stopped in immediate mode during concurrent inserts: after
#    recovery the index is valid, vectron_hnsw_check is clean, and every
#    committed row is found through the index.
# The crashes are triggered from the progress report or a row count, never
# from a sleep.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use Vectron::TestData qw(extension_name);
use Vectron::HnswTest qw(skip_without_hnsw structure_ok all_rows_found);

my $ext = extension_name();
my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '256MB'\nrestart_after_crash = on");
$node->start;
$node->safe_psql('postgres', "CREATE EXTENSION $ext");
skip_without_hnsw($node, 'postgres');

$node->safe_psql('postgres', q{
	CREATE TABLE items (id int PRIMARY KEY, v vector(32));
	SELECT setseed(0.42);
	INSERT INTO items SELECT i, (SELECT array_agg(random())::vector(32) FROM generate_series(1, 32) WHERE i > 0)
	FROM generate_series(1, 20000) i;
});

# Start a build in a background session, wait until the progress report
# shows it working, then kill that backend with SIGKILL.
sub kill_build
{
	my ($sql) = @_;
	my ($stdin, $stdout, $stderr) = ('', '', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', $sql ],
		\$stdin, \$stdout, \$stderr);
	my $pid;
	for (1 .. 6000)
	{
		$pid = $node->safe_psql('postgres',
			"SELECT pid FROM pg_stat_progress_create_index WHERE coalesce(tuples_done, 0) > 0 OR blocks_done > 0 LIMIT 1");
		last if $pid;
		usleep(10_000);
	}
	ok($pid, "build seen in pg_stat_progress_create_index");
	kill 'KILL', $pid if $pid;
	$h->finish;
	# the postmaster restarts after the crash; wait until it accepts queries
	$node->poll_query_until('postgres', 'SELECT true') or die "server did not come back";
	return;
}

kill_build('CREATE INDEX idx_plain ON items USING hnsw (v vector_l2_ops)');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 'idx_plain'"),
	0, 'killed plain CREATE INDEX leaves no index');

kill_build('CREATE INDEX CONCURRENTLY idx_conc ON items USING hnsw (v vector_l2_ops)');
is($node->safe_psql('postgres', q{SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	WHERE c.relname = 'idx_conc'}), 'f', 'killed CREATE INDEX CONCURRENTLY leaves an INVALID index');
$node->safe_psql('postgres', 'REINDEX INDEX idx_conc');
is($node->safe_psql('postgres', q{SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	WHERE c.relname = 'idx_conc'}), 't', 'REINDEX makes it valid');
structure_ok($node, 'postgres', 'idx_conc', 'after REINDEX');
my ($found, $total) = all_rows_found($node, 'postgres', 'items', 'v', '<->');
{
	is($found, $total, "after REINDEX every row is found through the index ($found of $total)");
}

# Concurrent inserts, then an immediate stop once enough rows are committed.
$node->safe_psql('postgres', 'DELETE FROM items WHERE id > 5000; VACUUM items');
my @writers;
my $tmp = PostgreSQL::Test::Utils::tempdir;
for my $w (0 .. 2)
{
	# one transaction per row; files, so the writers need no pumping
	open my $fh, '>', "$tmp/writer$w.sql" or die;
	for my $i (1 .. 3000)
	{
		my $id = 100000 + $w * 100000 + $i;
		print $fh "INSERT INTO items SELECT $id, (SELECT array_agg(random())::vector(32) FROM generate_series(1, 32));\n";
	}
	close $fh;
	push @writers, IPC::Run::start(
		[ 'psql', '-X', '-q', '-f', "$tmp/writer$w.sql", '-d', $node->connstr('postgres') ],
		'<', '/dev/null', '>', '/dev/null', '2>', '/dev/null');
}
$node->poll_query_until('postgres', 'SELECT count(*) > 6000 FROM items')
  or die 'inserts did not progress';
$node->stop('immediate');
$_->kill_kill for @writers;
$node->start;

my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM items');
cmp_ok($rows, '>', 6000, "committed rows survived the crash ($rows)");
is($node->safe_psql('postgres', q{SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	WHERE c.relname = 'idx_conc'}), 't', 'index still valid after recovery');
structure_ok($node, 'postgres', 'idx_conc', 'after immediate stop');
($found, $total) = all_rows_found($node, 'postgres', 'items', 'v', '<->');
{
	is($found, $total, "every committed row is found through the index ($found of $total)");
}

# and the index keeps working for writes after recovery
$node->safe_psql('postgres', "INSERT INTO items VALUES (999999, array_fill(5, ARRAY[32])::vector)");
{
	is($node->safe_psql('postgres', q{SET enable_seqscan = off;
	SELECT id FROM items ORDER BY v <-> array_fill(5, ARRAY[32])::vector LIMIT 1}), '999999',
	'insert after recovery is found');
}

$node->stop;
done_testing();
