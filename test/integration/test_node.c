/*
 * p2praft_node in-process: three nodes (each with its own loop thread) in
 * this process, driven through the blocking thread-safe calls, so that the
 * node code (forwarding, barriers, applied-index waits, shutdown) runs under
 * the sanitizers and valgrind too. Plus start-up errors, the outcome of a
 * write whose leader loses leadership, the "not caught up" answer of a
 * restarted node, and the API socket's limits (BUSY beyond the connection
 * limit, idle connections closed and their slots, fds and memory returned,
 * over 10,000 connections).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "harness_util.h"
#include "node_harness.h"
#include "p2praft.h"
#include "raft/api.h"
#include "test.h"

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

/* Log lines captured from every thread (the nodes log on theirs). */
struct capture {
    pthread_mutex_t mu;
    char text[65536];
    size_t len;
};

static void capture_line(void *ctx, enum lp2p_log_level level,
                         const char *module, const char *msg)
{
    struct capture *c = ctx;
    int k;
    (void)level;
    pthread_mutex_lock(&c->mu);
    k = snprintf(c->text + c->len, sizeof(c->text) - c->len, "%s: %s\n",
                 module, msg);
    if (k > 0) {
        c->len += (size_t)k < sizeof(c->text) - c->len
                      ? (size_t)k
                      : sizeof(c->text) - c->len - 1;
    }
    pthread_mutex_unlock(&c->mu);
}

