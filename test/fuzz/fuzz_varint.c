/* Fuzz the unsigned varint decoder: anything decoded must re-encode to
 * exactly the bytes consumed (minimal encoding). */
#include <string.h>

#include "fuzz.h"
#include "lp2p.h"
#include "util/varint.h"

FUZZ_TARGET(varint)
{
    uint64_t v;
    uint8_t out[LP2P_VARINT_MAX];
    int n = lp2p__varint_decode(data, size, &v);
    if (n > 0) {
        size_t m = lp2p__varint_encode(v, out);
        FUZZ_CHECK(m == (size_t)n);
        FUZZ_CHECK(memcmp(out, data, m) == 0);
    } else {
        FUZZ_CHECK(n == LP2P_EAGAIN || n == LP2P_ENONMINIMAL ||
                   n == LP2P_EOVERFLOW);
    }
    return 0;
}
