/* Allocation failures in host set-up and tear-down: every failing run must
 * return an error and free everything (test__oom_sweep). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_harness.h"
#include "p2p/host.h"
#include "oom.h"
#include "test.h"

static void closed_cb(struct lp2p_host *h, void *data)
{
    (void)h;
    *(int *)data = 1;
}

static void dummy_handler(struct lp2p_stream *s, void *data)
{
    (void)data;
    lp2p_stream_close(s, NULL, NULL);
}

static int host_lifecycle(void *ctx)
{
    uv_loop_t loop;
    struct lp2p_host *h;
    struct lp2p_key k;
    struct lp2p_host_config cfg;
    struct lp2p_peer_id p;
    int rv, closed = 0;
    (void)ctx;
    memset(&k, 7, sizeof(k));
    lp2p_key_from_seed(&k, k.seed);
    lp2p_peer_id_from_key(&k, &p);
    lp2p_host_config_init(&cfg);
    cfg.key = &k;
    uv_loop_init(&loop);
    rv = lp2p_host_new(&h, &loop, &cfg);
    if (rv != 0) {
        uv_loop_close(&loop);
        return rv;
    }
    rv = lp2p_host_listen(h, "/ip4/127.0.0.1/tcp/0");
    if (rv == 0) {
        rv = lp2p_host_set_handler(h, "/x/1", NULL, dummy_handler, NULL);
    }
    if (rv == 0) {
        rv = lp2p_peerstore_add_addr(h, &p, "/ip4/10.1.2.3/tcp/9", 1000);
    }
    if (rv == 0) {
        rv = lp2p_peerstore_add_addr(h, &p, "/dns/x.example/tcp/9", 1000);
    }
    if (rv == 0) {
        rv = lp2p_host_protect(h, &p, true);
        /* A failed protect changed nothing. */
        if (rv != 0 && h->n_protected != 0) {
            rv = -998;
        }
    }
    lp2p_host_close(h, closed_cb, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0 || !closed) {
        return -999; /* the sweep then reports a failure */
    }
    return rv;
}

TEST(host_oom, lifecycle)
{
    long n = test__oom_sweep(host_lifecycle, NULL);
    ASSERT(n > 5);
}

/*
 * Allocation failures on the network path: two hosts connect, run one
 * echo stream and close, with the Nth allocation failing, for every N of
 * a clean run. Each run must end (bounded waits), close both hosts and
 * leave no allocation behind; the echo may fail, with an error.
 */
struct net {
    int connected, conn_status;
    int opened, open_status;
    struct lp2p_stream *s;
    int rx_done, rx_status;
    size_t rx;
    int closed_a, closed_b;
};

static void oom_written(struct lp2p_stream *s, int status, void *data)
{
    (void)s;
    (void)status;
    free(data);
}

static void oom_echo_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                          size_t len)
{
    uint8_t *copy;
    if (status != 0) {
        lp2p_stream_close(s, NULL, NULL);
        return;
    }
    copy = malloc(len);
    memcpy(copy, buf, len);
    if (lp2p_stream_write(s, copy, len, oom_written, copy) != 0) {
        free(copy);
        lp2p_stream_reset(s);
        lp2p_stream_close(s, NULL, NULL);
    }
}

static void oom_echo_handler(struct lp2p_stream *s, void *data)
{
    (void)data;
    if (lp2p_stream_read_start(s, oom_echo_read) != 0) {
        lp2p_stream_close(s, NULL, NULL);
    }
}

static void net_connected(struct lp2p_host *h, int status,
                          const struct lp2p_peer_id *peer, void *data)
{
    struct net *n = data;
    (void)h;
    (void)peer;
    n->connected = 1;
    n->conn_status = status;
}

static void net_opened(struct lp2p_stream *s, int status, void *data)
{
    struct net *n = data;
    n->opened = 1;
    n->open_status = status;
    n->s = s;
}

static void net_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                     size_t len)
{
    struct net *n = lp2p_stream_data(s);
    (void)buf;
    if (status != 0) {
        n->rx_done = 1;
        n->rx_status = status;
        return;
    }
    n->rx += len;
}

static void net_closed_a(struct lp2p_host *h, void *data)
{
    (void)h;
    ((struct net *)data)->closed_a = 1;
}

static void net_closed_b(struct lp2p_host *h, void *data)
{
    (void)h;
    ((struct net *)data)->closed_b = 1;
}

