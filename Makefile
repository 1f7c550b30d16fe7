# Makefile: the vectron PostgreSQL extension (PGXS), and the entry points for
# everything around it (coordinator, tests, demo, benchmarks).
#
#   make                    build the extension (make coordinator, make tools: the rest)
#   make install            install the extension into pg_config's directories
#   make installcheck       pg_regress against a running server (PGXS)
#   make prove_installcheck TAP tests against an installed server (PGXS)
#   make check              everything, on throwaway PostgreSQL instances
#   make demo               local cluster, Fashion-MNIST through REST, searches
#   make demo-sql           one instance, Fashion-MNIST in a table, SQL searches
#   make bench              benchmarks (see docs/benchmarks.md)

EXTENSION = vectron
MODULE_big = vectron
EXTVERSION = 1.0

# The type, its functions and the distance kernels.
TYPE_OBJS = src/vectron.o src/vector.o src/vector_parse.o src/vector_cast.o \
	src/vector_agg.o src/bitvec.o src/distance.o src/distance_x86.o

# The HNSW index access method.
HNSW_OBJS = src/hnsw.o src/hnswbuild.o src/hnswinsert.o src/hnswscan.o \
	src/hnswvacuum.o src/hnswutils.o src/hnswvalidate.o src/hnswcheck.o \
	src/hnswstats.o src/hnswlinks.o src/hnswquant.o src/hnswparallel.o
HNSW_REGRESS = hnsw_vector hnsw_bit hnsw_options hnsw_ddl hnsw_iterative hnsw_stats hnsw_costs hnsw_highdim

OBJS = $(TYPE_OBJS) $(HNSW_OBJS)

DATA = vectron--1.0.sql
REGRESS = vector_input vector_functions vector_operators vector_cast \
	vector_agg bit_distance vector_btree
REGRESS += $(HNSW_REGRESS)
REGRESS_OPTS = --inputdir=. --load-extension=vectron

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl
PROVE_FLAGS = -I ./test/perl

EXTRA_CLEAN = test/unit/test_distance test/fuzz/fuzz_vector_text \
	test/fuzz/fuzz_vector_recv test/fuzz/fuzz_jwt test/fuzz/fuzz_request bench/vdata bench/bench_kernels bench/ann_client \
	bench/coord_client \
	results regression.diffs regression.out

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)

WERROR ?= -Werror
PG_CFLAGS += -std=gnu11 -Wall -Wextra $(WERROR) -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare -fvisibility=hidden
# clang compiles the LLVM bitcode for JIT inlining; keep it quiet too
BITCODE_CFLAGS += -Wno-unused-command-line-argument -fvisibility=hidden

include $(PGXS)

# Server headers as -isystem: PostgreSQL 15's own headers are not clean under
# -Wextra -Werror, and their warnings are not ours to fix.
override CPPFLAGS := -I$(srcdir)/src -isystem $(includedir_server) \
	-isystem $(includedir_internal) \
	$(filter-out -I$(includedir_server) -I$(includedir_internal) -I. -I./,$(CPPFLAGS))

# ---------------------------------------------------------------------------
# Tools that link the PostgreSQL-independent parts (kernels, parser)
# ---------------------------------------------------------------------------
TOOL_CC ?= cc
TOOL_CFLAGS = -std=gnu11 -O2 -g -Wall -Wextra $(WERROR) -Isrc
FUZZ_CC ?= clang
FUZZ_CFLAGS = -std=gnu11 -g -O1 -Isrc -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined

KERNEL_SRC = src/distance.c src/distance_x86.c

test/unit/test_distance: test/unit/test_distance.c $(KERNEL_SRC) src/distance.h
	$(TOOL_CC) $(TOOL_CFLAGS) -o $@ test/unit/test_distance.c $(KERNEL_SRC) -lm

test/unit/test_parse: test/unit/test_parse.c src/vector_parse.c src/vector_parse.h
	$(TOOL_CC) $(TOOL_CFLAGS) -o $@ test/unit/test_parse.c src/vector_parse.c -lm

test/fuzz/fuzz_vector_text: test/fuzz/fuzz_vector_text.c src/vector_parse.c src/vector_parse.h
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ test/fuzz/fuzz_vector_text.c src/vector_parse.c -lm

