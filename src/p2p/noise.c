/*
 * Noise_XX_25519_ChaChaPoly_SHA256 with the libp2p payload (see noise.h).
 *
 * Happy path (dialer = initiator):
 *   start:   -> e                                    (msg1, empty payload)
 *   feed:    <- e, ee, s, es, payload                (msg2: check identity,
 *            -> s, se, payload                        expected peer ID,
 *                                                     then write msg3)
 *   responder feed: msg1 -> write msg2; msg3 -> check identity; done.
 *   split:   two CipherStates, one EVP_CIPHER_CTX each, keyed once.
 *
 * Failure modes: any malformed frame or payload, bad tag, all-zero DH,
 * bad signature or unexpected peer ID fails the handshake for good
 * (LP2P_ESTATE afterwards); secrets are wiped on close. Transport: a frame
 * shorter than the tag, a bad tag or an exhausted nonce kills the
 * transport.
 */
#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "lp2p.h"
#include "key.h"
#include "noise.h"
#include "pb.h"
#include "../util/heap.h"
#include "../util/log.h"

#define PROTOCOL_NAME "Noise_XX_25519_ChaChaPoly_SHA256"
#define SIG_PREFIX "noise-libp2p-static-key:"
#define SIG_PREFIX_LEN (sizeof(SIG_PREFIX) - 1)
#define MAX_MUXER_NAME 256

/* ------------------------------------------------------------------- */
/* CipherState                                                          */

int lp2p__noise_cipher_init(struct lp2p_noise_cipher *c)
{
    memset(c, 0, sizeof(*c));
    c->ctx = EVP_CIPHER_CTX_new();
    return c->ctx != NULL ? 0 : LP2P_ECRYPTO;
}

void lp2p__noise_cipher_close(struct lp2p_noise_cipher *c)
{
    if (c->ctx != NULL) {
        EVP_CIPHER_CTX_free(c->ctx);
    }
    OPENSSL_cleanse(c, sizeof(*c));
    c->ctx = NULL;
}

int lp2p__noise_cipher_set_key(struct lp2p_noise_cipher *c,
                               const uint8_t k[32])
{
    EVP_CIPHER *alg;
    int ok;
    if (c->ctx == NULL) {
        return LP2P_ECRYPTO;
    }
    alg = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
    if (alg == NULL) {
        return LP2P_ECRYPTO;
    }
    /* Keyed once here; each message only sets the nonce. */
    ok = EVP_CipherInit_ex(c->ctx, alg, NULL, k, NULL, 1);
    EVP_CIPHER_free(alg);
    if (ok != 1) {
        c->has_key = 0;
        return LP2P_ECRYPTO;
    }
    if (k != c->k) {
        memcpy(c->k, k, 32);
    }
    c->n = 0;
    c->has_key = 1;
    return 0;
}

static int cipher_start(struct lp2p_noise_cipher *c, int enc,
                        const uint8_t *ad, size_t adlen)
{
    uint8_t nonce[12];
    int i, outl;
    if (c->n == UINT64_MAX) {
        return LP2P_ECRYPTO; /* 2^64-1 is reserved: never wrap */
    }
    memset(nonce, 0, 4);
    for (i = 0; i < 8; i++) {
        nonce[4 + i] = (uint8_t)(c->n >> (8 * i));
    }
    if (EVP_CipherInit_ex(c->ctx, NULL, NULL, NULL, nonce, enc) != 1) {
        return LP2P_ECRYPTO;
    }
    if (adlen > 0 &&
        EVP_CipherUpdate(c->ctx, NULL, &outl, ad, (int)adlen) != 1) {
        return LP2P_ECRYPTO;
    }
    return 0;
}

/*
 * OpenSSL runs ChaCha20 over the whole buffer, then Poly1305 over it again.
 * For a 64 KiB frame the second pass would come from L2; feeding slices
 * that fit in L1 keeps both passes in cache (measured: bench/bench_noise).
 */
#ifndef LP2P_NOISE_SLICE
#define LP2P_NOISE_SLICE 8192
#endif

static int cipher_update(struct lp2p_noise_cipher *c, uint8_t *out,
                         const uint8_t *in, size_t len)
{
    size_t off = 0;
    while (off < len) {
        size_t n = len - off > LP2P_NOISE_SLICE ? LP2P_NOISE_SLICE : len - off;
        int outl = 0;
        if (EVP_CipherUpdate(c->ctx, out + off, &outl, in + off, (int)n) != 1 ||
            (size_t)outl != n) {
            return LP2P_ECRYPTO;
        }
        off += n;
    }
    return 0;
}

