/*
 * Raft messages on go-libp2p-raft's /raft/1.0.0/rpc (hashicorp/raft's
 * NetworkTransport over libp2p streams): the hashicorp wire mode of io.c's
 * raft_io, beside transport.c's /p2praft/raft/2.0.0. Chosen per io
 * (p2praft_io_config.wire); a node serves one protocol only, so a node of
 * the other mode cannot open a raft stream to it (multistream refuses).
 *
 * The wire (hcwire.h) and the translation (hcmap.h, doc/hashicorp-wire.md)
 * are sans-I/O; this file opens and accepts the streams and pairs libraft's
 * requests and results with hashicorp's RPCs and responses:
 *
 * Outbound (libraft sends a request to a peer): one new stream per RPC, as
 * go-libp2p-raft opens them (MaxPool 0): the rpc type byte and msgpack
 * request (InstallSnapshot: then the snapshot bytes, borrowed from raft
 * until the write completes, when raft's send callback runs). The response
 * (error string + response) is read back, turned into libraft's result
 * with the request's `pending` (p2praft__hc_decode_response) and handed to
 * raft; then the stream is closed. Each RPC has a deadline. Per peer:
 * one InstallSnapshot at a time, a bound on RPCs in flight, and after a
 * failed open, messages are dropped for retry_ms (raft sends again).
 *
 * Inbound (a Go node opens a stream): requests are decoded in order (an
 * AppendEntries pipeline sends several before the first response; an
 * InstallSnapshot waits for its `Size` bytes), translated and handed to
 * raft; each leaves a `pending` on its stream. libraft answers later with
 * separate result messages, addressed to the peer: send() of a result
 * walks that peer's inbound streams, oldest first, and answers each
 * stream's head request while the result matches it
 * (p2praft__hc_reply_matches): a success answers every request it covers,
 * anything else one request. A result that answers nothing is dropped
 * (the request it would answer was already answered or timed out).
 * TimeoutNow is answered at once (as hashicorp does). Requests libraft
 * leaves unanswered (entries while it installs a snapshot, a second
 * snapshot) are not left waiting for Go's transport timeout: a stream
 * whose head request waited longer than the answer bound is reset, which
 * the Go sender takes as a failed RPC and retries.
 *
 * Bad bytes reset the stream (logged); a request hashicorp's dispatcher
 * would refuse (protocol version, unsupported entry) gets hashicorp's own
 * error reply.
 */
#include <stdio.h>
#include <string.h>

#include "raft/hcmap.h"
#include "raft/hctransport.h"
#include "raft/io.h"
#include "raft/rpc.h"
#include "util/buf.h"
#include "util/heap.h"
#include "util/log.h"

#define MOD "hctransport"

/* An RPC's deadline (dial included); snapshots get more per MiB. */
#define HC_RPC_DEADLINE_MS 10000
#define HC_SNAP_MS_PER_MIB 1000
/* RPCs in flight toward one peer; beyond, messages are dropped. */
#define HC_MAX_INFLIGHT 64
/* A request unanswered for this long resets its stream (an InstallSnapshot
 * is answered once stored: it gets longer). */
#define HC_ANSWER_BOUND_MS 2000
#define HC_INSTALL_BOUND_MS 60000
#define HC_SWEEP_MS 250
/* Largest request header (the msgpack request, entries included). */

struct hcpeer {
    struct hcpeer *next;
    raft_id id;
    struct lp2p_peer_id pid;
    char addr[LP2P_PEER_ID_STRMAX];
    unsigned inflight;  /* outbound RPCs not finished */
    unsigned opening;   /* of them, streams not open yet */
    bool installing;    /* an InstallSnapshot in flight */
    uint64_t retry_at;  /* no new RPC before this (uv_now) after a failure */
};

struct hcpend {
    struct hcpend *next;
    struct p2praft__hc_pending q;
    uint64_t since;
};

/* An inbound stream: requests from a Go node. */
struct hcin {
    struct hcnet *h;
    struct hcin *next, *prev;
    struct hcpeer *peer;
    struct lp2p_stream *s;
    struct lp2p_buf rbuf;
    struct hcpend *q, *q_tail;
    bool eof;
    bool closing;
    struct p2praft__admit_cache admit;
};

