/*
 * Yamux session (see yamux.h for the API contract and memory bound).
 *
 * Happy path. feed() cuts the byte stream into 12-byte headers and DATA
 * payloads; a header may arrive split, a payload is handed to the host in
 * whatever pieces arrive (zero-copy, EV_DATA). Frames that concern a stream
 * only set flags on it; pull() turns those flags into frames:
 *   - session control frames (ping acks, our pings, refusals, GO_AWAY) sit
 *     in a small byte queue and go first;
 *   - streams that have something to say sit on a ready list served
 *     round-robin, one control WINDOW_UPDATE (SYN/ACK/FIN plus credit) and
 *     one DATA frame per visit, DATA cut to the peer's window, to 64 KiB
 *     - 12 and to the room left in the host's buffer.
 * SYN, ACK, FIN and RST always travel on WINDOW_UPDATE frames, as go-yamux
 * sends them. Window credit is returned when the host reports consumption
 * and at least half a window is due (or with a SYN/ACK).
 *
 * Auto-tuning (no clock here): when a window update falls due, the window
 * doubles (up to max_window, within window_budget for the session) if the
 * peer had used the whole window since our last update (it was window
 * limited) and the host had consumed everything received (the reader keeps
 * up). A host that consumes in big batches after the peer filled the
 * window also looks like that; the cost is memory within the bound above.
 *
 * Failure modes: any protocol violation fails the session (fail()): the
 * GO_AWAY goes into a reserved slot so that it needs no allocation, stream
 * output stops, feed() returns the error. Streams released by the host in
 * a callback are unlinked at once and freed when the outermost feed() or
 * pull() returns, so code after a callback never touches freed memory.
 */
#include <string.h>

#include "lp2p.h"
#include "util/byteorder.h"
#include "util/heap.h"
#include "util/log.h"
#include "yamux.h"

#define HDR LP2P__YAMUX_HEADER_LEN
/* A SYN this far below the highest peer ID seen is an ID reuse. Closer
 * ones are tolerated: go-yamux can send SYNs of concurrent opens out of
 * order. */
#define REORDER_SLACK 4096u
/* Do not cut DATA smaller than this just to fill a buffer's tail. */
#define MIN_TAIL_PAYLOAD 1024u
#define CTRL_SLACK 128u

struct bq {
    uint8_t *data;
    size_t off; /* first byte in use */
    size_t len; /* bytes in use */
    size_t cap;
};

struct lp2p__yamux_stream {
    struct lp2p__yamux_session *sess;
    uint32_t id;
    void *user;
    struct lp2p__yamux_stream *hnext;        /* hash chain */
    struct lp2p__yamux_stream *rprev, *rnext; /* ready list */
    struct lp2p__yamux_stream *gnext;        /* graveyard */
    uint8_t inbound, in_ready, released, dead;
    uint8_t syn_pending, ack_pending, in_backlog, unacked;
    uint8_t fin_req, fin_sent, remote_fin, reset, rst_pending;
    uint8_t blocked, exhausted, swept;
    uint32_t send_window; /* bytes the peer lets us send */
    uint32_t recv_window; /* our window size (auto-tuned) */
    uint32_t recv_avail;  /* bytes the peer may still send */
    uint32_t unconsumed;  /* delivered, not consumed yet */
    uint32_t credit;      /* consumed, not returned to the peer yet */
    struct bq sendq;
};

struct lp2p__yamux_session {
    struct lp2p__yamux_config cfg;
    int is_client;
    lp2p__yamux_event_cb cb;
    void *ud;
    int err;
    uint8_t err_reported, in_feed, in_pull, local_goaway, remote_goaway;
    uint8_t final_goaway; /* the reserved GO_AWAY slot is pending */
    uint32_t final_code;
    int busy;
    uint64_t next_id;
    uint32_t peer_max_id;
    struct lp2p__yamux_stream **buckets;
    uint32_t nbuckets, nstreams;
    uint32_t n_in, n_out, backlog_in, unacked_out, refused;
    uint64_t recv_total;
    struct lp2p__yamux_stream *rhead, *rtail, *grave;
    struct bq ctrl;
    uint32_t ping_seq;
    uint32_t pings[LP2P__YAMUX_MAX_PINGS];
    uint32_t npings;
    /* parser */
    uint8_t hdr[HDR];
    size_t hdr_len;
    uint32_t payload_left;
    uint32_t cur_id; /* 0: discard the payload */
    uint16_t cur_flags;
    size_t mem;
};

/* --- small helpers ------------------------------------------------------ */

static void put_hdr(uint8_t *p, uint8_t type, uint16_t flags, uint32_t id,
                    uint32_t len)
{
    p[0] = 0;
    p[1] = type;
    lp2p__put16(p + 2, flags);
    lp2p__put32(p + 4, id);
    lp2p__put32(p + 8, len);
}

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Append up to n bytes, growing to at most max; returns bytes taken or
 * LP2P_ENOMEM (nothing taken). */
