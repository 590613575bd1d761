/*
 * lp2p: a small libp2p stack in C (TCP, multistream-select 1.0, Noise XX,
 * Yamux, ping, identify) on libuv. It is the network layer of p2praft and a
 * usable C libp2p library of its own.
 *
 * Threading: every lp2p object belongs to the loop thread that created it.
 * The global hooks below (heap, log) are set once, before any other call.
 */
#ifndef LP2P_H
#define LP2P_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) && __GNUC__ >= 4
#define LP2P_API __attribute__((visibility("default")))
#else
#define LP2P_API
#endif

#define LP2P_VERSION "0.1.0"

/*
 * Errors. One table for the whole project: lp2p_strerror() and
 * p2praft_strerror() both read it, and p2praft.h gives every code a P2PRAFT_
 * name with the same value. Codes are negative; 0 is success.
 */
#define LP2P_ERRNO_MAP(X)                                                     \
    X(NOMEM, -1, "out of memory")                                             \
    X(INVAL, -2, "invalid argument")                                          \
    X(AGAIN, -3, "more input is needed")                                      \
    X(TRUNCATED, -4, "input is truncated")                                    \
    X(MALFORMED, -5, "malformed input")                                       \
    X(NONMINIMAL, -6, "non-minimal varint encoding")                          \
    X(OVERFLOW, -7, "value does not fit")                                     \
    X(TOOBIG, -8, "message exceeds the size limit")                           \
    X(TRAILING, -9, "trailing bytes after the value")                         \
    X(UNSUPPORTED, -10, "unsupported type or protocol")                       \
    X(PROTO, -11, "protocol violation by the peer")                           \
    X(NOPROTO, -12, "no protocol in common with the peer")                    \
    X(CRYPTO, -13, "cryptographic operation failed")                          \
    X(BADSIG, -14, "signature verification failed")                           \
    X(BADKEY, -15, "invalid or unsupported key")                              \
    X(PEERID, -16, "remote peer ID does not match the expected one")          \
    X(BADADDR, -17, "invalid multiaddr")                                      \
    X(NOTFOUND, -18, "not found")                                             \
    X(EXIST, -19, "already exists")                                           \
    X(LIMIT, -20, "resource limit reached")                                   \
    X(WINDOW, -21, "peer exceeded the flow-control window")                   \
    X(CLOSED, -22, "closed")                                                  \
    X(RESET, -23, "stream reset")                                             \
    X(CANCELED, -24, "operation canceled")                                    \
    X(TIMEDOUT, -25, "operation timed out")                                   \
    X(IO, -26, "I/O error")                                                   \
    X(CONNREFUSED, -27, "connection refused")                                 \
    X(UNREACHABLE, -28, "peer unreachable")                                   \
    X(STATE, -29, "operation not allowed in the current state")               \
    X(NOSTATE, -40, "no state has been agreed upon yet")                      \
    X(INCONSISTENT, -41, "the state on this node is not consistent")          \
    X(APPLY, -42, "the operation was committed but could not be applied")     \
    X(NOTLEADER, -43, "this node is not the leader")                          \
    X(NOACTOR, -44, "no actor set to commit the new state")                   \
    X(NORAFT, -45, "this actor does not have a raft instance")                \
    X(NOLEADER, -46, "leader unknown or not existing yet")                    \
    X(UNKNOWNFIELD, -47, "unknown field in encoded value")                    \
    X(TYPE, -48, "encoded value has the wrong type")                          \
    X(SHUTDOWN, -49, "shutting down")                                         \
    X(RAFT, -50, "raft engine error")                                         \
    X(DENIED, -51, "peer not admitted")

enum lp2p_errno {
#define LP2P__ERR_ENUM(name, code, msg) LP2P_E##name = code,
    LP2P_ERRNO_MAP(LP2P__ERR_ENUM)
#undef LP2P__ERR_ENUM
};

/* A static string describing `rv`; never NULL, also for unknown codes. */
LP2P_API const char *lp2p_strerror(int rv);

/* The symbolic name of `rv` ("LP2P_ENOMEM"), or "UNKNOWN". */
LP2P_API const char *lp2p_errname(int rv);

/*
 * Logging. Off by default. Levels ascend in severity. When no callback is
 * set, messages at or above the level are written to stderr. The level can
 * also be set with the environment variable P2PRAFT_LOG (trace, debug, info,
 * warn, error, off), read on the first log call; lp2p_log_set() overrides it.
 */
