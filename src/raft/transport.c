/*
 * Raft messages on libp2p streams (the message half of io.c's raft_io;
 * contract: p2praft.h, "Raft I/O over libp2p"; wire format: rpc.h).
 *
 * One stream of P2PRAFT_PROTOCOL per pair of peers carries messages both
 * ways. A peer's `out` is the stream we write on: the one we dialed, or
 * one the peer opened (so a follower answers its leader on the leader's
 * stream and dials nobody). When both peers dialed at once, both keep the
 * stream opened by the smaller raft ID; the other one is half-closed by
 * its opener once its queued messages are out, and each side reads every
 * stream it holds until its end.
 *
 * send(): the frame header is encoded into the request, the entries (or
 * the snapshot data) are borrowed from raft until the write completes, and
 * lp2p_stream_writev() queues all of it as one write: no copy here, one
 * flush. A peer without a stream gets a dial (bounded by dial_timeout_ms);
 * its messages wait for it. Each peer's queued bytes are bounded by
 * peer_buffer plus one message: one message that does not fit is let in
 * (a snapshot may be bigger than the bound, or come behind heartbeats);
 * beyond that (or during retry_ms after a failed dial) messages are
 * dropped, as on a lost connection, and raft sends again. A slow peer thus
 * costs its own queue only. Refusals complete on the same loop turn,
 * never inside send().
 *
 * Receiving: bytes are fed to the stream's decoder, which copies payloads
 * straight into raft's buffers; each whole message goes to raft at once,
 * tagged with the stream's Noise-authenticated peer. Malformed or
 * oversized frames reset the stream.
 *
 * Failure modes: a stream that ends or breaks is dropped (the next message
 * dials again); a dial that fails or times out fails the messages waiting
 * for it. Closing resets every stream and orphans dials in flight (their
 * callbacks find nothing to do).
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "raft/hctransport.h"
#include "raft/io.h"
#include "raft/rpc.h"
#include "util/heap.h"
#include "util/log.h"

#define MOD "transport"
#define SMALL_IOV 4

struct creq;

struct tpeer {
    struct p2praft__net *n;
    struct tpeer *next;
    raft_id id;
    struct lp2p_peer_id pid;
    char addr[LP2P_PEER_ID_STRMAX];
    struct tstream *out;    /* the stream we write on, if any */
    struct creq *dial;      /* our dial in flight */
    struct sreq *q, *q_tail; /* messages waiting for a stream */
    size_t bytes;           /* queued: waiting or being written */
    bool over;              /* a message past peer_buffer is queued */
    bool installing;        /* an InstallSnapshot is queued or being sent */
    raft_term ae_term;      /* term of its last AppendEntries to us */
    uint64_t retry_at;      /* no dial before this (uv_now) */
};

struct tstream {
    struct p2praft__net *n;
    struct tstream *next, *prev;
    struct tpeer *peer;
    struct lp2p_stream *s;
    struct p2praft__rpc_dec dec;
    bool inbound;
    bool writable;
    bool closing;
    struct p2praft__admit_cache admit;
};

/* One message on its way. */
struct sreq {
    struct p2praft__work work; /* first: deferred failure */
    struct sreq *next;         /* in a peer's wait queue */
    struct tpeer *peer;
    struct raft_io_send *req;
    raft_io_send_cb cb;
    int status;
    size_t bytes;
    bool over; /* admitted past peer_buffer (the one allowed) */
    bool install; /* an InstallSnapshot: waits out a dial failure */
    unsigned n_iov;
    struct lp2p_iovec *iov;
    struct lp2p_iovec iov_small[SMALL_IOV];
    uint8_t *hdr;
    uint8_t hdr_small[P2PRAFT__RPC_SMALL_MAX];
};

/* One dial in flight. Once `done` (answered by a timeout or a close) it
 * only waits for the open callback, then frees itself. */
struct creq {
    struct p2praft__net *n; /* NULL once orphaned */
    struct creq *next, *prev;
    struct tpeer *peer;
    uv_timer_t timer;
    bool done;
    bool opened;
    bool timer_closed;
};

static void net_maybe_closed(struct p2praft__net *n);

/* ---- server IDs ----------------------------------------------------------- */

uint64_t p2praft_server_id(const struct lp2p_peer_id *peer)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    uint64_t id = 0;
    unsigned i;
    if (peer == NULL ||
        EVP_Digest(peer->bytes, peer->len, md, &md_len, EVP_sha256(), NULL) !=
            1 ||
        md_len < 8) {
        return 1;
    }
    for (i = 0; i < 8; i++) {
        id = (id << 8) | md[i];
    }
    return id != 0 ? id : 1;
}