/* An outbound RPC. */
struct hcout {
    struct p2praft__work work; /* first: deferred failure */
    struct hcnet *h;           /* NULL once orphaned by close */
    struct hcout *next, *prev;
    struct hcpeer *peer;
    struct lp2p_stream *s;
    struct raft_io_send *req; /* raft's, until its callback ran */
    raft_io_send_cb cb;
    int status;
    struct lp2p_buf wire;
    struct p2praft__hc_pending pending;
    struct lp2p_iovec iov[2];
    struct lp2p_buf rbuf;
    bool install;
    bool opened;  /* open callback ran */
    bool opened_ok; /* ... with a stream */
    bool done;    /* response handled, or failed */
    bool closing; /* stream handed to lp2p_stream_close */
};

/* A reply being written. */
struct hcreply {
    struct lp2p_buf buf;
};

/* A result libraft sent, completed on this loop turn. */
struct hcres {
    struct p2praft__work work;
    struct raft_io_send *req;
    raft_io_send_cb cb;
    int status;
};

struct hcnet {
    struct p2praft__net *n;
    struct hcpeer *peers;
    struct hcin *ins;
    struct hcout *outs;
    uv_timer_t sweep;
    bool sweep_on;
    bool sweep_closed;
    struct p2praft__hc_map map;
};

static void hc_maybe_closed(struct hcnet *h);

/* ---- peers ---------------------------------------------------------------- */

static struct hcpeer *peer_get(struct hcnet *h, const struct lp2p_peer_id *pid,
                               raft_id id)
{
    struct hcpeer *p;
    for (p = h->peers; p != NULL; p = p->next) {
        if (p->id == id) {
            return p;
        }
    }
    p = lp2p__calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->id = id;
    p->pid = *pid;
    if (lp2p_peer_id_to_string(pid, p->addr, sizeof(p->addr)) != 0) {
        snprintf(p->addr, sizeof(p->addr), "?");
    }
    p->next = h->peers;
    h->peers = p;
    return p;
}

static void local_facts(struct hcnet *h, struct p2praft__hc_local *l)
{
    struct raft *r = p2praft__io_raft(h->n->io);
    memset(l, 0, sizeof(*l));
    if (r != NULL) {
        l->current_term = raft_current_term(r);
        l->last_index = raft_last_index(r);
    }
    l->last_term = h->n->io->last_term;
    if (l->last_term == 0) {
        l->last_term = l->current_term;
    }
}

/* ---- inbound streams -------------------------------------------------------- */

static void in_free_queue(struct hcin *t)
{
    while (t->q != NULL) {
        struct hcpend *e = t->q;
        t->q = e->next;
        lp2p__free(e);
    }
    t->q_tail = NULL;
}

static void in_closed(struct lp2p_stream *s, void *data)
{
    struct hcin *t = data;
    struct hcnet *h = t->h;
    (void)s;
    if (t->prev != NULL) {
        t->prev->next = t->next;
    } else {
        h->ins = t->next;
    }
    if (t->next != NULL) {
        t->next->prev = t->prev;
    }
    in_free_queue(t);
    lp2p__buf_free(&t->rbuf);
    lp2p__free(t);
    hc_maybe_closed(h);
}

static void in_close(struct hcin *t, bool reset)
{
    if (t->closing) {
        return;
    }
    t->closing = true;
    in_free_queue(t);
    if (reset) {
        lp2p_stream_reset(t->s);
    }
    lp2p_stream_close(t->s, in_closed, t);
}

static void reply_written(struct lp2p_stream *s, int status, void *data)
{
    struct hcreply *r = data;
    (void)s;
    (void)status;
    lp2p__buf_free(&r->buf);
    lp2p__free(r);
}

/* Write the reply in r (taken) on t. */
static void in_write(struct hcin *t, struct hcreply *r)
{
    int rv;
    if (t->closing) {
        reply_written(NULL, 0, r);
        return;
    }
    rv = lp2p_stream_write(t->s, r->buf.data, r->buf.len, reply_written, r);
    if (rv != 0) {
        LOG_DEBUG(MOD, "reply to %s: %s", t->peer->addr, lp2p_strerror(rv));
        reply_written(NULL, 0, r);
        in_close(t, true);
    }
}

