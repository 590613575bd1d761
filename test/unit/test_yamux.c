/* Yamux session: two sessions back to back in memory, plus hand-written
 * frames as go-yamux and js-yamux put them on the wire. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p.h"
#include "oom.h"
#include "p2p/yamux.h"
#include "test.h"

#define MAXS 128

/* Per-stream application state, hung on the stream's user pointer. */
struct app {
    struct peer *peer;
    struct lp2p__yamux_stream *st;
    int idx;
    uint64_t rx_bytes;
    uint32_t rx_hash;
    size_t unconsumed;
    int got_fin, got_reset, writable;
    uint32_t reset_code;
    /* sending */
    uint64_t tx_total, tx_done;
    uint32_t tx_seed;
    int tx_closed;
    int aborted;
};

struct peer {
    struct lp2p__yamux_session *s;
    int auto_accept, auto_consume;
    int opened, acked, fins, resets, writables, goaways, ping_acks, errors;
    uint32_t goaway_code, ping_value;
    int error;
    struct app apps[MAXS];
    int napps;
    struct lp2p__yamux_stream *last_opened;
    uint32_t max_send_window_seen;
    int fail_alloc; /* set when an app struct could not be had */
};

static uint32_t fnv(uint32_t h, const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

/* Deterministic pattern byte at position `pos` of the stream with `seed`. */
static uint8_t pat(uint32_t seed, uint64_t pos)
{
    uint64_t x = (pos + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    x ^= x >> 29;
    return (uint8_t)(x * 0xBF58476D1CE4E5B9ull >> 56);
}

static uint32_t pat_hash(uint32_t seed, uint64_t n)
{
    uint32_t h = 2166136261u;
    uint64_t i;
    for (i = 0; i < n; i++) {
        uint8_t b = pat(seed, i);
        h = fnv(h, &b, 1);
    }
    return h;
}

static struct app *app_new(struct peer *p, struct lp2p__yamux_stream *st)
{
    struct app *a;
    if (p->napps >= MAXS) {
        p->fail_alloc = 1;
        return NULL;
    }
    a = &p->apps[p->napps];
    memset(a, 0, sizeof(*a));
    a->peer = p;
    a->st = st;
    a->idx = p->napps++;
    a->rx_hash = 2166136261u;
    lp2p__yamux_stream_set_user(st, a);
    return a;
}

static void on_event(void *ud, const struct lp2p__yamux_event *ev)
{
    struct peer *p = ud;
    struct app *a = ev->stream ? lp2p__yamux_stream_user(ev->stream) : NULL;
    switch (ev->type) {
    case LP2P__YAMUX_EV_STREAM_OPENED:
        p->opened++;
        p->last_opened = ev->stream;
        a = app_new(p, ev->stream);
        if (p->auto_accept) {
            lp2p__yamux_stream_accept(ev->stream);
        }
        break;
    case LP2P__YAMUX_EV_STREAM_ACKED:
        p->acked++;
        break;
    case LP2P__YAMUX_EV_DATA:
        if (a != NULL) {
            a->rx_bytes += ev->len;
            a->rx_hash = fnv(a->rx_hash, ev->data, ev->len);
            if (p->auto_consume) {
                lp2p__yamux_stream_consume(ev->stream, ev->len);
            } else {
                a->unconsumed += ev->len;
            }
        }
        break;
    case LP2P__YAMUX_EV_FIN:
        p->fins++;
        if (a != NULL) {
            a->got_fin = 1;
        }
        break;
    case LP2P__YAMUX_EV_RESET:
        p->resets++;
        if (a != NULL) {
            a->got_reset = 1;
            a->reset_code = ev->value;
        }
        break;
    case LP2P__YAMUX_EV_WRITABLE:
        p->writables++;
        if (a != NULL) {
            a->writable = 1;
        }
        break;
    case LP2P__YAMUX_EV_GO_AWAY:
        p->goaways++;
        p->goaway_code = ev->value;
        break;
    case LP2P__YAMUX_EV_PING_ACK:
        p->ping_acks++;
        p->ping_value = ev->value;
        break;
    case LP2P__YAMUX_EV_ERROR:
        p->errors++;
        p->error = ev->error;
        break;
    }
}

static int peer_init(struct peer *p, int client,
                     const struct lp2p__yamux_config *cfg)
{
    memset(p, 0, sizeof(*p));
    p->auto_accept = 1;
    p->auto_consume = 1;
    return lp2p__yamux_session_new(&p->s, client, cfg, on_event, p);
}

/* Move bytes from `from` to `to` once: pull into a `cap` buffer, feed in
 * `chunk`-byte pieces. Returns bytes moved or a negative feed error. */
static long move(struct peer *from, struct peer *to, size_t cap, size_t chunk)
{
    static uint8_t buf[256 * 1024];
    size_t n, off;
    long total = 0;
    int rv;
    if (cap > sizeof(buf)) {
        cap = sizeof(buf);
    }
    while ((n = lp2p__yamux_pull(from->s, buf, cap)) > 0) {
        for (off = 0; off < n; off += chunk) {
            size_t m = n - off < chunk ? n - off : chunk;
            rv = lp2p__yamux_feed(to->s, buf + off, m);
            if (rv != 0) {
                return rv;
            }
        }
        total += (long)n;
    }
    return total;
}

/* Pump both ways until quiet. Returns 0 or the first feed error. */
static int pump_ex(struct peer *a, struct peer *b, size_t cap, size_t chunk)
{
    int rounds;
    for (rounds = 0; rounds < 100000; rounds++) {
        long x = move(a, b, cap, chunk), y;
        if (x < 0) {
            return (int)x;
        }
        y = move(b, a, cap, chunk);
        if (y < 0) {
            return (int)y;
        }
        if (x == 0 && y == 0) {
            return 0;
        }
    }
    return LP2P_ETIMEDOUT;
}

static int pump(struct peer *a, struct peer *b)
{
    return pump_ex(a, b, 65536, 65536);
}

/* Feed hand-written bytes given in hex. */
static int feed_hex(struct peer *p, const char *hex)
{
    size_t n;
    uint8_t *b = test__unhex(hex, &n);
    int rv = lp2p__yamux_feed(p->s, b, n);
    free(b);
    return rv;
}

static size_t pull_all(struct peer *p, uint8_t *out, size_t cap)
{
    size_t w = 0, n;
    while (w < cap && (n = lp2p__yamux_pull(p->s, out + w, cap - w)) > 0) {
        w += n;
    }
    return w;
}

/* Write as much of a's pattern as the queue takes. */
static int fill(struct app *a)
{
    uint8_t chunk[8192];
    while (a->tx_done < a->tx_total) {
        size_t n = sizeof(chunk), i, acc;
        int rv;
        if (a->tx_total - a->tx_done < n) {
            n = (size_t)(a->tx_total - a->tx_done);
        }
        for (i = 0; i < n; i++) {
            chunk[i] = pat(a->tx_seed, a->tx_done + i);
        }
        rv = lp2p__yamux_stream_write(a->st, chunk, n, &acc);
        if (rv != 0) {
            return rv;
        }
        a->tx_done += acc;
        if (acc < n) {
            return 0;
        }
    }
    if (!a->tx_closed) {
        a->tx_closed = 1;
        return lp2p__yamux_stream_close(a->st);
    }
    return 0;
}

static void free_peers(struct peer *a, struct peer *b)
{
    lp2p__yamux_session_free(a->s);
    lp2p__yamux_session_free(b->s);
}

TEST(yamux, open_accept_data)
{
    struct peer c, s;
    struct lp2p__yamux_stream *st;
    struct app *ca, *sa;
    size_t acc;
    ASSERT_OK(peer_init(&c, 1, NULL));
    ASSERT_OK(peer_init(&s, 0, NULL));
    ASSERT_OK(lp2p__yamux_stream_open(c.s, &st));
    ASSERT_EQ(lp2p__yamux_stream_id(st), 1);
    ca = app_new(&c, st);
    /* data may follow the SYN before the ACK */
    ASSERT_OK(lp2p__yamux_stream_write(st, "hello", 5, &acc));
    ASSERT_EQ(acc, 5);
    ASSERT_OK(pump(&c, &s));
    ASSERT_EQ(s.opened, 1);
    ASSERT_EQ(c.acked, 1);
    sa = lp2p__yamux_stream_user(s.last_opened);
    ASSERT_EQ(sa->rx_bytes, 5);
    ASSERT_EQ(sa->rx_hash, fnv(2166136261u, (const uint8_t *)"hello", 5));
    ASSERT_OK(lp2p__yamux_stream_write(sa->st, "world!", 6, &acc));
    ASSERT_OK(pump(&c, &s));
    ASSERT_EQ(ca->rx_bytes, 6);
    ASSERT_EQ(ca->rx_hash, fnv(2166136261u, (const uint8_t *)"world!", 6));
    /* second stream gets the next odd id; server opens even ids */
    ASSERT_OK(lp2p__yamux_stream_open(c.s, &st));
    ASSERT_EQ(lp2p__yamux_stream_id(st), 3);
    lp2p__yamux_stream_release(st);
    ASSERT_OK(lp2p__yamux_stream_open(s.s, &st));
    ASSERT_EQ(lp2p__yamux_stream_id(st), 2);
    lp2p__yamux_stream_release(st);
    ASSERT_OK(pump(&c, &s));
    ASSERT_EQ(lp2p__yamux_session_error(c.s), 0);
    ASSERT_EQ(lp2p__yamux_session_error(s.s), 0);
    free_peers(&c, &s);
}

/* 100 streams, each way several MiB in total, checksummed, half-closed;
 * every tenth stream is reset by the client part-way. */
TEST(yamux, hundred_streams_checksums)
{
    struct peer c, s;
    int i, round, done;
    const uint64_t per = 40 * 1024 + 123;
    ASSERT_OK(peer_init(&c, 1, NULL));
    ASSERT_OK(peer_init(&s, 0, NULL));
    for (i = 0; i < 100; i++) {
        struct lp2p__yamux_stream *st;
        struct app *a;
        ASSERT_OK(lp2p__yamux_stream_open(c.s, &st));
        a = app_new(&c, st);
        a->tx_total = per * (uint64_t)(i % 7 + 1);
        a->tx_seed = (uint32_t)i;
    }
    for (round = 0; round < 10000; round++) {
        done = 0;
        if (round == 1) {
            for (i = 9; i < c.napps; i += 10) {
                c.apps[i].aborted = 1;
                ASSERT_OK(lp2p__yamux_stream_reset(c.apps[i].st));
            }
        }
        for (i = 0; i < c.napps; i++) {
            if (!c.apps[i].aborted) {
                ASSERT_OK(fill(&c.apps[i]));
            }
        }
        for (i = 0; i < s.napps; i++) {
            struct app *a = &s.apps[i];
            if (a->got_reset) {
                continue;
            }
            if (a->got_fin && a->tx_total == 0) {
                /* echo back a stream of the same length, other pattern */
                a->tx_total = a->rx_bytes;
                a->tx_seed = 1000u + lp2p__yamux_stream_id(a->st);
            }
            if (a->tx_total > 0) {
                ASSERT_OK(fill(a));
            }
        }
        ASSERT_OK(pump_ex(&c, &s, 65536, 65536));
        for (i = 0; i < c.napps; i++) {
            done += c.apps[i].got_fin && !c.apps[i].aborted;
        }
        if (done == 90) {
            break;
        }
    }
    ASSERT_EQ(done, 90);
    ASSERT_EQ(s.resets, 10);
    ASSERT_EQ(c.resets, 0);
    ASSERT_EQ(s.napps, 100);
    {
        uint64_t total = 0;
        for (i = 0; i < 100; i++) {
            struct app *ca = &c.apps[i];
            struct app *sa = NULL;
            int j;
            if (ca->aborted) {
                continue;
            }
            for (j = 0; j < s.napps; j++) {
                if (lp2p__yamux_stream_id(s.apps[j].st) ==
                    lp2p__yamux_stream_id(ca->st)) {
                    sa = &s.apps[j];
                }
            }
            ASSERT(sa != NULL);
            ASSERT_EQ_U64(sa->rx_bytes, ca->tx_total);
            ASSERT_EQ(sa->rx_hash, pat_hash(ca->tx_seed, ca->tx_total));
            ASSERT_EQ_U64(ca->rx_bytes, ca->tx_total);
            ASSERT_EQ(ca->rx_hash,
                      pat_hash(1000u + lp2p__yamux_stream_id(ca->st),
                               ca->tx_total));
            total += 2 * ca->tx_total;
        }
        ASSERT(total > 8u * 1024 * 1024);
    }
    /* both closed both ways: release frees everything */
    for (i = 0; i < 100; i++) {
        lp2p__yamux_stream_release(c.apps[i].st);
        lp2p__yamux_stream_release(s.apps[i].st);
    }
    ASSERT_OK(pump(&c, &s));
    ASSERT_EQ(lp2p__yamux_session_streams(c.s), 0);
    ASSERT_EQ(lp2p__yamux_session_streams(s.s), 0);
    ASSERT_EQ(c.resets + s.resets, 10);
    free_peers(&c, &s);
}

TEST(yamux, half_close)
{
    struct peer c, s;
    struct lp2p__yamux_stream *st;
    struct app *ca, *sa;
    size_t acc;
    ASSERT_OK(peer_init(&c, 1, NULL));
    ASSERT_OK(peer_init(&s, 0, NULL));
    ASSERT_OK(lp2p__yamux_stream_open(c.s, &st));
    ca = app_new(&c, st);
    ASSERT_OK(lp2p__yamux_stream_write(st, "req", 3, &acc));
    ASSERT_OK(lp2p__yamux_stream_close(st));
    ASSERT_ERR(lp2p__yamux_stream_write(st, "x", 1, &acc), LP2P_ECLOSED);
    ASSERT_OK(pump(&c, &s));
    sa = lp2p__yamux_stream_user(s.last_opened);
    ASSERT_EQ(sa->rx_bytes, 3);
    ASSERT(sa->got_fin);
    ASSERT(!ca->got_fin);
    /* the other direction still works */
    ASSERT_OK(lp2p__yamux_stream_write(sa->st, "response", 8, &acc));
    ASSERT_OK(pump(&c, &s));
    ASSERT_EQ(ca->rx_bytes, 8);
    ASSERT_OK(lp2p__yamux_stream_close(sa->st));
    /* server releases at once: queued FIN still goes out */
    lp2p__yamux_stream_release(sa->st);
    ASSERT_OK(pump(&c, &s));
    ASSERT(ca->got_fin);
    ASSERT_EQ(c.resets + s.resets, 0);
    ASSERT_EQ(lp2p__yamux_session_streams(s.s), 0);
    lp2p__yamux_stream_release(ca->st);
    ASSERT_EQ(lp2p__yamux_session_streams(c.s), 0);
    ASSERT(!lp2p__yamux_want_write(c.s));
    free_peers(&c, &s);
}

TEST(yamux, reset)
{
    struct peer c, s;
    struct lp2p__yamux_stream *st;
    struct app *sa;
    size_t acc;
    ASSERT_OK(peer_init(&c, 1, NULL));
    ASSERT_OK(peer_init(&s, 0, NULL));
    ASSERT_OK(lp2p__yamux_stream_open(c.s, &st));
    app_new(&c, st);
    ASSERT_OK(lp2p__yamux_stream_write(st, "abc", 3, &acc));
    ASSERT_OK(pump(&c, &s));
    sa = lp2p__yamux_stream_user(s.last_opened);
    ASSERT_OK(lp2p__yamux_stream_reset(st));
    ASSERT_ERR(lp2p__yamux_stream_write(st, "x", 1, &acc), LP2P_ERESET);
    ASSERT_OK(pump(&c, &s));
    ASSERT(sa->got_reset);
    ASSERT_EQ(sa->reset_code, 0);
    ASSERT_ERR(lp2p__yamux_stream_write(sa->st, "x", 1, &acc), LP2P_ERESET);
    lp2p__yamux_stream_release(sa->st);
    lp2p__yamux_stream_release(st);
    ASSERT_OK(pump(&c, &s));
    ASSERT_EQ(lp2p__yamux_session_streams(c.s), 0);
    ASSERT_EQ(lp2p__yamux_session_streams(s.s), 0);
    /* releasing an open stream resets it */
    ASSERT_OK(lp2p__yamux_stream_open(c.s, &st));
    ASSERT_OK(pump(&c, &s));
    lp2p__yamux_stream_release(st);
    ASSERT_OK(pump(&c, &s));
    ASSERT_EQ(s.resets, 2);
    lp2p__yamux_stream_release(s.last_opened);
    ASSERT_EQ(lp2p__yamux_session_streams(s.s), 0);
    free_peers(&c, &s);
}

/* A stream released after our FIN lingers until the peer closes; the
 * sweep bounds that. Data for it is dropped and credited. */
TEST(yamux, linger_and_sweep)
{
    struct peer c, s;
    struct lp2p__yamux_stream *st;
    struct app *sa;
    int i;
    ASSERT_OK(peer_init(&c, 1, NULL));
    ASSERT_OK(peer_init(&s, 0, NULL));
    ASSERT_OK(lp2p__yamux_stream_open(c.s, &st));
    ASSERT_OK(lp2p__yamux_stream_close(st));
    lp2p__yamux_stream_release(st);
    ASSERT_OK(pump(&c, &s));
    ASSERT_EQ(lp2p__yamux_session_streams(c.s), 1);
    sa = lp2p__yamux_stream_user(s.last_opened);
    ASSERT(sa->got_fin);
    /* the server answers with more than a window: nobody reads it, but
     * the credit flows, so the server is never stuck */
    sa->tx_total = 600 * 1024;
    for (i = 0; i < 100 && !sa->tx_closed; i++) {
        ASSERT_OK(fill(sa));
        ASSERT_OK(pump(&c, &s));
    }
    ASSERT(sa->tx_closed);
    ASSERT_OK(pump(&c, &s));
    ASSERT_EQ(lp2p__yamux_session_streams(c.s), 0);
    ASSERT_EQ(s.resets, 0);
    lp2p__yamux_stream_release(sa->st);
    ASSERT_EQ(lp2p__yamux_session_streams(s.s), 0);
    /* the peer never closes: two sweeps reset it */
    ASSERT_OK(lp2p__yamux_stream_open(c.s, &st));
    ASSERT_OK(lp2p__yamux_stream_write(st, "x", 1, NULL));
    ASSERT_OK(lp2p__yamux_stream_close(st));
    lp2p__yamux_stream_release(st);
    ASSERT_OK(pump(&c, &s));
    lp2p__yamux_session_sweep(c.s);
    ASSERT(!lp2p__yamux_want_write(c.s));
    ASSERT_EQ(lp2p__yamux_session_streams(c.s), 1);
    lp2p__yamux_session_sweep(c.s);
    ASSERT_OK(pump(&c, &s));
    ASSERT_EQ(lp2p__yamux_session_streams(c.s), 0);
    ASSERT_EQ(s.resets, 1);
    /* the reader had its byte and the FIN before the RST */
    sa = lp2p__yamux_stream_user(s.last_opened);
    ASSERT_EQ(sa->rx_bytes, 1);
    ASSERT(sa->got_fin && sa->got_reset);
    free_peers(&c, &s);
}

/* The receiver does not consume: the sender stops at 256 KiB, and resumes
 * only when the application reports consumption. */
TEST(yamux, window_exhaustion_and_resume)
{
    struct peer c, s;
    struct lp2p__yamux_stream *st;
    struct app *ca, *sa;
    ASSERT_OK(peer_init(&c, 1, NULL));
    ASSERT_OK(peer_init(&s, 0, NULL));
    s.auto_consume = 0;
    ASSERT_OK(lp2p__yamux_stream_open(c.s, &st));
    ca = app_new(&c, st);
    ca->tx_total = 1024 * 1024;
    ASSERT_OK(fill(ca));
    ASSERT_EQ_U64(ca->tx_done, 256 * 1024); /* bounded send queue */
    ASSERT_OK(pump(&c, &s));
    sa = lp2p__yamux_stream_user(s.last_opened);
    ASSERT_EQ_U64(sa->rx_bytes, 256 * 1024);
    ASSERT_EQ(lp2p__yamux_stream_send_window(st), 0);
    ASSERT_EQ(c.writables, 1);
    ASSERT_OK(fill(ca));
    ASSERT_OK(pump(&c, &s));
    ASSERT_EQ_U64(sa->rx_bytes, 256 * 1024); /* still blocked */
    ASSERT_EQ(lp2p__yamux_stream_send_window(st), 0);
    /* less than half a window consumed: no update yet */
    ASSERT_OK(lp2p__yamux_stream_consume(sa->st, 1000));
    sa->unconsumed -= 1000;
    ASSERT_OK(pump(&c, &s));
    ASSERT_EQ_U64(sa->rx_bytes, 256 * 1024);
    ASSERT_ERR(lp2p__yamux_stream_consume(sa->st, 300 * 1024),
               LP2P_EINVAL);
    ASSERT_OK(lp2p__yamux_stream_consume(sa->st, 200 * 1024));
    sa->unconsumed -= 200 * 1024;
    ASSERT_OK(pump(&c, &s));
    ASSERT(sa->rx_bytes > 256 * 1024);
    /* now let it run to the end */
    s.auto_consume = 1;
    ASSERT_OK(lp2p__yamux_stream_consume(sa->st, sa->unconsumed));
    while (!sa->got_fin) {
        ASSERT_OK(fill(ca));
        ASSERT_OK(pump(&c, &s));
    }
    ASSERT_EQ_U64(sa->rx_bytes, 1024 * 1024);
    ASSERT_EQ(sa->rx_hash, pat_hash(0, 1024 * 1024));
    free_peers(&c, &s);
}

TEST(yamux, autotune)
{
    struct peer c, s;
    struct lp2p__yamux_stream *st;
    struct app *ca, *sa;
    uint32_t maxw = 0;
    ASSERT_OK(peer_init(&c, 1, NULL));
    ASSERT_OK(peer_init(&s, 0, NULL));
    ASSERT_OK(lp2p__yamux_stream_open(c.s, &st));
    ca = app_new(&c, st);
    ca->tx_total = 48u * 1024 * 1024;
    while (ca->tx_done < ca->tx_total || !ca->tx_closed) {
        uint32_t w = lp2p__yamux_stream_send_window(st);
        if (w > maxw) {
            maxw = w;
        }
        /* A round trip: the sender uses its whole window (it is window
         * limited), then the receiver's updates come back. */
        do {
            ASSERT_OK(fill(ca));
            ASSERT(move(&c, &s, 256 * 1024, 256 * 1024) >= 0);
        } while (lp2p__yamux_stream_send_window(st) > 0 &&
                 ca->tx_done < ca->tx_total);
        ASSERT(move(&s, &c, 256 * 1024, 256 * 1024) >= 0);
    }
    ASSERT_OK(pump(&c, &s));
    sa = lp2p__yamux_stream_user(s.last_opened);
    ASSERT_EQ_U64(sa->rx_bytes, ca->tx_total);
    ASSERT(sa->got_fin);
    ASSERT_EQ(lp2p__yamux_stream_recv_window(sa->st), 16u * 1024 * 1024);
    ASSERT(maxw > 256u * 1024);
    ASSERT(maxw <= 16u * 1024 * 1024);
    free_peers(&c, &s);
}

TEST(yamux, ping)
{
    struct peer c, s;
    uint32_t v, v2;
    int i;
    uint8_t out[64];
    ASSERT_OK(peer_init(&c, 1, NULL));
    ASSERT_OK(peer_init(&s, 0, NULL));
    ASSERT_OK(lp2p__yamux_ping(c.s, &v));
    ASSERT_OK(pump(&c, &s));
    ASSERT_EQ(c.ping_acks, 1);
    ASSERT_EQ(c.ping_value, v);
    ASSERT_OK(lp2p__yamux_ping(c.s, &v2));
    ASSERT(v2 != v);
    for (i = 1; i < LP2P__YAMUX_MAX_PINGS; i++) {
        ASSERT_OK(lp2p__yamux_ping(c.s, NULL));
    }
    ASSERT_ERR(lp2p__yamux_ping(c.s, NULL), LP2P_ELIMIT);
    ASSERT_OK(pump(&c, &s));
    ASSERT_EQ(c.ping_acks, 1 + LP2P__YAMUX_MAX_PINGS);
    /* an ack for a value we never sent is ignored */
    ASSERT_OK(feed_hex(&c, "000200020000000000abcdef"));
    ASSERT_EQ(c.ping_acks, 1 + LP2P__YAMUX_MAX_PINGS);
    /* the answer to a peer's ping: same value, ACK */
    ASSERT_OK(feed_hex(&s, "00020001000000001234abcd"));
    ASSERT_EQ(lp2p__yamux_pull(s.s, out, sizeof(out)), 12);
    {
        char hex[25];
        test__hex(out, 12, hex);
        ASSERT_STR_EQ(hex, "00020002000000001234abcd");
    }
    free_peers(&c, &s);
}

TEST(yamux, goaway)
{
    struct peer c, s;
    struct lp2p__yamux_stream *st, *st2;
    struct app *ca;
    size_t acc;
    ASSERT_OK(peer_init(&c, 1, NULL));
    ASSERT_OK(peer_init(&s, 0, NULL));
    ASSERT_OK(lp2p__yamux_stream_open(c.s, &st));
    ca = app_new(&c, st);
    ASSERT_OK(pump(&c, &s));
    ASSERT_OK(lp2p__yamux_goaway(s.s, LP2P__YAMUX_GOAWAY_NORMAL));
    ASSERT_OK(lp2p__yamux_goaway(s.s, 2)); /* once only */
    ASSERT_OK(pump(&c, &s));
    ASSERT_EQ(c.goaways, 1);
    ASSERT_EQ(c.goaway_code, 0);
    ASSERT_ERR(lp2p__yamux_stream_open(c.s, &st2), LP2P_ECLOSED);
    ASSERT_ERR(lp2p__yamux_stream_open(s.s, &st2), LP2P_ECLOSED);
    /* existing streams go on */
    ASSERT_OK(lp2p__yamux_stream_write(
        ((struct app *)lp2p__yamux_stream_user(s.last_opened))->st, "ok", 2,
        &acc));
    ASSERT_OK(pump(&c, &s));
    ASSERT_EQ(ca->rx_bytes, 2);
    /* the other direction, with the internal-error code */
    ASSERT_OK(lp2p__yamux_goaway(c.s, LP2P__YAMUX_GOAWAY_INTERNAL));
    ASSERT_OK(pump(&c, &s));
    ASSERT_EQ(s.goaways, 1);
    ASSERT_EQ(s.goaway_code, 2);
    ASSERT_EQ(lp2p__yamux_session_error(c.s), 0);
    ASSERT_EQ(lp2p__yamux_session_error(s.s), 0);
    /* a SYN after our GO_AWAY is refused with RST, not an error */
    ASSERT_OK(feed_hex(&s, "000100010000000300000000"));
    ASSERT_EQ(s.opened, 1);
    {
        uint8_t out[64];
        char hex[25];
        ASSERT_EQ(lp2p__yamux_pull(s.s, out, sizeof(out)), 12);
        test__hex(out, 12, hex);
        ASSERT_STR_EQ(hex, "000100080000000300000000");
    }
    free_peers(&c, &s);
}

/* Feed bytes that must fail the session; check the GO_AWAY(proto). */
static void expect_proto(struct peer *p, const char *hex, int err)
{
    uint8_t out[256];
    char h[25];
    size_t n;
    ASSERT_ERR(feed_hex(p, hex), err);
    ASSERT_EQ(p->errors, 1);
    ASSERT_EQ(p->error, err);
    n = pull_all(p, out, sizeof(out));
    ASSERT_EQ(n, 12);
    test__hex(out, 12, h);
    ASSERT_STR_EQ(h, "000300000000000000000001");
    ASSERT(!lp2p__yamux_want_write(p->s));
    /* stays failed */
    ASSERT_ERR(feed_hex(p, "000200010000000000000001"), err);
    ASSERT_EQ(p->errors, 1);
}

TEST(yamux, protocol_errors)
{
    struct peer p;
    struct lp2p__yamux_stream *st;
    /* client session: the peer (server) must use even ids */
    ASSERT_OK(peer_init(&p, 1, NULL));
    expect_proto(&p, "000100010000000300000000", LP2P_EPROTO);
    ASSERT_ERR(lp2p__yamux_stream_open(p.s, &st), LP2P_EPROTO);
    lp2p__yamux_session_free(p.s);
    /* server: odd ids from the client; even is wrong */
    ASSERT_OK(peer_init(&p, 0, NULL));
    expect_proto(&p, "000100010000000200000000", LP2P_EPROTO);
    lp2p__yamux_session_free(p.s);
    /* reused id */
    ASSERT_OK(peer_init(&p, 0, NULL));
    expect_proto(&p,
                 "000100010000000100000000"
                 "000100010000000100000000",
                 LP2P_EPROTO);
    lp2p__yamux_session_free(p.s);
    /* an id far below the highest seen */
    ASSERT_OK(peer_init(&p, 0, NULL));
    expect_proto(&p,
                 "000100010000ffff00000000"
                 "000100010000000100000000",
                 LP2P_EPROTO);
    lp2p__yamux_session_free(p.s);
    /* version 1 */
    ASSERT_OK(peer_init(&p, 0, NULL));
    expect_proto(&p, "010100010000000100000000", LP2P_EPROTO);
    lp2p__yamux_session_free(p.s);
    /* unknown type */
    ASSERT_OK(peer_init(&p, 0, NULL));
    expect_proto(&p, "000400000000000000000000", LP2P_EPROTO);
    lp2p__yamux_session_free(p.s);
    /* DATA on stream 0 */
    ASSERT_OK(peer_init(&p, 0, NULL));
    expect_proto(&p, "00000000000000000000000161", LP2P_EPROTO);
    lp2p__yamux_session_free(p.s);
    /* window overflow */
    ASSERT_OK(peer_init(&p, 0, NULL));
    expect_proto(&p,
                 "000100010000000100000000"
                 "0001000000000001ffffffff",
                 LP2P_EPROTO);
    lp2p__yamux_session_free(p.s);
    /* DATA after FIN */
    ASSERT_OK(peer_init(&p, 0, NULL));
    expect_proto(&p,
                 "000100050000000100000000"
                 "00000000000000010000000161",
                 LP2P_EPROTO);
    lp2p__yamux_session_free(p.s);
}

TEST(yamux, window_violation)
{
    struct peer p;
    size_t n = 12 + 12;
    uint8_t *b = calloc(1, n + 256 * 1024 + 1);
    const char *h = "000100010000000100000000"
                    "000000000000000100040001";
    size_t hl;
    uint8_t *hb = test__unhex(h, &hl);
    ASSERT(b != NULL);
    memcpy(b, hb, hl);
    free(hb);
    ASSERT_OK(peer_init(&p, 0, NULL));
    /* the header alone is enough to fail: no payload is buffered */
    ASSERT_ERR(lp2p__yamux_feed(p.s, b, n), LP2P_EWINDOW);
    ASSERT_EQ(p.error, LP2P_EWINDOW);
    {
        uint8_t out[64];
        char hex[25];
        ASSERT_EQ(pull_all(&p, out, sizeof(out)), 12);
        test__hex(out, 12, hex);
        ASSERT_STR_EQ(hex, "000300000000000000000001");
    }
    lp2p__yamux_session_free(p.s);
    /* exactly the window is fine, one byte more in a second frame not */
    ASSERT_OK(peer_init(&p, 0, NULL));
    p.auto_consume = 0;
    {
        uint8_t *syn = test__unhex("000100010000000100000000"
                                   "000000000000000100040000",
                                   &hl);
        memcpy(b, syn, hl);
        free(syn);
    }
    ASSERT_OK(lp2p__yamux_feed(p.s, b, n + 256 * 1024));
    ASSERT_ERR(feed_hex(&p, "00000000000000010000000161"), LP2P_EWINDOW);
    lp2p__yamux_session_free(p.s);
    free(b);
}

/* Everything byte by byte, and with tiny pull buffers. */
TEST(yamux, split_byte_by_byte)
{
    struct peer c, s;
    struct lp2p__yamux_stream *st;
    struct app *ca, *sa;
    uint32_t v;
    ASSERT_OK(peer_init(&c, 1, NULL));
    ASSERT_OK(peer_init(&s, 0, NULL));
    ASSERT_OK(lp2p__yamux_stream_open(c.s, &st));
    ca = app_new(&c, st);
    ca->tx_total = 300 * 1024;
    ca->tx_seed = 7;
    ASSERT_OK(lp2p__yamux_ping(c.s, &v));
    while (!ca->tx_closed || s.napps == 0 ||
           !s.apps[0].got_fin) {
        ASSERT_OK(fill(ca));
        ASSERT_OK(pump_ex(&c, &s, 13 + 4096, 1));
    }
    ASSERT_EQ(c.ping_acks, 1);
    sa = &s.apps[0];
    ASSERT_EQ_U64(sa->rx_bytes, 300 * 1024);
    ASSERT_EQ(sa->rx_hash, pat_hash(7, 300 * 1024));
    free_peers(&c, &s);
}

/* Many frames in a single feed, as js and go would send them. */
TEST(yamux, many_frames_one_feed)
{
    struct peer p;
    struct app *a;
    char hex[2048];
    size_t off = 0;
    int i;
    ASSERT_OK(peer_init(&p, 0, NULL));
    /* js opens with WINDOW_UPDATE|SYN, delta 0 */
    off += (size_t)sprintf(hex + off, "000100010000000100000000");
    for (i = 0; i < 10; i++) {
        off += (size_t)sprintf(hex + off, "0000000000000001000000026869");
    }
    off += (size_t)sprintf(hex + off, "000200010000000000000007");
    /* go opens stream 3 with DATA|SYN */
    off += (size_t)sprintf(hex + off, "00000001000000030000000178");
    off += (size_t)sprintf(hex + off, "000100040000000300000000");
    ASSERT_OK(feed_hex(&p, hex));
    ASSERT_EQ(p.opened, 2);
    a = &p.apps[0];
    ASSERT_EQ(lp2p__yamux_stream_id(a->st), 1);
    ASSERT_EQ(a->rx_bytes, 20);
    ASSERT(!a->got_fin);
    ASSERT(p.apps[1].got_fin);
    ASSERT_EQ(p.apps[1].rx_bytes, 1);
    {
        uint8_t out[256];
        size_t n = pull_all(&p, out, sizeof(out));
        char h[25];
        ASSERT_EQ(n, 36);
        test__hex(out, 12, h);
        ASSERT_STR_EQ(h, "000200020000000000000007"); /* ping ack */
        test__hex(out + 12, 12, h);
        /* ACK for stream 1: 20 bytes already consumed, credit goes along */
        ASSERT_STR_EQ(h, "000100020000000100000014");
        test__hex(out + 24, 12, h);
        /* stream 3 is half-closed by the peer: no credit is due */
        ASSERT_STR_EQ(h, "000100020000000300000000");
    }
    lp2p__yamux_session_free(p.s);
}

/* Each frame at the very end of a page followed by PROT_NONE: the parser
 * never reads past what it was given, in whole or in pieces. */
TEST(yamux, guarded_input)
{
    static const char *frames[] = {
        "000100010000000100000000",
        "00000000000000010000000568656c6c6f",
        "00020001000000000000002a",
        "000100040000000100000000",
        "000300000000000000000000",
    };
    size_t i, cut;
    for (cut = 1; cut <= 12; cut += 11) {
        struct peer p;
        ASSERT_OK(peer_init(&p, 0, NULL));
        for (i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
            size_t n;
            uint8_t *b = test__unhex(frames[i], &n);
            size_t off;
            for (off = 0; off < n; off += cut) {
                size_t m = n - off < cut ? n - off : cut;
                uint8_t *g = test__guarded(b + off, m);
                ASSERT_OK(lp2p__yamux_feed(p.s, g, m));
                test__guarded_free(g, m);
            }
            free(b);
        }
        ASSERT_EQ(p.opened, 1);
        ASSERT_EQ(p.apps[0].rx_bytes, 5);
        ASSERT(p.apps[0].got_fin);
        ASSERT_EQ(p.goaways, 1);
        lp2p__yamux_session_free(p.s);
    }
}

/* Frames exactly as go-yamux and js-yamux emit them. */
TEST(yamux, foreign_frames)
{
    struct peer p;
    struct lp2p__yamux_stream *st;
    uint8_t out[256];
    char h[25];
    size_t acc;
    ASSERT_OK(peer_init(&p, 0, NULL));
    p.auto_consume = 0;
    /* our own SYN as a server: WINDOW_UPDATE|SYN id 2 delta 0 */
    ASSERT_OK(lp2p__yamux_stream_open(p.s, &st));
    app_new(&p, st);
    ASSERT_EQ(pull_all(&p, out, sizeof(out)), 12);
    test__hex(out, 12, h);
    ASSERT_STR_EQ(h, "000100010000000200000000");
    /* js accepts with WINDOW_UPDATE|ACK and the bytes it consumed (4096) */
    ASSERT_OK(feed_hex(&p, "000100020000000200001000"));
    ASSERT_EQ(p.acked, 1);
    ASSERT_EQ(lp2p__yamux_stream_send_window(st), 256 * 1024 + 4096);
    /* js grows its window: WINDOW_UPDATE delta 262164 */
    ASSERT_OK(feed_hex(&p, "000100000000000200040014"));
    ASSERT_EQ(lp2p__yamux_stream_send_window(st),
              256 * 1024 + 4096 + 262164);
    /* our DATA frame */
    ASSERT_OK(lp2p__yamux_stream_write(st, "ab", 2, &acc));
    ASSERT_EQ(pull_all(&p, out, sizeof(out)), 14);
    test__hex(out, 12, h);
    ASSERT_STR_EQ(h, "000000000000000200000002");
    /* go-yamux v5 RST with an error code in the length */
    ASSERT_OK(feed_hex(&p, "000100080000000200000003"));
    ASSERT_EQ(p.resets, 1);
    ASSERT_EQ(p.apps[0].reset_code, 3);
    ASSERT_EQ(lp2p__yamux_stream_send_window(st),
              256 * 1024 + 4096 + 262164 - 2);
    lp2p__yamux_stream_release(st);
    ASSERT_EQ(pull_all(&p, out, sizeof(out)), 0);
    /* go's keepalive ping, then GO_AWAY normal */
    ASSERT_OK(feed_hex(&p, "00020001000000000000002a"
                           "000300000000000000000000"));
    ASSERT_EQ(p.goaways, 1);
    ASSERT_EQ(p.goaway_code, 0);
    ASSERT_EQ(pull_all(&p, out, sizeof(out)), 12);
    test__hex(out, 12, h);
    ASSERT_STR_EQ(h, "00020002000000000000002a");
    /* frames for unknown streams are skipped, flags with unknown bits */
    ASSERT_OK(feed_hex(&p, "0000000000000009000000036162630001f0f000000009"
                           "00000010"));
    ASSERT_EQ(lp2p__yamux_session_error(p.s), 0);
    /* a half-closed inbound stream, our FIN as WINDOW_UPDATE|FIN */
    ASSERT_OK(feed_hex(&p, "000100010000000100000000"));
    ASSERT_OK(lp2p__yamux_stream_close(p.last_opened));
    ASSERT_EQ(pull_all(&p, out, sizeof(out)), 12);
    test__hex(out, 12, h);
    ASSERT_STR_EQ(h, "000100060000000100000000"); /* ACK|FIN */
    lp2p__yamux_session_free(p.s);
}

TEST(yamux, stream_limits)
{
    struct peer c, s;
    struct lp2p__yamux_config cc, sc;
    struct lp2p__yamux_stream *st[8];
    int i;
    lp2p__yamux_config_init(&cc);
    lp2p__yamux_config_init(&sc);
    cc.max_backlog = 3;
    cc.max_outbound_streams = 6;
    sc.max_backlog = 2;
    sc.max_inbound_streams = 4;
    ASSERT_OK(peer_init(&c, 1, &cc));
    ASSERT_OK(peer_init(&s, 0, &sc));
    s.auto_accept = 0;
    /* our own unacked streams are limited by our backlog */
    for (i = 0; i < 3; i++) {
        ASSERT_OK(lp2p__yamux_stream_open(c.s, &st[i]));
        app_new(&c, st[i]);
    }
    ASSERT_ERR(lp2p__yamux_stream_open(c.s, &st[3]), LP2P_ELIMIT);
    ASSERT_OK(pump(&c, &s));
    /* the server's backlog is 2: the third is refused with RST */
    ASSERT_EQ(s.opened, 2);
    ASSERT_EQ(c.resets, 1);
    ASSERT(c.apps[2].got_reset);
    lp2p__yamux_stream_release(st[2]);
    /* accepting frees backlog slots */
    ASSERT_OK(lp2p__yamux_stream_accept(s.apps[0].st));
    ASSERT_OK(lp2p__yamux_stream_accept(s.apps[1].st));
    ASSERT_ERR(lp2p__yamux_stream_accept(s.apps[1].st), LP2P_ESTATE);
    s.auto_accept = 1;
    ASSERT_OK(pump(&c, &s));
    ASSERT_EQ(c.acked, 2);
    for (i = 3; i < 6; i++) {
        ASSERT_OK(lp2p__yamux_stream_open(c.s, &st[i]));
        app_new(&c, st[i]);
    }
    ASSERT_ERR(lp2p__yamux_stream_open(c.s, &st[6]), LP2P_ELIMIT);
    ASSERT_OK(pump(&c, &s));
    /* max 4 inbound at the server: 2 more accepted, 1 refused */
    ASSERT_EQ(s.opened, 4);
    ASSERT_EQ(c.resets, 2);
    ASSERT_EQ(lp2p__yamux_session_streams(s.s), 4);
    free_peers(&c, &s);
}

/* Floods: SYNs never accepted, pings never read; memory stays bounded. */
TEST(yamux, floods)
{
    struct peer p;
    uint8_t *b;
    size_t i, n = 20000;
    b = malloc(n * 12);
    ASSERT(b != NULL);
    /* SYN flood at a server whose host never accepts */
    ASSERT_OK(peer_init(&p, 0, NULL));
    p.auto_accept = 0;
    for (i = 0; i < n; i++) {
        uint32_t id = (uint32_t)(2 * i + 1);
        uint8_t *f = b + 12 * i;
        memset(f, 0, 12);
        f[1] = 1;
        f[3] = 1;
        f[4] = (uint8_t)(id >> 24);
        f[5] = (uint8_t)(id >> 16);
        f[6] = (uint8_t)(id >> 8);
        f[7] = (uint8_t)id;
    }
    {
        /* pulling between feeds: the refusal counter still stops it */
        uint8_t out[4096];
        int rv = 0;
        for (i = 0; i < n && rv == 0; i += 100) {
            rv = lp2p__yamux_feed(p.s, b + 12 * i, 1200);
            while (lp2p__yamux_pull(p.s, out, sizeof(out)) > 0) {
            }
            ASSERT(lp2p__yamux_session_mem(p.s) <=
                   lp2p__yamux_session_mem_bound(p.s));
        }
        ASSERT_EQ(rv, LP2P_EPROTO);
        ASSERT_EQ(p.opened, 256);
    }
    lp2p__yamux_session_free(p.s);
    /* ping flood, nothing pulled */
    for (i = 0; i < n; i++) {
        uint8_t *f = b + 12 * i;
        memset(f, 0, 12);
        f[1] = 2;
        f[3] = 1;
        f[11] = (uint8_t)i;
    }
    ASSERT_OK(peer_init(&p, 1, NULL));
    ASSERT_ERR(lp2p__yamux_feed(p.s, b, n * 12), LP2P_EPROTO);
    ASSERT(lp2p__yamux_session_mem(p.s) <= lp2p__yamux_session_mem_bound(p.s));
    ASSERT(lp2p__yamux_session_mem(p.s) < 100 * 1024);
    {
        /* the acks queued so far, then GO_AWAY(protocol error) last */
        uint8_t out[4096];
        size_t m, last = 0, total = 0;
        while ((m = lp2p__yamux_pull(p.s, out, sizeof(out))) > 0) {
            last = m;
            total += m;
        }
        ASSERT(total <= LP2P__YAMUX_CTRL_MAX + 12);
        ASSERT(out[last - 11] == 3 && out[last - 1] == 1);
    }
    lp2p__yamux_session_free(p.s);
    free(b);
}

/* Releasing streams from inside callbacks, then more frames in the same
 * feed for those streams. */
static void release_on_data(void *ud, const struct lp2p__yamux_event *ev)
{
    int *n = ud;
    if (ev->type == LP2P__YAMUX_EV_DATA || ev->type == LP2P__YAMUX_EV_FIN ||
        ev->type == LP2P__YAMUX_EV_STREAM_OPENED) {
        if (ev->type != LP2P__YAMUX_EV_STREAM_OPENED) {
            lp2p__yamux_stream_release(ev->stream);
        }
        (*n)++;
    }
    if (ev->type == LP2P__YAMUX_EV_RESET) {
        lp2p__yamux_stream_release(ev->stream);
    }
}

TEST(yamux, release_in_callback)
{
    struct lp2p__yamux_session *s;
    int n = 0;
    size_t hl;
    uint8_t *b = test__unhex("000000010000000100000003616263"
                             "00000000000000010000000178"
                             "000100040000000100000000"
                             "000000010000000300000002aaaa"
                             "000100080000000300000000",
                             &hl);
    ASSERT_OK(lp2p__yamux_session_new(&s, 0, NULL, release_on_data, &n));
    ASSERT_OK(lp2p__yamux_feed(s, b, hl));
    free(b);
    ASSERT_EQ(n, 4);
    {
        uint8_t out[128];
        size_t m = lp2p__yamux_pull(s, out, sizeof(out));
        ASSERT_EQ(m, 12); /* RST for stream 1 (released while open) */
        ASSERT_EQ(out[3], 8);
    }
    ASSERT_EQ(lp2p__yamux_session_streams(s), 0);
    lp2p__yamux_session_free(s);
}

static int oom_body(void *ctx)
{
    struct peer *pp = ctx;
    struct peer *c = &pp[0], *s = &pp[1];
    struct lp2p__yamux_stream *st = NULL;
    struct app *a;
    int rv, i;
    uint32_t v;
    rv = peer_init(c, 1, NULL);
    if (rv != 0) {
        return rv;
    }
    rv = peer_init(s, 0, NULL);
    if (rv != 0) {
        lp2p__yamux_session_free(c->s);
        return rv;
    }
    for (i = 0; i < 3 && rv == 0; i++) {
        rv = lp2p__yamux_stream_open(c->s, &st);
        if (rv != 0) {
            break;
        }
        a = app_new(c, st);
        a->tx_total = 70000;
        a->tx_seed = (uint32_t)i;
    }
    if (rv == 0) {
        rv = lp2p__yamux_ping(c->s, &v);
    }
    while (rv == 0) {
        int done = 1;
        for (i = 0; i < c->napps && rv == 0; i++) {
            rv = fill(&c->apps[i]);
        }
        for (i = 0; i < s->napps && rv == 0; i++) {
            if (s->apps[i].got_fin && !s->apps[i].tx_closed) {
                s->apps[i].tx_closed = 1;
                rv = lp2p__yamux_stream_close(s->apps[i].st);
            }
        }
        if (rv == 0) {
            rv = pump(c, s);
        }
        if (rv == 0) {
            rv = lp2p__yamux_session_error(c->s);
        }
        if (rv == 0) {
            rv = lp2p__yamux_session_error(s->s);
        }
        for (i = 0; i < c->napps; i++) {
            done &= c->apps[i].got_fin;
        }
        if (done && s->napps == 3) {
            break;
        }
    }
    if (rv == 0) {
        for (i = 0; i < 3; i++) {
            if (s->apps[i].rx_hash != pat_hash((uint32_t)i, 70000)) {
                rv = LP2P_EINVAL;
            }
        }
    }
    for (i = 0; i < c->napps; i++) {
        lp2p__yamux_stream_release(c->apps[i].st);
    }
    for (i = 0; i < s->napps; i++) {
        lp2p__yamux_stream_release(s->apps[i].st);
    }
    if (rv == 0) {
        rv = pump(c, s);
    }
    if (rv == 0 && (lp2p__yamux_session_streams(c->s) != 0 ||
                    lp2p__yamux_session_streams(s->s) != 0)) {
        rv = LP2P_EINVAL;
    }
    lp2p__yamux_session_free(c->s);
    lp2p__yamux_session_free(s->s);
    return rv;
}

TEST(yamux, oom_sweep)
{
    static struct peer pp[2];
    long n = test__oom_sweep(oom_body, pp);
    ASSERT(n > 20);
}
