/*
 * vdata.c
 *	  The shared data tool: exports Fashion-MNIST and synthetic vectors in
 *	  the formats PostgreSQL loads, computes exact k-nearest-neighbour ground
 *	  truth (cached), and scores approximate results against it.
 *
 * Tests, the demo and the benchmarks all call this one program, so that
 * they agree on what "the data" and "the right answer" are.
 *
 * Data sources ("specs") name a set of vectors, each with an id and a label:
 *
 *   fmnist:SET[:OFFSET[:LIMIT]]   Zalando's Fashion-MNIST idx files (train or
 *                                 test), 784 dimensions, pixel values 0..255;
 *                                 id = index within the set, label = class
 *   synth:n=N,dim=D,clusters=C,seed=S[,spread=F][,latent=L][,queries=1]
 *                                 clustered Gaussian data; id = index,
 *                                 label = cluster.  queries=1 draws from the
 *                                 same clusters with another random stream.
 *                                 latent=L puts each cluster near its own
 *                                 L-dimensional subspace, as real embeddings
 *                                 are; 0 (default) is isotropic.
 *   file:PATH                     one vector literal per line ("[1,2,3]");
 *                                 anything before the '[' is ignored, so
 *                                 csv output reads back; id = line index
 *
 * Synthetic point i depends only on (seed, dim, clusters, spread, latent,
 * i), so a
 * smaller n is a prefix of a larger one.  Its coordinates are rounded to
 * three decimals, so that the text, csv and binary exports load exactly the
 * same float4 values.
 *
 * Ground truth is brute force with the SIMD kernels of src/distance.c over
 * all threads: each query keeps its best 2k+16 candidates by the float
 * kernels, which are then re-scored in double precision and ordered by
 * (distance, id).  The result is cached under a hash of the data and the
 * parameters.  Hamming and Jaccard binarise each vector first (element > 0
 * is a one bit), as SQL binary_quantize does.
 */
#include "distance.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define CACHE_DEFAULT_DIR "/var/tmp/vectron-data-cache"
#define GT_FORMAT_TAG "vdata-groundtruth-v1"

/* A set of vectors, with ids and labels, all in memory. */
typedef struct Dataset
{
	int64_t		n;				/* number of vectors */
	int			dim;			/* dimensions of each */
	float	   *v;				/* n * dim floats, row-major */
	int32_t    *labels;			/* n labels (class, cluster or 0) */
	int64_t		id_base;		/* id of vector 0 (the offset in its set) */
} Dataset;

typedef enum Metric
{
	METRIC_L2,
	METRIC_IP,
	METRIC_COSINE,
	METRIC_L1,
	METRIC_HAMMING,
	METRIC_JACCARD
} Metric;

static const char *const metric_names[] = {
	"l2", "ip", "cosine", "l1", "hamming", "jaccard"
};

typedef enum Format
{
	FORMAT_TEXT,
	FORMAT_CSV,
	FORMAT_COPYBIN
} Format;

static const char *progname = "vdata";

/* Print an error message prefixed with the program name and exit 1. */
static void
die(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* malloc that dies with a clear message instead of returning NULL. */
static void *
xmalloc(size_t size)
{
	void	   *p = malloc(size ? size : 1);

	if (p == NULL)
		die("out of memory allocating %zu bytes", size);
	return p;
}

static void *
xcalloc(size_t n, size_t size)
{
	void	   *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		die("out of memory allocating %zu x %zu bytes", n, size);
	return p;
}

/* Parse a non-negative decimal integer option value, or die naming it. */
static int64_t
parse_count(const char *what, const char *s)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0)
		die("invalid %s \"%s\": expected a non-negative integer", what, s);
	return (int64_t) v;
}

/* ------------------------------------------------------------------------
 * Random numbers: splitmix64 to seed, xoshiro256** to draw.
 * ------------------------------------------------------------------------ */

typedef struct Rng
{
	uint64_t	s[4];
	double		spare;			/* second Box-Muller value */
	bool		has_spare;
} Rng;