int lp2p__noise_cipher_encrypt(struct lp2p_noise_cipher *c, const uint8_t *ad,
                               size_t adlen, const uint8_t *pt, size_t len,
                               uint8_t *out)
{
    int rv, fl = 0;
    if (!c->has_key) {
        if (out != pt && len > 0) {
            memmove(out, pt, len);
        }
        return 0;
    }
    if (len > INT_MAX - LP2P_NOISE_TAGLEN || adlen > INT_MAX) {
        return LP2P_ETOOBIG;
    }
    rv = cipher_start(c, 1, ad, adlen);
    if (rv != 0) {
        return rv;
    }
    rv = cipher_update(c, out, pt, len);
    if (rv != 0) {
        return rv;
    }
    if (EVP_CipherFinal_ex(c->ctx, out + len, &fl) != 1 ||
        EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_AEAD_GET_TAG, LP2P_NOISE_TAGLEN,
                            out + len) != 1) {
        return LP2P_ECRYPTO;
    }
    c->n++;
    return 0;
}

int lp2p__noise_cipher_decrypt(struct lp2p_noise_cipher *c, const uint8_t *ad,
                               size_t adlen, const uint8_t *ct, size_t len,
                               uint8_t *out)
{
    uint8_t tag[LP2P_NOISE_TAGLEN];
    size_t plen;
    int rv, fl = 0;
    if (!c->has_key) {
        if (out != ct && len > 0) {
            memmove(out, ct, len);
        }
        return 0;
    }
    if (len < LP2P_NOISE_TAGLEN) {
        return LP2P_ECRYPTO;
    }
    if (len > INT_MAX || adlen > INT_MAX) {
        return LP2P_ETOOBIG;
    }
    plen = len - LP2P_NOISE_TAGLEN;
    memcpy(tag, ct + plen, LP2P_NOISE_TAGLEN);
    rv = cipher_start(c, 0, ad, adlen);
    if (rv != 0) {
        return rv;
    }
    if (EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_AEAD_SET_TAG, LP2P_NOISE_TAGLEN,
                            tag) != 1) {
        return LP2P_ECRYPTO;
    }
    rv = cipher_update(c, out, ct, plen);
    if (rv != 0) {
        return rv;
    }
    if (EVP_CipherFinal_ex(c->ctx, out + plen, &fl) != 1) {
        OPENSSL_cleanse(out, plen); /* never release unauthenticated bytes */
        return LP2P_ECRYPTO;
    }
    c->n++;
    return 0;
}

/* ------------------------------------------------------------------- */
/* Primitives: X25519, SHA-256, HKDF                                     */

int lp2p__x25519_pub(const uint8_t priv[32], uint8_t pub[32])
{
    EVP_PKEY *k;
    size_t n = 32;
    int ok;
    k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
    if (k == NULL) {
        return LP2P_ECRYPTO;
    }
    ok = EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 && n == 32;
    EVP_PKEY_free(k);
    return ok ? 0 : LP2P_ECRYPTO;
}

/* DH(priv, pub); an all-zero result (small-order point) is an error. */
static int dh(const uint8_t priv[32], const uint8_t pub[32], uint8_t out[32])
{
    static const uint8_t zero[32];
    EVP_PKEY *a = NULL, *b = NULL;
    EVP_PKEY_CTX *c = NULL;
    size_t n = 32;
    int rv = LP2P_ECRYPTO;
    a = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
    b = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pub, 32);
    if (a == NULL || b == NULL) {
        goto out;
    }
    c = EVP_PKEY_CTX_new(a, NULL);
    if (c == NULL || EVP_PKEY_derive_init(c) != 1 ||
        EVP_PKEY_derive_set_peer(c, b) != 1 ||
        EVP_PKEY_derive(c, out, &n) != 1 || n != 32) {
        goto out;
    }
    if (CRYPTO_memcmp(out, zero, 32) == 0) {
        goto out;
    }
    rv = 0;
out:
    if (rv != 0) {
        OPENSSL_cleanse(out, 32);
    }
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    return rv;
}

static int mix_hash(struct lp2p_noise_xx *x, const uint8_t *data, size_t len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok;
    if (md == NULL) {
        return LP2P_ECRYPTO;
    }
    ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(md, x->h, 32) == 1 &&
         (len == 0 || EVP_DigestUpdate(md, data, len) == 1) &&
         EVP_DigestFinal_ex(md, x->h, &n) == 1 && n == 32;
    EVP_MD_CTX_free(md);
    return ok ? 0 : LP2P_ECRYPTO;
}

static int hmac(const uint8_t key[32], const uint8_t *d, size_t n,
                uint8_t out[32])
{
    unsigned int ol = 0;
    if (HMAC(EVP_sha256(), key, 32, d, n, out, &ol) == NULL || ol != 32) {
        return LP2P_ECRYPTO;
    }
    return 0;
}

