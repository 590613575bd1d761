/*
 * The node's API sessions (session.c, watch.c, clientproto.c), in-process
 * nodes driven through raw frames (what any client may send) and the
 * client library:
 *
 *   session/pipelined_out_of_order  many requests on one connection,
 *                         answered by id, not in order; 1000 at once.
 *   session/busy_beyond_inflight    BUSY past api_max_inflight and
 *                         api_max_requests, not started; counters.
 *   session/close_with_requests_in_flight  a client that sends and hangs
 *                         up: requests end, nothing leaks, the node serves.
 *   session/old_and_bad_clients     a version-1 client gets a version-1
 *                         BAD REQUEST naming the versions; id 0, an id in
 *                         flight, another version: BAD REQUEST and close;
 *                         BARRIER refused, the connection goes on.
 *   session/ls_pages      prefix, after, limit, keys only, byte budget,
 *                         consistent.
 *   session/watch_events  set, cas, del in apply order with their indexes,
 *                         prefix filter, no event for changes that change
 *                         nothing, UNWATCH.
 *   session/slow_watcher_dropped  a watcher that stops reading: bounded
 *                         queue, one DROPPED with the exact count, then
 *                         events flow again.
 *   session/watch_survives_leader_change  a follower's watch across the
 *                         leader's stop.
 *   session/unread_answers_are_bounded  a client that does not read 80 MiB
 *                         of answers holds at most 16 MiB: the rest BUSY.
 *   session/remote_clients          /p2praft/client/1.0.0: listed peer IDs
 *                         (--client and a file) do what the socket does;
 *                         others are refused and counted; a bad file stops
 *                         the start with its line.
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness_util.h"
#include "node_harness.h"
#include "p2praft.h"
#include "raft/api.h"
#include "test.h"
#include "util/byteorder.h"

/* One request frame (malloc'd copy of the codec's). */
static uint8_t *frame_of(uint8_t op, uint32_t id, const char *key,
                         const char *val, size_t *len)
{
    struct p2praft__api_req q;
    uint8_t *f, *copy;
    memset(&q, 0, sizeof(q));
    q.op = op;
    q.id = id;
    q.key = (char *)key;
    if (val != NULL) {
        q.val = (uint8_t *)val;
        q.vlen = strlen(val);
    }
    f = p2praft__api_request_encode(&q, len);
    ASSERT(f != NULL);
    copy = malloc(*len);
    ASSERT(copy != NULL);
    memcpy(copy, f, *len);
    p2praft_free(f);
    return copy;
}

static void send_req(int fd, uint8_t op, uint32_t id, const char *key,
                     const char *val)
{
    size_t len = 0;
    uint8_t *f = frame_of(op, id, key, val, &len);
    ASSERT(nh_write_all(fd, f, len) == 0);
    free(f);
}

/* Read one frame and parse it (the body stays in *body: free it). */
static void read_resp(int fd, struct p2praft__api_resp *a, uint8_t **body,
                      unsigned timeout_ms)
{
    size_t len = 0;
    ASSERT(nh_read_frame(fd, body, &len, timeout_ms) == 0);
    ASSERT_OK(p2praft__api_response_parse(a, *body, len));
}

static struct p2praft_client *client_of(struct hnode *nd)
{
    struct p2praft_client_config cfg;
    struct p2praft_client *c = NULL;
    char err[400];
    p2praft_client_config_init(&cfg);
    cfg.api_path = p2praft_node_api_path(nd->node);
    cfg.timeout_ms = nh_scale(10000);
    if (p2praft_client_open(&c, &cfg, err, sizeof(err)) != 0) {
        test__fail(__FILE__, __LINE__, "client: %s", err);
    }
    return c;
}

static int kv_set(struct p2praft_client *c, const char *k, const void *v,
                  size_t len, uint64_t *index)
{
    struct p2praft_request rq;
    struct p2praft_result *res = NULL;
    int rv;
    memset(&rq, 0, sizeof(rq));
    rq.op = P2PRAFT_API_SET;
    rq.key = k;
    rq.value = v;
    rq.len = len;
    rv = p2praft_client_call(c, &rq, &res);
    ASSERT(res != NULL);
    if (index != NULL) {
        *index = res->index;
    }
    p2praft_result_free(res);
    return rv;
}

static int kv_op(struct p2praft_client *c, enum p2praft_api_op op,
                 const char *k, const char *exp, const char *v,
                 uint64_t *index)
{
    struct p2praft_request rq;
    struct p2praft_result *res = NULL;
    int rv;
    memset(&rq, 0, sizeof(rq));
    rq.op = op;
    rq.key = k;
    if (v != NULL) {
        rq.value = v;
        rq.len = strlen(v);
    }
    if (exp != NULL) {
        rq.expected = exp;
        rq.expected_len = strlen(exp);
    }
    rv = p2praft_client_call(c, &rq, &res);
    ASSERT(res != NULL);
    if (index != NULL) {
        *index = res->index;
    }
    p2praft_result_free(res);
    return rv;
}

/* A one-node cluster, leading and caught up. */
static void one_node(struct hnode *ns, char *base)
{
    nh_prepare(ns, 1, base);
    nh_start(ns, 1, 0, true);
    ASSERT_EQ(nh_wait_leader(ns, 1, 10000), 0);
    nh_wait_field(&ns[0], "caught_up", "yes", 10000);
}

