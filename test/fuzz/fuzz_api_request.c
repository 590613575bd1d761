/* Fuzz the cluster node's API request parser (unix socket and forward
 * protocol bodies): any bytes either parse into a request within the
 * documented bounds and encode back to the same bytes, or fail with a
 * message; nothing leaks. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "raft/api.h"

FUZZ_TARGET(api_request)
{
    struct p2praft__api_req r;
    char err[256];
    uint8_t *out;
    int rv;
    memset(&r, 0, sizeof(r));
    err[0] = '\0';
    rv = p2praft__api_parse(&r, data, size, err, sizeof(err));
    if (rv == 0) {
        FUZZ_CHECK(r.op >= P2PRAFT_API_GET && r.op <= P2PRAFT_API_BARRIER);
        FUZZ_CHECK((r.flags & ~1u) == 0);
        if (r.op != P2PRAFT_API_STATUS && r.op != P2PRAFT_API_BARRIER) {
            FUZZ_CHECK(r.key != NULL && r.key[0] != '\0');
            FUZZ_CHECK(strlen(r.key) <= P2PRAFT_KV_KEY_MAX);
        }
        FUZZ_CHECK(r.vlen <= P2PRAFT_KV_VALUE_MAX);
        FUZZ_CHECK(r.elen <= P2PRAFT_KV_VALUE_MAX);
        /* The encoder is the parser's inverse: same bytes back. */
        FUZZ_CHECK(p2praft__api_encoded_len(&r) == size);
        out = malloc(size);
        FUZZ_CHECK(out != NULL);
        FUZZ_CHECK(p2praft__api_encode(&r, out, size) == size);
        FUZZ_CHECK(memcmp(out, data, size) == 0);
        FUZZ_CHECK(p2praft__api_encode(&r, out, size - 1) == 0);
        free(out);
    } else {
        FUZZ_CHECK(rv == -1 && err[0] != '\0');
    }
    p2praft__api_req_release(&r);
    return 0;
}
