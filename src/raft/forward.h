/*
 * Forwarding (forward.c), both sides of P2PRAFT_FORWARD_PROTOCOL: a
 * follower sends a request it cannot serve to the leader, and the leader
 * serves such requests from member peers.
 */
#ifndef P2PRAFT_RAFT_FORWARD_H
#define P2PRAFT_RAFT_FORWARD_H

#include <stdint.h>

#include "util/list.h"
#include "util/ratelog.h"

struct lp2p_peer_id;
struct p2praft_node;
struct p2praft__req;

/* The node's forwarding state. */
struct p2praft__forward {
    struct lp2p__list served;   /* incoming streams being served */
    struct lp2p__list attempts; /* outgoing attempts (struct p2praft__fwd) */
    unsigned n_served;
    uint64_t forwarded;  /* requests sent to a leader */
    uint64_t served_fwd; /* requests received from followers */
    /* streams refused: from non-members (reset), beyond MAX_SERVED (BUSY) */
    struct lp2p__ratelog refused_member, refused_busy;
};

void p2praft__forward_init(struct p2praft__forward *f);

/* Client side: send `r` to the peer `leader` (a peer ID string, borrowed)
 * over one new stream; the answer (or the retry, or the error) comes back
 * into the request state machine. */
void p2praft__forward_send(struct p2praft__req *r, const char *leader);

/* Client side: the request `r` lets go of its attempt, if any (its stream
 * is reset). */
void p2praft__forward_abort(struct p2praft__req *r);

/* Client side: a newer leader (higher term, another peer) is known: move
 * the requests still waiting on an older one over to it, or answer a
 * write already sent UNKNOWN. Cheap when nothing is forwarded. */
void p2praft__forward_reroute(struct p2praft_node *n);

/* The loop ran dry: free what is left of the attempts. */
void p2praft__forward_free_all(struct p2praft_node *n);

/* Refusals are logged at most once per this many ms, with their count. */
#define P2PRAFT__REFUSAL_LOG_MS 10000

/* A stream of `protocol` from `peer` refused (for the reason `why`): count
 * it in `rl`, and log at a bounded rate with the count. Shared by the
 * forward and client protocols. */
void p2praft__refused_stream(struct p2praft_node *n, struct lp2p__ratelog *rl,
                             const char *protocol,
                             const struct lp2p_peer_id *peer, const char *why);

/* From the loop timer: log the refusals of `protocol` that `rl` held back,
 * if their line is due. */
void p2praft__refused_tick(struct lp2p__ratelog *rl, uint64_t now,
                           const char *protocol, const char *why);

/* Leader side, from the loop timer: log refusals held back. */
void p2praft__forward_tick(struct p2praft_node *n, uint64_t now);

/* Leader side: serve the protocol on the node's host. 0 or a host error. */
int p2praft__forward_serve(struct p2praft_node *n);

/* Leader side: take no new streams (before raft closes). */
void p2praft__forward_unserve(struct p2praft_node *n);

/* Leader side: reset the streams still being served (raft is closed). */
void p2praft__forward_drop_served(struct p2praft_node *n);

#endif