/* A node of a three-node configuration started alone: no leader, so a
 * write waits (retrying) until the node's timeout. */
static void leaderless_node(struct hnode *ns, char *base, unsigned timeout_ms)
{
    nh_prepare(ns, 3, base);
    ns[0].timeout_ms = nh_scale(timeout_ms);
    nh_start(ns, 3, 0, true);
}

TEST(session, pipelined_out_of_order)
{
    struct hnode ns[1];
    char base[] = "/tmp/p2praft-sess-XXXXXX";
    struct p2praft__api_resp a;
    uint8_t *body, *all, seen[1001];
    size_t len = 0, total = 0, i;
    int fd;

    one_node(ns, base);
    fd = nh_unix_connect(p2praft_node_api_path(ns[0].node));
    /* a write (answered after its commit) then a STATUS (answered at
     * once), in one write: the second answer comes first */
    {
        size_t l1 = 0, l2 = 0;
        uint8_t *f1 = frame_of(P2PRAFT_API_SET, 1, "first", "1", &l1);
        uint8_t *f2 = frame_of(P2PRAFT_API_STATUS, 2, NULL, NULL, &l2);
        all = malloc(l1 + l2);
        memcpy(all, f1, l1);
        memcpy(all + l1, f2, l2);
        ASSERT(nh_write_all(fd, all, l1 + l2) == 0);
        free(f1);
        free(f2);
        free(all);
    }
    read_resp(fd, &a, &body, 10000);
    ASSERT_EQ(a.id, 2);
    ASSERT_EQ(a.status, P2PRAFT_API_OK);
    ASSERT(memmem(a.payload, a.len, "role: leader", 12) != NULL);
    free(body);
    read_resp(fd, &a, &body, 10000);
    ASSERT_EQ(a.id, 1);
    ASSERT_EQ(a.status, P2PRAFT_API_OK);
    ASSERT(a.index > 0);
    free(body);

    /* 1000 writes at once on one connection (more than api_max_inflight
     * would allow if they were all in flight together: they are not, the
     * node answers as it goes, and the ones over the bound get BUSY) */
    all = malloc(1000 * 64);
    for (i = 1; i <= 1000; i++) {
        char k[32];
        uint8_t *f;
        snprintf(k, sizeof(k), "p/%04zu", i);
        f = frame_of(P2PRAFT_API_SET, (uint32_t)(100 + i), k, k, &len);
        memcpy(all + total, f, len);
        total += len;
        free(f);
    }
    ASSERT(nh_write_all(fd, all, total) == 0);
    free(all);
    memset(seen, 0, sizeof(seen));
    {
        size_t ok = 0, busy = 0;
        for (i = 0; i < 1000; i++) {
            read_resp(fd, &a, &body, 20000);
            ASSERT(a.id > 100 && a.id <= 1100);
            ASSERT_EQ(seen[a.id - 100], 0); /* each answered once */
            seen[a.id - 100] = 1;
            if (a.status == P2PRAFT_API_OK) {
                ok++;
            } else {
                ASSERT_EQ(a.status, P2PRAFT_API_BUSY);
                busy++;
            }
            free(body);
        }
        ASSERT_EQ(ok + busy, 1000);
        ASSERT(ok >= 128);
        printf("  1000 pipelined writes: %zu ok, %zu busy\n", ok, busy);
        /* exactly the OK ones were applied */
        nh_wait_num(&ns[0], "api_requests", 0, 10000);
        ASSERT_EQ(nh_field_num(&ns[0], "keys"), 1 + ok);
    }
    close(fd);
    nh_teardown(ns, 1, base);
}

TEST(session, busy_beyond_inflight)
{
    struct hnode ns[3];
    char base[] = "/tmp/p2praft-sess-XXXXXX";
    struct p2praft__api_resp a;
    uint8_t *body;
    int fd1, fd2;
    uint32_t id;

    nh_prepare(ns, 3, base);
    ns[0].api_max_inflight = 4;
    ns[0].api_max_requests = 6;
    ns[0].timeout_ms = nh_scale(3000);
    nh_start(ns, 3, 0, true);
    fd1 = nh_unix_connect(p2praft_node_api_path(ns[0].node));
    fd2 = nh_unix_connect(p2praft_node_api_path(ns[0].node));
    /* four writes wait for a leader; the fifth is over the connection's
     * bound: BUSY at once, with its id */
    for (id = 1; id <= 5; id++) {
        send_req(fd1, P2PRAFT_API_SET, id, "k", "v");
    }
    read_resp(fd1, &a, &body, 5000);
    ASSERT_EQ(a.id, 5);
    ASSERT_EQ(a.status, P2PRAFT_API_BUSY);
    ASSERT(memmem(a.payload, a.len, "api_max_inflight", 16) != NULL);
    free(body);
    nh_wait_num(&ns[0], "api_requests", 4, 5000);
    /* the node's bound: 4 + 2 = 6 */
    for (id = 1; id <= 3; id++) {
        send_req(fd2, P2PRAFT_API_SET, id, "k", "v");
    }
    read_resp(fd2, &a, &body, 5000);
    ASSERT_EQ(a.id, 3);
    ASSERT_EQ(a.status, P2PRAFT_API_BUSY);
    ASSERT(memmem(a.payload, a.len, "api_max_requests", 16) != NULL);
    free(body);
    ASSERT_EQ(nh_field_num(&ns[0], "api_busy"), 2);
    ASSERT_EQ(nh_field_num(&ns[0], "api_requests"), 6);
    /* no leader came: each waiting write fails (surely not applied) */
    for (id = 0; id < 4; id++) {
        read_resp(fd1, &a, &body, 10000);
        ASSERT(a.id >= 1 && a.id <= 4);
        ASSERT_EQ(a.status, P2PRAFT_API_FAILED);
        free(body);
    }
    close(fd1);
    close(fd2);
    nh_wait_num(&ns[0], "api_requests", 0, 10000);
    nh_teardown(ns, 3, base);
}

