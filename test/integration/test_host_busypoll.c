/* The host's opt-in busy polling (lp2p_host_config.busy_poll_us): off, no
 * handle at all; on, an unref'd idle handle keeps the loop from sleeping
 * after socket activity and stops once busy_poll_us passed without any.
 * States are asserted, never durations, except lower bounds (valgrind
 * only makes things slower). */
#include <stdio.h>
#include <string.h>

#include "host_harness.h"
#include "p2praft.h"
#include "test.h"

/* The busy handle is the host's only unref'd idle handle. */
struct busy_count {
    int total;  /* initialised, not closing */
    int active; /* started */
};

static void count_cb(uv_handle_t *h, void *arg)
{
    struct busy_count *c = arg;
    if (h->type == UV_IDLE && !uv_has_ref(h) && !uv_is_closing(h)) {
        c->total++;
        if (uv_is_active(h)) {
            c->active++;
        }
    }
}

static struct busy_count busy_count(uv_loop_t *loop)
{
    struct busy_count c = {0, 0};
    uv_walk(loop, count_cb, &c);
    return c;
}

struct ping_wait {
    int done, status;
    uv_loop_t *loop;
    struct busy_count at_reply; /* as the pong was read */
    int timeout_at_reply;       /* uv_backend_timeout() then */
};

static void on_ping(struct lp2p_host *h, int status, uint64_t rtt, void *data)
{
    struct ping_wait *w = data;
    (void)h;
    (void)rtt;
    w->done = 1;
    w->status = status;
    w->at_reply = busy_count(w->loop);
    w->timeout_at_reply = uv_backend_timeout(w->loop);
}

static void ping(uv_loop_t *loop, struct lp2p_host *a, struct lp2p_host *b,
                 struct ping_wait *pw)
{
    memset(pw, 0, sizeof(*pw));
    pw->loop = loop;
    ASSERT_OK(lp2p_host_ping(a, lp2p_host_id(b), on_ping, pw));
    ASSERT(th_run_until(loop, &pw->done, 5000));
    ASSERT_OK(pw->status);
}

/* No busy handle is started, and the loop would sleep. */
static int settled(void *arg)
{
    uv_loop_t *loop = arg;
    return busy_count(loop).active == 0 && uv_backend_timeout(loop) != 0;
}

static void pair(uv_loop_t *loop, uint32_t busy_us, struct lp2p_host **a,
                 struct lp2p_host **b)
{
    struct lp2p_host_config cfg;
    char addr_b[LP2P_MULTIADDR_STRMAX];
    lp2p_host_config_init(&cfg);
    cfg.busy_poll_us = busy_us;
    *a = th_host(loop, &cfg, NULL);
    *b = th_host(loop, &cfg, addr_b);
    ASSERT_OK(th_connect(loop, *a, addr_b));
}

TEST(host, busy_poll_default_off)
{
    uv_loop_t loop;
    struct lp2p_host *a, *b;
    struct ping_wait pw;
    struct lp2p_host_config cfg;
    struct busy_count c;
    int i;
    lp2p_host_config_init(&cfg);
    ASSERT_EQ(cfg.busy_poll_us, 0);
    uv_loop_init(&loop);
    pair(&loop, 0, &a, &b);
    for (i = 0; i < 3; i++) {
        ping(&loop, a, b, &pw);
        /* Not even an inactive one: today's behaviour, nothing added. */
        ASSERT_EQ(pw.at_reply.total, 0);
        c = busy_count(&loop);
        ASSERT_EQ(c.total, 0);
    }
    lp2p_host_kick(a); /* a no-op when off */
    lp2p_host_kick(NULL);
    ASSERT_EQ(busy_count(&loop).total, 0);
    th_host_close(&loop, a);
    th_host_close(&loop, b);
    th_loop_close(&loop);
}

