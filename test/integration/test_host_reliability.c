/*
 * Misbehaving peers against a host: stalls mid-handshake, floods of
 * pending handshakes, garbage after the handshake, abrupt closes (also
 * mid-frame), control-frame floods from a peer that never reads, and the
 * connection cap. Each must cost bounded memory and end in a clean close
 * (the sanitizers and valgrind check the "clean" part).
 *
 * The raw peer drives the sans-I/O codecs itself over a libuv TCP handle
 * on the same loop, so it can stop or misbehave at any step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_harness.h"
#include "test.h"
#include "p2p/multistream.h"
#include "p2p/noise.h"
#include "util/buf.h"

enum raw_goal {
    RAW_STALL_TCP,        /* connect, send nothing */
    RAW_STALL_MSS,        /* send the multistream header only */
    RAW_STALL_NOISE,      /* negotiate /noise, send Noise msg 1, stop */
    RAW_HANDSHAKE         /* complete Noise, then `after` */
};

enum raw_after {
    RAW_NOTHING = 0,
    RAW_GARBAGE_CLEAR,    /* unencrypted garbage */
    RAW_GARBAGE_SEALED,   /* encrypted garbage instead of multistream */
    RAW_PARTIAL_FRAME,    /* half a Noise frame, then close */
    RAW_PING_FLOOD,       /* negotiate yamux, flood PINGs, never read */
    RAW_SILENT            /* negotiate yamux, then read nothing, say nothing */
};

struct raw {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_connect_t creq;
    enum raw_goal goal;
    enum raw_after after;
    int connected, eof, closed, done;
    int phase; /* 0 mss, 1 noise, 2 secure */
    struct lp2p_mss mss;
    struct lp2p_noise_hs hs;
    int hs_init;
    struct lp2p_noise_transport tr;
    int tr_init;
    struct lp2p_key key;
    size_t flood_sent;
    size_t flood_target;
    int fail;
};

static const char *const noise_p[] = {"/noise"};

static void raw_closed(uv_handle_t *h)
{
    struct raw *r = h->data;
    r->closed = 1;
}

static void raw_close(struct raw *r)
{
    if (!uv_is_closing((uv_handle_t *)&r->tcp)) {
        uv_close((uv_handle_t *)&r->tcp, raw_closed);
    }
}

