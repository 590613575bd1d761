/* Two hosts on 127.0.0.1: connect, ping, identify, echo streams. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

struct id_wait {
    int done, status;
    char agent[64], pv[32], observed[LP2P_MULTIADDR_STRMAX];
    int has_ping, has_id, has_echo;
    size_t n_addrs;
    char addr0[LP2P_MULTIADDR_STRMAX];
    uint8_t pub[32];
};

static void on_identify(struct lp2p_host *h, int status,
                        const struct lp2p_identify_info *info, void *data)
{
    struct id_wait *w = data;
    size_t i;
    (void)h;
    w->done = 1;
    w->status = status;
    if (status != 0) {
        return;
    }
    snprintf(w->agent, sizeof(w->agent), "%s", info->agent_version);
    snprintf(w->pv, sizeof(w->pv), "%s", info->protocol_version);
    snprintf(w->observed, sizeof(w->observed), "%s",
             info->observed_addr ? info->observed_addr : "");
    for (i = 0; i < info->n_protocols; i++) {
        w->has_ping |= strcmp(info->protocols[i], LP2P_PING_PROTOCOL) == 0;
        w->has_id |= strcmp(info->protocols[i], LP2P_IDENTIFY_PROTOCOL) == 0;
        w->has_echo |= strcmp(info->protocols[i], "/x/echo") == 0;
    }
    w->n_addrs = info->n_listen_addrs;
    if (w->n_addrs > 0) {
        snprintf(w->addr0, sizeof(w->addr0), "%s", info->listen_addrs[0]);
    }
    memcpy(w->pub, info->pubkey, 32);
}

static void dummy_handler(struct lp2p_stream *s, void *data)
{
    (void)data;
    lp2p_stream_close(s, NULL, NULL);
}

TEST(host, identify)
{
    uv_loop_t loop;
    struct lp2p_host *a, *b;
    char addr_b[LP2P_MULTIADDR_STRMAX], la[LP2P_MULTIADDR_STRMAX];
    char local[LP2P_MULTIADDR_STRMAX];
    struct id_wait w;
    struct lp2p_key kb;
    const char *agent;
    const char *const *protos;
    size_t n;
    uint8_t pub[32];
    memset(&w, 0, sizeof(w));
    uv_loop_init(&loop);
    a = th_host(&loop, NULL, NULL);
    b = th_host(&loop, NULL, addr_b);
    ASSERT_OK(lp2p_host_set_handler(b, "/x/echo", NULL, dummy_handler, NULL));
    ASSERT_OK(th_connect(&loop, a, addr_b));
    ASSERT_OK(lp2p_host_identify(a, lp2p_host_id(b), on_identify, &w));
    ASSERT(th_run_until(&loop, &w.done, 5000));
    ASSERT_OK(w.status);
    ASSERT_STR_EQ(w.agent, "p2praft/" LP2P_VERSION);
    ASSERT_STR_EQ(w.pv, "ipfs/0.1.0");
    ASSERT(w.has_ping && w.has_id && w.has_echo);
    ASSERT_EQ(w.n_addrs, 1);
    ASSERT_OK(lp2p_host_listen_addr(b, 0, la, sizeof(la)));
    ASSERT_STR_EQ(w.addr0, la);
    /* B saw A's side of the connection: 127.0.0.1 and A's local port. */
    ASSERT(strncmp(w.observed, "/ip4/127.0.0.1/tcp/", 19) == 0);
    (void)local;
    lp2p_host_key(b, &kb);
    ASSERT_MEM_EQ(w.pub, kb.pub, 32);
    lp2p_key_wipe(&kb);
    /* The peerstore remembers it. */
    ASSERT_OK(lp2p_peerstore_identity(a, lp2p_host_id(b), &agent, &protos, &n));
    ASSERT_STR_EQ(agent, "p2praft/" LP2P_VERSION);
    ASSERT(n >= 3);
    ASSERT_OK(lp2p_peerstore_pubkey(a, lp2p_host_id(b), pub));
    ASSERT_MEM_EQ(pub, w.pub, 32);
    th_host_close(&loop, a);
    th_host_close(&loop, b);
    th_loop_close(&loop);
}