/* HKDF with two outputs, as the Noise spec defines it. */
static int hkdf2(const uint8_t ck[32], const uint8_t *ikm, size_t n,
                 uint8_t o1[32], uint8_t o2[32])
{
    uint8_t t[32], in[33];
    int rv = hmac(ck, ikm, n, t);
    if (rv == 0) {
        in[0] = 0x01;
        rv = hmac(t, in, 1, o1);
    }
    if (rv == 0) {
        memcpy(in, o1, 32);
        in[32] = 0x02;
        rv = hmac(t, in, 33, o2);
    }
    OPENSSL_cleanse(t, sizeof(t));
    OPENSSL_cleanse(in, sizeof(in));
    return rv;
}

static int mix_key(struct lp2p_noise_xx *x, const uint8_t ikm[32])
{
    uint8_t k[32];
    int rv = hkdf2(x->ck, ikm, 32, x->ck, k);
    if (rv == 0) {
        rv = lp2p__noise_cipher_set_key(&x->cs, k);
    }
    OPENSSL_cleanse(k, sizeof(k));
    return rv;
}

/* DH then MixKey. */
static int mix_dh(struct lp2p_noise_xx *x, const uint8_t priv[32],
                  const uint8_t pub[32])
{
    uint8_t shared[32];
    int rv = dh(priv, pub, shared);
    if (rv == 0) {
        rv = mix_key(x, shared);
    }
    OPENSSL_cleanse(shared, sizeof(shared));
    return rv;
}

/* EncryptAndHash in place at p (len plaintext bytes, room for the tag). */
static int encrypt_and_hash(struct lp2p_noise_xx *x, uint8_t *p, size_t len,
                            size_t *outlen)
{
    int rv = lp2p__noise_cipher_encrypt(&x->cs, x->h, 32, p, len, p);
    if (rv != 0) {
        return rv;
    }
    *outlen = len + (x->cs.has_key ? LP2P_NOISE_TAGLEN : 0);
    return mix_hash(x, p, *outlen);
}

static int decrypt_and_hash(struct lp2p_noise_xx *x, const uint8_t *ct,
                            size_t len, uint8_t *out)
{
    uint8_t h[32];
    int rv;
    memcpy(h, x->h, 32);
    rv = mix_hash(x, ct, len); /* h after the message, ad = h before */
    if (rv == 0) {
        rv = lp2p__noise_cipher_decrypt(&x->cs, h, 32, ct, len, out);
    }
    return rv;
}

/* ------------------------------------------------------------------- */
/* XX                                                                   */

int lp2p__noise_xx_init(struct lp2p_noise_xx *x, int initiator,
                        const uint8_t *prologue, size_t plen,
                        const uint8_t s_priv[32], const uint8_t *e_priv)
{
    int rv;
    memset(x, 0, sizeof(*x));
    x->initiator = initiator;
    rv = lp2p__noise_cipher_init(&x->cs);
    if (rv != 0) {
        return rv;
    }
    /* The name is exactly 32 bytes: h = name, unhashed. */
    memcpy(x->h, PROTOCOL_NAME, 32);
    memcpy(x->ck, x->h, 32);
    rv = mix_hash(x, prologue, plen);
    if (rv != 0) {
        return rv;
    }
    memcpy(x->s_priv, s_priv, 32);
    rv = lp2p__x25519_pub(x->s_priv, x->s_pub);
    if (rv != 0) {
        return rv;
    }
    if (e_priv != NULL) {
        memcpy(x->e_priv, e_priv, 32);
        rv = lp2p__x25519_pub(x->e_priv, x->e_pub);
        x->has_e = rv == 0;
    }
    return rv;
}

void lp2p__noise_xx_close(struct lp2p_noise_xx *x)
{
    lp2p__noise_cipher_close(&x->cs);
    OPENSSL_cleanse(x->ck, sizeof(x->ck));
    OPENSSL_cleanse(x->s_priv, sizeof(x->s_priv));
    OPENSSL_cleanse(x->e_priv, sizeof(x->e_priv));
}

int lp2p__noise_xx_done(const struct lp2p_noise_xx *x)
{
    return x->msg == 3;
}

static int gen_e(struct lp2p_noise_xx *x)
{
    if (x->has_e) {
        return 0;
    }
    if (RAND_priv_bytes(x->e_priv, 32) != 1) {
        return LP2P_ECRYPTO;
    }
    x->has_e = 1;
    return lp2p__x25519_pub(x->e_priv, x->e_pub);
}