TEST(session, close_with_requests_in_flight)
{
    struct hnode ns[3];
    char base[] = "/tmp/p2praft-sess-XXXXXX";
    struct p2praft__api_resp a;
    uint8_t *body;
    uint32_t id;
    int fd;

    leaderless_node(ns, base, 1500);
    fd = nh_unix_connect(p2praft_node_api_path(ns[0].node));
    for (id = 1; id <= 50; id++) {
        send_req(fd, P2PRAFT_API_SET, id, "gone", "v");
    }
    nh_wait_num(&ns[0], "api_requests", 50, 5000);
    close(fd); /* with 50 requests in flight */
    nh_wait_num(&ns[0], "api_connections", 0, 5000);
    /* they run to their end, answered into the void, and are freed */
    nh_wait_num(&ns[0], "api_requests", 0, 10000);
    /* the node still serves */
    fd = nh_unix_connect(p2praft_node_api_path(ns[0].node));
    send_req(fd, P2PRAFT_API_HELLO, 9, NULL, NULL);
    read_resp(fd, &a, &body, 5000);
    ASSERT_EQ(a.id, 9);
    ASSERT_EQ(a.status, P2PRAFT_API_OK);
    ASSERT_EQ(a.len, strlen(ns[0].id));
    ASSERT_MEM_EQ(a.payload, ns[0].id, a.len);
    free(body);
    /* a client that closes its sending side still gets its answers */
    send_req(fd, P2PRAFT_API_SET, 10, "half", "v");
    ASSERT(shutdown(fd, SHUT_WR) == 0);
    read_resp(fd, &a, &body, 10000);
    ASSERT_EQ(a.id, 10);
    ASSERT_EQ(a.status, P2PRAFT_API_FAILED); /* no leader */
    free(body);
    ASSERT(nh_wait_eof(fd, 5000));
    close(fd);
    nh_teardown(ns, 3, base);
}

TEST(session, old_and_bad_clients)
{
    struct hnode ns[1];
    char base[] = "/tmp/p2praft-sess-XXXXXX";
    /* what a version-1 client sends: SET "k" = "v" */
    static const uint8_t v1[] = "\0\0\0\x0d\x01\x02\x00\0\0\0\x01k"
                                "\0\0\0\x01v";
    struct p2praft__api_resp a;
    uint8_t *body, *f;
    size_t len = 0;
    int fd;

    one_node(ns, base);
    /* version 1: answered in version 1, a message it can print */
    fd = nh_unix_connect(p2praft_node_api_path(ns[0].node));
    ASSERT(nh_write_all(fd, v1, sizeof(v1) - 1) == 0);
    ASSERT(nh_read_frame(fd, &body, &len, 5000) == 0);
    ASSERT_EQ(body[0], 1);
    ASSERT_EQ(body[P2PRAFT__API_V1_STATUS], P2PRAFT_API_BADREQ);
    ASSERT(memmem(body, len, "version 1", 9) != NULL);
    ASSERT(memmem(body, len, "version 2", 9) != NULL);
    free(body);
    ASSERT(nh_wait_eof(fd, 5000));
    close(fd);
    ASSERT_EQ(nh_field_num(&ns[0], "keys"), 0); /* not applied */

    /* id 0 */
    fd = nh_unix_connect(p2praft_node_api_path(ns[0].node));
    send_req(fd, P2PRAFT_API_STATUS, 0, NULL, NULL);
    read_resp(fd, &a, &body, 5000);
    ASSERT_EQ(a.status, P2PRAFT_API_BADREQ);
    ASSERT(memmem(a.payload, a.len, "id 0", 4) != NULL);
    free(body);
    ASSERT(nh_wait_eof(fd, 5000));
    close(fd);

    /* a future version: BAD REQUEST in the current one */
    fd = nh_unix_connect(p2praft_node_api_path(ns[0].node));
    f = frame_of(P2PRAFT_API_STATUS, 4, NULL, NULL, &len);
    f[P2PRAFT__API_PREFIX] = 3;
    ASSERT(nh_write_all(fd, f, len) == 0);
    free(f);
    read_resp(fd, &a, &body, 5000);
    ASSERT_EQ(a.version, P2PRAFT_API_VERSION);
    ASSERT_EQ(a.status, P2PRAFT_API_BADREQ);
    ASSERT(memmem(a.payload, a.len, "version 3", 9) != NULL);
    free(body);
    ASSERT(nh_wait_eof(fd, 5000));
    close(fd);

    /* BARRIER is not for clients: refused, the connection goes on */
    fd = nh_unix_connect(p2praft_node_api_path(ns[0].node));
    send_req(fd, P2PRAFT_API_BARRIER, 5, NULL, NULL);
    read_resp(fd, &a, &body, 5000);
    ASSERT_EQ(a.id, 5);
    ASSERT_EQ(a.status, P2PRAFT_API_BADREQ);
    free(body);
    send_req(fd, P2PRAFT_API_GET, 6, "nothing", NULL);
    read_resp(fd, &a, &body, 5000);
    ASSERT_EQ(a.id, 6);
    ASSERT_EQ(a.status, P2PRAFT_API_NOTFOUND);
    free(body);
    /* UNWATCH of a watch that does not exist */
    {
        struct p2praft__api_req q;
        memset(&q, 0, sizeof(q));
        q.op = P2PRAFT_API_UNWATCH;
        q.id = 7;
        q.target = 12345;
        f = p2praft__api_request_encode(&q, &len);
        ASSERT(nh_write_all(fd, f, len) == 0);
        p2praft_free(f);
        read_resp(fd, &a, &body, 5000);
        ASSERT_EQ(a.id, 7);
        ASSERT_EQ(a.status, P2PRAFT_API_NOTFOUND);
        free(body);
    }
    close(fd);

    /* an id still in flight: BAD REQUEST, then the connection closes */
    {
        struct hnode ls[3];
        char lbase[] = "/tmp/p2praft-sess-XXXXXX";
        leaderless_node(ls, lbase, 3000);
        fd = nh_unix_connect(p2praft_node_api_path(ls[0].node));
        send_req(fd, P2PRAFT_API_SET, 7, "k", "v");
        send_req(fd, P2PRAFT_API_SET, 7, "k", "w");
        read_resp(fd, &a, &body, 5000);
        ASSERT_EQ(a.id, 7);
        ASSERT_EQ(a.status, P2PRAFT_API_BADREQ);
        ASSERT(memmem(a.payload, a.len, "in flight", 9) != NULL);
        free(body);
        ASSERT(nh_wait_eof(fd, 5000));
        close(fd);
        nh_wait_num(&ls[0], "api_requests", 0, 10000);
        nh_teardown(ls, 3, lbase);
    }
    nh_teardown(ns, 1, base);
}

