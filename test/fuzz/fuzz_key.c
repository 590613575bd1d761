/* Fuzz the key protobuf decoders (PublicKey comes from the network in the
 * Noise handshake; PrivateKey from key files): whatever decodes must
 * re-encode to the canonical form and decode again to the same key. */
#include <string.h>

#include "fuzz.h"
#include "lp2p.h"
#include "p2p/key.h"

FUZZ_TARGET(key)
{
    struct lp2p_key key, back;
    uint8_t pub[32], pb[36], priv[LP2P_KEY_MARSHALLED_LEN];
    int rv = lp2p__pubkey_pb_decode(data, size, pub);
    if (rv == 0) {
        lp2p__pubkey_pb_encode(pub, pb);
        FUZZ_CHECK(lp2p__pubkey_pb_decode(pb, sizeof(pb), back.pub) == 0);
        FUZZ_CHECK(memcmp(back.pub, pub, 32) == 0);
    } else {
        FUZZ_CHECK(rv == LP2P_EBADKEY || rv == LP2P_EUNSUPPORTED);
    }
    rv = lp2p_key_unmarshal(&key, data, size);
    if (rv == 0) {
        FUZZ_CHECK(lp2p_key_marshal(&key, priv) == 0);
        FUZZ_CHECK(lp2p_key_unmarshal(&back, priv, sizeof(priv)) == 0);
        FUZZ_CHECK(memcmp(&back, &key, sizeof(key)) == 0);
    } else {
        FUZZ_CHECK(rv == LP2P_EBADKEY || rv == LP2P_EUNSUPPORTED ||
                   rv == LP2P_ETRUNCATED);
    }
    return 0;
}
