/* Streams between two hosts: echo with back-pressure, half-close, reset,
 * deadline, negotiation failure, matchers, stream limit, never-reading
 * peers, events, dial errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_harness.h"
#include "p2p/host.h"
#include "test.h"

#define ECHO_PROTO "/test/echo/1.0.0"
#define SINK_PROTO "/test/sink/1.0.0"

/* ---- echo handler: copies what it reads back, with back-pressure ---- */
struct echo {
    uint8_t *buf;
    size_t len;
    int writing, eof, closed;
};

static int echo_closes;

static void echo_closed(struct lp2p_stream *s, void *data)
{
    struct echo *e = data;
    (void)s;
    free(e->buf);
    free(e);
    echo_closes++;
}

static void echo_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                      size_t len);

static void echo_written(struct lp2p_stream *s, int status, void *data)
{
    struct echo *e = data;
    e->writing = 0;
    e->len = 0;
    if (status != 0 || e->eof) {
        if (!e->closed) {
            e->closed = 1;
            lp2p_stream_close(s, echo_closed, e);
        }
        return;
    }
    lp2p_stream_read_start(s, echo_read);
}

static void echo_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                      size_t len)
{
    struct echo *e = lp2p_stream_data(s);
    if (status != 0) {
        e->eof = 1;
        if (!e->writing && !e->closed) {
            e->closed = 1;
            lp2p_stream_close(s, echo_closed, e);
        }
        return;
    }
    /* One write in flight at a time: stop reading until it completes. */
    e->buf = realloc(e->buf, len);
    memcpy(e->buf, buf, len);
    e->len = len;
    e->writing = 1;
    lp2p_stream_read_stop(s);
    if (lp2p_stream_write(s, e->buf, len, echo_written, e) != 0) {
        e->writing = 0;
        e->closed = 1;
        lp2p_stream_close(s, echo_closed, e);
    }
}

static void echo_handler(struct lp2p_stream *s, void *data)
{
    struct echo *e = calloc(1, sizeof(*e));
    (void)data;
    lp2p_stream_set_data(s, e);
    lp2p_stream_read_start(s, echo_read);
}

/* ---- sink handler: accepts and never reads ---- */
static struct lp2p_stream *sunk[64];
static int n_sunk;

static void sink_handler(struct lp2p_stream *s, void *data)
{
    (void)data;
    sunk[n_sunk++] = s;
}

static void sink_release_all(void)
{
    int i;
    for (i = 0; i < n_sunk; i++) {
        lp2p_stream_close(sunk[i], NULL, NULL);
    }
    n_sunk = 0;
}

/* ---- client side ---- */
struct client {
    struct lp2p_stream *s;
    int opened, open_status;
    uint8_t *rx;
    size_t rx_len, rx_cap;
    int rx_status;    /* terminal read status */
    int writes_done, write_status;
    size_t written;   /* bytes whose write completed */
    int closed;       /* close callbacks seen */
};

static void on_open(struct lp2p_stream *s, int status, void *data)
{
    struct client *c = data;
    c->opened = 1;
    c->open_status = status;
    c->s = s;
    if (s != NULL) {
        lp2p_stream_set_data(s, c);
    }
}

static void on_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                    size_t len)
{
    struct client *c = lp2p_stream_data(s);
    if (status != 0) {
        c->rx_status = status;
        return;
    }
    if (c->rx_len + len > c->rx_cap) {
        c->rx_cap = (c->rx_len + len) * 2;
        c->rx = realloc(c->rx, c->rx_cap);
    }
    memcpy(c->rx + c->rx_len, buf, len);
    c->rx_len += len;
}

static void on_written(struct lp2p_stream *s, int status, void *data)
{
    struct client *c = data;
    (void)s;
    c->writes_done++;
    if (status != 0 && c->write_status == 0) {
        c->write_status = status;
    }
}

static void on_closed(struct lp2p_stream *s, void *data)
{
    struct client *c = data;
    (void)s;
    c->closed++;
}

struct pair {
    uv_loop_t loop;
    struct lp2p_host *a, *b;
    char addr_b[LP2P_MULTIADDR_STRMAX];
};

