/*
 * The seed's TestTransportSnapshots, one body for both harnesses
 * (test_consensus.c: raft_uv_tcp, test_transport.c: libp2p). The test sets
 * up a 2-node cluster (snapshot threshold 512, trailing 64) with a state
 * type laid out as struct harness_msg_state, waits for a leader, and hands
 * over through these accessors.
 */
#ifndef P2PRAFT_TEST_SNAPSHOT_TEST_H
#define P2PRAFT_TEST_SNAPSHOT_TEST_H

#include "harness_util.h"

struct snapshot_harness {
    void *cl;
    uv_loop_t *loop;
    const struct p2praft_type *type;
    unsigned wait_ms;
    struct raft *(*raft)(void *cl, unsigned i);
    struct p2praft_consensus *(*consensus)(void *cl, unsigned i);
    const char *(*dir)(void *cl, unsigned i);
    void (*stop)(void *cl, unsigned i);   /* node down (and its peer gone) */
    int (*start)(void *cl, unsigned i, bool bootstrap);
    /* For stores without a directory (NULL: raft_uv files in dir()):
     * is a snapshot covering node i's last applied index stored (and none
     * being taken)? Keep only node i's snapshot (and term and vote);
     * return how many snapshots are left. */
    bool (*persisted)(void *cl, unsigned i);
    int (*drop_log)(void *cl, unsigned i);
};

/* 5000 commits (600 under valgrind) through the leader, snapshot, stop both
 * nodes, drop node 0's segments, restart it from its snapshot alone and
 * check its state. Fails the test (test.h) on any mismatch. */
void snapshot_test_run(const struct snapshot_harness *h, int leader);

#endif
