/*
 * Connection limits against hostile peers (host_limits.c): floods of fresh
 * identities that complete their handshakes and hold a stream, floods of
 * handshakes that never finish, from one address or several, strangers
 * that idle or open no protocol. A protected peer always gets through,
 * the caps and timers hold, the refusals are reported (rate-limited), and
 * everything returns to its baseline afterwards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_harness.h"
#include "p2p/host.h"
#include "raw_peer.h"
#include "test.h"

/* ---- log capture ---- */
struct capture {
    int lines;          /* lines of the "limits" module */
    char last[1024];
};

static struct capture cap;

static void capture_cb(void *ctx, enum lp2p_log_level level,
                       const char *module, const char *msg)
{
    (void)ctx;
    if (level >= LP2P_LOG_WARN && strcmp(module, "limits") == 0) {
        cap.lines++;
        snprintf(cap.last, sizeof(cap.last), "%s", msg);
    }
}

static enum lp2p_log_level capture_start(void)
{
    enum lp2p_log_level saved = lp2p_log_level();
    memset(&cap, 0, sizeof(cap));
    lp2p_log_set(LP2P_LOG_WARN, capture_cb, NULL);
    return saved;
}

/* ---- predicates ---- */
struct flood {
    struct raw *r;
    int n;
};

/* Every raw peer was refused/evicted (EOF) or holds its stream. */
static int flood_settled(void *arg)
{
    struct flood *f = arg;
    int i;
    for (i = 0; i < f->n; i++) {
        if (!f->r[i].eof && !f->r[i].stream_acked) {
            return 0;
        }
    }
    return 1;
}

static int flood_held(const struct flood *f)
{
    int i, n = 0;
    for (i = 0; i < f->n; i++) {
        n += f->r[i].stream_acked && !f->r[i].eof;
    }
    return n;
}

static int flood_eofs(void *arg)
{
    struct flood *f = arg;
    int i, n = 0;
    for (i = 0; i < f->n; i++) {
        n += f->r[i].eof;
    }
    return n;
}

struct count_is {
    struct flood *f;
    int n;
};

static int eofs_are(void *arg)
{
    struct count_is *c = arg;
    return flood_eofs(c->f) == c->n;
}

static int host_empty(void *arg)
{
    struct lp2p_host *h = arg;
    return lp2p_host_conn_count(h) == 0;
}

struct connected {
    struct lp2p_host *h;
    const struct lp2p_peer_id *peer;
    int want;
};

static int connected_is(void *arg)
{
    struct connected *c = arg;
    return lp2p_host_is_connected(c->h, c->peer) == c->want;
}

static int conn_count_at_least_1(void *arg)
{
    return lp2p_host_conn_count(arg) >= 1;
}

struct opened {
    int done, status;
    struct lp2p_stream *s;
};

static void on_opened(struct lp2p_stream *s, int status, void *data)
{
    struct opened *o = data;
    o->done = 1;
    o->status = status;
    o->s = s;
}

static void flood_free(struct flood *f)
{
    int i;
    for (i = 0; i < f->n; i++) {
        raw_free(&f->r[i]);
    }
    free(f->r);
}

/* ---- a member that must get through ---- */
struct pinged {
    int done, status;
};

static void on_pong(struct lp2p_host *h, int status, uint64_t rtt, void *data)
{
    struct pinged *p = data;
    (void)h;
    (void)rtt;
    p->done = 1;
    p->status = status;
}

/* `m` connects to `b` and pings it over the connection. */
static void member_gets_through(uv_loop_t *loop, struct lp2p_host *m,
                                struct lp2p_host *b, const char *addr_b)
{
    struct pinged p = {0, 0};
    ASSERT_OK(th_connect(loop, m, addr_b));
    ASSERT_OK(lp2p_host_ping(m, lp2p_host_id(b), on_pong, &p));
    ASSERT(th_run_until(loop, &p.done, 10000));
    ASSERT_OK(p.status);
    ASSERT(lp2p_host_is_connected(b, lp2p_host_id(m)));
}

static void baseline(uv_loop_t *loop, struct lp2p_host *b, int fds)
{

    ASSERT(th_run_until_fn(loop, host_empty, b, 10000));
    ASSERT_EQ(b->n_pending, 0);
    ASSERT_EQ(b->n_unprotected, 0);
    ASSERT(lp2p__list_empty(&b->pending));
    ASSERT_EQ(th_socket_count(), fds);
}

