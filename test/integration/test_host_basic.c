/* Two hosts on 127.0.0.1: connect, ping, identify, echo streams. */
#include <stdio.h>
#include <string.h>

#include "host_harness.h"
#include "test.h"

struct ping_wait {
    int done;
    int status;
    uint64_t rtt;
};

static void on_ping(struct lp2p_host *h, int status, uint64_t rtt, void *data)
{
    struct ping_wait *w = data;
    (void)h;
    w->done = 1;
    w->status = status;
    w->rtt = rtt;
}

TEST(host, connect_ping)
{
    uv_loop_t loop;
    struct lp2p_host *a, *b;
    char addr_b[LP2P_MULTIADDR_STRMAX];
    struct ping_wait pw = {0, 0, 0};
    uv_loop_init(&loop);
    a = th_host(&loop, NULL, NULL);
    b = th_host(&loop, NULL, addr_b);
    ASSERT_OK(th_connect(&loop, a, addr_b));
    ASSERT(lp2p_host_is_connected(a, lp2p_host_id(b)));
    ASSERT_OK(lp2p_host_ping(a, lp2p_host_id(b), on_ping, &pw));
    ASSERT(th_run_until(&loop, &pw.done, 5000));
    ASSERT_OK(pw.status);
    ASSERT(pw.rtt > 0);
    /* The other way round, on the same connection. */
    pw.done = 0;
    ASSERT_OK(lp2p_host_ping(b, lp2p_host_id(a), on_ping, &pw));
    ASSERT(th_run_until(&loop, &pw.done, 5000));
    ASSERT_OK(pw.status);
    ASSERT_EQ(lp2p_host_conn_count(a), 1);
    ASSERT_EQ(lp2p_host_conn_count(b), 1);
    th_host_close(&loop, a);
    th_host_close(&loop, b);
    th_loop_close(&loop);
}