/* Returns the status the intruder saw; *got: answer bytes received. */
static int intrude(const struct hnode *target, size_t *got)
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
    end = nh_now_ms() + (harness_slow() ? 60000 : 10000);
    while (!m.done && nh_now_ms() < end) {
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

static struct capture log_cap = {PTHREAD_MUTEX_INITIALIZER, "", 0};

TEST(node, three_in_process)
{
    enum lp2p_log_level level = lp2p_log_level();
    struct hnode ns[3];
    char base[] = "/tmp/p2praft-node-XXXXXX", err[256], key[32], val[32];
    unsigned i, j;
    uint8_t *v = NULL;
    size_t vlen = 0;
    char *text = NULL;
    int leader;

    /* the sink is swapped only while no node runs (it is not guarded) */
    log_cap.len = 0;
    log_cap.text[0] = '\0';
    lp2p_log_set(LP2P_LOG_WARN, capture_line, &log_cap);
    nh_prepare(ns, 3, base);
    for (i = 0; i < 3; i++) {
        nh_start(ns, 3, i, true);
    }
    leader = (int)nh_wait_leader(ns, 3, 10000);
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
    /* a peer outside the configuration cannot forward writes; the
     * refusal is logged at the default level, with its count */
    {
        size_t got = 1;
        int st = intrude(&ns[leader], &got);
        pthread_mutex_lock(&log_cap.mu);
        ASSERT(strstr(log_cap.text, "refused 1 " P2PRAFT_FORWARD_PROTOCOL
                                " stream (not a member") != NULL);
        ASSERT(strstr(log_cap.text, "1 in all") != NULL);
        pthread_mutex_unlock(&log_cap.mu);
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
    nh_start(ns, 3, j, false);
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
    nh_teardown(ns, 3, base);
    lp2p_log_set(level, NULL, NULL);
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
    cfg.bootstrap = true; /* else the empty directory is refused first */
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
    cfg.bootstrap = false;
    ASSERT_ERR(p2praft_node_start(&node, &cfg, err, sizeof(err)),
               P2PRAFT_EINVAL);
    ASSERT(strstr(err, "bootstrap") != NULL);
    ASSERT(node == NULL);
    lp2p_key_wipe(&key);
    harness_rm_rf(base);
}

/* ---- errors, catching up, API limits -------------------------------------- */

/* A leader loses its followers with a write pending: raft took the entry,
 * the next leader may commit it. The caller must hear "unknown" (decided on
 * codes), never a "not applied" code that invites a retry. */
TEST(node, leadership_lost_write_is_unknown)
{
    struct hnode ns[3];
    char base[] = "/tmp/p2praft-node-XXXXXX", err[256];
    unsigned i;
    int leader, rv;

    nh_prepare(ns, 3, base);
    for (i = 0; i < 3; i++) {
        /* far beyond a step-down (one election timeout), short enough
         * for the "no leader" answer below */
        ns[i].timeout_ms = harness_slow() ? 20000 : 2000;
        nh_start(ns, 3, i, true);
    }
    leader = (int)nh_wait_leader(ns, 3, 10000);
    ASSERT(leader >= 0);
    ASSERT_OK(p2praft_node_set(ns[leader].node, "k", "1", 1, err,
                               sizeof(err)));
    for (i = 0; i < 3; i++) {
        if ((int)i != leader) {
            p2praft_node_stop(ns[i].node);
            ns[i].node = NULL;
        }
    }
    rv = p2praft_node_set(ns[leader].node, "k", "2", 1, err, sizeof(err));
    ASSERT_ERR(rv, P2PRAFT_EUNKNOWN);
    ASSERT(p2praft_outcome_unknown(rv));
    ASSERT(strstr(err, "unknown") != NULL);
    /* No leader now: a write is surely not applied, and says so. */
    rv = p2praft_node_set(ns[leader].node, "k", "3", 1, err, sizeof(err));
    ASSERT_ERR(rv, P2PRAFT_ERAFT);
    ASSERT(!p2praft_outcome_unknown(rv));
    ASSERT(strstr(err, "no leader") != NULL);
    nh_teardown(ns, 3, base);
}

/* A node restarted alone has its log but no leader to tell it what is
 * committed: plain reads say "not caught up" instead of "not found" for a
 * key it holds, until a leader answers its catch-up barrier. */
TEST(node, not_caught_up_after_restart)
{
    struct hnode ns[3];
    char base[] = "/tmp/p2praft-node-XXXXXX", err[256], v[16];
    unsigned i;
    uint8_t *val = NULL;
    size_t vlen = 0;
    int leader, rv;

    nh_prepare(ns, 3, base);
    for (i = 0; i < 3; i++) {
        nh_start(ns, 3, i, true);
    }
    leader = (int)nh_wait_leader(ns, 3, 10000);
    ASSERT(leader >= 0);
    ASSERT_OK(p2praft_node_set(ns[0].node, "k", "v", 1, err, sizeof(err)));
    nh_wait_field(&ns[0], "caught_up", "yes", 10000);
    for (i = 0; i < 3; i++) {
        p2praft_node_stop(ns[i].node);
        ns[i].node = NULL;
    }
    /* Node 0 alone: one of three, no leader can be elected. */
    nh_start(ns, 3, 0, false);
    ASSERT_STR_EQ(nh_field(&ns[0], "caught_up", v, sizeof(v)), "no");
    rv = p2praft_node_get(ns[0].node, "k", false, &val, &vlen, err,
                          sizeof(err));
    ASSERT_ERR(rv, P2PRAFT_ENOTCAUGHTUP);
    ASSERT(strstr(err, "caught up") != NULL);
    /* A second member: a leader, the barrier, then the key. */
    nh_start(ns, 3, 1, false);
    nh_wait_field(&ns[0], "caught_up", "yes", 10000);
    ASSERT_OK(p2praft_node_get(ns[0].node, "k", false, &val, &vlen, err,
                               sizeof(err)));
    ASSERT_EQ(vlen, 1);
    ASSERT_MEM_EQ(val, "v", 1);
    p2praft_free(val);
    nh_teardown(ns, 3, base);
}

/* ---- API limits ---- */

/* A thread-safe counting heap: blocks and bytes live (the node's loop
 * thread and this one both allocate). No header: a block that crosses the
 * switch from or to the default heap is still freed correctly. */
static atomic_long heap_blocks, heap_bytes;

static void *count_malloc(void *data, size_t size)
{
    void *p = malloc(size);
    (void)data;
    if (p != NULL) {
        atomic_fetch_add(&heap_blocks, 1);
        atomic_fetch_add(&heap_bytes, (long)malloc_usable_size(p));
    }
    return p;
}

static void count_free(void *data, void *ptr)
{
    (void)data;
    if (ptr != NULL) {
        atomic_fetch_sub(&heap_blocks, 1);
        atomic_fetch_sub(&heap_bytes, (long)malloc_usable_size(ptr));
        free(ptr);
    }
}

static void *count_realloc(void *data, void *ptr, size_t size)
{
    long old;
    void *p;
    if (ptr == NULL) {
        return count_malloc(data, size);
    }
    old = (long)malloc_usable_size(ptr);
    p = realloc(ptr, size);
    if (p != NULL) {
        atomic_fetch_add(&heap_bytes, (long)malloc_usable_size(p) - old);
    }
    return p;
}

static const struct lp2p_heap count_heap = {NULL, count_malloc, count_realloc,
                                            count_free};

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int k = 0;
    ASSERT(d != NULL);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            k++;
        }
    }
    closedir(d);
    return k - 1; /* the directory's own */
}

/* Read until EOF or timeout; the bytes read (at most cap) into buf. Returns
 * the count, or -1 on timeout. */
