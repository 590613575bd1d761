/*
 * raft_uv_transport over libp2p streams (see p2praft.h, "Transport").
 *
 * Every raft connection is one libp2p stream of P2PRAFT_PROTOCOL. Raft is
 * handed one end of an AF_UNIX socketpair as a uv_pipe_t (allocated with
 * raft_malloc(), since raft frees it); a bridge owns the other end and the
 * stream and pumps bytes both ways:
 *   pipe -> stream: each read chunk is written to the stream (the stream
 *     borrows the chunk until its write callback); reading the pipe stops
 *     while more than BRIDGE_HIGH bytes are queued on the stream;
 *   stream -> pipe: uv_try_write first, the rest copied into a uv_write;
 *     reading the stream stops while more than BRIDGE_HIGH bytes wait for
 *     the pipe (libp2p flow control then holds the peer back).
 * Raft only writes on streams it dialed and only reads on streams it
 * accepted. When raft closes its end, the bridge closes the stream (queued
 * data still goes out, then FIN). When the peer ends the stream, the bridge
 * flushes what it holds into the pipe and closes its end: raft reads EOF
 * (accepted streams) or fails its next write (dialed ones) and reconnects.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "../util/heap.h"
#include "../util/log.h"
#include "p2praft.h"

#define MOD "transport"
#define BRIDGE_CHUNK 65536
#define BRIDGE_HIGH (1024 * 1024)

struct tp;

struct bridge {
    struct tp *tp;
    struct bridge *next, *prev;
    struct lp2p_stream *s;
    uv_pipe_t pipe;       /* our end of the socketpair */
    uv_shutdown_t shut;   /* flush before closing our end */
    size_t to_stream;     /* bytes queued on the stream */
    size_t to_pipe;       /* bytes queued on the pipe */
    unsigned n_swrites;   /* stream writes not yet completed */
    bool pipe_reading;    /* uv_read_start active */
    bool pipe_eof;        /* raft closed its end */
    bool stream_reading;  /* lp2p_stream_read_start active */
    bool stream_done;     /* the stream delivered its last read event */
    bool shutting;        /* uv_shutdown in flight */
    bool closing;         /* torn down: waiting for the callbacks */
    bool pipe_closed;
    bool stream_closed;
};

/* One raft connect in flight. Once `done` (answered to raft, by a timeout
 * or a cancel) it only waits for the open callback, then frees itself. */
struct creq {
    struct tp *tp; /* NULL once orphaned */
    struct creq *next, *prev;
    struct raft_uv_connect *req;
    raft_uv_connect_cb cb;
    uv_timer_t timer;
    struct lp2p_peer_id peer;
    bool done;
    bool opened; /* the open callback ran */
    bool timer_closed;
};

struct tp {
    struct raft_uv_transport *t;
    struct lp2p_host *host;
    uv_loop_t *loop;
    unsigned timeout_ms;
    raft_id id;
    char address[LP2P_PEER_ID_STRMAX];
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb close_cb;
    bool listening;
    bool closing;
    bool in_close; /* inside tp_close(): the close callback must wait */
    bool observing;
    bool hint_enabled;
    struct raft *raft;
    p2praft_admit_fn admit;
    void *admit_ctx;
    struct lp2p_peer_id *members;
    size_t n_members;
    struct bridge *bridges;
    struct creq *creqs;
    uint64_t refused;
    uint64_t hints;
    uint64_t rng; /* xorshift64 state, seeded per transport */
};

/* A random number in [0, n]: processes and nodes draw different jitters
 * (rand() would give every freshly started process the same sequence). */
static unsigned tp_random(struct tp *tp, unsigned n)
{
    uint64_t x = tp->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    tp->rng = x;
    return (unsigned)(x % ((uint64_t)n + 1));
}

/* ---- server IDs ---------------------------------------------------------- */

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

/* ---- admission ----------------------------------------------------------- */

static bool conf_has(const struct raft_configuration *c, raft_id id,
                     const char *addr)
{
    unsigned i;
    for (i = 0; i < c->n; i++) {
        if (c->servers[i].id == id && c->servers[i].address != NULL &&
            strcmp(c->servers[i].address, addr) == 0) {
            return true;
        }
    }
    return false;
}