/* LS through the client library, every page. */
static size_t ls_all(struct p2praft_client *c, const char *prefix,
                     uint32_t limit, bool keys_only, char (*keys)[16],
                     size_t cap, size_t *pages)
{
    struct p2praft_request rq;
    char after[64] = "";
    size_t n = 0;
    *pages = 0;
    for (;;) {
        struct p2praft_result *res = NULL;
        size_t i;
        memset(&rq, 0, sizeof(rq));
        rq.op = P2PRAFT_API_LS;
        rq.key = prefix;
        rq.after = after;
        rq.limit = limit;
        rq.keys_only = keys_only;
        ASSERT_OK(p2praft_client_call(c, &rq, &res));
        (*pages)++;
        for (i = 0; i < res->n_entries; i++) {
            ASSERT(n < cap);
            ASSERT(strlen(res->entries[i].key) < 16);
            strcpy(keys[n], res->entries[i].key);
            if (keys_only) {
                ASSERT_EQ(res->entries[i].len, 0);
            } else {
                ASSERT_EQ(res->entries[i].len, strlen(res->entries[i].key));
                ASSERT_MEM_EQ(res->entries[i].value, res->entries[i].key,
                              res->entries[i].len);
            }
            n++;
        }
        if (!res->more) {
            p2praft_result_free(res);
            return n;
        }
        ASSERT(res->n_entries > 0);
        snprintf(after, sizeof(after), "%s",
                 res->entries[res->n_entries - 1].key);
        p2praft_result_free(res);
    }
}

