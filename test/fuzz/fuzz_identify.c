/* Fuzz the identify initiator's parser: any bytes a peer sends until EOF
 * (several length-prefixed Identify messages, merged). It must return one
 * of its documented codes and keep within its caps. */
#include <string.h>

#include "fuzz.h"
#include "lp2p.h"
#include "p2p/host.h"

FUZZ_TARGET(identify)
{
    /* The peer ID of the key with seed 00..1f, as the handshake would have
     * proven it; seeds in the corpus carry that key. */
    static struct lp2p_peer_id peer;
    static int init;
    size_t np = 0, na = 0;
    int rv;
    if (!init) {
        struct lp2p_key k;
        uint8_t seed[32];
        int i;
        for (i = 0; i < 32; i++) {
            seed[i] = (uint8_t)i;
        }
        lp2p_key_from_seed(&k, seed);
        lp2p_peer_id_from_key(&k, &peer);
        lp2p_key_wipe(&k);
        init = 1;
    }
    rv = lp2p__identify_check(&peer, data, size, &np, &na);
    FUZZ_CHECK(rv == 0 || rv == LP2P_EPROTO || rv == LP2P_EPEERID ||
               rv == LP2P_EBADKEY || rv == LP2P_ENOMEM);
    FUZZ_CHECK(np <= 256 && na <= 256);
    return 0;
}