static void pair_up(struct pair *p, const struct lp2p_host_config *cfg_b)
{
    uv_loop_init(&p->loop);
    p->a = th_host(&p->loop, NULL, NULL);
    p->b = th_host(&p->loop, cfg_b, p->addr_b);
    ASSERT_OK(lp2p_host_set_handler(p->b, ECHO_PROTO, NULL, echo_handler, NULL));
    ASSERT_OK(lp2p_host_set_handler(p->b, SINK_PROTO, NULL, sink_handler, NULL));
    ASSERT_OK(th_connect(&p->loop, p->a, p->addr_b));
}

static void pair_down(struct pair *p)
{
    th_host_close(&p->loop, p->a);
    th_host_close(&p->loop, p->b);
    th_loop_close(&p->loop);
}

static void open_stream(struct pair *p, const char *proto, struct client *c)
{
    const char *protos[1];
    protos[0] = proto;
    memset(c, 0, sizeof(*c));
    ASSERT_OK(lp2p_stream_open(p->a, lp2p_host_id(p->b), protos, 1, on_open,
                               c));
    ASSERT(th_run_until(&p->loop, &c->opened, 5000));
}

static int rx_at_least(void *arg)
{
    struct client *c = arg;
    return c->rx_status != 0;
}

TEST(host_stream, echo_1mib_backpressure)
{
    struct pair p;
    struct client c;
    size_t total = 1 << 20, chunk = 100000, off;
    uint8_t *data = malloc(total);
    size_t i;
    int writes = 0;
    for (i = 0; i < total; i++) {
        data[i] = (uint8_t)(i * 7 + (i >> 11));
    }
    pair_up(&p, NULL);
    open_stream(&p, ECHO_PROTO, &c);
    ASSERT_OK(c.open_status);
    ASSERT_STR_EQ(lp2p_stream_protocol(c.s), ECHO_PROTO);
    ASSERT_OK(lp2p_stream_read_start(c.s, on_read));
    for (off = 0; off < total; off += chunk) {
        size_t n = total - off < chunk ? total - off : chunk;
        ASSERT_OK(lp2p_stream_write(c.s, data + off, n, on_written, &c));
        writes++;
    }
    /* Completions come only as the data moves: not all at once. */
    ASSERT(lp2p_stream_write_queue_size(c.s) > 0);
    ASSERT_OK(lp2p_stream_close_write(c.s));
    ASSERT(th_run_until_fn(&p.loop, rx_at_least, &c, 10000));
    ASSERT_EQ(c.rx_status, LP2P_EEOF);
    ASSERT_EQ(c.writes_done, writes);
    ASSERT_OK(c.write_status);
    ASSERT_EQ(c.rx_len, total);
    ASSERT_MEM_EQ(c.rx, data, total);
    lp2p_stream_close(c.s, on_closed, &c);
    ASSERT(th_run_until(&p.loop, &c.closed, 5000));
    ASSERT_EQ(c.closed, 1);
    pair_down(&p);
    ASSERT_EQ(c.closed, 1); /* exactly once */
    free(c.rx);
    free(data);
}

/* A write without a completion callback is handed on at once and
 * schedules nothing: a caller running the loop with UV_RUN_ONCE then
 * blocks until the answer, with no empty loop turn before it. */
static int rx_len_is(void *arg)
{
    struct client *c = arg;
    return c->rx_len >= 6;
}

TEST(host_stream, write_without_callback_schedules_nothing)
{
    struct pair p;
    struct client c;
    static const uint8_t msg[] = "abcdef";
    pair_up(&p, NULL);
    open_stream(&p, ECHO_PROTO, &c);
    ASSERT_OK(c.open_status);
    ASSERT_OK(lp2p_stream_read_start(c.s, on_read));
    uv_run(&p.loop, UV_RUN_NOWAIT); /* let earlier jobs run */
    ASSERT(lp2p__list_empty(&p.a->deferred));
    ASSERT_OK(lp2p_stream_write(c.s, msg, 3, NULL, NULL));
    ASSERT_OK(lp2p_stream_write(c.s, msg + 3, 3, NULL, NULL));
    ASSERT(lp2p__list_empty(&p.a->deferred));
    ASSERT_EQ(lp2p_stream_write_queue_size(c.s), 0);
    ASSERT(th_run_until_fn(&p.loop, rx_len_is, &c, 5000));
    ASSERT_MEM_EQ(c.rx, msg, 6);
    lp2p_stream_close(c.s, NULL, NULL);
    free(c.rx);
    pair_down(&p);
}