int lp2p__noise_xx_write(struct lp2p_noise_xx *x, const uint8_t *payload,
                         size_t len, struct lp2p_buf *out)
{
    size_t total, pos = 0, n;
    uint8_t *p;
    int rv;
    int mine = x->initiator ? (x->msg == 0 || x->msg == 2) : x->msg == 1;
    if (!mine || x->msg >= 3) {
        return LP2P_ESTATE;
    }
    switch (x->msg) {
    case 0: total = 32 + len; break;
    case 1: total = 32 + 48 + len + 16; break;
    default: total = 48 + len + 16; break;
    }
    if (len > LP2P_NOISE_MAX_MSG || total > LP2P_NOISE_MAX_MSG) {
        return LP2P_ETOOBIG;
    }
    rv = lp2p__buf_reserve(out, total);
    if (rv != 0) {
        return rv;
    }
    p = out->data + out->len;
    if (x->msg <= 1) { /* e */
        rv = gen_e(x);
        if (rv != 0) {
            return rv;
        }
        memcpy(p, x->e_pub, 32);
        pos = 32;
        rv = mix_hash(x, x->e_pub, 32);
        if (rv != 0) {
            return rv;
        }
    }
    if (x->msg == 1) { /* ee, s, es */
        rv = mix_dh(x, x->e_priv, x->re);
        if (rv == 0) {
            memcpy(p + pos, x->s_pub, 32);
            rv = encrypt_and_hash(x, p + pos, 32, &n);
            pos += n;
        }
        if (rv == 0) {
            rv = mix_dh(x, x->s_priv, x->re);
        }
    } else if (x->msg == 2) { /* s, se */
        memcpy(p, x->s_pub, 32);
        rv = encrypt_and_hash(x, p, 32, &n);
        pos = n;
        if (rv == 0) {
            rv = mix_dh(x, x->s_priv, x->re);
        }
    }
    if (rv != 0) {
        return rv;
    }
    if (len > 0) {
        memcpy(p + pos, payload, len);
    }
    rv = encrypt_and_hash(x, p + pos, len, &n);
    if (rv != 0) {
        return rv;
    }
    pos += n;
    out->len += pos;
    x->msg++;
    return 0;
}

int lp2p__noise_xx_read(struct lp2p_noise_xx *x, const uint8_t *msg,
                        size_t len, struct lp2p_buf *payload)
{
    size_t pos = 0, min, plen;
    int rv;
    int theirs = x->initiator ? x->msg == 1 : (x->msg == 0 || x->msg == 2);
    if (!theirs || x->msg >= 3) {
        return LP2P_ESTATE;
    }
    min = x->msg == 0 ? 32 : x->msg == 1 ? 32 + 48 + 16 : 48 + 16;
    if (len < min) {
        return LP2P_EPROTO;
    }
    if (len > LP2P_NOISE_MAX_MSG) {
        return LP2P_ETOOBIG;
    }
    if (x->msg <= 1) { /* e */
        memcpy(x->re, msg, 32);
        pos = 32;
        rv = mix_hash(x, x->re, 32);
        if (rv != 0) {
            return rv;
        }
    }
    if (x->msg == 1) { /* ee, s, es */
        rv = mix_dh(x, x->e_priv, x->re);
        if (rv == 0) {
            rv = decrypt_and_hash(x, msg + pos, 48, x->rs);
            pos += 48;
        }
        if (rv == 0) {
            rv = mix_dh(x, x->e_priv, x->rs);
        }
    } else if (x->msg == 2) { /* s, se */
        rv = decrypt_and_hash(x, msg, 48, x->rs);
        pos = 48;
        if (rv == 0) {
            rv = mix_dh(x, x->e_priv, x->rs);
        }
    }
    if (rv != 0) {
        return rv;
    }
    plen = len - pos - (x->cs.has_key ? LP2P_NOISE_TAGLEN : 0);
    rv = lp2p__buf_reserve(payload, plen + LP2P_NOISE_TAGLEN);
    if (rv != 0) {
        return rv;
    }
    rv = decrypt_and_hash(x, msg + pos, len - pos,
                          payload->data + payload->len);
    if (rv != 0) {
        return rv;
    }
    payload->len += plen;
    x->msg++;
    return 0;
}

int lp2p__noise_xx_split(struct lp2p_noise_xx *x,
                         struct lp2p_noise_cipher *tx,
                         struct lp2p_noise_cipher *rx)
{
    uint8_t k1[32], k2[32];
    int rv;
    if (x->msg != 3) {
        return LP2P_ESTATE;
    }
    rv = hkdf2(x->ck, NULL, 0, k1, k2);
    if (rv == 0) {
        rv = lp2p__noise_cipher_set_key(tx, x->initiator ? k1 : k2);
    }
    if (rv == 0) {
        rv = lp2p__noise_cipher_set_key(rx, x->initiator ? k2 : k1);
    }
    OPENSSL_cleanse(k1, sizeof(k1));
    OPENSSL_cleanse(k2, sizeof(k2));
    return rv;
}

/* ------------------------------------------------------------------- */
/* libp2p payload                                                       */

