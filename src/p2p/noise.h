/*
 * Noise_XX_25519_ChaChaPoly_SHA256 with the libp2p handshake payload, as
 * sans-I/O state machines over OpenSSL 3 (X25519, ChaCha20-Poly1305,
 * HMAC-SHA256).
 *
 * Three layers:
 *  - lp2p_noise_cipher / lp2p_noise_xx: the Noise protocol framework's
 *    CipherState and the XX handshake over arbitrary payloads and prologue
 *    (what the cacophony vectors exercise).
 *  - lp2p_noise_hs: the libp2p handshake: 2-byte big-endian framing,
 *    NoiseHandshakePayload {identity_key, identity_sig, extensions
 *    {stream_muxers}}, signature check, remote peer ID, expected peer ID
 *    (dialer), inlined muxer selection.
 *  - lp2p_noise_transport: framed transport messages (<= 65535 bytes,
 *    tag included) in both directions, with a decrypt that takes any
 *    chunking of the byte stream.
 *
 * Secrets (DH keys, chaining key, cipher keys) are wiped with
 * OPENSSL_cleanse on close and on failure.
 */
#ifndef LP2P_P2P_NOISE_H
#define LP2P_P2P_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "lp2p.h"
#include "../util/buf.h"

#define LP2P_NOISE_PROTOCOL "/noise"
#define LP2P_NOISE_KEYLEN 32
#define LP2P_NOISE_TAGLEN 16
#define LP2P_NOISE_MAX_MSG 65535 /* one Noise message, tag included */
#define LP2P_NOISE_MAX_PLAIN (LP2P_NOISE_MAX_MSG - LP2P_NOISE_TAGLEN)

/* --------------------------------------------------------------------- */
/* CipherState: ChaCha20-Poly1305, nonce = 4 zero bytes || LE64(n).       */

struct lp2p_noise_cipher {
    void *ctx;       /* EVP_CIPHER_CTX *, keyed once, reused per message */
    uint8_t k[32];
    uint64_t n;
    int has_key;
};

/* Allocates the OpenSSL context (no key). 0 or LP2P_ECRYPTO. */
int lp2p__noise_cipher_init(struct lp2p_noise_cipher *c);
/* Frees the context and wipes the key. Safe on a zeroed struct. */
void lp2p__noise_cipher_close(struct lp2p_noise_cipher *c);
/* InitializeKey(k): n = 0. 0 or LP2P_ECRYPTO. */
int lp2p__noise_cipher_set_key(struct lp2p_noise_cipher *c,
                               const uint8_t k[32]);
/*
 * EncryptWithAd: `out` receives len + 16 bytes (it may equal `pt`).
 * Without a key, copies. LP2P_ECRYPTO when the nonce reached 2^64-1 (it is
 * never used) or OpenSSL fails.
 */
int lp2p__noise_cipher_encrypt(struct lp2p_noise_cipher *c, const uint8_t *ad,
                               size_t adlen, const uint8_t *pt, size_t len,
                               uint8_t *out);
/* DecryptWithAd: `ct` holds len bytes (tag included, len >= 16 with a
 * key); `out` receives len - 16 bytes (it may equal `ct`). LP2P_ECRYPTO on
 * a bad tag or exhausted nonce; n advances only on success. */
int lp2p__noise_cipher_decrypt(struct lp2p_noise_cipher *c, const uint8_t *ad,
                               size_t adlen, const uint8_t *ct, size_t len,
                               uint8_t *out);

/* --------------------------------------------------------------------- */
/* The XX handshake core: -> e / <- e, ee, s, es / -> s, se.               */

struct lp2p_noise_xx {
    int initiator;
    int msg;          /* messages processed so far, 0..3 */
    uint8_t ck[32];
    uint8_t h[32];
    struct lp2p_noise_cipher cs;
    uint8_t s_priv[32], s_pub[32];
    uint8_t e_priv[32], e_pub[32];
    int has_e;
    uint8_t rs[32], re[32];
};

/*
 * Initialise with the static private key `s_priv` (copied) and, for
 * tests, a fixed ephemeral private key `e_priv` (NULL: generated with the
 * OpenSSL RNG when needed). `prologue` is mixed into h (may be NULL when
 * plen is 0). 0, LP2P_ECRYPTO. Close with lp2p__noise_xx_close() even on
 * failure.
 */
