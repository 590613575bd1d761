# p2praft: GNU Makefile. `make` builds the libraries and build/p2praft.
# `make test` runs the unit and integration tiers plus every fuzz corpus;
# `make check` runs the same under ASan+UBSan, then under valgrind.
# Dependencies come from pkg-config; scripts/install-deps.sh installs them.

PREFIX ?= /usr/local
CC ?= cc
BUILD ?= build
PKG_CONFIG ?= pkg-config
DEPS_PC := libuv libcrypto msgpack raft
# The CLI's own: JSON output (--json). The libraries do not link it.
TOOL_PC := jansson

# Warnings are errors in CI (CI=true) or with WERROR=1.
ifeq ($(CI),true)
WERROR ?= 1
endif
WERROR ?= 0

OPT ?= -O2
WARN := -Wall -Wextra -Wshadow -Wconversion -Wno-sign-conversion \
        -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(WERROR),1)
WARN += -Werror
endif
SAN ?= 0
ifeq ($(SAN),1)
OPT := -O1
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
            -fno-omit-frame-pointer
endif

PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(DEPS_PC) $(TOOL_PC) 2>/dev/null)
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(DEPS_PC) 2>/dev/null)
TOOL_LIBS = $(shell $(PKG_CONFIG) --libs $(TOOL_PC) 2>/dev/null)

CFLAGS_ALL = -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) $(SANFLAGS) \
             -fPIC -fvisibility=hidden -Iinclude -Isrc $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL = $(SANFLAGS) $(LDFLAGS)
LIBS_ALL = $(PKG_LIBS) -lpthread -lm

