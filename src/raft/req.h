/*
 * The node's request state machine (req.c): one client request, from
 * whichever side it came (API socket, forward stream, blocking call), until
 * it is answered and nothing it started is pending.
 */
#ifndef P2PRAFT_RAFT_REQ_H
#define P2PRAFT_RAFT_REQ_H

#include <stdbool.h>
#include <stdint.h>

#include "raft/api.h"
#include "util/list.h"

struct p2praft_node;
struct p2praft__fwd;

enum p2praft__req_phase {
    P2PRAFT__REQ_NEW = 0,
    P2PRAFT__REQ_RETRY,   /* waiting for retry_at */
    P2PRAFT__REQ_BUSY,    /* commit, barrier or forward in flight */
    P2PRAFT__REQ_APPLIED, /* waiting for the local applied index to reach
                           * `index` */
    P2PRAFT__REQ_DONE
};

/*
 * Who asked, and receives the answer. The socket server, the forward
 * handler and the blocking call each provide one: the request knows no
 * more about them than this.
 */
struct p2praft__req_owner_ops {
    /* The request `r` answered. `frame` is the whole response frame, prefix
     * included (owned: free it with lp2p__free), or NULL when it could not
     * be built (out of memory). Runs once, on the loop thread; the request
     * forgets its owner at this point (r stays valid during the call). */
    void (*reply)(void *owner, struct p2praft__req *r, uint8_t *frame,
                  size_t len);
};

struct p2praft__req {
    struct lp2p__list link; /* in node->reqs */
    struct p2praft_node *node;
    const struct p2praft__req_owner_ops *owner_ops;
    void *owner; /* NULL once detached or answered */
    struct lp2p__list olink; /* the owner's to use (a session's list) */
    /* Counted in node->api_reqs (a client connection's request) until it
     * is freed, answered or not: the node-wide bound. */
    bool api_counted;
    struct p2praft__api_req q;
    bool local_only; /* came over the forward protocol: never forward */
    enum p2praft__req_phase phase;
    uint64_t deadline, retry_at;
    uint64_t t0_us; /* when it arrived (uv_hrtime, microseconds) */
    uint64_t index;
    uint8_t result; /* response status once known */
    unsigned pending; /* callbacks still to come (the commit) */
    /* A write handed to raft or to a leader's stream: from then on only
     * an answer tells its outcome, and none means UNKNOWN. */
    bool maybe_applied;
    /* The forwarding attempt in flight (forward.c), or NULL. */
    struct p2praft__fwd *fwd;
};

/* A new request of `owner` (borrowed until reply or detach), with the
 * node's timeout, in node->reqs. NULL when out of memory. The caller fills
 * r->q (e.g. by p2praft__api_request_parse) and runs p2praft__req_step(). */
struct p2praft__req *p2praft__req_new(struct p2praft_node *n,
                                      const struct p2praft__req_owner_ops *ops,
                                      void *owner);

/* The owner goes away: the answer, when it comes, is dropped. */
void p2praft__req_detach(struct p2praft__req *r);

/* Take the request one step further (serve, commit, forward or retry). */
void p2praft__req_step(struct p2praft__req *r);

/* Answer `r` once (later calls are ignored) and free it when nothing is
 * pending. `payload` is borrowed. */
void p2praft__req_reply(struct p2praft__req *r, uint8_t status,
                        const void *payload, size_t len);
void p2praft__req_error(struct p2praft__req *r, uint8_t status,
                        const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Nothing was submitted: try again in a moment (until the deadline). */
void p2praft__req_retry(struct p2praft__req *r);

/* The request ended without its outcome: UNKNOWN for a write that may
 * have been applied (r->maybe_applied), FAILED otherwise; `why` (borrowed)
 * is the message. */
void p2praft__req_fail(struct p2praft__req *r, const char *why);

/* The outcome is known at r->index: answer once it is applied here. */
void p2praft__req_wait_applied(struct p2praft__req *r);

/* Free `r` if it answered and nothing is pending (after a pending-- ). */
void p2praft__req_maybe_free(struct p2praft__req *r);

/* Is op a write (SET, DEL, CAS)? */
#define p2praft__req_is_write p2praft__api_is_write

/* Serve an operator request (p2praft__api_is_operator(): SNAPSHOT,
 * METRICS, HEALTH; CLUSTER on the leader) from the node's own state
 * (ops.c). CLUSTER on a follower is forwarded instead (req_step). */
void p2praft__req_serve_operator(struct p2praft__req *r);

/* May op change something once submitted (a write, a configuration
 * change)? Then a lost answer means UNKNOWN, and it is never re-sent. */
#define p2praft__req_may_apply(op)                                            \
    (p2praft__api_is_write(op) || p2praft__api_is_change(op))

/* Loop timer: deadlines and retries of every request. */
void p2praft__reqs_tick(struct p2praft_node *n, uint64_t now);

/* Loop check: answer the requests whose applied-index wait is over. */
void p2praft__reqs_check_applied(struct p2praft_node *n);

/* Shutting down: drop the forwards, answer every request with an error. */
void p2praft__reqs_shutdown(struct p2praft_node *n);

/* Until the node has caught up (node.h): keep one internal barrier
 * request going, whose completion marks it caught up. */
void p2praft__reqs_catch_up(struct p2praft_node *n);

/* A raft message arrived (before raft sees it): note the commit index a
 * leader's AppendEntries carries, for the catch-up on the hashicorp wire. */
void p2praft__reqs_observe(struct p2praft_node *n,
                           const struct raft_message *m);

/* The loop ran dry: free what is left. */
void p2praft__reqs_free_all(struct p2praft_node *n);

#endif