int lp2p__noise_xx_init(struct lp2p_noise_xx *x, int initiator,
                        const uint8_t *prologue, size_t plen,
                        const uint8_t s_priv[32], const uint8_t *e_priv);
void lp2p__noise_xx_close(struct lp2p_noise_xx *x);

/* X25519 public key of a private key. 0 or LP2P_ECRYPTO. */
int lp2p__x25519_pub(const uint8_t priv[32], uint8_t pub[32]);

/*
 * Write the next handshake message (unframed) carrying `payload`, appended
 * to `out`. LP2P_ESTATE if it is not our turn, LP2P_ECRYPTO (including an
 * all-zero DH result), LP2P_ETOOBIG (message over 65535 bytes),
 * LP2P_ENOMEM.
 */
int lp2p__noise_xx_write(struct lp2p_noise_xx *x, const uint8_t *payload,
                         size_t len, struct lp2p_buf *out);

/*
 * Read the next handshake message (`len` bytes, unframed); the decrypted
 * payload is appended to `payload`. LP2P_ESTATE, LP2P_EPROTO (too short),
 * LP2P_ECRYPTO (bad tag, all-zero DH), LP2P_ENOMEM.
 */
int lp2p__noise_xx_read(struct lp2p_noise_xx *x, const uint8_t *msg,
                        size_t len, struct lp2p_buf *payload);

/* 1 when all three messages were processed. */
int lp2p__noise_xx_done(const struct lp2p_noise_xx *x);

/*
 * Split(): the initiator's sending key is the first output. `tx` and `rx`
 * must be initialised ciphers. 0, LP2P_ESTATE, LP2P_ECRYPTO.
 */
int lp2p__noise_xx_split(struct lp2p_noise_xx *x,
                         struct lp2p_noise_cipher *tx,
                         struct lp2p_noise_cipher *rx);

/* --------------------------------------------------------------------- */
/* The libp2p handshake.                                                  */

struct lp2p_noise_config {
    /* Our identity (copied at init; the copy is wiped on close). */
    const struct lp2p_key *identity;
    /* Dialer only, optional: the peer ID we expect (copied). */
    const struct lp2p_peer_id *expected;
    /* Stream muxers to offer inline, in preference order (borrowed for
     * the life of the handshake; n = 0 sends no extensions). */
    const char *const *muxers;
    size_t nmuxers;
};

struct lp2p_noise_hs {
    struct lp2p_noise_xx xx;
    int started;
    int failed;
    struct lp2p_key identity;
    int has_expected;
    struct lp2p_peer_id expected;
    const char *const *muxers;
    size_t nmuxers;
    int split;                /* keys already handed to a transport */
    struct lp2p_buf in;       /* a partial handshake frame */
    /* Results. */
    struct lp2p_peer_id remote_id;
    uint8_t remote_pub[32];   /* remote Ed25519 identity key */
    const char *muxer;        /* inlined choice (one of `muxers`) or NULL */
};

/*
 * Set up a handshake (`initiator` = dialer). A fresh X25519 static key is
 * drawn from the OpenSSL RNG. Errors: LP2P_EINVAL (no identity, empty or
 * overlong muxer name), LP2P_ECRYPTO. Close with lp2p__noise_hs_close()
 * in all cases.
 */
int lp2p__noise_hs_init(struct lp2p_noise_hs *hs, int initiator,
                        const struct lp2p_noise_config *cfg);

/* Test hook, before start: use fixed X25519 keys (either may be NULL to
 * keep the random one). 0 or LP2P_ECRYPTO. */
int lp2p__noise_hs_set_test_keys(struct lp2p_noise_hs *hs,
                                 const uint8_t s_priv[32],
                                 const uint8_t e_priv[32]);

/* Wipe every secret and free everything. Safe to call twice. */
void lp2p__noise_hs_close(struct lp2p_noise_hs *hs);

/* Initiator: append framed message 1. Responder: nothing. 0,
 * LP2P_ESTATE, LP2P_ENOMEM, LP2P_ECRYPTO. */
int lp2p__noise_hs_start(struct lp2p_noise_hs *hs, struct lp2p_buf *out);

