/*
 * Forwarding over P2PRAFT_FORWARD_PROTOCOL, one libp2p stream per request.
 *
 * Client side (a follower): p2praft__forward_send() starts an attempt
 * (struct p2praft__fwd) that opens a stream to the peer raft names as
 * leader, writes the request (a consistent GET goes as a BARRIER), closes
 * its write side and reads one response. OK, NOT FOUND and MISMATCH carry
 * the leader's raft index: the request then waits until this node applied
 * that far. NOT LEADER or BUSY, or a stream that cannot be opened, means
 * nothing was submitted: retry; but on the hashicorp wire a leader that
 * refuses the protocol (a Go node leading the cluster) fails the request
 * at once.
 *
 * What may be retried elsewhere and what may not: an attempt is "sent"
 * once the request was handed to the stream. Before that, and always for a
 * barrier, the request is re-routed; after it, a write may have reached
 * the leader's log, so it is answered UNKNOWN, never retried. This happens
 * when the stream breaks, and also when a newer leader shows up
 * (p2praft__forward_reroute(), from every loop turn): a leader that was
 * paused or cut off keeps its connection open, and waiting for it would
 * hold the request until its deadline while the new leader, elected in a
 * few hundred milliseconds, could serve it.
 *
 * An attempt lives on its own: it lets go of its request when it ends or
 * is abandoned (reset), and frees itself once its stream callbacks (open,
 * write, close: `pending`) have run, so an open that hangs on a paused
 * leader holds only the attempt, never the request.
 *
 * Leader side: only peers the raft transport admits (members) may open the
 * protocol, at most MAX_SERVED at a time; a member beyond that gets a BUSY
 * answer before its request is read (not a reset, which would leave the
 * outcome of a write in doubt), a non-member a reset. Refusals are counted
 * and logged at a bounded rate. Each stream carries one request, served
 * with local_only set (never forwarded again: a leader that lost
 * leadership answers NOT LEADER); the stream owns its request through the
 * req owner interface and is closed after the answer is written.
 */
#include <inttypes.h>
#include <string.h>

#include "raft/forward.h"
#include "raft/members.h"
#include "raft/node.h"
#include "raft/req.h"
#include "util/buf.h"
#include "util/heap.h"
#include "util/log.h"

#define MODULE "node"
#define MAX_SERVED 256

/* One forwarding attempt. */
struct p2praft__fwd {
    struct lp2p__list link; /* in node->fwd.attempts */
    struct p2praft_node *node;
    struct p2praft__req *r; /* NULL once it let go */
    struct lp2p_stream *s;  /* once open, until closed */
    uint8_t *out;           /* the request frame, until written */
    struct lp2p_buf in;
    char leader[LP2P_PEER_ID_STRMAX];
    raft_id leader_id;
    raft_term term; /* raft's term when the attempt started */
    bool sent;
    unsigned pending; /* open, write and close callbacks to come */
};

void p2praft__forward_init(struct p2praft__forward *f)
{
    memset(f, 0, sizeof(*f));
    lp2p__list_init(&f->served);
    lp2p__list_init(&f->attempts);
}

/* ---- client side --------------------------------------------------------- */

static void fwd_maybe_free(struct p2praft__fwd *a)
{
    if (a->r != NULL || a->pending > 0 || a->s != NULL) {
        return;
    }
    lp2p__list_remove(&a->link);
    lp2p__free(a->out);
    lp2p__buf_free(&a->in);
    lp2p__free(a);
}

static void fwd_closed(struct lp2p_stream *s, void *data)
{
    struct p2praft__fwd *a = data;
    (void)s;
    a->pending--;
    fwd_maybe_free(a);
}

/* Let go of the request, and of the stream (reset unless it ended). */
static void fwd_end(struct p2praft__fwd *a, bool reset)
{
    struct lp2p_stream *s = a->s;
    if (a->r != NULL) {
        a->r->fwd = NULL;
        a->r = NULL;
    }
    if (s != NULL) {
        a->s = NULL;
        if (reset) {
            lp2p_stream_reset(s);
        }
        a->pending++;
        lp2p_stream_close(s, fwd_closed, a);
    }
    fwd_maybe_free(a);
}

void p2praft__forward_abort(struct p2praft__req *r)
{
    if (r->fwd != NULL) {
        fwd_end(r->fwd, true);
    }
}

static void fwd_written(struct lp2p_stream *s, int status, void *data)
{
    struct p2praft__fwd *a = data;
    (void)s;
    (void)status; /* a failed write shows up on the read side */
    a->pending--;
    lp2p__free(a->out);
    a->out = NULL;
    fwd_maybe_free(a);
}

