/*
 * Fuzz the Noise handshake and transport parsers. The first byte picks
 * what the rest is:
 *   0: the byte stream a responder receives as message 1;
 *   1: what an initiator receives after sending message 1 (message 2);
 *   2: what a responder receives after a genuine message 1 (message 3);
 *   3: a NoiseHandshakePayload given to the payload verifier;
 *   4: transport ciphertext after a genuine handshake.
 * The second byte is the chunk size for feeding. Keys are fixed so runs
 * are reproducible. Invariants: feed never consumes more than given, errors
 * are from the documented set, and a completed handshake names a peer.
 */
#include <string.h>

#include "fuzz.h"
#include "lp2p.h"
#include "p2p/noise.h"
#include "util/buf.h"

static const char *MUX[] = {"/yamux/1.0.0", "/mplex/6.7.0"};

static int ok_err(int rv)
{
    return rv == LP2P_EPROTO || rv == LP2P_ECRYPTO || rv == LP2P_EBADKEY ||
           rv == LP2P_EUNSUPPORTED || rv == LP2P_EBADSIG ||
           rv == LP2P_EPEERID || rv == LP2P_ETOOBIG || rv == LP2P_ENOMEM ||
           rv == LP2P_EMALFORMED || rv == LP2P_ETRUNCATED;
}

static void setup(struct lp2p_noise_hs *hs, int initiator, struct lp2p_key *k)
{
    /* Identity keys derived once: Ed25519 derivation dominates a run. */
    static struct lp2p_key cache[2];
    static int cached[2];
    uint8_t seed[32], s[32], e[32];
    struct lp2p_noise_config c;
    memset(seed, initiator ? 1 : 2, sizeof(seed));
    memset(s, initiator ? 0x11 : 0x12, sizeof(s));
    memset(e, initiator ? 0x21 : 0x22, sizeof(e));
    if (!cached[initiator]) {
        FUZZ_CHECK(lp2p_key_from_seed(&cache[initiator], seed) == 0);
        cached[initiator] = 1;
    }
    *k = cache[initiator];
    memset(&c, 0, sizeof(c));
    c.identity = k;
    c.muxers = MUX;
    c.nmuxers = 2;
    FUZZ_CHECK(lp2p__noise_hs_init(hs, initiator, &c) == 0);
    FUZZ_CHECK(lp2p__noise_hs_set_test_keys(hs, s, e) == 0);
}

/* Feed in chunks; returns 0 when all was consumed or the handshake ended. */
static void feed(struct lp2p_noise_hs *hs, const uint8_t *d, size_t n,
                 size_t chunk, struct lp2p_buf *out)
{
    size_t off = 0;
    while (off < n) {
        size_t k = n - off < chunk ? n - off : chunk;
        int rv = lp2p__noise_hs_feed(hs, d + off, k, out);
        if (rv < 0) {
            FUZZ_CHECK(ok_err(rv));
            FUZZ_CHECK(!lp2p__noise_hs_done(hs));
            return;
        }
        FUZZ_CHECK((size_t)rv <= k);
        off += (size_t)rv;
        if (lp2p__noise_hs_done(hs)) {
            FUZZ_CHECK(lp2p__noise_hs_remote_id(hs) != NULL);
            return;
        }
        FUZZ_CHECK((size_t)rv == k);
    }
}

FUZZ_TARGET(noise_handshake)
{
    struct lp2p_noise_hs a, b;
    struct lp2p_key ka, kb;
    struct lp2p_buf ab, ba, pt;
    size_t chunk;
    int mode;
    if (size < 2) {
        return 0;
    }
    mode = data[0] % 5;
    chunk = data[1] == 0 ? size : data[1];
    data += 2;
    size -= 2;
    if (mode == 3) { /* no handshake needed */
        uint8_t spub[32], rpub[32];
        struct lp2p_peer_id id;
        const char *mux;
        int rv;
        memset(spub, 9, sizeof(spub));
        rv = lp2p__noise_payload_verify(data, size, spub, MUX, 2, chunk & 1,
                                        rpub, &id, &mux);
        FUZZ_CHECK(rv == 0 || ok_err(rv));
        FUZZ_CHECK(mux == NULL || mux == MUX[0] || mux == MUX[1]);
        return 0;
    }
    lp2p__buf_init(&ab);
    lp2p__buf_init(&ba);
    lp2p__buf_init(&pt);
    setup(&a, 1, &ka);
    setup(&b, 0, &kb);
    FUZZ_CHECK(lp2p__noise_hs_start(&a, &ab) == 0);
    FUZZ_CHECK(lp2p__noise_hs_start(&b, &ba) == 0);
    if (mode == 0) {
        feed(&b, data, size, chunk, &ba);
    } else if (mode == 1) {
        feed(&a, data, size, chunk, &ab);
    } else if (mode == 2) {
        FUZZ_CHECK(lp2p__noise_hs_feed(&b, ab.data, ab.len, &ba) ==
                   (int)ab.len);
        feed(&b, data, size, chunk, &ba);
    } else {
        struct lp2p_noise_transport ta, tb;
        size_t off = 0;
        int rv = 0;
        FUZZ_CHECK(lp2p__noise_hs_feed(&b, ab.data, ab.len, &ba) ==
                   (int)ab.len);
        ab.len = 0;
        FUZZ_CHECK(lp2p__noise_hs_feed(&a, ba.data, ba.len, &ab) ==
                   (int)ba.len);
        FUZZ_CHECK(lp2p__noise_hs_feed(&b, ab.data, ab.len, &ba) ==
                   (int)ab.len);
        FUZZ_CHECK(lp2p__noise_hs_split(&a, &ta) == 0);
        FUZZ_CHECK(lp2p__noise_hs_split(&b, &tb) == 0);
        while (off < size && rv == 0) {
            size_t k = size - off < chunk ? size - off : chunk;
            rv = lp2p__noise_transport_decrypt(&tb, data + off, k, &pt);
            off += k;
        }
        FUZZ_CHECK(rv == 0 || ok_err(rv));
        lp2p__noise_transport_close(&ta);
        lp2p__noise_transport_close(&tb);
    }
    lp2p__noise_hs_close(&a);
    lp2p__noise_hs_close(&b);
    lp2p_key_wipe(&ka);
    lp2p_key_wipe(&kb);
    lp2p__buf_free(&ab);
    lp2p__buf_free(&ba);
    lp2p__buf_free(&pt);
    return 0;
}
