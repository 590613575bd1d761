/*
 * raft/api.c, the node's API wire codec: frames, requests and responses.
 * Known bytes (the format of p2praft.h), round trips of every op and every
 * status, every truncation, the frame limit, and allocation failures. The
 * parsers read from guarded pages, so an over-read faults.
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
    /* SET "intruder" = "x", as p2praft.h describes it */
    static const uint8_t set[] = "\0\0\0\x14\x01\x02\0\0\0\0\x08intruder"
                                 "\0\0\0\x01x";
    static const uint8_t status[] = "\0\0\0\x03\x01\x05\0";
    struct p2praft__api_req q;
    uint8_t *f;
    size_t len = 0;
    memset(&q, 0, sizeof(q));
    q.op = P2PRAFT_API_SET;
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
    f = p2praft__api_request_encode(&q, &len);
    ASSERT(f != NULL);
    ASSERT_EQ(len, sizeof(status) - 1);
    ASSERT_MEM_EQ(f, status, len);
    lp2p__free(f);
}

TEST(api, request_roundtrip_every_op)
{
    static const uint8_t ops[] = {P2PRAFT_API_GET,    P2PRAFT_API_SET,
                                  P2PRAFT_API_DEL,    P2PRAFT_API_CAS,
                                  P2PRAFT_API_STATUS, P2PRAFT_API_BARRIER};
    uint8_t bin[3] = {0, 0xff, 0}; /* values are bytes, NULs included */
    size_t i;
    for (i = 0; i < sizeof(ops); i++) {
        struct p2praft__api_req q, r;
        char err[256];
        uint8_t *f;
        size_t len = 0;
        bool key = ops[i] != P2PRAFT_API_STATUS &&
                   ops[i] != P2PRAFT_API_BARRIER;
        memset(&q, 0, sizeof(q));
        q.op = ops[i];
        q.flags = ops[i] == P2PRAFT_API_GET ? P2PRAFT__API_CONSISTENT : 0;
        q.key = key ? "some/key" : NULL;
        q.exp = (uint8_t *)"old";
        q.elen = ops[i] == P2PRAFT_API_CAS ? 3 : 0;
        q.val = bin;
        q.vlen = ops[i] == P2PRAFT_API_SET || ops[i] == P2PRAFT_API_CAS
                     ? sizeof(bin)
                     : 0;
        f = p2praft__api_request_encode(&q, &len);
        ASSERT(f != NULL);
        ASSERT_EQ(len, P2PRAFT__API_PREFIX + 3 + (key ? 4 + 8 : 0) +
                           (q.elen > 0 ? 4 + q.elen : 0) +
                           (q.vlen > 0 ? 4 + q.vlen : 0));
        ASSERT_OK(p2praft__api_frame(f, len, &(uint32_t){0}));
        ASSERT_OK(parse_req(&r, f + P2PRAFT__API_PREFIX,
                            len - P2PRAFT__API_PREFIX, err, sizeof(err)));
        ASSERT_EQ(r.op, q.op);
        ASSERT_EQ(r.flags, q.flags);
        if (key) {
            ASSERT_STR_EQ(r.key, "some/key");
        } else {
            ASSERT(r.key == NULL);
        }
        ASSERT_EQ(r.elen, q.elen);
        ASSERT_MEM_EQ(r.exp != NULL ? r.exp : (uint8_t *)"", q.exp, r.elen);
        ASSERT_EQ(r.vlen, q.vlen);
        ASSERT_MEM_EQ(r.val != NULL ? r.val : (uint8_t *)"", bin, r.vlen);
        p2praft__api_req_release(&r);
        lp2p__free(f);
    }
}

TEST(api, request_every_truncation_fails)
{
    struct p2praft__api_req q, r;
    char err[256];
    uint8_t *f;
    size_t len = 0, cut;
    memset(&q, 0, sizeof(q));
    q.op = P2PRAFT_API_CAS;
    q.key = "k";
    q.exp = (uint8_t *)"ab";
    q.elen = 2;
    q.val = (uint8_t *)"cde";
    q.vlen = 3;
    f = p2praft__api_request_encode(&q, &len);
    ASSERT(f != NULL);
    for (cut = 0; cut < len - P2PRAFT__API_PREFIX; cut++) {
        ASSERT_EQ(parse_req(&r, f + P2PRAFT__API_PREFIX, cut, err,
                            sizeof(err)),
                  -1);
        ASSERT(strstr(err, "truncated") != NULL);
        p2praft__api_req_release(&r);
    }
    lp2p__free(f);
}

