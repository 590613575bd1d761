/* Fuzz the protobuf reader: walk every field; the reader must stay inside
 * the input and stop with 0 or a clear error. */
#include "fuzz.h"
#include "lp2p.h"
#include "p2p/pb.h"

FUZZ_TARGET(protobuf)
{
    struct lp2p_pb_reader r;
    struct lp2p_pb_field f;
    int rv;
    lp2p__pb_reader_init(&r, data, size);
    while ((rv = lp2p__pb_next(&r, &f)) == 1) {
        if (f.wire == LP2P_PB_LEN) {
            FUZZ_CHECK(f.data >= data && f.data + f.len <= data + size);
        }
    }
    FUZZ_CHECK(rv == 0 || rv == LP2P_ETRUNCATED || rv == LP2P_EMALFORMED ||
               rv == LP2P_EUNSUPPORTED);
    FUZZ_CHECK(r.p <= data + size);
    return 0;
}