static long read_to_eof(int fd, uint8_t *buf, size_t cap, unsigned timeout_ms)
{
    uint64_t end = nh_now_ms() + timeout_ms;
    size_t got = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        uint8_t tmp[512];
        ssize_t k;
        uint64_t now = nh_now_ms();
        if (now >= end || poll(&p, 1, (int)(end - now)) <= 0) {
            return -1;
        }
        k = read(fd, tmp, sizeof(tmp));
        if (k <= 0) {
            return (long)got;
        }
        if (got < cap) {
            size_t c = (size_t)k < cap - got ? (size_t)k : cap - got;
            memcpy(buf + got, tmp, c);
            got += c;
        }
    }
}

/* The live heap once the node's thread is done freeing what the last call
 * left (it may still be at it when the caller wakes): the same reading
 * several polls in a row. */
static void heap_settle(long *blocks, long *bytes)
{
    uint64_t end = nh_now_ms() + 10000;
    int same = 0;
    *blocks = atomic_load(&heap_blocks);
    *bytes = atomic_load(&heap_bytes);
    while (same < 10) {
        long b, n;
        ASSERT(nh_now_ms() < end);
        nh_pause();
        b = atomic_load(&heap_blocks);
        n = atomic_load(&heap_bytes);
        same = b == *blocks && n == *bytes ? same + 1 : 0;
        *blocks = b;
        *bytes = n;
    }
}

static unsigned api_conns(struct hnode *nd)
{
    char v[32];
    return (unsigned)strtoul(nh_field(nd, "api_connections", v, sizeof(v)),
                             NULL, 10);
}

/* The connection beyond the limit gets BUSY before it sent anything, and
 * a write sent on such a connection is not applied; idle connections are
 * closed after api_idle_ms and their slots come back; 10,000 connections
 * that open, idle and get closed leave fds and memory where they were. */
TEST(node, api_limits_busy_idle_10k)
{
    struct hnode ns[1];
    char base[] = "/tmp/p2praft-node-XXXXXX", err[256];
    const unsigned max = 200, idle = harness_slow() ? 300 : 100;
    const unsigned total = 10000;
    unsigned wait = harness_slow() ? 60000 : 10000, i, done = 0, waves = 0;
    static int fds[200];
    uint8_t resp[512], *val = NULL;
    struct p2praft__api_resp a;
    long fd_base, blocks_base, bytes_base, k;
    size_t vlen;
    uint64_t t0, end;
    int fd, leader;

    lp2p_heap_set(&count_heap);
    nh_prepare(ns, 1, base);
    ns[0].api_max_conns = max;
    ns[0].api_idle_ms = idle;
    nh_start(ns, 1, 0, true);
    leader = (int)nh_wait_leader(ns, 1, 10000);
    ASSERT_EQ(leader, 0);
    nh_wait_field(&ns[0], "caught_up", "yes", 10000);

    /* BUSY at the limit, before anything is read */
    for (i = 0; i < max; i++) {
        fds[i] = nh_unix_connect(p2praft_node_api_path(ns[0].node));
    }
    end = nh_now_ms() + wait;
    while (api_conns(&ns[0]) != max) {
        ASSERT(nh_now_ms() < end);
        nh_pause();
    }
    fd = nh_unix_connect(p2praft_node_api_path(ns[0].node));
    k = read_to_eof(fd, resp, sizeof(resp), wait);
    close(fd);
    ASSERT(k > P2PRAFT__API_PREFIX);
    ASSERT_OK(p2praft__api_response_parse(&a, resp + P2PRAFT__API_PREFIX,
                                          (size_t)k - P2PRAFT__API_PREFIX));
    ASSERT_EQ(a.status, P2PRAFT_API_BUSY);
    /* a write sent over the limit: BUSY, and it was not applied */
    {
        struct p2praft__api_req q;
        uint8_t *frame;
        size_t flen = 0;
        memset(&q, 0, sizeof(q));
        q.op = P2PRAFT_API_SET;
        q.key = "over";
        q.val = (uint8_t *)"x";
        q.vlen = 1;
        frame = p2praft__api_request_encode(&q, &flen);
        ASSERT(frame != NULL);
        fd = nh_unix_connect(p2praft_node_api_path(ns[0].node));
        (void)!write(fd, frame, flen);
        p2praft_free(frame);
        k = read_to_eof(fd, resp, sizeof(resp), wait);
        close(fd);
        ASSERT(k > P2PRAFT__API_PREFIX);
        ASSERT_OK(p2praft__api_response_parse(
            &a, resp + P2PRAFT__API_PREFIX, (size_t)k - P2PRAFT__API_PREFIX));
        ASSERT_EQ(a.status, P2PRAFT_API_BUSY);
    }
    {
        char v[32];
        ASSERT(strtoul(nh_field(&ns[0], "api_refused_busy", v, sizeof(v)),
                       NULL, 10) >= 2);
    }
    /* the idle ones are closed by the node: EOF on every one */
    for (i = 0; i < max; i++) {
        ASSERT_EQ(read_to_eof(fds[i], resp, sizeof(resp), wait), 0);
        close(fds[i]);
    }
    end = nh_now_ms() + wait;
    while (api_conns(&ns[0]) != 0) {
        ASSERT(nh_now_ms() < end);
        nh_pause();
    }
    ASSERT_ERR(p2praft_node_get(ns[0].node, "over", true, &val, &vlen, err,
                                sizeof(err)),
               P2PRAFT_ENOTFOUND);

    /* the baseline, then connections in waves, each idled out */
    heap_settle(&blocks_base, &bytes_base);
    fd_base = open_fds();
    t0 = nh_now_ms();
    while (done < total) {
        unsigned w = total - done < max ? total - done : max;
        for (i = 0; i < w; i++) {
            fds[i] = nh_unix_connect(p2praft_node_api_path(ns[0].node));
        }
        for (i = 0; i < w; i++) {
            ASSERT_EQ(read_to_eof(fds[i], resp, sizeof(resp), wait), 0);
            close(fds[i]);
        }
        /* a slot returns once the node's close completes, just after
         * the EOF the client saw */
        end = nh_now_ms() + wait;
        while (api_conns(&ns[0]) != 0) {
            ASSERT(nh_now_ms() < end);
            nh_pause();
        }
        done += w;
        waves++;
    }
    printf("  %u idle connections in %u waves of %u, closed after %u ms "
           "idle: %llu ms\n",
           done, waves, max, idle, (unsigned long long)(nh_now_ms() - t0));
    {
        long blocks, bytes;
        heap_settle(&blocks, &bytes);
        if (open_fds() != fd_base || blocks != blocks_base ||
            bytes != bytes_base) {
            test__fail(__FILE__, __LINE__,
                       "not back to baseline: fds %d (was %ld), heap %ld "
                       "blocks / %ld bytes (was %ld / %ld)",
                       open_fds(), fd_base, blocks, bytes, blocks_base,
                       bytes_base);
        }
    }
    /* and the socket still serves */
    ASSERT_OK(p2praft_node_set(ns[0].node, "after", "1", 1, err, sizeof(err)));
    nh_teardown(ns, 1, base);
    lp2p_heap_set(NULL);
}