TEST(host_stream, half_close_both_ways)
{
    struct pair p;
    struct client c;
    static const uint8_t msg[] = "hello";
    pair_up(&p, NULL);
    open_stream(&p, ECHO_PROTO, &c);
    ASSERT_OK(lp2p_stream_read_start(c.s, on_read));
    ASSERT_OK(lp2p_stream_write(c.s, msg, 5, on_written, &c));
    ASSERT_OK(lp2p_stream_close_write(c.s));
    /* Writing after FIN is refused; reading goes on. */
    ASSERT_ERR(lp2p_stream_write(c.s, msg, 5, NULL, NULL), LP2P_ESTATE);
    ASSERT(th_run_until_fn(&p.loop, rx_at_least, &c, 5000));
    ASSERT_EQ(c.rx_status, LP2P_EEOF);
    ASSERT_EQ(c.rx_len, 5);
    ASSERT_MEM_EQ(c.rx, msg, 5);
    lp2p_stream_close(c.s, on_closed, &c);
    ASSERT(th_run_until(&p.loop, &c.closed, 5000));
    pair_down(&p);
    free(c.rx);
}

TEST(host_stream, writev_in_order_one_callback)
{
    struct pair p;
    struct client c;
    struct lp2p_iovec iov[4];
    size_t big_len = 200000, i, total;
    uint8_t *big = malloc(big_len), *want;
    for (i = 0; i < big_len; i++) {
        big[i] = (uint8_t)(i * 13);
    }
    iov[0].base = (const uint8_t *)"he";
    iov[0].len = 2;
    iov[1].base = NULL; /* empty pieces are fine */
    iov[1].len = 0;
    iov[2].base = (const uint8_t *)"llo";
    iov[2].len = 3;
    iov[3].base = big;
    iov[3].len = big_len;
    total = 5 + big_len;
    pair_up(&p, NULL);
    open_stream(&p, ECHO_PROTO, &c);
    ASSERT_OK(lp2p_stream_read_start(c.s, on_read));
    ASSERT_ERR(lp2p_stream_writev(c.s, iov, 0, on_written, &c), LP2P_EINVAL);
    ASSERT_OK(lp2p_stream_writev(c.s, iov, 4, on_written, &c));
    ASSERT_EQ(c.writes_done, 0); /* never inside the call */
    ASSERT_OK(lp2p_stream_close_write(c.s));
    ASSERT_ERR(lp2p_stream_writev(c.s, iov, 1, NULL, NULL), LP2P_ESTATE);
    ASSERT(th_run_until_fn(&p.loop, rx_at_least, &c, 10000));
    ASSERT_EQ(c.rx_status, LP2P_EEOF);
    ASSERT_EQ(c.writes_done, 1);
    ASSERT_OK(c.write_status);
    ASSERT_EQ(c.rx_len, total);
    want = malloc(total);
    memcpy(want, "hello", 5);
    memcpy(want + 5, big, big_len);
    ASSERT_MEM_EQ(c.rx, want, total);
    lp2p_stream_close(c.s, on_closed, &c);
    ASSERT(th_run_until(&p.loop, &c.closed, 5000));
    pair_down(&p);
    free(want);
    free(big);
    free(c.rx);
}

/* ---- reset ---- */
static void reset_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                       size_t len)
{
    (void)status;
    (void)buf;
    (void)len;
    lp2p_stream_reset(s);
    lp2p_stream_close(s, NULL, NULL);
}

/* Resets the stream as soon as data (or EOF) arrives. */
static void reset_handler(struct lp2p_stream *s, void *data)
{
    (void)data;
    lp2p_stream_read_start(s, reset_read);
}

TEST(host_stream, reset_by_peer)
{
    struct pair p;
    struct client c;
    static const uint8_t msg[] = "x";
    pair_up(&p, NULL);
    ASSERT_OK(lp2p_host_set_handler(p.b, "/test/reset", NULL, reset_handler,
                                    NULL));
    open_stream(&p, "/test/reset", &c);
    ASSERT_OK(c.open_status);
    ASSERT_OK(lp2p_stream_read_start(c.s, on_read));
    ASSERT_OK(lp2p_stream_write(c.s, msg, 1, NULL, NULL));
    ASSERT(th_run_until_fn(&p.loop, rx_at_least, &c, 5000));
    ASSERT_EQ(c.rx_status, LP2P_ERESET);
    ASSERT_ERR(lp2p_stream_write(c.s, msg, 1, NULL, NULL), LP2P_ESTATE);
    lp2p_stream_close(c.s, on_closed, &c);
    ASSERT(th_run_until(&p.loop, &c.closed, 5000));
    pair_down(&p);
}