static long bq_append(struct lp2p__yamux_session *s, struct bq *q,
                      const void *p, size_t n, size_t max)
{
    size_t need, cap;
    uint8_t *d;
    if (q->len >= max) {
        return 0;
    }
    n = min_sz(n, max - q->len);
    if (n == 0) {
        return 0;
    }
    need = q->len + n;
    if (q->off + need > q->cap && q->off > 0) {
        memmove(q->data, q->data + q->off, q->len);
        q->off = 0;
    }
    if (need > q->cap) {
        cap = q->cap != 0 ? q->cap * 2 : 4096;
        if (cap < need) {
            cap = need;
        }
        if (cap > max) {
            cap = max;
        }
        d = lp2p__realloc(q->data, cap);
        if (d == NULL) {
            return LP2P_ENOMEM;
        }
        s->mem += cap - q->cap;
        q->data = d;
        q->cap = cap;
    }
    memcpy(q->data + q->off + q->len, p, n);
    q->len += n;
    return (long)n;
}

static void bq_consume(struct bq *q, size_t n)
{
    q->off += n;
    q->len -= n;
    if (q->len == 0) {
        q->off = 0;
    }
}

static void bq_free(struct lp2p__yamux_session *s, struct bq *q)
{
    s->mem -= q->cap;
    lp2p__free(q->data);
    memset(q, 0, sizeof(*q));
}

static void emit(struct lp2p__yamux_session *s, struct lp2p__yamux_event *ev)
{
    s->cb(s->ud, ev);
}

static void emit_stream(struct lp2p__yamux_session *s,
                        enum lp2p__yamux_event_type type,
                        struct lp2p__yamux_stream *st, uint32_t value)
{
    struct lp2p__yamux_event ev;
    if (st->released || st->dead) {
        return;
    }
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.stream = st;
    ev.value = value;
    emit(s, &ev);
}

/* Fail the session once: reserved GO_AWAY, no more stream output. */
static void fail(struct lp2p__yamux_session *s, int err)
{
    if (s->err != 0) {
        return;
    }
    LOG_DEBUG("yamux", "session failed: %s", lp2p_strerror(err));
    s->err = err;
    if (!s->local_goaway) {
        s->local_goaway = 1;
        s->final_goaway = 1;
        s->final_code = err == LP2P_ENOMEM ? LP2P__YAMUX_GOAWAY_INTERNAL
                                           : LP2P__YAMUX_GOAWAY_PROTO;
    }
}

/* Queue a 12-byte session frame. peer_caused: the frame answers the peer
 * (ping ack, refusal), so a full queue means the peer floods us. */
static int ctrl_push(struct lp2p__yamux_session *s, uint8_t type,
                     uint16_t flags, uint32_t id, uint32_t len,
                     int peer_caused)
{
    uint8_t f[HDR];
    long n;
    if (peer_caused && s->ctrl.len + HDR > LP2P__YAMUX_CTRL_MAX) {
        LOG_DEBUG("yamux", "control queue full: peer floods");
        fail(s, LP2P_EPROTO);
        return LP2P_EPROTO;
    }
    if (s->ctrl.len + HDR > LP2P__YAMUX_CTRL_MAX + CTRL_SLACK) {
        return LP2P_ELIMIT;
    }
    put_hdr(f, type, flags, id, len);
    n = bq_append(s, &s->ctrl, f, HDR,
                  LP2P__YAMUX_CTRL_MAX + CTRL_SLACK);
    if (n != HDR) {
        if (peer_caused) {
            fail(s, n < 0 ? LP2P_ENOMEM : LP2P_EPROTO);
        }
        return n < 0 ? LP2P_ENOMEM : LP2P_ELIMIT;
    }
    return 0;
}

/* --- stream table, ready list, graveyard --------------------------------- */

static uint32_t bucket_of(const struct lp2p__yamux_session *s, uint32_t id)
{
    return (id * 0x9E3779B1u) & (s->nbuckets - 1);
}

static struct lp2p__yamux_stream *lookup(struct lp2p__yamux_session *s,
                                         uint32_t id)
{
    struct lp2p__yamux_stream *st = s->buckets[bucket_of(s, id)];
    while (st != NULL && st->id != id) {
        st = st->hnext;
    }
    return st;
}

static void table_grow(struct lp2p__yamux_session *s)
{
    struct lp2p__yamux_stream **nb, **old = s->buckets;
    uint32_t i, n = s->nbuckets * 2, oldn = s->nbuckets;
    nb = lp2p__calloc(n, sizeof(*nb));
    if (nb == NULL) {
        return; /* longer chains, still correct */
    }
    s->buckets = nb;
    s->nbuckets = n;
    for (i = 0; i < oldn; i++) {
        struct lp2p__yamux_stream *st = old[i], *next;
        for (; st != NULL; st = next) {
            uint32_t b = bucket_of(s, st->id);
            next = st->hnext;
            st->hnext = nb[b];
            nb[b] = st;
        }
    }
    lp2p__free(old);
    s->mem += (size_t)(n - oldn) * sizeof(*nb);
}