static bool default_admit(struct tp *tp, const struct lp2p_peer_id *peer,
                          raft_id id)
{
    char s[LP2P_PEER_ID_STRMAX];
    size_t i;
    for (i = 0; i < tp->n_members; i++) {
        if (lp2p_peer_id_equal(&tp->members[i], peer)) {
            return true;
        }
    }
    if (tp->raft == NULL) {
        return false;
    }
    peer_str(peer, s, sizeof(s));
    return conf_has(&tp->raft->configuration, id, s) ||
           conf_has(&tp->raft->configuration_committed, id, s);
}

static bool admits(struct tp *tp, const struct lp2p_peer_id *peer)
{
    raft_id id = p2praft_server_id(peer);
    if (lp2p_peer_id_equal(peer, lp2p_host_id(tp->host))) {
        return false;
    }
    if (tp->admit != NULL) {
        return tp->admit(tp->admit_ctx, peer, id);
    }
    return default_admit(tp, peer, id);
}

/* ---- bridges ------------------------------------------------------------- */

static void tp_maybe_closed(struct tp *tp);

static void bridge_maybe_free(struct bridge *b)
{
    struct tp *tp = b->tp;
    if (!b->pipe_closed || !b->stream_closed || b->n_swrites != 0) {
        return;
    }
    if (b->prev != NULL) {
        b->prev->next = b->next;
    } else {
        tp->bridges = b->next;
    }
    if (b->next != NULL) {
        b->next->prev = b->prev;
    }
    lp2p__free(b);
    tp_maybe_closed(tp);
}

static void bridge_pipe_closed(uv_handle_t *h)
{
    struct bridge *b = h->data;
    b->pipe_closed = true;
    bridge_maybe_free(b);
}

static void bridge_stream_closed(struct lp2p_stream *s, void *data)
{
    struct bridge *b = data;
    (void)s;
    b->stream_closed = true;
    bridge_maybe_free(b);
}

/* Tear down: close both ends; `reset` aborts the stream instead of letting
 * queued data go out first. */
static void bridge_close(struct bridge *b, bool reset)
{
    if (b->closing) {
        return;
    }
    b->closing = true;
    if (reset) {
        lp2p_stream_reset(b->s);
    }
    lp2p_stream_close(b->s, bridge_stream_closed, b);
    uv_close((uv_handle_t *)&b->pipe, bridge_pipe_closed);
}

struct swrite {
    struct bridge *b;
    size_t len;
    uint8_t data[];
};

static void pipe_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void pipe_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct swrite *w = lp2p__malloc(sizeof(*w) + BRIDGE_CHUNK);
    (void)h;
    (void)hint;
    if (w == NULL) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)w->data;
    buf->len = BRIDGE_CHUNK;
}

static void pipe_resume(struct bridge *b)
{
    if (!b->closing && !b->pipe_eof && !b->pipe_reading &&
        b->to_stream <= BRIDGE_HIGH / 2) {
        if (uv_read_start((uv_stream_t *)&b->pipe, pipe_alloc_cb,
                          pipe_read_cb) == 0) {
            b->pipe_reading = true;
        } else {
            bridge_close(b, true);
        }
    }
}

static void stream_write_cb(struct lp2p_stream *s, int status, void *data)
{
    struct swrite *w = data;
    struct bridge *b = w->b;
    (void)s;
    b->to_stream -= w->len;
    b->n_swrites--;
    lp2p__free(w);
    if (b->closing) {
        bridge_maybe_free(b);
        return;
    }
    if (status != 0) {
        LOG_DEBUG(MOD, "stream write: %s", lp2p_strerror(status));
        bridge_close(b, true);
        return;
    }
    pipe_resume(b);
}