TEST(session, ls_pages)
{
    static char keys[3000][16];
    struct hnode ns[1];
    char base[] = "/tmp/p2praft-sess-XXXXXX", k[16];
    struct p2praft_client *c;
    struct p2praft_request rq;
    struct p2praft_result *res = NULL;
    size_t i, n, pages;
    uint8_t *big;

    one_node(ns, base);
    c = client_of(&ns[0]);
    /* 2500 keys under k/ and one elsewhere, written pipelined */
    {
        struct p2praft_client_config cfg;
        (void)cfg;
        for (i = 0; i < 2500; i++) {
            snprintf(k, sizeof(k), "k/%04zu", i);
            ASSERT_OK(kv_set(c, k, k, strlen(k), NULL));
        }
    }
    ASSERT_OK(kv_set(c, "other", "other", 5, NULL));
    n = ls_all(c, "k/", 0, false, keys, 3000, &pages);
    ASSERT_EQ(n, 2500);
    ASSERT_EQ(pages, 3); /* 1000 a page */
    for (i = 0; i < n; i++) {
        snprintf(k, sizeof(k), "k/%04zu", i);
        ASSERT_STR_EQ(keys[i], k);
    }
    n = ls_all(c, NULL, 0, true, keys, 3000, &pages);
    ASSERT_EQ(n, 2501);
    ASSERT_STR_EQ(keys[2500], "other");
    n = ls_all(c, "k/1", 7, false, keys, 3000, &pages);
    ASSERT_EQ(n, 1000);
    ASSERT_STR_EQ(keys[0], "k/1000");
    ASSERT_EQ(pages, 143); /* 1000 / 7, rounded up */
    n = ls_all(c, "nope/", 0, false, keys, 3000, &pages);
    ASSERT_EQ(n, 0);
    /* limit, after, consistent, more */
    memset(&rq, 0, sizeof(rq));
    rq.op = P2PRAFT_API_LS;
    rq.key = "k/";
    rq.after = "k/0100";
    rq.limit = 3;
    rq.consistent = true;
    ASSERT_OK(p2praft_client_call(c, &rq, &res));
    ASSERT_EQ(res->n_entries, 3);
    ASSERT(res->more);
    ASSERT_STR_EQ(res->entries[0].key, "k/0101");
    ASSERT_STR_EQ(res->entries[2].key, "k/0103");
    ASSERT(res->index > 0);
    p2praft_result_free(res);
    /* the byte budget: 20 values of 300 KiB make pages of 4 (1 MiB) */
    big = calloc(1, 300 * 1024);
    ASSERT(big != NULL);
    for (i = 0; i < 20; i++) {
        snprintf(k, sizeof(k), "big/%02zu", i);
        big[0] = (uint8_t)i;
        ASSERT_OK(kv_set(c, k, big, 300 * 1024, NULL));
    }
    free(big);
    memset(&rq, 0, sizeof(rq));
    rq.op = P2PRAFT_API_LS;
    rq.key = "big/";
    ASSERT_OK(p2praft_client_call(c, &rq, &res));
    ASSERT_EQ(res->n_entries, 4);
    ASSERT(res->more);
    ASSERT_EQ(res->entries[3].len, 300 * 1024);
    ASSERT_EQ(res->entries[3].value[0], 3);
    p2praft_result_free(res);
    p2praft_client_close(c);
    nh_teardown(ns, 1, base);
}

/* Watch events, collected by the client's thread. */
struct watched {
    pthread_mutex_t mu;
    unsigned n;
    struct {
        enum p2praft_watch_kind kind;
        uint64_t index, dropped;
        char key[32];
        char val[32];
        size_t len;
        int end_rv;
    } ev[4096];
    uint64_t sets;    /* SET events */
    bool ended;
};

static void on_watch(void *ctx, const struct p2praft_watch_event *e)
{
    struct watched *w = ctx;
    pthread_mutex_lock(&w->mu);
    if (w->n < sizeof(w->ev) / sizeof(w->ev[0])) {
        w->ev[w->n].kind = e->kind;
        w->ev[w->n].index = e->index;
        w->ev[w->n].dropped = e->dropped;
        snprintf(w->ev[w->n].key, sizeof(w->ev[w->n].key), "%s",
                 e->key != NULL ? e->key : "");
        w->ev[w->n].len = e->len;
        if (e->value != NULL && e->len < sizeof(w->ev[w->n].val) - 1) {
            memcpy(w->ev[w->n].val, e->value, e->len);
        }
        w->ev[w->n].end_rv = e->kind == P2PRAFT_WATCH_END ? e->end->rv : 0;
        w->n++;
    }
    if (e->kind == P2PRAFT_WATCH_SET) {
        w->sets++;
    }
    if (e->kind == P2PRAFT_WATCH_END) {
        w->ended = true;
    }
    pthread_mutex_unlock(&w->mu);
}

static unsigned watched_n(struct watched *w)
{
    unsigned n;
    pthread_mutex_lock(&w->mu);
    n = w->n;
    pthread_mutex_unlock(&w->mu);
    return n;
}

static void wait_events(struct watched *w, unsigned n, unsigned timeout_ms)
{
    uint64_t end = nh_now_ms() + nh_scale(timeout_ms);
    while (watched_n(w) < n) {
        if (nh_now_ms() > end) {
            test__fail(__FILE__, __LINE__, "%u events, not %u, in %u ms",
                       watched_n(w), n, timeout_ms);
        }
        nh_pause();
    }
}

