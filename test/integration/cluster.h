/*
 * A raft cluster in one process for the integration tests and benchmarks:
 * N nodes on one libuv loop, raft_uv storage in a mkdtemp() directory per
 * node, libraft's TCP transport on 127.0.0.1 (ports picked by binding port
 * 0 first, since raft_uv_tcp must know its port before listening).
 */
#ifndef P2PRAFT_TEST_CLUSTER_H
#define P2PRAFT_TEST_CLUSTER_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <uv.h>

#include "harness_util.h"
#include "p2praft.h"

#define CLUSTER_MAX 3

struct cnode {
    struct cluster *cl;
    unsigned i;
    char dir[256];
    char addr[32];
    raft_id id;
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft raft;
    struct p2praft_consensus *c;
    struct p2praft_actor *actor;
    bool running;
    bool closed;
};

struct cluster {
    uv_loop_t loop;
    unsigned n;
    const struct p2praft_type *st;
    const struct p2praft_op_type *op;
    const void *initial;
    unsigned election_ms;
    unsigned heartbeat_ms;
    unsigned snapshot_threshold; /* 0: libraft default */
    unsigned snapshot_trailing;
    const char *base_dir; /* parent of the node dirs (default /tmp) */
    struct cnode nodes[CLUSTER_MAX];
};

/* Is the test running under valgrind (P2PRAFT_VALGRIND=1)? */
bool cluster_slow(void);

/* Set up n nodes (directories, ports, consensus objects; op may be NULL
 * for state mode), then start them all bootstrapped. 0 or an error. */
int cluster_init(struct cluster *cl, unsigned n, const struct p2praft_type *st,
                 const struct p2praft_op_type *op, const void *initial);
/* Same without starting anything. */
int cluster_prepare(struct cluster *cl, unsigned n,
                    const struct p2praft_type *st,
                    const struct p2praft_op_type *op, const void *initial);
/* Start node i (bootstrap when its directory is pristine). */
int cluster_start(struct cluster *cl, unsigned i, bool bootstrap);
/* Close node i's raft and free its consensus/actor (runs the loop). */
void cluster_stop(struct cluster *cl, unsigned i);
/* Stop everything, remove the directories, close the loop. */
void cluster_close(struct cluster *cl);

/* Run the loop until cond(ctx) is true or timeout_ms elapsed. */
bool cluster_run_until(struct cluster *cl, bool (*cond)(void *ctx), void *ctx,
                       unsigned timeout_ms);
/* Index of a leader that all running nodes agree on, waiting for it; or -1. */
int cluster_wait_leader(struct cluster *cl, unsigned timeout_ms);

/* raft_uv_tcp leaves Nagle on: switch it off on every TCP handle of the
 * loop (call once the connections exist). Returns how many. */
int cluster_nodelay(struct cluster *cl);

#endif