static void pipe_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct bridge *b = st->data;
    struct swrite *w =
        buf->base != NULL
            ? (struct swrite *)(void *)(buf->base - offsetof(struct swrite,
                                                              data))
            : NULL;
    int rv;
    if (nread <= 0) {
        lp2p__free(w);
        if (nread == 0) {
            return;
        }
        /* Raft closed its end (EOF), or the pipe broke: nothing more can
         * reach raft, so end the stream; queued data still goes out. */
        uv_read_stop(st);
        b->pipe_reading = false;
        b->pipe_eof = true;
        bridge_close(b, nread != UV_EOF);
        return;
    }
    if ((size_t)nread < BRIDGE_CHUNK / 2) {
        /* Small message: do not keep a whole chunk queued for it. */
        struct swrite *small = lp2p__realloc(w, sizeof(*w) + (size_t)nread);
        if (small != NULL) {
            w = small;
        }
    }
    w->b = b;
    w->len = (size_t)nread;
    rv = lp2p_stream_write(b->s, w->data, w->len, stream_write_cb, w);
    if (rv != 0) {
        lp2p__free(w);
        bridge_close(b, true);
        return;
    }
    b->n_swrites++;
    b->to_stream += w->len;
    if (b->to_stream > BRIDGE_HIGH) {
        uv_read_stop(st);
        b->pipe_reading = false;
    }
}

struct pwrite {
    uv_write_t req;
    struct bridge *b;
    size_t len;
    uint8_t data[];
};

static void stream_read_cb(struct lp2p_stream *s, int status,
                           const uint8_t *buf, size_t len);

static void stream_resume(struct bridge *b)
{
    if (!b->closing && !b->stream_done && !b->stream_reading &&
        b->to_pipe <= BRIDGE_HIGH / 2) {
        if (lp2p_stream_read_start(b->s, stream_read_cb) == 0) {
            b->stream_reading = true;
        } else {
            bridge_close(b, true);
        }
    }
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    struct bridge *b = req->data;
    (void)status;
    b->shutting = false;
    /* Everything the peer sent is in the socketpair: our end may go. */
    bridge_close(b, false);
}

/* The peer ended the stream: flush what raft has not received yet, then
 * close our end. */
static void bridge_stream_ended(struct bridge *b)
{
    if (b->closing || b->shutting) {
        return;
    }
    b->shut.data = b;
    if (uv_shutdown(&b->shut, (uv_stream_t *)&b->pipe, shutdown_cb) == 0) {
        b->shutting = true;
    } else {
        bridge_close(b, false);
    }
}

static void pipe_write_cb(uv_write_t *req, int status)
{
    struct pwrite *w = req->data;
    struct bridge *b = w->b;
    b->to_pipe -= w->len;
    lp2p__free(w);
    if (status != 0) {
        if (!b->closing) {
            bridge_close(b, true);
        }
        return;
    }
    stream_resume(b);
}

static void stream_read_cb(struct lp2p_stream *s, int status,
                           const uint8_t *buf, size_t len)
{
    struct bridge *b = lp2p_stream_data(s);
    struct pwrite *w;
    uv_buf_t ub;
    int n;
    if (status != 0) {
        b->stream_done = true;
        b->stream_reading = false;
        if (status == LP2P_EEOF) {
            bridge_stream_ended(b);
        } else {
            LOG_DEBUG(MOD, "raft stream ended: %s", lp2p_strerror(status));
            bridge_close(b, true);
        }
        return;
    }
    if (len == 0 || b->closing) {
        return;
    }
    if (b->to_pipe == 0) {
        ub = uv_buf_init((char *)(uintptr_t)buf, (unsigned)len);
        n = uv_try_write((uv_stream_t *)&b->pipe, &ub, 1);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            if (len == 0) {
                return;
            }
        } else if (n != UV_EAGAIN) {
            bridge_close(b, true);
            return;
        }
    }
    w = lp2p__malloc(sizeof(*w) + len);
    if (w == NULL) {
        bridge_close(b, true);
        return;
    }
    memcpy(w->data, buf, len);
    w->b = b;
    w->len = len;
    w->req.data = w;
    ub = uv_buf_init((char *)w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&b->pipe, &ub, 1, pipe_write_cb) !=
        0) {
        lp2p__free(w);
        bridge_close(b, true);
        return;
    }
    b->to_pipe += len;
    if (b->to_pipe > BRIDGE_HIGH) {
        lp2p_stream_read_stop(s);
        b->stream_reading = false;
    }
}