enum lp2p_log_level {
    LP2P_LOG_TRACE = 0,
    LP2P_LOG_DEBUG = 1,
    LP2P_LOG_INFO = 2,
    LP2P_LOG_WARN = 3,
    LP2P_LOG_ERROR = 4,
    LP2P_LOG_OFF = 5
};

/* `module` and `msg` are borrowed for the duration of the call only. */
typedef void (*lp2p_log_cb)(void *ctx, enum lp2p_log_level level,
                            const char *module, const char *msg);

/*
 * Set the minimum level and the sink. `cb` may be NULL (stderr). `ctx` is
 * passed to `cb` unchanged. Not thread-safe with respect to concurrent
 * logging: call it before starting loops.
 */
LP2P_API void lp2p_log_set(enum lp2p_log_level level, lp2p_log_cb cb,
                           void *ctx);

/* The current minimum level (after reading P2PRAFT_LOG if not set yet). */
LP2P_API enum lp2p_log_level lp2p_log_level(void);

/* Parse "trace".."error"/"off"; returns 0 or LP2P_EINVAL. */
LP2P_API int lp2p_log_level_parse(const char *s, enum lp2p_log_level *out);

/*
 * Allocation hook. Every allocation made by lp2p and p2praft goes through
 * it (OpenSSL, libuv, msgpack-c and libraft keep their own allocators).
 * `realloc` must accept NULL like realloc(3). Pass NULL to restore the
 * default (malloc/realloc/free).
 */
struct lp2p_heap {
    void *data;
    void *(*malloc)(void *data, size_t size);
    void *(*realloc)(void *data, void *ptr, size_t size);
    void (*free)(void *data, void *ptr);
};

LP2P_API void lp2p_heap_set(const struct lp2p_heap *heap);

/*
 * Ed25519 identity keys and peer IDs.
 *
 * A peer ID is the multihash of the peer's PublicKey protobuf: identity
 * (code 0x00) when that encoding is 42 bytes or less, sha2-256 (0x12)
 * otherwise. Peer IDs of key types we cannot use (RSA, secp256k1, ...)
 * are kept as opaque multihash bytes. Text forms: base58btc of the
 * multihash ("12D3KooW...", "Qm...", what we print), or a CIDv1 with the
 * libp2p-key codec 0x72 in multibase base32 ("bafz..."); both parse.
 *
 * All functions return 0 or a negative LP2P_E* code unless stated. None
 * keeps a pointer to its arguments.
 */
#define LP2P_ED25519_PUBLEN 32
#define LP2P_ED25519_SIGLEN 64
#define LP2P_PEER_ID_MAX 64    /* multihash bytes of a peer ID */
#define LP2P_PEER_ID_STRMAX 128 /* room for base58 or CID text + NUL */
#define LP2P_KEY_MARSHALLED_LEN 68 /* PrivateKey protobuf of a key */

/* An Ed25519 identity key pair (the only kind we create or sign with).
 * `seed` is secret: wipe it with lp2p_key_wipe(). */
struct lp2p_key {
    uint8_t seed[32];
    uint8_t pub[32];
};

/* A peer ID: `len` multihash bytes (identity or sha2-256), any key type. */
struct lp2p_peer_id {
    size_t len;
    uint8_t bytes[LP2P_PEER_ID_MAX];
};

/* Generate a key pair from OpenSSL's RNG. LP2P_ECRYPTO on RNG failure. */
LP2P_API int lp2p_key_generate(struct lp2p_key *key);

/* Derive the key pair of a 32-byte seed (the RFC 8032 private key). */
LP2P_API int lp2p_key_from_seed(struct lp2p_key *key, const uint8_t seed[32]);

/* Sign `len` bytes of `msg` (pure Ed25519). Writes 64 bytes to `sig`.
 * LP2P_ECRYPTO if OpenSSL fails. */
LP2P_API int lp2p_key_sign(const struct lp2p_key *key, const uint8_t *msg,
                           size_t len, uint8_t sig[LP2P_ED25519_SIGLEN]);

/* Verify an Ed25519 signature: 0 if valid, LP2P_EBADSIG if not (also for
 * a public key that is not a curve point), LP2P_ECRYPTO only if OpenSSL
 * cannot allocate. */
LP2P_API int lp2p_ed25519_verify(const uint8_t pub[32], const uint8_t *msg,
                                 size_t len, const uint8_t sig[64]);