UTIL_SRC := $(sort $(wildcard src/util/*.c))
P2P_SRC := $(sort $(wildcard src/p2p/*.c))
RAFT_SRC := $(sort $(wildcard src/raft/*.c))
TOOL_SRC := $(sort $(wildcard tools/*.c))
EXAMPLE_SRC := $(sort $(wildcard examples/*.c))
TESTLIB_SRC := test/lib/runner.c test/lib/oom.c
UNIT_SRC := $(sort $(wildcard test/unit/*.c)) $(sort $(wildcard test/fuzz/fuzz_*.c))
INTEG_SRC := $(sort $(wildcard test/integration/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))
FUZZ_SRC := $(sort $(wildcard test/fuzz/fuzz_*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LP2P_OBJ := $(call obj,$(UTIL_SRC) $(P2P_SRC))
RAFT_OBJ := $(call obj,$(RAFT_SRC))
LIB_LP2P := $(BUILD)/liblp2p.a
LIB_P2PRAFT := $(BUILD)/libp2praft.a
SO_P2PRAFT := $(BUILD)/libp2praft.so
CLI := $(BUILD)/p2praft
UNIT := $(BUILD)/test-unit
INTEG := $(BUILD)/test-integration
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(EXAMPLE_SRC))
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all deps test check check-asan check-valgrind fuzz bench interop demo \
        install clean tests-build go-raftnode hc-vectors

all: deps-check $(LIB_LP2P) $(LIB_P2PRAFT) $(SO_P2PRAFT) $(CLI) $(EXAMPLES)

# Install missing dependencies (only when pkg-config cannot find one).
deps:
	@$(PKG_CONFIG) --exists $(DEPS_PC) $(TOOL_PC) 2>/dev/null && \
	  $(PKG_CONFIG) --atleast-version=0.22 raft || scripts/install-deps.sh

deps-check:
	@$(PKG_CONFIG) --exists $(DEPS_PC) $(TOOL_PC) 2>/dev/null || { \
	  echo "missing dependencies: run 'make deps' (scripts/install-deps.sh)"; \
	  exit 1; }

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(LIB_LP2P): $(LP2P_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIB_P2PRAFT): $(RAFT_OBJ) $(LP2P_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SO_P2PRAFT): $(RAFT_OBJ) $(LP2P_OBJ)
	$(CC) -shared -o $@ $^ $(LDFLAGS_ALL) $(LIBS_ALL)

$(CLI): $(call obj,$(TOOL_SRC)) $(LIB_P2PRAFT)
	$(CC) -o $@ $(call obj,$(TOOL_SRC)) $(LIB_P2PRAFT) $(LDFLAGS_ALL) $(LIBS_ALL) \
	  $(TOOL_LIBS)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(LIB_P2PRAFT)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(LIB_P2PRAFT) $(LDFLAGS_ALL) $(LIBS_ALL)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB_P2PRAFT)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(LIB_P2PRAFT) $(LDFLAGS_ALL) $(LIBS_ALL)

TEST_CFLAGS = -Itest/lib
$(BUILD)/obj/test/%.o: CFLAGS_ALL += $(TEST_CFLAGS)

$(UNIT): $(call obj,$(TESTLIB_SRC) $(UNIT_SRC)) $(LIB_P2PRAFT)
	$(CC) -o $@ $(call obj,$(TESTLIB_SRC) $(UNIT_SRC)) $(LIB_P2PRAFT) \
	  $(LDFLAGS_ALL) $(LIBS_ALL)

$(INTEG): $(call obj,$(TESTLIB_SRC) $(INTEG_SRC)) $(LIB_P2PRAFT)
	$(CC) -o $@ $(call obj,$(TESTLIB_SRC) $(INTEG_SRC)) $(LIB_P2PRAFT) \
	  $(LDFLAGS_ALL) $(LIBS_ALL)

# The go-libp2p reference peer (interop/go/peer), which integration tests
# use as a real foreign peer. Always at build/interop/go-peer, rebuilt when
# its sources change; Go modules come from the Go module proxy, pinned by
# go.sum.
GO_PEER := build/interop/go-peer
GO_PEER_SRC := $(wildcard interop/go/peer/*.go) interop/go/peer/go.mod \
               interop/go/peer/go.sum
$(GO_PEER): $(GO_PEER_SRC)
	@mkdir -p $(dir $@)
	@command -v go >/dev/null || scripts/install-deps.sh --go
	cd interop/go/peer && GOFLAGS=-mod=readonly GOTOOLCHAIN=auto go build \
	  -trimpath -o $(CURDIR)/$@ .

# go-libp2p-raft v0.5.0 nodes with a control interface (interop/go/raftnode):
# go-raftnode on hashicorp/raft as go-libp2p-raft's go.mod pins it (1.6.1),
# go-raftnode-17 on hashicorp/raft 1.7.x (pre-vote) from go17.mod/go17.sum.
GO_RAFTNODE := build/interop/go-raftnode
GO_RAFTNODE17 := build/interop/go-raftnode-17
GO_RAFTNODE_SRC := $(wildcard interop/go/raftnode/*.go)
$(GO_RAFTNODE): $(GO_RAFTNODE_SRC) interop/go/raftnode/go.mod \
                interop/go/raftnode/go.sum
	@mkdir -p $(dir $@)
	@command -v go >/dev/null || scripts/install-deps.sh --go
	cd interop/go/raftnode && GOFLAGS=-mod=readonly GOTOOLCHAIN=auto go build \
	  -trimpath -o $(CURDIR)/$@ .
$(GO_RAFTNODE17): $(GO_RAFTNODE_SRC) interop/go/raftnode/go17.mod \
                  interop/go/raftnode/go17.sum
	@mkdir -p $(dir $@)
	@command -v go >/dev/null || scripts/install-deps.sh --go
	cd interop/go/raftnode && GOFLAGS=-mod=readonly GOTOOLCHAIN=auto go build \
	  -modfile=go17.mod -tags raft17 -trimpath -o $(CURDIR)/$@ .

go-raftnode: $(GO_RAFTNODE) $(GO_RAFTNODE17)

# Re-capture test/vectors/hashicorp/ from real nodes (see its README.md).
hc-vectors: go-raftnode
	interop/go/raftnode/capture.sh $(GO_RAFTNODE) test/vectors/hashicorp/raft-v1.6.1
	interop/go/raftnode/capture.sh $(GO_RAFTNODE17) test/vectors/hashicorp/raft-v1.7.3
	rm -rf test/vectors/hashicorp/synthetic
	$(GO_RAFTNODE) synth -out test/vectors/hashicorp/synthetic

tests-build: $(UNIT) $(if $(INTEG_SRC),$(INTEG)) $(CLI) $(GO_PEER)

test: deps
	@$(MAKE) --no-print-directory tests-build
	@scripts/run-tests.sh $(UNIT) $(if $(INTEG_SRC),$(INTEG))

check: deps
	@$(MAKE) --no-print-directory check-asan
	@$(MAKE) --no-print-directory check-valgrind

check-asan:
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 tests-build
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  scripts/run-tests.sh build/asan/test-unit \
	  $(if $(INTEG_SRC),build/asan/test-integration)

check-valgrind:
	@$(MAKE) --no-print-directory tests-build
	@P2PRAFT_VALGRIND=1 scripts/run-tests.sh --valgrind $(UNIT) \
	  $(if $(INTEG_SRC),$(INTEG))

# Fuzzing with libFuzzer (clang). SECS per target; new inputs go to
# build/fuzz/new/<target>, the checked-in corpus is read as seeds.
SECS ?= 60
FUZZ_CC ?= clang
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=all -DP2PRAFT_LIBFUZZER -Iinclude -Isrc -Itest/lib
fuzz:
	@command -v $(FUZZ_CC) >/dev/null || scripts/install-deps.sh --fuzz
	@scripts/fuzz.sh $(SECS) $(FUZZ_SRC)

bench: deps all $(BENCHES)
	@bench/run.sh

interop: deps all go-raftnode
	@interop/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@$(CLI) demo

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/lp2p.h include/p2praft.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(LIB_LP2P) $(LIB_P2PRAFT) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SO_P2PRAFT) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/^#define LP2P_VERSION "\(.*\)"/\1/p' include/lp2p.h)|' \
	  p2praft.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/p2praft.pc

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
