/*
 * Soak: open and close 10,000 streams and 1,000 connections between two
 * hosts, then check that file descriptors and live allocations (counted
 * by the heap hook) are back to where they were. Under valgrind
 * (P2PRAFT_VALGRIND=1) the counts are divided by ten; the checks stay.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_harness.h"
#include "oom.h"
#include "test.h"

#define SOAK_PROTO "/soak/echo/1.0.0"
#define BATCH 100

/* Echo handler: echoes one small message, closes after EOF. */
struct soak_srv {
    uint8_t buf[64];
    size_t len;
};

static int srv_closed_count;

static void srv_closed(struct lp2p_stream *s, void *data)
{
    (void)s;
    free(data);
    srv_closed_count++;
}

static void srv_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                     size_t len)
{
    struct soak_srv *v = lp2p_stream_data(s);
    if (status != 0) {
        if (v->len > 0) {
            lp2p_stream_write(s, v->buf, v->len, NULL, NULL);
        }
        lp2p_stream_close(s, srv_closed, v);
        return;
    }
    if (v->len + len <= sizeof(v->buf)) {
        memcpy(v->buf + v->len, buf, len);
        v->len += len;
    }
}

static void srv_handler(struct lp2p_stream *s, void *data)
{
    struct soak_srv *v = calloc(1, sizeof(*v));
    (void)data;
    lp2p_stream_set_data(s, v);
    lp2p_stream_read_start(s, srv_read);
}

/* Client side: open, send 8 bytes, FIN, read the echo and EOF, close. */
struct soak {
    uv_loop_t loop;
    struct lp2p_host *a, *b;
    char addr_b[LP2P_MULTIADDR_STRMAX];
    int started, finished, failed, closed;
    int first_error;
};

struct soak_cli {
    struct soak *k;
    uint8_t msg[8];
    size_t got;
};

static void cli_closed(struct lp2p_stream *s, void *data)
{
    struct soak_cli *c = data;
    (void)s;
    c->k->closed++;
    free(c);
}

static void cli_done(struct lp2p_stream *s, struct soak_cli *c, int ok,
                     int status)
{
    c->k->finished++;
    if (!ok) {
        c->k->failed++;
        if (c->k->first_error == 0) {
            c->k->first_error = status ? status : LP2P_EPROTO;
        }
    }
    lp2p_stream_close(s, cli_closed, c);
}

static void cli_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                     size_t len)
{
    struct soak_cli *c = lp2p_stream_data(s);
    if (status != 0) {
        cli_done(s, c, status == LP2P_EEOF && c->got == 8, status);
        return;
    }
    if (c->got + len > 8 || memcmp(buf, c->msg + c->got, len) != 0) {
        lp2p_stream_read_stop(s);
        cli_done(s, c, 0, LP2P_EPROTO);
        return;
    }
    c->got += len;
}

static void cli_open(struct lp2p_stream *s, int status, void *data)
{
    struct soak_cli *c = data;
    if (status != 0) {
        c->k->finished++;
        c->k->failed++;
        c->k->closed++;
        if (c->k->first_error == 0) {
            c->k->first_error = status;
        }
        free(c);
        return;
    }
    lp2p_stream_set_data(s, c);
    if (lp2p_stream_read_start(s, cli_read) != 0 ||
        lp2p_stream_write(s, c->msg, 8, NULL, NULL) != 0 ||
        lp2p_stream_close_write(s) != 0) {
        lp2p_stream_read_stop(s);
        cli_done(s, c, 0, LP2P_ESTATE);
    }
}

static void start_stream(struct soak *k)
{
    const char *protos[] = {SOAK_PROTO};
    struct soak_cli *c = calloc(1, sizeof(*c));
    int i;
    c->k = k;
    for (i = 0; i < 8; i++) {
        c->msg[i] = (uint8_t)(k->started + i);
    }
    k->started++;
    ASSERT_OK(lp2p_stream_open(k->a, lp2p_host_id(k->b), protos, 1, cli_open,
                               c));
}

static int batch_done(void *arg)
{
    struct soak *k = arg;
    return k->closed == k->started && srv_closed_count == k->started;
}

struct conn_pred {
    struct soak *k;
};

static int no_conns(void *arg)
{
    struct soak *k = arg;
    return lp2p_host_conn_count(k->a) == 0 && lp2p_host_conn_count(k->b) == 0;
}

/* One stream end to end on a fresh connection, then disconnect. */
static void one_connection(struct soak *k)
{
    ASSERT_OK(th_connect(&k->loop, k->a, k->addr_b));
    start_stream(k);
    ASSERT(th_run_until_fn(&k->loop, batch_done, k, 10000));
    ASSERT_OK(lp2p_host_disconnect(k->a, lp2p_host_id(k->b)));
    ASSERT(th_run_until_fn(&k->loop, no_conns, k, 10000));
}

TEST(host_soak, streams_and_connections_return_to_baseline)
{
    struct soak k;
    int n_streams = th_valgrind() ? 1000 : 10000;
    int n_conns = th_valgrind() ? 100 : 1000;
    int fd0, fd1, i, j;
    long live1;
    memset(&k, 0, sizeof(k));
    srv_closed_count = 0;
    test__oom_install(0);
    uv_loop_init(&k.loop);
    /* libuv opens a reserve descriptor (/dev/null, for EMFILE) on a loop's
     * first listen and keeps it until the loop closes: let it happen
     * before the baseline. */
    th_host_close(&k.loop, th_host(&k.loop, NULL, NULL));
    fd0 = th_fd_count(); /* the loop's own descriptors included */
    k.a = th_host(&k.loop, NULL, NULL);
    k.b = th_host(&k.loop, NULL, k.addr_b);
    ASSERT_OK(lp2p_host_set_handler(k.b, SOAK_PROTO, NULL, srv_handler, NULL));
    /* Warm-up: the peerstores learn each other once. */
    one_connection(&k);
    /* Let deferred frees run. */
    for (i = 0; i < 5; i++) {
        uv_run(&k.loop, UV_RUN_NOWAIT);
    }
    fd1 = th_fd_count();
    live1 = test__oom_live();

    /* Streams, BATCH at a time, on one connection. */
    ASSERT_OK(th_connect(&k.loop, k.a, k.addr_b));
    for (i = 0; i < n_streams; i += BATCH) {
        for (j = 0; j < BATCH && i + j < n_streams; j++) {
            start_stream(&k);
        }
        ASSERT(th_run_until_fn(&k.loop, batch_done, &k, 20000));
        if (k.failed != 0) {
            test__fail(__FILE__, __LINE__, "%d of %d streams failed: %s",
                       k.failed, k.started, lp2p_strerror(k.first_error));
        }
    }
    ASSERT_EQ(k.finished, n_streams + 1);
    ASSERT_OK(lp2p_host_disconnect(k.a, lp2p_host_id(k.b)));
    ASSERT(th_run_until_fn(&k.loop, no_conns, &k, 10000));

    /* Connections, one after the other. */
    for (i = 0; i < n_conns; i++) {
        one_connection(&k);
    }
    ASSERT_EQ(k.failed, 0);
    for (i = 0; i < 5; i++) {
        uv_run(&k.loop, UV_RUN_NOWAIT);
    }
    ASSERT_EQ(th_fd_count(), fd1);
    ASSERT_EQ(test__oom_live(), live1);

    th_host_close(&k.loop, k.a);
    th_host_close(&k.loop, k.b);
    ASSERT_EQ(th_fd_count(), fd0);
    th_loop_close(&k.loop);
    ASSERT_EQ(test__oom_live(), 0);
    test__oom_remove();
}