int p2praft_server_id_parse(const char *peer_id, uint64_t *out)
{
    struct lp2p_peer_id p;
    int rv;
    if (peer_id == NULL || out == NULL) {
        return LP2P_EINVAL;
    }
    rv = lp2p_peer_id_parse(&p, peer_id);
    if (rv != 0) {
        return rv;
    }
    *out = p2praft_server_id(&p);
    return 0;
}

static void peer_str(const struct lp2p_peer_id *p, char *out, size_t cap)
{
    if (lp2p_peer_id_to_string(p, out, cap) != 0) {
        snprintf(out, cap, "?");
    }
}

/* ---- admission ------------------------------------------------------------ */

int p2praft__addr_peer(const char *address, struct lp2p_peer_id *out)
{
    struct lp2p_multiaddr ma;
    int rv;
    if (address == NULL) {
        return LP2P_EINVAL;
    }
    if (address[0] != '/') {
        return lp2p_peer_id_parse(out, address) == 0 ? 0 : LP2P_EINVAL;
    }
    lp2p_multiaddr_init(&ma);
    rv = lp2p_multiaddr_parse(&ma, address, NULL, 0);
    if (rv == 0) {
        rv = lp2p_multiaddr_peer_id(&ma, out);
    }
    lp2p_multiaddr_free(&ma);
    return rv == 0 ? 0 : LP2P_EINVAL;
}

/* Does c hold the server `id` whose address names `peer`? */
static bool conf_has(const struct raft_configuration *c, raft_id id,
                     const struct lp2p_peer_id *peer)
{
    unsigned i;
    for (i = 0; i < c->n; i++) {
        struct lp2p_peer_id pid;
        if (c->servers[i].id == id &&
            p2praft__addr_peer(c->servers[i].address, &pid) == 0 &&
            lp2p_peer_id_equal(&pid, peer)) {
            return true;
        }
    }
    return false;
}

static bool default_admit(struct p2praft__net *n,
                          const struct lp2p_peer_id *peer, raft_id id)
{
    struct raft *r = p2praft__io_raft(n->io);
    size_t i;
    for (i = 0; i < n->n_members; i++) {
        if (lp2p_peer_id_equal(&n->members[i], peer)) {
            return true;
        }
    }
    if (r == NULL) {
        return false;
    }
    return conf_has(&r->configuration, id, peer) ||
           conf_has(&r->configuration_committed, id, peer);
}

bool p2praft__net_admits(struct p2praft__net *n,
                         const struct lp2p_peer_id *peer)
{
    raft_id id = p2praft_server_id(peer);
    if (lp2p_peer_id_equal(peer, lp2p_host_id(n->host))) {
        return false;
    }
    if (n->admit != NULL) {
        return n->admit(n->admit_ctx, peer, id);
    }
    return default_admit(n, peer, id);
}

bool p2praft__net_still_admits(struct p2praft__net *n,
                               const struct lp2p_peer_id *peer,
                               struct p2praft__admit_cache *c)
{
    struct raft *r = p2praft__io_raft(n->io);
    raft_index ci = r != NULL ? r->configuration_committed_index : 0;
    raft_index ui = r != NULL ? r->configuration_uncommitted_index : 0;
    if (c->admitted && n->admit == NULL && c->ci == ci && c->ui == ui &&
        c->gen == n->members_gen) {
        return true;
    }
    c->admitted = p2praft__net_admits(n, peer);
    c->ci = ci;
    c->ui = ui;
    c->gen = n->members_gen;
    return c->admitted;
}

/* ---- peers ---------------------------------------------------------------- */

static struct tpeer *peer_find(struct p2praft__net *n, raft_id id)
{
    struct tpeer *p;
    for (p = n->peers; p != NULL; p = p->next) {
        if (p->id == id) {
            return p;
        }
    }
    return NULL;
}

static struct tpeer *peer_new(struct p2praft__net *n,
                              const struct lp2p_peer_id *pid, raft_id id)
{
    struct tpeer *p = lp2p__calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->n = n;
    p->id = id;
    p->pid = *pid;
    peer_str(pid, p->addr, sizeof(p->addr));
    p->next = n->peers;
    n->peers = p;
    return p;
}

/* ---- sending -------------------------------------------------------------- */

static void sreq_free(struct sreq *s)
{
    if (s->hdr != s->hdr_small) {
        lp2p__free(s->hdr);
    }
    if (s->iov != s->iov_small) {
        lp2p__free(s->iov);
    }
    lp2p__free(s);
}