static struct hcreply *reply_new(void)
{
    struct hcreply *r = lp2p__calloc(1, sizeof(*r));
    if (r != NULL) {
        lp2p__buf_init(&r->buf);
    }
    return r;
}

/* The peer is done sending and every request is answered: close. */
static void in_maybe_done(struct hcin *t)
{
    if (t->eof && t->q == NULL && !t->closing) {
        in_close(t, false);
    }
}

static void in_error_reply(struct hcin *t, uint8_t type, int code)
{
    struct hcreply *r = reply_new();
    if (r == NULL || p2praft__hc_encode_error_reply(type, code, &r->buf) != 0) {
        if (r != NULL) {
            reply_written(NULL, 0, r);
        }
        in_close(t, true);
        return;
    }
    in_write(t, r);
}

/* Handle whole requests at the start of t's buffer. */
static void in_parse(struct hcin *t)
{
    struct hcnet *h = t->h;
    struct pio *io = h->n->io;
    while (!t->closing && t->rbuf.len > 0) {
        struct p2praft__hc_req req;
        struct p2praft__hc_local local;
        struct p2praft__hc_pending pend;
        struct raft_message m;
        const uint8_t *snap = NULL;
        size_t used = 0, snap_len = 0;
        int rv = p2praft__hc_req_decode(t->rbuf.data, t->rbuf.len,
                                        io->cfg.max_message + 65536, &req, &used);
        if (rv == LP2P_EAGAIN) {
            return;
        }
        if (rv == LP2P_EUNSUPPORTED && t->rbuf.len > 0) {
            /* An rpc type we do not know: hashicorp closes the stream. */
            LOG_WARN(MOD, "unknown hashicorp rpc type %u from %s",
                     (unsigned)t->rbuf.data[0], t->peer->addr);
            in_close(t, true);
            return;
        }
        if (rv != 0) {
            LOG_WARN(MOD, "bad hashicorp raft request from %s: %s",
                     t->peer->addr, lp2p_strerror(rv));
            io->stats.bad_streams++;
            in_close(t, true);
            return;
        }
        if (req.type == P2PRAFT__HC_INSTALL_SNAPSHOT) {
            int64_t size = req.install_snapshot.size;
            if (size < 0 || (uint64_t)size > io->cfg.max_message) {
                LOG_WARN(MOD, "snapshot of %lld bytes from %s refused "
                              "(max_message %llu)",
                         (long long)size, t->peer->addr,
                         (unsigned long long)io->cfg.max_message);
                p2praft__hc_req_release(&req);
                io->stats.bad_streams++;
                in_close(t, true);
                return;
            }
            if (t->rbuf.len - used < (size_t)size) {
                /* Decoded again once the bytes are here. */
                p2praft__hc_req_release(&req);
                return;
            }
            snap = t->rbuf.data + used;
            snap_len = (size_t)size;
        }
        local_facts(h, &local);
        rv = p2praft__hc_decode_request(&h->map, &req, snap, snap_len, &local,
                                        t->peer->id, t->peer->addr, &m,
                                        &pend);
        p2praft__hc_req_release(&req);
        lp2p__buf_consume(&t->rbuf, used + snap_len);
        if (rv == LP2P_EUNSUPPORTED) {
            LOG_WARN(MOD, "unsupported hashicorp request (type %u) from %s",
                     (unsigned)pend.type, t->peer->addr);
            in_error_reply(t, req.type, rv);
            continue;
        }
        if (rv != 0) {
            LOG_WARN(MOD, "refused hashicorp request (type %u) from %s: %s",
                     (unsigned)req.type, t->peer->addr, lp2p_strerror(rv));
            io->stats.bad_streams++;
            in_close(t, true);
            return;
        }
        if (h->n->drop || h->n->closing) {
            p2praft__hc_message_release(&m);
            continue;
        }
        if (!p2praft__net_still_admits(h->n, lp2p_stream_peer(t->s),
                                       &t->admit)) {
            io->stats.refused++;
            LOG_WARN(MOD, "refused a hashicorp request from %s: no longer "
                          "admitted (not in the configuration); closing its "
                          "stream",
                     t->peer->addr);
            p2praft__hc_message_release(&m);
            in_close(t, true);
            return;
        }
        if (req.type == P2PRAFT__HC_TIMEOUT_NOW) {
            struct hcreply *r = reply_new();
            if (r == NULL ||
                p2praft__hc_encode_timeout_now_reply(&r->buf) != 0) {
                if (r != NULL) {
                    reply_written(NULL, 0, r);
                }
                p2praft__hc_message_release(&m);
                in_close(t, true);
                return;
            }
            in_write(t, r);
        } else {
            /* Before raft sees it: raft may answer inside recv. */
            struct hcpend *e = lp2p__calloc(1, sizeof(*e));
            if (e == NULL) {
                p2praft__hc_message_release(&m);
                in_close(t, true);
                return;
            }
            e->q = pend;
            e->since = uv_now(io->loop);
            if (t->q_tail != NULL) {
                t->q_tail->next = e;
            } else {
                t->q = e;
            }
            t->q_tail = e;
        }
        p2praft__io_recv(io, &m);
    }
}