TEST(host_stream, local_reset_fails_writes)
{
    struct pair p;
    struct client c;
    size_t total = 4 << 20;
    uint8_t *data = calloc(1, total);
    pair_up(&p, NULL);
    open_stream(&p, SINK_PROTO, &c);
    ASSERT_OK(lp2p_stream_write(c.s, data, total, on_written, &c));
    lp2p_stream_reset(c.s);
    ASSERT_EQ(c.writes_done, 0); /* never inside the call */
    ASSERT(th_run_until(&p.loop, &c.writes_done, 5000));
    ASSERT_EQ(c.write_status, LP2P_ECANCELED);
    lp2p_stream_close(c.s, on_closed, &c);
    ASSERT(th_run_until(&p.loop, &c.closed, 5000));
    sink_release_all();
    pair_down(&p);
    free(data);
}

TEST(host_stream, deadline)
{
    struct pair p;
    struct client c;
    uint64_t t0;
    pair_up(&p, NULL);
    open_stream(&p, SINK_PROTO, &c);
    ASSERT_OK(lp2p_stream_read_start(c.s, on_read));
    t0 = uv_now(&p.loop);
    ASSERT_OK(lp2p_stream_set_deadline(c.s, 100));
    ASSERT(th_run_until_fn(&p.loop, rx_at_least, &c, 5000));
    ASSERT_EQ(c.rx_status, LP2P_ETIMEDOUT);
    ASSERT(uv_now(&p.loop) - t0 >= 100);
    lp2p_stream_close(c.s, on_closed, &c);
    ASSERT(th_run_until(&p.loop, &c.closed, 5000));
    /* The peer saw a reset: its sink stream is still held, release it. */
    sink_release_all();
    pair_down(&p);
}

TEST(host_stream, no_common_protocol)
{
    struct pair p;
    struct client c;
    pair_up(&p, NULL);
    open_stream(&p, "/not/served/1.0.0", &c);
    ASSERT_EQ(c.open_status, LP2P_ENOPROTO);
    ASSERT(c.s == NULL);
    /* The connection survives a refused protocol. */
    open_stream(&p, ECHO_PROTO, &c);
    ASSERT_OK(c.open_status);
    lp2p_stream_close(c.s, on_closed, &c);
    ASSERT(th_run_until(&p.loop, &c.closed, 5000));
    pair_down(&p);
}

static int match_prefix(const char *proto, void *data)
{
    return strncmp(proto, (const char *)data, strlen(data)) == 0;
}

TEST(host_stream, matcher_and_preference)
{
    struct pair p;
    struct client c;
    const char *protos[] = {"/nope/1", "/test/echo/2.5.0", ECHO_PROTO};
    pair_up(&p, NULL);
    ASSERT_OK(lp2p_host_set_handler(p.b, "/test/echo/2.0.0", match_prefix,
                                    echo_handler, (void *)"/test/echo/2."));
    memset(&c, 0, sizeof(c));
    ASSERT_OK(lp2p_stream_open(p.a, lp2p_host_id(p.b), protos, 3, on_open,
                               &c));
    ASSERT(th_run_until(&p.loop, &c.opened, 5000));
    ASSERT_OK(c.open_status);
    ASSERT_STR_EQ(lp2p_stream_protocol(c.s), "/test/echo/2.5.0");
    lp2p_stream_close(c.s, on_closed, &c);
    ASSERT(th_run_until(&p.loop, &c.closed, 5000));
    ASSERT_OK(lp2p_host_remove_handler(p.b, "/test/echo/2.0.0"));
    ASSERT_ERR(lp2p_host_remove_handler(p.b, "/test/echo/2.0.0"),
               LP2P_ENOTFOUND);
    pair_down(&p);
}

/* A peer that never reads: completions stop once the window and the
 * queues are full, so the writer's memory stays bounded. */
