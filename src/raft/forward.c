/*
 * Forwarding over P2PRAFT_FORWARD_PROTOCOL, one libp2p stream per request.
 *
 * Client side (a follower): p2praft__forward_send() opens a stream to the
 * peer raft names as leader, writes the request (a consistent GET goes as a
 * BARRIER), closes its write side and reads one response. OK, NOT FOUND and
 * MISMATCH carry the leader's raft index: the request then waits until this
 * node applied that far. NOT LEADER, or a stream that cannot be opened or
 * written, means nothing was submitted: retry. A stream lost after the
 * write leaves a write's outcome unknown (TIMED OUT); a barrier is simply
 * retried. The stream's open, write and close each count in r->pending.
 *
 * Leader side: only peers the raft transport admits (members) may open the
 * protocol, at most MAX_SERVED at a time. Each stream carries one request,
 * served with local_only set (never forwarded again: a leader that lost
 * leadership answers NOT LEADER); the stream owns its request through the
 * req owner interface and is closed after the answer is written.
 */
#include <string.h>

#include "raft/forward.h"
#include "raft/node.h"
#include "raft/req.h"
#include "util/heap.h"
#include "util/log.h"

#define MODULE "node"
#define MAX_SERVED 256

void p2praft__forward_init(struct p2praft__forward *f)
{
    memset(f, 0, sizeof(*f));
    lp2p__list_init(&f->served);
}

/* ---- client side --------------------------------------------------------- */

static void fwd_closed(struct lp2p_stream *s, void *data)
{
    struct p2praft__req *r = data;
    (void)s;
    r->pending--;
    p2praft__req_maybe_free(r);
}

static void fwd_end(struct p2praft__req *r)
{
    struct lp2p_stream *s = r->fwd;
    if (s != NULL) {
        r->fwd = NULL;
        lp2p_stream_close(s, fwd_closed, r);
    }
}

void p2praft__forward_abort(struct p2praft__req *r)
{
    if (r->fwd != NULL) {
        lp2p_stream_reset(r->fwd);
        fwd_end(r);
    }
}

static void fwd_written(struct lp2p_stream *s, int status, void *data)
{
    struct p2praft__req *r = data;
    (void)s;
    (void)status; /* a failed write shows up on the read side */
    r->pending--;
    lp2p__free(r->fwd_out);
    r->fwd_out = NULL;
    p2praft__req_maybe_free(r);
}

static void fwd_response(struct p2praft__req *r, const uint8_t *body,
                         size_t len)
{
    struct p2praft__api_resp a;
    if (p2praft__api_response_parse(&a, body, len) != 0) {
        p2praft__req_error(r, P2PRAFT_API_ERROR,
                           "malformed answer from the leader");
        return;
    }
    r->index = a.index;
    switch (a.status) {
    case P2PRAFT_API_OK:
    case P2PRAFT_API_NOTFOUND:
    case P2PRAFT_API_MISMATCH:
        r->result = a.status;
        p2praft__req_wait_applied(r);
        return;
    case P2PRAFT_API_NOTLEADER:
        p2praft__req_retry(r);
        return;
    default:
        p2praft__req_reply(r, a.status, a.payload, a.len);
        return;
    }
}

static void fwd_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                     size_t len)
{
    struct p2praft__req *r = lp2p_stream_data(s);
    uint32_t flen = 0;
    int rv;
    if (r->phase == P2PRAFT__REQ_DONE) {
        fwd_end(r);
        return;
    }
    if (status == 0) {
        if (lp2p__buf_append(&r->fwd_in, buf, len) != 0) {
            fwd_end(r);
            p2praft__req_error(r, P2PRAFT_API_ERROR, "out of memory");
            return;
        }
        rv = p2praft__api_frame(r->fwd_in.data, r->fwd_in.len, &flen);
        if (rv == LP2P_ETOOBIG) {
            fwd_end(r);
            p2praft__req_error(r, P2PRAFT_API_ERROR,
                               "oversized answer from leader");
        } else if (rv == 0) {
            lp2p_stream_read_stop(s);
            fwd_end(r);
            fwd_response(r, r->fwd_in.data + P2PRAFT__API_PREFIX, flen);
        }
        return;
    }
    fwd_end(r);
    if (r->q.op == P2PRAFT_API_GET) {
        p2praft__req_retry(r); /* a barrier may be repeated */
        return;
    }
    p2praft__req_error(
        r, P2PRAFT_API_TIMEDOUT,
        "lost the leader while forwarding (%s): the outcome is unknown",
        lp2p_strerror(status));
}

