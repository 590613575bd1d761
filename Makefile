# p2praft: GNU Makefile. `make` builds the libraries and build/p2praft.
# `make test` runs the unit and integration tiers plus every fuzz corpus,
# and checks an installed copy and the README's consensus outline; `make
# test-unit` runs the unit tier alone (no Go, no Node); `make check` runs both tiers under ASan+UBSan, then
# under valgrind.
# Dependencies come from pkg-config; scripts/install-deps.sh installs them.

PREFIX ?= /usr/local
CC ?= cc
BUILD ?= build
PKG_CONFIG ?= pkg-config
# What the library needs.
DEPS_PC := libuv libcrypto raft
# What only the CLI needs: jansson, for its JSON output (--json), and
# libmicrohttpd, for `node --metrics-listen` (/metrics, /healthz). The
# libraries link neither.
TOOL_PC := jansson libmicrohttpd
# What only the unit tests need: msgpack-c, an independent msgpack decoder
# that test/unit/test_codec.c checks our encoder's output with.
TEST_DEPS_PC := msgpack

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
TEST_PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(TEST_DEPS_PC) 2>/dev/null)
TEST_PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(TEST_DEPS_PC) 2>/dev/null)

# The version is the header's (LP2P_VERSION, which P2PRAFT_VERSION is);
# the shared library's SONAME carries its major number.
VERSION := $(shell sed -n 's/^\#define LP2P_VERSION "\(.*\)"/\1/p' include/lp2p.h)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))

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
FAULTS_SRC := test/faults/client.c
FUZZ_SRC := $(sort $(wildcard test/fuzz/fuzz_*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LP2P_OBJ := $(call obj,$(UTIL_SRC) $(P2P_SRC))
RAFT_OBJ := $(call obj,$(RAFT_SRC))
LIB_LP2P := $(BUILD)/liblp2p.a
LIB_P2PRAFT := $(BUILD)/libp2praft.a
SONAME := libp2praft.so.$(SOMAJOR)
SO_P2PRAFT := $(BUILD)/libp2praft.so.$(VERSION)
SO_LINKS := $(BUILD)/$(SONAME) $(BUILD)/libp2praft.so
CLI := $(BUILD)/p2praft
UNIT := $(BUILD)/test-unit
INTEG := $(BUILD)/test-integration
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(EXAMPLE_SRC))
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all deps deps-check test test-unit test-install check check-asan \
        check-valgrind fuzz bench bench-idle interop demo install clean tests-build \
        go-raftnode hc-vectors faults faults-build faults-selftest

all: deps-check $(LIB_LP2P) $(LIB_P2PRAFT) $(SO_P2PRAFT) $(SO_LINKS) $(CLI) \
     $(EXAMPLES) $(BUILD)/interop/c-raftnode

# Install missing dependencies (only when pkg-config cannot find one, or
# a program the tests run is missing), the unit tests' own among them.
# TEST_TOOLS: valgrind (make check), strace (bench/host), systemd-analyze
# (the unit file check in test_ops.c), xxd (interop/go/snapshot/run.sh).
TEST_TOOLS := valgrind strace systemd-analyze xxd
deps:
	@$(PKG_CONFIG) --exists $(DEPS_PC) $(TOOL_PC) $(TEST_DEPS_PC) 2>/dev/null && \
	  $(PKG_CONFIG) --atleast-version=0.22 raft && \
	  ( for t in $(TEST_TOOLS); do command -v $$t >/dev/null || exit 1; done ) || \
	  scripts/install-deps.sh

deps-check:
	@$(PKG_CONFIG) --exists $(DEPS_PC) $(TOOL_PC) 2>/dev/null || { \
	  echo "missing dependencies: run 'make deps' (scripts/install-deps.sh)"; \
	  exit 1; }
	@test -n "$(VERSION)" || { \
	  echo "no LP2P_VERSION in include/lp2p.h"; exit 1; }

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
	$(CC) -shared -Wl,-soname,$(SONAME) -o $@ $^ $(LDFLAGS_ALL) $(LIBS_ALL)

# libp2praft.so.MAJOR (what programs load) and libp2praft.so (what -l
# finds) both lead to the real file.
$(SO_LINKS): $(SO_P2PRAFT)
	ln -sf $(notdir $(SO_P2PRAFT)) $@

$(CLI): $(call obj,$(TOOL_SRC)) $(LIB_P2PRAFT)
	$(CC) -o $@ $(call obj,$(TOOL_SRC)) $(LIB_P2PRAFT) $(LDFLAGS_ALL) $(LIBS_ALL) \
	  $(TOOL_LIBS)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(LIB_P2PRAFT)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(LIB_P2PRAFT) $(LDFLAGS_ALL) $(LIBS_ALL)

# The C node of the mixed go-libp2p-raft clusters (interop/go/raftnode/mixed-test.sh).
C_RAFTNODE := $(BUILD)/interop/c-raftnode
$(C_RAFTNODE): $(BUILD)/obj/interop/c/raftnode.o $(LIB_P2PRAFT)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(LIB_P2PRAFT) $(LDFLAGS_ALL) $(LIBS_ALL)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB_P2PRAFT)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(LIB_P2PRAFT) $(LDFLAGS_ALL) $(LIBS_ALL)

