/*
 * Peer IDs: multihash bytes, their base58btc text, and CIDv1 (libp2p-key)
 * text. Parsing follows go-libp2p's peer.Decode: a string that starts with
 * "1" or "Qm" is a base58btc multihash, anything else is a CID, of which we
 * read the multibase encodings peer IDs are seen in: base32 ('b', what
 * we print), base58btc ('z') and base36 ('k', 'K').
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "lp2p.h"
#include "../util/err.h"
#include "key.h"
#include "../util/base32.h"
#include "../util/base58.h"
#include "../util/varint.h"

/* Longest identity digest that still fits LP2P_PEER_ID_MAX with its
 * two-byte header. */
#define IDENTITY_MAX (LP2P_PEER_ID_MAX - 2)
/* Longest text we try to decode: a CID of the largest peer ID in base32,
 * with margin; anything longer cannot be a peer ID we accept. */
#define TEXT_MAX (LP2P_PEER_ID_STRMAX - 1)


int lp2p__peer_id_from_bytes(struct lp2p_peer_id *id, const uint8_t *mh,
                             size_t len, char *err, size_t errcap)
{
    uint64_t code, dlen;
    int n, m;
    n = lp2p__varint_decode(mh, len, &code);
    if (n < 0) {
        lp2p__errmsg_set(err, errcap, "multihash code: %s",
               n == LP2P_EAGAIN ? "truncated" : lp2p_strerror(n));
        return n == LP2P_EAGAIN ? LP2P_ETRUNCATED : LP2P_EMALFORMED;
    }
    m = lp2p__varint_decode(mh + n, len - (size_t)n, &dlen);
    if (m < 0) {
        lp2p__errmsg_set(err, errcap, "multihash length: %s",
               m == LP2P_EAGAIN ? "truncated" : lp2p_strerror(m));
        return m == LP2P_EAGAIN ? LP2P_ETRUNCATED : LP2P_EMALFORMED;
    }
    if (code == LP2P_MH_IDENTITY) {
        if (dlen == 0 || dlen > IDENTITY_MAX) {
            lp2p__errmsg_set(err, errcap, "identity multihash of %llu bytes (1..%d)",
                   (unsigned long long)dlen, IDENTITY_MAX);
            return LP2P_EMALFORMED;
        }
    } else if (code == LP2P_MH_SHA2_256) {
        if (dlen != 32) {
            lp2p__errmsg_set(err, errcap, "sha2-256 multihash of %llu bytes (not 32)",
                   (unsigned long long)dlen);
            return LP2P_EMALFORMED;
        }
    } else {
        lp2p__errmsg_set(err, errcap,
               "multihash function 0x%llx is not identity or sha2-256",
               (unsigned long long)code);
        return LP2P_EUNSUPPORTED;
    }
    if (len - (size_t)(n + m) < dlen) {
        lp2p__errmsg_set(err, errcap, "multihash truncated: %zu of %llu digest bytes",
               len - (size_t)(n + m), (unsigned long long)dlen);
        return LP2P_ETRUNCATED;
    }
    if (len - (size_t)(n + m) > dlen) {
        lp2p__errmsg_set(err, errcap, "%zu bytes after the multihash",
               len - (size_t)(n + m) - (size_t)dlen);
        return LP2P_ETRAILING;
    }
    id->len = len;
    memcpy(id->bytes, mh, len);
    return 0;
}

int lp2p_peer_id_from_bytes(struct lp2p_peer_id *id, const uint8_t *mh,
                            size_t len)
{
    return lp2p__peer_id_from_bytes(id, mh, len, NULL, 0);
}

int lp2p_peer_id_from_pubkey_pb(const uint8_t *pb, size_t len,
                                struct lp2p_peer_id *id)
{
    unsigned int hlen = 0;
    if (len == 0) {
        return LP2P_EINVAL;
    }
    if (len <= 42) {
        id->bytes[0] = LP2P_MH_IDENTITY;
        id->bytes[1] = (uint8_t)len;
        memcpy(id->bytes + 2, pb, len);
        id->len = len + 2;
        return 0;
    }
    id->bytes[0] = LP2P_MH_SHA2_256;
    id->bytes[1] = 32;
    if (EVP_Digest(pb, len, id->bytes + 2, &hlen, EVP_sha256(), NULL) != 1 ||
        hlen != 32) {
        return LP2P_ECRYPTO;
    }
    id->len = 34;
    return 0;
}

int lp2p_peer_id_from_key(const struct lp2p_key *key, struct lp2p_peer_id *id)
{
    uint8_t pb[36];
    lp2p__pubkey_pb_encode(key->pub, pb);
    return lp2p_peer_id_from_pubkey_pb(pb, sizeof(pb), id);
}

