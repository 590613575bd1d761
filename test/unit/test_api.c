/*
 * raft/api.c, the node's API wire codec (version 2): frames, requests with
 * their ids, answers and watch events, LS pages, the version-1 forms it
 * still speaks to old clients. Known bytes (the format of p2praft.h),
 * round trips of every op, status and event, every truncation, the frame
 * limit, and allocation failures. The parsers read from guarded pages, so
 * an over-read faults.
 */
#include "lp2p.h"
#include "oom.h"
#include "raft/api.h"
#include "test.h"
#include "util/heap.h"

/* Parse a request body from a guarded copy. */
static int parse_req(struct p2praft__api_req *r, const uint8_t *body,
                     size_t len, char *err, size_t errlen)
{
    uint8_t *g = test__guarded(body, len);
    int rv;
    memset(r, 0, sizeof(*r));
    err[0] = '\0';
    rv = p2praft__api_request_parse(r, g, len, err, errlen);
    test__guarded_free(g, len);
    return rv;
}

TEST(api, request_known_bytes)
{
    /* SET "intruder" = "x" with id 0x01020304, as p2praft.h describes it */
    static const uint8_t set[] = "\0\0\0\x18\x02\x02\0\x01\x02\x03\x04"
                                 "\0\0\0\x08intruder\0\0\0\x01x";
    static const uint8_t status[] = "\0\0\0\x07\x02\x05\0\0\0\0\x09";
    /* LS prefix "p", after "pa", limit 10, consistent + keys only */
    static const uint8_t ls[] = "\0\0\0\x16\x02\x07\x03\0\0\0\x05\0\0\0\x0a"
                                "\0\0\0\x01p\0\0\0\x02pa";
    /* UNWATCH of watch 7 */
    static const uint8_t unwatch[] = "\0\0\0\x0b\x02\x09\0\0\0\0\x08"
                                     "\0\0\0\x07";
    struct p2praft__api_req q;
    uint8_t *f;
    size_t len = 0;
    memset(&q, 0, sizeof(q));
    q.op = P2PRAFT_API_SET;
    q.id = 0x01020304;
    q.key = "intruder";
    q.val = (uint8_t *)"x";
    q.vlen = 1;
    f = p2praft__api_request_encode(&q, &len);
    ASSERT(f != NULL);
    ASSERT_EQ(len, sizeof(set) - 1);
    ASSERT_MEM_EQ(f, set, len);
    lp2p__free(f);
    memset(&q, 0, sizeof(q));
    q.op = P2PRAFT_API_STATUS;
    q.id = 9;
    f = p2praft__api_request_encode(&q, &len);
    ASSERT(f != NULL);
    ASSERT_EQ(len, sizeof(status) - 1);
    ASSERT_MEM_EQ(f, status, len);
    lp2p__free(f);
    memset(&q, 0, sizeof(q));
    q.op = P2PRAFT_API_LS;
    q.flags = P2PRAFT__API_CONSISTENT | P2PRAFT__API_KEYS_ONLY;
    q.id = 5;
    q.limit = 10;
    q.key = "p";
    q.after = "pa";
    f = p2praft__api_request_encode(&q, &len);
    ASSERT(f != NULL);
    ASSERT_EQ(len, sizeof(ls) - 1);
    ASSERT_MEM_EQ(f, ls, len);
    lp2p__free(f);
    memset(&q, 0, sizeof(q));
    q.op = P2PRAFT_API_UNWATCH;
    q.id = 8;
    q.target = 7;
    f = p2praft__api_request_encode(&q, &len);
    ASSERT(f != NULL);
    ASSERT_EQ(len, sizeof(unwatch) - 1);
    ASSERT_MEM_EQ(f, unwatch, len);
    lp2p__free(f);
}

