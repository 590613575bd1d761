/* Allocation failures in host set-up and tear-down: every failing run must
 * return an error and free everything (test__oom_sweep). */
#include <string.h>

#include "host_harness.h"
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