/*
 * 254 fresh identities complete their handshakes and each holds a ping
 * stream (a protocol we serve, so neither the first-protocol rule nor the
 * idle limit frees them). Only max_unprotected_conns of them stay; a
 * protected member still connects, and the refusals are reported in a
 * few lines, not one per peer.
 */
TEST(host_limits, identity_flood_cannot_keep_a_member_out)
{
    uv_loop_t loop;
    struct lp2p_host_config cfg;
    struct lp2p_host *b, *m;
    char addr_b[LP2P_MULTIADDR_STRMAX];
    struct flood f;
    enum lp2p_log_level saved;
    uint64_t t0;
    int i, fds, cap_u = th_valgrind() ? 8 : 32;
    uv_loop_init(&loop);
    saved = capture_start();
    lp2p_host_config_init(&cfg);
    cfg.max_unprotected_conns = (uint32_t)cap_u;
    b = th_host(&loop, &cfg, addr_b);
    fds = th_socket_count();
    m = th_host(&loop, NULL, NULL);
    ASSERT_OK(lp2p_host_protect(b, lp2p_host_id(m), true));
    ASSERT_OK(lp2p_host_protect(b, lp2p_host_id(m), true)); /* idempotent */
    ASSERT_EQ(b->n_protected, 1);
    f.n = th_valgrind() ? 40 : 254;
    f.r = calloc((size_t)f.n, sizeof(*f.r));
    t0 = uv_now(&loop);
    for (i = 0; i < f.n; i++) {
        raw_start(&f.r[i], &loop, b, RAW_HANDSHAKE, RAW_OPEN_PING);
    }
    ASSERT(th_run_until_fn(&loop, flood_settled, &f, 60000));
    ASSERT_EQ(flood_held(&f), cap_u);
    ASSERT_EQ(b->n_unprotected, (uint32_t)cap_u);
    ASSERT_EQ(b->lim_total[LP2P_LIM_REFUSED_UNPROTECTED] +
                  b->lim_total[LP2P_LIM_EVICTED_PENDING],
              (uint64_t)(f.n - cap_u));
    /* The member gets through, and is not counted as a stranger. */
    member_gets_through(&loop, m, b, addr_b);
    ASSERT_EQ(b->n_unprotected, (uint32_t)cap_u);
    /* Reported at warn level, with counts, in a few lines: at the first
     * event, then at most one per 10 s. */
    ASSERT(cap.lines >= 1);
    ASSERT((uint64_t)cap.lines <= 1 + (uv_now(&loop) - t0) / 10000 + 1);
    ASSERT(strstr(cap.last, "refused") != NULL ||
           strstr(cap.last, "evicted") != NULL);
    flood_free(&f);
    th_host_close(&loop, m);
    baseline(&loop, b, fds);
    th_host_close(&loop, b);
    lp2p_log_set(saved, NULL, NULL);
    th_loop_close(&loop);
}

/*
 * With max_unprotected_conns as large as max_conns, strangers can fill
 * every slot: a protected member then evicts one (the idlest) instead of
 * being refused, whether it dials us or we dial it.
 */
