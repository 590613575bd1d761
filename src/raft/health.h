/*
 * What an operator must see at the default log level (health.c): leader
 * changes, a leader missing for long, configured peers that cannot be
 * reached or whose key does not match their /p2p/ ID, and raft streams
 * refused. Driven by the node's loop check and timer.
 */
#ifndef P2PRAFT_RAFT_HEALTH_H
#define P2PRAFT_RAFT_HEALTH_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>

#include "lp2p.h"
#include "util/ratelog.h"

struct p2praft_node;
struct p2praft__peer_watch;

struct p2praft__health {
    struct p2praft__peer_watch *peers; /* one per configured peer */
    size_t n_peers;
    raft_id leader;  /* as last logged; 0: none */
    raft_term term;  /* of that leader */
    uint64_t no_leader_since, no_leader_next; /* ms; 0: a leader is known */
    uint64_t no_leader_every;
    uint64_t raft_refused_seen; /* the transport's counter, as last read */
    struct lp2p__ratelog raft_refused;
};

/* Watch the configured peers `peers[0..n)` (copied), whose addresses are
 * n->peers[i] (borrowed from the node). 0 or LP2P_ENOMEM. */
int p2praft__health_init(struct p2praft_node *n,
                         const struct lp2p_peer_id *peers, size_t n_peers);

/* Every loop turn: log a leader change. True when the leader or the term
 * changed since the last call (the caller re-routes forwards then). */
bool p2praft__health_check(struct p2praft_node *n);

/* Loop timer: probe unreachable peers, log what is due. */
void p2praft__health_tick(struct p2praft_node *n, uint64_t now);

/* Peers reachable now (connected), of n_peers. */
size_t p2praft__health_reachable(struct p2praft_node *n);

/* The loop ran dry (no probe pending): free. */
void p2praft__health_free(struct p2praft_node *n);

#endif