/* Answer raft and release the request. */
static void sreq_finish(struct sreq *s, int status)
{
    struct raft_io_send *req = s->req;
    raft_io_send_cb cb = s->cb;
    if (s->peer != NULL) {
        s->peer->bytes -= s->bytes;
        if (s->over) {
            s->peer->over = false;
        }
        if (s->install) {
            s->peer->installing = false;
        }
    }
    sreq_free(s);
    cb(req, status);
}

static void sreq_deferred(struct p2praft__work *w, int status)
{
    struct sreq *s = (struct sreq *)(void *)w;
    sreq_finish(s, status != 0 ? status : s->status);
}

/* Fail s on this loop turn, never inside send(). */
static void sreq_fail_later(struct p2praft__net *n, struct sreq *s,
                            int status)
{
    n->io->stats.dropped++;
    s->status = status;
    s->work.fn = sreq_deferred;
    p2praft__io_defer(n->io, &s->work);
}

static void stream_close(struct tstream *t, bool reset);

static void sreq_written(struct lp2p_stream *ls, int status, void *data)
{
    struct sreq *s = data;
    (void)ls;
    sreq_finish(s, status == 0 ? 0 : RAFT_NOCONNECTION);
}

/* Write s on t now. */
static void sreq_write(struct tstream *t, struct sreq *s)
{
    struct p2praft__net *n = t->n;
    int rv = lp2p_stream_writev(t->s, s->iov, s->n_iov, sreq_written, s);
    if (rv != 0) {
        LOG_DEBUG(MOD, "raft stream write: %s", lp2p_strerror(rv));
        if (t->peer != NULL && t->peer->out == t) {
            t->peer->out = NULL;
        }
        t->writable = false;
        sreq_fail_later(n, s, RAFT_NOCONNECTION);
        return;
    }
    n->io->stats.sent++;
}

/* Fail every message waiting for a stream to p. */
static void peer_fail_queue(struct tpeer *p, int status)
{
    while (p->q != NULL) {
        struct sreq *s = p->q;
        p->q = s->next;
        if (p->q == NULL) {
            p->q_tail = NULL;
        }
        p->n->io->stats.dropped++;
        sreq_finish(s, status);
    }
}

/* p has a writable stream: write what waited for it. */
static void peer_flush(struct tpeer *p)
{
    while (p->q != NULL && p->out != NULL && p->out->writable) {
        struct sreq *s = p->q;
        p->q = s->next;
        if (p->q == NULL) {
            p->q_tail = NULL;
        }
        sreq_write(p->out, s);
    }
}

static struct tstream *stream_new(struct p2praft__net *n, struct tpeer *peer,
                                  struct lp2p_stream *s, bool inbound);

/* Make t the stream we write on for its peer, if it should be: a peer
 * without a live stream takes any; with two live ones, both sides keep the
 * one opened by the smaller raft ID (its opener half-closes the other). */
static void peer_adopt(struct tpeer *p, struct tstream *t)
{
    struct tstream *cur = p->out, *loser = NULL;
    raft_id self = p->n->io->id;
    if (cur == NULL || !cur->writable) {
        p->out = t;
    } else if (cur != t) {
        raft_id opener_cur = cur->inbound ? p->id : self;
        raft_id opener_new = t->inbound ? p->id : self;
        if (opener_new < opener_cur ||
            (opener_new == opener_cur && t->inbound)) {
            p->out = t;
            loser = cur;
        } else {
            loser = t;
        }
    }
    if (loser != NULL && !loser->inbound) {
        /* Ours lost: what is queued on it still goes, then FIN (the peer
         * half-closes its own losing streams the same way). */
        loser->writable = false;
        lp2p_stream_close_write(loser->s);
    }
    peer_flush(p);
}

