/*
 * p2praft_node in-process: three nodes (each with its own loop thread) in
 * this process, driven through the blocking thread-safe calls, so that the
 * node code (forwarding, barriers, applied-index waits, shutdown) runs under
 * the sanitizers and valgrind too. Plus start-up errors.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "harness_util.h"
#include "p2praft.h"
#include "raft/api.h"
#include "test.h"

struct inode {
    struct p2praft_node *node;
    struct lp2p_key key;
    char id[LP2P_PEER_ID_STRMAX];
    char dir[256], listen[64], peer_addr[256];
    const char *peers[4];
};

static bool slow(void)
{
    return harness_slow();
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void pause_poll(void)
{
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static void start_node(struct inode *ns, unsigned n, unsigned i,
                       bool bootstrap)
{
    struct p2praft_node_config cfg;
    const char *listen[1] = {ns[i].listen};
    char err[256];
    unsigned j, k = 0;
    for (j = 0; j < n; j++) {
        if (j != i) {
            ns[i].peers[k++] = ns[j].peer_addr;
        }
    }
    p2praft_node_config_init(&cfg);
    cfg.key = &ns[i].key;
    cfg.listen = listen;
    cfg.n_listen = 1;
    cfg.data_dir = ns[i].dir;
    cfg.peers = ns[i].peers;
    cfg.n_peers = k;
    cfg.bootstrap = bootstrap;
    if (slow()) {
        cfg.election_ms = 1500;
        cfg.heartbeat_ms = 100;
        cfg.timeout_ms = 20000;
    }
    if (p2praft_node_start(&ns[i].node, &cfg, err, sizeof(err)) != 0) {
        test__fail(__FILE__, __LINE__, "node %u: %s", i, err);
    }
}

static const char *status_field(const char *text, const char *name,
                                char *out, size_t cap)
{
    char pat[64];
    const char *p;
    size_t n = 0;
    snprintf(pat, sizeof(pat), "\n%s: ", name);
    out[0] = '\0';
    p = strstr(text, pat);
    if (p != NULL) {
        p += strlen(pat);
        while (p[n] != '\0' && p[n] != '\n' && n + 1 < cap) {
            n++;
        }
        memcpy(out, p, n);
        out[n] = '\0';
    }
    return out;
}

static int wait_leader(struct inode *ns, unsigned n, unsigned timeout_ms)
{
    uint64_t end = now_ms() + timeout_ms;
    for (;;) {
        char leader[128] = "", l[128], role[32];
        int li = -1;
        unsigned i;
        bool agree = true;
        for (i = 0; i < n; i++) {
            char *text = NULL;
            if (ns[i].node == NULL) {
                continue;
            }
            ASSERT_OK(p2praft_node_status(ns[i].node, &text));
            status_field(text, "leader", l, sizeof(l));
            if (strcmp(status_field(text, "role", role, sizeof(role)),
                       "leader") == 0) {
                li = (int)i;
            }
            p2praft_free(text);
            if (strcmp(l, "none") == 0 ||
                (leader[0] != '\0' && strcmp(leader, l) != 0)) {
                agree = false;
            }
            snprintf(leader, sizeof(leader), "%s", l);
        }
        if (agree && li >= 0 && strcmp(ns[li].id, leader) == 0) {
            return li;
        }
        if (now_ms() > end) {
            return -1;
        }
        pause_poll();
    }
}

/* A peer that is not a member opens the forward protocol. */
struct intruder {
    uint8_t *frame; /* a SET request (lp2p heap) */
    size_t len;
    size_t got;
    int status;
    bool done, closed;
};

static void intruder_read(struct lp2p_stream *s, int status,
                          const uint8_t *buf, size_t len)
{
    struct intruder *m = lp2p_stream_data(s);
    (void)buf;
    if (status == 0) {
        m->got += len;
        return;
    }
    m->status = status;
    m->done = true;
    lp2p_stream_close(s, NULL, NULL);
}

static void intruder_opened(struct lp2p_stream *s, int status, void *data)
{
    struct intruder *m = data;
    if (status != 0) {
        m->status = status;
        m->done = true;
        return;
    }
    lp2p_stream_set_data(s, m);
    lp2p_stream_write(s, m->frame, m->len, NULL, NULL);
    lp2p_stream_close_write(s);
    lp2p_stream_read_start(s, intruder_read);
}

static void intruder_host_closed(struct lp2p_host *h, void *data)
{
    (void)h;
    ((struct intruder *)data)->closed = true;
}

