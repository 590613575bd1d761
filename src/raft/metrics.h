/*
 * The node's metrics (metrics.c): the counters that no other module keeps
 * (commits and their latency, elections, leader changes),
 * fed from the code paths where those things happen, and the rendering of
 * a whole sample in the Prometheus text exposition format (version 0.0.4).
 * The rendering is sans-I/O: a sample in, text out. metrics_node.c fills
 * a sample from a live node (on its loop thread).
 */
#ifndef P2PRAFT_RAFT_METRICS_H
#define P2PRAFT_RAFT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Upper bounds of the commit latency buckets, in microseconds (the last,
 * +Inf, is implicit). */
#define P2PRAFT__METRICS_BUCKETS 13

struct p2praft__metrics {
    uint64_t commits;         /* writes answered as applied (OK, NOT FOUND,
                               * MISMATCH) */
    uint64_t commit_failures; /* writes answered FAILED or UNKNOWN */
    uint64_t lat_count[P2PRAFT__METRICS_BUCKETS + 1]; /* not cumulative */
    uint64_t lat_sum_us;
    uint64_t leader_changes;
    uint64_t elections; /* elections this node started (terms in which it
                         * was a candidate or became leader) */
    int last_state;     /* raft state seen last (RAFT_*), 0: none yet */
    uint64_t election_term; /* the term of the last election counted */
};

/* What a render shows: the counters above plus the gauges and counters
 * other modules keep, copied at one moment. */
struct p2praft__metrics_sample {
    uint64_t term, commit_index, applied_index, last_index;
    bool is_leader, has_leader, caught_up;
    uint64_t members, peers_reachable, keys;
    uint64_t snapshots_taken, snapshots_installed;
    uint64_t snapshot_bytes_last, snapshot_bytes_total;
    uint64_t connections, streams;
    uint64_t api_connections, client_connections, watches;
    uint64_t refused_raft, refused_forward, refused_client, refused_api;
    uint64_t bytes_in, bytes_out;
    uint64_t raft_msgs_sent, raft_msgs_received, raft_msgs_dropped;
    uint64_t forwarded, served_forwards;
};

/* Bucket bounds (microseconds), for tests and the renderer. */
extern const uint64_t p2praft__metrics_bounds_us[P2PRAFT__METRICS_BUCKETS];

/* A write ended: applied (`ok`) after `us` microseconds, or failed. */
void p2praft__metrics_commit(struct p2praft__metrics *m, bool ok, uint64_t us);

/* The raft state and term seen now (once per loop turn): counts an
 * election for each term in which this node is seen a candidate, or
 * leader without having been seen a candidate (a one-voter cluster wins
 * within the same turn). */
void p2praft__metrics_state(struct p2praft__metrics *m, int state,
                            uint64_t term);

/* Append the whole exposition of `m` and `s` (both borrowed) to `b`.
 * 0 or LP2P_ENOMEM (b may then hold part of it). */
int p2praft__metrics_render(const struct p2praft__metrics *m,
                            const struct p2praft__metrics_sample *s,
                            struct lp2p_buf *b);

#endif