static void creq_unlink(struct creq *c)
{
    struct p2praft__net *n = c->n;
    if (n == NULL) {
        return;
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        n->creqs = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->next = c->prev = NULL;
    c->n = NULL;
}

static void creq_maybe_free(struct creq *c)
{
    if (c->opened && c->timer_closed) {
        lp2p__free(c);
    }
}

static void creq_timer_closed(uv_handle_t *h)
{
    struct creq *c = h->data;
    struct p2praft__net *n = c->n;
    c->timer_closed = true;
    creq_unlink(c);
    creq_maybe_free(c);
    if (n != NULL) {
        net_maybe_closed(n);
    }
}

/* The dial is over (stream or not): detach it from its peer. */
static void creq_done(struct creq *c)
{
    c->done = true;
    if (c->peer != NULL && c->peer->dial == c) {
        c->peer->dial = NULL;
    }
    c->peer = NULL;
    uv_close((uv_handle_t *)&c->timer, creq_timer_closed);
}

/* A dial failed: fail what waited for it (`later`: we are inside send(),
 * so on this loop turn instead of now). */
static void dial_failed(struct tpeer *p, const char *why, bool later)
{
    struct p2praft__net *n = p->n;
    struct sreq *keep = NULL, *s;
    LOG_DEBUG(MOD, "connect to %s: %s", p->addr, why);
    p->retry_at = uv_now(n->io->loop) + n->io->cfg.retry_ms;
    /* Everything fails but the newest InstallSnapshot: libraft would not
     * send another one before its install timeout (30 s by default), so it
     * waits for the next dial, which the next message starts once retry_ms
     * passed. */
    while ((s = p->q) != NULL) {
        p->q = s->next;
        if (s->install && (keep == NULL || keep->install)) {
            if (keep != NULL) {
                s->next = NULL;
                later ? sreq_fail_later(n, keep, RAFT_NOCONNECTION)
                      : (void)(n->io->stats.dropped++,
                               sreq_finish(keep, RAFT_NOCONNECTION));
            }
            keep = s;
            continue;
        }
        if (later) {
            sreq_fail_later(n, s, RAFT_NOCONNECTION);
        } else {
            n->io->stats.dropped++;
            sreq_finish(s, RAFT_NOCONNECTION);
        }
    }
    p->q = p->q_tail = keep;
    if (keep != NULL) {
        keep->next = NULL;
    }
}

static void creq_timeout(uv_timer_t *timer)
{
    struct creq *c = timer->data;
    struct tpeer *p = c->peer;
    creq_done(c);
    if (p != NULL) {
        dial_failed(p, "timed out", false);
    }
}

static void close_stream_now(struct lp2p_stream *s)
{
    lp2p_stream_reset(s);
    lp2p_stream_close(s, NULL, NULL);
}

static void creq_open_cb(struct lp2p_stream *s, int status, void *data)
{
    struct creq *c = data;
    struct tpeer *p = c->peer;
    struct tstream *t;
    c->opened = true;
    if (c->done) {
        /* Timed out, or the io closed: nobody waits for this stream. */
        if (s != NULL) {
            close_stream_now(s);
        }
        creq_maybe_free(c);
        return;
    }
    creq_done(c);
    if (status != 0) {
        dial_failed(p, lp2p_strerror(status), false);
        return;
    }
    t = stream_new(p->n, p, s, false);
    if (t == NULL) {
        dial_failed(p, "out of memory", false);
        return;
    }
    peer_adopt(p, t);
}

static void peer_dial(struct tpeer *p)
{
    struct p2praft__net *n = p->n;
    static const char *const protos[] = {P2PRAFT_PROTOCOL};
    struct creq *c = lp2p__calloc(1, sizeof(*c));
    int rv;
    if (c == NULL) {
        dial_failed(p, "out of memory", true);
        return;
    }
    c->n = n;
    c->peer = p;
    uv_timer_init(n->io->loop, &c->timer);
    c->timer.data = c;
    rv = lp2p_stream_open(n->host, &p->pid, protos, 1, creq_open_cb, c);
    if (rv != 0) {
        c->opened = true;
        c->n = NULL;
        c->peer = NULL;
        uv_close((uv_handle_t *)&c->timer, creq_timer_closed);
        dial_failed(p, lp2p_strerror(rv), true);
        return;
    }
    uv_update_time(n->io->loop); /* the timeout counts from now */
    uv_timer_start(&c->timer, creq_timeout, n->io->cfg.dial_timeout_ms, 0);
    c->next = n->creqs;
    if (n->creqs != NULL) {
        n->creqs->prev = c;
    }
    n->creqs = c;
    p->dial = c;
}

/* Messages wait for a stream: dial, unless a dial runs or failed less than
 * retry_ms ago (then the next message tries again). */
static void peer_kick(struct tpeer *p)
{
    if (p->q != NULL && (p->out == NULL || !p->out->writable) &&
        p->dial == NULL && uv_now(p->n->io->loop) >= p->retry_at) {
        peer_dial(p);
    }
}

/* Encode m into s: header (inline when small) and the borrowed payload. */
static int sreq_encode(struct sreq *s, const struct raft_message *m,
                       size_t hlen)
{
    unsigned n_iov = 1, i;
    if (hlen <= sizeof(s->hdr_small)) {
        s->hdr = s->hdr_small;
    } else {
        s->hdr = lp2p__malloc(hlen);
        if (s->hdr == NULL) {
            return RAFT_NOMEM;
        }
    }
    p2praft__rpc_header_write(m, s->hdr);
    if (m->type == RAFT_APPEND_ENTRIES) {
        for (i = 0; i < m->append_entries.n_entries; i++) {
            n_iov += m->append_entries.entries[i].buf.len > 0;
        }
    } else if (m->type == RAFT_INSTALL_SNAPSHOT) {
        n_iov += m->install_snapshot.data.len > 0;
    }
    if (n_iov <= SMALL_IOV) {
        s->iov = s->iov_small;
    } else {
        s->iov = lp2p__malloc(n_iov * sizeof(*s->iov));
        if (s->iov == NULL) {
            return RAFT_NOMEM;
        }
    }
    s->iov[0].base = s->hdr;
    s->iov[0].len = hlen;
    s->n_iov = 1;
    if (m->type == RAFT_APPEND_ENTRIES) {
        for (i = 0; i < m->append_entries.n_entries; i++) {
            const struct raft_buffer *b = &m->append_entries.entries[i].buf;
            if (b->len > 0) {
                s->iov[s->n_iov].base = b->base;
                s->iov[s->n_iov].len = b->len;
                s->n_iov++;
            }
        }
    } else if (m->type == RAFT_INSTALL_SNAPSHOT &&
               m->install_snapshot.data.len > 0) {
        s->iov[1].base = m->install_snapshot.data.base;
        s->iov[1].len = m->install_snapshot.data.len;
        s->n_iov = 2;
    }
    return 0;
}

int p2praft__net_send(struct p2praft__net *n, struct raft_io_send *req,
                      const struct raft_message *m, raft_io_send_cb cb)
{
    struct pio *io = n->io;
    struct raft_message fixed;
    struct tpeer *p;
    struct sreq *s;
    size_t hlen;
    uint64_t total;
    int rv;
    if (n->hashicorp) {
        if (m->type == RAFT_REQUEST_VOTE && !p2praft__io_may_campaign(io)) {
            /* As below; libraft logs a send refused at once and goes on. */
            io->stats.votes_withheld++;
            return RAFT_NOCONNECTION;
        }
        return p2praft__hc_send(n, req, m, cb);
    }
    s = lp2p__calloc(1, sizeof(*s));
    if (s == NULL) {
        return RAFT_NOMEM;
    }
    s->req = req;
    s->cb = cb;
    req->cb = cb;
    if (m->type == RAFT_REQUEST_VOTE && !p2praft__io_may_campaign(io)) {
        /* Our storage cannot write, or we were removed from the cluster:
         * we must not lead (io.c). */
        io->stats.votes_withheld++;
        sreq_fail_later(n, s, RAFT_NOCONNECTION);
        return 0;
    }
    p = peer_find(n, m->server_id);
    if (p == NULL) {
        struct lp2p_peer_id pid;
        if (p2praft__addr_peer(m->server_address, &pid) != 0 ||
            p2praft_server_id(&pid) != m->server_id) {
            LOG_WARN(MOD, "raft server %llu at \"%s\": not a peer ID with "
                          "that raft ID",
                     (unsigned long long)m->server_id,
                     m->server_address != NULL ? m->server_address : "");
            sreq_fail_later(n, s, RAFT_NOCONNECTION);
            return 0;
        }
        p = peer_new(n, &pid, m->server_id);
        if (p == NULL) {
            lp2p__free(s);
            return RAFT_NOMEM;
        }
    }
    if (m->type == RAFT_APPEND_ENTRIES_RESULT) {
        /* Encode from a copy whose fields are all defined (see rpc.h). */
        struct raft *r = p2praft__io_raft(io);
        fixed = *m;
        p2praft__rpc_fix_stale_reject(&fixed, p->ae_term,
                                      r != NULL ? raft_last_index(r) : 0);
        m = &fixed;
    }
    rv = p2praft__rpc_header_len(m, &hlen);
    if (rv != 0) {
        LOG_WARN(MOD, "cannot encode a raft message of type %d: %s", m->type,
                 lp2p_strerror(rv));
        sreq_fail_later(n, s, RAFT_INVALID);
        return 0;
    }
    total = hlen + p2praft__rpc_payload_len(m);
    s->over = p->bytes + total > io->cfg.peer_buffer;
    if (m->type == RAFT_INSTALL_SNAPSHOT && p->installing) {
        /* One snapshot at a time toward a peer: libraft sends it again
         * whenever the peer looks unreachable, which a peer busy reading
         * a big snapshot (behind which its heartbeats wait) does. */
        sreq_fail_later(n, s, RAFT_NOCONNECTION);
        return 0;
    }
    if (n->drop || (s->over && p->over)) {
        /* Cut off (tests), or the peer does not keep up: raft resends. One
         * message past the bound is let in, so that a snapshot bigger than
         * the bound (or arriving behind heartbeats) still goes. */
        sreq_fail_later(n, s, RAFT_NOCONNECTION);
        peer_kick(p);
        return 0;
    }
    rv = sreq_encode(s, m, hlen);
    if (rv != 0) {
        sreq_free(s);
        return rv;
    }
    s->peer = p;
    s->bytes = (size_t)total;
    s->install = m->type == RAFT_INSTALL_SNAPSHOT;
    p->installing = p->installing || s->install;
    p->bytes += s->bytes;
    p->over = p->over || s->over;
    if (p->bytes > io->stats.peak_peer_bytes) {
        io->stats.peak_peer_bytes = p->bytes;
    }
    if (p->out != NULL && p->out->writable && p->q == NULL) {
        sreq_write(p->out, s);
        return 0;
    }
    if (p->dial == NULL && (p->out == NULL || !p->out->writable) &&
        uv_now(io->loop) < p->retry_at) {
        /* Shortly after a failed dial: drop it, unless it is a snapshot
         * (see dial_failed()); the next message after retry_ms dials. */
        if (!s->install) {
            sreq_fail_later(n, s, RAFT_NOCONNECTION);
            return 0;
        }
    }
    s->next = NULL;
    if (p->q_tail != NULL) {
        p->q_tail->next = s;
    } else {
        p->q = s;
    }
    p->q_tail = s;
    if (p->out != NULL && p->out->writable) {
        peer_flush(p);
    } else {
        peer_kick(p);
    }
    return 0;
}

/* ---- streams and receiving ------------------------------------------------ */

static void stream_unlink(struct tstream *t)
{
    struct p2praft__net *n = t->n;
    if (t->prev != NULL) {
        t->prev->next = t->next;
    } else {
        n->streams = t->next;
    }
    if (t->next != NULL) {
        t->next->prev = t->prev;
    }
}

static void stream_closed(struct lp2p_stream *s, void *data)
{
    struct tstream *t = data;
    struct p2praft__net *n = t->n;
    (void)s;
    stream_unlink(t);
    p2praft__rpc_dec_close(&t->dec);
    lp2p__free(t);
    net_maybe_closed(n);
}

/* Stop using t; `reset` aborts it, otherwise queued messages still go. */
static void stream_close(struct tstream *t, bool reset)
{
    if (t->closing) {
        return;
    }
    t->closing = true;
    t->writable = false;
    if (t->peer != NULL && t->peer->out == t) {
        t->peer->out = NULL;
    }
    if (reset) {
        lp2p_stream_reset(t->s);
    }
    lp2p_stream_close(t->s, stream_closed, t);
}

static void stream_read_cb(struct lp2p_stream *s, int status,
                           const uint8_t *buf, size_t len)
{
    struct tstream *t = lp2p_stream_data(s);
    struct p2praft__net *n = t->n;
    struct raft_message m;
    size_t used;
    int rv;
    if (status != 0) {
        if (status != LP2P_EEOF) {
            LOG_DEBUG(MOD, "raft stream from %s ended: %s",
                      t->peer != NULL ? t->peer->addr : "?",
                      lp2p_strerror(status));
        }
        stream_close(t, status != LP2P_EEOF);
        return;
    }
    while (len > 0 && !t->closing) {
        rv = p2praft__rpc_dec_feed(&t->dec, buf, len, &used, &m);
        buf += used;
        len -= used;
        if (rv < 0) {
            LOG_WARN(MOD, "bad raft stream from %s: %s", t->peer->addr,
                     lp2p_strerror(rv));
            n->io->stats.bad_streams++;
            stream_close(t, true);
            return;
        }
        if (rv == 1) {
            /* The sender is the stream's authenticated peer. */
            m.server_id = t->peer->id;
            m.server_address = t->peer->addr;
            if (m.type == RAFT_REQUEST_VOTE) {
                m.request_vote.candidate_id = t->peer->id;
            } else if (m.type == RAFT_APPEND_ENTRIES) {
                t->peer->ae_term = m.append_entries.term;
            }
            if (n->drop || n->closing) {
                p2praft__rpc_message_release(&m);
            } else if (!p2praft__net_still_admits(n, lp2p_stream_peer(s),
                                                  &t->admit)) {
                n->io->stats.refused++;
                LOG_WARN(MOD, "refused a raft message from %s: no longer "
                              "admitted (not in the configuration); closing "
                              "its stream",
                         t->peer->addr);
                p2praft__rpc_message_release(&m);
                stream_close(t, true);
                return;
            } else {
                p2praft__io_recv(n->io, &m);
            }
        }
    }
}

static struct tstream *stream_new(struct p2praft__net *n, struct tpeer *peer,
                                  struct lp2p_stream *s, bool inbound)
{
    struct tstream *t = lp2p__calloc(1, sizeof(*t));
    if (t == NULL) {
        close_stream_now(s);
        return NULL;
    }
    t->n = n;
    t->peer = peer;
    t->s = s;
    t->inbound = inbound;
    t->writable = true;
    p2praft__rpc_dec_init(&t->dec, n->io->cfg.max_message);
    lp2p_stream_set_data(s, t);
    t->next = n->streams;
    if (n->streams != NULL) {
        n->streams->prev = t;
    }
    n->streams = t;
    if (lp2p_stream_read_start(s, stream_read_cb) != 0) {
        stream_close(t, true);
        return NULL;
    }
    return t;
}

static void net_handler(struct lp2p_stream *s, void *data)
{
    struct p2praft__net *n = data;
    const struct lp2p_peer_id *pid = lp2p_stream_peer(s);
    raft_id id = p2praft_server_id(pid);
    struct tpeer *p;
    struct tstream *t;
    char str[LP2P_PEER_ID_STRMAX];
    if (n->closing) {
        close_stream_now(s);
        return;
    }
    if (!p2praft__net_admits(n, pid)) {
        peer_str(pid, str, sizeof(str));
        n->io->stats.refused++;
        LOG_WARN(MOD, "refused raft stream from %s: peer not admitted", str);
        close_stream_now(s);
        return;
    }
    p = peer_find(n, id);
    if (p == NULL) {
        p = peer_new(n, pid, id);
        if (p == NULL) {
            close_stream_now(s);
            return;
        }
    }
    t = stream_new(n, p, s, true);
    if (t != NULL) {
        peer_adopt(p, t);
    }
}

int p2praft__net_listen(struct p2praft__net *n)
{
    int rv;
    if (n->hashicorp) {
        return p2praft__hc_listen(n);
    }
    rv = lp2p_host_set_handler(n->host, P2PRAFT_PROTOCOL, NULL,
                                   net_handler, n);
    if (rv == 0) {
        n->listening = true;
    }
    return rv;
}

/* ---- early election hint -------------------------------------------------- */

/* Our rank (0: first) by raft ID among the voters of r's configuration,
 * leaving out `gone`. */
static unsigned voter_rank(const struct raft *r, raft_id gone)
{
    unsigned i, rank = 0;
    for (i = 0; i < r->configuration.n; i++) {
        const struct raft_server *s = &r->configuration.servers[i];
        if (s->role == RAFT_VOTER && s->id != gone && s->id < r->id) {
            rank++;
        }
    }
    return rank;
}

static void net_conn_event(struct lp2p_host *host, enum lp2p_conn_event event,
                           const struct lp2p_conn_info *info, int status,
                           void *data)
{
    struct p2praft__net *n = data;
    struct raft *r = p2praft__io_raft(n->io);
    raft_time now, elapsed;
    unsigned rank, delay;
    char str[LP2P_PEER_ID_STRMAX];
    (void)host;
    if (event != LP2P_CONN_DISCONNECTED || r == NULL || n->closing ||
        !n->io->started) {
        return;
    }
    if (r->state != RAFT_FOLLOWER ||
        r->follower_state.current_leader.id == 0 ||
        r->follower_state.current_leader.id != p2praft_server_id(info->peer)) {
        return;
    }
    /* A duplicate connection closing (simultaneous dials) is no loss. */
    if (lp2p_host_is_connected(n->host, info->peer)) {
        return;
    }
    peer_str(info->peer, str, sizeof(str));
    LOG_INFO(MOD, "lost the connection to the leader %s (%s)", str,
             status != 0 ? lp2p_strerror(status) : "closed");
    if (!n->hint_enabled) {
        return;
    }
    /*
     * libraft 0.22 has no call to start an election on a follower. Its
     * follower converts to candidate once now >= election_timer_start +
     * follower_state.randomized_election_timeout (both public fields,
     * checked on every tick), and any AppendEntries from a live leader
     * resets them. So shorten the current timeout: the surviving voter
     * with the smallest raft ID starts at once (on a tick started now),
     * the next one half an election timeout later, and so on, so that two
     * followers do not split the vote by starting on the same tick.
     */
    rank = voter_rank(r, p2praft_server_id(info->peer));
    now = n->io->io->time(n->io->io);
    elapsed = now >= r->election_timer_start ? now - r->election_timer_start
                                             : 0;
    delay = rank * (r->election_timeout / 2);
    if (elapsed + delay < r->follower_state.randomized_election_timeout) {
        r->follower_state.randomized_election_timeout =
            (unsigned)(elapsed + delay);
    }
    /*
     * And forget the leader, as libraft does when a follower steps down
     * (convertClear): a follower that knows a leader rejects every
     * (pre-)vote, so the first follower to start an election would be
     * refused by the others until they started their own. Forgetting it,
     * they grant it. A leader that is in fact alive is learnt again from
     * its next AppendEntries (with pre-vote, a stray candidate cannot
     * depose it).
     */
    r->follower_state.current_leader.id = 0;
    raft_free(r->follower_state.current_leader.address);
    r->follower_state.current_leader.address = NULL;
    n->io->stats.hints++;
    if (rank == 0) {
        p2praft__io_tick_now(n->io);
    }
}

/* ---- life ---------------------------------------------------------------- */

void p2praft__net_init(struct p2praft__net *n, struct pio *io,
                       struct lp2p_host *host)
{
    memset(n, 0, sizeof(*n));
    n->io = io;
    n->host = host;
    n->hint_enabled = true;
}

static void net_maybe_closed(struct p2praft__net *n)
{
    void (*cb)(struct p2praft__net *);
    if (!n->closing || n->streams != NULL || n->creqs != NULL ||
        (n->hashicorp && !n->hc_closed) || n->closed_cb == NULL) {
        return;
    }
    cb = n->closed_cb;
    n->closed_cb = NULL;
    cb(n);
}

void p2praft__net_close(struct p2praft__net *n,
                        void (*closed_cb)(struct p2praft__net *n))
{
    struct tpeer *p;
    struct tstream *t;
    struct creq *c;
    n->closing = true;
    n->closed_cb = closed_cb;
    if (n->hashicorp) {
        if (n->observing) {
            lp2p_host_unobserve(n->host, net_conn_event, n);
            n->observing = false;
        }
        p2praft__hc_close(n);
        return;
    }
    if (n->listening) {
        lp2p_host_remove_handler(n->host, P2PRAFT_PROTOCOL);
        n->listening = false;
    }
    if (n->observing) {
        lp2p_host_unobserve(n->host, net_conn_event, n);
        n->observing = false;
    }
    for (c = n->creqs; c != NULL; c = c->next) {
        if (!c->done) {
            creq_done(c); /* the timer closes; the open callback finds done */
        }
    }
    for (p = n->peers; p != NULL; p = p->next) {
        peer_fail_queue(p, RAFT_CANCELED);
        p->out = NULL;
    }
    for (t = n->streams; t != NULL; t = t->next) {
        stream_close(t, true);
    }
    net_maybe_closed(n);
}

void p2praft__net_hc_closed(struct p2praft__net *n)
{
    n->hc_closed = true;
    net_maybe_closed(n);
}

void p2praft__net_free(struct p2praft__net *n)
{
    struct creq *c;
    p2praft__hc_free(n);
    if (n->observing) {
        lp2p_host_unobserve(n->host, net_conn_event, n);
        n->observing = false;
    }
    /* Normally closed: nothing left. Otherwise orphan the dials so that
     * nothing points at freed memory. */
    while ((c = n->creqs) != NULL) {
        creq_unlink(c);
        if (!c->done) {
            c->done = true;
            c->peer = NULL;
            uv_close((uv_handle_t *)&c->timer, creq_timer_closed);
        }
    }
    if (n->streams != NULL) {
        LOG_WARN(MOD, "raft io freed with open streams (raft not closed?)");
    }
    while (n->peers != NULL) {
        struct tpeer *p = n->peers;
        n->peers = p->next;
        lp2p__free(p);
    }
    lp2p__free(n->members);
    n->members = NULL;
    n->n_members = 0;
}

int p2praft__net_observe(struct p2praft__net *n)
{
    int rv = lp2p_host_observe(n->host, net_conn_event, n);
    if (rv == 0) {
        n->observing = true;
    }
    return rv;
}

unsigned p2praft__net_streams(struct p2praft__net *n, unsigned *writable)
{
    struct tstream *t;
    unsigned k = 0, w = 0;
    if (n->hashicorp) {
        return p2praft__hc_streams(n, writable);
    }
    for (t = n->streams; t != NULL; t = t->next) {
        k += !t->closing;
        w += !t->closing && t->writable;
    }
    if (writable != NULL) {
        *writable = w;
    }
    return k;
}