static void table_insert(struct lp2p__yamux_session *s,
                         struct lp2p__yamux_stream *st)
{
    uint32_t b;
    if (s->nstreams >= s->nbuckets * 2) {
        table_grow(s);
    }
    b = bucket_of(s, st->id);
    st->hnext = s->buckets[b];
    s->buckets[b] = st;
    s->nstreams++;
}

static void table_remove(struct lp2p__yamux_session *s,
                         struct lp2p__yamux_stream *st)
{
    struct lp2p__yamux_stream **pp = &s->buckets[bucket_of(s, st->id)];
    while (*pp != NULL && *pp != st) {
        pp = &(*pp)->hnext;
    }
    if (*pp == st) {
        *pp = st->hnext;
        s->nstreams--;
    }
    st->hnext = NULL;
}

static void ready_unlink(struct lp2p__yamux_session *s,
                         struct lp2p__yamux_stream *st)
{
    if (!st->in_ready) {
        return;
    }
    if (st->rprev != NULL) {
        st->rprev->rnext = st->rnext;
    } else {
        s->rhead = st->rnext;
    }
    if (st->rnext != NULL) {
        st->rnext->rprev = st->rprev;
    } else {
        s->rtail = st->rprev;
    }
    st->rprev = st->rnext = NULL;
    st->in_ready = 0;
}

static int credit_due(const struct lp2p__yamux_stream *st)
{
    if (st->credit == 0 || st->remote_fin || st->reset) {
        return 0;
    }
    return st->credit >= st->recv_window / 2;
}

static int stream_wants(const struct lp2p__yamux_stream *st)
{
    if (st->dead) {
        return 0;
    }
    if (st->rst_pending) {
        return 1;
    }
    if (st->reset) {
        return 0;
    }
    if (st->syn_pending || st->ack_pending || credit_due(st)) {
        return 1;
    }
    if (st->fin_sent) {
        return 0;
    }
    if (st->fin_req && st->sendq.len == 0) {
        return 1;
    }
    return st->sendq.len > 0 && st->send_window > 0;
}

static void schedule(struct lp2p__yamux_stream *st)
{
    struct lp2p__yamux_session *s = st->sess;
    if (st->in_ready || !stream_wants(st)) {
        return;
    }
    st->rprev = s->rtail;
    st->rnext = NULL;
    if (s->rtail != NULL) {
        s->rtail->rnext = st;
    } else {
        s->rhead = st;
    }
    s->rtail = st;
    st->in_ready = 1;
}

static void stream_free_mem(struct lp2p__yamux_session *s,
                            struct lp2p__yamux_stream *st)
{
    bq_free(s, &st->sendq);
    s->mem -= sizeof(*st);
    lp2p__free(st);
}

/* Unlink the stream from everything; free it now, or when the outermost
 * feed/pull returns if one is running. */
static void destroy(struct lp2p__yamux_stream *st)
{
    struct lp2p__yamux_session *s = st->sess;
    if (st->dead) {
        return;
    }
    table_remove(s, st);
    ready_unlink(s, st);
    if (st->inbound) {
        s->n_in--;
    } else {
        s->n_out--;
    }
    if (st->in_backlog) {
        s->backlog_in--;
    }
    if (st->unacked) {
        s->unacked_out--;
    }
    s->recv_total -= st->recv_window;
    st->dead = 1;
    if (s->busy > 0) {
        st->gnext = s->grave;
        s->grave = st;
    } else {
        stream_free_mem(s, st);
    }
}

static void collect(struct lp2p__yamux_session *s)
{
    while (s->grave != NULL) {
        struct lp2p__yamux_stream *st = s->grave;
        s->grave = st->gnext;
        stream_free_mem(s, st);
    }
}

static void leave(struct lp2p__yamux_session *s)
{
    if (--s->busy == 0) {
        collect(s);
    }
}

/* A released stream goes once nothing more is owed to the peer. */
static void released_check(struct lp2p__yamux_stream *st)
{
    if (!st->released || st->dead) {
        return;
    }
    if (st->reset) {
        if (!st->rst_pending) {
            destroy(st);
        }
        return;
    }
    /* Otherwise wait for the peer's FIN (or RST): an RST right after our
     * FIN could make js-yamux drop data its reader has not taken yet.
     * lp2p__yamux_session_sweep() bounds the wait. */
    if (st->fin_sent && st->remote_fin) {
        destroy(st);
    }
}

static void local_reset(struct lp2p__yamux_stream *st)
{
    struct lp2p__yamux_session *s = st->sess;
    if (st->reset) {
        return;
    }
    st->reset = 1;
    /* Nothing to tell a peer that never heard of the stream. */
    st->rst_pending = st->syn_pending ? 0 : 1;
    st->syn_pending = 0;
    st->ack_pending = 0;
    if (st->in_backlog) {
        st->in_backlog = 0;
        s->backlog_in--;
    }
    if (st->unacked) {
        st->unacked = 0;
        s->unacked_out--;
    }
    bq_free(s, &st->sendq);
    schedule(st);
}