static void fwd_response(struct p2praft__req *r, const uint8_t *body,
                         size_t len)
{
    struct p2praft__api_resp ans;
    if (p2praft__api_response_parse(&ans, body, len) != 0) {
        p2praft__req_fail(r, "malformed answer from the leader");
        return;
    }
    if (ans.status == P2PRAFT_API_NOTLEADER ||
        ans.status == P2PRAFT_API_BUSY) {
        p2praft__req_retry(r); /* surely not submitted */
        return;
    }
    if (r->q.op == P2PRAFT_API_CLUSTER || p2praft__api_is_member(r->q.op)) {
        /* The leader's own answer, passed on as it is. CLUSTER: OK with
         * its view, or why it could not (BAD REQUEST from a leader that
         * predates the op). Membership: the whole outcome; a configuration
         * is not waited for here (a removed node may never apply its own
         * removal). */
        if (r->q.op != P2PRAFT_API_CLUSTER) {
            r->index = ans.index;
        }
        p2praft__req_reply(r, ans.status, ans.payload, ans.len);
        return;
    }
    if (!p2praft__req_is_write(r->q.op)) { /* GET, LS, BARRIER */
        if (ans.status != P2PRAFT_API_OK) {
            p2praft__req_retry(r); /* a barrier may be repeated */
            return;
        }
    }
    r->index = ans.index;
    switch (ans.status) {
    case P2PRAFT_API_OK:
    case P2PRAFT_API_NOTFOUND:
    case P2PRAFT_API_MISMATCH:
        r->result = ans.status;
        p2praft__req_wait_applied(r);
        return;
    case P2PRAFT_API_FAILED:
    case P2PRAFT_API_BADREQ:
    case P2PRAFT_API_UNKNOWN:
        p2praft__req_reply(r, ans.status, ans.payload, ans.len);
        return;
    default:
        p2praft__req_error(r, P2PRAFT_API_UNKNOWN,
                           "unexpected status %u from the leader: the outcome "
                           "is unknown",
                           ans.status);
        return;
    }
}

static void fwd_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                     size_t len)
{
    struct p2praft__fwd *a = lp2p_stream_data(s);
    struct p2praft__req *r = a->r;
    uint32_t flen = 0;
    char why[256];
    int rv;
    if (r == NULL) {
        fwd_end(a, true);
        return;
    }
    if (status == 0) {
        if (lp2p__buf_append(&a->in, buf, len) != 0) {
            fwd_end(a, true);
            p2praft__req_fail(r, "out of memory reading the leader's answer");
            return;
        }
        rv = p2praft__api_frame(a->in.data, a->in.len, &flen);
        if (rv == LP2P_ETOOBIG) {
            fwd_end(a, true);
            p2praft__req_fail(r, "oversized answer from the leader");
        } else if (rv == 0) {
            lp2p_stream_read_stop(s);
            /* The request lets go of the attempt before it moves on; the
             * buffer stays with the attempt until it is freed below. */
            a->r = NULL;
            r->fwd = NULL;
            fwd_response(r, a->in.data + P2PRAFT__API_PREFIX, flen);
            fwd_end(a, false);
        }
        return;
    }
    fwd_end(a, true);
    if (!p2praft__req_may_apply(r->q.op)) {
        p2praft__req_retry(r); /* a barrier may be repeated */
        return;
    }
    snprintf(why, sizeof(why), "lost the stream to the leader %s (%s)",
             a->leader, lp2p_strerror(status));
    p2praft__req_fail(r, why);
}

/* The request as it goes to the leader: a consistent read (GET, LS) is a
 * BARRIER. One request per stream: its id only has to be valid. */
static uint8_t *encode_forward(const struct p2praft__req *r, size_t *len)
{
    struct p2praft__api_req q = r->q;
    if (!p2praft__req_is_write(q.op) && q.op != P2PRAFT_API_CLUSTER &&
        !p2praft__api_is_member(q.op)) {
        q.op = P2PRAFT_API_BARRIER;
        q.flags = 0;
    }
    q.id = 1;
    return p2praft__api_request_encode(&q, len);
}