/*
 * Feed received bytes (any chunking); replies (framed) are appended to
 * `out`. Returns the number of bytes consumed: all of them until the
 * handshake completes; bytes after the final handshake message are not
 * consumed (they are transport messages: give them to
 * lp2p__noise_transport_decrypt() after lp2p__noise_hs_split()). The
 * initiator completes when it wrote message 3 (send it before any
 * transport message), the responder when it read message 3.
 * Errors (the handshake is then dead): LP2P_EPROTO (short message,
 * malformed payload, missing identity fields), LP2P_ECRYPTO (bad tag,
 * all-zero DH), LP2P_EBADKEY / LP2P_EUNSUPPORTED (identity key),
 * LP2P_EBADSIG (identity_sig does not sign the static key), LP2P_EPEERID
 * (dialer: not the expected peer), LP2P_ETOOBIG, LP2P_ENOMEM, LP2P_ESTATE.
 * `len` above INT_MAX is treated as INT_MAX.
 */
int lp2p__noise_hs_feed(struct lp2p_noise_hs *hs, const uint8_t *in,
                        size_t len, struct lp2p_buf *out);

/* 1 once the handshake completed. */
int lp2p__noise_hs_done(const struct lp2p_noise_hs *hs);

/* Remote results, valid once done. The inlined muxer is NULL when none
 * was agreed ("none": negotiate /yamux/1.0.0 with multistream). */
const struct lp2p_peer_id *lp2p__noise_hs_remote_id(
    const struct lp2p_noise_hs *hs);
const char *lp2p__noise_hs_muxer(const struct lp2p_noise_hs *hs);

/* Build a NoiseHandshakePayload for `key` and the X25519 static key
 * `static_pub`, appended to `out`. 0, LP2P_ENOMEM, LP2P_ECRYPTO. */
int lp2p__noise_payload_build(const struct lp2p_key *key,
                              const uint8_t static_pub[32],
                              const char *const *muxers, size_t nmuxers,
                              struct lp2p_buf *out);

/*
 * Parse and verify a NoiseHandshakePayload received with the remote static
 * key `static_pub`: fills `remote_pub`, `id`, and, when `muxers` is
 * non-empty, `*muxer` with the inlined choice (initiator_list_is_ours says
 * whose preference order rules), else NULL. Errors as lp2p__noise_hs_feed.
 */
int lp2p__noise_payload_verify(const uint8_t *p, size_t len,
                               const uint8_t static_pub[32],
                               const char *const *muxers, size_t nmuxers,
                               int initiator_list_is_ours,
                               uint8_t remote_pub[32],
                               struct lp2p_peer_id *id, const char **muxer);

/* --------------------------------------------------------------------- */
/* Transport.                                                             */

struct lp2p_noise_transport {
    struct lp2p_noise_cipher tx, rx;
    uint8_t *rbuf;   /* a partial incoming frame (2 + 65535 bytes room) */
    size_t rlen;
    int failed;
};

/*
 * Move the split keys of a completed handshake into `t` (the handshake may
 * then be closed). Once only: the chaining key is wiped afterwards, so a
 * second call is LP2P_ESTATE. 0, LP2P_ESTATE, LP2P_ECRYPTO, LP2P_ENOMEM.
 * On failure `t` needs no close.
 */
int lp2p__noise_hs_split(struct lp2p_noise_hs *hs,
                         struct lp2p_noise_transport *t);

/* Wipe keys and free. Safe on a zeroed struct and twice. */
void lp2p__noise_transport_close(struct lp2p_noise_transport *t);

/*
 * Encrypt `len` plaintext bytes (any size; 0 writes nothing) into framed
 * transport messages of at most 65519 plaintext bytes each, appended to
 * `out`. 0, LP2P_ENOMEM, LP2P_ECRYPTO (nonce exhausted: the transport is
 * dead). On error `out` is left as it was.
 */
int lp2p__noise_transport_encrypt(struct lp2p_noise_transport *t,
                                  const uint8_t *pt, size_t len,
                                  struct lp2p_buf *out);

/*
 * Decrypt any chunk of the received ciphertext stream: every frame
 * completed by `in` is decrypted and its plaintext appended to `out`; a
 * trailing partial frame is buffered. Consumes all of `in`. 0, LP2P_EPROTO
 * (a frame shorter than the tag), LP2P_ECRYPTO (bad tag, nonce exhausted),
 * LP2P_ENOMEM. After an error the transport is dead (LP2P_ESTATE).
 * Plaintext of frames before the failing one was already appended.
 */
int lp2p__noise_transport_decrypt(struct lp2p_noise_transport *t,
                                  const uint8_t *in, size_t len,
                                  struct lp2p_buf *out);

#endif