TEST(host_limits, protected_peer_evicts_when_full)
{
    uv_loop_t loop;
    struct lp2p_host_config cfg;
    struct lp2p_host *b, *m1, *m2;
    char addr_b[LP2P_MULTIADDR_STRMAX], addr_m2[LP2P_MULTIADDR_STRMAX];
    struct flood f;
    int i, fds;
    uv_loop_init(&loop);
    lp2p_host_config_init(&cfg);
    cfg.max_conns = 12;
    cfg.max_unprotected_conns = 12;
    b = th_host(&loop, &cfg, addr_b);
    fds = th_socket_count();
    m1 = th_host(&loop, NULL, NULL);
    m2 = th_host(&loop, NULL, addr_m2);
    ASSERT_OK(lp2p_host_protect(b, lp2p_host_id(m1), true));
    ASSERT_OK(lp2p_host_protect(b, lp2p_host_id(m2), true));
    f.n = 16;
    f.r = calloc((size_t)f.n, sizeof(*f.r));
    for (i = 0; i < f.n; i++) {
        raw_start(&f.r[i], &loop, b, RAW_HANDSHAKE, RAW_OPEN_PING);
    }
    ASSERT(th_run_until_fn(&loop, flood_settled, &f, 30000));
    ASSERT_EQ(flood_held(&f), 12);
    ASSERT_EQ(lp2p_host_conn_count(b), 12);
    /* A member dials in: one stranger goes. */
    member_gets_through(&loop, m1, b, addr_b);
    ASSERT(th_run_until_fn(&loop, eofs_are,
                           &(struct count_is){&f, f.n - 11}, 5000));
    ASSERT_EQ(lp2p_host_conn_count(b), 12);
    ASSERT_EQ(b->lim_total[LP2P_LIM_EVICTED_FOR_PROTECTED], 1);
    /* We dial a member: another stranger goes. */
    ASSERT_OK(th_connect(&loop, b, addr_m2));
    ASSERT(th_run_until_fn(&loop, eofs_are,
                           &(struct count_is){&f, f.n - 10}, 5000));
    ASSERT_EQ(b->lim_total[LP2P_LIM_EVICTED_FOR_PROTECTED], 2);
    ASSERT(lp2p_host_is_connected(b, lp2p_host_id(m1)));
    ASSERT(lp2p_host_is_connected(b, lp2p_host_id(m2)));
    /* Strangers are only refused, never evicting anyone. */
    {
        struct lp2p_host *s = th_host(&loop, NULL, NULL);
        th_connect(&loop, s, addr_b);
        ASSERT(th_run_until_fn(&loop, connected_is,
                               &(struct connected){s, lp2p_host_id(b), 0},
                               5000));
        ASSERT(lp2p_host_is_connected(b, lp2p_host_id(m1)));
        th_host_close(&loop, s);
    }
    flood_free(&f);
    th_host_close(&loop, m1);
    th_host_close(&loop, m2);
    baseline(&loop, b, fds);
    th_host_close(&loop, b);
    th_loop_close(&loop);
}

/*
 * Handshakes that never finish fill max_pending_handshakes; newer
 * connections evict the oldest one of the busiest address. A peer on
 * another address keeps its slot through a flood, and a member arriving
 * after a flood from its own address gets through.
 */
TEST(host_limits, pending_flood_evicts_the_busiest_address)
{
    uv_loop_t loop;
    struct lp2p_host_config cfg;
    struct lp2p_host *b, *m;
    char addr_b[LP2P_MULTIADDR_STRMAX];
    struct flood f, other;
    int i, fds;
    uv_loop_init(&loop);
    lp2p_host_config_init(&cfg);
    cfg.max_pending_handshakes = 8;
    b = th_host(&loop, &cfg, addr_b);
    fds = th_socket_count();
    m = th_host(&loop, NULL, NULL);
    ASSERT_OK(lp2p_host_protect(b, lp2p_host_id(m), true));
    /* A slow handshake from 127.0.0.1 first, then a flood from .2. */
    other.n = 1;
    other.r = calloc(1, sizeof(*other.r));
    raw_start(&other.r[0], &loop, b, RAW_STALL_TCP, RAW_NOTHING);
    ASSERT(th_run_until_fn(&loop, conn_count_at_least_1, b, 5000));
    f.n = 30;
    f.r = calloc((size_t)f.n, sizeof(*f.r));
    for (i = 0; i < f.n; i++) {
        raw_start_from(&f.r[i], &loop, b, RAW_STALL_TCP, RAW_NOTHING,
                       "127.0.0.2");
    }
    /* 7 of the flood fit beside the slow one; the other 23 were evicted,
     * each time the oldest of 127.0.0.2. */
    ASSERT(th_run_until_fn(&loop, eofs_are, &(struct count_is){&f, 23},
                           10000));
    ASSERT_EQ(b->n_pending, 8);
    ASSERT(!other.r[0].eof);
    for (i = 0; i < 23; i++) {
        ASSERT(f.r[i].eof); /* oldest first */
    }
    /* A member from 127.0.0.1 gets through the full table. */
    member_gets_through(&loop, m, b, addr_b);
    ASSERT(!other.r[0].eof);
    th_host_close(&loop, m);
    flood_free(&f);
    flood_free(&other);
    /* Now a flood from the member's own address, before it dials: 8 hold
     * the pending slots, 12 were evicted. */
    f.n = 20;
    f.r = calloc((size_t)f.n, sizeof(*f.r));
    for (i = 0; i < f.n; i++) {
        raw_start(&f.r[i], &loop, b, RAW_STALL_TCP, RAW_NOTHING);
    }
    ASSERT(th_run_until_fn(&loop, eofs_are,
                           &(struct count_is){&f, f.n - 8}, 10000));
    ASSERT_EQ(b->n_pending, 8);
    m = th_host(&loop, NULL, NULL);
    ASSERT_OK(lp2p_host_protect(b, lp2p_host_id(m), true));
    member_gets_through(&loop, m, b, addr_b);
    th_host_close(&loop, m);
    flood_free(&f);
    baseline(&loop, b, fds);
    th_host_close(&loop, b);
    th_loop_close(&loop);
}