static void fwd_opened(struct lp2p_stream *s, int status, void *data)
{
    struct p2praft__fwd *a = data;
    struct p2praft__req *r = a->r;
    size_t len = 0;
    uint64_t now;
    a->pending--;
    if (status != 0 || r == NULL) {
        if (s != NULL) {
            a->pending++;
            lp2p_stream_close(s, fwd_closed, a);
        }
        if (r != NULL) {
            char why[LP2P_PEER_ID_STRMAX + 200];
            LOG_DEBUG(MODULE, "cannot reach the leader %s: %s", a->leader,
                      lp2p_strerror(status));
            /* On the hashicorp wire, a leader that refuses the protocol
             * is most likely no p2praft node but a go-libp2p-raft node,
             * and retrying cannot help while it leads: say so now. (On
             * p2praft's wire every member speaks it: a refusal there is
             * this node's admission, which may change; retry.) */
            snprintf(why, sizeof(why),
                     "the leader %s refused %s (a go-libp2p-raft node does "
                     "not speak it): send this to the leader's own program",
                     a->leader, P2PRAFT_FORWARD_PROTOCOL);
            fwd_end(a, false);
            if (status == LP2P_ENOPROTO &&
                r->node->cfg.wire == P2PRAFT_WIRE_HASHICORP) {
                p2praft__req_fail(r, why); /* nothing was sent */
            } else {
                p2praft__req_retry(r); /* nothing was sent */
            }
            return;
        }
        fwd_maybe_free(a);
        return;
    }
    a->s = s;
    lp2p_stream_set_data(s, a);
    a->out = encode_forward(r, &len);
    if (a->out == NULL) {
        fwd_end(a, true);
        p2praft__req_fail(r, "out of memory"); /* nothing was sent */
        return;
    }
    now = uv_now(&a->node->loop);
    lp2p_stream_set_deadline(s, r->deadline > now ? r->deadline - now : 1);
    if (lp2p_stream_write(s, a->out, len, fwd_written, a) != 0) {
        fwd_end(a, true);
        p2praft__req_retry(r); /* nothing was sent */
        return;
    }
    a->pending++;
    a->sent = true;
    r->maybe_applied = p2praft__req_may_apply(r->q.op);
    a->node->fwd.forwarded++;
    lp2p_stream_close_write(s);
    lp2p_stream_read_start(s, fwd_read);
}

void p2praft__forward_send(struct p2praft__req *r, const char *leader)
{
    static const char *const protos[] = {P2PRAFT_FORWARD_PROTOCOL};
    struct p2praft_node *n = r->node;
    struct lp2p_peer_id pid;
    struct p2praft__fwd *a;
    int rv;
    if (lp2p_peer_id_parse(&pid, leader) != 0) {
        p2praft__req_error(r, P2PRAFT_API_FAILED,
                           "leader address '%s' is no peer ID", leader);
        return;
    }
    a = lp2p__calloc(1, sizeof(*a));
    if (a == NULL) {
        p2praft__req_error(r, P2PRAFT_API_FAILED, "out of memory");
        return;
    }
    a->node = n;
    lp2p__buf_init(&a->in);
    snprintf(a->leader, sizeof(a->leader), "%s", leader);
    a->leader_id = p2praft_server_id(&pid);
    a->term = raft_current_term(&n->raft);
    rv = lp2p_stream_open(n->host, &pid, protos, 1, fwd_opened, a);
    if (rv != 0) {
        lp2p__buf_free(&a->in);
        lp2p__free(a);
        p2praft__req_retry(r);
        return;
    }
    lp2p__list_insert_tail(&n->fwd.attempts, &a->link);
    a->pending++;
    a->r = r;
    r->fwd = a;
    r->phase = P2PRAFT__REQ_BUSY;
}

void p2praft__forward_reroute(struct p2praft_node *n)
{
    struct lp2p__list *q, *next;
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_term term = raft_current_term(&n->raft);
    raft_leader(&n->raft, &lid, &laddr);
    if (lid == 0) {
        return; /* nobody to re-route to yet */
    }
    LP2P__LIST_FOREACH_SAFE(q, next, &n->fwd.attempts) {
        struct p2praft__fwd *a = LP2P__CONTAINER_OF(q, struct p2praft__fwd,
                                                    link);
        struct p2praft__req *r = a->r;
        char why[300];
        if (r == NULL || term <= a->term || lid == a->leader_id) {
            continue;
        }
        fwd_end(a, true);
        if (a->sent && r->q.op == P2PRAFT_API_TRANSFER) {
            /* What a transfer is for: never ask the new leader to move
             * it once more. */
            char peer[LP2P_PEER_ID_STRMAX];
            p2praft__members_peer_str(laddr, peer, sizeof(peer));
            if (r->q.key == NULL || r->q.key[0] == '\0' ||
                strcmp(r->q.key, peer) == 0) {
                p2praft__req_reply(r, P2PRAFT_API_OK, peer, strlen(peer));
            } else {
                p2praft__req_error(r, P2PRAFT_API_UNKNOWN,
                                   "leadership moved to %s while the "
                                   "transfer to %s was under way",
                                   peer, r->q.key);
            }
            continue;
        }
        if (!a->sent || !p2praft__req_may_apply(r->q.op)) {
            LOG_DEBUG(MODULE, "re-routing a request from %s to the leader of "
                              "term %" PRIu64,
                      a->leader, (uint64_t)term);
            r->phase = P2PRAFT__REQ_NEW;
            p2praft__req_step(r);
            continue;
        }
        snprintf(why, sizeof(why),
                 "the leader %s was replaced by %s (term %" PRIu64
                 ") while the write was forwarded to it",
                 a->leader, laddr != NULL ? laddr : "?", (uint64_t)term);
        p2praft__req_fail(r, why);
    }
}