/* The request as it goes to the leader: a consistent GET is a BARRIER. */
static uint8_t *encode_forward(const struct p2praft__req *r, size_t *len)
{
    struct p2praft__api_req q = r->q;
    if (q.op == P2PRAFT_API_GET) {
        q.op = P2PRAFT_API_BARRIER;
        q.flags = 0;
    }
    return p2praft__api_request_encode(&q, len);
}

static void fwd_opened(struct lp2p_stream *s, int status, void *data)
{
    struct p2praft__req *r = data;
    size_t len = 0;
    uint64_t now;
    r->pending--;
    if (status != 0 || r->phase == P2PRAFT__REQ_DONE) {
        if (s != NULL) {
            r->pending++;
            lp2p_stream_close(s, fwd_closed, r);
        }
        if (r->phase != P2PRAFT__REQ_DONE) {
            LOG_DEBUG(MODULE, "cannot reach the leader: %s",
                      lp2p_strerror(status));
            p2praft__req_retry(r); /* nothing was sent */
        }
        p2praft__req_maybe_free(r);
        return;
    }
    r->pending++; /* until the close callback */
    r->fwd = s;
    lp2p_stream_set_data(s, r);
    r->fwd_out = encode_forward(r, &len);
    if (r->fwd_out == NULL) {
        fwd_end(r);
        p2praft__req_error(r, P2PRAFT_API_ERROR, "out of memory");
        return;
    }
    now = uv_now(&r->node->loop);
    lp2p_stream_set_deadline(s, r->deadline > now ? r->deadline - now : 1);
    if (lp2p_stream_write(s, r->fwd_out, len, fwd_written, r) != 0) {
        lp2p__free(r->fwd_out);
        r->fwd_out = NULL;
        fwd_end(r);
        p2praft__req_retry(r);
        return;
    }
    r->pending++;
    r->node->fwd.forwarded++;
    lp2p_stream_close_write(s);
    lp2p_stream_read_start(s, fwd_read);
}

void p2praft__forward_send(struct p2praft__req *r, const char *leader)
{
    static const char *const protos[] = {P2PRAFT_FORWARD_PROTOCOL};
    struct lp2p_peer_id pid;
    int rv;
    if (lp2p_peer_id_parse(&pid, leader) != 0) {
        p2praft__req_error(r, P2PRAFT_API_ERROR,
                           "leader address '%s' is no peer ID", leader);
        return;
    }
    lp2p__buf_free(&r->fwd_in);
    lp2p__buf_init(&r->fwd_in);
    rv = lp2p_stream_open(r->node->host, &pid, protos, 1, fwd_opened, r);
    if (rv != 0) {
        p2praft__req_retry(r);
        return;
    }
    r->pending++;
    r->phase = P2PRAFT__REQ_BUSY;
}

/* ---- leader side --------------------------------------------------------- */

/* One incoming stream: it owns at most one request. */
struct served {
    struct lp2p__list link; /* in node->fwd.served */
    struct p2praft_node *node;
    struct lp2p_stream *stream;
    struct lp2p_buf in;
    struct p2praft__req *cur;
    uint8_t *out;
    bool writing, closed;
};

static void served_closed(struct lp2p_stream *s, void *data)
{
    struct served *f = data;
    (void)s;
    if (f->writing) {
        f->closed = true; /* freed by the write callback */
        return;
    }
    lp2p__list_remove(&f->link);
    f->node->fwd.n_served--;
    lp2p__buf_free(&f->in);
    lp2p__free(f->out);
    lp2p__free(f);
}

static void served_end(struct served *f)
{
    if (f->stream != NULL) {
        struct lp2p_stream *s = f->stream;
        f->stream = NULL;
        if (f->cur != NULL) {
            p2praft__req_detach(f->cur);
            f->cur = NULL;
        }
        lp2p_stream_close(s, served_closed, f);
    }
}

static void served_written(struct lp2p_stream *s, int status, void *data)
{
    struct served *f = data;
    (void)s;
    (void)status;
    f->writing = false;
    lp2p__free(f->out);
    f->out = NULL;
    if (f->closed) {
        f->closed = false;
        served_closed(NULL, f);
    }
}