static uint64_t
splitmix64(uint64_t *state)
{
	uint64_t	z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Seed a generator from a seed, a stream number and an index. */
static void
rng_init(Rng *r, uint64_t seed, uint64_t stream, uint64_t index)
{
	uint64_t	st = seed;
	uint64_t	mix;

	mix = splitmix64(&st) ^ (stream * 0xd1b54a32d192ed03ULL);
	st = mix;
	mix = splitmix64(&st) ^ (index * 0x8cb92ba72f3d8dd7ULL);
	st = mix;
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&st);
	r->has_spare = false;
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
rng_next(Rng *r)
{
	uint64_t   *s = r->s;
	uint64_t	result = rotl(s[1] * 5, 7) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Uniform double in [0, 1). */
static double
rng_uniform(Rng *r)
{
	return (double) (rng_next(r) >> 11) * 0x1.0p-53;
}

/* Standard normal deviate by the Box-Muller transform. */
static double
rng_gauss(Rng *r)
{
	double		u1,
				u2,
				rad;

	if (r->has_spare)
	{
		r->has_spare = false;
		return r->spare;
	}
	do
		u1 = rng_uniform(r);
	while (u1 <= 0.0);
	u2 = rng_uniform(r);
	rad = sqrt(-2.0 * log(u1));
	r->spare = rad * sin(2.0 * M_PI * u2);
	r->has_spare = true;
	return rad * cos(2.0 * M_PI * u2);
}

/* ------------------------------------------------------------------------
 * Fashion-MNIST (gzipped idx files)
 * ------------------------------------------------------------------------ */

/* Read exactly len bytes from a gz stream or die naming the file. */
static void
gz_read_exact(gzFile gz, const char *path, void *buf, size_t len)
{
	size_t		done = 0;

	while (done < len)
	{
		unsigned	chunk = (len - done > (1u << 30)) ? (1u << 30) : (unsigned) (len - done);
		int			got = gzread(gz, (char *) buf + done, chunk);

		if (got < 0)
		{
			int			errnum;
			const char *msg = gzerror(gz, &errnum);

			die("%s: read error: %s", path, msg);
		}
		if (got == 0)
			die("%s: file is truncated (expected %zu more bytes)", path, len - done);
		done += (size_t) got;
	}
}

static uint32_t
be32(const unsigned char *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
		((uint32_t) p[2] << 8) | (uint32_t) p[3];
}

/*
 * Open an idx file, check its magic number (0x0803 for images, 0x0801 for
 * labels) and read its dimension sizes into dims.  Returns the open stream.
 */
static gzFile
idx_open(const char *path, int ndims, uint32_t *dims)
{
	gzFile		gz;
	unsigned char hdr[4];
	uint32_t	magic,
				expect = 0x0800u | (uint32_t) ndims;

	gz = gzopen(path, "rb");
	if (gz == NULL)
		die("cannot open %s: %s%s", path, strerror(errno ? errno : ENOENT),
			errno == ENOENT ? " (install the Debian package dataset-fashion-mnist, or pass --dir)" : "");
	gzbuffer(gz, 1 << 20);
	gz_read_exact(gz, path, hdr, 4);
	magic = be32(hdr);
	if (magic != expect)
		die("%s: bad magic number 0x%08x (expected 0x%08x: an idx file of unsigned bytes with %d dimensions)",
			path, magic, expect, ndims);
	for (int i = 0; i < ndims; i++)
	{
		gz_read_exact(gz, path, hdr, 4);
		dims[i] = be32(hdr);
	}
	return gz;
}

/* Skip len bytes of a gz stream. */
static void
gz_skip(gzFile gz, const char *path, size_t len)
{
	unsigned char buf[65536];

	while (len > 0)
	{
		size_t		chunk = len > sizeof(buf) ? sizeof(buf) : len;

		gz_read_exact(gz, path, buf, chunk);
		len -= chunk;
	}
}

/*
 * Load images [offset, offset+limit) of the train or test set with their
 * labels.  limit 0 means to the end of the set.
 */
static void
load_fmnist(Dataset *ds, const char *dir, const char *set, int64_t offset, int64_t limit)
{
	char		ipath[4096],
				lpath[4096];
	const char *prefix;
	uint32_t	idims[3],
				ldims[1];
	gzFile		gi,
				gl;
	int64_t		n,
				dim;
	unsigned char *buf;

	if (strcmp(set, "train") == 0)
		prefix = "train";
	else if (strcmp(set, "test") == 0 || strcmp(set, "t10k") == 0)
		prefix = "t10k";
	else
		die("unknown Fashion-MNIST set \"%s\": expected train or test", set);

	snprintf(ipath, sizeof(ipath), "%s/%s-images-idx3-ubyte.gz", dir, prefix);
	snprintf(lpath, sizeof(lpath), "%s/%s-labels-idx1-ubyte.gz", dir, prefix);

	gi = idx_open(ipath, 3, idims);
	gl = idx_open(lpath, 1, ldims);
	if (idims[0] != ldims[0])
		die("%s has %u images but %s has %u labels", ipath, idims[0], lpath, ldims[0]);
	if (idims[1] == 0 || idims[2] == 0 || (uint64_t) idims[1] * idims[2] > 16000)
		die("%s: implausible image size %ux%u", ipath, idims[1], idims[2]);
	dim = (int64_t) idims[1] * idims[2];
	if (offset > (int64_t) idims[0])
		die("offset %lld is beyond the %u images of the %s set",
			(long long) offset, idims[0], set);
	n = (int64_t) idims[0] - offset;
	if (limit > 0 && limit < n)
		n = limit;

	ds->n = n;
	ds->dim = (int) dim;
	ds->id_base = offset;
	ds->v = xmalloc((size_t) n * dim * sizeof(float));
	ds->labels = xmalloc((size_t) (n ? n : 1) * sizeof(int32_t));

	gz_skip(gi, ipath, (size_t) offset * dim);
	gz_skip(gl, lpath, (size_t) offset);

	buf = xmalloc((size_t) dim * 4096);
	for (int64_t done = 0; done < n;)
	{
		int64_t		chunk = n - done > 4096 ? 4096 : n - done;

		gz_read_exact(gi, ipath, buf, (size_t) chunk * dim);
		for (int64_t i = 0; i < chunk * dim; i++)
			ds->v[done * dim + i] = (float) buf[i];
		done += chunk;
	}
	for (int64_t done = 0; done < n;)
	{
		int64_t		chunk = n - done > 4096 ? 4096 : n - done;

		gz_read_exact(gl, lpath, buf, (size_t) chunk);
		for (int64_t i = 0; i < chunk; i++)
		{
			if (buf[i] > 9)
				die("%s: label %d at index %lld is not a class 0..9",
					lpath, buf[i], (long long) (offset + done + i));
			ds->labels[done + i] = buf[i];
		}
		done += chunk;
	}
	free(buf);
	gzclose(gi);
	gzclose(gl);
}

/* ------------------------------------------------------------------------
 * Synthetic clustered data
 * ------------------------------------------------------------------------ */

typedef struct SynthParams
{
	int64_t		n;
	int			dim;
	int			clusters;
	uint64_t	seed;
	double		spread;			/* mean within-cluster standard deviation */
	int			latent;			/* intrinsic dimensions per cluster, 0 = all */
	bool		queries;		/* draw from the query stream */
} SynthParams;

#define STREAM_CENTERS 1
#define STREAM_BASE 2
#define STREAM_QUERIES 3
#define STREAM_BASES 4

/* Round to three decimals, so text and binary forms load the same float. */
static inline float
round3(double x)
{
	return (float) (nearbyint(x * 1000.0) / 1000.0);
}

/*
 * Generate clustered data: cluster centres are N(0,1) per coordinate, each
 * cluster has its own standard deviation in [0.5, 1.5] x spread, and a point
 * picks its cluster uniformly.  Isotropic by default; with latent = L a
 * point is centre + sigma * (B z + 0.1 e), where B is the cluster's own
 * random dim x L matrix with N(0, 1/L) entries (so each coordinate keeps
 * variance about sigma^2), z ~ N(0, I_L) and e ~ N(0, I_dim).  Point i uses
 * its own generator, seeded from (seed, stream, i), so any n gives a prefix
 * of the same sequence.
 */
static void
gen_synth(Dataset *ds, const SynthParams *p)
{
	float	   *centers;
	double	   *sigma;
	float	   *bases = NULL;
	double	   *z = NULL;
	Rng			r;
	int			L = p->latent;

	if (p->n <= 0 || p->dim <= 0 || p->clusters <= 0)
		die("synthetic data needs n, dim and clusters all > 0");
	if (p->dim > 16000)
		die("dim %d exceeds the 16000 dimensions a vector can have", p->dim);
	if (L < 0 || L > p->dim)
		die("latent must be between 0 and dim (%d)", p->dim);

	centers = xmalloc((size_t) p->clusters * p->dim * sizeof(float));
	sigma = xmalloc((size_t) p->clusters * sizeof(double));
	rng_init(&r, p->seed, STREAM_CENTERS, 0);
	for (int c = 0; c < p->clusters; c++)
	{
		for (int j = 0; j < p->dim; j++)
			centers[(size_t) c * p->dim + j] = (float) rng_gauss(&r);
		sigma[c] = p->spread * (0.5 + rng_uniform(&r));
	}
	if (L > 0)
	{
		/* bases[c][j][l]: row j of cluster c's dim x L matrix */
		bases = xmalloc((size_t) p->clusters * p->dim * L * sizeof(float));
		z = xmalloc((size_t) L * sizeof(double));
		rng_init(&r, p->seed, STREAM_BASES, (uint64_t) L);
		for (size_t i = 0; i < (size_t) p->clusters * p->dim * L; i++)
			bases[i] = (float) (rng_gauss(&r) / sqrt((double) L));
	}

	ds->n = p->n;
	ds->dim = p->dim;
	ds->id_base = 0;
	ds->v = xmalloc((size_t) p->n * p->dim * sizeof(float));
	ds->labels = xmalloc((size_t) p->n * sizeof(int32_t));
	for (int64_t i = 0; i < p->n; i++)
	{
		int			c;
		const float *ctr;
		float	   *out = ds->v + (size_t) i * p->dim;

		rng_init(&r, p->seed, p->queries ? STREAM_QUERIES : STREAM_BASE, (uint64_t) i);
		c = (int) (rng_next(&r) % (uint64_t) p->clusters);
		ctr = centers + (size_t) c * p->dim;
		if (L == 0)
		{
			for (int j = 0; j < p->dim; j++)
				out[j] = round3(ctr[j] + sigma[c] * rng_gauss(&r));
		}
		else
		{
			const float *B = bases + (size_t) c * p->dim * L;

			for (int l = 0; l < L; l++)
				z[l] = rng_gauss(&r);
			for (int j = 0; j < p->dim; j++)
			{
				double		x = 0.1 * rng_gauss(&r);

				for (int l = 0; l < L; l++)
					x += (double) B[(size_t) j * L + l] * z[l];
				out[j] = round3(ctr[j] + sigma[c] * x);
			}
		}
		ds->labels[i] = c;
	}
	free(centers);
	free(sigma);
	free(bases);
	free(z);
}

/* ------------------------------------------------------------------------
 * Text files of vector literals
 * ------------------------------------------------------------------------ */

/*
 * Load a file with one vector literal per line.  Anything before the first
 * '[' on a line is ignored (so csv output reads back), blank lines skipped.
 */
static void
load_text_file(Dataset *ds, const char *path)
{
	FILE	   *f;
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;
	int64_t		n = 0,
				alloc = 1024,
				lineno = 0;
	int			dim = -1;
	float	   *row = NULL;

	if (strcmp(path, "-") == 0)
		f = stdin;
	else if ((f = fopen(path, "r")) == NULL)
		die("cannot open %s: %s", path, strerror(errno));

	ds->v = NULL;
	ds->labels = NULL;
	while ((len = getline(&line, &cap, f)) != -1)
	{
		char	   *p = strchr(line, '['),
				   *end;
		int			d = 0;

		lineno++;
		if (p == NULL)
		{
			for (char *q = line; *q; q++)
				if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r')
					die("%s:%lld: no vector literal (expected \"[x,y,...]\")", path, (long long) lineno);
			continue;
		}
		p++;
		if (row == NULL)
			row = xmalloc(16001 * sizeof(float));
		for (;;)
		{
			float		x;

			while (*p == ' ' || *p == '\t')
				p++;
			errno = 0;
			x = strtof(p, &end);
			if (end == p)
				die("%s:%lld: malformed vector literal near \"%.20s\"", path, (long long) lineno, p);
			if (!isfinite(x))
				die("%s:%lld: element %d is not finite", path, (long long) lineno, d + 1);
			if (d >= 16000)
				die("%s:%lld: more than 16000 dimensions", path, (long long) lineno);
			row[d++] = x;
			p = end;
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p == ',')
			{
				p++;
				continue;
			}
			if (*p == ']')
				break;
			die("%s:%lld: malformed vector literal near \"%.20s\"", path, (long long) lineno, p);
		}
		if (dim < 0)
		{
			dim = d;
			ds->v = xmalloc((size_t) alloc * dim * sizeof(float));
		}
		else if (d != dim)
			die("%s:%lld: vector has %d dimensions, earlier lines have %d", path, (long long) lineno, d, dim);
		if (n == alloc)
		{
			alloc *= 2;
			ds->v = realloc(ds->v, (size_t) alloc * dim * sizeof(float));
			if (ds->v == NULL)
				die("out of memory reading %s", path);
		}
		memcpy(ds->v + (size_t) n * dim, row, (size_t) dim * sizeof(float));
		n++;
	}
	if (ferror(f))
		die("error reading %s: %s", path, strerror(errno));
	if (f != stdin)
		fclose(f);
	free(line);
	free(row);
	if (n == 0)
		die("%s: no vectors", path);
	ds->n = n;
	ds->dim = dim;
	ds->id_base = 0;
	ds->labels = xcalloc((size_t) n, sizeof(int32_t));
}

/* ------------------------------------------------------------------------
 * Specs
 * ------------------------------------------------------------------------ */

/* Parse "key=value,key=value" synthetic parameters. */
static void
parse_synth_params(SynthParams *p, const char *spec, const char *params)
{
	char	   *copy = strdup(params),
			   *save = NULL;

	memset(p, 0, sizeof(*p));
	p->clusters = 10;
	p->seed = 42;
	p->spread = 0.3;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		char	   *eq = strchr(tok, '=');
		const char *val;

		if (eq == NULL)
		{
			if (strcmp(tok, "queries") == 0)
			{
				p->queries = true;
				continue;
			}
			die("bad synthetic spec \"%s\": \"%s\" is not key=value", spec, tok);
		}
		*eq = '\0';
		val = eq + 1;
		if (strcmp(tok, "n") == 0)
			p->n = parse_count("n", val);
		else if (strcmp(tok, "dim") == 0)
			p->dim = (int) parse_count("dim", val);
		else if (strcmp(tok, "clusters") == 0)
			p->clusters = (int) parse_count("clusters", val);
		else if (strcmp(tok, "seed") == 0)
			p->seed = (uint64_t) parse_count("seed", val);
		else if (strcmp(tok, "spread") == 0)
		{
			char	   *end;

			p->spread = strtod(val, &end);
			if (end == val || *end || !(p->spread > 0))
				die("bad synthetic spec \"%s\": spread must be a positive number", spec);
		}
		else if (strcmp(tok, "queries") == 0)
			p->queries = parse_count("queries", val) != 0;
		else if (strcmp(tok, "latent") == 0)
			p->latent = (int) parse_count("latent", val);
		else
			die("bad synthetic spec \"%s\": unknown key \"%s\" (known: n, dim, clusters, seed, spread, latent, queries)",
				spec, tok);
	}
	free(copy);
	if (p->n <= 0 || p->dim <= 0)
		die("bad synthetic spec \"%s\": n and dim are required", spec);
}