/* The multihash inside CID bytes: version 1, codec libp2p-key. */
static int from_cid_bytes(struct lp2p_peer_id *id, const uint8_t *p,
                          size_t len, char *err, size_t errcap)
{
    uint64_t version, codec;
    int n, m;
    if (len >= 2 && p[0] == 0x12 && p[1] == 0x20) {
        lp2p__errmsg_set(err, errcap, "CIDv0 is not a peer ID form");
        return LP2P_EUNSUPPORTED;
    }
    n = lp2p__varint_decode(p, len, &version);
    if (n < 0) {
        lp2p__errmsg_set(err, errcap, "CID version: %s", lp2p_strerror(n));
        return n == LP2P_EAGAIN ? LP2P_ETRUNCATED : LP2P_EMALFORMED;
    }
    if (version != 1) {
        lp2p__errmsg_set(err, errcap, "CID version %llu is not 1",
               (unsigned long long)version);
        return LP2P_EUNSUPPORTED;
    }
    m = lp2p__varint_decode(p + n, len - (size_t)n, &codec);
    if (m < 0) {
        lp2p__errmsg_set(err, errcap, "CID codec: %s", lp2p_strerror(m));
        return m == LP2P_EAGAIN ? LP2P_ETRUNCATED : LP2P_EMALFORMED;
    }
    if (codec != LP2P_CID_LIBP2P_KEY) {
        lp2p__errmsg_set(err, errcap, "CID codec 0x%llx is not libp2p-key (0x72)",
               (unsigned long long)codec);
        return LP2P_EUNSUPPORTED;
    }
    return lp2p__peer_id_from_bytes(id, p + n + m, len - (size_t)(n + m), err,
                                    errcap);
}

int lp2p__peer_id_parse(struct lp2p_peer_id *id, const char *s, size_t len,
                        char *err, size_t errcap)
{
    uint8_t raw[LP2P_PEER_ID_MAX + 8];
    int n;
    if (len == 0) {
        lp2p__errmsg_set(err, errcap, "empty peer ID");
        return LP2P_EMALFORMED;
    }
    if (len > TEXT_MAX) {
        lp2p__errmsg_set(err, errcap, "peer ID text of %zu characters is too long",
               len);
        return LP2P_EMALFORMED;
    }
    if (s[0] == '1' || (len >= 2 && s[0] == 'Q' && s[1] == 'm')) {
        n = lp2p__base58_decode(s, len, raw, LP2P_PEER_ID_MAX);
        if (n < 0) {
            lp2p__errmsg_set(err, errcap, "%s",
                   n == LP2P_EOVERFLOW ? "peer ID too long"
                                       : "invalid base58btc character");
            return LP2P_EMALFORMED;
        }
        return lp2p__peer_id_from_bytes(id, raw, (size_t)n, err, errcap);
    }
    if (s[0] == 'b') {
        n = lp2p__base32_decode(s + 1, len - 1, raw, sizeof(raw));
        if (n < 0) {
            lp2p__errmsg_set(err, errcap, "%s",
                   n == LP2P_EOVERFLOW ? "CID too long"
                                       : "invalid base32 CID text");
            return LP2P_EMALFORMED;
        }
    } else if (s[0] == 'z') {
        n = lp2p__base58_decode(s + 1, len - 1, raw, sizeof(raw));
        if (n < 0) {
            lp2p__errmsg_set(err, errcap, "%s",
                   n == LP2P_EOVERFLOW ? "CID too long"
                                       : "invalid base58btc CID text");
            return LP2P_EMALFORMED;
        }
    } else if (s[0] == 'k' || s[0] == 'K') {
        n = lp2p__base36_decode(s + 1, len - 1, raw, sizeof(raw));
        if (n < 0) {
            lp2p__errmsg_set(err, errcap, "%s",
                   n == LP2P_EOVERFLOW ? "CID too long"
                                       : "invalid base36 CID text");
            return LP2P_EMALFORMED;
        }
    } else {
        lp2p__errmsg_set(err, errcap,
               "not a base58btc peer ID nor a CID in multibase b, z or k "
               "(prefix '%c')",
               s[0] >= 0x21 && s[0] < 0x7f ? s[0] : '?');
        return LP2P_EUNSUPPORTED;
    }
    return from_cid_bytes(id, raw, (size_t)n, err, errcap);
}

int lp2p_peer_id_parse(struct lp2p_peer_id *id, const char *s)
{
    return lp2p__peer_id_parse(id, s, strlen(s), NULL, 0);
}

int lp2p_peer_id_to_string(const struct lp2p_peer_id *id, char *out,
                           size_t cap)
{
    int n;
    if (id->len == 0 || id->len > LP2P_PEER_ID_MAX) {
        return LP2P_EINVAL;
    }
    n = lp2p__base58_encode(id->bytes, id->len, out, cap);
    return n < 0 ? n : 0;
}

int lp2p_peer_id_to_cid(const struct lp2p_peer_id *id, char *out, size_t cap)
{
    uint8_t raw[LP2P_PEER_ID_MAX + 2];
    int n;
    if (id->len == 0 || id->len > LP2P_PEER_ID_MAX) {
        return LP2P_EINVAL;
    }
    if (cap < 2) {
        return LP2P_EOVERFLOW;
    }
    raw[0] = 0x01;
    raw[1] = LP2P_CID_LIBP2P_KEY;
    memcpy(raw + 2, id->bytes, id->len);
    out[0] = 'b';
    n = lp2p__base32_encode(raw, id->len + 2, out + 1, cap - 1);
    return n < 0 ? n : 0;
}

int lp2p_peer_id_equal(const struct lp2p_peer_id *a,
                       const struct lp2p_peer_id *b)
{
    return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}