/*
 * max_unprotected_conns with real hosts: the strangers beyond the cap are
 * disconnected after their handshake, the others stay; a protected peer
 * does not count.
 */
TEST(host_limits, unprotected_cap)
{
    uv_loop_t loop;
    struct lp2p_host_config cfg;
    struct lp2p_host *b, *s[5], *m;
    char addr_b[LP2P_MULTIADDR_STRMAX];
    int i, n_conn = 0;
    uv_loop_init(&loop);
    lp2p_host_config_init(&cfg);
    cfg.max_unprotected_conns = 3;
    b = th_host(&loop, &cfg, addr_b);
    m = th_host(&loop, NULL, NULL);
    ASSERT_OK(lp2p_host_protect(b, lp2p_host_id(m), true));
    ASSERT_OK(th_connect(&loop, m, addr_b));
    for (i = 0; i < 5; i++) {
        s[i] = th_host(&loop, NULL, NULL);
        th_connect(&loop, s[i], addr_b);
    }
    for (i = 3; i < 5; i++) {
        ASSERT(th_run_until_fn(&loop, connected_is,
                               &(struct connected){s[i], lp2p_host_id(b), 0},
                               5000));
    }
    for (i = 0; i < 5; i++) {
        n_conn += lp2p_host_is_connected(b, lp2p_host_id(s[i]));
    }
    ASSERT_EQ(n_conn, 3);
    ASSERT_EQ(b->n_unprotected, 3);
    ASSERT_EQ(b->lim_total[LP2P_LIM_REFUSED_UNPROTECTED], 2);
    ASSERT(lp2p_host_is_connected(b, lp2p_host_id(m)));
    for (i = 0; i < 5; i++) {
        th_host_close(&loop, s[i]);
    }
    th_host_close(&loop, m);
    ASSERT(th_run_until_fn(&loop, host_empty, b, 5000));
    ASSERT_EQ(b->n_unprotected, 0);
    th_host_close(&loop, b);
    th_loop_close(&loop);
}

/*
 * unprotected_idle_ms: a stranger goes once idle that long, but not while
 * a stream is open; a protected peer idles as long as idle_timeout_ms
 * allows, until it is unprotected.
 */