static void raw_write_done(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void raw_send(struct raw *r, const uint8_t *p, size_t n)
{
    uv_write_t *w;
    uv_buf_t b;
    char *copy;
    if (n == 0 || uv_is_closing((uv_handle_t *)&r->tcp)) {
        return;
    }
    w = malloc(sizeof(*w) + n);
    copy = (char *)(w + 1);
    memcpy(copy, p, n);
    b = uv_buf_init(copy, (unsigned)n);
    if (uv_write(w, (uv_stream_t *)&r->tcp, &b, 1, raw_write_done) != 0) {
        free(w);
    }
}

static void raw_send_buf(struct raw *r, struct lp2p_buf *b)
{
    raw_send(r, b->data, b->len);
    b->len = 0;
}

static void raw_send_sealed(struct raw *r, const uint8_t *p, size_t n)
{
    struct lp2p_buf out;
    lp2p__buf_init(&out);
    if (lp2p__noise_transport_encrypt(&r->tr, p, n, &out) != 0) {
        r->fail = 1;
    }
    raw_send_buf(r, &out);
    lp2p__buf_free(&out);
}

static void flood_more(struct raw *r);

static void flood_written(uv_write_t *w, int status)
{
    struct raw *r = w->data;
    free(w);
    if (status == 0 && r->flood_sent < r->flood_target) {
        flood_more(r);
    }
}

/* 64 KiB of yamux PING|SYN frames per write, one write at a time. */
static void flood_more(struct raw *r)
{
    uint8_t plain[12 * 5000];
    struct lp2p_buf out;
    uv_write_t *w;
    uv_buf_t b;
    size_t i;
    for (i = 0; i < 5000; i++) {
        uint8_t *f = plain + 12 * i;
        memset(f, 0, 12);
        f[1] = 2; /* PING */
        f[3] = 1; /* SYN */
        f[11] = (uint8_t)i;
    }
    lp2p__buf_init(&out);
    lp2p__noise_transport_encrypt(&r->tr, plain, sizeof(plain), &out);
    w = malloc(sizeof(*w) + out.len);
    memcpy(w + 1, out.data, out.len);
    b = uv_buf_init((char *)(w + 1), (unsigned)out.len);
    w->data = r;
    r->flood_sent += sizeof(plain);
    if (uv_is_closing((uv_handle_t *)&r->tcp) ||
        uv_write(w, (uv_stream_t *)&r->tcp, &b, 1, flood_written) != 0) {
        free(w);
    }
    lp2p__buf_free(&out);
}

static void raw_secure(struct raw *r)
{
    struct lp2p_buf msg;
    r->phase = 2;
    r->done = 1;
    switch (r->after) {
    case RAW_NOTHING:
        break;
    case RAW_GARBAGE_CLEAR: {
        /* A well-framed Noise message whose tag cannot verify. */
        uint8_t frame[2 + 32];
        frame[0] = 0;
        frame[1] = 32;
        memset(frame + 2, 'x', 32);
        raw_send(r, frame, sizeof(frame));
        break;
    }
    case RAW_GARBAGE_SEALED: {
        /* Sealed properly, but a multistream message that is garbage. */
        static const uint8_t bad[] = {6, 'g', 'a', 'r', 'b', 'a', 'g'};
        raw_send_sealed(r, bad, sizeof(bad));
        break;
    }
    case RAW_PARTIAL_FRAME: {
        /* A frame header announcing 1000 bytes, then 10 of them. */
        uint8_t part[12] = {0x03, 0xe8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
        raw_send(r, part, sizeof(part));
        raw_close(r);
        break;
    }
    case RAW_SILENT:
    case RAW_PING_FLOOD: {
        static const char *const y[] = {"/yamux/1.0.0"};
        struct lp2p_mss m;
        lp2p__buf_init(&msg);
        lp2p__mss_init_initiator(&m, y, 1);
        lp2p__mss_start(&m, &msg);
        raw_send_sealed(r, msg.data, msg.len);
        lp2p__buf_free(&msg);
        uv_read_stop((uv_stream_t *)&r->tcp); /* never read again */
        if (r->after == RAW_PING_FLOOD) {
            flood_more(r);
        }
        break;
    }
    }
}

static void raw_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(s);
    b->len = s;
}

static void raw_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct raw *r = st->data;
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t len = n > 0 ? (size_t)n : 0;
    struct lp2p_buf out;
    int k;
    if (n < 0) {
        r->eof = 1;
        free(buf->base);
        raw_close(r);
        return;
    }
    lp2p__buf_init(&out);
    while (len > 0 && r->phase < 2) {
        if (r->phase == 0) {
            k = lp2p__mss_feed(&r->mss, p, len, &out);
            raw_send_buf(r, &out);
            if (k < 0) {
                r->fail = 1;
                break;
            }
            p += k;
            len -= (size_t)k;
            if (!lp2p__mss_done(&r->mss)) {
                break;
            }
            if (r->goal == RAW_STALL_MSS) {
                r->done = 1;
                break;
            }
            {
                struct lp2p_noise_config cfg;
                memset(&cfg, 0, sizeof(cfg));
                cfg.identity = &r->key;
                lp2p__noise_hs_init(&r->hs, 1, &cfg);
                r->hs_init = 1;
                lp2p__noise_hs_start(&r->hs, &out);
                raw_send_buf(r, &out);
                r->phase = 1;
                if (r->goal == RAW_STALL_NOISE) {
                    r->done = 1;
                    r->phase = 3; /* stop */
                }
            }
        } else {
            k = lp2p__noise_hs_feed(&r->hs, p, len, &out);
            raw_send_buf(r, &out);
            if (k < 0) {
                r->fail = 1;
                break;
            }
            p += k;
            len -= (size_t)k;
            if (lp2p__noise_hs_done(&r->hs)) {
                lp2p__noise_hs_split(&r->hs, &r->tr);
                r->tr_init = 1;
                raw_secure(r);
            }
        }
    }
    lp2p__buf_free(&out);
    free(buf->base);
}