int lp2p__noise_payload_build(const struct lp2p_key *key,
                              const uint8_t static_pub[32],
                              const char *const *muxers, size_t nmuxers,
                              struct lp2p_buf *out)
{
    uint8_t msg[SIG_PREFIX_LEN + 32], sig[LP2P_ED25519_SIGLEN], pk[36];
    struct lp2p_buf ext;
    size_t i;
    int rv;
    memcpy(msg, SIG_PREFIX, SIG_PREFIX_LEN);
    memcpy(msg + SIG_PREFIX_LEN, static_pub, 32);
    rv = lp2p_key_sign(key, msg, sizeof(msg), sig);
    if (rv != 0) {
        return rv;
    }
    lp2p__pubkey_pb_encode(key->pub, pk);
    lp2p__buf_init(&ext);
    for (i = 0; i < nmuxers && rv == 0; i++) {
        rv = lp2p__pb_put_string(&ext, 2, muxers[i]);
    }
    if (rv == 0) {
        rv = lp2p__pb_put_bytes(out, 1, pk, sizeof(pk));
    }
    if (rv == 0) {
        rv = lp2p__pb_put_bytes(out, 2, sig, sizeof(sig));
    }
    if (rv == 0 && nmuxers > 0) {
        rv = lp2p__pb_put_bytes(out, 4, ext.data, ext.len);
    }
    lp2p__buf_free(&ext);
    return rv;
}

/* Walk the stream_muxers strings of a NoiseExtensions message. */
static int ext_muxers_check(const uint8_t *ext, size_t len, size_t *count)
{
    struct lp2p_pb_reader r;
    struct lp2p_pb_field f;
    int rv;
    *count = 0;
    lp2p__pb_reader_init(&r, ext, len);
    while ((rv = lp2p__pb_next(&r, &f)) == 1) {
        if (f.num == 2) {
            if (f.wire != LP2P_PB_LEN) {
                return LP2P_EPROTO;
            }
            (*count)++;
        }
    }
    return rv == 0 ? 0 : LP2P_EPROTO;
}

static int ext_has(const uint8_t *ext, size_t len, const char *name)
{
    struct lp2p_pb_reader r;
    struct lp2p_pb_field f;
    size_t n = strlen(name);
    lp2p__pb_reader_init(&r, ext, len);
    while (lp2p__pb_next(&r, &f) == 1) {
        if (f.num == 2 && f.len == n && memcmp(f.data, name, n) == 0) {
            return 1;
        }
    }
    return 0;
}

static const char *choose_muxer(const uint8_t *ext, size_t len,
                                const char *const *muxers, size_t nmuxers,
                                int initiator_list_is_ours)
{
    struct lp2p_pb_reader r;
    struct lp2p_pb_field f;
    size_t i;
    if (initiator_list_is_ours) {
        for (i = 0; i < nmuxers; i++) {
            if (ext_has(ext, len, muxers[i])) {
                return muxers[i];
            }
        }
        return NULL;
    }
    lp2p__pb_reader_init(&r, ext, len);
    while (lp2p__pb_next(&r, &f) == 1) {
        if (f.num != 2) {
            continue;
        }
        for (i = 0; i < nmuxers; i++) {
            if (strlen(muxers[i]) == f.len &&
                memcmp(muxers[i], f.data, f.len) == 0) {
                return muxers[i];
            }
        }
    }
    return NULL;
}

int lp2p__noise_payload_verify(const uint8_t *p, size_t len,
                               const uint8_t static_pub[32],
                               const char *const *muxers, size_t nmuxers,
                               int initiator_list_is_ours,
                               uint8_t remote_pub[32],
                               struct lp2p_peer_id *id, const char **muxer)
{
    struct lp2p_pb_reader r;
    struct lp2p_pb_field f;
    const uint8_t *idkey = NULL, *sig = NULL, *ext = NULL;
    size_t idkey_len = 0, sig_len = 0, ext_len = 0, count = 0;
    uint8_t msg[SIG_PREFIX_LEN + 32], pk[36];
    int rv;

    *muxer = NULL;
    lp2p__pb_reader_init(&r, p, len);
    while ((rv = lp2p__pb_next(&r, &f)) == 1) {
        if (f.num != 1 && f.num != 2 && f.num != 4) {
            continue;
        }
        if (f.wire != LP2P_PB_LEN) {
            return LP2P_EPROTO;
        }
        if (f.num == 1) {
            idkey = f.data;
            idkey_len = f.len;
        } else if (f.num == 2) {
            sig = f.data;
            sig_len = f.len;
        } else {
            ext = f.data;
            ext_len = f.len;
        }
    }
    if (rv != 0 || idkey == NULL || sig == NULL) {
        return LP2P_EPROTO;
    }
    rv = lp2p__pubkey_pb_decode(idkey, idkey_len, remote_pub);
    if (rv != 0) {
        return rv;
    }
    if (sig_len != LP2P_ED25519_SIGLEN) {
        return LP2P_EBADSIG;
    }
    memcpy(msg, SIG_PREFIX, SIG_PREFIX_LEN);
    memcpy(msg + SIG_PREFIX_LEN, static_pub, 32);
    rv = lp2p_ed25519_verify(remote_pub, msg, sizeof(msg), sig);
    if (rv != 0) {
        return rv == LP2P_EBADKEY ? rv : LP2P_EBADSIG;
    }
    /* The ID of the key itself, re-encoded deterministically. */
    lp2p__pubkey_pb_encode(remote_pub, pk);
    rv = lp2p_peer_id_from_pubkey_pb(pk, sizeof(pk), id);
    if (rv != 0) {
        return rv;
    }
    if (ext != NULL) {
        rv = ext_muxers_check(ext, ext_len, &count);
        if (rv != 0) {
            return rv;
        }
    }
    /* Inlined muxer negotiation only when both sides sent a list. */
    if (nmuxers > 0 && count > 0) {
        *muxer = choose_muxer(ext, ext_len, muxers, nmuxers,
                              initiator_list_is_ours);
    }
    return 0;
}