TEST(api, request_roundtrip_every_op)
{
    static const uint8_t ops[] = {
        P2PRAFT_API_GET,   P2PRAFT_API_SET,     P2PRAFT_API_DEL,
        P2PRAFT_API_CAS,   P2PRAFT_API_STATUS,  P2PRAFT_API_BARRIER,
        P2PRAFT_API_LS,    P2PRAFT_API_WATCH,   P2PRAFT_API_UNWATCH,
        P2PRAFT_API_HELLO, P2PRAFT_API_SNAPSHOT, P2PRAFT_API_METRICS,
        P2PRAFT_API_CLUSTER, P2PRAFT_API_HEALTH, P2PRAFT_API_SNAPSHOT_NOW};
    uint8_t bin[3] = {0, 0xff, 0}; /* values are bytes, NULs included */
    size_t i;
    for (i = 0; i < sizeof(ops); i++) {
        struct p2praft__api_req q, r;
        char err[256];
        uint8_t *f;
        size_t len = 0;
        uint8_t op = ops[i];
        bool key = op == P2PRAFT_API_GET || p2praft__api_is_write(op) ||
                   op == P2PRAFT_API_LS || op == P2PRAFT_API_WATCH;
        memset(&q, 0, sizeof(q));
        q.op = op;
        q.id = 1000u + (uint32_t)i;
        q.flags = op == P2PRAFT_API_GET  ? P2PRAFT__API_CONSISTENT
                  : op == P2PRAFT_API_LS ? P2PRAFT__API_KEYS_ONLY
                                         : 0;
        q.key = key ? "some/key" : NULL;
        q.exp = (uint8_t *)"old";
        q.elen = op == P2PRAFT_API_CAS ? 3 : 0;
        q.val = bin;
        q.vlen = op == P2PRAFT_API_SET || op == P2PRAFT_API_CAS ? sizeof(bin)
                                                                : 0;
        q.after = op == P2PRAFT_API_LS ? "some/k" : NULL;
        q.limit = op == P2PRAFT_API_LS ? 77 : 0;
        q.target = op == P2PRAFT_API_UNWATCH ? 99 : 0;
        f = p2praft__api_request_encode(&q, &len);
        ASSERT(f != NULL);
        ASSERT_EQ(len, P2PRAFT__API_PREFIX + P2PRAFT__API_REQ_FIELDS +
                           (key ? 4 + 8 : 0) + (q.elen > 0 ? 4 + q.elen : 0) +
                           (q.vlen > 0 ? 4 + q.vlen : 0) +
                           (op == P2PRAFT_API_LS ? 4 + 4 + 6 : 0) +
                           (op == P2PRAFT_API_UNWATCH ? 4 : 0));
        ASSERT_OK(p2praft__api_frame(f, len, &(uint32_t){0}));
        ASSERT_OK(parse_req(&r, f + P2PRAFT__API_PREFIX,
                            len - P2PRAFT__API_PREFIX, err, sizeof(err)));
        ASSERT_EQ(r.version, P2PRAFT_API_VERSION);
        ASSERT_EQ(r.op, q.op);
        ASSERT_EQ(r.flags, q.flags);
        ASSERT_EQ(r.id, q.id);
        if (key) {
            ASSERT_STR_EQ(r.key, "some/key");
        } else {
            ASSERT(r.key == NULL);
        }
        ASSERT_EQ(r.elen, q.elen);
        ASSERT_MEM_EQ(r.exp != NULL ? r.exp : (uint8_t *)"", q.exp, r.elen);
        ASSERT_EQ(r.vlen, q.vlen);
        ASSERT_MEM_EQ(r.val != NULL ? r.val : (uint8_t *)"", bin, r.vlen);
        if (op == P2PRAFT_API_LS) {
            ASSERT_STR_EQ(r.after, "some/k");
        } else {
            ASSERT(r.after == NULL);
        }
        ASSERT_EQ(r.limit, q.limit);
        ASSERT_EQ(r.target, q.target);
        p2praft__api_req_release(&r);
        lp2p__free(f);
    }
}

/* A prefix (LS, WATCH) may be empty; a key may not. */
TEST(api, request_empty_prefix)
{
    struct p2praft__api_req q, r;
    char err[256];
    uint8_t *f;
    size_t len = 0;
    memset(&q, 0, sizeof(q));
    q.op = P2PRAFT_API_WATCH;
    q.id = 3;
    f = p2praft__api_request_encode(&q, &len);
    ASSERT(f != NULL);
    ASSERT_OK(parse_req(&r, f + P2PRAFT__API_PREFIX, len - P2PRAFT__API_PREFIX,
                        err, sizeof(err)));
    ASSERT_STR_EQ(r.key, "");
    p2praft__api_req_release(&r);
    lp2p__free(f);
}

TEST(api, request_every_truncation_fails)
{
    static const uint8_t ops[] = {P2PRAFT_API_CAS, P2PRAFT_API_LS,
                                  P2PRAFT_API_UNWATCH};
    size_t i;
    for (i = 0; i < sizeof(ops); i++) {
        struct p2praft__api_req q, r;
        char err[256];
        uint8_t *f;
        size_t len = 0, cut;
        memset(&q, 0, sizeof(q));
        q.op = ops[i];
        q.id = 1;
        q.key = "k";
        q.exp = (uint8_t *)"ab";
        q.elen = 2;
        q.val = (uint8_t *)"cde";
        q.vlen = 3;
        q.after = "a";
        f = p2praft__api_request_encode(&q, &len);
        ASSERT(f != NULL);
        for (cut = 0; cut < len - P2PRAFT__API_PREFIX; cut++) {
            ASSERT_EQ(parse_req(&r, f + P2PRAFT__API_PREFIX, cut, err,
                                sizeof(err)),
                      -1);
            ASSERT(strstr(err, "truncated") != NULL);
            ASSERT_EQ(r.version, cut > 0 ? P2PRAFT_API_VERSION : 0);
            p2praft__api_req_release(&r);
        }
        lp2p__free(f);
    }
}