static void raw_connected(uv_connect_t *req, int status)
{
    struct raw *r = req->data;
    struct lp2p_buf out;
    if (status != 0) {
        r->fail = 1;
        raw_close(r);
        return;
    }
    r->connected = 1;
    uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read);
    if (r->goal == RAW_STALL_TCP) {
        r->done = 1;
        return;
    }
    lp2p__buf_init(&out);
    if (r->goal == RAW_STALL_MSS) {
        lp2p__mss_write_msg(&out, LP2P_MSS_HEADER, strlen(LP2P_MSS_HEADER));
        raw_send_buf(r, &out);
        r->done = 1;
        r->phase = 3;
    } else {
        lp2p__mss_init_initiator(&r->mss, noise_p, 1);
        lp2p__mss_start(&r->mss, &out);
        raw_send_buf(r, &out);
    }
    lp2p__buf_free(&out);
}

/* Start a raw peer toward the TCP port of `host`'s first listen address. */
static void raw_start(struct raw *r, uv_loop_t *loop, struct lp2p_host *host,
                      enum raw_goal goal, enum raw_after after)
{
    char la[LP2P_MULTIADDR_STRMAX];
    struct sockaddr_in sa;
    const char *port;
    memset(r, 0, sizeof(*r));
    r->loop = loop;
    r->goal = goal;
    r->after = after;
    ASSERT_OK(lp2p_key_generate(&r->key));
    ASSERT_OK(lp2p_host_listen_addr(host, 0, la, sizeof(la)));
    port = strstr(la, "/tcp/") + 5;
    uv_ip4_addr("127.0.0.1", atoi(port), &sa);
    uv_tcp_init(loop, &r->tcp);
    r->tcp.data = r;
    r->creq.data = r;
    ASSERT_OK(uv_tcp_connect(&r->creq, &r->tcp, (struct sockaddr *)&sa,
                             raw_connected));
}

static void raw_free(struct raw *r)
{
    raw_close(r);
    while (!r->closed) {
        uv_run(r->loop, UV_RUN_ONCE);
    }
    if (r->hs_init) {
        lp2p__noise_hs_close(&r->hs);
    }
    if (r->tr_init) {
        lp2p__noise_transport_close(&r->tr);
    }
    lp2p_key_wipe(&r->key);
}

struct host_pred {
    struct lp2p_host *h;
    size_t n;
};

static int conn_count_is(void *arg)
{
    struct host_pred *p = arg;
    return lp2p_host_conn_count(p->h) == p->n;
}

static struct lp2p_host *quick_host(uv_loop_t *loop, uint64_t hs_timeout,
                                    uint32_t max_pending, uint32_t max_conns)
{
    struct lp2p_host_config cfg;
    lp2p_host_config_init(&cfg);
    cfg.handshake_timeout_ms = hs_timeout;
    cfg.max_pending_handshakes = max_pending;
    cfg.max_conns = max_conns;
    return th_host(loop, &cfg, NULL);
}

/* A peer stalling at each step of the handshake is dropped after the
 * handshake timeout. */
TEST(host_reliability, stall_mid_handshake)
{
    static const enum raw_goal goals[] = {RAW_STALL_TCP, RAW_STALL_MSS,
                                          RAW_STALL_NOISE};
    uv_loop_t loop;
    struct lp2p_host *b;
    struct raw r;
    struct host_pred pred;
    size_t i;
    uv_loop_init(&loop);
    b = quick_host(&loop, 200, 0, 0);
    for (i = 0; i < sizeof(goals) / sizeof(goals[0]); i++) {
        uint64_t t0 = uv_now(&loop);
        raw_start(&r, &loop, b, goals[i], RAW_NOTHING);
        ASSERT(th_run_until(&loop, &r.done, 5000));
        pred.h = b;
        pred.n = 1;
        ASSERT(th_run_until_fn(&loop, conn_count_is, &pred, 5000));
        /* Closed by the host: the raw peer sees EOF. */
        ASSERT(th_run_until(&loop, &r.eof, 5000));
        ASSERT(uv_now(&loop) - t0 >= 190);
        ASSERT_EQ(lp2p_host_conn_count(b), 0);
        ASSERT(!r.fail);
        raw_free(&r);
    }
    th_host_close(&loop, b);
    th_loop_close(&loop);
}

static int six_eofs(void *arg)
{
    struct raw *r = arg;
    int i, n = 0;
    for (i = 0; i < 10; i++) {
        n += r[i].eof;
    }
    return n >= 6;
}

