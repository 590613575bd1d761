/*
 * What the two raft cluster harnesses (cluster.c: libraft's TCP transport,
 * netcluster.c: p2praft over libp2p) and the tests built on them share:
 * valgrind scaling, loop waits, directories, starting a raft node, and the
 * pieces of the seed's TestTransportSnapshots. Public API only (no test.h),
 * so that benchmarks can include it with the harnesses.
 */
#ifndef P2PRAFT_TEST_HARNESS_UTIL_H
#define P2PRAFT_TEST_HARNESS_UTIL_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "p2praft.h"

/* Is the test running under valgrind (P2PRAFT_VALGRIND=1)? */
bool harness_slow(void);

/* ms stretched like the runner's time limits: times
 * P2PRAFT_TEST_TIMEOUT_SCALE when that is above 1 (`make check-asan` sets
 * 3; the valgrind run 20), else ms. For the waits of a test whose work
 * (big states copied, hashed, written) is what a sanitizer or a loaded
 * machine slows down, so that its wait keeps the share of its time limit
 * it was given. */
unsigned harness_scaled_ms(unsigned ms);

/* A TCP port on 127.0.0.1 that is free and outside the kernel's ephemeral
 * range, so that it stays free for a later listen (see harness_util.c), or
 * -1. */
int harness_free_port(void);

/* Remove a directory and all below it (no link is followed). */
void harness_rm_rf(const char *dir);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t harness_now_ms(void);

/* The p2praft CLI beside the running test binary (build/p2praft), in a
 * static buffer filled by the first call; NULL if /proc/self/exe cannot be
 * read. Call it before fork() so that the child only reads the buffer. */
const char *harness_cli_path(void);

/* Run loop until cond(ctx) is true or timeout_ms elapsed. */
bool harness_run_until(uv_loop_t *loop, bool (*cond)(void *ctx), void *ctx,
                       unsigned timeout_ms);

/* Index of a leader that all rafts[i] != NULL (the running nodes) agree on,
 * waiting for it on loop; or -1. */
int harness_wait_leader(uv_loop_t *loop, struct raft *const *rafts,
                        unsigned n, unsigned timeout_ms);

/* *c = a consensus (op != NULL: oplog mode) unless it exists already. */
int harness_consensus_new(struct p2praft_consensus **c, uv_loop_t *loop,
                          const struct p2praft_type *st,
                          const struct p2praft_op_type *op,
                          const void *initial);

/* Bootstrap r (when bootstrap) with the n voters ids[]/addrs[] (an existing
 * configuration is fine), then start it. 0 or LP2P_ERAFT. */
int harness_raft_start(struct raft *r, bool bootstrap, unsigned n,
                       const raft_id *ids, const char *const *addrs);

/* Create *actor on r unless it exists, and attach it to c. */
int harness_attach_actor(struct p2praft_consensus *c,
                         struct p2praft_actor **actor, struct raft *r);

/* ---- TestTransportSnapshots pieces ---- */

/* The state the snapshot test commits: its type must have this layout. */
struct harness_msg_state {
    char *Msg;
};

/* Commits "count: 0" .. "count: total-1" to c, 64 in flight at a time. */
struct harness_pump {
    struct p2praft_consensus *c;
    const struct p2praft_type *type;
    int total;
    int issued;
    int done;
    int failures;
    int first_error;
};

/* Issue the first (up to 64) commits; the callbacks issue the rest. */
void harness_pump_start(struct harness_pump *p);
/* Condition for harness_run_until(): all commits answered. */
bool harness_pump_done(void *ctx);

/* One node of the snapshot test: its raft, consensus and data directory,
 * and how many snapshots its consensus had taken before. */
struct harness_snap {
    struct raft *r;
    struct p2praft_consensus *c;
    const char *dir;
    uint64_t before;
};

/* Condition for harness_run_until() (ctx: struct harness_snap): the node
 * took a new snapshot, none is being written, and its last applied index is
 * covered by a snapshot on disk (raft_uv names them
 * snapshot-<term>-<index>-<timestamp>[.meta]). */
bool harness_snapshot_persisted(void *ctx);

/* Keep only snapshot-* and metadata* files in dir, so that the node
 * restarts from its snapshot alone, as the seed's in-memory log store did.
 * Returns the number of snapshot files, or -1. */
int harness_drop_segments(const char *dir);

#endif