/* ------------------------------------------------------------------- */
/* libp2p handshake                                                     */

int lp2p__noise_hs_init(struct lp2p_noise_hs *hs, int initiator,
                        const struct lp2p_noise_config *cfg)
{
    uint8_t s[32];
    size_t i;
    int rv;
    memset(hs, 0, sizeof(*hs));
    lp2p__buf_init(&hs->in);
    if (cfg == NULL || cfg->identity == NULL ||
        (cfg->nmuxers > 0 && cfg->muxers == NULL)) {
        hs->failed = 1;
        return LP2P_EINVAL;
    }
    for (i = 0; i < cfg->nmuxers; i++) {
        size_t l = cfg->muxers[i] != NULL ? strlen(cfg->muxers[i]) : 0;
        if (l == 0 || l > MAX_MUXER_NAME) {
            hs->failed = 1;
            return LP2P_EINVAL;
        }
    }
    hs->identity = *cfg->identity;
    if (!initiator && cfg->expected != NULL) {
        hs->failed = 1;
        return LP2P_EINVAL;
    }
    if (cfg->expected != NULL) {
        hs->has_expected = 1;
        hs->expected = *cfg->expected;
    }
    hs->muxers = cfg->muxers;
    hs->nmuxers = cfg->nmuxers;
    /* A fresh static key per handshake; it is never persisted. */
    if (RAND_priv_bytes(s, 32) != 1) {
        hs->failed = 1;
        return LP2P_ECRYPTO;
    }
    rv = lp2p__noise_xx_init(&hs->xx, initiator, NULL, 0, s, NULL);
    OPENSSL_cleanse(s, sizeof(s));
    if (rv != 0) {
        hs->failed = 1;
    }
    return rv;
}

int lp2p__noise_hs_set_test_keys(struct lp2p_noise_hs *hs,
                                 const uint8_t s_priv[32],
                                 const uint8_t e_priv[32])
{
    int rv = 0;
    if (hs->started || hs->failed) {
        return LP2P_ESTATE;
    }
    if (s_priv != NULL) {
        memcpy(hs->xx.s_priv, s_priv, 32);
        rv = lp2p__x25519_pub(hs->xx.s_priv, hs->xx.s_pub);
    }
    if (rv == 0 && e_priv != NULL) {
        memcpy(hs->xx.e_priv, e_priv, 32);
        rv = lp2p__x25519_pub(hs->xx.e_priv, hs->xx.e_pub);
        hs->xx.has_e = rv == 0;
    }
    return rv;
}

void lp2p__noise_hs_close(struct lp2p_noise_hs *hs)
{
    lp2p__noise_xx_close(&hs->xx);
    lp2p_key_wipe(&hs->identity);
    lp2p__buf_free(&hs->in);
    hs->failed = 1;
}

/* Append a framed handshake message with our payload. */
static int write_framed(struct lp2p_noise_hs *hs, struct lp2p_buf *out)
{
    struct lp2p_buf payload;
    size_t pos = out->len, n;
    int rv;
    lp2p__buf_init(&payload);
    if (hs->xx.msg > 0) { /* msg1 carries no payload */
        rv = lp2p__noise_payload_build(&hs->identity, hs->xx.s_pub,
                                       hs->muxers, hs->nmuxers, &payload);
        if (rv != 0) {
            goto out;
        }
    }
    rv = lp2p__buf_append(out, "\0\0", 2);
    if (rv != 0) {
        goto out;
    }
    rv = lp2p__noise_xx_write(&hs->xx, payload.data, payload.len, out);
    if (rv != 0) {
        out->len = pos;
        goto out;
    }
    n = out->len - pos - 2;
    out->data[pos] = (uint8_t)(n >> 8);
    out->data[pos + 1] = (uint8_t)n;
out:
    lp2p__buf_free(&payload);
    return rv;
}

int lp2p__noise_hs_start(struct lp2p_noise_hs *hs, struct lp2p_buf *out)
{
    int rv = 0;
    if (hs->started || hs->failed) {
        return LP2P_ESTATE;
    }
    if (hs->xx.initiator) {
        rv = write_framed(hs, out);
    }
    if (rv != 0) {
        hs->failed = 1;
        return rv;
    }
    hs->started = 1;
    return 0;
}

