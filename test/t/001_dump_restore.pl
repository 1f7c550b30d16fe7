# 001_dump_restore.pl: pg_dump and restore of a database with vector columns
# round-trip (plain and custom formats), ALTER EXTENSION UPDATE works, and
# the binary wire format is what pgvector clients expect.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
	CREATE EXTENSION vectron;
	CREATE TABLE items (id int PRIMARY KEY, v vector(3), w vector, b bit(4));
	INSERT INTO items SELECT i, ARRAY[i, i * 0.5, -i]::vector,
		array_fill(i::real / 3, ARRAY[i])::vector, binary_quantize(ARRAY[i % 2, -1, 1, i % 3]::vector)
		FROM generate_series(1, 200) i;
	CREATE INDEX items_v_btree ON items (v);
	CREATE VIEW nearest AS SELECT id FROM items ORDER BY v <-> '[1,1,1]' LIMIT 5;
});

my $before = $node->safe_psql('src',
	'SELECT md5(string_agg(id || v::text || w::text || b::text, \',\' ORDER BY id)) FROM items');
my $nn_before = $node->safe_psql('src', 'SELECT string_agg(id::text, \',\') FROM nearest');

my $tmp = PostgreSQL::Test::Utils::tempdir;
for my $fmt ('p', 'c')
{
	my $file = "$tmp/dump.$fmt";
	my $db = "restored_$fmt";
	$node->command_ok(
		[ 'pg_dump', '-F', $fmt, '-f', $file, '-d', $node->connstr('src') ],
		"pg_dump -F$fmt succeeds");
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	if ($fmt eq 'p')
	{
		$node->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', $file, '-d', $node->connstr($db) ],
			'plain dump restores');
	}
	else
	{
		$node->command_ok([ 'pg_restore', '-d', $node->connstr($db), $file ], 'custom dump restores');
	}
	my $after = $node->safe_psql($db,
		'SELECT md5(string_agg(id || v::text || w::text || b::text, \',\' ORDER BY id)) FROM items');
	is($after, $before, "data identical after -F$fmt restore");
	is($node->safe_psql($db, 'SELECT string_agg(id::text, \',\') FROM nearest'),
		$nn_before, "view and operators work after -F$fmt restore");
	is($node->safe_psql($db, q{SELECT format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = 'items'::regclass AND attname = 'v'}), 'vector(3)', "typmod kept after -F$fmt restore");
}

# COPY BINARY out of one database and into another keeps every bit
$node->safe_psql('src', "COPY items TO '$tmp/items.bin' WITH (FORMAT binary)");
$node->safe_psql('restored_p', "TRUNCATE items; COPY items FROM '$tmp/items.bin' WITH (FORMAT binary)");
is($node->safe_psql('restored_p',
	'SELECT md5(string_agg(id || v::text || w::text || b::text, \',\' ORDER BY id)) FROM items'),
	$before, 'COPY BINARY round trip');

# the send format is pgvector's: int16 dim, int16 unused, float4 big-endian
is($node->safe_psql('src', q{SELECT encode(vector_send('[1,-2]'), 'hex')}),
	'000200003f800000c0000000', 'binary send layout matches pgvector');

# ALTER EXTENSION UPDATE to the current version is accepted
my ($ret, $out, $err) = $node->psql('src', 'ALTER EXTENSION vectron UPDATE');
is($ret, 0, 'ALTER EXTENSION vectron UPDATE succeeds');
like($err, qr/already installed/, 'update reports the version is current');
is($node->safe_psql('src', q{SELECT extversion FROM pg_extension WHERE extname = 'vectron'}),
	'1.0', 'extension version is 1.0');

# the extension loads without shared_preload_libraries, in a fresh backend
is($node->safe_psql('src', q{SHOW shared_preload_libraries}), '', 'not preloaded');
is($node->safe_psql('src', q{SELECT '[1,2,3]'::vector <-> '[1,2,4]'}), '1', 'works in a new backend');

$node->stop;
done_testing();