TEST(host, ip6_and_listen_addrs)
{
    uv_loop_t loop;
    struct lp2p_host *a, *b;
    char la[LP2P_MULTIADDR_STRMAX], dial[LP2P_MULTIADDR_STRMAX * 2];
    char id[LP2P_PEER_ID_STRMAX];
    uv_loop_init(&loop);
    a = th_host(&loop, NULL, NULL);
    ASSERT_OK(lp2p_host_new(&b, &loop, NULL));
    ASSERT_OK(lp2p_host_listen(b, "/ip6/::1/tcp/0"));
    ASSERT_OK(lp2p_host_listen(b, "/ip4/127.0.0.1/tcp/0"));
    ASSERT_ERR(lp2p_host_listen(b, "/dns4/localhost/tcp/0"), LP2P_EBADADDR);
    ASSERT_ERR(lp2p_host_listen(b, "/ip4/127.0.0.1/udp/0"), LP2P_EBADADDR);
    ASSERT_EQ(lp2p_host_listen_count(b), 2);
    ASSERT_OK(lp2p_host_listen_addr(b, 0, la, sizeof(la)));
    ASSERT(strncmp(la, "/ip6/::1/tcp/", 13) == 0);
    ASSERT(strcmp(la, "/ip6/::1/tcp/0") != 0); /* the bound port */
    ASSERT_ERR(lp2p_host_listen_addr(b, 2, la, sizeof(la)), LP2P_ENOTFOUND);
    ASSERT_ERR(lp2p_host_listen_addr(b, 0, la, 5), LP2P_EOVERFLOW);
    ASSERT_OK(lp2p_host_listen_addr(b, 0, la, sizeof(la)));
    lp2p_peer_id_to_string(lp2p_host_id(b), id, sizeof(id));
    snprintf(dial, sizeof(dial), "%s/p2p/%s", la, id);
    ASSERT_OK(th_connect(&loop, a, dial));
    /* The dialed address went to the peerstore. */
    ASSERT_OK(lp2p_peerstore_addr(a, lp2p_host_id(b), 0, dial, sizeof(dial)));
    ASSERT_STR_EQ(dial, la);
    th_host_close(&loop, a);
    th_host_close(&loop, b);
    th_loop_close(&loop);
}

TEST(host, peerstore_ttl)
{
    uv_loop_t loop;
    struct lp2p_host *a;
    struct lp2p_key k;
    struct lp2p_peer_id p;
    char out[LP2P_MULTIADDR_STRMAX];
    uint8_t pub[32];
    uv_loop_init(&loop);
    ASSERT_OK(lp2p_host_new(&a, &loop, NULL));
    ASSERT_OK(lp2p_key_generate(&k));
    ASSERT_OK(lp2p_peer_id_from_key(&k, &p));
    ASSERT_ERR(lp2p_peerstore_addr(a, &p, 0, out, sizeof(out)),
               LP2P_ENOTFOUND);
    ASSERT_OK(lp2p_peerstore_add_addr(a, &p, "/ip4/10.0.0.1/tcp/1", 50));
    ASSERT_OK(lp2p_peerstore_add_addr(a, &p, "/dns4/example.com/tcp/2",
                                      LP2P_TTL_PERMANENT));
    ASSERT_ERR(lp2p_peerstore_add_addr(a, &p, "/ip4/1.2.3.4/udp/1", 1000),
               LP2P_EBADADDR);
    ASSERT_ERR(lp2p_peerstore_add_addr(a, lp2p_host_id(a),
                                       "/ip4/1.2.3.4/tcp/1/p2p/"
                                       "12D3KooWJpatNwRu5TDYbdg3PNREA9XinY41"
                                       "rou7c8eCn9cvxgGF", 1000),
               LP2P_EPEERID);
    ASSERT_OK(lp2p_peerstore_addr(a, &p, 0, out, sizeof(out)));
    ASSERT_STR_EQ(out, "/ip4/10.0.0.1/tcp/1");
    ASSERT_OK(lp2p_peerstore_addr(a, &p, 1, out, sizeof(out)));
    ASSERT_STR_EQ(out, "/dns4/example.com/tcp/2");
    /* An identity peer ID yields its key without any handshake. */
    ASSERT_OK(lp2p_peerstore_pubkey(a, &p, pub));
    ASSERT_MEM_EQ(pub, k.pub, 32);
    /* Let the 50 ms TTL run out: advance the loop clock. */
    {
        uint64_t t0 = uv_now(&loop);
        while (uv_now(&loop) - t0 < 60) {
            uv_update_time(&loop);
        }
    }
    ASSERT_OK(lp2p_peerstore_addr(a, &p, 0, out, sizeof(out)));
    ASSERT_STR_EQ(out, "/dns4/example.com/tcp/2");
    ASSERT_ERR(lp2p_peerstore_addr(a, &p, 1, out, sizeof(out)),
               LP2P_ENOTFOUND);
    /* TTL 0 removes. */
    ASSERT_OK(lp2p_peerstore_add_addr(a, &p, "/dns4/example.com/tcp/2", 0));
    ASSERT_ERR(lp2p_peerstore_addr(a, &p, 0, out, sizeof(out)),
               LP2P_ENOTFOUND);
    lp2p_key_wipe(&k);
    th_host_close(&loop, a);
    th_loop_close(&loop);
}