TEST(session, watch_events)
{
    struct hnode ns[1];
    char base[] = "/tmp/p2praft-sess-XXXXXX";
    struct p2praft_client *c, *w2;
    static struct watched w;
    uint64_t i1, i2, i3;
    uint32_t id = 0;

    one_node(ns, base);
    c = client_of(&ns[0]);
    w2 = client_of(&ns[0]);
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    ASSERT_OK(p2praft_client_watch(w2, "w/", on_watch, &w, &id));
    wait_events(&w, 1, 5000);
    ASSERT_EQ(w.ev[0].kind, P2PRAFT_WATCH_STARTED);
    nh_wait_num(&ns[0], "api_watches", 1, 5000);
    ASSERT_OK(kv_op(c, P2PRAFT_API_SET, "w/a", NULL, "1", &i1));
    ASSERT_OK(kv_op(c, P2PRAFT_API_SET, "x/b", NULL, "2", NULL));
    ASSERT_OK(kv_op(c, P2PRAFT_API_CAS, "w/a", "1", "3", &i2));
    ASSERT_ERR(kv_op(c, P2PRAFT_API_CAS, "w/a", "1", "4", NULL),
               P2PRAFT_EMISMATCH);
    ASSERT_OK(kv_op(c, P2PRAFT_API_DEL, "w/a", NULL, NULL, &i3));
    ASSERT_ERR(kv_op(c, P2PRAFT_API_DEL, "w/missing", NULL, NULL, NULL),
               P2PRAFT_ENOTFOUND);
    ASSERT_OK(kv_op(c, P2PRAFT_API_SET, "w/z", NULL, "", NULL));
    wait_events(&w, 5, 5000);
    ASSERT_EQ(w.ev[1].kind, P2PRAFT_WATCH_SET);
    ASSERT_STR_EQ(w.ev[1].key, "w/a");
    ASSERT_STR_EQ(w.ev[1].val, "1");
    ASSERT_EQ_U64(w.ev[1].index, i1);
    ASSERT(w.ev[1].index > w.ev[0].index);
    ASSERT_EQ(w.ev[2].kind, P2PRAFT_WATCH_CAS);
    ASSERT_STR_EQ(w.ev[2].val, "3");
    ASSERT_EQ_U64(w.ev[2].index, i2);
    ASSERT_EQ(w.ev[3].kind, P2PRAFT_WATCH_DEL);
    ASSERT_STR_EQ(w.ev[3].key, "w/a");
    ASSERT_EQ_U64(w.ev[3].index, i3);
    ASSERT_EQ(w.ev[4].kind, P2PRAFT_WATCH_SET);
    ASSERT_STR_EQ(w.ev[4].key, "w/z");
    ASSERT_EQ(w.ev[4].len, 0);
    /* UNWATCH: END, rv 0; the node forgets it */
    ASSERT_OK(p2praft_client_unwatch(w2, id));
    wait_events(&w, 6, 5000);
    ASSERT_EQ(w.ev[5].kind, P2PRAFT_WATCH_END);
    ASSERT_EQ(w.ev[5].end_rv, 0);
    nh_wait_num(&ns[0], "api_watches", 0, 5000);
    ASSERT_OK(kv_op(c, P2PRAFT_API_SET, "w/after", NULL, "x", NULL));
    ASSERT_EQ(watched_n(&w), 6);
    /* a client closed with a watch running: its END comes before the
     * close returns */
    ASSERT_OK(p2praft_client_watch(w2, NULL, on_watch, &w, &id));
    wait_events(&w, 7, 5000);
    p2praft_client_close(w2);
    ASSERT_EQ(watched_n(&w), 8);
    ASSERT_EQ(w.ev[7].kind, P2PRAFT_WATCH_END);
    ASSERT_EQ(w.ev[7].end_rv, P2PRAFT_ECANCELED);
    nh_wait_num(&ns[0], "api_watches", 0, 5000);
    p2praft_client_close(c);
    pthread_mutex_destroy(&w.mu);
    nh_teardown(ns, 1, base);
}

TEST(session, slow_watcher_dropped)
{
    struct hnode ns[1];
    char base[] = "/tmp/p2praft-sess-XXXXXX";
    struct p2praft_client *c;
    struct p2praft__api_resp a;
    struct p2praft__api_event ev;
    uint8_t *body, *val;
    const unsigned n = 25, vlen = 256 * 1024;
    unsigned i, sets = 0, after = 0;
    uint64_t dropped = 0;
    bool got_dropped = false;
    int fd;

    one_node(ns, base);
    c = client_of(&ns[0]);
    /* a watcher that reads STARTED, then nothing */
    fd = nh_unix_connect(p2praft_node_api_path(ns[0].node));
    send_req(fd, P2PRAFT_API_WATCH, 1, "", NULL);
    read_resp(fd, &a, &body, 5000);
    ASSERT_EQ(a.type, P2PRAFT_API_EVENT);
    ASSERT_EQ(a.status, P2PRAFT_WATCH_STARTED);
    free(body);
    /* 6.25 MiB of changes: more than the watch's queue (4 MiB) and the
     * socket's buffer */
    val = malloc(vlen);
    ASSERT(val != NULL);
    memset(val, 'v', vlen);
    for (i = 0; i < n; i++) {
        char k[32];
        snprintf(k, sizeof(k), "s/%03u", i);
        ASSERT_OK(kv_set(c, k, val, vlen, NULL));
    }
    free(val);
    /* now read: events, then one DROPPED with the count of the rest, before
     * anything later */
    while (!got_dropped) {
        read_resp(fd, &a, &body, 10000);
        ASSERT_EQ(a.type, P2PRAFT_API_EVENT);
        ASSERT_OK(p2praft__api_event_parse(&a, &ev));
        if (ev.kind == P2PRAFT_WATCH_DROPPED) {
            got_dropped = true;
            dropped = ev.count;
        } else {
            ASSERT_EQ(ev.kind, P2PRAFT_WATCH_SET);
            ASSERT_EQ(ev.vlen, vlen);
            sets++;
        }
        free(body);
    }
    printf("  %u events delivered, %llu dropped and reported\n", sets,
           (unsigned long long)dropped);
    ASSERT(dropped > 0);
    ASSERT(sets < n);
    ASSERT_EQ_U64(sets + dropped, n); /* never a silent loss */
    /* and events flow again */
    ASSERT_OK(kv_set(c, "s/final", "f", 1, NULL));
    read_resp(fd, &a, &body, 10000);
    ASSERT_OK(p2praft__api_event_parse(&a, &ev));
    ASSERT_EQ(ev.kind, P2PRAFT_WATCH_SET);
    ASSERT(ev.klen == 7 && memcmp(ev.key, "s/final", 7) == 0);
    free(body);
    after++;
    (void)after;
    close(fd);
    nh_wait_num(&ns[0], "api_watches", 0, 5000);
    p2praft_client_close(c);
    nh_teardown(ns, 1, base);
}