/* Load the data a spec names (see the file header); fmnist_dir may be NULL. */
static void
load_spec(Dataset *ds, const char *spec, const char *fmnist_dir)
{
	memset(ds, 0, sizeof(*ds));
	if (strncmp(spec, "fmnist:", 7) == 0)
	{
		char	   *copy = strdup(spec + 7),
				   *set,
				   *off,
				   *lim;
		int64_t		offset = 0,
					limit = 0;

		set = copy;
		off = strchr(set, ':');
		lim = NULL;
		if (off)
		{
			*off++ = '\0';
			lim = strchr(off, ':');
			if (lim)
				*lim++ = '\0';
			if (*off)
				offset = parse_count("offset in spec", off);
			if (lim && *lim)
				limit = parse_count("limit in spec", lim);
		}
		load_fmnist(ds, fmnist_dir ? fmnist_dir : FMNIST_DEFAULT_DIR, set, offset, limit);
		free(copy);
	}
	else if (strncmp(spec, "synth:", 6) == 0)
	{
		SynthParams p;

		parse_synth_params(&p, spec, spec + 6);
		gen_synth(ds, &p);
	}
	else if (strncmp(spec, "file:", 5) == 0)
		load_text_file(ds, spec + 5);
	else
		die("unknown data spec \"%s\": expected fmnist:SET[:OFFSET[:LIMIT]], synth:n=..,dim=..,clusters=..,seed=.. or file:PATH",
			spec);
}

/* ------------------------------------------------------------------------
 * Export
 * ------------------------------------------------------------------------ */

/* Append the shortest text that reads back as exactly x. */
static int
format_float(char *buf, size_t size, float x)
{
	if (x == nearbyintf(x) && fabsf(x) < 1e7f && size >= 12)
	{
		char		tmp[12];
		int			v = (int) x,
					len = 0,
					i = 0;
		unsigned	u = v < 0 ? (unsigned) -v : (unsigned) v;

		do
			tmp[len++] = (char) ('0' + u % 10);
		while ((u /= 10) > 0);
		if (v < 0 || signbit(x))
			buf[i++] = '-';
		while (len > 0)
			buf[i++] = tmp[--len];
		buf[i] = '\0';
		return i;
	}
	for (int prec = 1; prec < 9; prec++)
	{
		int			len = snprintf(buf, size, "%.*g", prec, (double) x);

		if (strtof(buf, NULL) == x)
			return len;
	}
	return snprintf(buf, size, "%.9g", (double) x);
}

/* Write one vector literal "[a,b,...]" to f. */
static void
write_literal(FILE *f, const float *v, int dim)
{
	char		buf[64];

	putc('[', f);
	for (int j = 0; j < dim; j++)
	{
		if (j)
			putc(',', f);
		format_float(buf, sizeof(buf), v[j]);
		fputs(buf, f);
	}
	putc(']', f);
}

