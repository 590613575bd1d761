/* Fuzz the cluster node's API request parser (version 2: unix socket,
 * client protocol and forward protocol bodies): any bytes either parse
 * into a request within the documented bounds, or fail with a message;
 * nothing leaks. A request that parses encodes back to exactly the bytes it
 * came from. */
#include <string.h>

#include "fuzz.h"
#include "raft/api.h"
#include "util/heap.h"

FUZZ_TARGET(api_request)
{
    struct p2praft__api_req r;
    char err[256];
    uint8_t *frame;
    size_t flen = 0;
    int rv;
    memset(&r, 0, sizeof(r));
    err[0] = '\0';
    rv = p2praft__api_request_parse(&r, data, size, err, sizeof(err));
    if (size > 0) {
        FUZZ_CHECK(r.version == data[0]);
    }
    if (rv == 0) {
        FUZZ_CHECK(r.version == P2PRAFT_API_VERSION);
        FUZZ_CHECK(r.op >= P2PRAFT_API_GET && r.op <= P2PRAFT_API_HELLO);
        FUZZ_CHECK((r.flags & ~(P2PRAFT__API_CONSISTENT |
                                P2PRAFT__API_KEYS_ONLY)) == 0);
        if (r.op == P2PRAFT_API_GET || p2praft__api_is_write(r.op)) {
            FUZZ_CHECK(r.key != NULL && r.key[0] != '\0');
        }
        if (r.key != NULL) {
            FUZZ_CHECK(strlen(r.key) <= P2PRAFT_KV_KEY_MAX);
        }
        if (r.after != NULL) {
            FUZZ_CHECK(r.op == P2PRAFT_API_LS);
            FUZZ_CHECK(strlen(r.after) <= P2PRAFT_KV_KEY_MAX);
        }
        FUZZ_CHECK(r.vlen <= P2PRAFT_KV_VALUE_MAX);
        FUZZ_CHECK(r.elen <= P2PRAFT_KV_VALUE_MAX);
        frame = p2praft__api_request_encode(&r, &flen);
        if (frame != NULL) {
            FUZZ_CHECK(flen == P2PRAFT__API_PREFIX + size);
            FUZZ_CHECK(memcmp(frame + P2PRAFT__API_PREFIX, data, size) == 0);
            lp2p__free(frame);
        }
    } else {
        FUZZ_CHECK(rv == -1 && err[0] != '\0');
    }
    p2praft__api_req_release(&r);
    return 0;
}
