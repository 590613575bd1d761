/* Fuzz the field-table msgpack decoder: anything it accepts must re-encode
 * and decode again to the same bytes (canonical form), and a copy must
 * encode identically. Rejections must be one of the documented errors. */
#include <string.h>

#include "../unit/codec_types.h"
#include "fuzz.h"
#include "p2praft.h"

FUZZ_TARGET(msgpack_decode)
{
    struct everything v, v2, cp;
    uint8_t *out, *out2;
    size_t len, len2;
    int rv;
    memset(&v, 0, sizeof(v));
    rv = p2praft_decode(&everything_type, &v, data, size);
    if (rv != 0) {
        FUZZ_CHECK(rv == P2PRAFT_EUNKNOWNFIELD || rv == P2PRAFT_ETYPE ||
                   rv == P2PRAFT_ETRUNCATED || rv == P2PRAFT_ETRAILING ||
                   rv == P2PRAFT_EMALFORMED || rv == P2PRAFT_ETOOBIG);
        return 0;
    }
    rv = p2praft_encode(&everything_type, &v, &out, &len);
    FUZZ_CHECK(rv == 0);
    memset(&v2, 0, sizeof(v2));
    FUZZ_CHECK(p2praft_decode(&everything_type, &v2, out, len) == 0);
    FUZZ_CHECK(p2praft_encode(&everything_type, &v2, &out2, &len2) == 0);
    FUZZ_CHECK(len2 == len && memcmp(out, out2, len) == 0);
    p2praft_free(out2);
    FUZZ_CHECK(p2praft_value_copy(&everything_type, &cp, &v2) == 0);
    FUZZ_CHECK(p2praft_encode(&everything_type, &cp, &out2, &len2) == 0);
    FUZZ_CHECK(len2 == len && memcmp(out, out2, len) == 0);
    p2praft_free(out2);
    p2praft_value_release(&everything_type, &cp);
    p2praft_value_release(&everything_type, &v2);
    p2praft_value_release(&everything_type, &v);
    p2praft_free(out);
    return 0;
}