static void
put_be16(FILE *f, uint16_t x)
{
	putc((x >> 8) & 0xff, f);
	putc(x & 0xff, f);
}

static void
put_be32(FILE *f, uint32_t x)
{
	putc((x >> 24) & 0xff, f);
	putc((x >> 16) & 0xff, f);
	putc((x >> 8) & 0xff, f);
	putc(x & 0xff, f);
}

/* Store x big-endian at p; return the byte after it. */
static unsigned char *
be16(unsigned char *p, uint16_t x)
{
	p[0] = (unsigned char) (x >> 8);
	p[1] = (unsigned char) x;
	return p + 2;
}

static unsigned char *
be32w(unsigned char *p, uint32_t x)
{
	p[0] = (unsigned char) (x >> 24);
	p[1] = (unsigned char) (x >> 16);
	p[2] = (unsigned char) (x >> 8);
	p[3] = (unsigned char) x;
	return p + 4;
}

/*
 * Write a dataset to f.  text: one literal per line (prefixed by
 * "label<TAB>" with labels); csv: "id<TAB>label<TAB>literal"; copybin: a
 * PostgreSQL binary COPY stream of (id int4, label int4, v vector).
 */
static void
write_dataset(FILE *f, const Dataset *ds, Format fmt, bool labels)
{
	static const char sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', '\0'};
	unsigned char *rowbuf = xmalloc(32 + 4 * (size_t) ds->dim);

	if (fmt == FORMAT_COPYBIN)
	{
		fwrite(sig, 1, sizeof(sig), f);
		put_be32(f, 0);			/* flags */
		put_be32(f, 0);			/* header extension length */
	}
	for (int64_t i = 0; i < ds->n; i++)
	{
		const float *v = ds->v + (size_t) i * ds->dim;
		int64_t		id = ds->id_base + i;

		switch (fmt)
		{
			case FORMAT_TEXT:
				if (labels)
					fprintf(f, "%d\t", ds->labels[i]);
				write_literal(f, v, ds->dim);
				putc('\n', f);
				break;
			case FORMAT_CSV:
				fprintf(f, "%lld\t%d\t", (long long) id, ds->labels[i]);
				write_literal(f, v, ds->dim);
				putc('\n', f);
				break;
			case FORMAT_COPYBIN:
				if (id > INT32_MAX)
					die("id %lld does not fit an int4 column", (long long) id);
				{
					unsigned char *p = rowbuf;

					p = be16(p, 3);
					p = be32w(p, 4);
					p = be32w(p, (uint32_t) id);
					p = be32w(p, 4);
					p = be32w(p, (uint32_t) ds->labels[i]);
					p = be32w(p, 4 + 4 * (uint32_t) ds->dim);
					p = be16(p, (uint16_t) ds->dim);
					p = be16(p, 0);
					for (int j = 0; j < ds->dim; j++)
					{
						uint32_t	bits;

						memcpy(&bits, &v[j], 4);
						p = be32w(p, bits);
					}
					fwrite(rowbuf, 1, (size_t) (p - rowbuf), f);
				}
				break;
		}
	}
	if (fmt == FORMAT_COPYBIN)
		put_be16(f, 0xffff);
	free(rowbuf);
	if (fflush(f) != 0 || ferror(f))
		die("error writing output: %s", strerror(errno));
}

static Format
parse_format(const char *s)
{
	if (strcmp(s, "text") == 0)
		return FORMAT_TEXT;
	if (strcmp(s, "csv") == 0)
		return FORMAT_CSV;
	if (strcmp(s, "copybin") == 0)
		return FORMAT_COPYBIN;
	die("unknown format \"%s\": expected text, csv or copybin", s);
	return FORMAT_TEXT;
}

/* Keep only rows [offset, offset+limit) of a loaded dataset. */
static void
slice_dataset(Dataset *ds, int64_t offset, int64_t limit)
{
	if (offset > ds->n)
		die("offset %lld is beyond the %lld vectors", (long long) offset, (long long) ds->n);
	if (offset > 0)
	{
		memmove(ds->v, ds->v + (size_t) offset * ds->dim,
				(size_t) (ds->n - offset) * ds->dim * sizeof(float));
		memmove(ds->labels, ds->labels + offset, (size_t) (ds->n - offset) * sizeof(int32_t));
		ds->n -= offset;
		ds->id_base += offset;
	}
	if (limit > 0 && limit < ds->n)
		ds->n = limit;
}

static void
usage(FILE *f)
{
	fprintf(f,
			"Usage:\n"
			"  vdata fmnist-export --set train|test [--offset N] [--limit N]\n"
			"                      [--format text|csv|copybin] [--labels] [--dir DIR]\n"
			"  vdata synth --n N --dim D [--clusters C] [--seed S] [--spread F] [--latent L]\n"
			"              [--queries]\n"
			"              [--offset N] [--limit N] [--format text|csv|copybin] [--labels]\n"
			"  vdata export --spec SPEC [--offset N] [--limit N] [--format ...] [--labels]\n"
			"  vdata groundtruth --base SPEC --queries SPEC --k K\n"
			"              [--metric l2|ip|cosine|l1|hamming|jaccard] [--cache DIR]\n"
			"              [--no-cache] [--threads N] [--out FILE] [--dir DIR]\n"
			"  vdata recall --truth FILE --results FILE [--k 10] [--per-query]\n"
			"              [--base SPEC --queries SPEC --metric M]\n"
			"\n"
			"SPEC is fmnist:train|test[:OFFSET[:LIMIT]],\n"
			"        synth:n=N,dim=D,clusters=C,seed=S[,spread=F][,latent=L][,queries=1],\n"
			"        or\n"
			"        file:PATH (one vector literal per line).\n"
			"text: \"[x,...]\" per line (\"label<TAB>[x,...]\" with --labels);\n"
			"csv: \"id<TAB>label<TAB>[x,...]\" for COPY t(id,label,v) FROM STDIN;\n"
			"copybin: binary COPY of (id int4, label int4, v vector) with FORMAT binary.\n"
			"groundtruth prints \"qid<TAB>id:dist,id:dist,...\" per query, ordered by\n"
			"distance then id; ids are the ids the exports write.\n");
}

/* Options common to the export commands. */
typedef struct ExportOpts
{
	int64_t		offset;
	int64_t		limit;
	Format		format;
	bool		labels;
} ExportOpts;