/* The req owner interface: write the answer, then close. */
static void served_reply(void *owner, uint8_t *frame, size_t len)
{
    struct served *f = owner;
    f->cur = NULL;
    if (f->stream == NULL || frame == NULL) {
        lp2p__free(frame);
        served_end(f);
        return;
    }
    f->out = frame;
    if (lp2p_stream_write(f->stream, frame, len, served_written, f) == 0) {
        f->writing = true;
    } else {
        lp2p__free(f->out);
        f->out = NULL;
    }
    served_end(f);
}

static const struct p2praft__req_owner_ops served_owner = {served_reply};

static void served_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                        size_t len)
{
    struct served *f = lp2p_stream_data(s);
    uint32_t flen = 0;
    struct p2praft__req *r;
    char err[256];
    int rv;
    if (status != 0) {
        served_end(f);
        return;
    }
    if (lp2p__buf_append(&f->in, buf, len) != 0) {
        lp2p_stream_reset(s);
        served_end(f);
        return;
    }
    rv = p2praft__api_frame(f->in.data, f->in.len, &flen);
    if (rv == LP2P_ETOOBIG) {
        LOG_WARN(MODULE, "oversized forward request: reset");
        lp2p_stream_reset(s);
        served_end(f);
        return;
    }
    if (rv != 0) {
        return;
    }
    lp2p_stream_read_stop(s);
    r = p2praft__req_new(f->node, &served_owner, f);
    if (r == NULL) {
        lp2p_stream_reset(s);
        served_end(f);
        return;
    }
    r->local_only = true;
    f->cur = r;
    f->node->fwd.served_fwd++;
    if (p2praft__api_request_parse(&r->q, f->in.data + P2PRAFT__API_PREFIX,
                                   flen, err, sizeof(err)) != 0) {
        p2praft__req_reply(r, P2PRAFT_API_BADREQ, err, strlen(err));
        return;
    }
    if (r->q.op != P2PRAFT_API_BARRIER && !p2praft__req_is_write(r->q.op)) {
        p2praft__req_error(r, P2PRAFT_API_BADREQ,
                           "operation %u is not forwarded", r->q.op);
        return;
    }
    p2praft__req_step(r);
}

static void handler(struct lp2p_stream *s, void *data)
{
    struct p2praft_node *n = data;
    const struct lp2p_peer_id *peer = lp2p_stream_peer(s);
    struct served *f;
    if (n->stopping || !p2praft_transport_admits(&n->transport, peer) ||
        n->fwd.n_served >= MAX_SERVED) {
        char id[LP2P_PEER_ID_STRMAX];
        lp2p_peer_id_to_string(peer, id, sizeof(id));
        LOG_WARN(MODULE, "forward stream from %s refused (%s)", id,
                 n->fwd.n_served >= MAX_SERVED ? "too many" : "not a member");
        lp2p_stream_reset(s);
        lp2p_stream_close(s, NULL, NULL);
        return;
    }
    f = lp2p__calloc(1, sizeof(*f));
    if (f == NULL) {
        lp2p_stream_reset(s);
        lp2p_stream_close(s, NULL, NULL);
        return;
    }
    f->node = n;
    f->stream = s;
    lp2p__buf_init(&f->in);
    lp2p__list_insert_head(&n->fwd.served, &f->link);
    n->fwd.n_served++;
    lp2p_stream_set_data(s, f);
    lp2p_stream_set_deadline(s, (uint64_t)n->cfg.timeout_ms + 1000);
    lp2p_stream_read_start(s, served_read);
}

int p2praft__forward_serve(struct p2praft_node *n)
{
    return lp2p_host_set_handler(n->host, P2PRAFT_FORWARD_PROTOCOL, NULL,
                                 handler, n);
}

void p2praft__forward_unserve(struct p2praft_node *n)
{
    if (n->host != NULL) {
        lp2p_host_remove_handler(n->host, P2PRAFT_FORWARD_PROTOCOL);
    }
}

void p2praft__forward_drop_served(struct p2praft_node *n)
{
    struct lp2p__list *q, *next;
    LP2P__LIST_FOREACH_SAFE(q, next, &n->fwd.served) {
        struct served *f = LP2P__CONTAINER_OF(q, struct served, link);
        if (f->stream != NULL) {
            lp2p_stream_reset(f->stream);
        }
        served_end(f);
    }
}