TEST(host_limits, unprotected_idle_limit)
{
    uv_loop_t loop;
    struct lp2p_host_config cfg;
    struct lp2p_host *b, *s[2], *m;
    char addr_b[LP2P_MULTIADDR_STRMAX];
    const char *protos[] = {LP2P_PING_PROTOCOL};
    struct opened o = {0, 0, NULL};
    uint64_t idle = th_valgrind() ? 3000 : 300, t0;
    int i;
    uv_loop_init(&loop);
    lp2p_host_config_init(&cfg);
    cfg.unprotected_idle_ms = idle;
    cfg.protocol_timeout_ms = UINT64_MAX; /* not this test's subject */
    cfg.idle_timeout_ms = UINT64_MAX;
    b = th_host(&loop, &cfg, addr_b);
    m = th_host(&loop, NULL, NULL);
    ASSERT_OK(lp2p_host_protect(b, lp2p_host_id(m), true));
    ASSERT_OK(th_connect(&loop, m, addr_b));
    for (i = 0; i < 2; i++) {
        s[i] = th_host(&loop, NULL, NULL);
    }
    /* s[0] keeps a ping stream open: it is not idle. s[1] opens none. */
    t0 = uv_now(&loop);
    ASSERT_OK(lp2p_peerstore_add_addr(s[0], lp2p_host_id(b), addr_b, 60000));
    ASSERT_OK(lp2p_stream_open(s[0], lp2p_host_id(b), protos, 1, on_opened,
                               &o));
    ASSERT(th_run_until(&loop, &o.done, 5000));
    ASSERT_OK(o.status);
    ASSERT_OK(th_connect(&loop, s[1], addr_b));
    ASSERT(th_run_until_fn(&loop, connected_is,
                           &(struct connected){b, lp2p_host_id(s[1]), 0},
                           5000));
    ASSERT(uv_now(&loop) - t0 >= idle - 10);
    /* Twice the limit (th_run_until_fn scales its wait as `idle` is). */
    ASSERT(!th_run_until_fn(&loop, connected_is,
                            &(struct connected){b, lp2p_host_id(s[0]), 0},
                            600));
    /* Closing the stream starts its idle time. */
    t0 = uv_now(&loop);
    lp2p_stream_close(o.s, NULL, NULL);
    ASSERT(th_run_until_fn(&loop, connected_is,
                           &(struct connected){b, lp2p_host_id(s[0]), 0},
                           5000));
    ASSERT(uv_now(&loop) - t0 >= idle - 10);
    /* The protected member, idle all along, is still there. */
    ASSERT(lp2p_host_is_connected(b, lp2p_host_id(m)));
    ASSERT_EQ(b->n_unprotected, 0);
    /* Unprotecting it makes it a stranger, idle: it goes too. */
    ASSERT_OK(lp2p_host_protect(b, lp2p_host_id(m), false));
    ASSERT_OK(lp2p_host_protect(b, lp2p_host_id(m), false));
    ASSERT_EQ(b->n_unprotected, 1);
    ASSERT(th_run_until_fn(&loop, host_empty, b, 5000));
    ASSERT_EQ(b->n_unprotected, 0);
    for (i = 0; i < 2; i++) {
        th_host_close(&loop, s[i]);
    }
    th_host_close(&loop, m);
    th_host_close(&loop, b);
    th_loop_close(&loop);
}

/*
 * A stranger's connection on which no stream negotiates a protocol we
 * serve is closed after protocol_timeout_ms: one that never opens a
 * stream, and one that only proposes protocols we do not serve. One that
 * negotiated ping stays, and so does a protected peer that opens nothing.
 */
TEST(host_limits, connection_opening_no_protocol_is_closed)
{
    uv_loop_t loop;
    struct lp2p_host_config cfg;
    struct lp2p_host *b, *m, *s;
    char addr_b[LP2P_MULTIADDR_STRMAX];
    struct raw hold, ping;
    struct opened o = {0, 0, NULL};
    int fds;
    uint64_t t0, limit = th_valgrind() ? 3000 : 300;
    const char *bad[] = {"/not/served/1.0.0"};
    uv_loop_init(&loop);
    lp2p_host_config_init(&cfg);
    cfg.protocol_timeout_ms = limit;
    b = th_host(&loop, &cfg, addr_b);
    fds = th_socket_count();

    m = th_host(&loop, NULL, NULL);
    ASSERT_OK(lp2p_host_protect(b, lp2p_host_id(m), true));
    ASSERT_OK(th_connect(&loop, m, addr_b));
    s = th_host(&loop, NULL, NULL);
    t0 = uv_now(&loop);
    raw_start(&hold, &loop, b, RAW_HANDSHAKE, RAW_HOLD);
    raw_start(&ping, &loop, b, RAW_HANDSHAKE, RAW_OPEN_PING);
    ASSERT_OK(th_connect(&loop, s, addr_b));
    ASSERT_OK(lp2p_stream_open(s, lp2p_host_id(b), bad, 1, on_opened, &o));
    ASSERT(th_run_until(&loop, &o.done, 5000));
    ASSERT_ERR(o.status, LP2P_ENOPROTO);
    ASSERT(th_run_until(&loop, &hold.eof, 5000));
    ASSERT(uv_now(&loop) - t0 >= limit - 10);
    ASSERT(th_run_until_fn(&loop, connected_is,
                           &(struct connected){s, lp2p_host_id(b), 0}, 5000));
    ASSERT_EQ(b->lim_total[LP2P_LIM_CLOSED_NO_PROTOCOL], 2);
    ASSERT(ping.stream_acked);
    ASSERT(!ping.eof);
    ASSERT(lp2p_host_is_connected(b, lp2p_host_id(m)));
    raw_free(&hold);
    raw_free(&ping);
    th_host_close(&loop, s);
    th_host_close(&loop, m);
    baseline(&loop, b, fds);
    th_host_close(&loop, b);
    th_loop_close(&loop);
}