/* p2praft_node_config.wire = HASHICORP (`p2praft node --wire hashicorp`):
 * the key-value node on go-libp2p-raft's wire and log format. Writes
 * through every node, consistent reads everywhere, bare snapshots on disk,
 * and a follower restarted from its directory catches up. */
TEST(node, hashicorp_wire)
{
    struct hnode ns[3];
    char base[] = "/tmp/p2praft-hcnode-XXXXXX", err[256], key[32], val[32];
    unsigned i, j, leader, f;
    uint8_t *v = NULL;
    size_t vlen = 0;
    nh_prepare(ns, 3, base);
    for (i = 0; i < 3; i++) {
        ns[i].wire = P2PRAFT_WIRE_HASHICORP;
        ns[i].snapshot_threshold = 16;
        ns[i].snapshot_trailing = 4;
    }
    for (i = 0; i < 3; i++) {
        nh_start(ns, 3, i, true);
    }
    leader = nh_wait_leader(ns, 3, nh_scale(10000));
    for (j = 0; j < 30; j++) {
        i = j % 3;
        snprintf(key, sizeof(key), "k%u", j);
        snprintf(val, sizeof(val), "v%u", j);
        ASSERT_OK(p2praft_node_set(ns[i].node, key, val, strlen(val), err,
                                   sizeof(err)));
    }
    f = (leader + 1) % 3;
    p2praft_node_stop(ns[f].node);
    ns[f].node = NULL;
    ASSERT_OK(p2praft_node_set(ns[leader].node, "after", "x", 1, err,
                               sizeof(err)));
    nh_start(ns, 3, f, false);
    nh_wait_field(&ns[f], "caught_up", "yes", nh_scale(10000));
    for (i = 0; i < 3; i++) {
        ASSERT_OK(p2praft_node_get(ns[i].node, "after", true, &v, &vlen, err,
                                   sizeof(err)));
        ASSERT_EQ(vlen, 1);
        p2praft_free(v);
        ASSERT_OK(p2praft_node_get(ns[i].node, "k29", true, &v, &vlen, err,
                                   sizeof(err)));
        ASSERT_EQ(vlen, 3);
        ASSERT_MEM_EQ(v, "v29", 3);
        p2praft_free(v);
    }
    nh_teardown(ns, 3, base);
}