static struct lp2p__yamux_stream *stream_new(struct lp2p__yamux_session *s,
                                             uint32_t id, int inbound)
{
    struct lp2p__yamux_stream *st = lp2p__calloc(1, sizeof(*st));
    if (st == NULL) {
        return NULL;
    }
    s->mem += sizeof(*st);
    st->sess = s;
    st->id = id;
    st->inbound = (uint8_t)(inbound != 0);
    st->send_window = LP2P__YAMUX_INITIAL_WINDOW;
    st->recv_window = LP2P__YAMUX_INITIAL_WINDOW;
    st->recv_avail = LP2P__YAMUX_INITIAL_WINDOW;
    s->recv_total += LP2P__YAMUX_INITIAL_WINDOW;
    if (inbound) {
        s->n_in++;
    } else {
        s->n_out++;
    }
    table_insert(s, st);
    return st;
}

/* --- session --------------------------------------------------------- */

void lp2p__yamux_config_init(struct lp2p__yamux_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_inbound_streams = 256;
    cfg->max_outbound_streams = 1024;
    cfg->max_backlog = 256;
    cfg->max_refused = 1024;
    cfg->max_window = 16u * 1024u * 1024u;
    cfg->window_budget = 64u * 1024u * 1024u;
    cfg->send_queue_max = 256u * 1024u;
}

int lp2p__yamux_session_new(struct lp2p__yamux_session **out, int is_client,
                            const struct lp2p__yamux_config *cfg,
                            lp2p__yamux_event_cb cb, void *ud)
{
    struct lp2p__yamux_session *s;
    struct lp2p__yamux_config def;
    if (out == NULL || cb == NULL) {
        return LP2P_EINVAL;
    }
    if (cfg == NULL) {
        lp2p__yamux_config_init(&def);
        cfg = &def;
    }
    if (cfg->max_inbound_streams == 0 || cfg->max_outbound_streams == 0 ||
        cfg->max_backlog == 0 || cfg->send_queue_max == 0 ||
        cfg->max_window < LP2P__YAMUX_INITIAL_WINDOW) {
        return LP2P_EINVAL;
    }
    s = lp2p__calloc(1, sizeof(*s));
    if (s == NULL) {
        return LP2P_ENOMEM;
    }
    s->cfg = *cfg;
    s->nbuckets = 16;
    s->buckets = lp2p__calloc(s->nbuckets, sizeof(*s->buckets));
    if (s->buckets == NULL) {
        lp2p__free(s);
        return LP2P_ENOMEM;
    }
    s->mem = sizeof(*s) + s->nbuckets * sizeof(*s->buckets);
    s->is_client = is_client != 0;
    s->next_id = s->is_client ? 1 : 2;
    s->cb = cb;
    s->ud = ud;
    *out = s;
    return 0;
}

void lp2p__yamux_session_free(struct lp2p__yamux_session *s)
{
    uint32_t i;
    if (s == NULL) {
        return;
    }
    collect(s);
    for (i = 0; i < s->nbuckets; i++) {
        struct lp2p__yamux_stream *st = s->buckets[i], *next;
        for (; st != NULL; st = next) {
            next = st->hnext;
            stream_free_mem(s, st);
        }
    }
    bq_free(s, &s->ctrl);
    lp2p__free(s->buckets);
    lp2p__free(s);
}

int lp2p__yamux_session_error(const struct lp2p__yamux_session *s)
{
    return s->err;
}

uint32_t lp2p__yamux_session_streams(const struct lp2p__yamux_session *s)
{
    return s->nstreams;
}

size_t lp2p__yamux_session_mem(const struct lp2p__yamux_session *s)
{
    return s->mem;
}

size_t lp2p__yamux_session_mem_bound(const struct lp2p__yamux_session *s)
{
    size_t n = (size_t)s->cfg.max_inbound_streams +
               s->cfg.max_outbound_streams;
    return sizeof(*s) + (n * 2 + 16) * sizeof(void *) +
           LP2P__YAMUX_CTRL_MAX + CTRL_SLACK +
           n * (sizeof(struct lp2p__yamux_stream) + s->cfg.send_queue_max);
}

/* --- receiving ---------------------------------------------------------- */

static void stream_flags(struct lp2p__yamux_session *s,
                         struct lp2p__yamux_stream *st, uint8_t type,
                         uint16_t flags, uint32_t len)
{
    if (st->dead) {
        return;
    }
    if (flags & LP2P__YAMUX_RST) {
        if (st->reset) {
            st->rst_pending = 0; /* both reset: nothing more to say */
            released_check(st);
            return;
        }
        st->reset = 1;
        st->rst_pending = 0;
        st->syn_pending = st->ack_pending = 0;
        if (st->in_backlog) {
            st->in_backlog = 0;
            s->backlog_in--;
        }
        if (st->unacked) {
            st->unacked = 0;
            s->unacked_out--;
        }
        bq_free(s, &st->sendq);
        ready_unlink(s, st);
        /* go-yamux v5 carries an error code in the RST's length. */
        emit_stream(s, LP2P__YAMUX_EV_RESET, st,
                    type == LP2P__YAMUX_WINDOW_UPDATE ? len : 0);
        released_check(st);
        return;
    }
    if ((flags & LP2P__YAMUX_FIN) && !st->remote_fin && !st->reset) {
        st->remote_fin = 1;
        emit_stream(s, LP2P__YAMUX_EV_FIN, st, 0);
        released_check(st);
    }
}