TEST(host_stream, never_reading_peer_bounds_memory)
{
    struct pair p;
    struct client c;
    size_t chunk = 64 * 1024, i, n = 64; /* 4 MiB offered */
    uint8_t *data = calloc(1, chunk);
    size_t completed;
    pair_up(&p, NULL);
    open_stream(&p, SINK_PROTO, &c);
    for (i = 0; i < n; i++) {
        ASSERT_OK(lp2p_stream_write(c.s, data, chunk, on_written, &c));
    }
    /* Let everything that can move, move. */
    ASSERT(!th_run_until(&p.loop, &c.write_status, 300));
    completed = (size_t)c.writes_done * chunk;
    /* Peer window 256 KiB + our send queue 256 KiB (+ one chunk). */
    ASSERT(completed <= 512 * 1024 + chunk);
    ASSERT(completed >= 256 * 1024);
    ASSERT(lp2p_stream_write_queue_size(c.s) >= n * chunk - completed - chunk);
    lp2p_stream_reset(c.s);
    lp2p_stream_close(c.s, on_closed, &c);
    ASSERT(th_run_until(&p.loop, &c.closed, 5000));
    ASSERT_EQ(c.writes_done, (int)n);
    sink_release_all();
    pair_down(&p);
    free(data);
}

TEST(host_stream, inbound_stream_limit)
{
    struct pair p;
    struct lp2p_host_config cfg;
    struct client c[8];
    int i, ok = 0, refused = 0;
    lp2p_host_config_init(&cfg);
    cfg.max_inbound_streams = 4;
    pair_up(&p, &cfg);
    for (i = 0; i < 8; i++) {
        const char *protos[] = {SINK_PROTO};
        memset(&c[i], 0, sizeof(c[i]));
        ASSERT_OK(lp2p_stream_open(p.a, lp2p_host_id(p.b), protos, 1, on_open,
                                   &c[i]));
    }
    for (i = 0; i < 8; i++) {
        ASSERT(th_run_until(&p.loop, &c[i].opened, 5000));
        if (c[i].open_status == 0) {
            ok++;
        } else {
            refused++;
        }
    }
    ASSERT_EQ(ok, 4);
    ASSERT_EQ(refused, 4);
    ASSERT_EQ(n_sunk, 4);
    for (i = 0; i < 8; i++) {
        if (c[i].s != NULL) {
            lp2p_stream_close(c[i].s, NULL, NULL);
        }
    }
    sink_release_all();
    /* The connection is still usable. */
    open_stream(&p, ECHO_PROTO, &c[0]);
    ASSERT_OK(c[0].open_status);
    lp2p_stream_close(c[0].s, NULL, NULL);
    pair_down(&p);
}

/* ---- connection events ---- */
struct events {
    int connected, disconnected;
    int last_inbound;
};

static void on_event(struct lp2p_host *h, enum lp2p_conn_event ev,
                     const struct lp2p_conn_info *info, int status,
                     void *data)
{
    struct events *e = data;
    (void)h;
    (void)status;
    if (ev == LP2P_CONN_CONNECTED) {
        e->connected++;
    } else {
        e->disconnected++;
    }
    e->last_inbound = info->inbound;
}

TEST(host, events_and_disconnect)
{
    uv_loop_t loop;
    struct lp2p_host *a, *b;
    char addr_b[LP2P_MULTIADDR_STRMAX];
    struct events ea, eb;
    memset(&ea, 0, sizeof(ea));
    memset(&eb, 0, sizeof(eb));
    uv_loop_init(&loop);
    a = th_host(&loop, NULL, NULL);
    b = th_host(&loop, NULL, addr_b);
    ASSERT_OK(lp2p_host_observe(a, on_event, &ea));
    ASSERT_OK(lp2p_host_observe(b, on_event, &eb));
    ASSERT_ERR(lp2p_host_observe(b, on_event, &eb), LP2P_EEXIST);
    ASSERT_OK(th_connect(&loop, a, addr_b));
    ASSERT(th_run_until(&loop, &eb.connected, 5000));
    ASSERT_EQ(ea.connected, 1);
    ASSERT_EQ(ea.last_inbound, 0);
    ASSERT_EQ(eb.last_inbound, 1);
    /* Dialing again reuses the connection. */
    ASSERT_OK(th_connect(&loop, a, addr_b));
    ASSERT_EQ(ea.connected, 1);
    ASSERT_EQ(lp2p_host_conn_count(a), 1);
    ASSERT_OK(lp2p_host_disconnect(a, lp2p_host_id(b)));
    ASSERT_EQ(ea.disconnected, 1);
    ASSERT(th_run_until(&loop, &eb.disconnected, 5000));
    ASSERT(!lp2p_host_is_connected(a, lp2p_host_id(b)));
    ASSERT_OK(lp2p_host_unobserve(a, on_event, &ea));
    th_host_close(&loop, a);
    th_host_close(&loop, b);
    th_loop_close(&loop);
}