/* vdata fmnist-export | synth | export: load the data and write it out. */
static int
cmd_export(const char *cmd, int argc, char **argv)
{
	enum
	{
		O_SET = 1000, O_OFFSET, O_LIMIT, O_FORMAT, O_LABELS, O_DIR, O_N, O_DIM,
		O_CLUSTERS, O_SEED, O_SPREAD, O_QUERIES, O_SPEC, O_HELP, O_LATENT
	};
	static const struct option opts[] = {
		{"set", required_argument, NULL, O_SET},
		{"offset", required_argument, NULL, O_OFFSET},
		{"limit", required_argument, NULL, O_LIMIT},
		{"format", required_argument, NULL, O_FORMAT},
		{"labels", no_argument, NULL, O_LABELS},
		{"dir", required_argument, NULL, O_DIR},
		{"n", required_argument, NULL, O_N},
		{"dim", required_argument, NULL, O_DIM},
		{"clusters", required_argument, NULL, O_CLUSTERS},
		{"seed", required_argument, NULL, O_SEED},
		{"spread", required_argument, NULL, O_SPREAD},
		{"latent", required_argument, NULL, O_LATENT},
		{"queries", no_argument, NULL, O_QUERIES},
		{"spec", required_argument, NULL, O_SPEC},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0}
	};
	ExportOpts eo = {0, 0, FORMAT_TEXT, false};
	const char *set = NULL,
			   *dir = NULL,
			   *spec = NULL;
	SynthParams sp;
	Dataset		ds;
	int			c;
	bool		is_fmnist = strcmp(cmd, "fmnist-export") == 0,
				is_synth = strcmp(cmd, "synth") == 0;

	memset(&sp, 0, sizeof(sp));
	sp.clusters = 10;
	sp.seed = 42;
	sp.spread = 0.3;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
	{
		switch (c)
		{
			case O_SET: set = optarg; break;
			case O_OFFSET: eo.offset = parse_count("--offset", optarg); break;
			case O_LIMIT: eo.limit = parse_count("--limit", optarg); break;
			case O_FORMAT: eo.format = parse_format(optarg); break;
			case O_LABELS: eo.labels = true; break;
			case O_DIR: dir = optarg; break;
			case O_N: sp.n = parse_count("--n", optarg); break;
			case O_DIM: sp.dim = (int) parse_count("--dim", optarg); break;
			case O_CLUSTERS: sp.clusters = (int) parse_count("--clusters", optarg); break;
			case O_SEED: sp.seed = (uint64_t) parse_count("--seed", optarg); break;
			case O_SPREAD:
				sp.spread = atof(optarg);
				if (!(sp.spread > 0))
					die("--spread must be a positive number");
				break;
			case O_QUERIES: sp.queries = true; break;
			case O_LATENT: sp.latent = (int) parse_count("--latent", optarg); break;
			case O_SPEC: spec = optarg; break;
			case O_HELP: usage(stdout); return 0;
			default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		die("unexpected argument \"%s\"", argv[optind]);

	if (is_fmnist)
	{
		if (set == NULL)
			die("fmnist-export needs --set train|test");
		load_fmnist(&ds, dir ? dir : FMNIST_DEFAULT_DIR, set, eo.offset, eo.limit);
	}
	else if (is_synth)
	{
		if (sp.n <= 0 || sp.dim <= 0)
			die("synth needs --n and --dim");
		gen_synth(&ds, &sp);
		slice_dataset(&ds, eo.offset, eo.limit);
	}
	else
	{
		if (spec == NULL)
			die("export needs --spec SPEC");
		load_spec(&ds, spec, dir);
		slice_dataset(&ds, eo.offset, eo.limit);
	}
	write_dataset(stdout, &ds, eo.format, eo.labels);
	return 0;
}

/* ------------------------------------------------------------------------
 * Ground truth
 * ------------------------------------------------------------------------ */

/* One candidate neighbour: distance and index into the base set. */
typedef struct Cand
{
	double		d;
	int64_t		idx;
} Cand;

/* Order candidates by distance, then index: true when a comes first. */
static inline bool
cand_before(const Cand *a, const Cand *b)
{
	return a->d < b->d || (a->d == b->d && a->idx < b->idx);
}

static int
cand_cmp(const void *pa, const void *pb)
{
	const Cand *a = pa,
			   *b = pb;

	if (cand_before(a, b))
		return -1;
	if (cand_before(b, a))
		return 1;
	return 0;
}

/* Sift the root of a max-heap (worst candidate on top) down. */
static void
heap_sift_down(Cand *h, int size, int i)
{
	for (;;)
	{
		int			l = 2 * i + 1,
					r = l + 1,
					m = i;
		Cand		t;

		if (l < size && cand_before(&h[m], &h[l]))
			m = l;
		if (r < size && cand_before(&h[m], &h[r]))
			m = r;
		if (m == i)
			return;
		t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

/* Offer c to a bounded max-heap of capacity cap holding *size entries. */
static inline void
heap_offer(Cand *h, int *size, int cap, Cand c)
{
	if (*size < cap)
	{
		int			i = (*size)++;

		h[i] = c;
		while (i > 0)
		{
			int			p = (i - 1) / 2;
			Cand		t;

			if (!cand_before(&h[p], &h[i]))
				break;
			t = h[p];
			h[p] = h[i];
			h[i] = t;
			i = p;
		}
	}
	else if (cand_before(&c, &h[0]))
	{
		h[0] = c;
		heap_sift_down(h, *size, 0);
	}
}

/* Everything the worker threads share. */
typedef struct GtJob
{
	const Dataset *base;
	const Dataset *queries;
	Metric		metric;
	int			k;
	int			cap;			/* candidates kept before re-scoring */
	uint8_t    *base_bits;		/* binarised base (hamming, jaccard) */
	uint8_t    *query_bits;
	size_t		nbytes;			/* bytes per binarised vector */
	float	   *base_norms;		/* squared norms (cosine) */
	Cand	   *out;			/* queries->n * k results */
	int		   *out_count;		/* results per query (< k if base is small) */
	int64_t		next;			/* next query to take */
	pthread_mutex_t lock;
} GtJob;

/* Pack element > 0 as one bit, most significant bit first, like bit(n). */
static void
binarise(const float *v, int dim, uint8_t *out, size_t nbytes)
{
	memset(out, 0, nbytes);
	for (int j = 0; j < dim; j++)
		if (v[j] > 0)
			out[j >> 3] |= (uint8_t) (0x80 >> (j & 7));
}

/* Exact distance in double precision, as the SQL operators define it. */
static double
exact_distance(Metric m, const float *a, const float *b, int dim)
{
	double		s = 0,
				na = 0,
				nb = 0;

	switch (m)
	{
		case METRIC_L2:
			for (int j = 0; j < dim; j++)
			{
				double		d = (double) a[j] - b[j];

				s += d * d;
			}
			return sqrt(s);
		case METRIC_IP:
			for (int j = 0; j < dim; j++)
				s += (double) a[j] * b[j];
			return -s;
		case METRIC_COSINE:
			for (int j = 0; j < dim; j++)
			{
				s += (double) a[j] * b[j];
				na += (double) a[j] * a[j];
				nb += (double) b[j] * b[j];
			}
			if (na == 0 || nb == 0)
				return NAN;
			s = s / sqrt(na * nb);
			if (s > 1)
				s = 1;
			if (s < -1)
				s = -1;
			return 1 - s;
		case METRIC_L1:
			for (int j = 0; j < dim; j++)
				s += fabs((double) a[j] - b[j]);
			return s;
		default:
			break;
	}
	return NAN;
}

/* Hamming or Jaccard distance of two binarised vectors (exact). */
static double
bit_distance(Metric m, const uint8_t *a, const uint8_t *b, size_t nbytes)
{
	uint64_t	and_count,
				or_count;

	if (m == METRIC_HAMMING)
		return (double) distance_kernels->hamming(a, b, nbytes);
	distance_kernels->jaccard_parts(a, b, nbytes, &and_count, &or_count);
	if (or_count == 0)
		return 0.0;
	return 1.0 - (double) and_count / (double) or_count;
}

#define GT_QUERY_BLOCK 32			/* queries a worker takes at once */
#define GT_BASE_BLOCK_BYTES (256 * 1024)	/* base vectors kept hot in cache */

/* Float-kernel distance used to select candidates (monotone in the exact one). */
static inline double
fast_distance(const GtJob *job, const float *qv, float qnorm, int64_t i)
{
	const float *bv = job->base->v + (size_t) i * job->base->dim;
	int			dim = job->base->dim;

	switch (job->metric)
	{
		case METRIC_L2:
			return distance_kernels->l2_squared(qv, bv, dim);
		case METRIC_IP:
			return -distance_kernels->inner_product(qv, bv, dim);
		case METRIC_COSINE:
			/* zero vectors give NaN and are never neighbours */
			if (job->base_norms[i] == 0 || qnorm == 0)
				return NAN;
			return 1.0 - distance_kernels->inner_product(qv, bv, dim) /
				sqrt((double) qnorm * job->base_norms[i]);
		case METRIC_L1:
			return distance_kernels->l1(qv, bv, dim);
		default:
			break;
	}
	return NAN;
}

/*
 * Worker: take blocks of queries and compute their exact top k.  The base
 * is walked in cache-sized blocks, each compared with every query of the
 * block, so that memory bandwidth does not bound the kernels.
 */
static void *
gt_worker(void *arg)
{
	GtJob	   *job = arg;
	const Dataset *b = job->base;
	int			dim = b->dim;
	bool		bits = job->metric == METRIC_HAMMING || job->metric == METRIC_JACCARD;
	int64_t		bblock;
	Cand	   *heaps = xmalloc((size_t) GT_QUERY_BLOCK * job->cap * sizeof(Cand));
	int			sizes[GT_QUERY_BLOCK];
	float		qnorms[GT_QUERY_BLOCK];

	bblock = GT_BASE_BLOCK_BYTES / (bits ? (int64_t) job->nbytes : (int64_t) dim * 4);
	if (bblock < 1)
		bblock = 1;

	for (;;)
	{
		int64_t		q0,
					nq;

		pthread_mutex_lock(&job->lock);
		q0 = job->next;
		job->next += GT_QUERY_BLOCK;
		pthread_mutex_unlock(&job->lock);
		if (q0 >= job->queries->n)
			break;
		nq = job->queries->n - q0 < GT_QUERY_BLOCK ? job->queries->n - q0 : GT_QUERY_BLOCK;

		for (int j = 0; j < nq; j++)
		{
			const float *qv = job->queries->v + (size_t) (q0 + j) * dim;

			sizes[j] = 0;
			qnorms[j] = job->metric == METRIC_COSINE ? distance_kernels->inner_product(qv, qv, dim) : 0;
		}
		for (int64_t b0 = 0; b0 < b->n; b0 += bblock)
		{
			int64_t		b1 = b0 + bblock < b->n ? b0 + bblock : b->n;

			for (int j = 0; j < nq; j++)
			{
				Cand	   *heap = heaps + (size_t) j * job->cap;
				const float *qv = job->queries->v + (size_t) (q0 + j) * dim;
				const uint8_t *qb = bits ? job->query_bits + (size_t) (q0 + j) * job->nbytes : NULL;

				for (int64_t i = b0; i < b1; i++)
				{
					Cand		c;

					c.idx = i;
					if (bits)
						c.d = bit_distance(job->metric, qb, job->base_bits + (size_t) i * job->nbytes, job->nbytes);
					else
					{
						c.d = fast_distance(job, qv, qnorms[j], i);
						if (isnan(c.d))
							continue;
					}
					heap_offer(heap, &sizes[j], job->cap, c);
				}
			}
		}
		for (int j = 0; j < nq; j++)
		{
			Cand	   *heap = heaps + (size_t) j * job->cap;
			const float *qv = job->queries->v + (size_t) (q0 + j) * dim;
			int			keep;

			/* re-score the float candidates exactly (bit distances are exact) */
			if (!bits)
				for (int i = 0; i < sizes[j]; i++)
					heap[i].d = exact_distance(job->metric, qv, b->v + (size_t) heap[i].idx * dim, dim);
			qsort(heap, sizes[j], sizeof(Cand), cand_cmp);
			keep = sizes[j] < job->k ? sizes[j] : job->k;
			memcpy(job->out + (size_t) (q0 + j) * job->k, heap, (size_t) keep * sizeof(Cand));
			job->out_count[q0 + j] = keep;
		}
	}
	free(heaps);
	return NULL;
}

/* A 64-bit hash, updated 8 bytes at a time; good enough for cache keys. */
typedef struct Hash
{
	uint64_t	h;
} Hash;

static void
hash_bytes(Hash *hs, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t	h = hs->h;

	while (len >= 8)
	{
		uint64_t	w;

		memcpy(&w, p, 8);
		h = (h ^ w) * 0x9fb21c651e98df25ULL;
		h ^= h >> 29;
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
	{
		h = (h ^ *p++) * 0x100000001b3ULL;
		h ^= h >> 31;
	}
	hs->h = h;
}

static void
hash_i64(Hash *hs, int64_t x)
{
	hash_bytes(hs, &x, sizeof(x));
}

/* Hash of everything the ground truth depends on. */
static uint64_t
gt_cache_key(const Dataset *b, const Dataset *q, Metric m, int k)
{
	Hash		h1 = {0x243f6a8885a308d3ULL},
				h2 = {0x13198a2e03707344ULL};

	hash_bytes(&h1, GT_FORMAT_TAG, strlen(GT_FORMAT_TAG));
	hash_i64(&h1, m);
	hash_i64(&h1, k);
	hash_i64(&h1, b->n);
	hash_i64(&h1, b->dim);
	hash_i64(&h1, b->id_base);
	hash_bytes(&h1, b->v, (size_t) b->n * b->dim * sizeof(float));
	hash_i64(&h2, q->n);
	hash_i64(&h2, q->dim);
	hash_i64(&h2, q->id_base);
	hash_bytes(&h2, q->v, (size_t) q->n * q->dim * sizeof(float));
	return h1.h ^ (h2.h * 0xff51afd7ed558ccdULL);
}

/* Copy a file to an open stream; false when it cannot be opened. */
static bool
copy_file(const char *path, FILE *out)
{
	FILE	   *f = fopen(path, "r");
	char		buf[65536];
	size_t		got;

	if (f == NULL)
		return false;
	while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
		if (fwrite(buf, 1, got, out) != got)
			die("error writing output: %s", strerror(errno));
	fclose(f);
	return true;
}

/* Make a directory (and its parents), world-writable and sticky like /tmp. */
static void
make_cache_dir(const char *dir)
{
	char		tmp[4096];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++)
	{
		if (*p == '/')
		{
			*p = '\0';
			mkdir(tmp, 0755);
			*p = '/';
		}
	}
	if (mkdir(tmp, 01777) == 0)
		chmod(tmp, 01777);
}

static Metric
parse_metric(const char *s)
{
	for (int i = 0; i < (int) (sizeof(metric_names) / sizeof(metric_names[0])); i++)
		if (strcmp(s, metric_names[i]) == 0)
			return (Metric) i;
	die("unknown metric \"%s\": expected l2, ip, cosine, l1, hamming or jaccard", s);
	return METRIC_L2;
}

/* Print ground truth lines "qid<TAB>id:dist,..." to f. */
static void
write_truth(FILE *f, const GtJob *job)
{
	for (int64_t q = 0; q < job->queries->n; q++)
	{
		fprintf(f, "%lld\t", (long long) (job->queries->id_base + q));
		for (int i = 0; i < job->out_count[q]; i++)
		{
			const Cand *c = &job->out[(size_t) q * job->k + i];

			fprintf(f, "%s%lld:%.10g", i ? "," : "", (long long) (job->base->id_base + c->idx), c->d);
		}
		putc('\n', f);
	}
}

/* Compute exact ground truth into job->out with nthreads threads. */
static void
compute_truth(GtJob *job, int nthreads)
{
	pthread_t  *th;
	const Dataset *b = job->base,
			   *q = job->queries;

	job->cap = job->k * 2 + 16;
	job->out = xmalloc((size_t) q->n * job->k * sizeof(Cand));
	job->out_count = xcalloc((size_t) q->n, sizeof(int));
	job->next = 0;
	pthread_mutex_init(&job->lock, NULL);
	if (job->metric == METRIC_HAMMING || job->metric == METRIC_JACCARD)
	{
		job->nbytes = ((size_t) b->dim + 7) / 8;
		job->base_bits = xmalloc((size_t) b->n * job->nbytes);
		job->query_bits = xmalloc((size_t) q->n * job->nbytes);
		for (int64_t i = 0; i < b->n; i++)
			binarise(b->v + (size_t) i * b->dim, b->dim, job->base_bits + (size_t) i * job->nbytes, job->nbytes);
		for (int64_t i = 0; i < q->n; i++)
			binarise(q->v + (size_t) i * q->dim, q->dim, job->query_bits + (size_t) i * job->nbytes, job->nbytes);
	}
	if (job->metric == METRIC_COSINE)
	{
		job->base_norms = xmalloc((size_t) b->n * sizeof(float));
		for (int64_t i = 0; i < b->n; i++)
		{
			const float *v = b->v + (size_t) i * b->dim;

			job->base_norms[i] = distance_kernels->inner_product(v, v, b->dim);
		}
	}
	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > q->n)
		nthreads = (int) q->n;
	th = xmalloc((size_t) nthreads * sizeof(pthread_t));
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&th[i], NULL, gt_worker, job) != 0)
			die("cannot start a thread: %s", strerror(errno));
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	free(th);
}