TEST(session, watch_survives_leader_change)
{
    struct hnode ns[3];
    char base[] = "/tmp/p2praft-sess-XXXXXX";
    struct p2praft_client *c, *wc;
    static struct watched w;
    unsigned i, leader, f, g;

    nh_prepare(ns, 3, base);
    for (i = 0; i < 3; i++) {
        nh_start(ns, 3, i, true);
    }
    leader = nh_wait_leader(ns, 3, 10000);
    f = (leader + 1) % 3;
    g = (leader + 2) % 3;
    nh_wait_field(&ns[f], "caught_up", "yes", 10000);
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    wc = client_of(&ns[f]);
    ASSERT_OK(p2praft_client_watch(wc, "", on_watch, &w, NULL));
    wait_events(&w, 1, 5000);
    c = client_of(&ns[g]);
    ASSERT_OK(kv_op(c, P2PRAFT_API_SET, "before", NULL, "1", NULL));
    wait_events(&w, 2, 5000);
    /* the leader goes; f and g elect another; f's watch goes on */
    p2praft_node_stop(ns[leader].node);
    ns[leader].node = NULL;
    ASSERT(nh_wait_leader(ns, 3, 10000) != leader);
    ASSERT_OK(kv_op(c, P2PRAFT_API_SET, "after", NULL, "2", NULL));
    wait_events(&w, 3, 10000);
    ASSERT_EQ(w.ev[1].kind, P2PRAFT_WATCH_SET);
    ASSERT_STR_EQ(w.ev[1].key, "before");
    ASSERT_EQ(w.ev[2].kind, P2PRAFT_WATCH_SET);
    ASSERT_STR_EQ(w.ev[2].key, "after");
    ASSERT(w.ev[2].index > w.ev[1].index);
    ASSERT(!w.ended);
    p2praft_client_close(c);
    p2praft_client_close(wc);
    pthread_mutex_destroy(&w.mu);
    nh_teardown(ns, 3, base);
}

TEST(session, remote_clients)
{
    struct hnode ns[1];
    char base[] = "/tmp/p2praft-sess-XXXXXX", err[400], file[300];
    struct lp2p_key listed, in_file, stranger;
    struct lp2p_peer_id pid;
    char id_listed[LP2P_PEER_ID_STRMAX], id_file[LP2P_PEER_ID_STRMAX];
    struct p2praft_client_config cfg;
    struct p2praft_client *c = NULL;
    struct p2praft_request rq;
    struct p2praft_result *res = NULL;
    static struct watched w;
    FILE *fp;
    int rv;

    ASSERT_OK(lp2p_key_generate(&listed));
    ASSERT_OK(lp2p_key_generate(&in_file));
    ASSERT_OK(lp2p_key_generate(&stranger));
    ASSERT_OK(lp2p_peer_id_from_key(&listed, &pid));
    lp2p_peer_id_to_string(&pid, id_listed, sizeof(id_listed));
    ASSERT_OK(lp2p_peer_id_from_key(&in_file, &pid));
    lp2p_peer_id_to_string(&pid, id_file, sizeof(id_file));
    nh_prepare(ns, 1, base);
    snprintf(file, sizeof(file), "%s/clients", base);
    fp = fopen(file, "w");
    ASSERT(fp != NULL);
    fprintf(fp, "# remote clients\n\n  %s  \n", id_file);
    fclose(fp);
    ns[0].clients[0] = id_listed;
    ns[0].n_clients = 1;
    ns[0].clients_file = file;
    nh_start(ns, 1, 0, true);
    ASSERT_EQ(nh_wait_leader(ns, 1, 10000), 0);
    nh_wait_field(&ns[0], "caught_up", "yes", 10000);
    ASSERT_EQ(nh_field_num(&ns[0], "clients"), 2);

    /* a listed client does what the socket does */
    p2praft_client_config_init(&cfg);
    cfg.node = ns[0].peer_addr;
    cfg.key = &listed;
    cfg.timeout_ms = nh_scale(10000);
    ASSERT_OK(p2praft_client_open(&c, &cfg, err, sizeof(err)));
    ASSERT_STR_EQ(p2praft_client_node_id(c), ns[0].id);
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    ASSERT_OK(p2praft_client_watch(c, "r/", on_watch, &w, NULL));
    wait_events(&w, 1, 5000);
    ASSERT_OK(kv_op(c, P2PRAFT_API_SET, "r/k", NULL, "remote", NULL));
    memset(&rq, 0, sizeof(rq));
    rq.op = P2PRAFT_API_GET;
    rq.key = "r/k";
    rq.consistent = true;
    ASSERT_OK(p2praft_client_call(c, &rq, &res));
    ASSERT_EQ(res->len, 6);
    ASSERT_MEM_EQ(res->data, "remote", 6);
    p2praft_result_free(res);
    rq.op = P2PRAFT_API_STATUS;
    ASSERT_OK(p2praft_client_call(c, &rq, &res));
    ASSERT(strstr((const char *)res->data, "client_connections: 1\n") != NULL);
    p2praft_result_free(res);
    wait_events(&w, 2, 5000);
    ASSERT_STR_EQ(w.ev[1].key, "r/k");
    p2praft_client_close(c);
    pthread_mutex_destroy(&w.mu);
    /* one from the file too */
    cfg.key = &in_file;
    ASSERT_OK(p2praft_client_open(&c, &cfg, err, sizeof(err)));
    ASSERT_OK(kv_op(c, P2PRAFT_API_SET, "r/file", NULL, "ok", NULL));
    p2praft_client_close(c);
    /* a stranger: refused before anything is read, counted */
    cfg.key = &stranger;
    rv = p2praft_client_open(&c, &cfg, err, sizeof(err));
    ASSERT_ERR(rv, P2PRAFT_EDENIED);
    ASSERT(strstr(err, "--client") != NULL);
    ASSERT_EQ(nh_field_num(&ns[0], "client_refused"), 1);
    nh_wait_num(&ns[0], "client_connections", 0, 5000);
    ASSERT_EQ(nh_field_num(&ns[0], "keys"), 2);
    p2praft_node_stop(ns[0].node);
    ns[0].node = NULL;

    /* a file with a bad line stops the start, naming it */
    fp = fopen(file, "w");
    ASSERT(fp != NULL);
    fprintf(fp, "%s\nnot-a-peer-id\n", id_file);
    fclose(fp);
    {
        struct p2praft_node_config ncfg;
        struct p2praft_node *node = NULL;
        const char *listen[1] = {ns[0].listen};
        p2praft_node_config_init(&ncfg);
        ncfg.key = &ns[0].key;
        ncfg.listen = listen;
        ncfg.n_listen = 1;
        ncfg.data_dir = ns[0].dir;
        ncfg.clients_file = file;
        ASSERT_ERR(p2praft_node_start(&node, &ncfg, err, sizeof(err)),
                   P2PRAFT_EINVAL);
        ASSERT(strstr(err, ":2: 'not-a-peer-id' is not a peer ID") != NULL);
        ncfg.clients_file = "/nonexistent/clients";
        ASSERT_ERR(p2praft_node_start(&node, &ncfg, err, sizeof(err)),
                   P2PRAFT_EIO);
        ASSERT(strstr(err, "/nonexistent/clients") != NULL);
    }
    unlink(file);
    lp2p_key_wipe(&listed);
    lp2p_key_wipe(&in_file);
    lp2p_key_wipe(&stranger);
    nh_teardown(ns, 1, base);
}

