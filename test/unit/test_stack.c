/*
 * Two complete stacks back to back in memory, no sockets: a dialer and a
 * listener, each with its own Ed25519 identity, negotiate
 *   multistream-select "/noise" (the dialer first proposes "/tls/1.0.0"
 *   and gets "na") -> Noise XX with the libp2p payload (the dialer expects
 *   the listener's peer ID) -> Yamux, either inlined in the Noise
 *   handshake (both send stream_muxers ["/yamux/1.0.0"]) or with
 *   multistream "/yamux/1.0.0" inside Noise.
 * Then, over the encrypted session, 100 concurrent streams (80 opened by
 * the dialer, 20 by the listener), each starting with its own
 * multistream-select of a test protocol (some with an "na" first, some
 * lazy: data right behind the proposal). 90 of them move 64 MiB of
 * payload in total, both directions, SHA-256 compared end to end, each
 * direction half-closed with a FIN; one stream's reader reads nothing
 * until the sender filled its window exactly. The other 10 are reset
 * part-way, by the opener or by the acceptor; the other side must see the
 * RST, and everything else must still finish.
 *
 * The byte pump cuts the ciphertext into random pieces (1 byte .. 64 KiB,
 * fixed seed), and the plaintext handed to Noise is cut independently of
 * Yamux frames, so frames split and merge across Noise messages and
 * Noise messages across reads. The application consumes received bytes
 * later and in random portions (lp2p__yamux_stream_consume), so windows
 * fill up and updates follow consumption. Checked all along: bytes held
 * by the application for a stream never exceed that stream's receive
 * window, the yamux session's memory stays within its bound and equals
 * what it really holds on the lp2p heap (a counting heap hook), the
 * outgoing "socket" buffer stays bounded.
 *
 * Under valgrind (P2PRAFT_VALGRIND=1) the payload is 4 MiB.
 * P2PRAFT_STACK_SEED=N runs another schedule (same checks).
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lp2p.h"
#include "p2p/multistream.h"
#include "p2p/noise.h"
#include "p2p/yamux.h"
#include "test.h"
#include "util/buf.h"

#define NSTREAMS 100
#define MAXID (2 * NSTREAMS + 2)
#define TEST_PROTO "/p2praft/stack-test/1.0.0"
#define MISSING_PROTO "/p2praft/missing/1.0.0"
#define YAMUX_PROTO "/yamux/1.0.0"
#define UNBOUNDED UINT64_MAX
/* The outgoing "socket buffer": Yamux is pulled only while the wire holds
 * less than this. */
#define WIRE_MAX (256u * 1024u)
/* Yamux output gathered before it is cut into Noise messages. */
#define PLAIN_BATCH_MAX (128u * 1024u)
#define GEN_CHUNK 16384
/* The stream whose reader consumes nothing until the whole window is
 * full; it carries an eighth of the payload from the dialer. */
#define FILL_K 10

enum phase { PH_MSS, PH_NOISE, PH_MUXSEL, PH_YAMUX };
enum mss_kind { MSS_NA, MSS_LAZY, MSS_PLAIN };
enum reset_by { RESET_NONE, RESET_OPENER, RESET_ACCEPTOR };

static const char *const SEC_DIALER[] = {"/tls/1.0.0", LP2P_NOISE_PROTOCOL};
static const char *const SEC_LISTENER[] = {LP2P_NOISE_PROTOCOL};
static const char *const MUXERS[] = {YAMUX_PROTO};
static const char *const PROTOS_NA[] = {MISSING_PROTO, TEST_PROTO};
static const char *const PROTOS[] = {TEST_PROTO};

/* What happens on stream k; both sides read the same plan. */
struct plan {
    int by_dialer;       /* the dialer opens it */
    uint32_t id;         /* its yamux stream ID */
    enum mss_kind kind;
    enum reset_by reset_by;
    uint64_t size[2];    /* payload opener->acceptor, acceptor->opener */
    uint64_t reset_after; /* bytes sent (opener) / consumed (acceptor) */
};

struct side;

/* One end of one stream. */
struct sapp {
    struct side *sd;
    int k;
    int used;
    int opener;
    struct lp2p__yamux_stream *st;
    struct lp2p_mss mss;
    int mss_done;
    /* sending */
    uint64_t tx_rng;
    uint64_t tx_gen, tx_sent; /* generated, accepted by yamux */
    uint8_t pend[GEN_CHUNK];
    size_t pend_off, pend_len;
    EVP_MD_CTX *tx_md;
    int tx_closed;
    uint8_t tx_digest[32];
    /* receiving: bytes delivered and not yet consumed by the app */
    uint8_t *rbuf;
    size_t roff, rlen, rcap;
    uint64_t delivered, consumed; /* everything yamux gave us */
    uint64_t rx_bytes;            /* payload consumed */
    EVP_MD_CTX *rx_md;
    int got_fin, rx_done;
    int window_filled; /* FILL_K: the peer filled the window exactly */
    unsigned int pause; /* rounds the reader still sleeps */
    uint8_t rx_digest[32];
    /* end */
    int got_reset, did_reset, finished, released;
    uint64_t rx_at_reset;
};

struct run;

struct side {
    struct run *run;
    const char *name;
    int dialer;
    struct lp2p_key key;
    struct lp2p_peer_id id;
    struct side *peer;
    enum phase phase;
    struct lp2p_mss mss; /* security, later muxer selection */
    struct lp2p_buf mss_log;
    char sec_selected[64];
    struct lp2p_noise_hs hs;
    int hs_open;
    int hs_done;
    struct lp2p_peer_id remote_id;
    const char *inlined;
    struct lp2p_noise_transport tr;
    struct lp2p__yamux_session *ys;
    struct lp2p_buf wire; /* bytes to send; [wire_off, len) pending */
    size_t wire_off;
    struct lp2p_buf plain_out; /* plaintext waiting to be encrypted */
    struct lp2p_buf plain_in;
    struct lp2p_buf tmp;
    int error; /* first error of a codec */
    struct sapp apps[NSTREAMS];
    /* stats */
    size_t peak_mem, peak_wire, peak_rbuf;
    uint64_t wire_bytes, pieces, reads;
    uint64_t tiny_reads, tiny_pieces, window_stalls;
    uint32_t max_recv_window;
    int resets_seen;
};