/* One complete handshake message from the peer. */
static int on_message(struct lp2p_noise_hs *hs, const uint8_t *msg,
                      size_t len, struct lp2p_buf *out)
{
    struct lp2p_buf payload;
    int rv, step = hs->xx.msg;
    lp2p__buf_init(&payload);
    rv = lp2p__noise_xx_read(&hs->xx, msg, len, &payload);
    if (rv != 0) {
        goto out;
    }
    if (step == 0) {
        /* msg1's payload is empty in libp2p; anything there is ignored. */
        rv = write_framed(hs, out);
        goto out;
    }
    rv = lp2p__noise_payload_verify(payload.data, payload.len, hs->xx.rs,
                                    hs->muxers, hs->nmuxers, hs->xx.initiator,
                                    hs->remote_pub, &hs->remote_id,
                                    &hs->muxer);
    if (rv != 0) {
        goto out;
    }
    if (hs->xx.initiator) {
        if (hs->has_expected &&
            !lp2p_peer_id_equal(&hs->expected, &hs->remote_id)) {
            rv = LP2P_EPEERID; /* before revealing our identity */
            goto out;
        }
        rv = write_framed(hs, out);
    }
out:
    lp2p__buf_free(&payload);
    return rv;
}

int lp2p__noise_hs_feed(struct lp2p_noise_hs *hs, const uint8_t *in,
                        size_t len, struct lp2p_buf *out)
{
    size_t off = 0;
    int rv = 0;
    if (!hs->started || hs->failed || lp2p__noise_xx_done(&hs->xx)) {
        return LP2P_ESTATE;
    }
    if (len > INT_MAX) {
        len = INT_MAX;
    }
    while (off < len && !lp2p__noise_xx_done(&hs->xx)) {
        size_t avail = len - off, flen, take;
        if (hs->in.len == 0 && avail >= 2) {
            flen = (size_t)in[off] << 8 | in[off + 1];
            if (avail - 2 >= flen) { /* whole frame in the input */
                off += 2 + flen;
                rv = on_message(hs, in + off - flen, flen, out);
                if (rv != 0) {
                    break;
                }
                continue;
            }
        }
        /* Buffer the partial frame: the header, then the body. */
        take = hs->in.len < 2 ? 2 - hs->in.len : 0;
        if (take == 0) {
            flen = (size_t)hs->in.data[0] << 8 | hs->in.data[1];
            take = 2 + flen - hs->in.len;
        }
        if (take > avail) {
            take = avail;
        }
        rv = lp2p__buf_append(&hs->in, in + off, take);
        if (rv != 0) {
            break;
        }
        off += take;
        if (hs->in.len >= 2) {
            flen = (size_t)hs->in.data[0] << 8 | hs->in.data[1];
            if (hs->in.len == 2 + flen) {
                rv = on_message(hs, hs->in.data + 2, flen, out);
                hs->in.len = 0;
                if (rv != 0) {
                    break;
                }
            }
        }
    }
    if (rv != 0) {
        LOG_DEBUG("noise", "handshake failed at message %d: %s",
                  hs->xx.msg + 1, lp2p_strerror(rv));
        hs->failed = 1;
        lp2p__noise_xx_close(&hs->xx);
        return rv;
    }
    if (lp2p__noise_xx_done(&hs->xx)) {
        lp2p__buf_free(&hs->in);
    }
    return (int)off;
}

int lp2p__noise_hs_done(const struct lp2p_noise_hs *hs)
{
    return !hs->failed && lp2p__noise_xx_done(&hs->xx);
}

const struct lp2p_peer_id *lp2p__noise_hs_remote_id(
    const struct lp2p_noise_hs *hs)
{
    return lp2p__noise_hs_done(hs) ? &hs->remote_id : NULL;
}

const char *lp2p__noise_hs_muxer(const struct lp2p_noise_hs *hs)
{
    return lp2p__noise_hs_done(hs) ? hs->muxer : NULL;
}

/* ------------------------------------------------------------------- */
/* Transport                                                            */

int lp2p__noise_hs_split(struct lp2p_noise_hs *hs,
                         struct lp2p_noise_transport *t)
{
    int rv;
    if (!lp2p__noise_hs_done(hs) || hs->split) {
        return LP2P_ESTATE; /* `t` untouched */
    }
    memset(t, 0, sizeof(*t));
    t->rbuf = lp2p__malloc(2 + LP2P_NOISE_MAX_MSG);
    if (t->rbuf == NULL) {
        return LP2P_ENOMEM;
    }
    rv = lp2p__noise_cipher_init(&t->tx);
    if (rv == 0) {
        rv = lp2p__noise_cipher_init(&t->rx);
    }
    if (rv == 0) {
        rv = lp2p__noise_xx_split(&hs->xx, &t->tx, &t->rx);
    }
    if (rv != 0) {
        lp2p__noise_transport_close(t);
        return rv;
    }
    hs->split = 1;
    /* The handshake's secrets are no longer needed. */
    OPENSSL_cleanse(hs->xx.ck, sizeof(hs->xx.ck));
    OPENSSL_cleanse(hs->xx.s_priv, sizeof(hs->xx.s_priv));
    OPENSSL_cleanse(hs->xx.e_priv, sizeof(hs->xx.e_priv));
    return 0;
}