void p2praft__forward_free_all(struct p2praft_node *n)
{
    struct lp2p__list *q;
    /* The loop ran dry: every callback ran, nothing refers to these. */
    while ((q = lp2p__list_first(&n->fwd.attempts)) != NULL) {
        struct p2praft__fwd *a = LP2P__CONTAINER_OF(q, struct p2praft__fwd,
                                                    link);
        lp2p__list_remove(&a->link);
        lp2p__free(a->out);
        lp2p__buf_free(&a->in);
        lp2p__free(a);
    }
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
static void served_reply(void *owner, struct p2praft__req *r, uint8_t *frame,
                         size_t len)
{
    struct served *f = owner;
    (void)r;
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
        if (r->q.version == P2PRAFT__API_VERSION_1) {
            /* A member of an older release: answer in its format, so that
             * it knows its write was not applied. */
            size_t vlen = 0;
            uint8_t *v1 = p2praft__api_v1_answer_encode(P2PRAFT_API_BADREQ,
                                                        err, &vlen);
            p2praft__req_detach(r);
            p2praft__req_reply(r, P2PRAFT_API_BADREQ, NULL, 0);
            served_reply(f, NULL, v1, vlen);
            return;
        }
        p2praft__req_reply(r, P2PRAFT_API_BADREQ, err, strlen(err));
        return;
    }
    if (r->q.op != P2PRAFT_API_BARRIER && r->q.op != P2PRAFT_API_CLUSTER &&
        !p2praft__req_is_write(r->q.op) && !p2praft__api_is_member(r->q.op)) {
        p2praft__req_error(r, P2PRAFT_API_BADREQ,
                           "operation %u is not forwarded", r->q.op);
        return;
    }
    p2praft__req_step(r);
}

/* Refusals, of this protocol and of the client protocol (clientproto.c). */
void p2praft__refused_stream(struct p2praft_node *n, struct lp2p__ratelog *rl,
                             const char *protocol,
                             const struct lp2p_peer_id *peer, const char *why)
{
    uint64_t since;
    if (lp2p__ratelog_hit(rl, uv_now(&n->loop), P2PRAFT__REFUSAL_LOG_MS,
                          &since)) {
        char id[LP2P_PEER_ID_STRMAX];
        lp2p_peer_id_to_string(peer, id, sizeof(id));
        LOG_WARN(MODULE,
                 "refused %" PRIu64 " %s stream%s (%s; latest from %s; %" PRIu64
                 " in all)",
                 since, protocol, since == 1 ? "" : "s", why, id, rl->total);
    }
}

void p2praft__refused_tick(struct lp2p__ratelog *rl, uint64_t now,
                           const char *protocol, const char *why)
{
    uint64_t since;
    if (lp2p__ratelog_due(rl, now, P2PRAFT__REFUSAL_LOG_MS, &since)) {
        LOG_WARN(MODULE,
                 "refused %" PRIu64 " more %s stream%s (%s; %" PRIu64
                 " in all)",
                 since, protocol, since == 1 ? "" : "s", why, rl->total);
    }
}

static void refused(struct p2praft_node *n, struct lp2p__ratelog *rl,
                    const struct lp2p_peer_id *peer, const char *why)
{
    p2praft__refused_stream(n, rl, P2PRAFT_FORWARD_PROTOCOL, peer, why);
}

static void handler(struct lp2p_stream *s, void *data)
{
    struct p2praft_node *n = data;
    const struct lp2p_peer_id *peer = lp2p_stream_peer(s);
    struct served *f;
    if (n->stopping || !p2praft_io_admits(&n->io, peer)) {
        if (!n->stopping) {
            refused(n, &n->fwd.refused_member, peer, "not a member");
        }
        lp2p_stream_reset(s);
        lp2p_stream_close(s, NULL, NULL);
        return;
    }
    if (n->fwd.n_served >= MAX_SERVED) {
        /* A member: tell it, before reading anything, that nothing was
         * done, so that it retries instead of guessing. */
        size_t len;
        const uint8_t *busy = p2praft__api_busy_frame(&len);
        refused(n, &n->fwd.refused_busy, peer, "too many at once");
        if (lp2p_stream_write(s, busy, len, NULL, NULL) != 0) {
            lp2p_stream_reset(s);
        }
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

void p2praft__forward_tick(struct p2praft_node *n, uint64_t now)
{
    p2praft__refused_tick(&n->fwd.refused_member, now,
                          P2PRAFT_FORWARD_PROTOCOL, "not a member");
    p2praft__refused_tick(&n->fwd.refused_busy, now, P2PRAFT_FORWARD_PROTOCOL,
                          "too many at once");
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