test/fuzz/fuzz_vector_recv: test/fuzz/fuzz_vector_recv.c src/vector_parse.c src/vector_parse.h
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ test/fuzz/fuzz_vector_recv.c src/vector_parse.c -lm

# Token verification of the coordinator (coordinator/jwt.c, libjwt, OpenSSL).
test/fuzz/fuzz_jwt: test/fuzz/fuzz_jwt.c coordinator/jwt.c coordinator/jwt.h
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Icoordinator -o $@ test/fuzz/fuzz_jwt.c coordinator/jwt.c \
		$$(pkg-config --libs libjwt jansson libcrypto)

# The coordinator's request-body decoders (api_points.c, api_collections.c,
# api_auth.c, api.c, filter.c) on a real shard map, with the HTTP layer,
# database, executors and auth state stubbed (test/fuzz/fuzz_request_stubs.c).
FUZZ_REQUEST_SRC = test/fuzz/fuzz_request.c test/fuzz/fuzz_request_stubs.c \
	$(addprefix coordinator/,util.c log.c config.c hash.c filter.c merge.c api.c \
	api_points.c api_collections.c api_auth.c jwt.c apikey.c rbac.c)
test/fuzz/fuzz_request: $(FUZZ_REQUEST_SRC) test/fuzz/fuzz_request.h coordinator/shardmap.c \
		$(wildcard coordinator/*.h)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Icoordinator -Itest/fuzz -I$$($(PG_CONFIG) --includedir) -o $@ \
		$(FUZZ_REQUEST_SRC) $$(pkg-config --libs libevent jansson libjwt libcrypto) -lhttp_parser \
		-lpq -lm

bench/vdata: bench/vdata.c $(KERNEL_SRC) src/distance.h
	$(TOOL_CC) $(TOOL_CFLAGS) -O3 -o $@ bench/vdata.c $(KERNEL_SRC) -lz -lm -lpthread

bench/bench_kernels: bench/bench_kernels.c $(KERNEL_SRC) src/distance.h
	$(TOOL_CC) $(TOOL_CFLAGS) -O3 -o $@ bench/bench_kernels.c $(KERNEL_SRC) -lm

bench/ann_client: bench/ann_client.c
	$(TOOL_CC) $(TOOL_CFLAGS) -I$(shell $(PG_CONFIG) --includedir) -o $@ bench/ann_client.c \
		-L$(shell $(PG_CONFIG) --libdir) -lpq

bench/coord_client: bench/coord_client.c
	$(TOOL_CC) $(TOOL_CFLAGS) -I$(shell $(PG_CONFIG) --includedir) -o $@ bench/coord_client.c \
		-L$(shell $(PG_CONFIG) --libdir) -lpq

UNIT_TESTS = test/unit/test_distance test/unit/test_parse
FUZZERS = test/fuzz/fuzz_vector_text test/fuzz/fuzz_vector_recv test/fuzz/fuzz_jwt \
	test/fuzz/fuzz_request
# tools whose sources exist (bench/ grows in its own branch)
TOOLS = $(filter $(patsubst %.c,%,$(wildcard bench/*.c)),bench/vdata bench/bench_kernels bench/ann_client bench/coord_client)

.PHONY: tools unit fuzzers coordinator check check-full demo demo-sql bench deps

tools: $(TOOLS)
unit: $(UNIT_TESTS)
fuzzers: $(FUZZERS)

coordinator:
	@if [ -f coordinator/Makefile ]; then $(MAKE) -C coordinator; fi

deps:
	scripts/install-deps

# PGXS's own "check" only says "not supported"; ours runs the whole suite on
# throwaway instances (make prints a warning that it overrides the recipe).
check:
	scripts/check

check-full:
	VECTRON_CHECK_FULL=1 scripts/check

demo:
	scripts/demo

demo-sql:
	scripts/demo-sql

bench:
	scripts/install-deps
	$(MAKE) all tools
	bench/run-all

print-regress:
	@echo $(REGRESS)

# PGXS tracks no header dependencies; every object depends on every header.
$(OBJS): $(wildcard src/*.h)