static void raft_pipe_free(uv_handle_t *h)
{
    raft_free(h);
}

static void close_stream_now(struct lp2p_stream *s)
{
    lp2p_stream_reset(s);
    lp2p_stream_close(s, NULL, NULL);
}

/* Bridge `s` (ownership taken, also on failure: it is then reset) to a new
 * pipe for raft, returned in *out. 0, LP2P_ENOMEM or LP2P_EIO. */
static int bridge_new(struct tp *tp, struct lp2p_stream *s, uv_stream_t **out)
{
    struct bridge *b;
    uv_pipe_t *rp;
    int fds[2];
    int rv, rv2;

    *out = NULL;
    b = lp2p__calloc(1, sizeof(*b));
    rp = raft_malloc(sizeof(*rp));
    if (b == NULL || rp == NULL) {
        lp2p__free(b);
        raft_free(rp);
        close_stream_now(s);
        return LP2P_ENOMEM;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        LOG_WARN(MOD, "socketpair: %s", strerror(errno));
        lp2p__free(b);
        raft_free(rp);
        close_stream_now(s);
        return LP2P_EIO;
    }
    b->tp = tp;
    b->s = s;
    b->pipe.data = b;
    lp2p_stream_set_data(s, b);
    b->next = tp->bridges;
    if (tp->bridges != NULL) {
        tp->bridges->prev = b;
    }
    tp->bridges = b;
    uv_pipe_init(tp->loop, rp, 0);
    uv_pipe_init(tp->loop, &b->pipe, 0);
    rv = uv_pipe_open(rp, fds[0]);
    rv2 = uv_pipe_open(&b->pipe, fds[1]);
    if (rv != 0 || rv2 != 0) {
        /* A handle that failed to open does not own its descriptor. */
        if (rv != 0) {
            close(fds[0]);
        }
        if (rv2 != 0) {
            close(fds[1]);
        }
        uv_close((uv_handle_t *)rp, raft_pipe_free);
        bridge_close(b, true);
        return LP2P_EIO;
    }
    rv = uv_read_start((uv_stream_t *)&b->pipe, pipe_alloc_cb, pipe_read_cb);
    if (rv == 0) {
        b->pipe_reading = true;
        rv = lp2p_stream_read_start(s, stream_read_cb);
        b->stream_reading = rv == 0;
    }
    if (rv != 0) {
        uv_close((uv_handle_t *)rp, raft_pipe_free);
        bridge_close(b, true);
        return LP2P_EIO;
    }
    *out = (uv_stream_t *)rp;
    return 0;
}

/* ---- connect ------------------------------------------------------------- */

