/*
 * Misbehaving peers against a host: stalls mid-handshake, floods of
 * pending handshakes, garbage after the handshake, abrupt closes (also
 * mid-frame), control-frame floods from a peer that never reads, and the
 * connection cap. Each must cost bounded memory and end in a clean close
 * (the sanitizers and valgrind check the "clean" part).
 *
 * The raw peer (raw_peer.h) drives the sans-I/O codecs itself, so it can
 * stop or misbehave at any step.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_harness.h"
#include "p2p/host.h"
#include "raw_peer.h"
#include "test.h"

struct host_pred {
    struct lp2p_host *h;
    size_t n;
};

static int conn_count_is(void *arg)
{
    struct host_pred *p = arg;
    return lp2p_host_conn_count(p->h) == p->n;
}

struct raw_host {
    struct raw *r;
    struct lp2p_host *h;
};

/* The host has a ready connection to the raw peer. */
static int raw_connected_to(void *arg)
{
    struct raw_host *p = arg;
    return lp2p_host_is_connected(p->h, &p->r->id);
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

/* max_conns: the third dialer is disconnected right after its handshake
 * (only then is its identity known), the first two stay. */
struct not_connected {
    struct lp2p_host *h;
    const struct lp2p_peer_id *peer;
};

static int not_connected(void *arg)
{
    struct not_connected *p = arg;
    return !lp2p_host_is_connected(p->h, p->peer);
}

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
    th_connect(&loop, d[2], addr_b);
    ASSERT(th_run_until_fn(&loop, not_connected,
                           &(struct not_connected){d[2], lp2p_host_id(b)},
                           5000));
    ASSERT(th_run_until_fn(&loop, conn_count_is, &(struct host_pred){b, 2},
                           5000));
    ASSERT(lp2p_host_is_connected(d[0], lp2p_host_id(b)));
    ASSERT(lp2p_host_is_connected(d[1], lp2p_host_id(b)));
    ASSERT_EQ(b->lim_total[LP2P_LIM_REFUSED_FULL], 1);
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

/* lp2p_stream_open() always calls back: a peer that holds the connection
 * but never answers the stream's negotiation, then goes away (ECLOSED),
 * or stays silent until negotiate_timeout_ms (ETIMEDOUT), or the host
 * closes under the open (ECANCELED). */
struct open_wait {
    int calls;
    int status;
    struct lp2p_stream *s;
};

static void open_cb(struct lp2p_stream *s, int status, void *data)
{
    struct open_wait *w = data;
    w->calls++;
    w->status = status;
    w->s = s;
}

static const char *const silent_protos[] = {"/never/answered"};

/* B (cfg) with a raw peer connected, holding the connection, reading but
 * answering nothing; an open toward it is pending. */
static struct lp2p_host *open_pending(uv_loop_t *loop, struct raw *r,
                                      struct open_wait *w,
                                      uint64_t negotiate_ms)
{
    struct lp2p_host_config cfg;
    struct lp2p_host *b;
    lp2p_host_config_init(&cfg);
    cfg.negotiate_timeout_ms = negotiate_ms;
    b = th_host(loop, &cfg, NULL);
    raw_start(r, loop, b, RAW_HANDSHAKE, RAW_HOLD);
    ASSERT(th_run_until(loop, &r->done, 5000));
    ASSERT(th_run_until_fn(loop, conn_count_is, &(struct host_pred){b, 1},
                           5000));
    ASSERT(th_run_until_fn(loop, raw_connected_to, &(struct raw_host){r, b},
                           5000));
    memset(w, 0, sizeof(*w));
    ASSERT_OK(lp2p_stream_open(b, &r->id, silent_protos, 1, open_cb, w));
    if (negotiate_ms >= 5000) {
        /* The proposal reached the peer, and nothing answers it. */
        ASSERT(!th_run_until(loop, &w->calls, 50));
    }
    return b;
}

TEST(host_reliability, open_calls_back_when_peer_closes)
{
    uv_loop_t loop;
    struct lp2p_host *b;
    struct raw r;
    struct open_wait w;
    uv_loop_init(&loop);
    b = open_pending(&loop, &r, &w, 10000);
    raw_free(&r); /* the peer closes the connection during the open */
    ASSERT(th_run_until(&loop, &w.calls, 5000));
    ASSERT_EQ(w.calls, 1);
    ASSERT_ERR(w.status, LP2P_ECLOSED);
    ASSERT(w.s == NULL);
    ASSERT(th_run_until_fn(&loop, conn_count_is, &(struct host_pred){b, 0},
                           5000));
    th_host_close(&loop, b);
    ASSERT_EQ(w.calls, 1);
    th_loop_close(&loop);
}

TEST(host_reliability, open_times_out)
{
    uv_loop_t loop;
    struct lp2p_host *b;
    struct raw r;
    struct open_wait w;
    uint64_t t0, limit = th_valgrind() ? 3000 : 300;
    uv_loop_init(&loop);
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    b = open_pending(&loop, &r, &w, limit);
    ASSERT(th_run_until(&loop, &w.calls, 5000));
    ASSERT_EQ(w.calls, 1);
    ASSERT_ERR(w.status, LP2P_ETIMEDOUT);
    ASSERT(uv_now(&loop) - t0 >= limit - 10);
    raw_free(&r);
    th_host_close(&loop, b);
    ASSERT_EQ(w.calls, 1);
    th_loop_close(&loop);
}

TEST(host_reliability, open_canceled_by_host_close)
{
    uv_loop_t loop;
    struct lp2p_host *b;
    struct raw r;
    struct open_wait w;
    int closed = 0;
    uv_loop_init(&loop);
    b = open_pending(&loop, &r, &w, 10000);
    lp2p_host_close(b, th_on_host_closed, &closed);
    ASSERT_EQ(w.calls, 0); /* never inside lp2p_host_close() */
    ASSERT(th_run_until(&loop, &closed, 5000));
    ASSERT_EQ(w.calls, 1);
    ASSERT_ERR(w.status, LP2P_ECANCELED);
    raw_free(&r);
    th_loop_close(&loop);
}

/* The peer reset the connection, and the host has not read the reset yet
 * when the open writes its proposal: the write fails inside
 * lp2p_stream_open(). The open still calls back, later, with ECLOSED. */
static int conn_fd(struct lp2p_host *h)
{
    struct lp2p_conn *c = LP2P__CONTAINER_OF(h->conns.next, struct lp2p_conn,
                                         link);
    ASSERT(h->conns.next != &h->conns);
    return c->fd;
}

TEST(host_reliability, open_calls_back_when_write_fails_at_once)
{
    uv_loop_t loop;
    struct lp2p_host *b;
    struct raw r;
    struct open_wait w;
    struct pollfd pfd;
    int i;
    uv_loop_init(&loop);
    b = th_host(&loop, NULL, NULL);
    raw_start(&r, &loop, b, RAW_HANDSHAKE, RAW_HOLD);
    ASSERT(th_run_until_fn(&loop, raw_connected_to, &(struct raw_host){&r, b},
                           5000));
    pfd.fd = conn_fd(b);
    pfd.events = POLLIN;
    raw_reset(&r);
    /* Wait (without running the loop) until the reset reached B's socket. */
    for (i = 0; i < 5000 && !(poll(&pfd, 1, 1) == 1 && (pfd.revents &
                                                         (POLLERR | POLLHUP)));
         i++) {
    }
    ASSERT(pfd.revents & (POLLERR | POLLHUP));
    memset(&w, 0, sizeof(w));
    ASSERT_OK(lp2p_stream_open(b, &r.id, silent_protos, 1, open_cb, &w));
    ASSERT_EQ(w.calls, 0);
    ASSERT(th_run_until(&loop, &w.calls, 5000));
    ASSERT_EQ(w.calls, 1);
    ASSERT_ERR(w.status, LP2P_ECLOSED);
    raw_free(&r);
    th_host_close(&loop, b);
    ASSERT_EQ(w.calls, 1);
    th_loop_close(&loop);
}

/* The host leaves SIGPIPE alone: its disposition is the same after
 * lp2p_host_new(), and with the default disposition (which kills the
 * process) a write to a peer that went away is only an error. */
TEST(host_reliability, sigpipe_left_alone)
{
    uv_loop_t loop;
    struct lp2p_host *b;
    struct raw r;
    struct open_wait w;
    struct sigaction saved, now;
    struct pollfd pfd;
    int i, err = 0, fd;
    socklen_t len = sizeof(err);
    ASSERT_EQ(sigaction(SIGPIPE, NULL, &saved), 0);
    signal(SIGPIPE, SIG_DFL);
    uv_loop_init(&loop);
    b = th_host(&loop, NULL, NULL);
    ASSERT_EQ(sigaction(SIGPIPE, NULL, &now), 0);
    ASSERT(now.sa_handler == SIG_DFL);
    raw_start(&r, &loop, b, RAW_HANDSHAKE, RAW_HOLD);
    ASSERT(th_run_until_fn(&loop, raw_connected_to, &(struct raw_host){&r, b},
                           5000));
    fd = conn_fd(b);
    pfd.fd = fd;
    pfd.events = POLLIN;
    raw_reset(&r);
    for (i = 0; i < 5000 && !(poll(&pfd, 1, 1) == 1 && (pfd.revents &
                                                         (POLLERR | POLLHUP)));
         i++) {
    }
    /* Take the reset, so that the next send finds the socket shut: EPIPE,
     * which raises SIGPIPE unless the sender says MSG_NOSIGNAL. */
    ASSERT_EQ(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
    ASSERT_EQ(err, ECONNRESET);
    ASSERT(send(fd, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE);
    memset(&w, 0, sizeof(w));
    ASSERT_OK(lp2p_stream_open(b, &r.id, silent_protos, 1, open_cb, &w));
    ASSERT(th_run_until(&loop, &w.calls, 5000));
    ASSERT_ERR(w.status, LP2P_ECLOSED);
    raw_free(&r);
    th_host_close(&loop, b);
    th_loop_close(&loop);
    ASSERT_EQ(sigaction(SIGPIPE, NULL, &now), 0);
    ASSERT(now.sa_handler == SIG_DFL);
    ASSERT_EQ(sigaction(SIGPIPE, &saved, NULL), 0);
}