/* Returns the status the intruder saw; *got: answer bytes received. */
static int intrude(const struct inode *target, size_t *got)
{
    static const char *const protos[] = {P2PRAFT_FORWARD_PROTOCOL};
    struct intruder m;
    struct p2praft__api_req q;
    struct lp2p_host *host;
    struct lp2p_peer_id pid;
    uv_loop_t loop;
    uint64_t end;
    memset(&m, 0, sizeof(m));
    memset(&q, 0, sizeof(q));
    q.op = P2PRAFT_API_SET;
    q.key = "intruder";
    q.val = (uint8_t *)"x";
    q.vlen = 1;
    m.frame = p2praft__api_request_encode(&q, &m.len);
    ASSERT(m.frame != NULL);
    ASSERT_OK(lp2p_peer_id_from_key(&target->key, &pid));
    ASSERT(uv_loop_init(&loop) == 0);
    ASSERT_OK(lp2p_host_new(&host, &loop, NULL));
    ASSERT_OK(lp2p_peerstore_add_addr(host, &pid, target->peer_addr,
                                      LP2P_TTL_PERMANENT));
    ASSERT_OK(lp2p_stream_open(host, &pid, protos, 1, intruder_opened, &m));
    end = now_ms() + (slow() ? 60000 : 10000);
    while (!m.done && now_ms() < end) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    lp2p_host_close(host, intruder_host_closed, &m);
    while (!m.closed) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    p2praft_free(m.frame);
    ASSERT(uv_loop_close(&loop) == 0);
    ASSERT(m.done);
    *got = m.got;
    return m.status;
}

TEST(node, three_in_process)
{
    struct inode ns[3];
    char base[] = "/tmp/p2praft-node-XXXXXX", err[256], key[32], val[32];
    unsigned i, j;
    uint8_t *v = NULL;
    size_t vlen = 0;
    char *text = NULL;
    int leader;

    memset(ns, 0, sizeof(ns));
    ASSERT(mkdtemp(base) != NULL);
    for (i = 0; i < 3; i++) {
        struct lp2p_peer_id pid;
        int port = harness_free_port();
        ASSERT(port > 0);
        ASSERT_OK(lp2p_key_generate(&ns[i].key));
        ASSERT_OK(lp2p_peer_id_from_key(&ns[i].key, &pid));
        lp2p_peer_id_to_string(&pid, ns[i].id, sizeof(ns[i].id));
        snprintf(ns[i].dir, sizeof(ns[i].dir), "%s/n%u", base, i);
        snprintf(ns[i].listen, sizeof(ns[i].listen), "/ip4/127.0.0.1/tcp/%d",
                 port);
        snprintf(ns[i].peer_addr, sizeof(ns[i].peer_addr), "%s/p2p/%s",
                 ns[i].listen, ns[i].id);
    }
    for (i = 0; i < 3; i++) {
        start_node(ns, 3, i, true);
    }
    leader = wait_leader(ns, 3, slow() ? 60000 : 10000);
    ASSERT(leader >= 0);

    /* writes through every node, consistent reads through every node */
    for (i = 0; i < 3; i++) {
        snprintf(key, sizeof(key), "key%u", i);
        snprintf(val, sizeof(val), "value%u", i);
        ASSERT_OK(p2praft_node_set(ns[i].node, key, val, strlen(val), err,
                                   sizeof(err)));
        /* applied on the node that took the write when it returns */
        ASSERT_OK(p2praft_node_get(ns[i].node, key, false, &v, &vlen, err,
                                   sizeof(err)));
        ASSERT_EQ(vlen, strlen(val));
        ASSERT_MEM_EQ(v, val, vlen);
        p2praft_free(v);
    }
    for (i = 0; i < 3; i++) {
        for (j = 0; j < 3; j++) {
            snprintf(key, sizeof(key), "key%u", j);
            snprintf(val, sizeof(val), "value%u", j);
            ASSERT_OK(p2praft_node_get(ns[i].node, key, true, &v, &vlen, err,
                                       sizeof(err)));
            ASSERT_EQ(vlen, strlen(val));
            ASSERT_MEM_EQ(v, val, vlen);
            p2praft_free(v);
        }
    }
    j = ((unsigned)leader + 1) % 3; /* a follower */
    ASSERT_OK(p2praft_node_cas(ns[j].node, "key0", "value0", 6, "new", 3, err,
                               sizeof(err)));
    ASSERT_ERR(p2praft_node_cas(ns[j].node, "key0", "value0", 6, "x", 1, err,
                                sizeof(err)),
               P2PRAFT_EMISMATCH);
    ASSERT_OK(p2praft_node_del(ns[j].node, "key1", err, sizeof(err)));
    ASSERT_ERR(p2praft_node_del(ns[j].node, "key1", err, sizeof(err)),
               P2PRAFT_ENOTFOUND);
    ASSERT_ERR(p2praft_node_get(ns[j].node, "key1", true, &v, &vlen, err,
                                sizeof(err)),
               P2PRAFT_ENOTFOUND);
    ASSERT_ERR(p2praft_node_set(ns[j].node, "", "x", 1, err, sizeof(err)),
               P2PRAFT_EINVAL);
    /* BARRIER belongs to the forward protocol: a caller gets BAD REQUEST */
    {
        struct p2praft__api_req q;
        struct p2praft__api_resp a;
        uint8_t *frame, *resp = NULL;
        size_t flen = 0, rlen = 0;
        memset(&q, 0, sizeof(q));
        q.op = P2PRAFT_API_BARRIER;
        frame = p2praft__api_request_encode(&q, &flen);
        ASSERT(frame != NULL);
        ASSERT_OK(p2praft_node_call(ns[j].node, frame + P2PRAFT__API_PREFIX,
                                    flen - P2PRAFT__API_PREFIX, &resp,
                                    &rlen));
        p2praft_free(frame);
        ASSERT_OK(p2praft__api_response_parse(&a, resp, rlen));
        ASSERT_EQ(a.status, P2PRAFT_API_BADREQ);
        ASSERT(a.len > 0 && memmem(a.payload, a.len, "BARRIER", 7) != NULL);
        p2praft_free(resp);
    }
    /* a peer outside the configuration cannot forward writes */
    {
        size_t got = 1;
        int st = intrude(&ns[leader], &got);
        ASSERT(st == P2PRAFT_ERESET || st == P2PRAFT_EEOF);
        ASSERT_EQ(got, 0);
        ASSERT_ERR(p2praft_node_get(ns[j].node, "intruder", true, &v, &vlen,
                                    err, sizeof(err)),
                   P2PRAFT_ENOTFOUND);
    }
    /* an empty value is a value */
    ASSERT_OK(p2praft_node_set(ns[j].node, "empty", "", 0, err, sizeof(err)));
    ASSERT_OK(p2praft_node_get(ns[j].node, "empty", false, &v, &vlen, err,
                               sizeof(err)));
    ASSERT_EQ(vlen, 0);
    p2praft_free(v);

    /* a follower stops, writes go on; it restarts from its directory and
     * catches up from the log. (Catching up from a snapshot is tested with
     * processes, test_cluster.c: libraft 0.22.1 leaks InstallSnapshot
     * messages re-sent during an install, which LSan would report here.) */
    p2praft_node_stop(ns[j].node);
    ns[j].node = NULL;
    for (i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "bulk%u", i % 10);
        snprintf(val, sizeof(val), "b%u", i);
        ASSERT_OK(p2praft_node_set(ns[(unsigned)leader].node, key, val,
                                   strlen(val), err, sizeof(err)));
    }
    start_node(ns, 3, j, false);
    /* a consistent read waits until this node applied everything */
    ASSERT_OK(p2praft_node_get(ns[j].node, "bulk9", true, &v, &vlen, err,
                               sizeof(err)));
    ASSERT_EQ(vlen, 3);
    ASSERT_MEM_EQ(v, "b99", 3);
    p2praft_free(v);
    ASSERT_OK(p2praft_node_get(ns[j].node, "key0", false, &v, &vlen, err,
                               sizeof(err)));
    ASSERT_MEM_EQ(v, "new", 3);
    p2praft_free(v);
    ASSERT_OK(p2praft_node_status(ns[j].node, &text));
    ASSERT(strstr(text, "snapshots_installed: 0\n") != NULL);
    p2praft_free(text);
    for (i = 0; i < 3; i++) {
        p2praft_node_stop(ns[i].node);
        lp2p_key_wipe(&ns[i].key);
        harness_rm_rf(ns[i].dir);
    }
    rmdir(base);
}