/* Peer SYN for `id`: create the stream, or refuse it. NULL if refused or
 * the session failed. */
static struct lp2p__yamux_stream *peer_syn(struct lp2p__yamux_session *s,
                                           uint32_t id)
{
    struct lp2p__yamux_stream *st;
    uint32_t want_parity = s->is_client ? 0 : 1;
    if ((id & 1) != want_parity || lookup(s, id) != NULL ||
        (id < s->peer_max_id && s->peer_max_id - id > REORDER_SLACK)) {
        LOG_DEBUG("yamux", "bad SYN for stream %u", id);
        fail(s, LP2P_EPROTO);
        return NULL;
    }
    if (id > s->peer_max_id) {
        s->peer_max_id = id;
    }
    if (s->local_goaway || s->n_in >= s->cfg.max_inbound_streams ||
        s->backlog_in >= s->cfg.max_backlog) {
        if (++s->refused > s->cfg.max_refused) {
            LOG_DEBUG("yamux", "too many refused streams");
            fail(s, LP2P_EPROTO);
            return NULL;
        }
        ctrl_push(s, LP2P__YAMUX_WINDOW_UPDATE, LP2P__YAMUX_RST, id, 0, 1);
        return NULL;
    }
    st = stream_new(s, id, 1);
    if (st == NULL) {
        fail(s, LP2P_ENOMEM);
        return NULL;
    }
    st->in_backlog = 1;
    s->backlog_in++;
    return st;
}

static void on_stream_header(struct lp2p__yamux_session *s, uint8_t type,
                             uint16_t flags, uint32_t id, uint32_t len)
{
    struct lp2p__yamux_stream *st;
    int created = 0, acked_now = 0;
    if (id == 0) {
        fail(s, LP2P_EPROTO);
        return;
    }
    st = lookup(s, id);
    if (flags & LP2P__YAMUX_SYN) {
        st = peer_syn(s, id);
        if (s->err != 0) {
            return;
        }
        created = st != NULL;
    }
    if (st != NULL && (flags & LP2P__YAMUX_ACK) && st->unacked) {
        st->unacked = 0;
        s->unacked_out--;
        acked_now = 1;
    }
    if (type == LP2P__YAMUX_WINDOW_UPDATE) {
        if (st != NULL && !(flags & LP2P__YAMUX_RST) && len > 0 &&
            !st->reset) {
            if (len > UINT32_MAX - st->send_window) {
                fail(s, LP2P_EPROTO);
                return;
            }
            st->send_window += len;
            schedule(st);
        }
    } else if (st != NULL && len > 0 && !st->reset &&
               !(flags & LP2P__YAMUX_RST)) {
        if (st->remote_fin) {
            LOG_DEBUG("yamux", "DATA after FIN on stream %u", id);
            fail(s, LP2P_EPROTO);
            return;
        }
        if (len > st->recv_avail) {
            LOG_DEBUG("yamux", "stream %u: %u bytes, window %u", id, len,
                      st->recv_avail);
            fail(s, LP2P_EWINDOW);
            return;
        }
        st->recv_avail -= len;
        if (st->recv_avail == 0) {
            st->exhausted = 1;
        }
    }
    /* Events after the bookkeeping: the host may release in them. */
    if (created) {
        emit_stream(s, LP2P__YAMUX_EV_STREAM_OPENED, st, 0);
    } else if (acked_now) {
        emit_stream(s, LP2P__YAMUX_EV_STREAM_ACKED, st, 0);
    }
    if (type == LP2P__YAMUX_DATA && len > 0) {
        s->payload_left = len;
        s->cur_id = (st != NULL && !st->dead && !st->reset &&
                     !(flags & LP2P__YAMUX_RST))
                        ? id
                        : 0;
        s->cur_flags = flags;
        if (s->cur_id == 0 && st != NULL && !st->dead) {
            /* payload skipped, flags still apply afterwards */
            s->cur_id = id;
            s->cur_flags = (uint16_t)(flags | 0x8000u);
        }
        return;
    }
    if (st != NULL && !st->dead) {
        stream_flags(s, st, type, flags, len);
    }
}