static void in_read_cb(struct lp2p_stream *s, int status, const uint8_t *buf,
                       size_t len)
{
    struct hcin *t = lp2p_stream_data(s);
    if (t->closing) {
        return;
    }
    if (status != 0) {
        if (status == LP2P_EEOF) {
            t->eof = true;
            in_maybe_done(t);
        } else {
            LOG_DEBUG(MOD, "hashicorp stream from %s: %s", t->peer->addr,
                      lp2p_strerror(status));
            in_close(t, true);
        }
        return;
    }
    if (lp2p__buf_append(&t->rbuf, buf, len) != 0) {
        in_close(t, true);
        return;
    }
    in_parse(t);
}

static void hc_handler(struct lp2p_stream *s, void *data)
{
    struct hcnet *h = data;
    struct p2praft__net *n = h->n;
    const struct lp2p_peer_id *pid = lp2p_stream_peer(s);
    raft_id id = p2praft_server_id(pid);
    struct hcpeer *p;
    struct hcin *t;
    if (n->closing) {
        lp2p_stream_reset(s);
        lp2p_stream_close(s, NULL, NULL);
        return;
    }
    if (!p2praft__net_admits(n, pid)) {
        char str[LP2P_PEER_ID_STRMAX];
        if (lp2p_peer_id_to_string(pid, str, sizeof(str)) != 0) {
            snprintf(str, sizeof(str), "?");
        }
        n->io->stats.refused++;
        LOG_WARN(MOD, "refused hashicorp raft stream from %s: peer not "
                      "admitted", str);
        lp2p_stream_reset(s);
        lp2p_stream_close(s, NULL, NULL);
        return;
    }
    p = peer_get(h, pid, id);
    t = p != NULL ? lp2p__calloc(1, sizeof(*t)) : NULL;
    if (t == NULL) {
        lp2p_stream_reset(s);
        lp2p_stream_close(s, NULL, NULL);
        return;
    }
    t->h = h;
    t->peer = p;
    t->s = s;
    lp2p__buf_init(&t->rbuf);
    lp2p_stream_set_data(s, t);
    t->next = h->ins;
    if (h->ins != NULL) {
        h->ins->prev = t;
    }
    h->ins = t;
    if (lp2p_stream_read_start(s, in_read_cb) != 0) {
        in_close(t, true);
    }
}

/* ---- results libraft sends: replies on inbound streams ---------------------- */

static void res_deferred(struct p2praft__work *w, int status)
{
    struct hcres *r = (struct hcres *)(void *)w;
    struct raft_io_send *req = r->req;
    raft_io_send_cb cb = r->cb;
    int st = status != 0 ? status : r->status;
    lp2p__free(r);
    cb(req, st);
}

static bool answers_many(const struct raft_message *m)
{
    return m->type == RAFT_APPEND_ENTRIES_RESULT &&
           m->append_entries_result.rejected == 0;
}

