/*
 * A client connection of the node's API (see session.h).
 *
 * Happy path: each request frame is parsed and started at once (req.c; a
 * WATCH in watch.c), so many run at the same time; each answer is written
 * as soon as it comes, with the request's id, in whatever order they
 * complete. A request holds one of the connection's cfg.api_max_inflight
 * slots from the moment it is read until its answer is written (so that
 * answers a slow reader leaves unread stay bounded too), and one of the
 * node's cfg.api_max_requests until it is freed (so that requests let go
 * by closed connections count until they end).
 *
 * Refusals: beyond either bound, a request is answered BUSY at once (not
 * started). A read whose answer would take the bytes waiting to be
 * written past P2PRAFT__SESSION_OUT_MAX is answered BUSY instead (not
 * served). A request not allowed here (BARRIER) is answered BAD REQUEST;
 * the connection goes on. What cannot be read safely ends the connection
 * after one BAD REQUEST: a malformed body, a frame over the limit, id 0 or
 * an id already in flight, another API version (a version-1 client is
 * answered in version 1, so that it can say why). Answers outside the
 * bound (BUSY, BAD REQUEST, UNWATCH's) are counted in `extra`; a client
 * that floods requests without reading them is no longer read from until
 * they drain.
 *
 * Closing: when the client closes its side, its watches end and the
 * session closes once every running request is answered. When the
 * connection fails, when the session is idle for cfg.api_idle_ms, or when
 * the node stops, it closes at once: running requests are let go (they
 * run to their end, their answers dropped; req.c), watches end. Each
 * request is answered at most once, by its own reply.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "raft/api.h"
#include "raft/node.h"
#include "raft/req.h"
#include "raft/session.h"
#include "raft/watch.h"
#include "util/heap.h"
#include "util/log.h"

#define MODULE "node"

static struct p2praft__session *of_conn(struct p2praft__apiconn *c)
{
    return LP2P__CONTAINER_OF(c, struct p2praft__session, conn);
}

/* Close once nothing is left to answer, if the client closed its side. */
static void maybe_finish(struct p2praft__session *s)
{
    if (s->half_closed && !s->closing && s->inflight == 0) {
        p2praft__session_close(s, true);
    }
}

bool p2praft__session_send(struct p2praft__session *s, uint8_t *frame,
                           size_t len, int kind, void *ptr)
{
    if (frame == NULL) {
        /* Out of memory for an answer: the client cannot be told, and
         * must not wait for ever. Closing tells it (no answer). */
        if (kind == P2PRAFT__FRAME_ANSWER) {
            s->inflight--;
        }
        p2praft__session_close(s, false);
        return false;
    }
    if (p2praft__apiconn_send(&s->conn, frame, len, false, kind, ptr) != 0) {
        if (kind == P2PRAFT__FRAME_ANSWER) {
            s->inflight--;
        }
        return false;
    }
    if (kind == P2PRAFT__FRAME_EXTRA) {
        s->extra++;
        /* A client that sends and does not read: stop reading it. */
        if (s->extra >= s->node->cfg.api_max_inflight) {
            p2praft__apiconn_read_stop(&s->conn);
        }
    }
    return true;
}

/* Answer request `id` outside the bound. */
static void answer_extra(struct p2praft__session *s, uint8_t status,
                         uint32_t id, const char *msg, const void *payload,
                         size_t plen)
{
    size_t len = 0;
    uint8_t *f;
    if (msg != NULL) {
        payload = msg;
        plen = strlen(msg);
    }
    f = p2praft__api_response_encode(status, id, 0, payload, plen, &len);
    p2praft__session_send(s, f, len, P2PRAFT__FRAME_EXTRA, NULL);
}

/* A request that cannot be read safely: answer it (in the client's
 * version), then close. */
static void protocol_error(struct p2praft__session *s,
                           const struct p2praft__api_req *q, const char *msg)
{
    if (q != NULL && q->version != P2PRAFT__API_VERSION &&
        q->version == P2PRAFT__API_VERSION_1) {
        size_t len = 0;
        uint8_t *f = p2praft__api_v1_answer_encode(P2PRAFT_API_BADREQ, msg,
                                                   &len);
        p2praft__session_send(s, f, len, P2PRAFT__FRAME_EXTRA, NULL);
    } else {
        answer_extra(s, P2PRAFT_API_BADREQ, q != NULL ? q->id : 0, msg, NULL,
                     0);
    }
    p2praft__apiconn_read_stop(&s->conn);
    p2praft__session_close(s, true);
}

/* ---- the req owner interface ------------------------------------------- */

