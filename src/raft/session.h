/*
 * One client connection of the node's API (session.c), whatever carries
 * it: the unix socket (api_server.c) or a libp2p stream of the client
 * protocol (clientproto.c). A session reads request frames, runs them at
 * once, several at a time (req.c; watches: watch.c), and writes their
 * answers as they complete, each with its request's id.
 */
#ifndef P2PRAFT_RAFT_SESSION_H
#define P2PRAFT_RAFT_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "raft/apiconn.h"
#include "util/list.h"

struct p2praft_node;
struct p2praft__session;

/* Bytes of answers and events a connection may have waiting to be written
 * (not yet taken by the kernel or the libp2p connection): past it, a read
 * (GET, LS) is answered BUSY instead of with its value and watch events
 * are counted as dropped, so that a client that does not read its answers
 * holds at most this much (and one more frame) of the node's memory. */
#define P2PRAFT__SESSION_OUT_MAX (16 * 1024 * 1024)

/* Frame kinds, for the session's bookkeeping (apiconn on_sent). */
enum {
    P2PRAFT__FRAME_ANSWER = 1, /* the answer of a request in flight */
    P2PRAFT__FRAME_EXTRA = 2,  /* an answer outside the bound (BUSY, ...) */
    P2PRAFT__FRAME_EVENT = 3   /* a watch event (ptr: the watch) */
};

/* The holder of a session (a server): told when the session starts to
 * close (its slot may be given to another) and when it is freed (take it
 * out of any list; the session is freed right after). */
struct p2praft__session_owner {
    void (*closing)(struct p2praft__session *s);
    void (*freed)(struct p2praft__session *s);
};

struct p2praft__session {
    struct lp2p__list link; /* in its holder's list */
    struct p2praft_node *node;
    const struct p2praft__session_owner *owner;
    void *owner_data;
    struct p2praft__apiconn conn;
    struct lp2p__list reqs;    /* its requests running (p2praft__req.olink) */
    struct lp2p__list watches; /* its watches (struct p2praft__watch) */
    /* Requests and watches running, and answers being written: the bound
     * of cfg.api_max_inflight. */
    unsigned inflight;
    unsigned extra; /* answers outside the bound being written */
    uint64_t last;  /* loop time of the last activity */
    bool half_closed; /* the client sent EOF: close once all is answered */
    bool closing;
};

/* A new session of `n` held by `owner`, not yet on any transport: the
 * caller sets up s->conn with p2praft__session_conn_ops (data: s), then
 * calls p2praft__session_start(). NULL when out of memory. */
struct p2praft__session *p2praft__session_new(
    struct p2praft_node *n, const struct p2praft__session_owner *owner,
    void *owner_data);
extern const struct p2praft__apiconn_ops p2praft__session_conn_ops;

/* Start reading requests. */
void p2praft__session_start(struct p2praft__session *s);

/* Close: requests still running are let go (their answers dropped),
 * watches end. Graceful: what was already queued is still written. The
 * session is freed once its connection closed (owner->freed). */
void p2praft__session_close(struct p2praft__session *s, bool graceful);

/* Send a frame (owned; NULL: out of memory, which closes the session)
 * of `kind` (P2PRAFT__FRAME_*; ptr: the watch of an EVENT or of a watch's
 * ANSWER). An ANSWER frees its in-flight slot once written. Returns false
 * when the frame could not be queued (freed; the slot, if any, is freed
 * at once). */
bool p2praft__session_send(struct p2praft__session *s, uint8_t *frame,
                           size_t len, int kind, void *ptr);

/* Loop timer: close the session if it has been idle for
 * cfg.api_idle_ms. */
void p2praft__session_tick(struct p2praft__session *s, uint64_t now);

#endif
