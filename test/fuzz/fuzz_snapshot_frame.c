/* Fuzz the snapshot frame's checks (raft/snapshot.h): whatever passes must
 * be exactly a header this code writes, followed by its payload. */
#include <string.h>

#include "fuzz.h"
#include "lp2p.h"
#include "raft/snapshot.h"

FUZZ_TARGET(snapshot_frame)
{
    const uint8_t *payload = NULL;
    size_t plen = 0;
    uint8_t hdr[P2PRAFT__SNAP_HEADER];
    char why[128];
    int rv = p2praft__snapshot_unframe(data, size, &payload, &plen, why,
                                       sizeof(why));
    if (rv == 0) {
        FUZZ_CHECK(p2praft__snapshot_is_framed(data, size));
        FUZZ_CHECK(payload == data + P2PRAFT__SNAP_HEADER);
        FUZZ_CHECK(plen == size - P2PRAFT__SNAP_HEADER);
        FUZZ_CHECK(p2praft__snapshot_header(hdr, payload, plen) == 0);
        FUZZ_CHECK(memcmp(hdr, data, sizeof(hdr)) == 0);
    } else {
        FUZZ_CHECK(rv == LP2P_ECORRUPT);
    }
    return 0;
}