TEST(host, unspecified_listen_expands_to_interfaces)
{
    uv_loop_t loop;
    struct lp2p_host *h, *a;
    char la[LP2P_MULTIADDR_STRMAX], dial[LP2P_MULTIADDR_STRMAX * 2];
    char id[LP2P_PEER_ID_STRMAX];
    size_t i;
    int loopback = -1;
    uv_loop_init(&loop);
    ASSERT_OK(lp2p_host_new(&h, &loop, NULL));
    ASSERT_OK(lp2p_host_listen(h, "/ip4/0.0.0.0/tcp/0"));
    ASSERT(lp2p_host_listen_count(h) >= 1);
    for (i = 0; lp2p_host_listen_addr(h, i, la, sizeof(la)) == 0; i++) {
        ASSERT(strncmp(la, "/ip4/0.0.0.0/", 13) != 0);
        if (strncmp(la, "/ip4/127.0.0.1/tcp/", 19) == 0) {
            loopback = (int)i;
        }
    }
    ASSERT(loopback >= 0);
    /* The loopback one is dialable. */
    ASSERT_OK(lp2p_host_listen_addr(h, (size_t)loopback, la, sizeof(la)));
    lp2p_peer_id_to_string(lp2p_host_id(h), id, sizeof(id));
    snprintf(dial, sizeof(dial), "%s/p2p/%s", la, id);
    a = th_host(&loop, NULL, NULL);
    ASSERT_OK(th_connect(&loop, a, dial));
    th_host_close(&loop, a);
    th_host_close(&loop, h);
    th_loop_close(&loop);
}

/* Without inlined muxer negotiation on either side, Yamux is negotiated
 * with multistream inside Noise (both roles of that path). */
struct muxinfo {
    int connected;
    int inlined;
};

static void on_mux_event(struct lp2p_host *h, enum lp2p_conn_event ev,
                         const struct lp2p_conn_info *info, int status,
                         void *data)
{
    struct muxinfo *m = data;
    (void)h;
    (void)status;
    if (ev == LP2P_CONN_CONNECTED) {
        m->connected++;
        m->inlined = info->inlined_muxer;
    }
}

TEST(host, yamux_negotiated_without_inlining)
{
    uv_loop_t loop;
    struct lp2p_host *a, *b;
    struct lp2p_host_config cfg;
    char addr_b[LP2P_MULTIADDR_STRMAX];
    struct ping_wait pw = {0, 0, 0};
    struct muxinfo ma = {0, -1}, mb = {0, -1};
    int side;
    for (side = 0; side < 3; side++) {
        uv_loop_init(&loop);
        lp2p_host_config_init(&cfg);
        cfg.no_inline_muxer = 1;
        /* side 0: dialer refuses, 1: listener refuses, 2: both inline */
        a = th_host(&loop, side == 0 ? &cfg : NULL, NULL);
        b = th_host(&loop, side == 1 ? &cfg : NULL, addr_b);
        memset(&ma, 0, sizeof(ma));
        memset(&mb, 0, sizeof(mb));
        ASSERT_OK(lp2p_host_observe(a, on_mux_event, &ma));
        ASSERT_OK(lp2p_host_observe(b, on_mux_event, &mb));
        ASSERT_OK(th_connect(&loop, a, addr_b));
        ASSERT(th_run_until(&loop, &mb.connected, 5000));
        ASSERT_EQ(ma.inlined, side == 2);
        ASSERT_EQ(mb.inlined, side == 2);
        pw.done = 0;
        ASSERT_OK(lp2p_host_ping(a, lp2p_host_id(b), on_ping, &pw));
        ASSERT(th_run_until(&loop, &pw.done, 5000));
        ASSERT_OK(pw.status);
        th_host_close(&loop, a);
        th_host_close(&loop, b);
        th_loop_close(&loop);
    }
}

/* Listening on a port in use, or on an address of no interface, and a
 * key path that is a directory: specific codes, not LP2P_EIO. */
TEST(host, specific_listen_and_key_errors)
{
    uv_loop_t loop;
    struct lp2p_host *a, *b;
    struct lp2p_key key;
    char la[LP2P_MULTIADDR_STRMAX];
    char dir[] = "/tmp/p2praft-key-XXXXXX";
    uv_loop_init(&loop);
    a = th_host(&loop, NULL, NULL);
    ASSERT_OK(lp2p_host_listen_addr(a, 0, la, sizeof(la)));
    ASSERT_OK(lp2p_host_new(&b, &loop, NULL));
    ASSERT_ERR(lp2p_host_listen(b, la), LP2P_EADDRINUSE);
    ASSERT_STR_EQ(lp2p_strerror(LP2P_EADDRINUSE), "address already in use");
    ASSERT_ERR(lp2p_host_listen(b, "/ip4/192.0.2.1/tcp/0"),
               LP2P_EADDRNOTAVAIL);
    ASSERT_EQ(lp2p_host_listen_count(b), 0);
    th_host_close(&loop, b);
    th_host_close(&loop, a);
    th_loop_close(&loop);
    ASSERT(mkdtemp(dir) != NULL);
    ASSERT_ERR(lp2p_key_load(dir, &key), LP2P_EISDIR);
    ASSERT_OK(lp2p_key_generate(&key));
    ASSERT_ERR(lp2p_key_save(dir, &key), LP2P_EISDIR);
    lp2p_key_wipe(&key);
    ASSERT_EQ(rmdir(dir), 0); /* nothing left behind in it */
}