TEST(api, request_rejects_bad_bodies)
{
    /* op, flags, empty key, NUL in key, NUL in prefix, trailing bytes, an
     * oversized value length */
    static const struct {
        const char *body;
        size_t len;
        const char *err;
    } cases[] = {
        {"\x02\x10\x00\0\0\0\x01", 7, "unknown operation"},
        {"\x02\x00\x00\0\0\0\x01", 7, "unknown operation"},
        {"\x02\x01\x02\0\0\0\x01\0\0\0\x01k", 12, "flags"},
        {"\x02\x07\x04\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\0", 19, "flags"},
        {"\x02\x02\x01\0\0\0\x01\0\0\0\x01k\0\0\0\0", 16, "flags"},
        {"\x02\x03\x00\0\0\0\x01\0\0\0\0", 11, "a key is"},
        {"\x02\x03\x00\0\0\0\x01\0\0\0\x02k\0", 13, "a key is"},
        {"\x02\x08\x00\0\0\0\x01\0\0\0\x02p\0", 13, "a prefix is"},
        {"\x02\x05\x00\0\0\0\x01\x00", 8, "unexpected bytes"},
        {"\x02\x1e\x00\0\0\0\x01\x00", 8, "unexpected bytes"}, /* SNAPSHOT */
        {"\x02\x1e\x01\0\0\0\x01", 7, "flags"},
        {"\x02\x1f\x00\0\0\0\x01", 7, "unknown operation"},
        {"\x02\x02\x00\0\0\0\x01\0\0\0\x01k\x00\x40\x00\x01", 16,
         "value too long"},
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct p2praft__api_req r;
        char err[256];
        ASSERT_EQ(parse_req(&r, (const uint8_t *)cases[i].body, cases[i].len,
                            err, sizeof(err)),
                  -1);
        if (strstr(err, cases[i].err) == NULL) {
            test__fail(__FILE__, __LINE__, "case %zu: \"%s\" lacks \"%s\"", i,
                       err, cases[i].err);
        }
        ASSERT_EQ(r.id, 1);
        p2praft__api_req_release(&r);
    }
}

/* The operator requests (20..23) carry no field and no flag; the numbers
 * around them are unknown. */
TEST(api, operator_requests)
{
    uint8_t body[8] = {2, 0, 0, 0, 0, 0, 1, 0};
    struct p2praft__api_req r, q;
    char err[256];
    uint8_t *f;
    size_t len = 0;
    unsigned op;
    for (op = P2PRAFT_API_SNAPSHOT; op <= P2PRAFT_API_HEALTH; op++) {
        body[1] = (uint8_t)op;
        ASSERT(p2praft__api_is_operator((uint8_t)op));
        ASSERT(!p2praft__api_is_write((uint8_t)op));
        ASSERT_EQ(parse_req(&r, body, 7, err, sizeof(err)), 0);
        ASSERT_EQ(r.op, op);
        ASSERT(r.key == NULL && r.val == NULL);
        p2praft__api_req_release(&r);
        ASSERT_EQ(parse_req(&r, body, 8, err, sizeof(err)), -1);
        /* SNAPSHOT may carry a cursor field: one byte is a truncated one */
        ASSERT(strstr(err, op == P2PRAFT_API_SNAPSHOT ? "backup cursor"
                                                      : "unexpected bytes") !=
               NULL);
        p2praft__api_req_release(&r);
        body[2] = P2PRAFT__API_CONSISTENT;
        ASSERT_EQ(parse_req(&r, body, 7, err, sizeof(err)), -1);
        ASSERT(strstr(err, "flags") != NULL);
        p2praft__api_req_release(&r);
        body[2] = 0;
        /* the encoder writes exactly the header */
        memset(&q, 0, sizeof(q));
        q.op = (uint8_t)op;
        q.id = 9;
        f = p2praft__api_request_encode(&q, &len);
        ASSERT(f != NULL);
        ASSERT_EQ(len, P2PRAFT__API_PREFIX + 7);
        ASSERT_EQ(f[P2PRAFT__API_PREFIX + 1], op);
        lp2p__free(f);
    }
    for (op = 19; op <= 24; op += 5) {
        body[1] = (uint8_t)op;
        ASSERT(!p2praft__api_is_operator((uint8_t)op));
        ASSERT_EQ(parse_req(&r, body, 7, err, sizeof(err)), -1);
        ASSERT(strstr(err, "unknown operation") != NULL);
        p2praft__api_req_release(&r);
    }
}

/* SNAPSHOT's optional cursor (a paged backup): "" and "ID:OFFSET" go
 * through the codec; without one, the request is the bare header. */
TEST(api, snapshot_cursor)
{
    static const char *const cursors[] = {"", "12345:4194304"};
    struct p2praft__api_req q, r;
    char err[256];
    uint8_t *f;
    size_t len = 0;
    unsigned i;
    for (i = 0; i < 2; i++) {
        memset(&q, 0, sizeof(q));
        q.op = P2PRAFT_API_SNAPSHOT;
        q.id = 3;
        q.key = (char *)cursors[i];
        f = p2praft__api_request_encode(&q, &len);
        ASSERT(f != NULL);
        ASSERT_EQ(len, P2PRAFT__API_PREFIX + 7 + 4 + strlen(cursors[i]));
        ASSERT_EQ(parse_req(&r, f + P2PRAFT__API_PREFIX,
                            len - P2PRAFT__API_PREFIX, err, sizeof(err)),
                  0);
        ASSERT(r.key != NULL);
        ASSERT_STR_EQ(r.key, cursors[i]);
        p2praft__api_req_release(&r);
        /* one byte more: refused */
        {
            uint8_t more[64];
            ASSERT(len + 1 <= sizeof(more));
            memcpy(more, f, len);
            more[len] = 'x';
            ASSERT_EQ(parse_req(&r, more + P2PRAFT__API_PREFIX,
                                len + 1 - P2PRAFT__API_PREFIX, err,
                                sizeof(err)),
                      -1);
            ASSERT(strstr(err, "unexpected bytes") != NULL);
            p2praft__api_req_release(&r);
        }
        lp2p__free(f);
    }
}

