/* The snapshot frame: see snapshot.h for the layout and why. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "lp2p.h"
#include "raft/snapshot.h"
#include "util/byteorder.h"
#include "util/err.h"

#define FIRST 0xc1
#define MAGIC "p2psnap"
#define MAGIC_LEN 7
#define VERSION 1
#define KIND_SHA256 1
#define OFF_VERSION 8
#define OFF_KIND 9
#define OFF_ZERO 10
#define OFF_LEN 16
#define OFF_DIGEST 24
#define DIGEST_LEN 32

static int digest(const uint8_t *p, size_t len, uint8_t out[DIGEST_LEN])
{
    unsigned int n = 0;
    if (EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) != 1 ||
        n != DIGEST_LEN) {
        return LP2P_ECRYPTO;
    }
    return 0;
}

int p2praft__snapshot_header(uint8_t *hdr, const uint8_t *payload, size_t len)
{
    memset(hdr, 0, P2PRAFT__SNAP_HEADER);
    hdr[0] = FIRST;
    memcpy(hdr + 1, MAGIC, MAGIC_LEN);
    hdr[OFF_VERSION] = VERSION;
    hdr[OFF_KIND] = KIND_SHA256;
    lp2p__put64(hdr + OFF_LEN, (uint64_t)len);
    return digest(payload, len, hdr + OFF_DIGEST);
}

bool p2praft__snapshot_is_framed(const uint8_t *data, size_t len)
{
    return (len >= 1 && data[0] == FIRST) ||
           (len >= 1 + MAGIC_LEN && memcmp(data + 1, MAGIC, MAGIC_LEN) == 0);
}

int p2praft__snapshot_unframe(const uint8_t *data, size_t len,
                              const uint8_t **payload, size_t *plen,
                              char *why, size_t whylen)
{
    static const uint8_t zero[6];
    uint8_t md[DIGEST_LEN];
    uint64_t n;
    if (len < P2PRAFT__SNAP_HEADER) {
        lp2p__errmsg_set(why, whylen, "%zu bytes, shorter than the header",
                         len);
        return LP2P_ECORRUPT;
    }
    if (data[0] != FIRST || memcmp(data + 1, MAGIC, MAGIC_LEN) != 0) {
        lp2p__errmsg_set(why, whylen, "bad magic");
        return LP2P_ECORRUPT;
    }
    if (data[OFF_VERSION] != VERSION || data[OFF_KIND] != KIND_SHA256 ||
        memcmp(data + OFF_ZERO, zero, sizeof(zero)) != 0) {
        lp2p__errmsg_set(why, whylen,
                         "unknown header (version %u, checksum kind %u)",
                         data[OFF_VERSION], data[OFF_KIND]);
        return LP2P_ECORRUPT;
    }
    n = lp2p__get64(data + OFF_LEN);
    if (n != len - P2PRAFT__SNAP_HEADER) {
        lp2p__errmsg_set(why, whylen,
                         "header says %llu bytes of state, %zu follow",
                         (unsigned long long)n, len - P2PRAFT__SNAP_HEADER);
        return LP2P_ECORRUPT;
    }
    if (digest(data + P2PRAFT__SNAP_HEADER, (size_t)n, md) != 0) {
        lp2p__errmsg_set(why, whylen, "cannot compute SHA-256");
        return LP2P_ECRYPTO;
    }
    if (memcmp(md, data + OFF_DIGEST, DIGEST_LEN) != 0) {
        lp2p__errmsg_set(why, whylen, "SHA-256 of the state does not match");
        return LP2P_ECORRUPT;
    }
    *payload = data + P2PRAFT__SNAP_HEADER;
    *plen = (size_t)n;
    return 0;
}