void lp2p__noise_transport_close(struct lp2p_noise_transport *t)
{
    lp2p__noise_cipher_close(&t->tx);
    lp2p__noise_cipher_close(&t->rx);
    if (t->rbuf != NULL) {
        OPENSSL_cleanse(t->rbuf, 2 + LP2P_NOISE_MAX_MSG);
        lp2p__free(t->rbuf);
        t->rbuf = NULL;
    }
    t->rlen = 0;
    t->failed = 1;
}

int lp2p__noise_transport_encrypt(struct lp2p_noise_transport *t,
                                  const uint8_t *pt, size_t len,
                                  struct lp2p_buf *out)
{
    size_t frames, total, off = 0;
    uint8_t *p;
    int rv;
    if (t->failed) {
        return LP2P_ESTATE;
    }
    if (len == 0) {
        return 0;
    }
    frames = len / LP2P_NOISE_MAX_PLAIN + (len % LP2P_NOISE_MAX_PLAIN != 0);
    if (len > (size_t)-1 - frames * (2 + LP2P_NOISE_TAGLEN)) {
        return LP2P_EOVERFLOW;
    }
    total = len + frames * (2 + LP2P_NOISE_TAGLEN);
    rv = lp2p__buf_reserve(out, total);
    if (rv != 0) {
        return rv;
    }
    p = out->data + out->len;
    while (off < len) {
        size_t n = len - off;
        if (n > LP2P_NOISE_MAX_PLAIN) {
            n = LP2P_NOISE_MAX_PLAIN;
        }
        p[0] = (uint8_t)((n + LP2P_NOISE_TAGLEN) >> 8);
        p[1] = (uint8_t)(n + LP2P_NOISE_TAGLEN);
        rv = lp2p__noise_cipher_encrypt(&t->tx, NULL, 0, pt + off, n, p + 2);
        if (rv != 0) {
            t->failed = 1;
            return rv;
        }
        p += 2 + n + LP2P_NOISE_TAGLEN;
        off += n;
    }
    out->len += total;
    return 0;
}

static int decrypt_frame(struct lp2p_noise_transport *t, const uint8_t *ct,
                         size_t len, struct lp2p_buf *out)
{
    uint8_t none[1]; /* an empty frame may meet an unallocated buffer */
    int rv = lp2p__buf_reserve(out, len - LP2P_NOISE_TAGLEN);
    if (rv != 0) {
        return rv;
    }
    rv = lp2p__noise_cipher_decrypt(&t->rx, NULL, 0, ct, len,
                                    out->data != NULL ? out->data + out->len
                                                      : none);
    if (rv != 0) {
        return rv;
    }
    out->len += len - LP2P_NOISE_TAGLEN;
    return 0;
}

int lp2p__noise_transport_decrypt(struct lp2p_noise_transport *t,
                                  const uint8_t *in, size_t len,
                                  struct lp2p_buf *out)
{
    size_t off = 0;
    int rv = 0;
    if (t->failed) {
        return LP2P_ESTATE;
    }
    while (off < len) {
        size_t avail = len - off, flen, take;
        if (t->rlen == 0 && avail >= 2) {
            flen = (size_t)in[off] << 8 | in[off + 1];
            if (flen < LP2P_NOISE_TAGLEN) {
                rv = LP2P_EPROTO;
                break;
            }
            if (avail - 2 >= flen) { /* zero copy: straight from the input */
                rv = decrypt_frame(t, in + off + 2, flen, out);
                if (rv != 0) {
                    break;
                }
                off += 2 + flen;
                continue;
            }
        }
        take = t->rlen < 2 ? 2 - t->rlen : 0;
        if (take == 0) {
            flen = (size_t)t->rbuf[0] << 8 | t->rbuf[1];
            take = 2 + flen - t->rlen;
        }
        if (take > avail) {
            take = avail;
        }
        memcpy(t->rbuf + t->rlen, in + off, take);
        t->rlen += take;
        off += take;
        if (t->rlen >= 2) {
            flen = (size_t)t->rbuf[0] << 8 | t->rbuf[1];
            if (flen < LP2P_NOISE_TAGLEN) {
                rv = LP2P_EPROTO;
                break;
            }
            if (t->rlen == 2 + flen) {
                t->rlen = 0;
                rv = decrypt_frame(t, t->rbuf + 2, flen, out);
                if (rv != 0) {
                    break;
                }
            }
        }
    }
    if (rv != 0) {
        t->failed = 1;
        return rv;
    }
    return 0;
}
