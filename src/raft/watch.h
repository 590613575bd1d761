/*
 * Watches (watch.c): a session's WATCH requests, fed by the node's update
 * subscription on the consensus (p2praft_consensus_subscribe_updates()).
 * Each watch has a bounded queue; what does not fit is counted and
 * reported as one DROPPED event before anything later.
 */
#ifndef P2PRAFT_RAFT_WATCH_H
#define P2PRAFT_RAFT_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/api.h"
#include "util/list.h"

struct p2praft_node;
struct p2praft__session;

/* A watch's queue: event frames handed to the connection and not yet
 * written (to the kernel, or into the libp2p connection), at most this
 * many bytes and frames (but always one). */
#define P2PRAFT__WATCH_QUEUE_BYTES (4 * 1024 * 1024)
#define P2PRAFT__WATCH_QUEUE_FRAMES 1024

struct p2praft__watch {
    struct lp2p__list link;  /* in node->watches while live */
    struct lp2p__list slink; /* in its session's watches until freed */
    struct p2praft__session *s;
    uint32_t id;
    char *prefix;
    size_t plen;
    size_t queued_bytes;
    unsigned queued;      /* event frames in the queue */
    uint64_t dropped;     /* events lost since the last DROPPED event */
    bool lost_unknown;    /* a snapshot replaced the state meanwhile */
    bool live;            /* still watching (in node->watches) */
    bool answering;       /* its final answer is being written */
};

/* The node's update subscription. 0 or LP2P_ENOMEM. */
int p2praft__watches_init(struct p2praft_node *n);

/* Start the watch of request `q` (its prefix is taken: q->key becomes
 * NULL) on session `s`: it answers STARTED and follows the applies. 0, or
 * LP2P_ENOMEM (nothing started). */
int p2praft__watch_start(struct p2praft__session *s,
                         struct p2praft__api_req *q);

/* The live watch `id` of session `s`, or NULL. */
struct p2praft__watch *p2praft__watch_find(struct p2praft__session *s,
                                           uint32_t id);

/* End `w`: it stops following the applies; with `answer`, its final
 * ANSWER (status, msg) is written; without, its slot is freed at once. */
void p2praft__watch_end(struct p2praft__watch *w, bool answer, uint8_t status,
                        const char *msg);

/* A frame of `w` was written or dropped: an event (`event`) of `len`
 * bytes, or its final answer. */
void p2praft__watch_sent(struct p2praft__watch *w, bool event, size_t len);

/* The session is freed: free its watches (all ended). */
void p2praft__watch_free_all(struct p2praft__session *s);

/* Shutting down: end every watch with FAILED. */
void p2praft__watches_shutdown(struct p2praft_node *n);

#endif
