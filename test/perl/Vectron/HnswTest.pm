# Vectron::HnswTest: helpers shared by the HNSW TAP tests.
package Vectron::HnswTest;

use strict;
use warnings;
use Exporter 'import';
use Test::More;

our @EXPORT_OK = qw(skip_without_hnsw structure_ok all_rows_found);

# Skip the whole test file when the build has no hnsw access method.
sub skip_without_hnsw
{
	my ($node, $db) = @_;
	if ($node->safe_psql($db, "SELECT count(*) FROM pg_am WHERE amname = 'hnsw'") == 0)
	{
		$node->stop;
		plan skip_all => 'this build has no hnsw access method';
	}
	return;
}

# vectron_hnsw_check reports no problem for the index (a pass when the
# extension under test has no such function, e.g. pgvector).
sub structure_ok
{
	my ($node, $db, $index, $what) = @_;
	# a TODO block around the call in the test file applies here too
	our $TODO;
	local $TODO = $main::TODO;
	my $has = $node->safe_psql($db,
		"SELECT count(*) FROM pg_proc WHERE proname = 'vectron_hnsw_check'");
	if (!$has)
	{
		pass("$what: (no vectron_hnsw_check in this extension)");
		return;
	}
	my $problems = $node->safe_psql($db, "SELECT count(*) FROM vectron_hnsw_check('$index')");
	is($problems, 0, "$what: vectron_hnsw_check reports no problem")
	  or diag($node->safe_psql($db, "SELECT * FROM vectron_hnsw_check('$index') LIMIT 20"));
	return;
}

# Every row of TABLE is reachable through the index: first a plain search
# for its own vector (its id among the 10 nearest); a row missed there is
# searched again with an iterative scan filtered on its id, which walks the
# graph until it meets the row or exhausts what is reachable.  Returns
# (found, total).
sub all_rows_found
{
	my ($node, $db, $table, $col, $op) = @_;
	my $r = $node->safe_psql($db, qq{
		SET enable_seqscan = off;
		SET enable_bitmapscan = off;
		SET hnsw.ef_search = 200;
		CREATE TEMP TABLE missed AS
			SELECT t.id, t.$col FROM $table t WHERE NOT EXISTS (
				SELECT 1 FROM (SELECT id FROM $table ORDER BY $col $op t.$col LIMIT 10) x WHERE x.id = t.id);
		SET hnsw.iterative_scan = relaxed_order;
		SET hnsw.max_scan_tuples = 1000000;
		SET hnsw.scan_mem_multiplier = 100;
		SET work_mem = '64MB';
		SELECT (SELECT count(*) FROM $table) - count(*) FILTER (WHERE NOT EXISTS (
				SELECT 1 FROM (SELECT id FROM $table u WHERE u.id + 0 = m.id ORDER BY u.$col $op m.$col LIMIT 1) x)),
			(SELECT count(*) FROM $table)
		FROM missed m;
	});
	return split /\|/, $r;
}

1;