/* Answer the requests of `p` that result `m` answers. */
static unsigned answer(struct hcnet *h, struct hcpeer *p,
                       const struct raft_message *m)
{
    struct p2praft__hc_local local;
    struct hcin *t, *oldest[64];
    unsigned n_old = 0, i, answered = 0;
    bool many = answers_many(m);
    local_facts(h, &local);
    /* Streams are linked newest first: answer the oldest first. */
    for (t = h->ins; t != NULL && n_old < 64; t = t->next) {
        if (t->peer == p && !t->closing && t->q != NULL) {
            oldest[n_old++] = t;
        }
    }
    for (i = n_old; i-- > 0;) {
        t = oldest[i];
        while (t->q != NULL && !t->closing &&
               p2praft__hc_reply_matches(&t->q->q, m)) {
            struct hcpend *e = t->q;
            struct hcreply *r = reply_new();
            if (r == NULL ||
                p2praft__hc_encode_reply(&h->map, &e->q, m, &local,
                                         &r->buf) != 0) {
                if (r != NULL) {
                    reply_written(NULL, 0, r);
                }
                in_close(t, true);
                break;
            }
            t->q = e->next;
            if (t->q == NULL) {
                t->q_tail = NULL;
            }
            lp2p__free(e);
            in_write(t, r);
            answered++;
            if (!many) {
                break;
            }
        }
        if (!t->closing) {
            in_maybe_done(t);
        }
        if (answered > 0 && !many) {
            break;
        }
    }
    return answered;
}

/* ---- requests libraft sends: outbound RPCs ---------------------------------- */

static void out_unlink(struct hcout *o)
{
    struct hcnet *h = o->h;
    if (h == NULL) {
        return;
    }
    if (o->prev != NULL) {
        o->prev->next = o->next;
    } else {
        h->outs = o->next;
    }
    if (o->next != NULL) {
        o->next->prev = o->prev;
    }
    o->next = o->prev = NULL;
}

static void out_free(struct hcout *o)
{
    lp2p__buf_free(&o->wire);
    lp2p__buf_free(&o->rbuf);
    lp2p__free(o);
}

/* Raft's callback, once. */
static void out_send_done(struct hcout *o, int status)
{
    struct raft_io_send *req = o->req;
    if (req != NULL) {
        o->req = NULL;
        o->cb(req, status);
    }
}

static void out_stream_closed(struct lp2p_stream *s, void *data)
{
    struct hcout *o = data;
    struct hcnet *h = o->h;
    (void)s;
    out_unlink(o);
    out_free(o);
    if (h != NULL) {
        hc_maybe_closed(h);
    }
}

/* The RPC is over (`status` 0: answered). */
static void out_finish(struct hcout *o, int status, bool reset)
{
    struct hcpeer *p = o->peer;
    if (o->done) {
        return;
    }
    o->done = true;
    if (p != NULL) {
        p->inflight--;
        if (o->install) {
            p->installing = false;
        }
        if (status != 0 && !o->opened_ok && o->h != NULL) {
            /* Only a failed open (the peer unreachable) holds the next
             * RPCs back; a failed RPC on an open stream does not. */
            p->retry_at = uv_now(o->h->n->io->loop) + o->h->n->io->cfg.retry_ms;
        }
        o->peer = NULL;
    }
    if (o->h != NULL && status != 0) {
        o->h->n->io->stats.dropped++;
    }
    /* Raft's callback may still wait for a write: then it fires from
     * there (with the write's status). */
    if (o->s != NULL && !o->closing) {
        o->closing = true;
        if (reset) {
            lp2p_stream_reset(o->s);
        }
        lp2p_stream_close(o->s, out_stream_closed, o);
    } else if (o->s == NULL && o->opened) {
        struct hcnet *h = o->h;
        out_send_done(o, status != 0 ? RAFT_NOCONNECTION : 0);
        out_unlink(o);
        out_free(o);
        if (h != NULL) {
            hc_maybe_closed(h);
        }
    }
}