/* Wipe the key (OPENSSL_cleanse). */
LP2P_API void lp2p_key_wipe(struct lp2p_key *key);

/* The PrivateKey protobuf, as go-libp2p's MarshalPrivateKey writes it:
 * 08 01 12 40 || seed || pub. Writes LP2P_KEY_MARSHALLED_LEN (68) bytes.
 * The output holds the secret seed: wipe it after use. */
LP2P_API int lp2p_key_marshal(const struct lp2p_key *key, uint8_t out[68]);

/*
 * Decode a PrivateKey protobuf. The Ed25519 data may be 64 bytes (seed ||
 * pub) or the legacy 96 (seed || pub || pub). Unknown fields are skipped.
 * Errors: LP2P_ETRUNCATED (input ends inside a field, or is empty),
 * LP2P_EUNSUPPORTED (key type is not Ed25519), LP2P_EBADKEY (malformed
 * protobuf, missing field, wrong data length, or a public key that does not
 * match the seed). `key` is wiped on failure.
 */
LP2P_API int lp2p_key_unmarshal(struct lp2p_key *key, const uint8_t *p,
                                size_t len);

/* Write the PrivateKey protobuf to `path` with mode 0600, through a
 * temporary file in the same directory and an atomic rename. LP2P_EIO
 * (errno is logged at warn level), LP2P_ENOMEM. */
LP2P_API int lp2p_key_save(const char *path, const struct lp2p_key *key);

/*
 * Read a key file written by lp2p_key_save() or go-libp2p. Errors:
 * LP2P_ENOTFOUND (no such file), LP2P_EIO (cannot read it),
 * LP2P_ETOOBIG (over 4 KiB: not a key file), and those of
 * lp2p_key_unmarshal(): LP2P_ETRUNCATED, LP2P_EUNSUPPORTED, LP2P_EBADKEY.
 */
LP2P_API int lp2p_key_load(const char *path, struct lp2p_key *key);

/* The peer ID of `key` (identity multihash of its PublicKey protobuf). */
LP2P_API int lp2p_peer_id_from_key(const struct lp2p_key *key,
                                   struct lp2p_peer_id *id);

/* The peer ID of the `len` bytes of a PublicKey protobuf (any key type,
 * not parsed): identity multihash if len <= 42, else sha2-256.
 * LP2P_EINVAL if len is 0. */
LP2P_API int lp2p_peer_id_from_pubkey_pb(const uint8_t *pb, size_t len,
                                         struct lp2p_peer_id *id);

/* Copy and validate multihash bytes: identity (digest 1..62 bytes) or
 * sha2-256 (32 bytes), nothing after the digest. LP2P_EMALFORMED,
 * LP2P_ETRUNCATED, LP2P_ETRAILING, LP2P_EUNSUPPORTED (other hash). */
LP2P_API int lp2p_peer_id_from_bytes(struct lp2p_peer_id *id,
                                     const uint8_t *mh, size_t len);

/*
 * Parse a peer ID string (NUL-terminated): base58btc when it starts with
 * "1" or "Qm" (as go-libp2p decides), otherwise a CID in multibase 'b'
 * (base32) or 'z' (base58btc). Errors: LP2P_EMALFORMED (bad encoding or
 * multihash), LP2P_EUNSUPPORTED (CID version other than 1, codec other
 * than libp2p-key 0x72, other multibase, other hash function),
 * LP2P_ETRAILING, LP2P_ETRUNCATED.
 */
LP2P_API int lp2p_peer_id_parse(struct lp2p_peer_id *id, const char *s);

/* base58btc text of `id` into `out` (NUL-terminated). LP2P_EOVERFLOW if
 * `cap` is too small (LP2P_PEER_ID_STRMAX always suffices). */
LP2P_API int lp2p_peer_id_to_string(const struct lp2p_peer_id *id, char *out,
                                    size_t cap);

/* CIDv1 text of `id`: "b" + base32(0x01 0x72 || multihash). LP2P_EOVERFLOW
 * if `cap` is too small (LP2P_PEER_ID_STRMAX always suffices). */
LP2P_API int lp2p_peer_id_to_cid(const struct lp2p_peer_id *id, char *out,
                                 size_t cap);

/* 1 if both hold the same multihash, else 0. */
LP2P_API int lp2p_peer_id_equal(const struct lp2p_peer_id *a,
                                const struct lp2p_peer_id *b);

#endif /* LP2P_H */
