/* The node API request codec (src/raft/api.c): every operation encodes to
 * the bytes of the format in p2praft.h and parses back to itself; the
 * encoder refuses what the parser would refuse and never overruns. */
#include <stdlib.h>
#include <string.h>

#include "raft/api.h"
#include "test.h"

static struct p2praft__api_req req(uint8_t op, uint8_t flags, const char *key,
                                   const char *exp, const char *val)
{
    struct p2praft__api_req r;
    memset(&r, 0, sizeof(r));
    r.op = op;
    r.flags = flags;
    r.key = (char *)key;
    r.exp = (uint8_t *)exp;
    r.elen = exp != NULL ? strlen(exp) : 0;
    r.val = (uint8_t *)val;
    r.vlen = val != NULL ? strlen(val) : 0;
    return r;
}

TEST(api, encode_bytes)
{
    static const uint8_t want[] = {1, P2PRAFT_API_CAS, 0,
                                   0, 0, 0, 1, 'k',
                                   0, 0, 0, 2, 'o', 'l',
                                   0, 0, 0, 3, 'n', 'e', 'w'};
    struct p2praft__api_req r = req(P2PRAFT_API_CAS, 0, "k", "ol", "new");
    uint8_t out[64];
    ASSERT_EQ(p2praft__api_encoded_len(&r), sizeof(want));
    ASSERT_EQ(p2praft__api_encode(&r, out, sizeof(out)), sizeof(want));
    ASSERT(memcmp(out, want, sizeof(want)) == 0);
}

TEST(api, round_trip_every_op)
{
    struct p2praft__api_req in[] = {
        req(P2PRAFT_API_GET, 0, "key", NULL, NULL),
        req(P2PRAFT_API_GET, 1, "key", NULL, NULL),
        req(P2PRAFT_API_SET, 0, "key", NULL, "value"),
        req(P2PRAFT_API_SET, 0, "key", NULL, ""),
        req(P2PRAFT_API_DEL, 0, "key", NULL, NULL),
        req(P2PRAFT_API_CAS, 0, "key", "", "v"),
        req(P2PRAFT_API_STATUS, 0, NULL, NULL, NULL),
        req(P2PRAFT_API_BARRIER, 0, NULL, NULL, NULL),
    };
    size_t i;
    for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        struct p2praft__api_req out;
        uint8_t buf[64];
        char err[128];
        size_t n = p2praft__api_encode(&in[i], buf, sizeof(buf));
        ASSERT(n > 0);
        ASSERT_EQ(n, p2praft__api_encoded_len(&in[i]));
        memset(&out, 0, sizeof(out));
        ASSERT_EQ(p2praft__api_parse(&out, buf, n, err, sizeof(err)), 0);
        ASSERT_EQ(out.op, in[i].op);
        ASSERT_EQ(out.flags, in[i].flags);
        ASSERT((out.key == NULL) == (in[i].key == NULL));
        ASSERT(out.key == NULL || strcmp(out.key, in[i].key) == 0);
        ASSERT_EQ(out.elen, in[i].elen);
        ASSERT_EQ(out.vlen, in[i].vlen);
        ASSERT(in[i].elen == 0 || memcmp(out.exp, in[i].exp, out.elen) == 0);
        ASSERT(in[i].vlen == 0 || memcmp(out.val, in[i].val, out.vlen) == 0);
        p2praft__api_req_release(&out);
        /* One byte short: refused, and nothing written past the end. */
        memset(buf, 0xAA, sizeof(buf));
        ASSERT_EQ(p2praft__api_encode(&in[i], buf, n - 1), 0);
        ASSERT_EQ(buf[n - 1], 0xAA);
    }
}

TEST(api, encode_refuses_what_parse_refuses)
{
    char *big = malloc(P2PRAFT_KV_KEY_MAX + 2);
    struct p2praft__api_req r;
    uint8_t buf[64];
    ASSERT(big != NULL);
    memset(big, 'k', P2PRAFT_KV_KEY_MAX + 1);
    big[P2PRAFT_KV_KEY_MAX + 1] = '\0';
    r = req(P2PRAFT_API_GET, 0, big, NULL, NULL);
    ASSERT_EQ(p2praft__api_encode(&r, buf, sizeof(buf)), 0);
    free(big);
    r = req(P2PRAFT_API_GET, 0, "", NULL, NULL);        /* empty key */
    ASSERT_EQ(p2praft__api_encode(&r, buf, sizeof(buf)), 0);
    r = req(P2PRAFT_API_SET, 1, "k", NULL, "v");         /* flag on a write */
    ASSERT_EQ(p2praft__api_encode(&r, buf, sizeof(buf)), 0);
    r = req(P2PRAFT_API_GET, 2, "k", NULL, NULL);        /* unknown flag */
    ASSERT_EQ(p2praft__api_encode(&r, buf, sizeof(buf)), 0);
    r = req(7, 0, "k", NULL, NULL);                      /* unknown op */
    ASSERT_EQ(p2praft__api_encode(&r, buf, sizeof(buf)), 0);
    r = req(P2PRAFT_API_SET, 0, "k", NULL, NULL);
    r.vlen = 3;                                          /* no value bytes */
    ASSERT_EQ(p2praft__api_encode(&r, buf, sizeof(buf)), 0);
}
