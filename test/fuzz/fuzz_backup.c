/* Fuzz the backup parser (raft/backup.h), what `p2praft restore` reads
 * from a file: it never reads past the input, and whatever passes names a
 * configuration and a state that decode. */
#include "fuzz.h"
#include "lp2p.h"
#include "raft/backup.h"

FUZZ_TARGET(backup)
{
    struct p2praft__backup b;
    char why[256];
    int rv = p2praft__backup_parse(data, size, &b, why, sizeof(why));
    if (rv == 0) {
        FUZZ_CHECK(b.conf.n > 0);
        FUZZ_CHECK(b.index > 0 && b.term > 0);
        FUZZ_CHECK(b.state + b.state_len == data + size);
        p2praft__backup_release(&b);
    } else {
        FUZZ_CHECK(rv == LP2P_ECORRUPT || rv == LP2P_ENOMEM ||
                   rv == LP2P_ECRYPTO);
    }
    return 0;
}