static void on_header(struct lp2p__yamux_session *s, const uint8_t *h)
{
    uint8_t type = h[1];
    /* Unknown flag bits are ignored (and kept out of cur_flags' marker). */
    uint16_t flags = (uint16_t)(h[3] & 0x0fu);
    uint32_t id = lp2p__get32(h + 4), len = lp2p__get32(h + 8);
    uint32_t i;
    if (h[0] != 0) {
        fail(s, LP2P_EPROTO);
        return;
    }
    switch (type) {
    case LP2P__YAMUX_DATA:
    case LP2P__YAMUX_WINDOW_UPDATE:
        on_stream_header(s, type, flags, id, len);
        break;
    case LP2P__YAMUX_PING:
        if (flags & LP2P__YAMUX_SYN) {
            ctrl_push(s, LP2P__YAMUX_PING, LP2P__YAMUX_ACK, 0, len, 1);
        } else if (flags & LP2P__YAMUX_ACK) {
            for (i = 0; i < s->npings; i++) {
                if (s->pings[i] == len) {
                    struct lp2p__yamux_event ev;
                    s->pings[i] = s->pings[--s->npings];
                    memset(&ev, 0, sizeof(ev));
                    ev.type = LP2P__YAMUX_EV_PING_ACK;
                    ev.value = len;
                    emit(s, &ev);
                    break;
                }
            }
        }
        break;
    case LP2P__YAMUX_GO_AWAY:
        if (!s->remote_goaway) {
            struct lp2p__yamux_event ev;
            s->remote_goaway = 1;
            memset(&ev, 0, sizeof(ev));
            ev.type = LP2P__YAMUX_EV_GO_AWAY;
            ev.value = len;
            emit(s, &ev);
        }
        break;
    default:
        fail(s, LP2P_EPROTO);
        break;
    }
}

static void on_payload(struct lp2p__yamux_session *s, const uint8_t *p,
                       uint32_t n)
{
    struct lp2p__yamux_stream *st;
    struct lp2p__yamux_event ev;
    if (s->cur_id == 0 || (s->cur_flags & 0x8000u)) {
        return;
    }
    st = lookup(s, s->cur_id);
    if (st == NULL || st->dead || st->reset) {
        return;
    }
    if (st->released) {
        st->credit += n; /* nobody reads: let the peer finish */
        schedule(st);
        return;
    }
    st->unconsumed += n;
    memset(&ev, 0, sizeof(ev));
    ev.type = LP2P__YAMUX_EV_DATA;
    ev.stream = st;
    ev.data = p;
    ev.len = n;
    emit(s, &ev);
}

static void on_payload_end(struct lp2p__yamux_session *s)
{
    struct lp2p__yamux_stream *st;
    if (s->cur_id == 0) {
        return;
    }
    st = lookup(s, s->cur_id);
    if (st != NULL && !st->dead) {
        stream_flags(s, st, LP2P__YAMUX_DATA,
                     (uint16_t)(s->cur_flags & 0x7fffu), 0);
    }
}

int lp2p__yamux_feed(struct lp2p__yamux_session *s, const uint8_t *data,
                     size_t len)
{
    if (s->in_feed || s->in_pull) {
        return LP2P_ESTATE;
    }
    if (s->err != 0) {
        return s->err;
    }
    s->busy++;
    s->in_feed = 1;
    while (len > 0 && s->err == 0) {
        if (s->payload_left > 0) {
            uint32_t n = s->payload_left;
            if (n > len) {
                n = (uint32_t)len;
            }
            s->payload_left -= n;
            on_payload(s, data, n);
            data += n;
            len -= n;
            if (s->payload_left == 0 && s->err == 0) {
                on_payload_end(s);
            }
            continue;
        }
        if (s->hdr_len == 0 && len >= HDR) {
            on_header(s, data);
            data += HDR;
            len -= HDR;
            continue;
        }
        {
            size_t n = min_sz(HDR - s->hdr_len, len);
            memcpy(s->hdr + s->hdr_len, data, n);
            s->hdr_len += n;
            data += n;
            len -= n;
            if (s->hdr_len == HDR) {
                s->hdr_len = 0;
                on_header(s, s->hdr);
            }
        }
    }
    if (s->err != 0 && !s->err_reported) {
        struct lp2p__yamux_event ev;
        s->err_reported = 1;
        memset(&ev, 0, sizeof(ev));
        ev.type = LP2P__YAMUX_EV_ERROR;
        ev.error = s->err;
        emit(s, &ev);
    }
    s->in_feed = 0;
    leave(s);
    return s->err;
}

/* --- sending ------------------------------------------------------------ */

int lp2p__yamux_want_write(const struct lp2p__yamux_session *s)
{
    const struct lp2p__yamux_stream *st;
    if (s->ctrl.len > 0 || s->final_goaway) {
        return 1;
    }
    if (s->err != 0) {
        return 0;
    }
    for (st = s->rhead; st != NULL; st = st->rnext) {
        if (stream_wants(st)) {
            return 1;
        }
    }
    return 0;
}

/* Credit to return now, with auto-tuning (see the top of the file). */
static uint32_t take_credit(struct lp2p__yamux_session *s,
                            struct lp2p__yamux_stream *st)
{
    uint32_t delta = st->credit;
    st->credit = 0;
    if (st->exhausted && st->unconsumed == 0 &&
        st->recv_window < s->cfg.max_window) {
        uint32_t grow = st->recv_window;
        if (grow > s->cfg.max_window - st->recv_window) {
            grow = s->cfg.max_window - st->recv_window;
        }
        if (s->recv_total + grow <= s->cfg.window_budget) {
            st->recv_window += grow;
            s->recv_total += grow;
            delta += grow;
            LOG_TRACE("yamux", "stream %u: window grows to %u", st->id,
                      st->recv_window);
        }
    }
    st->exhausted = 0;
    st->recv_avail += delta;
    return delta;
}

