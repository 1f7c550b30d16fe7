# coordinator/auth.mk: the auth and metrics modules of the coordinator
# (jwt, apikey, password, ratelimit, rbac, metrics) and their unit tests.
#
# The coordinator's Makefile includes it and adds
#     SRCS     += $(AUTH_SRCS)
#     CPPFLAGS += $(AUTH_CPPFLAGS)
#     LIBS     += $(AUTH_LIBS)
# Standalone, from the repository root:
#     make -f coordinator/auth.mk auth-tests     build the test binaries
#     make -f coordinator/auth.mk auth-check     build and run them
# Defining no target before the includer's own keeps its default goal.

AUTH_SAVED_GOAL := $(.DEFAULT_GOAL)
AUTH_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
AUTH_ROOT := $(abspath $(AUTH_DIR)/..)

# Sources, relative to coordinator/ (where the coordinator's Makefile runs).
AUTH_SRCS = jwt.c apikey.c password.c ratelimit.c rbac.c metrics.c
AUTH_PKGS = libjwt jansson libcrypto libargon2 libevent
AUTH_CPPFLAGS := $(shell pkg-config --cflags $(AUTH_PKGS))
AUTH_LIBS := $(shell pkg-config --libs $(AUTH_PKGS)) -lpthread -lm

AUTH_CC ?= cc
AUTH_WERROR ?= -Werror
AUTH_CFLAGS = -std=gnu11 -O2 -g -Wall -Wextra $(AUTH_WERROR) -fno-omit-frame-pointer

AUTH_TEST_DIR = $(AUTH_ROOT)/test/coordinator/unit
AUTH_TESTS = $(addprefix $(AUTH_TEST_DIR)/,test_jwt test_apikey test_password \
	test_ratelimit test_rbac test_metrics)
AUTH_HDRS = $(wildcard $(AUTH_DIR)/*.h) $(AUTH_TEST_DIR)/tap.h

# Each test links only the modules it tests.
AUTH_MOD_test_jwt = jwt
AUTH_MOD_test_apikey = apikey
AUTH_MOD_test_password = password
AUTH_MOD_test_ratelimit = ratelimit
AUTH_MOD_test_rbac = rbac
AUTH_MOD_test_metrics = metrics

$(AUTH_TEST_DIR)/test_%: $(AUTH_TEST_DIR)/test_%.c $(AUTH_HDRS) $(AUTH_DIR)/%.c
	$(AUTH_CC) $(AUTH_CFLAGS) -I$(AUTH_DIR) -I$(AUTH_TEST_DIR) $(AUTH_CPPFLAGS) -o $@ \
		$< $(AUTH_DIR)/$(AUTH_MOD_test_$*).c $(AUTH_LIBS)

.PHONY: auth-tests auth-check auth-clean
auth-tests: $(AUTH_TESTS)

auth-check: auth-tests
	@rc=0; for t in $(AUTH_TESTS); do $$t || rc=1; done; exit $$rc

auth-clean:
	rm -f $(AUTH_TESTS)

ifeq ($(AUTH_SAVED_GOAL),)
.DEFAULT_GOAL :=
endif