/* Beyond max_pending_handshakes, new connections are closed at once. */
TEST(host_reliability, pending_handshake_cap)
{
    uv_loop_t loop;
    struct lp2p_host *b;
    struct raw r[10];
    int i, eofs = 0, seen_max = 0;
    uv_loop_init(&loop);
    b = quick_host(&loop, 10000, 4, 0);
    for (i = 0; i < 10; i++) {
        raw_start(&r[i], &loop, b, RAW_STALL_TCP, RAW_NOTHING);
    }
    /* Wait until six of them were refused. */
    ASSERT(th_run_until_fn(&loop, six_eofs, r, 5000));
    for (i = 0; i < 10; i++) {
        eofs += r[i].eof;
    }
    seen_max = (int)lp2p_host_conn_count(b);
    ASSERT_EQ(eofs, 6);
    ASSERT(seen_max <= 4);
    ASSERT_EQ(lp2p_host_conn_count(b), 4);
    for (i = 0; i < 10; i++) {
        raw_free(&r[i]);
    }
    ASSERT(th_run_until_fn(&loop, conn_count_is, &(struct host_pred){b, 0},
                           5000));
    th_host_close(&loop, b);
    th_loop_close(&loop);
}

/* Garbage after the Noise handshake (in clear or sealed), or a frame cut
 * by an abrupt close: the host closes the connection. */
TEST(host_reliability, garbage_and_abrupt_close_after_handshake)
{
    static const enum raw_after afters[] = {RAW_GARBAGE_CLEAR,
                                            RAW_GARBAGE_SEALED,
                                            RAW_PARTIAL_FRAME};
    uv_loop_t loop;
    struct lp2p_host *b;
    struct raw r;
    size_t i;
    uv_loop_init(&loop);
    b = quick_host(&loop, 10000, 0, 0);
    for (i = 0; i < sizeof(afters) / sizeof(afters[0]); i++) {
        raw_start(&r, &loop, b, RAW_HANDSHAKE, afters[i]);
        ASSERT(th_run_until(&loop, &r.done, 5000));
        ASSERT(!r.fail);
        if (afters[i] != RAW_PARTIAL_FRAME) {
            ASSERT(th_run_until(&loop, &r.eof, 5000));
        }
        ASSERT(th_run_until_fn(&loop, conn_count_is,
                               &(struct host_pred){b, 0}, 5000));
        raw_free(&r);
    }
    th_host_close(&loop, b);
    th_loop_close(&loop);
}

/* A peer that floods PINGs and never reads the answers: the host stops
 * pulling once its socket queue is full, Yamux's control queue hits its
 * cap, the session fails, the connection closes. */
TEST(host_reliability, ping_flood_never_reading)
{
    uv_loop_t loop;
    struct lp2p_host_config cfg;
    struct lp2p_host *b;
    struct raw r;
    lp2p_host_config_init(&cfg);
    cfg.conn_write_buffer = 64 * 1024;
    uv_loop_init(&loop);
    b = th_host(&loop, &cfg, NULL);
    raw_start(&r, &loop, b, RAW_HANDSHAKE, RAW_PING_FLOOD);
    r.flood_target = 64u << 20; /* stop after 64 MiB if never closed */
    ASSERT(th_run_until(&loop, &r.done, 5000));
    ASSERT(th_run_until_fn(&loop, conn_count_is, &(struct host_pred){b, 0},
                           30000));
    ASSERT(r.flood_sent < r.flood_target);
    raw_free(&r);
    th_host_close(&loop, b);
    th_loop_close(&loop);
}

/* max_conns: the third dialer is refused, the first two work. */
TEST(host_reliability, connection_cap)
{
    uv_loop_t loop;
    struct lp2p_host *b, *d[3];
    char addr_b[LP2P_MULTIADDR_STRMAX];
    struct lp2p_host_config cfg;
    int i;
    uv_loop_init(&loop);
    lp2p_host_config_init(&cfg);
    cfg.max_conns = 2;
    b = th_host(&loop, &cfg, addr_b);
    for (i = 0; i < 3; i++) {
        d[i] = th_host(&loop, NULL, NULL);
    }
    ASSERT_OK(th_connect(&loop, d[0], addr_b));
    ASSERT_OK(th_connect(&loop, d[1], addr_b));
    ASSERT(th_connect(&loop, d[2], addr_b) != 0);
    ASSERT_EQ(lp2p_host_conn_count(b), 2);
    for (i = 0; i < 3; i++) {
        th_host_close(&loop, d[i]);
    }
    th_host_close(&loop, b);
    th_loop_close(&loop);
}