static void creq_unlink(struct creq *c)
{
    struct tp *tp = c->tp;
    if (tp == NULL) {
        return;
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        tp->creqs = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->next = c->prev = NULL;
    c->tp = NULL;
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
    c->timer_closed = true;
    creq_maybe_free(c);
}

/* Answer raft (once) and detach the request from the transport. */
static void creq_finish(struct creq *c, uv_stream_t *stream, int status)
{
    struct tp *tp = c->tp;
    c->done = true;
    uv_close((uv_handle_t *)&c->timer, creq_timer_closed);
    creq_unlink(c);
    c->cb(c->req, stream, status);
    if (tp != NULL) {
        tp_maybe_closed(tp);
    }
}

static void creq_timeout(uv_timer_t *timer)
{
    struct creq *c = timer->data;
    char s[LP2P_PEER_ID_STRMAX];
    peer_str(&c->peer, s, sizeof(s));
    LOG_DEBUG(MOD, "connect to %s: timed out", s);
    creq_finish(c, NULL, RAFT_NOCONNECTION);
}

static void creq_open_cb(struct lp2p_stream *stream, int status, void *data)
{
    struct creq *c = data;
    struct tp *tp = c->tp;
    uv_stream_t *rs = NULL;
    int rv;
    c->opened = true;
    if (c->done) {
        if (stream != NULL) {
            close_stream_now(stream);
        }
        creq_maybe_free(c);
        return;
    }
    if (status != 0) {
        char s[LP2P_PEER_ID_STRMAX];
        peer_str(&c->peer, s, sizeof(s));
        LOG_DEBUG(MOD, "connect to %s: %s", s, lp2p_strerror(status));
        creq_finish(c, NULL, RAFT_NOCONNECTION);
        return;
    }
    rv = bridge_new(tp, stream, &rs);
    creq_finish(c, rs, rv == 0 ? 0 : RAFT_NOCONNECTION);
}

static int tp_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
                      raft_id id, const char *address, raft_uv_connect_cb cb)
{
    struct tp *tp = t->impl;
    static const char *const protos[] = {P2PRAFT_PROTOCOL};
    struct creq *c;
    int rv;
    if (tp->closing) {
        return RAFT_CANCELED;
    }
    c = lp2p__calloc(1, sizeof(*c));
    if (c == NULL) {
        return RAFT_NOMEM;
    }
    if (lp2p_peer_id_parse(&c->peer, address) != 0) {
        snprintf(t->errmsg, sizeof(t->errmsg),
                 "raft address is not a peer ID: %s", address);
        lp2p__free(c);
        return RAFT_NOCONNECTION;
    }
    if (p2praft_server_id(&c->peer) != id) {
        snprintf(t->errmsg, sizeof(t->errmsg),
                 "raft ID %llu is not the one of peer %s",
                 (unsigned long long)id, address);
        LOG_WARN(MOD, "%s", t->errmsg);
        lp2p__free(c);
        return RAFT_NOCONNECTION;
    }
    c->req = req;
    c->cb = cb;
    c->tp = tp;
    uv_timer_init(tp->loop, &c->timer);
    c->timer.data = c;
    rv = lp2p_stream_open(tp->host, &c->peer, protos, 1, creq_open_cb, c);
    if (rv != 0) {
        LOG_DEBUG(MOD, "connect to %s: %s", address, lp2p_strerror(rv));
        c->opened = true;
        c->tp = NULL;
        uv_close((uv_handle_t *)&c->timer, creq_timer_closed);
        return RAFT_NOCONNECTION;
    }
    uv_update_time(tp->loop); /* the timeout counts from now */
    uv_timer_start(&c->timer, creq_timeout, tp->timeout_ms, 0);
    c->next = tp->creqs;
    if (tp->creqs != NULL) {
        tp->creqs->prev = c;
    }
    tp->creqs = c;
    return 0;
}

/* ---- listen -------------------------------------------------------------- */

static void tp_handler(struct lp2p_stream *s, void *data)
{
    struct tp *tp = data;
    const struct lp2p_peer_id *peer = lp2p_stream_peer(s);
    char str[LP2P_PEER_ID_STRMAX];
    uv_stream_t *rs;
    peer_str(peer, str, sizeof(str));
    if (tp->closing || tp->accept_cb == NULL) {
        close_stream_now(s);
        return;
    }
    if (!admits(tp, peer)) {
        tp->refused++;
        LOG_WARN(MOD, "refused raft stream from %s: peer not admitted", str);
        close_stream_now(s);
        return;
    }
    if (bridge_new(tp, s, &rs) != 0) {
        return;
    }
    tp->accept_cb(tp->t, p2praft_server_id(peer), str, rs);
}

static int tp_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct tp *tp = t->impl;
    int rv;
    tp->accept_cb = cb;
    rv = lp2p_host_set_handler(tp->host, P2PRAFT_PROTOCOL, NULL, tp_handler,
                               tp);
    if (rv != 0) {
        snprintf(t->errmsg, sizeof(t->errmsg), "set handler: %s",
                 lp2p_strerror(rv));
        return rv == LP2P_ENOMEM ? RAFT_NOMEM : RAFT_IOERR;
    }
    tp->listening = true;
    return 0;
}

/* ---- early election hint ------------------------------------------------- */