/* The membership ops (11..15) carry their argument in the key field:
 * PEER_ADD and PEER_RM need one, TRANSFER may have an empty one (any
 * voter), PEERS and REMOVED none; only TRANSFER takes a flag (HANDOVER). */
TEST(api, request_membership_ops)
{
    static const struct {
        uint8_t op, flags;
        const char *arg;
    } ok[] = {
        {P2PRAFT_API_PEERS, 0, NULL},
        {P2PRAFT_API_PEER_ADD, 0, "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWx"},
        {P2PRAFT_API_PEER_RM, 0, "12D3KooWx"},
        {P2PRAFT_API_TRANSFER, 0, ""},
        {P2PRAFT_API_TRANSFER, P2PRAFT__API_HANDOVER, "12D3KooWx"},
        {P2PRAFT_API_REMOVED, 0, NULL},
    };
    size_t i;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct p2praft__api_req q, r;
        char err[256];
        size_t len = 0;
        uint8_t *f;
        memset(&q, 0, sizeof(q));
        q.op = ok[i].op;
        q.flags = ok[i].flags;
        q.id = 7;
        q.key = (char *)ok[i].arg;
        f = p2praft__api_request_encode(&q, &len);
        ASSERT(f != NULL);
        ASSERT(p2praft__api_is_member(q.op));
        ASSERT_EQ(parse_req(&r, f + P2PRAFT__API_PREFIX,
                            len - P2PRAFT__API_PREFIX, err, sizeof(err)),
                  0);
        ASSERT_EQ(r.op, q.op);
        ASSERT_EQ(r.flags, q.flags);
        if (ok[i].arg != NULL) {
            ASSERT_STR_EQ(r.key, ok[i].arg);
        } else {
            ASSERT(r.key == NULL);
        }
        p2praft__api_req_release(&r);
        lp2p__free(f);
    }
    ASSERT(p2praft__api_is_change(P2PRAFT_API_PEER_ADD));
    ASSERT(p2praft__api_is_change(P2PRAFT_API_PEER_RM));
    ASSERT(!p2praft__api_is_change(P2PRAFT_API_TRANSFER));
    ASSERT(!p2praft__api_is_member(P2PRAFT_API_HELLO));
    {
        /* PEER_RM without its argument; HANDOVER on another op */
        struct p2praft__api_req r;
        char err[256];
        ASSERT_EQ(parse_req(&r, (const uint8_t *)"\x02\x0d\x00\0\0\0\x01"
                                                 "\0\0\0\0",
                            11, err, sizeof(err)),
                  -1);
        p2praft__api_req_release(&r);
        ASSERT_EQ(parse_req(&r, (const uint8_t *)"\x02\x0b\x04\0\0\0\x01", 7,
                            err, sizeof(err)),
                  -1);
        ASSERT(strstr(err, "flags") != NULL);
        p2praft__api_req_release(&r);
    }
}

/* A body of another version fails with its version recorded, so that the
 * server can answer a version-1 client in its own format. */
TEST(api, request_other_versions)
{
    /* what a version-1 client sends: SET "k" = "v" */
    static const uint8_t v1[] = "\x01\x02\x00\0\0\0\x01k\0\0\0\x01v";
    static const uint8_t v3[] = "\x03\x05\x00\0\0\0\x01";
    struct p2praft__api_req r;
    char err[256];
    ASSERT_EQ(parse_req(&r, v1, sizeof(v1) - 1, err, sizeof(err)), -1);
    ASSERT_EQ(r.version, 1);
    ASSERT(strstr(err, "version 1") != NULL);
    ASSERT(strstr(err, "version 2") != NULL);
    p2praft__api_req_release(&r);
    ASSERT_EQ(parse_req(&r, v3, sizeof(v3) - 1, err, sizeof(err)), -1);
    ASSERT_EQ(r.version, 3);
    p2praft__api_req_release(&r);
}

TEST(api, response_known_bytes)
{
    static const uint8_t want[] = "\0\0\0\x12\x02\x00\x04\0\0\0\x2a"
                                  "\x01\x02\x03\x04\x05\x06\x07\x08"
                                  "bad";
    uint8_t *f;
    size_t len = 0;
    f = p2praft__api_response_encode(P2PRAFT_API_BADREQ, 42,
                                     0x0102030405060708ull, "bad", 3, &len);
    ASSERT(f != NULL);
    ASSERT_EQ(len, sizeof(want) - 1);
    ASSERT_MEM_EQ(f, want, len);
    lp2p__free(f);
}