TEST(host, dial_errors)
{
    uv_loop_t loop;
    struct lp2p_host *a, *b, *c;
    char addr_b[LP2P_MULTIADDR_STRMAX], addr_c[LP2P_MULTIADDR_STRMAX];
    char wrong[LP2P_MULTIADDR_STRMAX * 2], la[LP2P_MULTIADDR_STRMAX];
    char idc[LP2P_PEER_ID_STRMAX];
    uv_loop_init(&loop);
    a = th_host(&loop, NULL, NULL);
    b = th_host(&loop, NULL, addr_b);
    c = th_host(&loop, NULL, addr_c);
    /* Bad multiaddrs are refused at once. */
    ASSERT_ERR(lp2p_host_connect(a, "/ip4/1.2.3/tcp/1", NULL, NULL),
               LP2P_EBADADDR);
    ASSERT_ERR(lp2p_host_connect(a, "/udp/1", NULL, NULL), LP2P_EBADADDR);
    ASSERT_ERR(lp2p_host_connect(a, "ip4/127.0.0.1/tcp/1", NULL, NULL),
               LP2P_EBADADDR);
    /* B's address with C's peer ID: the Noise identity does not match. */
    ASSERT_OK(lp2p_host_listen_addr(b, 0, la, sizeof(la)));
    ASSERT_OK(lp2p_peer_id_to_string(lp2p_host_id(c), idc, sizeof(idc)));
    snprintf(wrong, sizeof(wrong), "%s/p2p/%s", la, idc);
    ASSERT_ERR(th_connect(&loop, a, wrong), LP2P_EPEERID);
    ASSERT(!lp2p_host_is_connected(a, lp2p_host_id(c)));
    th_host_close(&loop, b);
    /* B is gone: connection refused. */
    ASSERT_ERR(th_connect(&loop, a, addr_b), LP2P_ECONNREFUSED);
    /* Unresolvable name. */
    ASSERT_ERR(th_connect(&loop, a, "/dns4/no-such-host.invalid/tcp/1"),
               LP2P_EUNREACHABLE);
    /* /dns4/localhost resolves through uv_getaddrinfo. */
    {
        char dns[LP2P_MULTIADDR_STRMAX * 2];
        const char *port = strstr(addr_c, "/tcp/");
        snprintf(dns, sizeof(dns), "/dns4/localhost%s", port);
        ASSERT_OK(th_connect(&loop, a, dns));
        ASSERT(lp2p_host_is_connected(a, lp2p_host_id(c)));
    }
    th_host_close(&loop, a);
    th_host_close(&loop, c);
    th_loop_close(&loop);
}

/* Both hosts dial each other at once: each ends with one usable
 * connection, the same one on both sides, and streams work both ways. */
struct sim {
    int done, status;
};

static void on_sim(struct lp2p_host *h, int status,
                   const struct lp2p_peer_id *peer, void *data)
{
    struct sim *s = data;
    (void)h;
    (void)peer;
    s->done = 1;
    s->status = status;
}

static int both_done(void *arg)
{
    struct sim *s = arg;
    return s[0].done && s[1].done;
}

static int one_conn_each(void *arg)
{
    struct lp2p_host **h = arg;
    return lp2p_host_conn_count(h[0]) == 1 && lp2p_host_conn_count(h[1]) == 1;
}