TEST(node, start_errors)
{
    struct p2praft_node_config cfg;
    struct p2praft_node *node = NULL;
    struct lp2p_key key;
    char base[] = "/tmp/p2praft-node-XXXXXX", err[256];
    const char *bad_listen[1] = {"/ip4/127.0.0.1/udp/1"};
    const char *listen[1] = {"/ip4/127.0.0.1/tcp/0"};
    const char *bad_peer[1] = {"/ip4/127.0.0.1/tcp/1"};

    ASSERT(mkdtemp(base) != NULL);
    ASSERT_OK(lp2p_key_generate(&key));
    p2praft_node_config_init(&cfg);
    ASSERT_ERR(p2praft_node_start(&node, &cfg, err, sizeof(err)),
               P2PRAFT_EINVAL);
    cfg.key = &key;
    cfg.data_dir = base;
    cfg.listen = bad_listen;
    cfg.n_listen = 1;
    ASSERT(p2praft_node_start(&node, &cfg, err, sizeof(err)) != 0);
    ASSERT(strstr(err, "listen") != NULL);
    cfg.listen = listen;
    cfg.peers = bad_peer;
    cfg.n_peers = 1;
    ASSERT_ERR(p2praft_node_start(&node, &cfg, err, sizeof(err)),
               P2PRAFT_EINVAL);
    ASSERT(strstr(err, "/p2p/") != NULL);
    /* a fresh directory without bootstrap: nothing could add this node */
    cfg.peers = NULL;
    cfg.n_peers = 0;
    ASSERT_ERR(p2praft_node_start(&node, &cfg, err, sizeof(err)),
               P2PRAFT_EINVAL);
    ASSERT(strstr(err, "bootstrap") != NULL);
    ASSERT(node == NULL);
    lp2p_key_wipe(&key);
    harness_rm_rf(base);
}