struct run {
    uint64_t rng;
    int inlined;
    uint64_t total;
    struct plan plan[NSTREAMS];
    int k_of_id[MAXID + 1];
    struct side *d, *l;
    const struct lp2p_peer_id *expect; /* dialer's expectation */
    char fail[512];
};

/* Record the first failure seen inside a callback; asserted outside. */
#define CHECK(r, cond)                                                        \
    do {                                                                      \
        if (!(cond) && (r)->fail[0] == '\0') {                                \
            snprintf((r)->fail, sizeof((r)->fail), "%s:%d: %s", __FILE__,     \
                     __LINE__, #cond);                                        \
        }                                                                     \
    } while (0)

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static uint64_t rnd(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ull;
    return mix64(*s);
}

static size_t rnd_range(uint64_t *s, size_t lo, size_t hi)
{
    return lo + (size_t)(rnd(s) % (uint64_t)(hi - lo + 1));
}

/* A size in [1, max]: often tiny, sometimes exactly max, mostly anything. */
static size_t rnd_size(uint64_t *s, size_t max)
{
    switch (rnd(s) % 8) {
    case 0:
        return rnd_range(s, 1, max < 16 ? max : 16);
    case 1:
        return rnd_range(s, 1, max < 1500 ? max : 1500);
    case 2:
        return max;
    default:
        return rnd_range(s, 1, max);
    }
}

static int valgrind(void)
{
    const char *v = getenv("P2PRAFT_VALGRIND");
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------- */
/* A heap hook that counts live bytes, to hold the yamux session's own
 * accounting (lp2p__yamux_session_mem) against what was really
 * allocated.                                                            */

#define HEAP_HDR 16

static size_t heap_live, heap_peak;

static void *ch_malloc(void *data, size_t n)
{
    uint8_t *h = malloc(n + HEAP_HDR);
    (void)data;
    if (h == NULL) {
        return NULL;
    }
    memcpy(h, &n, sizeof(n));
    heap_live += n;
    if (heap_live > heap_peak) {
        heap_peak = heap_live;
    }
    return h + HEAP_HDR;
}

static void *ch_realloc(void *data, void *ptr, size_t n)
{
    uint8_t *h, *q;
    size_t old;
    if (ptr == NULL) {
        return ch_malloc(data, n);
    }
    h = (uint8_t *)ptr - HEAP_HDR;
    memcpy(&old, h, sizeof(old));
    q = realloc(h, n + HEAP_HDR);
    if (q == NULL) {
        return NULL;
    }
    memcpy(q, &n, sizeof(n));
    heap_live = heap_live - old + n;
    if (heap_live > heap_peak) {
        heap_peak = heap_live;
    }
    return q + HEAP_HDR;
}

static void ch_free(void *data, void *ptr)
{
    uint8_t *h = (uint8_t *)ptr - HEAP_HDR;
    size_t old;
    (void)data;
    memcpy(&old, h, sizeof(old));
    heap_live -= old;
    free(h);
}

static const struct lp2p_heap counting_heap = {NULL, ch_malloc, ch_realloc,
                                               ch_free};

/* ------------------------------------------------------------------- */
/* The plan                                                              */

static void make_plan(struct run *r, uint64_t total, uint64_t reset_scale)
{
    uint64_t w[NSTREAMS][2], wsum = 0, sum = 0, rest;
    uint32_t next_d = 1, next_l = 2;
    int k, d;
    memset(r->k_of_id, -1, sizeof(r->k_of_id));
    for (k = 0; k < NSTREAMS; k++) {
        struct plan *p = &r->plan[k];
        memset(p, 0, sizeof(*p));
        p->by_dialer = k % 5 != 2;
        p->id = p->by_dialer ? next_d : next_l;
        if (p->by_dialer) {
            next_d += 2;
        } else {
            next_l += 2;
        }
        r->k_of_id[p->id] = k;
        p->kind = (enum mss_kind)(k % 3);
        if (k % 20 == 3 || k % 20 == 7) {
            /* k = 3, 23, ...: dialer opens; 7, 27, ...: listener opens */
            p->reset_by = (k / 20) % 2 == 0 ? RESET_OPENER : RESET_ACCEPTOR;
            if (p->reset_by == RESET_OPENER) {
                p->reset_after = (64u * 1024u + rnd(&r->rng) % (400u * 1024u)) /
                                 reset_scale + 1;
                p->size[0] = p->reset_after;
                p->size[1] = UNBOUNDED;
            } else {
                p->reset_after = (32u * 1024u + rnd(&r->rng) % (200u * 1024u)) /
                                 reset_scale + 1;
                p->size[0] = UNBOUNDED;
                p->size[1] = UNBOUNDED;
            }
            w[k][0] = w[k][1] = 0;
            continue;
        }
        for (d = 0; d < 2; d++) {
            w[k][d] = 1 + rnd(&r->rng) % 16;
        }
        if (k == 1) {
            w[k][0] = 0; /* an empty flow: FIN right behind a lazy select */
        }
        if (k == 2) {
            w[k][1] = 0; /* becomes a one-byte flow below */
        }
        wsum += w[k][0] + w[k][1];
    }
    wsum -= w[FILL_K][0];
    w[FILL_K][0] = 0;
    rest = total - 1 - total / 8;
    for (k = 0; k < NSTREAMS; k++) {
        if (r->plan[k].reset_by != RESET_NONE) {
            continue;
        }
        for (d = 0; d < 2; d++) {
            r->plan[k].size[d] = rest * w[k][d] / wsum;
            sum += r->plan[k].size[d];
        }
    }
    r->plan[0].size[0] += rest - sum;
    r->plan[FILL_K].size[0] = total / 8;
    r->plan[2].size[1] = 1;
}

/* ------------------------------------------------------------------- */
/* Streams                                                               */

static void app_init(struct side *sd, int k, struct lp2p__yamux_stream *st,
                     int opener)
{
    struct run *r = sd->run;
    struct sapp *a = &sd->apps[k];
    const struct plan *p = &r->plan[k];
    int rv;
    memset(a, 0, sizeof(*a));
    a->sd = sd;
    a->k = k;
    a->used = 1;
    a->opener = opener;
    a->st = st;
    a->tx_rng = mix64(p->id * 2u + (opener ? 0u : 1u) + 0x5eed);
    a->tx_md = EVP_MD_CTX_new();
    a->rx_md = EVP_MD_CTX_new();
    CHECK(r, a->tx_md != NULL && a->rx_md != NULL);
    if (a->tx_md == NULL || a->rx_md == NULL) {
        return;
    }
    CHECK(r, EVP_DigestInit_ex(a->tx_md, EVP_sha256(), NULL) == 1);
    CHECK(r, EVP_DigestInit_ex(a->rx_md, EVP_sha256(), NULL) == 1);
    lp2p__yamux_stream_set_user(st, a);
    if (opener) {
        if (p->kind == MSS_NA) {
            rv = lp2p__mss_init_initiator(&a->mss, PROTOS_NA, 2);
        } else {
            rv = lp2p__mss_init_initiator(&a->mss, PROTOS, 1);
        }
    } else {
        rv = lp2p__mss_init_responder(&a->mss, PROTOS, 1, NULL, NULL);
    }
    CHECK(r, rv == 0);
    sd->tmp.len = 0;
    CHECK(r, lp2p__mss_start(&a->mss, &sd->tmp) == 0);
    if (sd->tmp.len > 0) {
        size_t acc = 0;
        CHECK(r, lp2p__yamux_stream_write(st, sd->tmp.data, sd->tmp.len,
                                          &acc) == 0);
        CHECK(r, acc == sd->tmp.len);
    }
}

static void app_release(struct sapp *a)
{
    if (!a->released) {
        lp2p__yamux_stream_release(a->st);
        a->released = 1;
        a->st = NULL;
    }
}

static void rbuf_append(struct sapp *a, const uint8_t *p, size_t n)
{
    if (a->roff + a->rlen + n > a->rcap) {
        if (a->roff > 0) {
            memmove(a->rbuf, a->rbuf + a->roff, a->rlen);
            a->roff = 0;
        }
        if (a->rlen + n > a->rcap) {
            size_t cap = a->rcap ? a->rcap : 4096;
            uint8_t *nb;
            while (cap < a->rlen + n) {
                cap *= 2;
            }
            nb = realloc(a->rbuf, cap);
            CHECK(a->sd->run, nb != NULL);
            if (nb == NULL) {
                return;
            }
            a->rbuf = nb;
            a->rcap = cap;
        }
    }
    memcpy(a->rbuf + a->roff + a->rlen, p, n);
    a->rlen += n;
}

/* DATA event: multistream first, then payload held until consumed. */
static void app_data(struct sapp *a, const uint8_t *data, size_t len)
{
    struct side *sd = a->sd;
    struct run *r = sd->run;
    const struct plan *p = &r->plan[a->k];
    a->delivered += len;
    if (lp2p__yamux_stream_recv_window(a->st) > sd->max_recv_window) {
        sd->max_recv_window = lp2p__yamux_stream_recv_window(a->st);
    }
    /* The peer never exceeds the window: what we hold fits in it. */
    CHECK(r, a->delivered - a->consumed <=
                 lp2p__yamux_stream_recv_window(a->st));
    CHECK(r, !a->got_fin && !a->got_reset);
    if (!a->mss_done) {
        int n;
        sd->tmp.len = 0;
        n = lp2p__mss_feed(&a->mss, data, len, &sd->tmp);
        CHECK(r, n >= 0);
        if (n < 0) {
            return;
        }
        if (sd->tmp.len > 0) {
            size_t acc = 0;
            CHECK(r, lp2p__yamux_stream_write(a->st, sd->tmp.data,
                                              sd->tmp.len, &acc) == 0);
            CHECK(r, acc == sd->tmp.len);
        }
        /* Negotiation bytes are used at once. */
        CHECK(r, lp2p__yamux_stream_consume(a->st, (size_t)n) == 0);
        a->consumed += (uint64_t)n;
        data += n;
        len -= (size_t)n;
        if (lp2p__mss_done(&a->mss)) {
            a->mss_done = 1;
            CHECK(r, strcmp(lp2p__mss_selected(&a->mss), TEST_PROTO) == 0);
            /* our first proposal was refused with "na" */
            CHECK(r, !a->opener || p->kind != MSS_NA || a->mss.cur == 1);
        } else {
            CHECK(r, len == 0);
        }
    }
    if (len > 0) {
        rbuf_append(a, data, len);
        if (a->rlen > sd->peak_rbuf) {
            sd->peak_rbuf = a->rlen;
        }
    }
}

static void on_yamux(void *ud, const struct lp2p__yamux_event *ev)
{
    struct side *sd = ud;
    struct run *r = sd->run;
    struct sapp *a = NULL;
    if (ev->stream != NULL && ev->type != LP2P__YAMUX_EV_STREAM_OPENED) {
        a = lp2p__yamux_stream_user(ev->stream);
        /* no event for a stream we released */
        CHECK(r, a != NULL);
        if (a == NULL) {
            return;
        }
    }
    switch (ev->type) {
    case LP2P__YAMUX_EV_STREAM_OPENED: {
        uint32_t id = lp2p__yamux_stream_id(ev->stream);
        int k = id <= MAXID ? r->k_of_id[id] : -1;
        CHECK(r, k >= 0 && r->plan[k].by_dialer != sd->dialer &&
                     !sd->apps[k].used);
        if (k < 0 || sd->apps[k].used) {
            lp2p__yamux_stream_release(ev->stream);
            return;
        }
        app_init(sd, k, ev->stream, 0);
        CHECK(r, lp2p__yamux_stream_accept(ev->stream) == 0);
        break;
    }
    case LP2P__YAMUX_EV_STREAM_ACKED:
        CHECK(r, a->opener);
        break;
    case LP2P__YAMUX_EV_DATA:
        app_data(a, ev->data, ev->len);
        break;
    case LP2P__YAMUX_EV_FIN:
        CHECK(r, !a->got_fin);
        CHECK(r, a->mss_done);
        a->got_fin = 1;
        break;
    case LP2P__YAMUX_EV_RESET:
        CHECK(r, !a->got_reset);
        a->got_reset = 1;
        a->rx_at_reset = a->rx_bytes + a->rlen;
        sd->resets_seen++;
        break;
    case LP2P__YAMUX_EV_WRITABLE:
        break;
    case LP2P__YAMUX_EV_GO_AWAY:
    case LP2P__YAMUX_EV_PING_ACK:
    case LP2P__YAMUX_EV_ERROR:
        if (r->fail[0] == '\0') {
            snprintf(r->fail, sizeof(r->fail),
                     "%s: unexpected session event %d (error %d)", sd->name,
                     (int)ev->type, ev->error);
        }
        break;
    }
}

/* Write as much of our payload as the send queue takes; FIN at the end. */
static uint64_t app_send(struct sapp *a)
{
    struct run *r = a->sd->run;
    const struct plan *p = &r->plan[a->k];
    uint64_t limit = p->size[a->opener ? 0 : 1];
    uint64_t before = a->tx_sent;
    for (;;) {
        size_t acc = 0;
        int rv;
        if (a->pend_off == a->pend_len) {
            size_t n = GEN_CHUNK, i;
            if (a->tx_gen >= limit) {
                break;
            }
            if (limit - a->tx_gen < n) {
                n = (size_t)(limit - a->tx_gen);
            }
            for (i = 0; i < n; i += 8) {
                uint64_t x = rnd(&a->tx_rng);
                size_t m = n - i < 8 ? n - i : 8;
                memcpy(a->pend + i, &x, m);
            }
            CHECK(r, EVP_DigestUpdate(a->tx_md, a->pend, n) == 1);
            a->tx_gen += n;
            a->pend_off = 0;
            a->pend_len = n;
        }
        rv = lp2p__yamux_stream_write(a->st, a->pend + a->pend_off,
                                      a->pend_len - a->pend_off, &acc);
        CHECK(r, rv == 0);
        if (rv != 0) {
            break;
        }
        a->pend_off += acc;
        a->tx_sent += acc;
        if (a->pend_off < a->pend_len) {
            break; /* queue full */
        }
    }
    if (a->tx_sent == limit && limit != UNBOUNDED &&
        !(p->reset_by == RESET_OPENER && a->opener)) {
        unsigned int dl = 32;
        CHECK(r, lp2p__yamux_stream_close(a->st) == 0);
        CHECK(r, EVP_DigestFinal_ex(a->tx_md, a->tx_digest, &dl) == 1);
        a->tx_closed = 1;
    }
    return a->tx_sent - before;
}

/* One application step on stream k; returns progress made (bytes). */
static uint64_t app_step(struct side *sd, struct sapp *a)
{
    struct run *r = sd->run;
    const struct plan *p = &r->plan[a->k];
    uint64_t progress = 0;
    if (a->got_reset) {
        uint8_t b = 0;
        size_t acc = 7;
        /* the peer reset it: writes fail from now on */
        CHECK(r, lp2p__yamux_stream_write(a->st, &b, 1, &acc) ==
                     LP2P_ERESET);
        CHECK(r, acc == 0);
        app_release(a);
        a->finished = 1;
        return 1;
    }
    /* Consume some of what arrived, as an application would: at times
     * not at all for a while (the peer then fills the window), some
     * streams always slowly, others greedily. */
    if (a->k == FILL_K && !a->opener && !a->window_filled) {
        /* read nothing until the sender used the whole window */
        if (a->delivered - a->consumed ==
            lp2p__yamux_stream_recv_window(a->st)) {
            a->window_filled = 1;
        }
    } else if (a->pause > 0) {
        a->pause--;
    } else if (rnd(&r->rng) % 16 == 0) {
        a->pause = (unsigned int)rnd_range(&r->rng, 5, 40);
    } else if (a->rlen > 0 && rnd(&r->rng) % 4 != 0) {
        size_t n = rnd(&r->rng) % 2 ? a->rlen : rnd_range(&r->rng, 1, a->rlen);
        if (a->k % 7 == 0 && n > 4096) {
            n = 4096;
        }
        CHECK(r, EVP_DigestUpdate(a->rx_md, a->rbuf + a->roff, n) == 1);
        a->roff += n;
        a->rlen -= n;
        if (a->rlen == 0) {
            a->roff = 0;
        }
        a->rx_bytes += n;
        CHECK(r, lp2p__yamux_stream_consume(a->st, n) == 0);
        a->consumed += n;
        progress += n;
    }
    if (a->got_fin && a->rlen == 0 && !a->rx_done) {
        unsigned int dl = 32;
        CHECK(r, EVP_DigestFinal_ex(a->rx_md, a->rx_digest, &dl) == 1);
        a->rx_done = 1;
        progress++;
    }
    if (p->reset_by == RESET_ACCEPTOR && !a->opener &&
        a->rx_bytes >= p->reset_after) {
        CHECK(r, lp2p__yamux_stream_reset(a->st) == 0);
        a->did_reset = 1;
        app_release(a);
        a->finished = 1;
        return progress + 1;
    }
    if (!a->tx_closed &&
        (a->mss_done || (a->opener && p->kind == MSS_LAZY))) {
        progress += app_send(a);
    }
    /* data waits for the peer's window */
    if (lp2p__yamux_stream_queued(a->st) > 0 &&
        lp2p__yamux_stream_send_window(a->st) == 0) {
        sd->window_stalls++;
    }
    if (p->reset_by == RESET_OPENER && a->opener && a->mss_done &&
        a->tx_sent == p->reset_after &&
        lp2p__yamux_stream_queued(a->st) == 0) {
        /* every byte is on its way: reset behind them */
        CHECK(r, lp2p__yamux_stream_reset(a->st) == 0);
        a->did_reset = 1;
        app_release(a);
        a->finished = 1;
        return progress + 1;
    }
    if (a->tx_closed && a->rx_done) {
        app_release(a);
        a->finished = 1;
        progress++;
    }
    return progress;
}

/* ------------------------------------------------------------------- */
/* The connection                                                        */

static void side_fail(struct side *sd, int rv)
{
    if (sd->error == 0) {
        sd->error = rv;
    }
}

static void start_yamux(struct side *sd)
{
    struct run *r = sd->run;
    struct lp2p__yamux_config cfg;
    int k, rv;
    lp2p__yamux_config_init(&cfg);
    /* tight limits, so that the memory bound is tight too */
    cfg.max_inbound_streams = NSTREAMS;
    cfg.max_outbound_streams = NSTREAMS;
    rv = lp2p__yamux_session_new(&sd->ys, sd->dialer, &cfg, on_yamux, sd);
    if (rv != 0) {
        side_fail(sd, rv);
        return;
    }
    sd->phase = PH_YAMUX;
    for (k = 0; k < NSTREAMS; k++) {
        struct lp2p__yamux_stream *st;
        if (r->plan[k].by_dialer != sd->dialer) {
            continue;
        }
        rv = lp2p__yamux_stream_open(sd->ys, &st);
        if (rv != 0) {
            side_fail(sd, rv);
            return;
        }
        CHECK(r, lp2p__yamux_stream_id(st) == r->plan[k].id);
        app_init(sd, k, st, 1);
    }
}

static void noise_done(struct side *sd)
{
    int rv;
    sd->hs_done = 1;
    sd->remote_id = *lp2p__noise_hs_remote_id(&sd->hs);
    sd->inlined = lp2p__noise_hs_muxer(&sd->hs);
    rv = lp2p__noise_hs_split(&sd->hs, &sd->tr);
    lp2p__noise_hs_close(&sd->hs);
    sd->hs_open = 0;
    if (rv != 0) {
        side_fail(sd, rv);
        return;
    }
    if (sd->inlined != NULL) {
        start_yamux(sd);
        return;
    }
    sd->phase = PH_MUXSEL;
    rv = sd->dialer ? lp2p__mss_init_initiator(&sd->mss, MUXERS, 1)
                    : lp2p__mss_init_responder(&sd->mss, MUXERS, 1, NULL,
                                               NULL);
    if (rv == 0) {
        rv = lp2p__mss_start(&sd->mss, &sd->plain_out);
    }
    if (rv != 0) {
        side_fail(sd, rv);
    }
}

static void security_done(struct side *sd)
{
    struct lp2p_noise_config cfg;
    int rv;
    snprintf(sd->sec_selected, sizeof(sd->sec_selected), "%s",
             lp2p__mss_selected(&sd->mss));
    if (strcmp(sd->sec_selected, LP2P_NOISE_PROTOCOL) != 0) {
        side_fail(sd, LP2P_ENOPROTO);
        return;
    }
    memset(&cfg, 0, sizeof(cfg));
    cfg.identity = &sd->key;
    cfg.expected = sd->dialer ? sd->run->expect : NULL;
    cfg.muxers = sd->run->inlined ? MUXERS : NULL;
    cfg.nmuxers = sd->run->inlined ? 1 : 0;
    rv = lp2p__noise_hs_init(&sd->hs, sd->dialer, &cfg);
    sd->hs_open = 1;
    if (rv == 0) {
        rv = lp2p__noise_hs_start(&sd->hs, &sd->wire);
    }
    if (rv != 0) {
        side_fail(sd, rv);
        return;
    }
    sd->phase = PH_NOISE;
}

/* Decrypted bytes: muxer selection, then Yamux. */
static void process_plain(struct side *sd)
{
    size_t off = 0;
    while (off < sd->plain_in.len && sd->error == 0) {
        const uint8_t *p = sd->plain_in.data + off;
        size_t n = sd->plain_in.len - off;
        if (sd->phase == PH_MUXSEL) {
            int c = lp2p__mss_feed(&sd->mss, p, n, &sd->plain_out);
            if (c < 0) {
                side_fail(sd, c);
                break;
            }
            off += (size_t)c;
            if (lp2p__mss_done(&sd->mss)) {
                if (strcmp(lp2p__mss_selected(&sd->mss), YAMUX_PROTO) != 0) {
                    side_fail(sd, LP2P_ENOPROTO);
                    break;
                }
                start_yamux(sd);
            }
        } else {
            int rv = lp2p__yamux_feed(sd->ys, p, n);
            if (rv != 0) {
                side_fail(sd, rv);
            }
            off += n;
        }
    }
    sd->plain_in.len = 0;
}

/* Bytes from the wire, in whatever pieces the pump cut. */
static void side_feed(struct side *sd, const uint8_t *in, size_t len)
{
    sd->reads++;
    sd->tiny_reads += len < LP2P__YAMUX_HEADER_LEN;
    while (len > 0 && sd->error == 0) {
        int c;
        switch (sd->phase) {
        case PH_MSS:
            sd->tmp.len = 0;
            c = lp2p__mss_feed(&sd->mss, in, len, &sd->tmp);
            if (c < 0) {
                side_fail(sd, c);
                return;
            }
            if (lp2p__buf_append(&sd->wire, sd->tmp.data, sd->tmp.len) != 0 ||
                lp2p__buf_append(&sd->mss_log, sd->tmp.data, sd->tmp.len) !=
                    0) {
                side_fail(sd, LP2P_ENOMEM);
                return;
            }
            in += c;
            len -= (size_t)c;
            if (lp2p__mss_done(&sd->mss)) {
                security_done(sd);
            }
            break;
        case PH_NOISE:
            c = lp2p__noise_hs_feed(&sd->hs, in, len, &sd->wire);
            if (c < 0) {
                side_fail(sd, c);
                return;
            }
            in += c;
            len -= (size_t)c;
            if (lp2p__noise_hs_done(&sd->hs)) {
                noise_done(sd);
            }
            break;
        case PH_MUXSEL:
        case PH_YAMUX:
            c = lp2p__noise_transport_decrypt(&sd->tr, in, len,
                                              &sd->plain_in);
            if (c != 0) {
                side_fail(sd, c);
                return;
            }
            len = 0;
            process_plain(sd);
            break;
        }
    }
}

/* Fill the wire from Yamux while the "socket buffer" has room; the
 * plaintext is cut into Noise messages independently of frames. */
static void side_flush(struct side *sd)
{
    struct run *r = sd->run;
    uint8_t buf[65536];
    if (sd->phase != PH_MUXSEL && sd->phase != PH_YAMUX) {
        return;
    }
    while (sd->error == 0 && sd->wire.len - sd->wire_off < WIRE_MAX) {
        size_t off = 0;
        if (sd->plain_out.len == 0) {
            size_t target = rnd_size(&r->rng, PLAIN_BATCH_MAX);
            while (sd->ys != NULL && lp2p__yamux_want_write(sd->ys) &&
                   sd->plain_out.len < target) {
                size_t cap = rnd_size(&r->rng, sizeof(buf) - 12) + 12;
                size_t n;
                if (cap > target - sd->plain_out.len + 12) {
                    cap = target - sd->plain_out.len + 12;
                }
                n = lp2p__yamux_pull(sd->ys, buf, cap);
                if (n == 0) {
                    break; /* only something bigger than cap is left */
                }
                if (lp2p__buf_append(&sd->plain_out, buf, n) != 0) {
                    side_fail(sd, LP2P_ENOMEM);
                    return;
                }
            }
            if (sd->plain_out.len == 0) {
                return;
            }
        }
        while (off < sd->plain_out.len) {
            size_t n = rnd_size(&r->rng, LP2P_NOISE_MAX_PLAIN);
            int rv;
            if (n > sd->plain_out.len - off) {
                n = sd->plain_out.len - off;
            }
            rv = lp2p__noise_transport_encrypt(&sd->tr, sd->plain_out.data + off,
                                               n, &sd->wire);
            if (rv != 0) {
                side_fail(sd, rv);
                return;
            }
            sd->pieces++;
            sd->tiny_pieces += n < LP2P__YAMUX_HEADER_LEN;
            off += n;
        }
        sd->plain_out.len = 0;
    }
}

/* Deliver a random amount of `from`'s wire to its peer, in random
 * pieces. Returns the bytes moved. */
static uint64_t deliver(struct side *from)
{
    struct run *r = from->run;
    struct side *to = from->peer;
    size_t budget = rnd_range(&r->rng, 0, 2 * WIRE_MAX), moved = 0;
    if (from->wire.len - from->wire_off > from->peak_wire) {
        from->peak_wire = from->wire.len - from->wire_off;
    }
    while (from->wire_off < from->wire.len && moved < budget &&
           to->error == 0) {
        size_t n = rnd_size(&r->rng, 65536);
        if (n > from->wire.len - from->wire_off) {
            n = from->wire.len - from->wire_off;
        }
        side_feed(to, from->wire.data + from->wire_off, n);
        from->wire_off += n;
        moved += n;
    }
    if (from->wire_off > 0) {
        memmove(from->wire.data, from->wire.data + from->wire_off,
                from->wire.len - from->wire_off);
        from->wire.len -= from->wire_off;
        from->wire_off = 0;
    }
    from->wire_bytes += moved;
    return moved;
}

static void side_init(struct side *sd, struct run *r, int dialer,
                      struct side *peer, uint8_t seed_byte)
{
    uint8_t seed[32];
    memset(sd, 0, sizeof(*sd));
    sd->run = r;
    sd->name = dialer ? "dialer" : "listener";
    sd->dialer = dialer;
    sd->peer = peer;
    memset(seed, seed_byte, sizeof(seed));
    ASSERT_OK(lp2p_key_from_seed(&sd->key, seed));
    ASSERT_OK(lp2p_peer_id_from_key(&sd->key, &sd->id));
    lp2p__buf_init(&sd->mss_log);
    lp2p__buf_init(&sd->wire);
    lp2p__buf_init(&sd->plain_out);
    lp2p__buf_init(&sd->plain_in);
    lp2p__buf_init(&sd->tmp);
    sd->phase = PH_MSS;
    if (dialer) {
        ASSERT_OK(lp2p__mss_init_initiator(&sd->mss, SEC_DIALER, 2));
    } else {
        ASSERT_OK(lp2p__mss_init_responder(&sd->mss, SEC_LISTENER, 1, NULL,
                                           NULL));
    }
    ASSERT_OK(lp2p__mss_start(&sd->mss, &sd->tmp));
    ASSERT_OK(lp2p__buf_append(&sd->wire, sd->tmp.data, sd->tmp.len));
    ASSERT_OK(lp2p__buf_append(&sd->mss_log, sd->tmp.data, sd->tmp.len));
}

static void side_free(struct side *sd)
{
    int k;
    for (k = 0; k < NSTREAMS; k++) {
        struct sapp *a = &sd->apps[k];
        if (!a->used) {
            continue;
        }
        EVP_MD_CTX_free(a->tx_md);
        EVP_MD_CTX_free(a->rx_md);
        free(a->rbuf);
    }
    lp2p__yamux_session_free(sd->ys);
    if (sd->hs_open) {
        lp2p__noise_hs_close(&sd->hs);
    }
    lp2p__noise_transport_close(&sd->tr);
    lp2p__buf_free(&sd->mss_log);
    lp2p__buf_free(&sd->wire);
    lp2p__buf_free(&sd->plain_out);
    lp2p__buf_free(&sd->plain_in);
    lp2p__buf_free(&sd->tmp);
    lp2p_key_wipe(&sd->key);
}

static int all_finished(const struct side *sd)
{
    int k;
    for (k = 0; k < NSTREAMS; k++) {
        if (!sd->apps[k].used || !sd->apps[k].finished) {
            return 0;
        }
    }
    return 1;
}

static int quiet(const struct side *sd)
{
    return sd->wire.len == 0 && sd->plain_out.len == 0 &&
           (sd->ys == NULL || !lp2p__yamux_want_write(sd->ys));
}

static void check_mem(struct side *sd)
{
    size_t m;
    if (sd->ys == NULL) {
        return;
    }
    m = lp2p__yamux_session_mem(sd->ys);
    if (m > sd->peak_mem) {
        sd->peak_mem = m;
    }
    ASSERT(m <= lp2p__yamux_session_mem_bound(sd->ys));
    /* the socket buffer: below WIRE_MAX before the last batch, and a
     * batch of at most PLAIN_BATCH_MAX bytes costs at most 18 bytes of
     * framing per byte */
    ASSERT(sd->peak_wire <= WIRE_MAX + PLAIN_BATCH_MAX * 19);
}

static size_t bufs_cap(const struct side *sd)
{
    return sd->mss_log.cap + sd->wire.cap + sd->plain_out.cap +
           sd->plain_in.cap + sd->tmp.cap;
}

/* Everything lp2p holds: the two sessions as they account for
 * themselves, our buffers, and each transport's frame buffer. */
static void check_heap(const struct run *r)
{
    size_t expect;
    if (r->d->ys == NULL || r->l->ys == NULL || r->d->hs_open ||
        r->l->hs_open) {
        return;
    }
    expect = lp2p__yamux_session_mem(r->d->ys) +
             lp2p__yamux_session_mem(r->l->ys) + bufs_cap(r->d) +
             bufs_cap(r->l) + 2 * (2 + LP2P_NOISE_MAX_MSG);
    if (heap_live != expect) {
        test__fail(__FILE__, __LINE__,
                   "lp2p heap holds %zu bytes, the accounting says %zu",
                   heap_live, expect);
    }
}

static void dump(const struct side *sd)
{
    int k;
    for (k = 0; k < NSTREAMS; k++) {
        const struct sapp *a = &sd->apps[k];
        if (a->used && !a->finished) {
            fprintf(stderr,
                    "%s k=%d mss=%d tx=%llu closed=%d rx=%llu rlen=%zu "
                    "fin=%d reset=%d\n",
                    sd->name, k, a->mss_done,
                    (unsigned long long)a->tx_sent, a->tx_closed,
                    (unsigned long long)a->rx_bytes, a->rlen, a->got_fin,
                    a->got_reset);
        }
    }
}

/* Run the whole thing; `total` bytes of payload on completed streams. */
static void run_stack(int inlined, uint64_t total)
{
    struct run r;
    struct side *d = calloc(1, sizeof(*d));
    struct side *l = calloc(1, sizeof(*l));
    static const uint8_t d_mss[] = "\x13/multistream/1.0.0\n"
                                   "\x0b/tls/1.0.0\n"
                                   "\x07/noise\n";
    static const uint8_t l_mss[] = "\x13/multistream/1.0.0\n"
                                   "\x03na\n"
                                   "\x07/noise\n";
    uint64_t moved = 0, checked = 0;
    long iter, idle = 0;
    double t0 = now(), t1;
    int k;
    ASSERT(d != NULL && l != NULL);
    heap_live = heap_peak = 0;
    lp2p_heap_set(&counting_heap);
    memset(&r, 0, sizeof(r));
    r.rng = 0x2b992ddfa23249d6ull + (uint64_t)inlined;
    if (getenv("P2PRAFT_STACK_SEED") != NULL) {
        /* to explore other schedules; the suite runs the fixed one */
        r.rng += strtoull(getenv("P2PRAFT_STACK_SEED"), NULL, 0);
    }
    r.inlined = inlined;
    r.total = total;
    make_plan(&r, total, valgrind() ? 16 : 1);
    r.d = d;
    r.l = l;
    side_init(d, &r, 1, l, 0x11);
    side_init(l, &r, 0, d, 0x22);
    r.expect = &l->id;

    for (iter = 0; idle < 1000; iter++) {
        uint64_t progress = 0;
        for (k = 0; k < NSTREAMS; k++) {
            if (d->apps[k].used && !d->apps[k].finished) {
                progress += app_step(d, &d->apps[k]);
            }
            if (l->apps[k].used && !l->apps[k].finished) {
                progress += app_step(l, &l->apps[k]);
            }
        }
        side_flush(d);
        side_flush(l);
        progress += deliver(d);
        progress += deliver(l);
        if (r.fail[0] != '\0') {
            test__fail(__FILE__, __LINE__, "%s", r.fail);
        }
        ASSERT_OK(d->error);
        ASSERT_OK(l->error);
        check_mem(d);
        check_mem(l);
        check_heap(&r);
        if (d->ys != NULL && l->ys != NULL && all_finished(d) &&
            all_finished(l) && quiet(d) && quiet(l)) {
            break;
        }
        idle = progress == 0 ? idle + 1 : 0;
    }
    if (idle >= 1000) {
        dump(d);
        dump(l);
        test__fail(__FILE__, __LINE__, "stalled after %ld rounds", iter);
    }
    t1 = now();

    /* Connection setup as specified. */
    ASSERT_EQ(d->mss_log.len, sizeof(d_mss) - 1);
    ASSERT_MEM_EQ(d->mss_log.data, d_mss, sizeof(d_mss) - 1);
    ASSERT_EQ(l->mss_log.len, sizeof(l_mss) - 1);
    ASSERT_MEM_EQ(l->mss_log.data, l_mss, sizeof(l_mss) - 1);
    ASSERT_STR_EQ(d->sec_selected, "/noise");
    ASSERT_STR_EQ(l->sec_selected, "/noise");
    ASSERT(lp2p_peer_id_equal(&d->remote_id, &l->id));
    ASSERT(lp2p_peer_id_equal(&l->remote_id, &d->id));
    if (inlined) {
        ASSERT_STR_EQ(d->inlined, YAMUX_PROTO);
        ASSERT_STR_EQ(l->inlined, YAMUX_PROTO);
    } else {
        ASSERT(d->inlined == NULL && l->inlined == NULL);
        ASSERT_STR_EQ(lp2p__mss_selected(&d->mss), YAMUX_PROTO);
        ASSERT_STR_EQ(lp2p__mss_selected(&l->mss), YAMUX_PROTO);
    }

    /* Every stream, end to end. */
    for (k = 0; k < NSTREAMS; k++) {
        const struct plan *p = &r.plan[k];
        struct sapp *o = p->by_dialer ? &d->apps[k] : &l->apps[k];
        struct sapp *c = p->by_dialer ? &l->apps[k] : &d->apps[k];
        ASSERT(o->used && o->opener && o->finished);
        ASSERT(c->used && !c->opener && c->finished);
        if (p->reset_by == RESET_OPENER) {
            ASSERT(o->did_reset && !o->got_reset);
            ASSERT(c->got_reset && !c->did_reset);
            /* all the opener wrote arrived, then the RST */
            ASSERT_EQ_U64(c->rx_at_reset, p->reset_after);
            continue;
        }
        if (p->reset_by == RESET_ACCEPTOR) {
            ASSERT(c->did_reset && !c->got_reset);
            ASSERT(o->got_reset && !o->did_reset);
            ASSERT(c->rx_bytes >= p->reset_after);
            ASSERT(o->tx_sent >= c->rx_bytes);
            continue;
        }
        ASSERT(!o->got_reset && !c->got_reset);
        ASSERT(o->tx_closed && o->rx_done && c->tx_closed && c->rx_done);
        ASSERT_EQ_U64(o->tx_sent, p->size[0]);
        ASSERT_EQ_U64(c->rx_bytes, p->size[0]);
        ASSERT_MEM_EQ(o->tx_digest, c->rx_digest, 32);
        ASSERT_EQ_U64(c->tx_sent, p->size[1]);
        ASSERT_EQ_U64(o->rx_bytes, p->size[1]);
        ASSERT_MEM_EQ(c->tx_digest, o->rx_digest, 32);
        checked += p->size[0] + p->size[1];
    }
    ASSERT_EQ_U64(checked, total);
    ASSERT_EQ(d->resets_seen, 5);
    ASSERT_EQ(l->resets_seen, 5);
    ASSERT_OK(lp2p__yamux_session_error(d->ys));
    ASSERT_OK(lp2p__yamux_session_error(l->ys));
    /* every stream released and gone, nothing left to say */
    ASSERT_EQ(lp2p__yamux_session_streams(d->ys), 0);
    ASSERT_EQ(lp2p__yamux_session_streams(l->ys), 0);
    ASSERT_EQ(d->tr.rlen, 0);
    ASSERT_EQ(l->tr.rlen, 0);
    /* The awkward cuts happened: reads and Noise messages shorter than a
     * Yamux header, and streams that waited for window. */
    ASSERT(d->tiny_reads > 0 && l->tiny_reads > 0);
    ASSERT(d->tiny_pieces > 0 && l->tiny_pieces > 0);
    ASSERT(d->window_stalls > 0);
    ASSERT(l->apps[FILL_K].window_filled);
    moved = d->wire_bytes + l->wire_bytes;
    printf("  stack %s: %.1f MiB payload, %.1f MiB on the wire, %llu+%llu "
           "Noise messages, %llu+%llu reads, %ld rounds, %.2f s; peak "
           "yamux mem %zu/%zu KiB (bound %zu KiB), peak wire %zu KiB, peak "
           "app buffer %zu KiB, max recv window %u KiB, %llu window "
           "stalls, peak lp2p heap %zu KiB\n",
           inlined ? "inlined muxer" : "multistream muxer",
           (double)total / 1048576.0, (double)moved / 1048576.0,
           (unsigned long long)d->pieces, (unsigned long long)l->pieces,
           (unsigned long long)d->reads, (unsigned long long)l->reads, iter,
           t1 - t0, d->peak_mem / 1024, l->peak_mem / 1024,
           lp2p__yamux_session_mem_bound(d->ys) / 1024,
           (d->peak_wire > l->peak_wire ? d->peak_wire : l->peak_wire) / 1024,
           (d->peak_rbuf > l->peak_rbuf ? d->peak_rbuf : l->peak_rbuf) /
               1024,
           (d->max_recv_window > l->max_recv_window ? d->max_recv_window
                                                    : l->max_recv_window) /
               1024,
           (unsigned long long)(d->window_stalls + l->window_stalls),
           heap_peak / 1024);
    side_free(d);
    side_free(l);
    free(d);
    free(l);
    ASSERT_EQ(heap_live, 0);
    lp2p_heap_set(NULL);
}

static uint64_t payload_total(void)
{
    return (valgrind() ? 4u : 64u) * 1024u * 1024u;
}

TEST(stack, inlined_muxer_100_streams)
{
    run_stack(1, payload_total());
}

TEST(stack, multistream_muxer_100_streams)
{
    run_stack(0, payload_total());
}

/* The dialer expects another peer: the handshake fails on its side with
 * LP2P_EPEERID when message 2 arrives, before it sends message 3. */
TEST(stack, dialer_rejects_unexpected_peer)
{
    struct run r;
    struct side *d = calloc(1, sizeof(*d));
    struct side *l = calloc(1, sizeof(*l));
    struct lp2p_key other;
    struct lp2p_peer_id other_id;
    uint8_t seed[32];
    int i;
    ASSERT(d != NULL && l != NULL);
    memset(&r, 0, sizeof(r));
    r.rng = 7;
    r.inlined = 1;
    make_plan(&r, 1024 * 1024, 1);
    memset(seed, 0x33, sizeof(seed));
    ASSERT_OK(lp2p_key_from_seed(&other, seed));
    ASSERT_OK(lp2p_peer_id_from_key(&other, &other_id));
    lp2p_key_wipe(&other);
    r.expect = &other_id;
    side_init(d, &r, 1, l, 0x11);
    side_init(l, &r, 0, d, 0x22);
    for (i = 0; i < 100 && d->error == 0 && l->error == 0; i++) {
        deliver(d);
        deliver(l);
    }
    ASSERT_ERR(d->error, LP2P_EPEERID);
    ASSERT_OK(l->error);
    ASSERT(!d->hs_done && !l->hs_done);
    ASSERT(d->phase == PH_NOISE && l->phase == PH_NOISE);
    ASSERT(d->ys == NULL && l->ys == NULL);
    side_free(d);
    side_free(l);
    free(d);
    free(l);
}
