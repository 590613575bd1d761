/* Fuzz the raft segment scanner of the start-up check (raft/diskcheck.h),
 * as a closed and as an open segment: a sound closed segment is batches to
 * its very end; a sound open one is batches then zeros (or a torn tail);
 * anything else is refused with a reason, never a crash. */
#include <string.h>

#include "fuzz.h"
#include "lp2p.h"
#include "raft/diskcheck.h"

FUZZ_TARGET(diskcheck)
{
    struct p2praft__seg_scan sc;
    int rv = p2praft__segment_scan(data, size, false, &sc);
    if (rv == 0) {
        FUZZ_CHECK(sc.used == size && sc.entries > 0 && !sc.torn);
        FUZZ_CHECK(sc.term_first > 0 && sc.term_first <= sc.term_last);
    } else {
        FUZZ_CHECK(rv == LP2P_ECORRUPT && sc.why != NULL);
    }
    rv = p2praft__segment_scan(data, size, true, &sc);
    FUZZ_CHECK(sc.nonzero_end <= size);
    if (rv == 0) {
        FUZZ_CHECK(sc.used <= size);
        if (!sc.torn) {
            FUZZ_CHECK(sc.nonzero_end <= sc.used || sc.nonzero_end == 0);
        } else {
            FUZZ_CHECK(sc.why != NULL && sc.nonzero_end > sc.used);
        }
    } else {
        FUZZ_CHECK(rv == LP2P_ECORRUPT && sc.why != NULL);
    }
    return 0;
}
