# Vectron::TestData: shared helpers for TAP tests that need real vectors.
#
# Loads Fashion-MNIST subsets through bench/vdata (the shared data tool) and
# asks it for exact ground truth and recall, so every test measures against
# the same cached truth as the benchmarks.
package Vectron::TestData;

use strict;
use warnings;
use Exporter 'import';
use File::Temp ();

our @EXPORT_OK = qw(vdata extension_name load_fmnist ground_truth recall_of);

# Path of the vdata binary in the tree the tests run from.
sub vdata
{
	my $root = $ENV{VX_ROOT} // '.';
	my $bin = "$root/bench/vdata";
	die "bench/vdata not built (make tools)" unless -x $bin;
	return $bin;
}

# The extension under test; VX_TEST_EXTENSION=vector runs a test on pgvector.
sub extension_name
{
	return $ENV{VX_TEST_EXTENSION} // 'vectron';
}

# Load rows [offset, offset+limit) of a Fashion-MNIST set into TABLE
# (id int, label int, v vector(784)) through COPY from vdata's csv output.
sub load_fmnist
{
	my ($node, $db, $table, $set, $offset, $limit) = @_;
	my $vdata = vdata();
	my $connstr = $node->connstr($db);
	my $cmd = "$vdata fmnist-export --set $set --offset $offset --limit $limit --format csv --labels"
	  . " | psql -X -q -v ON_ERROR_STOP=1 -d '$connstr' -c '\\copy $table (id, label, v) FROM STDIN'";
	system('bash', '-c', "set -o pipefail; $cmd") == 0
	  or die "loading $set $offset+$limit into $table failed";
	return;
}

# Exact top-k for queries against base (vdata specs); returns the truth file.
sub ground_truth
{
	my ($base, $queries, $k, $metric) = @_;
	my $out = File::Temp->new(SUFFIX => '.truth', UNLINK => 0)->filename;
	system(vdata(), 'groundtruth', '--base', $base, '--queries', $queries,
		'--k', $k, '--metric', $metric, '--out', $out) == 0
	  or die "vdata groundtruth failed";
	return $out;
}

# Recall@k of results (hash qid => [ids]) against a truth file, counting
# ties: with the base and query specs and the metric, vdata computes the true
# distance of every returned id, so an id tied with the k-th is a hit.
sub recall_of
{
	my ($truth, $results, $k, $base, $queries, $metric) = @_;
	my $tmp = File::Temp->new(SUFFIX => '.results');
	for my $q (sort { $a <=> $b } keys %$results)
	{
		print $tmp "$q\t" . join(',', @{ $results->{$q} }) . "\n";
	}
	close $tmp;
	my $extra = defined $metric ? "--base $base --queries $queries --metric $metric" : '';
	my $out = `@{[vdata()]} recall --truth $truth --results @{[$tmp->filename]} --k $k $extra`;
	die "vdata recall failed" if $? != 0;
	my ($r) = $out =~ /([0-9]*\.[0-9]+)/;
	return $r;
}

1;