TEST(host, busy_poll_spins_then_sleeps)
{
    uv_loop_t loop;
    struct lp2p_host *a, *b;
    struct ping_wait pw;
    uint64_t t0;
    int round;
    uv_loop_init(&loop);
    pair(&loop, 2000, &a, &b);
    /* One handle per host, unref'd: the loop is not kept alive by it. */
    ASSERT_EQ(busy_count(&loop).total, 2);
    for (round = 0; round < 3; round++) {
        ASSERT(th_run_until_fn(&loop, settled, &loop, 5000));
        t0 = uv_hrtime();
        ping(&loop, a, b, &pw);
        /* The pong was just read: the reader's handle is spinning, so
         * the loop polls without sleeping. */
        ASSERT(pw.at_reply.active >= 1);
        ASSERT_EQ(pw.timeout_at_reply, 0);
        /* With no traffic, each handle stops 2 ms after its last
         * activity (after t0) and the loop goes back to sleeping. */
        ASSERT(th_run_until_fn(&loop, settled, &loop, 5000));
        ASSERT(uv_hrtime() - t0 > 2000 * 1000);
        ASSERT_EQ(busy_count(&loop).total, 2);
    }
    /* An application kick starts only that host's handle. */
    lp2p_host_kick(a);
    ASSERT_EQ(busy_count(&loop).active, 1);
    ASSERT_EQ(uv_backend_timeout(&loop), 0);
    ASSERT(th_run_until_fn(&loop, settled, &loop, 5000));
    th_host_close(&loop, a);
    th_host_close(&loop, b);
    th_loop_close(&loop);
}

TEST(host, busy_poll_round_trips)
{
    uv_loop_t loop;
    struct lp2p_host *a, *b;
    struct ping_wait pw;
    int i, n = th_valgrind() ? 5 : 50;
    uv_loop_init(&loop);
    pair(&loop, 50, &a, &b);
    for (i = 0; i < n; i++) {
        ping(&loop, a, b, &pw);
        ping(&loop, b, a, &pw);
    }
    ASSERT_EQ(lp2p_host_conn_count(a), 1);
    ASSERT_EQ(lp2p_host_conn_count(b), 1);
    th_host_close(&loop, a);
    th_host_close(&loop, b);
    th_loop_close(&loop);
}

/* Closing while the handle spins: it is closed with the host, nothing is
 * left on the loop (th_loop_close fails otherwise; valgrind checks the
 * memory). */
TEST(host, busy_poll_close_while_spinning)
{
    uv_loop_t loop;
    struct lp2p_host *a, *b;
    struct ping_wait pw;
    int closed_a = 0, closed_b = 0;
    uv_loop_init(&loop);
    pair(&loop, 1000000, &a, &b);
    ping(&loop, a, b, &pw);
    ASSERT(pw.at_reply.active >= 1);
    lp2p_host_kick(b);
    ASSERT_EQ(busy_count(&loop).active, 2);
    lp2p_host_close(a, th_on_host_closed, &closed_a);
    lp2p_host_close(b, th_on_host_closed, &closed_b);
    /* Closing: no kick restarts it. */
    lp2p_host_kick(a);
    ASSERT_EQ(busy_count(&loop).total, 0);
    ASSERT(th_run_until(&loop, &closed_a, 5000));
    ASSERT(th_run_until(&loop, &closed_b, 5000));
    th_loop_close(&loop);
}

TEST(host, busy_poll_config)
{
    uv_loop_t loop;
    struct lp2p_host_config cfg;
    struct lp2p_host *h = NULL;
    struct p2praft_node_config ncfg;
    struct p2praft_node *node = NULL;
    struct lp2p_key key;
    const char *listen[1] = {"/ip4/127.0.0.1/tcp/0"};
    char err[512];
    uv_loop_init(&loop);
    lp2p_host_config_init(&cfg);
    cfg.busy_poll_us = LP2P_BUSY_POLL_US_MAX + 1;
    ASSERT_ERR(lp2p_host_new(&h, &loop, &cfg), LP2P_EINVAL);
    ASSERT(h == NULL);
    cfg.busy_poll_us = UINT32_MAX;
    ASSERT_ERR(lp2p_host_new(&h, &loop, &cfg), LP2P_EINVAL);
    cfg.busy_poll_us = LP2P_BUSY_POLL_US_MAX;
    ASSERT_OK(lp2p_host_new(&h, &loop, &cfg));
    ASSERT_EQ(busy_count(&loop).total, 1);
    ASSERT_EQ(busy_count(&loop).active, 0);
    th_host_close(&loop, h);
    th_loop_close(&loop);
    /* A node refuses it before it touches anything. */
    ASSERT_OK(lp2p_key_generate(&key));
    p2praft_node_config_init(&ncfg);
    ASSERT_EQ(ncfg.busy_poll_us, 0);
    ncfg.key = &key;
    ncfg.data_dir = "/nonexistent/p2praft-busy-poll";
    ncfg.listen = listen;
    ncfg.n_listen = 1;
    ncfg.busy_poll_us = LP2P_BUSY_POLL_US_MAX + 1;
    ASSERT_ERR(p2praft_node_start(&node, &ncfg, err, sizeof(err)),
               P2PRAFT_EINVAL);
    ASSERT(node == NULL);
    ASSERT(strstr(err, "invalid") != NULL);
}