static void tp_conn_event(struct lp2p_host *host, enum lp2p_conn_event event,
                          const struct lp2p_conn_info *info, int status,
                          void *data)
{
    struct tp *tp = data;
    struct raft *r = tp->raft;
    raft_time now, elapsed;
    unsigned jitter;
    char str[LP2P_PEER_ID_STRMAX];
    (void)host;
    if (event != LP2P_CONN_DISCONNECTED || r == NULL || tp->closing) {
        return;
    }
    if (r->state != RAFT_FOLLOWER ||
        r->follower_state.current_leader.id == 0 ||
        r->follower_state.current_leader.id != p2praft_server_id(info->peer)) {
        return;
    }
    /* A duplicate connection closing (simultaneous dials) is no loss. */
    if (lp2p_host_is_connected(tp->host, info->peer)) {
        return;
    }
    peer_str(info->peer, str, sizeof(str));
    LOG_INFO(MOD, "lost the connection to the leader %s (%s)", str,
             status != 0 ? lp2p_strerror(status) : "closed");
    if (!tp->hint_enabled || r->io == NULL) {
        return;
    }
    /*
     * libraft 0.22 has no call to start an election on a follower. Its
     * follower converts to candidate once now >= election_timer_start +
     * follower_state.randomized_election_timeout (both public fields,
     * checked on every tick), and any AppendEntries from a live leader
     * resets them. So shorten the current timeout to expire within a
     * random fraction (0..1/2) of the election timeout from now: followers
     * that all lost the leader start (pre-)votes at different moments, and
     * a follower whose leader is in fact alive is reset by the next
     * heartbeat (with pre-vote, a stray candidate cannot depose it).
     */
    now = r->io->time(r->io);
    elapsed = now >= r->election_timer_start ? now - r->election_timer_start
                                             : 0;
    jitter = tp_random(tp, r->election_timeout / 2);
    if (elapsed + jitter < r->follower_state.randomized_election_timeout) {
        r->follower_state.randomized_election_timeout =
            (unsigned)(elapsed + jitter);
        tp->hints++;
    }
}

/* ---- close --------------------------------------------------------------- */

static void tp_maybe_closed(struct tp *tp)
{
    raft_uv_transport_close_cb cb;
    if (!tp->closing || tp->in_close || tp->close_cb == NULL ||
        tp->bridges != NULL || tp->creqs != NULL) {
        return;
    }
    cb = tp->close_cb;
    tp->close_cb = NULL;
    cb(tp->t);
}

static void tp_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct tp *tp = t->impl;
    struct bridge *b;
    tp->closing = true;
    tp->in_close = true;
    tp->close_cb = cb;
    tp->accept_cb = NULL;
    if (tp->listening) {
        lp2p_host_remove_handler(tp->host, P2PRAFT_PROTOCOL);
        tp->listening = false;
    }
    while (tp->creqs != NULL) {
        creq_finish(tp->creqs, NULL, RAFT_CANCELED);
    }
    for (b = tp->bridges; b != NULL; b = b->next) {
        bridge_close(b, true);
    }
    tp->in_close = false;
    /* Last: the callback may lead raft's user to free the transport. */
    tp_maybe_closed(tp);
}

static int tp_init(struct raft_uv_transport *t, raft_id id,
                   const char *address)
{
    struct tp *tp = t->impl;
    char self[LP2P_PEER_ID_STRMAX];
    peer_str(lp2p_host_id(tp->host), self, sizeof(self));
    if (strcmp(address, self) != 0 ||
        id != p2praft_server_id(lp2p_host_id(tp->host))) {
        snprintf(t->errmsg, sizeof(t->errmsg),
                 "raft address/ID must be the host's peer ID %s and %llu",
                 self,
                 (unsigned long long)p2praft_server_id(lp2p_host_id(tp->host)));
        return RAFT_INVALID;
    }
    tp->id = id;
    snprintf(tp->address, sizeof(tp->address), "%s", address);
    return 0;
}

/* ---- public API ---------------------------------------------------------- */