TEST_CFLAGS = -Itest/lib
$(BUILD)/obj/test/%.o: CFLAGS_ALL += $(TEST_CFLAGS)
$(BUILD)/obj/test/unit/%.o: CFLAGS_ALL += $(TEST_PKG_CFLAGS)

$(UNIT): $(call obj,$(TESTLIB_SRC) $(UNIT_SRC)) $(LIB_P2PRAFT)
	@$(PKG_CONFIG) --exists $(TEST_DEPS_PC) 2>/dev/null || { \
	  echo "the unit tests need $(TEST_DEPS_PC): run 'make deps'"; exit 1; }
	$(CC) -o $@ $(call obj,$(TESTLIB_SRC) $(UNIT_SRC)) $(LIB_P2PRAFT) \
	  $(LDFLAGS_ALL) $(TEST_PKG_LIBS) $(LIBS_ALL)

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

# The fault harness (test/faults/): its workload client and the external
# linearizability checker (porcupine, from the Go module proxy, pinned by
# go.sum).
FAULTS_CLIENT := $(BUILD)/faults-client
$(FAULTS_CLIENT): $(call obj,$(FAULTS_SRC)) $(LIB_P2PRAFT)
	$(CC) -o $@ $(call obj,$(FAULTS_SRC)) $(LIB_P2PRAFT) $(LDFLAGS_ALL) $(LIBS_ALL)

LINEARIZE := build/interop/linearize
LINEARIZE_SRC := $(wildcard interop/go/linearize/*.go) \
                 interop/go/linearize/go.mod interop/go/linearize/go.sum
$(LINEARIZE): $(LINEARIZE_SRC)
	@mkdir -p $(dir $@)
	@command -v go >/dev/null || scripts/install-deps.sh --go
	cd interop/go/linearize && GOFLAGS=-mod=readonly GOTOOLCHAIN=auto go build \
	  -trimpath -o $(CURDIR)/$@ .

faults-build: all $(FAULTS_CLIENT) $(LINEARIZE)

# The checker must reject crafted bad histories and accept good ones.
faults-selftest: $(LINEARIZE)
	@test/faults/selftest.sh

# Every nemesis for SECS seconds, at 3 and 5 nodes (root: network
# namespaces, veth links, tmpfs mounts). FAULTS_CI=1: the .ci/run plan, one
# run per nemesis. NEMESES="a b" picks some; SNAPSHOT_THRESHOLD=N and
# STORE=mem|disk go to every node.
faults: deps
	@command -v ip >/dev/null && command -v go >/dev/null || \
	  scripts/install-deps.sh --faults
	@$(MAKE) --no-print-directory faults-build faults-selftest
	@test/faults/all.sh --secs $(SECS) $(if $(filter 1,$(FAULTS_CI)),--ci) \
	  $(if $(NEMESES),--nemeses "$(NEMESES)") \
	  $(if $(SNAPSHOT_THRESHOLD),--snapshot-threshold $(SNAPSHOT_THRESHOLD)) \
	  $(if $(STORE),--store $(STORE))

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

# Everything: unit and integration tiers, and the installed copy
# (scripts/test-install.sh: make install into a temporary prefix, then build
# programs against it with pkg-config, shared and static).
test: deps
	@$(MAKE) --no-print-directory tests-build all $(LINEARIZE)
	@scripts/run-tests.sh $(UNIT) $(if $(INTEG_SRC),$(INTEG)) \
	  scripts/test-install.sh scripts/test-readme.sh test/faults/selftest.sh

# The unit tier alone: codecs, state machines, fuzz corpora. Needs neither
# Go nor Node (nor the CLI).
test-unit: deps
	@$(MAKE) --no-print-directory $(UNIT)
	@scripts/run-tests.sh $(UNIT)

test-install: deps
	@$(MAKE) --no-print-directory all
	@scripts/run-tests.sh scripts/test-install.sh

check: deps
	@$(MAKE) --no-print-directory check-asan
	@$(MAKE) --no-print-directory check-valgrind

check-asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 tests-build
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  P2PRAFT_TEST_TIMEOUT_SCALE=$${P2PRAFT_TEST_TIMEOUT_SCALE:-3} \
	  scripts/run-tests.sh build/asan/test-unit \
	  $(if $(INTEG_SRC),build/asan/test-integration)

check-valgrind: deps
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

bench: deps all $(BENCHES) go-raftnode
	@bench/run.sh

# The unpinned latencies with the VM guest's halt polling off and on
# (root; changes /sys/module/haltpoll/parameters/guest_halt_poll_ns while it
# runs and puts it back).
bench-idle: deps all build/bench/bench_e2e
	@bench/idle/run.sh

# js-libp2p needs Node.js 20 or later and npm (install-deps.sh --node says
# so when they are missing; Debian 12 has no such package).
interop: deps all go-raftnode
	@case "$$(node --version 2>/dev/null)" in v[2-9][0-9].*) command -v npm >/dev/null ;; *) false ;; esac || \
	  scripts/install-deps.sh --node
	@interop/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@$(CLI) demo

# Headers, both libraries (libp2praft.so as libp2praft.so.VERSION with its
# SONAME link and the -l link), p2praft.pc and the CLI. Into a system
# directory, run ldconfig afterwards.
install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/lp2p.h include/p2praft.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(LIB_LP2P) $(LIB_P2PRAFT) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SO_P2PRAFT) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libp2praft.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf libp2praft.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libp2praft.so
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	  p2praft.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/p2praft.pc

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