/* A peer host that goes away with streams open: the survivor's streams
 * fail with LP2P_ECLOSED and its connection goes. */
struct held {
    struct lp2p_stream *s;
    int status;
};

static struct held held_in;

static void held_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                      size_t len)
{
    (void)s;
    (void)buf;
    (void)len;
    if (status != 0) {
        held_in.status = status;
    }
}

static void held_handler(struct lp2p_stream *s, void *data)
{
    (void)data;
    held_in.s = s;
    lp2p_stream_read_start(s, held_read);
}

static int held_ready(void *arg)
{
    (void)arg;
    return held_in.s != NULL;
}

static void held_open(struct lp2p_stream *s, int status, void *data)
{
    struct held *h = data;
    h->s = s;
    h->status = status == 0 ? 1 : status;
}

TEST(host_reliability, peer_vanishes_with_open_streams)
{
    uv_loop_t loop;
    struct lp2p_host *a, *b;
    char addr_b[LP2P_MULTIADDR_STRMAX];
    struct held out = {NULL, 0};
    const char *protos[] = {"/held"};
    static const uint8_t x[] = "abc";
    memset(&held_in, 0, sizeof(held_in));
    uv_loop_init(&loop);
    a = th_host(&loop, NULL, NULL);
    b = th_host(&loop, NULL, addr_b);
    ASSERT_OK(lp2p_host_set_handler(b, "/held", NULL, held_handler, NULL));
    ASSERT_OK(th_connect(&loop, a, addr_b));
    ASSERT_OK(lp2p_stream_open(a, lp2p_host_id(b), protos, 1, held_open,
                               &out));
    ASSERT(th_run_until(&loop, &out.status, 5000));
    ASSERT_EQ(out.status, 1);
    ASSERT_OK(lp2p_stream_write(out.s, x, 3, NULL, NULL));
    ASSERT(th_run_until_fn(&loop, held_ready, NULL, 5000));
    /* A goes away without closing its stream first. */
    lp2p_stream_close(out.s, NULL, NULL);
    th_host_close(&loop, a);
    ASSERT(th_run_until(&loop, &held_in.status, 5000));
    ASSERT(held_in.status == LP2P_ECLOSED || held_in.status == LP2P_EEOF ||
           held_in.status == LP2P_ERESET);
    ASSERT(th_run_until_fn(&loop, conn_count_is, &(struct host_pred){b, 0},
                           5000));
    lp2p_stream_close(held_in.s, NULL, NULL);
    th_host_close(&loop, b);
    th_loop_close(&loop);
}

/* Keepalive: a peer that stops answering Yamux pings is dropped after
 * about two keepalive intervals, even with idle timeouts off; peers that
 * answer stay connected. */
TEST(host_reliability, keepalive)
{
    uv_loop_t loop;
    struct lp2p_host_config cfg;
    struct lp2p_host *b, *a;
    char addr_b[LP2P_MULTIADDR_STRMAX];
    struct raw r;
    uint64_t t0;
    lp2p_host_config_init(&cfg);
    cfg.keepalive_ms = 100;
    cfg.idle_timeout_ms = UINT64_MAX;
    uv_loop_init(&loop);
    b = th_host(&loop, &cfg, addr_b);
    /* A live peer answers: still connected after several intervals. */
    a = th_host(&loop, &cfg, NULL);
    ASSERT_OK(th_connect(&loop, a, addr_b));
    ASSERT(!th_run_until_fn(&loop, conn_count_is, &(struct host_pred){b, 0},
                            450));
    ASSERT(lp2p_host_is_connected(a, lp2p_host_id(b)));
    th_host_close(&loop, a);
    ASSERT(th_run_until_fn(&loop, conn_count_is, &(struct host_pred){b, 0},
                           5000));
    /* A silent one is dropped. */
    raw_start(&r, &loop, b, RAW_HANDSHAKE, RAW_SILENT);
    ASSERT(th_run_until(&loop, &r.done, 5000));
    ASSERT(th_run_until_fn(&loop, conn_count_is, &(struct host_pred){b, 1},
                           5000));
    t0 = uv_now(&loop);
    ASSERT(th_run_until_fn(&loop, conn_count_is, &(struct host_pred){b, 0},
                           5000));
    ASSERT(uv_now(&loop) - t0 >= 90);
    raw_free(&r);
    th_host_close(&loop, b);
    th_loop_close(&loop);
}