static void session_reply(void *owner, struct p2praft__req *r, uint8_t *frame,
                          size_t len)
{
    struct p2praft__session *s = owner;
    lp2p__list_remove(&r->olink);
    if (frame != NULL && (r->q.op == P2PRAFT_API_GET ||
                          r->q.op == P2PRAFT_API_LS) &&
        s->conn.pending_bytes + len > P2PRAFT__SESSION_OUT_MAX) {
        /* A client that does not read what it asked for: a read may be
         * refused (BUSY: not served) rather than buffered. */
        char msg[160];
        lp2p__free(frame);
        snprintf(msg, sizeof(msg),
                 "busy: %zu bytes of answers wait for this client to read "
                 "them; not served",
                 s->conn.pending_bytes);
        s->node->api_busy++;
        frame = p2praft__api_response_encode(P2PRAFT_API_BUSY, r->q.id, 0, msg,
                                             strlen(msg), &len);
    }
    /* The slot stays taken until the answer is written. */
    p2praft__session_send(s, frame, len, P2PRAFT__FRAME_ANSWER, NULL);
}

static const struct p2praft__req_owner_ops session_owner = {session_reply};

/* ---- requests ------------------------------------------------------------ */

static bool id_in_flight(struct p2praft__session *s, uint32_t id)
{
    struct lp2p__list *q, *next;
    LP2P__LIST_FOREACH_SAFE(q, next, &s->reqs) {
        struct p2praft__req *r = LP2P__CONTAINER_OF(q, struct p2praft__req,
                                                    olink);
        if (r->q.id == id) {
            return true;
        }
    }
    return p2praft__watch_find(s, id) != NULL;
}

/* Over a bound? Then answer BUSY and return true. */
static bool refuse_busy(struct p2praft__session *s, uint32_t id)
{
    struct p2praft_node *n = s->node;
    char msg[160];
    if (s->inflight >= n->cfg.api_max_inflight) {
        snprintf(msg, sizeof(msg),
                 "busy: %u requests in flight on this connection "
                 "(api_max_inflight); not started",
                 s->inflight);
    } else if (n->api_reqs + n->n_watches >= n->cfg.api_max_requests) {
        snprintf(msg, sizeof(msg),
                 "busy: %u requests in flight on this node "
                 "(api_max_requests); not started",
                 n->api_reqs + n->n_watches);
    } else {
        return false;
    }
    n->api_busy++;
    answer_extra(s, P2PRAFT_API_BUSY, id, msg, NULL, 0);
    return true;
}

static void on_frame(struct p2praft__apiconn *c, const uint8_t *body,
                     size_t len)
{
    struct p2praft__session *s = of_conn(c);
    struct p2praft_node *n = s->node;
    struct p2praft__api_req q;
    struct p2praft__req *r;
    char err[300];
    memset(&q, 0, sizeof(q));
    s->last = uv_now(&n->loop);
    if (p2praft__api_request_parse(&q, body, len, err, sizeof(err)) != 0) {
        protocol_error(s, &q, err);
        goto out;
    }
    if (q.id == 0) {
        protocol_error(s, &q, "request id 0 is reserved");
        goto out;
    }
    if (id_in_flight(s, q.id)) {
        snprintf(err, sizeof(err), "request id %" PRIu32
                                   " is already in flight on this connection",
                 q.id);
        protocol_error(s, &q, err);
        goto out;
    }
    switch (q.op) {
    case P2PRAFT_API_BARRIER:
    case P2PRAFT_API_REMOVED:
        answer_extra(s, P2PRAFT_API_BADREQ, q.id,
                     q.op == P2PRAFT_API_BARRIER
                         ? "BARRIER is for the forward protocol"
                         : "REMOVED is for the forward protocol",
                     NULL, 0);
        goto out;
    case P2PRAFT_API_HELLO:
        answer_extra(s, P2PRAFT_API_OK, q.id, NULL, n->self, strlen(n->self));
        goto out;
    case P2PRAFT_API_UNWATCH: {
        struct p2praft__watch *w = p2praft__watch_find(s, q.target);
        if (w == NULL) {
            answer_extra(s, P2PRAFT_API_NOTFOUND, q.id,
                         "no such watch on this connection", NULL, 0);
        } else {
            p2praft__watch_end(w, true, P2PRAFT_API_OK, "");
            answer_extra(s, P2PRAFT_API_OK, q.id, NULL, NULL, 0);
        }
        goto out;
    }
    default:
        break;
    }
    if (refuse_busy(s, q.id)) {
        goto out;
    }
    if (q.op == P2PRAFT_API_WATCH) {
        if (p2praft__watch_start(s, &q) != 0) {
            answer_extra(s, P2PRAFT_API_FAILED, q.id, "out of memory", NULL,
                         0);
        }
        goto out;
    }
    r = p2praft__req_new(n, &session_owner, s);
    if (r == NULL) {
        answer_extra(s, P2PRAFT_API_FAILED, q.id, "out of memory", NULL, 0);
        goto out;
    }
    r->q = q; /* taken */
    memset(&q, 0, sizeof(q));
    r->api_counted = true;
    n->api_reqs++;
    s->inflight++;
    lp2p__list_insert_tail(&s->reqs, &r->olink);
    p2praft__req_step(r);
out:
    p2praft__api_req_release(&q);
}