/* One visit of the ready list: at most one control frame and one DATA
 * frame. Returns bytes written; 0 if nothing fitted. */
static size_t pull_stream(struct lp2p__yamux_session *s,
                          struct lp2p__yamux_stream *st, uint8_t *out,
                          size_t room, int first)
{
    size_t w = 0, n, want;
    uint16_t flags = 0;
    int fin_now;
    if (st->rst_pending) {
        if (room < HDR) {
            return 0;
        }
        put_hdr(out, LP2P__YAMUX_WINDOW_UPDATE, LP2P__YAMUX_RST, st->id, 0);
        st->rst_pending = 0;
        released_check(st);
        return HDR;
    }
    if (st->syn_pending) {
        flags |= LP2P__YAMUX_SYN;
    }
    if (st->ack_pending) {
        flags |= LP2P__YAMUX_ACK;
    }
    fin_now = st->fin_req && !st->fin_sent && st->sendq.len == 0;
    if (flags != 0 || credit_due(st) || fin_now) {
        uint32_t delta = 0;
        if (room < HDR) {
            return 0;
        }
        if (!st->remote_fin && st->credit > 0) {
            delta = take_credit(s, st);
        }
        if (fin_now) {
            flags |= LP2P__YAMUX_FIN;
            st->fin_sent = 1;
        }
        put_hdr(out, LP2P__YAMUX_WINDOW_UPDATE, flags, st->id, delta);
        st->syn_pending = st->ack_pending = 0;
        w = HDR;
        if (fin_now) {
            released_check(st);
            return w;
        }
    }
    if (st->sendq.len == 0 || st->send_window == 0 || st->fin_sent) {
        return w;
    }
    if (room - w <= HDR) {
        return w;
    }
    want = min_sz(min_sz(st->sendq.len, st->send_window),
                  LP2P__YAMUX_MAX_PAYLOAD);
    n = min_sz(want, room - w - HDR);
    if (n < want && n < MIN_TAIL_PAYLOAD && !(first && w == 0)) {
        return w;
    }
    put_hdr(out + w, LP2P__YAMUX_DATA, 0, st->id, (uint32_t)n);
    memcpy(out + w + HDR, st->sendq.data + st->sendq.off, n);
    bq_consume(&st->sendq, n);
    st->send_window -= (uint32_t)n;
    w += HDR + n;
    if (st->blocked && st->sendq.len <= s->cfg.send_queue_max / 2) {
        st->blocked = 0;
        emit_stream(s, LP2P__YAMUX_EV_WRITABLE, st, 0);
    }
    return w;
}

size_t lp2p__yamux_pull(struct lp2p__yamux_session *s, uint8_t *out,
                        size_t cap)
{
    size_t w = 0, n;
    if (s->in_pull || cap <= HDR) {
        return 0;
    }
    s->busy++;
    s->in_pull = 1;
    n = min_sz(s->ctrl.len, cap / HDR * HDR);
    if (n > 0) {
        memcpy(out, s->ctrl.data + s->ctrl.off, n);
        bq_consume(&s->ctrl, n);
    }
    w = n;
    if (s->ctrl.len > 0) {
        goto out;
    }
    if (s->final_goaway) {
        if (cap - w < HDR) {
            goto out;
        }
        put_hdr(out + w, LP2P__YAMUX_GO_AWAY, 0, 0, s->final_code);
        s->final_goaway = 0;
        w += HDR;
    }
    while (s->err == 0 && s->rhead != NULL && cap - w > HDR) {
        struct lp2p__yamux_stream *st = s->rhead;
        ready_unlink(s, st);
        if (!stream_wants(st)) {
            continue;
        }
        n = pull_stream(s, st, out + w, cap - w, w == 0);
        w += n;
        if (!st->dead) {
            schedule(st);
        }
        if (n == 0) {
            break;
        }
    }
out:
    s->in_pull = 0;
    leave(s);
    return w;
}

int lp2p__yamux_ping(struct lp2p__yamux_session *s, uint32_t *value)
{
    int rv;
    uint32_t v;
    if (s->err != 0) {
        return s->err;
    }
    if (s->npings >= LP2P__YAMUX_MAX_PINGS) {
        return LP2P_ELIMIT;
    }
    v = ++s->ping_seq;
    rv = ctrl_push(s, LP2P__YAMUX_PING, LP2P__YAMUX_SYN, 0, v, 0);
    if (rv != 0) {
        return rv;
    }
    s->pings[s->npings++] = v;
    if (value != NULL) {
        *value = v;
    }
    return 0;
}