TEST(api, response_roundtrip_every_status)
{
    /* every status the node sends, and one it does not know: passed on */
    static const uint8_t st[] = {
        P2PRAFT_API_OK,        P2PRAFT_API_NOTFOUND, P2PRAFT_API_MISMATCH,
        P2PRAFT_API_FAILED,    P2PRAFT_API_BADREQ,   P2PRAFT_API_NOTLEADER,
        P2PRAFT_API_UNKNOWN,   P2PRAFT_API_BUSY,     P2PRAFT_API_NOTCAUGHTUP,
        200};
    static const uint64_t idx[] = {0, 1, 0xffffffffull, UINT64_MAX};
    size_t i, j;
    for (i = 0; i < sizeof(st); i++) {
        for (j = 0; j < sizeof(idx) / sizeof(idx[0]); j++) {
            const char *payload = j % 2 == 0 ? "" : "a message";
            size_t plen = strlen(payload), len = 0;
            struct p2praft__api_resp a;
            uint32_t blen = 0, id = (uint32_t)(i * 7 + j) | 0x80000000u;
            uint8_t *f = p2praft__api_response_encode(st[i], id, idx[j],
                                                      payload, plen, &len);
            uint8_t *g;
            ASSERT(f != NULL);
            ASSERT_EQ(len, P2PRAFT__API_PREFIX + P2PRAFT__API_RESP_PAYLOAD +
                               plen);
            ASSERT_OK(p2praft__api_frame(f, len, &blen));
            ASSERT_EQ(blen, len - P2PRAFT__API_PREFIX);
            g = test__guarded(f + P2PRAFT__API_PREFIX, blen);
            ASSERT_OK(p2praft__api_response_parse(&a, g, blen));
            ASSERT_EQ(a.version, P2PRAFT_API_VERSION);
            ASSERT_EQ(a.type, P2PRAFT_API_ANSWER);
            ASSERT_EQ(a.status, st[i]);
            ASSERT_EQ_U64(a.id, id);
            ASSERT_EQ_U64(a.index, idx[j]);
            ASSERT_EQ(a.len, plen);
            ASSERT_MEM_EQ(a.payload, payload, plen);
            ASSERT(a.payload == g + P2PRAFT__API_RESP_PAYLOAD);
            test__guarded_free(g, blen);
            lp2p__free(f);
        }
    }
}

/* Every event kind round trips through its frame, values as bytes. */
TEST(api, event_roundtrip_every_kind)
{
    static const uint8_t kinds[] = {P2PRAFT_WATCH_STARTED, P2PRAFT_WATCH_SET,
                                    P2PRAFT_WATCH_DEL, P2PRAFT_WATCH_CAS,
                                    P2PRAFT_WATCH_DROPPED};
    static const uint8_t val[] = {0, 1, 0xfe, 0xff, 0};
    size_t i;
    for (i = 0; i < sizeof(kinds); i++) {
        struct lp2p_buf b;
        struct p2praft__api_resp a;
        struct p2praft__api_event ev;
        uint32_t blen = 0;
        uint8_t *g;
        lp2p__buf_init(&b);
        ASSERT_OK(p2praft__api_event_encode(&b, kinds[i], 77, 1234, "a/key",
                                            5, val, sizeof(val), 42));
        ASSERT_OK(p2praft__api_frame(b.data, b.len, &blen));
        ASSERT_EQ(blen + P2PRAFT__API_PREFIX, b.len);
        g = test__guarded(b.data + P2PRAFT__API_PREFIX, blen);
        ASSERT_OK(p2praft__api_response_parse(&a, g, blen));
        ASSERT_EQ(a.type, P2PRAFT_API_EVENT);
        ASSERT_EQ(a.status, kinds[i]);
        ASSERT_EQ(a.id, 77);
        ASSERT_EQ_U64(a.index, 1234);
        ASSERT_OK(p2praft__api_event_parse(&a, &ev));
        ASSERT_EQ(ev.kind, kinds[i]);
        switch (kinds[i]) {
        case P2PRAFT_WATCH_SET:
        case P2PRAFT_WATCH_CAS:
            ASSERT_EQ(ev.klen, 5);
            ASSERT_MEM_EQ(ev.key, "a/key", 5);
            ASSERT_EQ(ev.vlen, sizeof(val));
            ASSERT_MEM_EQ(ev.val, val, sizeof(val));
            break;
        case P2PRAFT_WATCH_DEL:
            ASSERT_MEM_EQ(ev.key, "a/key", 5);
            ASSERT(ev.val == NULL);
            break;
        case P2PRAFT_WATCH_DROPPED:
            ASSERT_EQ_U64(ev.count, 42);
            ASSERT(ev.key == NULL);
            break;
        default:
            ASSERT(ev.key == NULL && ev.count == 0);
            ASSERT_EQ(a.len, 0);
        }
        /* every truncation of the payload fails (STARTED has none) */
        if (a.len > 0) {
            size_t cut;
            for (cut = 0; cut < a.len; cut++) {
                struct p2praft__api_resp t = a;
                t.len = cut;
                ASSERT_ERR(p2praft__api_event_parse(&t, &ev), P2PRAFT_EPROTO);
            }
        }
        test__guarded_free(g, blen);
        lp2p__buf_free(&b);
    }
}