static void out_read_cb(struct lp2p_stream *s, int status, const uint8_t *buf,
                        size_t len)
{
    struct hcout *o = lp2p_stream_data(s);
    struct p2praft__hc_resp resp;
    struct raft_message m;
    bool deliver = false;
    size_t used = 0;
    struct hcpeer *p = o->peer;
    int rv;
    if (o->done) {
        return;
    }
    if (status != 0) {
        LOG_DEBUG(MOD, "hashicorp rpc (type %u) to %s: %s",
                  (unsigned)o->pending.type, p != NULL ? p->addr : "?",
                  lp2p_strerror(status));
        out_finish(o, status, status != LP2P_EEOF);
        return;
    }
    if (lp2p__buf_append(&o->rbuf, buf, len) != 0) {
        out_finish(o, LP2P_ENOMEM, true);
        return;
    }
    rv = p2praft__hc_resp_decode(o->pending.type, o->rbuf.data, o->rbuf.len,
                                 65536, &resp, &used);
    if (rv == LP2P_EAGAIN) {
        return;
    }
    if (rv != 0) {
        LOG_WARN(MOD, "bad hashicorp response from %s: %s",
                 p != NULL ? p->addr : "?", lp2p_strerror(rv));
        out_finish(o, rv, true);
        return;
    }
    if (resp.error.p != NULL && resp.error.len > 0) {
        LOG_DEBUG(MOD, "hashicorp rpc (type %u) to %s: error \"%.*s\"",
                  (unsigned)o->pending.type, p != NULL ? p->addr : "?",
                  (int)resp.error.len, (const char *)resp.error.p);
    }
    rv = p != NULL ? p2praft__hc_decode_response(&o->pending, &resp, p->id,
                                                 p->addr, &m, &deliver)
                   : LP2P_EINVAL;
    p2praft__hc_resp_release(&resp);
    if (rv == 0 && deliver && o->h != NULL && !o->h->n->drop &&
        !o->h->n->closing) {
        p2praft__io_recv(o->h->n->io, &m);
    }
    out_finish(o, 0, false);
}

static void out_written(struct lp2p_stream *s, int status, void *data)
{
    struct hcout *o = data;
    (void)s;
    out_send_done(o, status == 0 ? 0 : RAFT_NOCONNECTION);
    if (status != 0) {
        out_finish(o, status, true);
    }
}

static void out_open_cb(struct lp2p_stream *s, int status, void *data)
{
    struct hcout *o = data;
    unsigned n_iov = 1;
    uint64_t deadline = HC_RPC_DEADLINE_MS;
    int rv;
    o->opened = true;
    if (o->peer != NULL) {
        o->peer->opening--;
    }
    if (o->done || o->h == NULL) {
        if (s != NULL) {
            lp2p_stream_reset(s);
            lp2p_stream_close(s, NULL, NULL);
        }
        out_send_done(o, RAFT_CANCELED);
        out_unlink(o);
        out_free(o);
        return;
    }
    if (status != 0) {
        LOG_DEBUG(MOD, "open /raft/1.0.0/rpc to %s: %s",
                  o->peer != NULL ? o->peer->addr : "?", lp2p_strerror(status));
        out_finish(o, status, false);
        return;
    }
    o->s = s;
    o->opened_ok = true;
    lp2p_stream_set_data(s, o);
    o->iov[0].base = o->wire.data;
    o->iov[0].len = o->wire.len;
    if (o->install && o->iov[1].len > 0) {
        n_iov = 2;
        deadline += (o->iov[1].len >> 20) * HC_SNAP_MS_PER_MIB;
    }
    lp2p_stream_set_deadline(s, deadline);
    rv = lp2p_stream_read_start(s, out_read_cb);
    if (rv == 0) {
        rv = lp2p_stream_writev(s, o->iov, n_iov, out_written, o);
    }
    if (rv != 0) {
        out_send_done(o, RAFT_NOCONNECTION);
        out_finish(o, rv, true);
        return;
    }
    o->h->n->io->stats.sent++;
}

static void out_deferred(struct p2praft__work *w, int status)
{
    struct hcout *o = (struct hcout *)(void *)w;
    out_send_done(o, status != 0 ? status : o->status);
    out_unlink(o);
    out_free(o);
}

/* ---- the mode's entry points (transport.c dispatches here) ----------------- */

