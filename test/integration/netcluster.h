/*
 * A raft cluster over libp2p in one process, for the integration tests and
 * bench/bench_e2e.c: N nodes on one libuv loop, each with its own lp2p host
 * on 127.0.0.1 (port 0) and p2praft's raft I/O over it, storing in memory
 * (a memstore per node that survives restarts) or on disk (raft_uv in a
 * mkdtemp() directory). The raft address of a node is its peer ID string,
 * its raft ID p2praft_server_id(). Hosts know each other's addresses
 * through their peerstores. A node can be stopped (raft + io) and its host
 * closed, and both started again with the same key and data.
 * Uses only the public API (no test.h), so that benchmarks can include it.
 */
#ifndef P2PRAFT_TEST_NETCLUSTER_H
#define P2PRAFT_TEST_NETCLUSTER_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <uv.h>

#include "harness_util.h"
#include "p2praft.h"

#define NC_MAX 5

struct nc_node {
    struct nc *nc;
    unsigned i;
    char dir[256];
    struct lp2p_key key;
    struct lp2p_peer_id pid;
    char pidstr[LP2P_PEER_ID_STRMAX];
    raft_id id;
    char addr[LP2P_MULTIADDR_STRMAX]; /* listen address, without /p2p */
    struct lp2p_host *host;
    struct p2praft_memstore *mem; /* P2PRAFT_STORE_MEM: outlives restarts */
    struct raft_io io;
    struct raft raft;
    struct p2praft_consensus *c;
    struct p2praft_actor *actor;
    bool running;
    bool closed;
    bool host_closed;
};

struct nc {
    uv_loop_t loop;
    unsigned n;
    const struct p2praft_type *st;
    const struct p2praft_op_type *op;
    const void *initial;
    unsigned election_ms;  /* 0: 150 (2000 under valgrind) */
    unsigned heartbeat_ms; /* 0: 30 (200 under valgrind) */
    unsigned snapshot_threshold; /* 0: libraft default */
    unsigned snapshot_trailing;
    bool no_hint;          /* disable the io's election hint */
    bool no_fast_start;    /* a fresh cluster waits for a timeout */
    enum p2praft_store_kind store; /* MEM (default) or DISK */
    unsigned install_snapshot_ms;  /* 0: libraft default */
    const char *base_dir;  /* parent of the node dirs (default /tmp) */
    /* The raft wire; HASHICORP also takes the seed's log format and turns
     * pre-vote off, as a node of a go-libp2p-raft cluster does. */
    enum p2praft_wire wire;
    uint32_t busy_poll_us; /* the hosts' busy polling (0: off) */
    struct nc_node nodes[NC_MAX];
};

/* Is the test running under valgrind (P2PRAFT_VALGRIND=1)? */
bool nc_slow(void);

/* Keys, directories, hosts (listening, peerstores filled) and consensus
 * objects for n nodes; nothing started. 0 or an error. */
int nc_prepare(struct nc *nc, unsigned n, const struct p2praft_type *st,
               const struct p2praft_op_type *op, const void *initial);
/* nc_prepare() then start every node bootstrapped. */
int nc_init(struct nc *nc, unsigned n, const struct p2praft_type *st,
            const struct p2praft_op_type *op, const void *initial);
/* Start node i's raft (bootstrap when its directory is pristine); starts
 * its host first when it was closed. */
int nc_start(struct nc *nc, unsigned i, bool bootstrap);
/* Close node i's raft and transport, free its consensus and actor. */
void nc_stop(struct nc *nc, unsigned i);
/* nc_stop() and close node i's host (the peer disappears). */
void nc_kill(struct nc *nc, unsigned i);
/* Stop everything, remove the directories, close the loop. */
void nc_close(struct nc *nc);

/* Run the loop until cond(ctx) is true or timeout_ms elapsed. */
bool nc_run_until(struct nc *nc, bool (*cond)(void *ctx), void *ctx,
                  unsigned timeout_ms);
/* Index of a leader that all running nodes agree on, waiting for it; or -1. */
int nc_wait_leader(struct nc *nc, unsigned timeout_ms);

#endif