static void on_end(struct p2praft__apiconn *c, int status)
{
    struct p2praft__session *s = of_conn(c);
    struct lp2p__list *q, *next;
    if (status == LP2P_ETOOBIG) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "request of %" PRIu32 " bytes exceeds the limit of %d",
                 c->too_big, P2PRAFT_API_FRAME_MAX);
        protocol_error(s, NULL, msg);
        return;
    }
    if (status != LP2P_EEOF) {
        p2praft__session_close(s, false);
        return;
    }
    /* The client is done sending: answer what runs; watches never end on
     * their own, so they end now. */
    s->half_closed = true;
    LP2P__LIST_FOREACH_SAFE(q, next, &s->watches) {
        struct p2praft__watch *w = LP2P__CONTAINER_OF(q, struct p2praft__watch,
                                                      slink);
        if (w->live) {
            p2praft__watch_end(w, false, 0, NULL);
        }
    }
    maybe_finish(s);
}

static void on_sent(struct p2praft__apiconn *c, int kind, void *ptr,
                    size_t len, int status)
{
    struct p2praft__session *s = of_conn(c);
    (void)status;
    switch (kind) {
    case P2PRAFT__FRAME_ANSWER:
        s->inflight--;
        if (ptr != NULL) {
            p2praft__watch_sent(ptr, false, len);
        }
        break;
    case P2PRAFT__FRAME_EXTRA:
        s->extra--;
        if (s->extra == s->node->cfg.api_max_inflight / 2 && !s->closing &&
            !s->half_closed) {
            p2praft__apiconn_read_start(&s->conn);
        }
        break;
    case P2PRAFT__FRAME_EVENT:
        p2praft__watch_sent(ptr, true, len);
        break;
    default:
        break;
    }
    s->last = uv_now(&s->node->loop);
    maybe_finish(s);
}

static void on_closed(struct p2praft__apiconn *c)
{
    struct p2praft__session *s = of_conn(c);
    s->owner->freed(s);
    p2praft__watch_free_all(s);
    lp2p__free(s);
}

const struct p2praft__apiconn_ops p2praft__session_conn_ops = {
    on_frame, on_end, on_sent, on_closed};

/* ---- lifecycle ----------------------------------------------------------- */

struct p2praft__session *p2praft__session_new(
    struct p2praft_node *n, const struct p2praft__session_owner *owner,
    void *owner_data)
{
    struct p2praft__session *s = lp2p__calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->node = n;
    s->owner = owner;
    s->owner_data = owner_data;
    lp2p__list_init(&s->link);
    lp2p__list_init(&s->reqs);
    lp2p__list_init(&s->watches);
    s->last = uv_now(&n->loop);
    return s;
}

void p2praft__session_start(struct p2praft__session *s)
{
    p2praft__apiconn_read_start(&s->conn);
}

void p2praft__session_close(struct p2praft__session *s, bool graceful)
{
    struct lp2p__list *q, *next;
    if (s->closing) {
        if (!graceful) {
            p2praft__apiconn_close(&s->conn, false);
        }
        return;
    }
    s->closing = true;
    s->owner->closing(s);
    /* Running requests go on without us: their answers are dropped. */
    LP2P__LIST_FOREACH_SAFE(q, next, &s->reqs) {
        struct p2praft__req *r = LP2P__CONTAINER_OF(q, struct p2praft__req,
                                                    olink);
        lp2p__list_remove(&r->olink);
        p2praft__req_detach(r);
        s->inflight--;
    }
    LP2P__LIST_FOREACH_SAFE(q, next, &s->watches) {
        struct p2praft__watch *w = LP2P__CONTAINER_OF(q, struct p2praft__watch,
                                                      slink);
        if (w->live) {
            p2praft__watch_end(w, false, 0, NULL);
        }
    }
    p2praft__apiconn_close(&s->conn, graceful);
}

void p2praft__session_tick(struct p2praft__session *s, uint64_t now)
{
    if (!s->closing && s->inflight == 0 && s->extra == 0 &&
        now - s->last >= s->node->cfg.api_idle_ms) {
        p2praft__session_close(s, true);
    }
}