TEST(host, simultaneous_dial)
{
    uv_loop_t loop;
    struct lp2p_host *a, *b;
    char addr_a[LP2P_MULTIADDR_STRMAX], addr_b[LP2P_MULTIADDR_STRMAX];
    struct sim s[2];
    struct client c;
    const char *protos[] = {ECHO_PROTO};
    static const uint8_t msg[] = "sim";
    int round;
    uv_loop_init(&loop);
    for (round = 0; round < 3; round++) {
        memset(s, 0, sizeof(s));
        a = th_host(&loop, NULL, addr_a);
        b = th_host(&loop, NULL, addr_b);
        ASSERT_OK(lp2p_host_set_handler(a, ECHO_PROTO, NULL, echo_handler,
                                        NULL));
        ASSERT_OK(lp2p_host_set_handler(b, ECHO_PROTO, NULL, echo_handler,
                                        NULL));
        ASSERT_OK(lp2p_host_connect(a, addr_b, on_sim, &s[0]));
        ASSERT_OK(lp2p_host_connect(b, addr_a, on_sim, &s[1]));
        ASSERT(th_run_until_fn(&loop, both_done, s, 10000));
        ASSERT_OK(s[0].status);
        ASSERT_OK(s[1].status);
        ASSERT(lp2p_host_is_connected(a, lp2p_host_id(b)));
        ASSERT(lp2p_host_is_connected(b, lp2p_host_id(a)));
        /* Streams both ways. */
        memset(&c, 0, sizeof(c));
        ASSERT_OK(lp2p_stream_open(a, lp2p_host_id(b), protos, 1, on_open,
                                   &c));
        ASSERT(th_run_until(&loop, &c.opened, 5000));
        ASSERT_OK(c.open_status);
        ASSERT_OK(lp2p_stream_read_start(c.s, on_read));
        ASSERT_OK(lp2p_stream_write(c.s, msg, 3, NULL, NULL));
        ASSERT_OK(lp2p_stream_close_write(c.s));
        ASSERT(th_run_until_fn(&loop, rx_at_least, &c, 5000));
        ASSERT_EQ(c.rx_status, LP2P_EEOF);
        ASSERT_EQ(c.rx_len, 3);
        lp2p_stream_close(c.s, NULL, NULL);
        free(c.rx);
        memset(&c, 0, sizeof(c));
        ASSERT_OK(lp2p_stream_open(b, lp2p_host_id(a), protos, 1, on_open,
                                   &c));
        ASSERT(th_run_until(&loop, &c.opened, 5000));
        ASSERT_OK(c.open_status);
        lp2p_stream_close(c.s, NULL, NULL);
        /* A superseded connection drains and goes: one each remains. */
        ASSERT(th_run_until_fn(&loop, one_conn_each, (struct lp2p_host *[]){a, b},
                               5000));
        ASSERT(lp2p_host_is_connected(a, lp2p_host_id(b)));
        th_host_close(&loop, a);
        th_host_close(&loop, b);
    }
    th_loop_close(&loop);
}

static int no_conn(void *arg)
{
    return lp2p_host_conn_count(arg) == 0;
}

TEST(host, idle_timeout)
{
    uv_loop_t loop;
    struct lp2p_host *a, *b;
    struct lp2p_host_config cfg;
    char addr_b[LP2P_MULTIADDR_STRMAX];
    struct client c;
    const char *protos[] = {SINK_PROTO};
    uint64_t t0;
    uv_loop_init(&loop);
    lp2p_host_config_init(&cfg);
    cfg.idle_timeout_ms = 150;
    a = th_host(&loop, &cfg, NULL);
    b = th_host(&loop, NULL, addr_b);
    ASSERT_OK(lp2p_host_set_handler(b, SINK_PROTO, NULL, sink_handler, NULL));
    ASSERT_OK(th_connect(&loop, a, addr_b));
    /* An open stream keeps the connection. */
    memset(&c, 0, sizeof(c));
    ASSERT_OK(lp2p_stream_open(a, lp2p_host_id(b), protos, 1, on_open, &c));
    ASSERT(th_run_until(&loop, &c.opened, 5000));
    ASSERT_OK(c.open_status);
    ASSERT(!th_run_until_fn(&loop, no_conn, a, 400));
    lp2p_stream_close(c.s, NULL, NULL);
    sink_release_all();
    t0 = uv_now(&loop);
    ASSERT(th_run_until_fn(&loop, no_conn, a, 5000));
    ASSERT(uv_now(&loop) - t0 >= 100);
    ASSERT(th_run_until_fn(&loop, no_conn, b, 5000));
    th_host_close(&loop, a);
    th_host_close(&loop, b);
    th_loop_close(&loop);
}
