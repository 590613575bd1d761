/* Fuzz what the client library reads from a node: response bodies
 * (answers of both versions, watch events) and LS pages. Any bytes either
 * parse within the documented bounds, or fail with LP2P_EPROTO; no read
 * goes past the input. An event that parses encodes back to exactly the
 * bytes it came from. */
#include <string.h>

#include "fuzz.h"
#include "raft/api.h"
#include "util/buf.h"
#include "util/heap.h"

static int count_entry(void *ctx, const uint8_t *key, size_t klen,
                       const uint8_t *val, size_t vlen)
{
    size_t *n = ctx;
    (void)val;
    FUZZ_CHECK(klen >= 1 && klen <= P2PRAFT_KV_KEY_MAX);
    FUZZ_CHECK(memchr(key, '\0', klen) == NULL);
    FUZZ_CHECK(vlen <= P2PRAFT_KV_VALUE_MAX);
    (*n)++;
    return 0;
}

FUZZ_TARGET(api_response)
{
    struct p2praft__api_resp a;
    struct p2praft__api_event ev;
    bool more = false;
    uint32_t count = 0;
    size_t n = 0;
    int rv = p2praft__api_response_parse(&a, data, size);
    if (rv != 0) {
        FUZZ_CHECK(rv == LP2P_EPROTO);
    } else {
        FUZZ_CHECK(a.version == 1 || a.version == P2PRAFT_API_VERSION);
        FUZZ_CHECK(a.payload + a.len == data + size);
        if (a.type == P2PRAFT_API_EVENT &&
            p2praft__api_event_parse(&a, &ev) == 0) {
            struct lp2p_buf b;
            lp2p__buf_init(&b);
            if (p2praft__api_event_encode(&b, ev.kind, a.id, a.index,
                                          (const char *)ev.key, ev.klen,
                                          ev.val, ev.vlen, ev.count) == 0) {
                FUZZ_CHECK(b.len == P2PRAFT__API_PREFIX + size);
                FUZZ_CHECK(memcmp(b.data + P2PRAFT__API_PREFIX, data, size) ==
                           0);
            }
            lp2p__buf_free(&b);
        }
    }
    /* the same bytes as an LS page */
    rv = p2praft__api_ls_parse(data, size, &more, &count, count_entry, &n);
    if (rv == 0) {
        FUZZ_CHECK(n == count);
    } else {
        FUZZ_CHECK(rv == LP2P_EPROTO);
    }
    return 0;
}