static int hc_get(struct p2praft__net *n, struct hcnet **out)
{
    struct hcnet *h = n->hc;
    if (h == NULL) {
        h = lp2p__calloc(1, sizeof(*h));
        if (h == NULL) {
            return LP2P_ENOMEM;
        }
        h->n = n;
        h->map.local_id = n->io->address;
        h->map.resolve = NULL;
        n->hc = h;
    }
    *out = h;
    return 0;
}

static void sweep_cb(uv_timer_t *timer)
{
    struct hcnet *h = timer->data;
    uint64_t now = uv_now(h->n->io->loop);
    struct hcin *t, *next;
    for (t = h->ins; t != NULL; t = next) {
        next = t->next;
        uint64_t bound = t->q != NULL && t->q->q.type ==
                                              P2PRAFT__HC_INSTALL_SNAPSHOT
                             ? HC_INSTALL_BOUND_MS
                             : HC_ANSWER_BOUND_MS;
        if (!t->closing && t->q != NULL && now - t->q->since >= bound) {
            LOG_DEBUG(MOD, "request (type %u) from %s unanswered for %llu "
                           "ms: stream reset",
                      (unsigned)t->q->q.type, t->peer->addr,
                      (unsigned long long)bound);
            in_close(t, true);
        }
    }
}

int p2praft__hc_listen(struct p2praft__net *n)
{
    struct hcnet *h;
    int rv = hc_get(n, &h);
    if (rv != 0) {
        return rv;
    }
    h->map.local_id = n->io->address;
    rv = lp2p_host_set_handler(n->host, P2PRAFT__HC_PROTOCOL, NULL,
                               hc_handler, h);
    if (rv != 0) {
        return rv;
    }
    n->listening = true;
    uv_timer_init(n->io->loop, &h->sweep);
    h->sweep.data = h;
    uv_timer_start(&h->sweep, sweep_cb, HC_SWEEP_MS, HC_SWEEP_MS);
    h->sweep_on = true;
    return 0;
}

int p2praft__hc_send(struct p2praft__net *n, struct raft_io_send *req,
                     const struct raft_message *m, raft_io_send_cb cb)
{
    struct pio *io = n->io;
    struct hcnet *h;
    struct hcpeer *p;
    struct lp2p_peer_id pid;
    struct hcout *o;
    int rv = hc_get(n, &h);
    static const char *const protos[] = {P2PRAFT__HC_PROTOCOL};
    if (rv != 0) {
        return RAFT_NOMEM;
    }
    req->cb = cb;
    if (m->server_address == NULL ||
        lp2p_peer_id_parse(&pid, m->server_address) != 0 ||
        p2praft_server_id(&pid) != m->server_id) {
        LOG_WARN(MOD, "raft server %llu at \"%s\": not a peer ID with that "
                      "raft ID",
                 (unsigned long long)m->server_id,
                 m->server_address != NULL ? m->server_address : "");
        return RAFT_NOCONNECTION;
    }
    p = peer_get(h, &pid, m->server_id);
    if (p == NULL) {
        return RAFT_NOMEM;
    }
    if (m->type == RAFT_APPEND_ENTRIES_RESULT ||
        m->type == RAFT_REQUEST_VOTE_RESULT) {
        struct hcres *r = lp2p__calloc(1, sizeof(*r));
        if (r == NULL) {
            return RAFT_NOMEM;
        }
        r->req = req;
        r->cb = cb;
        if (n->drop || answer(h, p, m) == 0) {
            /* Nothing waits for it (answered already, or timed out). */
            r->status = n->drop ? RAFT_NOCONNECTION : 0;
        } else {
            io->stats.sent++;
        }
        r->work.fn = res_deferred;
        p2praft__io_defer(io, &r->work);
        return 0;
    }
    o = lp2p__calloc(1, sizeof(*o));
    if (o == NULL) {
        return RAFT_NOMEM;
    }
    o->req = req;
    o->cb = cb;
    lp2p__buf_init(&o->wire);
    lp2p__buf_init(&o->rbuf);
    o->install = m->type == RAFT_INSTALL_SNAPSHOT;
    rv = p2praft__hc_encode_request(&h->map, m, &o->wire, &o->pending);
    if (rv != 0) {
        LOG_WARN(MOD, "cannot say a raft message of type %d on the "
                      "hashicorp wire: %s",
                 m->type, lp2p_strerror(rv));
        o->status = RAFT_INVALID;
        o->work.fn = out_deferred;
        io->stats.dropped++;
        p2praft__io_defer(io, &o->work);
        return 0;
    }
    if (n->drop || p->inflight >= HC_MAX_INFLIGHT ||
        (o->install && p->installing) ||
        (p->opening > 0 && !lp2p_host_is_connected(n->host, &p->pid)) ||
        uv_now(io->loop) < p->retry_at) {
        o->status = RAFT_NOCONNECTION;
        o->work.fn = out_deferred;
        io->stats.dropped++;
        p2praft__io_defer(io, &o->work);
        return 0;
    }
    if (o->install) {
        o->iov[1].base = m->install_snapshot.data.base;
        o->iov[1].len = m->install_snapshot.data.len;
    }
    o->h = h;
    o->peer = p;
    o->next = h->outs;
    if (h->outs != NULL) {
        h->outs->prev = o;
    }
    h->outs = o;
    p->inflight++;
    p->opening++;
    p->installing = p->installing || o->install;
    rv = lp2p_stream_open(n->host, &p->pid, protos, 1, out_open_cb, o);
    if (rv != 0) {
        p->inflight--;
        p->opening--;
        if (o->install) {
            p->installing = false;
        }
        out_unlink(o);
        o->h = NULL;
        o->peer = NULL;
        o->status = RAFT_NOCONNECTION;
        o->work.fn = out_deferred;
        io->stats.dropped++;
        p2praft__io_defer(io, &o->work);
        return 0;
    }
    return 0;
}

