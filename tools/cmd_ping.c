/* p2praft ping MA [-c N] [-i SECONDS]: like `ipfs ping`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "testproto.h"

struct ping_ctx {
    uv_loop_t loop;
    struct lp2p_host *host;
    struct lp2p_peer_id peer;
    uv_timer_t timer;
    long count, sent, ok;
    uint64_t interval_ms;
    double total_ms;
    int failed;
    int closed;
};

static void on_host_closed(struct lp2p_host *h, void *data)
{
    (void)h;
    ((struct ping_ctx *)data)->closed = 1;
}

static void finish(struct ping_ctx *c)
{
    uv_close((uv_handle_t *)&c->timer, NULL);
    lp2p_host_close(c->host, on_host_closed, c);
}

static void send_ping(struct ping_ctx *c);

static void on_tick(uv_timer_t *t)
{
    send_ping(t->data);
}

static void on_pong(struct lp2p_host *h, int status, uint64_t rtt_ns,
                    void *data)
{
    struct ping_ctx *c = data;
    (void)h;
    if (status != 0) {
        cli_error("ping", "ping failed", status);
        c->failed = 1;
    } else {
        double ms = (double)rtt_ns / 1e6;
        printf("Pong received: time=%.2f ms\n", ms);
        fflush(stdout);
        c->ok++;
        c->total_ms += ms;
    }
    if (c->sent >= c->count || status == LP2P_ECLOSED) {
        if (c->ok > 0) {
            printf("Average latency: %.2fms\n", c->total_ms / (double)c->ok);
        }
        finish(c);
        return;
    }
    uv_timer_start(&c->timer, on_tick, c->interval_ms, 0);
}

static void send_ping(struct ping_ctx *c)
{
    int rv = lp2p_host_ping(c->host, &c->peer, on_pong, c);
    c->sent++;
    if (rv != 0) {
        cli_error("ping", "ping failed", rv);
        c->failed = 1;
        finish(c);
    }
}

static void on_connected(struct lp2p_host *h, int status,
                         const struct lp2p_peer_id *peer, void *data)
{
    struct ping_ctx *c = data;
    char id[LP2P_PEER_ID_STRMAX];
    (void)h;
    if (status != 0) {
        cli_error("ping", "cannot connect", status);
        c->failed = 1;
        finish(c);
        return;
    }
    c->peer = *peer;
    lp2p_peer_id_to_string(peer, id, sizeof(id));
    printf("PING %s.\n", id);
    fflush(stdout);
    send_ping(c);
}

static int run(int argc, char **argv)
{
    struct ping_ctx c;
    const char *ma = NULL;
    char *end;
    int i, rv;
    memset(&c, 0, sizeof(c));
    c.count = 10;
    c.interval_ms = 1000;
    for (i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "-n") == 0 ||
             strcmp(argv[i], "--count") == 0) && i + 1 < argc) {
            c.count = strtol(argv[++i], &end, 10);
            if (*end != '\0' || c.count <= 0) {
                fprintf(stderr, "p2praft ping: bad count '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "-i") == 0 && i + 1 < argc) {
            double s = strtod(argv[++i], &end);
            if (*end != '\0' || s < 0 || s > 3600) {
                fprintf(stderr, "p2praft ping: bad interval '%s'\n", argv[i]);
                return 2;
            }
            c.interval_ms = (uint64_t)(s * 1000);
        } else if (strcmp(argv[i], "-h") == 0 ||
                   strcmp(argv[i], "--help") == 0) {
            printf("usage: p2praft ping MA [-c N] [-i SECONDS]\n"
                   "Ping the peer at MA (/ip4|ip6|dns*/../tcp/../[p2p/ID]) "
                   "N times (default 10),\nSECONDS apart (default 1); print "
                   "each round trip. Exit 1 on any failure.\n");
            return 0;
        } else if (ma == NULL && argv[i][0] != '-') {
            ma = argv[i];
        } else {
            fprintf(stderr, "p2praft ping: unknown argument '%s'\n"
                            "usage: p2praft ping MA [-c N]\n", argv[i]);
            return 2;
        }
    }
    if (ma == NULL) {
        fprintf(stderr, "usage: p2praft ping MA [-c N]\n");
        return 2;
    }
    uv_loop_init(&c.loop);
    rv = lp2p_host_new(&c.host, &c.loop, NULL);
    if (rv != 0) {
        cli_error("ping", "cannot create a host", rv);
        return 1;
    }
    uv_timer_init(&c.loop, &c.timer);
    c.timer.data = &c;
    rv = lp2p_host_connect(c.host, ma, on_connected, &c);
    if (rv != 0) {
        cli_addr_error("ping", "dial", ma, rv);
        c.failed = 1;
        finish(&c);
    }
    uv_run(&c.loop, UV_RUN_DEFAULT);
    uv_loop_close(&c.loop);
    return c.failed || c.ok == 0 ? 1 : 0;
}

const struct cli_command cli_cmd_ping = {
    "ping", "ping a libp2p peer and print round-trip times", run};
