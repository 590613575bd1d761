/* p2praft host [--listen MA]... [-k FILE] [--busy-poll-us N]: a libp2p host serving ping,
 * identify and the interop test protocols until SIGINT or SIGTERM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "testproto.h"

#define MAX_LISTEN 16

static void on_closed(struct lp2p_host *h, void *data)
{
    (void)h;
    *(int *)data = 1;
}

static uv_signal_t sig_int, sig_term;

static void on_signal(uv_signal_t *sig, int signum)
{
    struct lp2p_host *h = sig->data;
    (void)signum;
    /* Both handlers go, so the loop ends once the host has closed. */
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
    lp2p_host_close(h, on_closed, sig->loop->data);
}

static int run(int argc, char **argv)
{
    const char *listen[MAX_LISTEN];
    size_t n_listen = 0, i;
    const char *keyfile = NULL;
    struct lp2p_host_config cfg;
    struct lp2p_host *host;
    struct lp2p_key key;
    uv_loop_t loop;
    char id[LP2P_PEER_ID_STRMAX], addr[LP2P_MULTIADDR_STRMAX];
    uint32_t busy_poll_us = 0;
    int closed = 0, rv;
    int a;
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--listen") == 0 && a + 1 < argc) {
            if (n_listen == MAX_LISTEN) {
                fprintf(stderr, "p2praft host: at most %d --listen\n",
                        MAX_LISTEN);
                return 2;
            }
            listen[n_listen++] = argv[++a];
        } else if ((strcmp(argv[a], "-k") == 0 ||
                    strcmp(argv[a], "--key") == 0) && a + 1 < argc) {
            keyfile = argv[++a];
        } else if (strcmp(argv[a], "--busy-poll-us") == 0 && a + 1 < argc) {
            if (cli_busy_poll_us(argv[++a], &busy_poll_us) != 0) {
                fprintf(stderr, "p2praft host: --busy-poll-us wants 0 to %u, "
                                "not '%s'\n", LP2P_BUSY_POLL_US_MAX, argv[a]);
                return 2;
            }
        } else if (strcmp(argv[a], "-h") == 0 ||
                   strcmp(argv[a], "--help") == 0) {
            printf("usage: p2praft host [--listen MA]... [-k FILE] "
                   "[--busy-poll-us N]\n"
                   "Serve ping, identify, %s and %s.\n"
                   "Prints every listen address ending in /p2p/<id>, one "
                   "per line, then serves\nuntil SIGINT or SIGTERM. Default "
                   "listen address /ip4/127.0.0.1/tcp/0; without\n-k a fresh "
                   "identity is used. --busy-poll-us N: after network "
                   "activity, keep the\nloop polling without sleeping for N "
                   "us (0 = off, the default; at most 1000000).\n",
                   CLI_ECHO_PROTOCOL, CLI_SINK_PROTOCOL);
            return 0;
        } else {
            fprintf(stderr, "p2praft host: unknown argument '%s'\n"
                            "usage: p2praft host [--listen MA]... [-k FILE] "
                            "[--busy-poll-us N]\n",
                    argv[a]);
            return 2;
        }
    }
    /* A server says why it refuses things unless told otherwise. */
    if (getenv("P2PRAFT_LOG") == NULL) {
        lp2p_log_set(LP2P_LOG_WARN, NULL, NULL);
    }
    if (n_listen == 0) {
        listen[n_listen++] = "/ip4/127.0.0.1/tcp/0";
    }
    if (cli_load_key(keyfile, &key) != 0) {
        return 1;
    }
    uv_loop_init(&loop);
    loop.data = &closed;
    lp2p_host_config_init(&cfg);
    cfg.key = &key;
    cfg.busy_poll_us = busy_poll_us;
    rv = lp2p_host_new(&host, &loop, &cfg);
    lp2p_key_wipe(&key);
    if (rv != 0) {
        cli_error("host", "cannot create the host", rv);
        uv_loop_close(&loop);
        return 1;
    }
    rv = cli_serve_test_protocols(host);
    for (i = 0; rv == 0 && i < n_listen; i++) {
        rv = lp2p_host_listen(host, listen[i]);
        if (rv != 0) {
            cli_addr_error("host", "listen on", listen[i], rv);
        }
    }
    if (rv != 0) {
        lp2p_host_close(host, on_closed, &closed);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    lp2p_peer_id_to_string(lp2p_host_id(host), id, sizeof(id));
    for (i = 0; lp2p_host_listen_addr(host, i, addr, sizeof(addr)) == 0; i++) {
        printf("%s/p2p/%s\n", addr, id);
    }
    fflush(stdout);
    uv_signal_init(&loop, &sig_int);
    uv_signal_init(&loop, &sig_term);
    sig_int.data = host;
    sig_term.data = host;
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return closed ? 0 : 1;
}

const struct cli_command cli_cmd_host = {
    "host", "run a libp2p host (ping, identify, test protocols)", run};