TEST(api, event_rejects_bad_payloads)
{
    struct p2praft__api_resp a;
    struct p2praft__api_event ev;
    memset(&a, 0, sizeof(a));
    a.type = P2PRAFT_API_EVENT;
    a.status = 9; /* unknown kind */
    ASSERT_ERR(p2praft__api_event_parse(&a, &ev), P2PRAFT_EPROTO);
    a.status = P2PRAFT_WATCH_DEL; /* empty key */
    a.payload = (const uint8_t *)"\0\0\0\0";
    a.len = 4;
    ASSERT_ERR(p2praft__api_event_parse(&a, &ev), P2PRAFT_EPROTO);
    a.status = P2PRAFT_WATCH_STARTED; /* trailing bytes */
    ASSERT_ERR(p2praft__api_event_parse(&a, &ev), P2PRAFT_EPROTO);
    a.type = P2PRAFT_API_ANSWER; /* not an event */
    a.len = 0;
    ASSERT_ERR(p2praft__api_event_parse(&a, &ev), P2PRAFT_EPROTO);
}

struct ls_seen {
    size_t n;
    char keys[4][16];
    size_t vlens[4];
};

static int ls_collect(void *ctx, const uint8_t *key, size_t klen,
                      const uint8_t *val, size_t vlen)
{
    struct ls_seen *s = ctx;
    (void)val;
    memcpy(s->keys[s->n], key, klen);
    s->keys[s->n][klen] = '\0';
    s->vlens[s->n] = vlen;
    s->n++;
    return 0;
}

TEST(api, ls_page_roundtrip_and_checks)
{
    struct lp2p_buf b;
    struct ls_seen seen;
    bool more = false;
    uint32_t count = 0;
    size_t start, head, cut;
    uint8_t *g;
    lp2p__buf_init(&b);
    start = p2praft__api_frame_start(&b, P2PRAFT_API_ANSWER, P2PRAFT_API_OK, 4,
                                     9);
    ASSERT(start == 0);
    head = b.len;
    ASSERT_OK(lp2p__buf_append(&b, "\0\0\0\0\0", P2PRAFT__API_LS_HEAD));
    ASSERT_OK(p2praft__api_ls_put(&b, "a", 1, "\0\xff", 2));
    ASSERT_OK(p2praft__api_ls_put(&b, "ab", 2, NULL, 0));
    p2praft__api_ls_head(b.data + head, true, 2);
    p2praft__api_frame_end(&b, start);
    g = test__guarded(b.data + head, b.len - head);
    memset(&seen, 0, sizeof(seen));
    ASSERT_OK(p2praft__api_ls_parse(g, b.len - head, &more, &count,
                                    ls_collect, &seen));
    ASSERT(more);
    ASSERT_EQ(count, 2);
    ASSERT_EQ(seen.n, 2);
    ASSERT_STR_EQ(seen.keys[0], "a");
    ASSERT_EQ(seen.vlens[0], 2);
    ASSERT_STR_EQ(seen.keys[1], "ab");
    ASSERT_EQ(seen.vlens[1], 0);
    /* a truncated page never reaches the callback */
    for (cut = 0; cut < b.len - head; cut++) {
        memset(&seen, 0, sizeof(seen));
        ASSERT_ERR(p2praft__api_ls_parse(g, cut, &more, &count, ls_collect,
                                         &seen),
                   P2PRAFT_EPROTO);
        ASSERT_EQ(seen.n, 0);
    }
    test__guarded_free(g, b.len - head);
    /* a count that lies, and a bad `more` byte */
    b.data[head + 4] = 3;
    ASSERT_ERR(p2praft__api_ls_parse(b.data + head, b.len - head, &more,
                                     &count, NULL, NULL),
               P2PRAFT_EPROTO);
    b.data[head + 4] = 2;
    b.data[head] = 2;
    ASSERT_ERR(p2praft__api_ls_parse(b.data + head, b.len - head, &more,
                                     &count, NULL, NULL),
               P2PRAFT_EPROTO);
    lp2p__buf_free(&b);
}

/* What each status means for a write, as a library code: "surely not
 * applied" and "unknown" stay apart, and a status byte this build does not
 * know is never taken for "not applied". */
TEST(api, status_codes_keep_unknown_apart)
{
    char buf[32];
    ASSERT_EQ(p2praft__api_status_code(P2PRAFT_API_OK), 0);
    ASSERT_ERR(p2praft__api_status_code(P2PRAFT_API_NOTFOUND),
               P2PRAFT_ENOTFOUND);
    ASSERT_ERR(p2praft__api_status_code(P2PRAFT_API_MISMATCH),
               P2PRAFT_EMISMATCH);
    ASSERT_ERR(p2praft__api_status_code(P2PRAFT_API_FAILED), P2PRAFT_ERAFT);
    ASSERT_ERR(p2praft__api_status_code(P2PRAFT_API_BADREQ), P2PRAFT_EINVAL);
    ASSERT_ERR(p2praft__api_status_code(P2PRAFT_API_NOTLEADER),
               P2PRAFT_ENOTLEADER);
    ASSERT_ERR(p2praft__api_status_code(P2PRAFT_API_BUSY), P2PRAFT_ELIMIT);
    ASSERT_ERR(p2praft__api_status_code(P2PRAFT_API_NOTCAUGHTUP),
               P2PRAFT_ENOTCAUGHTUP);
    ASSERT_ERR(p2praft__api_status_code(P2PRAFT_API_UNKNOWN),
               P2PRAFT_EUNKNOWN);
    ASSERT_ERR(p2praft__api_status_code(200), P2PRAFT_EUNKNOWN);
    ASSERT(p2praft_outcome_unknown(
        p2praft__api_status_code(P2PRAFT_API_UNKNOWN)));
    ASSERT(!p2praft_outcome_unknown(
        p2praft__api_status_code(P2PRAFT_API_FAILED)));
    ASSERT(!p2praft_outcome_unknown(
        p2praft__api_status_code(P2PRAFT_API_BUSY)));
    ASSERT_STR_EQ(p2praft__api_status_name(P2PRAFT_API_NOTCAUGHTUP, buf,
                                           sizeof(buf)),
                  "not caught up");
    ASSERT_STR_EQ(p2praft__api_status_name(200, buf, sizeof(buf)),
                  "status 200");
}