/* A client that asks for large values and does not read them holds at
 * most P2PRAFT__SESSION_OUT_MAX of the node's memory: the reads past it
 * are answered BUSY (not served), each once, and the node goes on. */
TEST(session, unread_answers_are_bounded)
{
    struct hnode ns[1];
    char base[] = "/tmp/p2praft-sess-XXXXXX";
    struct p2praft_client *c;
    struct p2praft__api_resp a;
    uint8_t *body, *big, seen[21];
    unsigned i, ok = 0, busy = 0;
    int fd;

    one_node(ns, base);
    c = client_of(&ns[0]);
    big = calloc(1, P2PRAFT_KV_VALUE_MAX);
    ASSERT(big != NULL);
    ASSERT_OK(kv_set(c, "big", big, P2PRAFT_KV_VALUE_MAX, NULL));
    free(big);
    fd = nh_unix_connect(p2praft_node_api_path(ns[0].node));
    /* 20 reads of 4 MiB (80 MiB of answers), and no reading for now */
    for (i = 1; i <= 20; i++) {
        send_req(fd, P2PRAFT_API_GET, i, "big", NULL);
    }
    nh_wait_num(&ns[0], "api_requests", 0, 10000);
    memset(seen, 0, sizeof(seen));
    for (i = 0; i < 20; i++) {
        read_resp(fd, &a, &body, 20000);
        ASSERT(a.id >= 1 && a.id <= 20 && seen[a.id] == 0);
        seen[a.id] = 1;
        if (a.status == P2PRAFT_API_OK) {
            ASSERT_EQ(a.len, P2PRAFT_KV_VALUE_MAX);
            ok++;
        } else {
            ASSERT_EQ(a.status, P2PRAFT_API_BUSY);
            ASSERT(memmem(a.payload, a.len, "wait for this client", 20) !=
                   NULL);
            busy++;
        }
        free(body);
    }
    printf("  20 unread 4 MiB answers: %u sent, %u refused BUSY\n", ok,
           busy);
    ASSERT(ok >= 1 && ok <= 5); /* 16 MiB, and the socket's buffer */
    ASSERT_EQ(ok + busy, 20);
    /* reading again: served again */
    send_req(fd, P2PRAFT_API_GET, 21, "big", NULL);
    read_resp(fd, &a, &body, 10000);
    ASSERT_EQ(a.id, 21);
    ASSERT_EQ(a.status, P2PRAFT_API_OK);
    free(body);
    close(fd);
    p2praft_client_close(c);
    nh_teardown(ns, 1, base);
}