static void sweep_closed(uv_handle_t *handle)
{
    struct hcnet *h = handle->data;
    h->sweep_closed = true;
    hc_maybe_closed(h);
}

static void hc_maybe_closed(struct hcnet *h)
{
    struct p2praft__net *n = h->n;
    if (!n->closing || h->ins != NULL || (h->sweep_on && !h->sweep_closed)) {
        return;
    }
    p2praft__net_hc_closed(n);
}

void p2praft__hc_close(struct p2praft__net *n)
{
    struct hcnet *h = n->hc;
    struct hcin *t;
    struct hcout *o, *next;
    if (h == NULL) {
        p2praft__net_hc_closed(n);
        return;
    }
    if (n->listening) {
        lp2p_host_remove_handler(n->host, P2PRAFT__HC_PROTOCOL);
        n->listening = false;
    }
    /* Outbound RPCs are orphaned: their callbacks free them. */
    for (o = h->outs; o != NULL; o = next) {
        next = o->next;
        o->next = o->prev = NULL;
        out_send_done(o, RAFT_CANCELED);
        if (o->peer != NULL) {
            o->peer = NULL;
        }
        o->h = NULL;
        if (o->s != NULL && !o->closing) {
            o->closing = true;
            o->done = true;
            lp2p_stream_reset(o->s);
            lp2p_stream_close(o->s, out_stream_closed, o);
        } else {
            o->done = true;
        }
    }
    h->outs = NULL;
    for (t = h->ins; t != NULL; t = t->next) {
        in_close(t, true);
    }
    if (h->sweep_on && !h->sweep_closed) {
        uv_close((uv_handle_t *)&h->sweep, sweep_closed);
        return;
    }
    hc_maybe_closed(h);
}

void p2praft__hc_free(struct p2praft__net *n)
{
    struct hcnet *h = n->hc;
    if (h == NULL) {
        return;
    }
    while (h->peers != NULL) {
        struct hcpeer *p = h->peers;
        h->peers = p->next;
        lp2p__free(p);
    }
    lp2p__free(h);
    n->hc = NULL;
}

unsigned p2praft__hc_streams(struct p2praft__net *n, unsigned *writable)
{
    struct hcnet *h = n->hc;
    struct hcin *t;
    struct hcout *o;
    unsigned k = 0;
    if (h != NULL) {
        for (t = h->ins; t != NULL; t = t->next) {
            k += !t->closing;
        }
        for (o = h->outs; o != NULL; o = o->next) {
            k += o->s != NULL && !o->closing;
        }
    }
    if (writable != NULL) {
        *writable = k;
    }
    return k;
}