/* The constant BUSY frame is a version-1 answer, which readers of both
 * versions parse. */
TEST(api, busy_frame)
{
    size_t len = 0;
    uint32_t blen = 0;
    struct p2praft__api_resp a;
    const uint8_t *f = p2praft__api_busy_frame(&len);
    ASSERT_OK(p2praft__api_frame(f, len, &blen));
    ASSERT_EQ(blen, len - P2PRAFT__API_PREFIX);
    ASSERT_EQ(f[P2PRAFT__API_PREFIX], P2PRAFT__API_VERSION_1);
    ASSERT_OK(p2praft__api_response_parse(&a, f + P2PRAFT__API_PREFIX, blen));
    ASSERT_EQ(a.version, 1);
    ASSERT_EQ(a.type, P2PRAFT_API_ANSWER);
    ASSERT_EQ(a.status, P2PRAFT_API_BUSY);
    ASSERT_EQ(a.id, 0);
    ASSERT_EQ_U64(a.index, 0);
    ASSERT(a.len > 0 && memmem(a.payload, a.len, "busy", 4) != NULL);
}

TEST(api, v1_answer_for_old_clients)
{
    /* u8 1 | u8 status | u64 index | message: what a version-1 client
     * reads */
    static const uint8_t want[] = "\0\0\0\x0d\x01\x04\0\0\0\0\0\0\0\0old";
    struct p2praft__api_resp a;
    size_t len = 0;
    uint8_t *f = p2praft__api_v1_answer_encode(P2PRAFT_API_BADREQ, "old", &len);
    ASSERT(f != NULL);
    ASSERT_EQ(len, sizeof(want) - 1);
    ASSERT_MEM_EQ(f, want, len);
    ASSERT_OK(p2praft__api_response_parse(&a, f + P2PRAFT__API_PREFIX,
                                          len - P2PRAFT__API_PREFIX));
    ASSERT_EQ(a.version, 1);
    ASSERT_EQ(a.status, P2PRAFT_API_BADREQ);
    ASSERT_EQ(a.len, 3);
    lp2p__free(f);
}

TEST(api, response_truncated_or_foreign_fails)
{
    struct p2praft__api_resp a;
    uint8_t *f, *g;
    size_t len = 0, cut;
    f = p2praft__api_response_encode(P2PRAFT_API_OK, 1, 7, "v", 1, &len);
    ASSERT(f != NULL);
    /* shorter than the header: an error, never a read past the end */
    for (cut = 0; cut < P2PRAFT__API_RESP_PAYLOAD; cut++) {
        g = test__guarded(f + P2PRAFT__API_PREFIX, cut);
        ASSERT_ERR(p2praft__api_response_parse(&a, g, cut), P2PRAFT_EPROTO);
        test__guarded_free(g, cut);
    }
    /* the header alone is a response with an empty payload */
    ASSERT_OK(p2praft__api_response_parse(&a, f + P2PRAFT__API_PREFIX,
                                          P2PRAFT__API_RESP_PAYLOAD));
    ASSERT_EQ(a.len, 0);
    /* an unknown type */
    f[P2PRAFT__API_PREFIX + P2PRAFT__API_RESP_TYPE] = 2;
    ASSERT_ERR(p2praft__api_response_parse(&a, f + P2PRAFT__API_PREFIX,
                                           len - P2PRAFT__API_PREFIX),
               P2PRAFT_EPROTO);
    /* another version */
    f[P2PRAFT__API_PREFIX + P2PRAFT__API_RESP_TYPE] = 0;
    f[P2PRAFT__API_PREFIX + P2PRAFT__API_RESP_VERSION] = 3;
    ASSERT_ERR(p2praft__api_response_parse(&a, f + P2PRAFT__API_PREFIX,
                                           len - P2PRAFT__API_PREFIX),
               P2PRAFT_EPROTO);
    /* a version-1 answer shorter than its header */
    f[P2PRAFT__API_PREFIX] = 1;
    ASSERT_ERR(p2praft__api_response_parse(&a, f + P2PRAFT__API_PREFIX,
                                           P2PRAFT__API_V1_PAYLOAD - 1),
               P2PRAFT_EPROTO);
    lp2p__free(f);
}