/* vdata groundtruth: exact top k of each query, from the cache when there. */
static int
cmd_groundtruth(int argc, char **argv)
{
	enum
	{
		O_BASE = 1000, O_QUERIES, O_K, O_METRIC, O_CACHE, O_NOCACHE, O_THREADS,
		O_OUT, O_DIR, O_QUIET, O_HELP
	};
	static const struct option opts[] = {
		{"base", required_argument, NULL, O_BASE},
		{"queries", required_argument, NULL, O_QUERIES},
		{"k", required_argument, NULL, O_K},
		{"metric", required_argument, NULL, O_METRIC},
		{"cache", required_argument, NULL, O_CACHE},
		{"no-cache", no_argument, NULL, O_NOCACHE},
		{"threads", required_argument, NULL, O_THREADS},
		{"out", required_argument, NULL, O_OUT},
		{"dir", required_argument, NULL, O_DIR},
		{"quiet", no_argument, NULL, O_QUIET},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0}
	};
	const char *base_spec = NULL,
			   *query_spec = NULL,
			   *cache = getenv("VX_DATA_CACHE"),
			   *out_path = NULL,
			   *dir = NULL;
	bool		use_cache = true,
				quiet = false;
	int			k = 10,
				nthreads = (int) sysconf(_SC_NPROCESSORS_ONLN),
				c;
	Metric		metric = METRIC_L2;
	Dataset		base,
				queries;
	GtJob		job;
	char		cpath[4096],
				tpath[4200];
	FILE	   *out = stdout;
	uint64_t	key;

	if (cache == NULL || *cache == '\0')
		cache = CACHE_DEFAULT_DIR;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
	{
		switch (c)
		{
			case O_BASE: base_spec = optarg; break;
			case O_QUERIES: query_spec = optarg; break;
			case O_K: k = (int) parse_count("--k", optarg); break;
			case O_METRIC: metric = parse_metric(optarg); break;
			case O_CACHE: cache = optarg; break;
			case O_NOCACHE: use_cache = false; break;
			case O_THREADS: nthreads = (int) parse_count("--threads", optarg); break;
			case O_OUT: out_path = optarg; break;
			case O_DIR: dir = optarg; break;
			case O_QUIET: quiet = true; break;
			case O_HELP: usage(stdout); return 0;
			default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		die("unexpected argument \"%s\"", argv[optind]);
	if (base_spec == NULL || query_spec == NULL)
		die("groundtruth needs --base SPEC and --queries SPEC");
	if (k < 1 || k > 10000)
		die("--k must be between 1 and 10000");

	distance_select(NULL);
	load_spec(&base, base_spec, dir);
	load_spec(&queries, query_spec, dir);
	if (base.dim != queries.dim)
		die("base vectors have %d dimensions but queries have %d", base.dim, queries.dim);

	if (out_path)
	{
		out = fopen(out_path, "w");
		if (out == NULL)
			die("cannot write %s: %s", out_path, strerror(errno));
	}

	key = gt_cache_key(&base, &queries, metric, k);
	snprintf(cpath, sizeof(cpath), "%s/gt-%s-k%d-%016llx.txt", cache,
			 metric_names[metric], k, (unsigned long long) key);
	if (use_cache && copy_file(cpath, out))
	{
		if (!quiet)
			fprintf(stderr, "%s: ground truth from cache %s\n", progname, cpath);
	}
	else
	{
		memset(&job, 0, sizeof(job));
		job.base = &base;
		job.queries = &queries;
		job.metric = metric;
		job.k = k;
		compute_truth(&job, nthreads);
		write_truth(out, &job);
		if (use_cache)
		{
			FILE	   *cf;

			make_cache_dir(cache);
			snprintf(tpath, sizeof(tpath), "%s.tmp.%d", cpath, (int) getpid());
			cf = fopen(tpath, "w");
			if (cf == NULL)
				fprintf(stderr, "%s: warning: cannot write cache file %s: %s\n",
						progname, tpath, strerror(errno));
			else
			{
				write_truth(cf, &job);
				if (fclose(cf) != 0 || chmod(tpath, 0644) != 0 || rename(tpath, cpath) != 0)
				{
					fprintf(stderr, "%s: warning: cannot store cache file %s: %s\n",
							progname, cpath, strerror(errno));
					unlink(tpath);
				}
				else if (!quiet)
					fprintf(stderr, "%s: ground truth computed (%lld queries x %lld base, %s, %s kernels), cached in %s\n",
							progname, (long long) queries.n, (long long) base.n,
							metric_names[metric], distance_kernels->name, cpath);
			}
		}
	}
	if (fflush(out) != 0 || ferror(out))
		die("error writing output: %s", strerror(errno));
	if (out != stdout)
		fclose(out);
	return 0;
}

/* ------------------------------------------------------------------------
 * Recall
 * ------------------------------------------------------------------------ */

/* One query's true neighbours, as read from a ground truth file. */
typedef struct TruthRow
{
	int64_t		qid;
	int			n;
	int64_t    *ids;
	double	   *dists;
} TruthRow;

/* Read a whole file of "qid<TAB>..." lines into memory, one row per line. */
static TruthRow *
read_truth(const char *path, int64_t *nrows)
{
	FILE	   *f = fopen(path, "r");
	char	   *line = NULL;
	size_t		cap = 0;
	int64_t		n = 0,
				alloc = 256,
				lineno = 0;
	TruthRow   *rows;

	if (f == NULL)
		die("cannot open %s: %s", path, strerror(errno));
	rows = xmalloc((size_t) alloc * sizeof(TruthRow));
	while (getline(&line, &cap, f) != -1)
	{
		char	   *p,
				   *end;
		TruthRow   *r;
		int			acap = 16;

		lineno++;
		if (line[0] == '\n' || line[0] == '\0')
			continue;
		if (n == alloc)
		{
			alloc *= 2;
			rows = realloc(rows, (size_t) alloc * sizeof(TruthRow));
			if (rows == NULL)
				die("out of memory reading %s", path);
		}
		r = &rows[n++];
		r->qid = strtoll(line, &end, 10);
		if (end == line || (*end != '\t' && *end != ' '))
			die("%s:%lld: expected \"qid<TAB>id[:dist],...\"", path, (long long) lineno);
		p = end + 1;
		r->n = 0;
		r->ids = xmalloc(acap * sizeof(int64_t));
		r->dists = xmalloc(acap * sizeof(double));
		while (*p && *p != '\n')
		{
			if (r->n == acap)
			{
				acap *= 2;
				r->ids = realloc(r->ids, acap * sizeof(int64_t));
				r->dists = realloc(r->dists, acap * sizeof(double));
				if (!r->ids || !r->dists)
					die("out of memory reading %s", path);
			}
			r->ids[r->n] = strtoll(p, &end, 10);
			if (end == p)
				die("%s:%lld: malformed id near \"%.20s\"", path, (long long) lineno, p);
			p = end;
			r->dists[r->n] = NAN;
			if (*p == ':')
			{
				r->dists[r->n] = strtod(p + 1, &end);
				if (end == p + 1)
					die("%s:%lld: malformed distance near \"%.20s\"", path, (long long) lineno, p);
				p = end;
			}
			r->n++;
			while (*p == ',' || *p == ' ' || *p == '\r')
				p++;
		}
	}
	free(line);
	fclose(f);
	*nrows = n;
	return rows;
}

/* Index of the row with this qid, or -1 (rows are usually in qid order). */
static int64_t
find_row(const TruthRow *rows, int64_t n, int64_t qid, int64_t hint)
{
	if (hint >= 0 && hint < n && rows[hint].qid == qid)
		return hint;
	for (int64_t i = 0; i < n; i++)
		if (rows[i].qid == qid)
			return i;
	return -1;
}

/*
 * vdata recall: mean recall@k of results against ground truth, counting
 * ties: a returned id is a hit when its true distance is at most the true
 * k-th distance.  An id missing from the truth list is a miss unless the
 * data specs are given, in which case its distance is computed.
 */
static int
cmd_recall(int argc, char **argv)
{
	enum
	{
		O_TRUTH = 1000, O_RESULTS, O_K, O_PERQ, O_BASE, O_QUERIES, O_METRIC, O_DIR, O_HELP
	};
	static const struct option opts[] = {
		{"truth", required_argument, NULL, O_TRUTH},
		{"results", required_argument, NULL, O_RESULTS},
		{"k", required_argument, NULL, O_K},
		{"per-query", no_argument, NULL, O_PERQ},
		{"base", required_argument, NULL, O_BASE},
		{"queries", required_argument, NULL, O_QUERIES},
		{"metric", required_argument, NULL, O_METRIC},
		{"dir", required_argument, NULL, O_DIR},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0}
	};
	const char *truth_path = NULL,
			   *results_path = NULL,
			   *base_spec = NULL,
			   *query_spec = NULL,
			   *dir = NULL;
	int			k = 10,
				c;
	bool		per_query = false,
				have_data = false;
	Metric		metric = METRIC_L2;
	TruthRow   *truth,
			   *res;
	int64_t		ntruth,
				nres;
	double		total = 0;
	Dataset		base,
				queries;
	uint8_t    *qbits = NULL,
			   *bbits = NULL;
	size_t		nbytes = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
	{
		switch (c)
		{
			case O_TRUTH: truth_path = optarg; break;
			case O_RESULTS: results_path = optarg; break;
			case O_K: k = (int) parse_count("--k", optarg); break;
			case O_PERQ: per_query = true; break;
			case O_BASE: base_spec = optarg; break;
			case O_QUERIES: query_spec = optarg; break;
			case O_METRIC: metric = parse_metric(optarg); break;
			case O_DIR: dir = optarg; break;
			case O_HELP: usage(stdout); return 0;
			default: usage(stderr); return 2;
		}
	}
	if (truth_path == NULL || results_path == NULL)
		die("recall needs --truth FILE and --results FILE");
	if (k < 1)
		die("--k must be at least 1");
	if ((base_spec == NULL) != (query_spec == NULL))
		die("give both --base and --queries, or neither");
	if (base_spec)
	{
		distance_select(NULL);
		load_spec(&base, base_spec, dir);
		load_spec(&queries, query_spec, dir);
		if (base.dim != queries.dim)
			die("base vectors have %d dimensions but queries have %d", base.dim, queries.dim);
		have_data = true;
		nbytes = ((size_t) base.dim + 7) / 8;
		qbits = xmalloc(nbytes);
		bbits = xmalloc(nbytes);
	}

	truth = read_truth(truth_path, &ntruth);
	res = read_truth(results_path, &nres);
	if (ntruth == 0)
		die("%s: no queries", truth_path);

	for (int64_t t = 0; t < ntruth; t++)
	{
		TruthRow   *tr = &truth[t];
		int64_t		ri = find_row(res, nres, tr->qid, t);
		int			hits = 0,
					want;
		double		kth;

		if (tr->n < k)
			die("%s: query %lld has only %d neighbours, fewer than k = %d",
				truth_path, (long long) tr->qid, tr->n, k);
		kth = tr->dists[k - 1];
		if (isnan(kth))
			die("%s: the truth file has no distances (expected id:dist entries)", truth_path);
		want = k;
		if (ri >= 0)
		{
			TruthRow   *rr = &res[ri];
			int			m = rr->n < k ? rr->n : k;

			for (int i = 0; i < m; i++)
			{
				double		d = NAN;
				bool		dup = false;

				for (int j = 0; j < i; j++)
					if (rr->ids[j] == rr->ids[i])
						dup = true;
				if (dup)
					continue;
				for (int j = 0; j < tr->n; j++)
					if (tr->ids[j] == rr->ids[i])
					{
						d = tr->dists[j];
						break;
					}
				if (isnan(d) && have_data)
				{
					int64_t		bi = rr->ids[i] - base.id_base,
								qi = tr->qid - queries.id_base;
					char		buf[64];

					if (bi < 0 || bi >= base.n || qi < 0 || qi >= queries.n)
						die("result id %lld or query %lld is outside the given data",
							(long long) rr->ids[i], (long long) tr->qid);
					if (metric == METRIC_HAMMING || metric == METRIC_JACCARD)
					{
						binarise(queries.v + (size_t) qi * queries.dim, queries.dim, qbits, nbytes);
						binarise(base.v + (size_t) bi * base.dim, base.dim, bbits, nbytes);
						d = bit_distance(metric, qbits, bbits, nbytes);
					}
					else
						d = exact_distance(metric, queries.v + (size_t) qi * queries.dim,
										   base.v + (size_t) bi * base.dim, base.dim);
					/* compare as the truth file stores distances */
					snprintf(buf, sizeof(buf), "%.10g", d);
					d = strtod(buf, NULL);
				}
				if (!isnan(d) && d <= kth)
					hits++;
			}
		}
		if (per_query)
			printf("%lld\t%.4f\n", (long long) tr->qid, (double) hits / want);
		total += (double) hits / want;
	}
	printf("%.4f\n", total / (double) ntruth);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
	{
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	/* let getopt see the subcommand's arguments only */
	argc--;
	argv++;
	optind = 1;
	if (strcmp(cmd, "fmnist-export") == 0 || strcmp(cmd, "synth") == 0 ||
		strcmp(cmd, "export") == 0)
		return cmd_export(cmd, argc, argv);
	if (strcmp(cmd, "groundtruth") == 0)
		return cmd_groundtruth(argc, argv);
	if (strcmp(cmd, "recall") == 0)
		return cmd_recall(argc, argv);
	fprintf(stderr, "%s: unknown command \"%s\"\n", progname, cmd);
	usage(stderr);
	return 2;
}