int lp2p__yamux_goaway(struct lp2p__yamux_session *s, uint32_t code)
{
    int rv;
    if (s->err != 0) {
        return s->err;
    }
    if (s->local_goaway) {
        return 0;
    }
    rv = ctrl_push(s, LP2P__YAMUX_GO_AWAY, 0, 0, code, 0);
    if (rv != 0) {
        return rv;
    }
    s->local_goaway = 1;
    return 0;
}

void lp2p__yamux_session_sweep(struct lp2p__yamux_session *s)
{
    uint32_t i;
    s->busy++;
    for (i = 0; i < s->nbuckets; i++) {
        struct lp2p__yamux_stream *st = s->buckets[i], *next;
        for (; st != NULL; st = next) {
            next = st->hnext;
            if (!st->released || st->dead) {
                continue;
            }
            if (s->err != 0) {
                destroy(st); /* nothing more is sent on a failed session */
            } else if (!st->swept) {
                st->swept = 1;
            } else if (!st->reset) {
                local_reset(st);
                released_check(st);
            }
        }
    }
    leave(s);
}

/* --- streams ------------------------------------------------------------ */

int lp2p__yamux_stream_open(struct lp2p__yamux_session *s,
                            struct lp2p__yamux_stream **out)
{
    struct lp2p__yamux_stream *st;
    if (s->err != 0) {
        return s->err;
    }
    if (s->local_goaway || s->remote_goaway) {
        return LP2P_ECLOSED;
    }
    if (s->n_out >= s->cfg.max_outbound_streams ||
        s->unacked_out >= s->cfg.max_backlog || s->next_id > UINT32_MAX) {
        return LP2P_ELIMIT;
    }
    st = stream_new(s, (uint32_t)s->next_id, 0);
    if (st == NULL) {
        return LP2P_ENOMEM;
    }
    s->next_id += 2;
    st->syn_pending = 1;
    st->unacked = 1;
    s->unacked_out++;
    schedule(st);
    *out = st;
    return 0;
}

int lp2p__yamux_stream_accept(struct lp2p__yamux_stream *st)
{
    struct lp2p__yamux_session *s = st->sess;
    if (!st->in_backlog) {
        return LP2P_ESTATE;
    }
    st->in_backlog = 0;
    s->backlog_in--;
    s->refused = 0;
    st->ack_pending = 1;
    schedule(st);
    return 0;
}

int lp2p__yamux_stream_write(struct lp2p__yamux_stream *st, const void *data,
                             size_t len, size_t *accepted)
{
    struct lp2p__yamux_session *s = st->sess;
    long n;
    if (accepted != NULL) {
        *accepted = 0;
    }
    if (s->err != 0) {
        return s->err;
    }
    if (st->reset) {
        return LP2P_ERESET;
    }
    if (st->fin_req) {
        return LP2P_ECLOSED;
    }
    if (st->in_backlog) {
        lp2p__yamux_stream_accept(st);
    }
    n = bq_append(s, &st->sendq, data, len, s->cfg.send_queue_max);
    if (n < 0) {
        return (int)n;
    }
    if ((size_t)n < len) {
        st->blocked = 1;
    }
    if (accepted != NULL) {
        *accepted = (size_t)n;
    }
    schedule(st);
    return 0;
}

int lp2p__yamux_stream_close(struct lp2p__yamux_stream *st)
{
    if (st->reset) {
        return LP2P_ERESET;
    }
    if (st->in_backlog) {
        lp2p__yamux_stream_accept(st);
    }
    st->fin_req = 1;
    schedule(st);
    return 0;
}

int lp2p__yamux_stream_reset(struct lp2p__yamux_stream *st)
{
    local_reset(st);
    return 0;
}

int lp2p__yamux_stream_consume(struct lp2p__yamux_stream *st, size_t n)
{
    if (n > st->unconsumed) {
        return LP2P_EINVAL;
    }
    st->unconsumed -= (uint32_t)n;
    st->credit += (uint32_t)n;
    schedule(st);
    return 0;
}

void lp2p__yamux_stream_release(struct lp2p__yamux_stream *st)
{
    st->released = 1;
    st->user = NULL;
    st->credit += st->unconsumed;
    st->unconsumed = 0;
    if (st->sess->err != 0) {
        destroy(st); /* a failed session sends no stream frames */
        return;
    }
    if (st->in_backlog || !st->fin_req) {
        local_reset(st);
    }
    schedule(st);
    released_check(st); /* may free st */
}

uint32_t lp2p__yamux_stream_id(const struct lp2p__yamux_stream *st)
{
    return st->id;
}

void lp2p__yamux_stream_set_user(struct lp2p__yamux_stream *st, void *user)
{
    st->user = user;
}

void *lp2p__yamux_stream_user(const struct lp2p__yamux_stream *st)
{
    return st->user;
}

uint32_t lp2p__yamux_stream_send_window(const struct lp2p__yamux_stream *st)
{
    return st->send_window;
}

uint32_t lp2p__yamux_stream_recv_window(const struct lp2p__yamux_stream *st)
{
    return st->recv_window;
}

size_t lp2p__yamux_stream_queued(const struct lp2p__yamux_stream *st)
{
    return st->sendq.len;
}