TEST(api, frame_needs_bytes_and_keeps_the_limit)
{
    uint8_t b[P2PRAFT__API_PREFIX + 2] = {0};
    uint32_t blen = 12345;
    size_t k;
    for (k = 0; k < P2PRAFT__API_PREFIX; k++) {
        ASSERT_ERR(p2praft__api_frame(b, k, &blen), P2PRAFT_EAGAIN);
        ASSERT_EQ(blen, 12345); /* not known yet */
    }
    p2praft__api_frame_prefix(b, 2);
    ASSERT_ERR(p2praft__api_frame(b, P2PRAFT__API_PREFIX + 1, &blen),
               P2PRAFT_EAGAIN);
    ASSERT_EQ(blen, 2);
    ASSERT_OK(p2praft__api_frame(b, sizeof(b), &blen));
    p2praft__api_frame_prefix(b, 0);
    ASSERT_OK(p2praft__api_frame(b, P2PRAFT__API_PREFIX, &blen));
    ASSERT_EQ(blen, 0);
    p2praft__api_frame_prefix(b, P2PRAFT_API_FRAME_MAX);
    ASSERT_ERR(p2praft__api_frame(b, P2PRAFT__API_PREFIX, &blen),
               P2PRAFT_EAGAIN);
    ASSERT_EQ(blen, P2PRAFT_API_FRAME_MAX);
    p2praft__api_frame_prefix(b, P2PRAFT_API_FRAME_MAX + 1);
    ASSERT_ERR(p2praft__api_frame(b, P2PRAFT__API_PREFIX, &blen),
               P2PRAFT_ETOOBIG);
    ASSERT_EQ(blen, P2PRAFT_API_FRAME_MAX + 1);
    p2praft__api_frame_prefix(b, UINT32_MAX);
    ASSERT_ERR(p2praft__api_frame(b, sizeof(b), &blen), P2PRAFT_ETOOBIG);
}

/* The largest request (a CAS with two values of the largest size and the
 * longest key) and the largest event fit in a frame. */
TEST(api, largest_messages_fit_the_frame)
{
    ASSERT(P2PRAFT__API_REQ_FIELDS + 3 * P2PRAFT__API_FIELD_PREFIX +
               P2PRAFT_KV_KEY_MAX + 2 * (size_t)P2PRAFT_KV_VALUE_MAX <=
           P2PRAFT_API_FRAME_MAX);
    ASSERT(P2PRAFT__API_RESP_PAYLOAD + P2PRAFT__API_LS_HEAD +
               2 * P2PRAFT__API_FIELD_PREFIX + P2PRAFT_KV_KEY_MAX +
               (size_t)P2PRAFT_KV_VALUE_MAX + P2PRAFT__API_LS_PAGE_BYTES <=
           P2PRAFT_API_FRAME_MAX);
}

/* Encode and parse both ways; any allocation may fail. */
static int codec_body(void *ctx)
{
    struct p2praft__api_req q, r;
    struct p2praft__api_resp a;
    struct lp2p_buf b;
    char err[256];
    uint8_t *f;
    size_t len = 0;
    int rv;
    (void)ctx;
    memset(&q, 0, sizeof(q));
    q.op = P2PRAFT_API_CAS;
    q.id = 1;
    q.key = "k";
    q.exp = (uint8_t *)"e";
    q.elen = 1;
    q.val = (uint8_t *)"v";
    q.vlen = 1;
    f = p2praft__api_request_encode(&q, &len);
    if (f == NULL) {
        return LP2P_ENOMEM;
    }
    memset(&r, 0, sizeof(r));
    rv = p2praft__api_request_parse(&r, f + P2PRAFT__API_PREFIX,
                                    len - P2PRAFT__API_PREFIX, err,
                                    sizeof(err));
    p2praft__api_req_release(&r);
    lp2p__free(f);
    if (rv != 0) {
        return strstr(err, "out of memory") != NULL ? LP2P_ENOMEM
                                                    : LP2P_EINVAL;
    }
    memset(&q, 0, sizeof(q));
    q.op = P2PRAFT_API_LS;
    q.id = 2;
    q.key = "p";
    q.after = "pq";
    f = p2praft__api_request_encode(&q, &len);
    if (f == NULL) {
        return LP2P_ENOMEM;
    }
    memset(&r, 0, sizeof(r));
    rv = p2praft__api_request_parse(&r, f + P2PRAFT__API_PREFIX,
                                    len - P2PRAFT__API_PREFIX, err,
                                    sizeof(err));
    p2praft__api_req_release(&r);
    lp2p__free(f);
    if (rv != 0) {
        return LP2P_ENOMEM;
    }
    f = p2praft__api_response_encode(P2PRAFT_API_OK, 1, 1, "x", 1, &len);
    if (f == NULL) {
        return LP2P_ENOMEM;
    }
    rv = p2praft__api_response_parse(&a, f + P2PRAFT__API_PREFIX,
                                     len - P2PRAFT__API_PREFIX);
    lp2p__free(f);
    if (rv != 0) {
        return rv;
    }
    f = p2praft__api_v1_answer_encode(P2PRAFT_API_BADREQ, "old", &len);
    if (f == NULL) {
        return LP2P_ENOMEM;
    }
    lp2p__free(f);
    lp2p__buf_init(&b);
    rv = p2praft__api_event_encode(&b, P2PRAFT_WATCH_SET, 3, 4, "k", 1, "v", 1,
                                   0);
    lp2p__buf_free(&b);
    return rv;
}

TEST(api, oom_sweep)
{
    ASSERT(test__oom_sweep(codec_body, NULL) >= 6);
}