static int both_closed(void *arg)
{
    struct net *n = arg;
    return n->closed_a && n->closed_b;
}

static const uint8_t payload[16] = "0123456789abcdef";

/* One run; returns 0 if the echo worked, else the first error. Fails the
 * test if something hangs or leaks. */
static int net_scenario(long fail_at, long *count)
{
    uv_loop_t loop;
    struct lp2p_host_config cfg;
    struct lp2p_host *a = NULL, *b = NULL;
    char la[LP2P_MULTIADDR_STRMAX], id[LP2P_PEER_ID_STRMAX];
    char addr[LP2P_MULTIADDR_STRMAX * 2];
    const char *protos[] = {"/oom/echo"};
    struct net n;
    int rv;
    memset(&n, 0, sizeof(n));
    test__oom_install(fail_at);
    uv_loop_init(&loop);
    lp2p_host_config_init(&cfg);
    cfg.handshake_timeout_ms = 1000;
    cfg.negotiate_timeout_ms = 1000;
    rv = lp2p_host_new(&a, &loop, &cfg);
    if (rv == 0) {
        rv = lp2p_host_new(&b, &loop, &cfg);
    }
    if (rv == 0) {
        rv = lp2p_host_set_handler(b, "/oom/echo", NULL, oom_echo_handler,
                                   NULL);
    }
    if (rv == 0) {
        rv = lp2p_host_listen(b, "/ip4/127.0.0.1/tcp/0");
    }
    if (rv == 0) {
        lp2p_host_listen_addr(b, 0, la, sizeof(la));
        lp2p_peer_id_to_string(lp2p_host_id(b), id, sizeof(id));
        snprintf(addr, sizeof(addr), "%s/p2p/%s", la, id);
        rv = lp2p_host_connect(a, addr, net_connected, &n);
        if (rv == 0) {
            ASSERT(th_run_until(&loop, &n.connected, 5000));
            rv = n.conn_status;
        }
    }
    if (rv == 0) {
        rv = lp2p_stream_open(a, lp2p_host_id(b), protos, 1, net_opened, &n);
        if (rv == 0) {
            ASSERT(th_run_until(&loop, &n.opened, 5000));
            rv = n.open_status;
        }
    }
    if (rv == 0) {
        lp2p_stream_set_data(n.s, &n);
        rv = lp2p_stream_read_start(n.s, net_read);
        if (rv == 0) {
            rv = lp2p_stream_write(n.s, payload, sizeof(payload), NULL, NULL);
        }
        if (rv == 0) {
            rv = lp2p_stream_close_write(n.s);
        }
        if (rv == 0) {
            ASSERT(th_run_until(&loop, &n.rx_done, 5000));
            rv = n.rx_status == LP2P_EEOF ? 0 : n.rx_status;
        }
        lp2p_stream_close(n.s, NULL, NULL);
    }
    if (a != NULL) {
        lp2p_host_close(a, net_closed_a, &n);
    } else {
        n.closed_a = 1;
    }
    if (b != NULL) {
        lp2p_host_close(b, net_closed_b, &n);
    } else {
        n.closed_b = 1;
    }
    ASSERT(th_run_until_fn(&loop, both_closed, &n, 10000));
    th_loop_close(&loop);
    if (count != NULL) {
        *count = test__oom_count();
    }
    if (test__oom_live() != 0) {
        test__fail(__FILE__, __LINE__, "allocation %ld failed: %ld blocks "
                   "left (status %s)", fail_at, test__oom_live(),
                   lp2p_errname(rv));
    }
    test__oom_remove();
    return rv;
}

TEST(host_oom, network_path)
{
    long total = 0, i, step, ok = 0, failed = 0;
    ASSERT_OK(net_scenario(0, &total));
    ASSERT(total > 50);
    step = th_valgrind() ? 11 : 1;
    if (getenv("OOM_ONLY") != NULL) {
        i = atol(getenv("OOM_ONLY"));
        total = i;
    } else {
        i = 1;
    }
    for (; i <= total; i += step) {
        if (getenv("OOM_TRACE")) fprintf(stderr, "fail_at %ld of %ld\n", i, total);
        if (net_scenario(i, NULL) == 0) {
            ok++;
        } else {
            failed++;
        }
    }
    ASSERT(failed > 0);
}