int p2praft_transport_init(struct raft_uv_transport *t, struct lp2p_host *host,
                           unsigned timeout_ms)
{
    struct tp *tp;
    int rv;
    if (t == NULL || host == NULL) {
        return LP2P_EINVAL;
    }
    tp = lp2p__calloc(1, sizeof(*tp));
    if (tp == NULL) {
        return LP2P_ENOMEM;
    }
    tp->t = t;
    tp->host = host;
    tp->loop = lp2p_host_loop(host);
    tp->timeout_ms = timeout_ms != 0 ? timeout_ms : P2PRAFT_DIAL_TIMEOUT_MS;
    tp->hint_enabled = true;
    tp->rng = (p2praft_server_id(lp2p_host_id(host)) ^ uv_hrtime() ^
               ((uint64_t)getpid() << 32)) |
              1;
    rv = lp2p_host_observe(host, tp_conn_event, tp);
    if (rv != 0) {
        lp2p__free(tp);
        return rv;
    }
    tp->observing = true;
    memset(t, 0, sizeof(*t));
    t->version = 1;
    t->impl = tp;
    t->init = tp_init;
    t->listen = tp_listen;
    t->connect = tp_connect;
    t->close = tp_close;
    return 0;
}

void p2praft_transport_close(struct raft_uv_transport *t)
{
    struct tp *tp;
    struct bridge *b;
    if (t == NULL || t->impl == NULL) {
        return;
    }
    tp = t->impl;
    if (tp->listening) {
        lp2p_host_remove_handler(tp->host, P2PRAFT_PROTOCOL);
    }
    if (tp->observing) {
        lp2p_host_unobserve(tp->host, tp_conn_event, tp);
    }
    /* Normally raft closed us and nothing is left; otherwise orphan what
     * is in flight so that nothing points at freed memory. */
    while (tp->creqs != NULL) {
        struct creq *c = tp->creqs;
        creq_unlink(c);
        if (!c->done) {
            c->done = true;
            uv_close((uv_handle_t *)&c->timer, creq_timer_closed);
        }
    }
    for (b = tp->bridges; b != NULL; b = b->next) {
        LOG_WARN(MOD, "transport freed with live bridges (raft not closed?)");
        break;
    }
    lp2p__free(tp->members);
    lp2p__free(tp);
    t->impl = NULL;
}

void p2praft_transport_set_raft(struct raft_uv_transport *t, struct raft *r)
{
    if (t != NULL && t->impl != NULL) {
        ((struct tp *)t->impl)->raft = r;
    }
}

void p2praft_transport_set_hint(struct raft_uv_transport *t, bool enabled)
{
    if (t != NULL && t->impl != NULL) {
        ((struct tp *)t->impl)->hint_enabled = enabled;
    }
}

int p2praft_transport_set_members(struct raft_uv_transport *t,
                                  const struct lp2p_peer_id *peers, size_t n)
{
    struct tp *tp;
    struct lp2p_peer_id *m = NULL;
    if (t == NULL || t->impl == NULL || (n > 0 && peers == NULL)) {
        return LP2P_EINVAL;
    }
    tp = t->impl;
    if (n > 0) {
        m = lp2p__memdup(peers, n * sizeof(*peers));
        if (m == NULL) {
            return LP2P_ENOMEM;
        }
    }
    lp2p__free(tp->members);
    tp->members = m;
    tp->n_members = n;
    return 0;
}

void p2praft_transport_set_admit(struct raft_uv_transport *t,
                                 p2praft_admit_fn fn, void *ctx)
{
    if (t != NULL && t->impl != NULL) {
        struct tp *tp = t->impl;
        tp->admit = fn;
        tp->admit_ctx = ctx;
    }
}

bool p2praft_transport_admits(struct raft_uv_transport *t,
                              const struct lp2p_peer_id *peer)
{
    return t != NULL && t->impl != NULL && peer != NULL &&
           admits(t->impl, peer);
}

uint64_t p2praft_transport_refused(struct raft_uv_transport *t)
{
    return t != NULL && t->impl != NULL ? ((struct tp *)t->impl)->refused : 0;
}

uint64_t p2praft_transport_hints(struct raft_uv_transport *t)
{
    return t != NULL && t->impl != NULL ? ((struct tp *)t->impl)->hints : 0;
}