TEST(api, request_rejects_bad_bodies)
{
    /* version, op, flags, empty key, NUL in key, trailing bytes, an
     * oversized value length */
    static const struct {
        const char *body;
        size_t len;
        const char *err;
    } cases[] = {
        {"\x02\x05\x00", 3, "version"},
        {"\x01\x07\x00", 3, "unknown operation"},
        {"\x01\x00\x00", 3, "unknown operation"},
        {"\x01\x01\x02\0\0\0\x01k", 8, "flags"},
        {"\x01\x02\x01\0\0\0\x01k\0\0\0\0", 12, "flags"},
        {"\x01\x03\x00\0\0\0\0", 7, "a key is"},
        {"\x01\x03\x00\0\0\0\x02k\0", 9, "a key is"},
        {"\x01\x05\x00\x00", 4, "unexpected bytes"},
        {"\x01\x02\x00\0\0\0\x01k\x00\x10\x00\x01", 12, "value too long"},
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
        p2praft__api_req_release(&r);
    }
}

TEST(api, response_known_bytes)
{
    static const uint8_t want[] = "\0\0\0\x0d\x01\x04"
                                  "\x01\x02\x03\x04\x05\x06\x07\x08"
                                  "bad";
    uint8_t *f;
    size_t len = 0;
    f = p2praft__api_response_encode(P2PRAFT_API_BADREQ,
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
            uint32_t blen = 0;
            uint8_t *f = p2praft__api_response_encode(st[i], idx[j], payload,
                                                      plen, &len);
            uint8_t *g;
            ASSERT(f != NULL);
            ASSERT_EQ(len, P2PRAFT__API_PREFIX + P2PRAFT__API_RESP_PAYLOAD +
                               plen);
            ASSERT_OK(p2praft__api_frame(f, len, &blen));
            ASSERT_EQ(blen, len - P2PRAFT__API_PREFIX);
            g = test__guarded(f + P2PRAFT__API_PREFIX, blen);
            ASSERT_OK(p2praft__api_response_parse(&a, g, blen));
            ASSERT_EQ(a.status, st[i]);
            ASSERT_EQ_U64(a.index, idx[j]);
            ASSERT_EQ(a.len, plen);
            ASSERT_MEM_EQ(a.payload, payload, plen);
            ASSERT(a.payload == g + P2PRAFT__API_RESP_PAYLOAD);
            test__guarded_free(g, blen);
            lp2p__free(f);
        }
    }
}

/* What each status means for a write, as a library code: "surely not
 * applied" and "unknown" stay apart, and a status byte this build does not
 * know is never taken for "not applied". */
TEST(api, status_codes_keep_unknown_apart)
{
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
}

/* The constant BUSY frame is a valid response frame. */
TEST(api, busy_frame)
{
    size_t len = 0;
    uint32_t blen = 0;
    struct p2praft__api_resp a;
    const uint8_t *f = p2praft__api_busy_frame(&len);
    ASSERT_OK(p2praft__api_frame(f, len, &blen));
    ASSERT_EQ(blen, len - P2PRAFT__API_PREFIX);
    ASSERT_OK(p2praft__api_response_parse(&a, f + P2PRAFT__API_PREFIX, blen));
    ASSERT_EQ(a.status, P2PRAFT_API_BUSY);
    ASSERT_EQ_U64(a.index, 0);
    ASSERT(a.len > 0 && memmem(a.payload, a.len, "busy", 4) != NULL);
}

TEST(api, response_truncated_or_foreign_fails)
{
    struct p2praft__api_resp a;
    uint8_t *f, *g;
    size_t len = 0, cut;
    f = p2praft__api_response_encode(P2PRAFT_API_OK, 7, "v", 1, &len);
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
    /* another version */
    f[P2PRAFT__API_PREFIX + P2PRAFT__API_RESP_VERSION] = 2;
    ASSERT_ERR(p2praft__api_response_parse(&a, f + P2PRAFT__API_PREFIX,
                                           len - P2PRAFT__API_PREFIX),
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

/* Encode and parse both ways; any allocation may fail. */
static int codec_body(void *ctx)
{
    struct p2praft__api_req q, r;
    struct p2praft__api_resp a;
    char err[256];
    uint8_t *f;
    size_t len = 0;
    int rv;
    (void)ctx;
    memset(&q, 0, sizeof(q));
    q.op = P2PRAFT_API_CAS;
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
    f = p2praft__api_response_encode(P2PRAFT_API_OK, 1, "x", 1, &len);
    if (f == NULL) {
        return LP2P_ENOMEM;
    }
    rv = p2praft__api_response_parse(&a, f + P2PRAFT__API_PREFIX,
                                     len - P2PRAFT__API_PREFIX);
    lp2p__free(f);
    return rv;
}

TEST(api, oom_sweep)
{
    ASSERT(test__oom_sweep(codec_body, NULL) >= 5);
}
