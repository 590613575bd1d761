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
 * (base32), 'z' (base58btc) or 'k'/'K' (base36). Errors: LP2P_EMALFORMED (bad encoding or
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

/*
 * Multiaddr: self-describing network addresses ("/ip4/127.0.0.1/tcp/4001/
 * p2p/12D3KooW..."). A multiaddr is held in its binary form (repeated
 * uvarint protocol code || value). Known protocols:
 *   ip4, ip6, tcp, udp (fixed-size values), dns, dns4, dns6, dnsaddr, sni,
 *   ip6zone (length-prefixed text without '/' or NUL; dns* and sni at most
 *   255 bytes), p2p (alias ipfs; a peer ID, in text base58btc or CID, in
 *   binary uvarint length || multihash), and the value-less p2p-circuit,
 *   quic, quic-v1, tls, noise, ws, wss, webtransport.
 * Anything else is rejected with LP2P_EBADADDR and a message naming the
 * component ("unknown protocol 'foo'").
 *
 * Text rules (as go-multiaddr, a little stricter): it starts with '/';
 * trailing slashes are ignored; an empty component ("//") is an error; ip4
 * is dotted decimal without leading zeros; ip6 any RFC 4291 text form
 * (printed in RFC 5952 form, IPv4-mapped as "::ffff:a.b.c.d" like go);
 * ports are decimal 0..65535 without sign or leading zeros.
 *
 * Functions taking `err`/`errcap` write a NUL-terminated sentence there on
 * failure (`err` may be NULL; LP2P_ERRMSG_MAX bytes are plenty).
 */
#define LP2P_ERRMSG_MAX 128

enum lp2p_multiaddr_proto {
    LP2P_MA_IP4 = 4,
    LP2P_MA_TCP = 6,
    LP2P_MA_IP6 = 41,
    LP2P_MA_IP6ZONE = 42,
    LP2P_MA_DNS = 53,
    LP2P_MA_DNS4 = 54,
    LP2P_MA_DNS6 = 55,
    LP2P_MA_DNSADDR = 56,
    LP2P_MA_UDP = 273,
    LP2P_MA_P2P_CIRCUIT = 290,
    LP2P_MA_P2P = 421,
    LP2P_MA_TLS = 448,
    LP2P_MA_SNI = 449,
    LP2P_MA_NOISE = 454,
    LP2P_MA_QUIC = 460,
    LP2P_MA_QUIC_V1 = 461,
    LP2P_MA_WEBTRANSPORT = 465,
    LP2P_MA_WS = 477,
    LP2P_MA_WSS = 478
};

/* A multiaddr in binary form. `bytes` (len bytes) belongs to the struct
 * and comes from the lp2p heap; bytes == NULL iff len == 0 (empty). */
struct lp2p_multiaddr {
    uint8_t *bytes;
    size_t len;
};

/* One component, as lp2p_multiaddr_next() returns it. */
struct lp2p_multiaddr_component {
    uint32_t code;        /* enum lp2p_multiaddr_proto */
    const char *name;     /* static, e.g. "tcp" */
    const uint8_t *value; /* borrowed from the multiaddr; NULL if none */
    size_t value_len;     /* without the length prefix, for p2p too */
    size_t offset;        /* where the component starts in the bytes */
    size_t size;          /* its bytes: code, length prefix and value */
};

/* Initialise `ma` as the empty multiaddr. */
LP2P_API void lp2p_multiaddr_init(struct lp2p_multiaddr *ma);

/* Free the bytes of `ma` and make it empty. Safe on an empty one. */
LP2P_API void lp2p_multiaddr_free(struct lp2p_multiaddr *ma);

/*
 * Parse the text form `s` (NUL-terminated, borrowed) into `ma`, which must
 * not hold bytes (they would leak). On failure `ma` is left empty.
 * Errors: LP2P_EBADADDR (see `err`), LP2P_ENOMEM.
 */
LP2P_API int lp2p_multiaddr_parse(struct lp2p_multiaddr *ma, const char *s,
                                  char *err, size_t errcap);

/*
 * Validate `len` bytes of binary multiaddr at `p` (borrowed) and copy them
 * into `ma` (which must not hold bytes). Zero bytes are refused ("empty
 * multiaddr"), as go-multiaddr does. Errors: LP2P_EBADADDR (see `err`),
 * LP2P_ENOMEM.
 */
LP2P_API int lp2p_multiaddr_from_bytes(struct lp2p_multiaddr *ma,
                                       const uint8_t *p, size_t len, char *err,
                                       size_t errcap);

/* Check that `len` bytes at `p` are a valid binary multiaddr (at least
 * one component, every one known, complete, with a valid value). 0 or
 * LP2P_EBADADDR. */
LP2P_API int lp2p_multiaddr_validate(const uint8_t *p, size_t len, char *err,
                                     size_t errcap);

/*
 * Write the canonical text form of `ma` to `out` (capacity `cap`, may be 0)
 * the way snprintf does: returns the length of the whole text (without the
 * NUL); the text is complete only if that is less than `cap`, else `out`
 * holds a NUL-terminated prefix. LP2P_EBADADDR if `ma` holds invalid bytes.
 * Allocates nothing. The empty multiaddr prints as "".
 */
LP2P_API int lp2p_multiaddr_to_string(const struct lp2p_multiaddr *ma,
                                      char *out, size_t cap);

/*
 * Iterate over the components: start with *offset = 0; each call fills `c`
 * and advances *offset. Returns 1 for a component, 0 at the end, or
 * LP2P_EBADADDR (bytes not valid). `c` borrows from `ma` until it changes.
 */
LP2P_API int lp2p_multiaddr_next(const struct lp2p_multiaddr *ma,
                                 size_t *offset,
                                 struct lp2p_multiaddr_component *c);

/* Deep copy `src` into `dst` (which must not hold bytes). LP2P_ENOMEM. */
LP2P_API int lp2p_multiaddr_copy(struct lp2p_multiaddr *dst,
                                 const struct lp2p_multiaddr *src);

/* 1 if both hold the same bytes, else 0. */
LP2P_API int lp2p_multiaddr_equal(const struct lp2p_multiaddr *a,
                                  const struct lp2p_multiaddr *b);

/* Append `tail` (borrowed) to `ma`. On LP2P_ENOMEM `ma` is unchanged. */
LP2P_API int lp2p_multiaddr_encapsulate(struct lp2p_multiaddr *ma,
                                        const struct lp2p_multiaddr *tail);

/*
 * Remove the last occurrence of `tail`'s components in `ma`, and
 * everything after it, as go-multiaddr's Decapsulate does (component-wise,
 * so "/tcp/1" does not match inside "/tcp/10"). Returns 1 if something was
 * removed, 0 if `tail` does not occur or is empty (`ma` unchanged),
 * LP2P_EBADADDR if `ma` holds invalid bytes. Never allocates.
 */
LP2P_API int lp2p_multiaddr_decapsulate(struct lp2p_multiaddr *ma,
                                        const struct lp2p_multiaddr *tail);

/*
 * Remove the last component of protocol `name` ("p2p", "ipfs", "tcp"...)
 * and everything after it (js-multiaddr's decapsulateCode). Returns 1 if
 * removed, 0 if absent, LP2P_EBADADDR for an unknown protocol name or
 * invalid bytes. Never allocates.
 */
LP2P_API int lp2p_multiaddr_decapsulate_proto(struct lp2p_multiaddr *ma,
                                              const char *name);

/* The peer ID of a multiaddr whose last component is /p2p. LP2P_ENOTFOUND
 * if the last component is something else (or `ma` is empty),
 * LP2P_EBADADDR for invalid bytes. */
LP2P_API int lp2p_multiaddr_peer_id(const struct lp2p_multiaddr *ma,
                                    struct lp2p_peer_id *id);

/* Build /ip4/A/tcp/P or /ip6/A/tcp/P from an AF_INET or AF_INET6
 * `struct sockaddr` (borrowed); an IPv4-mapped IPv6 address gives /ip4,
 * as go's manet does. `ma` must not hold bytes. LP2P_EINVAL for another
 * family, LP2P_ENOMEM. */
struct sockaddr;
LP2P_API int lp2p_multiaddr_from_sockaddr(struct lp2p_multiaddr *ma,
                                          const struct sockaddr *sa);

/* The TCP endpoint of /ip4/A/tcp/P or /ip6/A/tcp/P, optionally followed
 * by /p2p/ID and nothing else, as a struct sockaddr_in or sockaddr_in6 in
 * `ss` (a struct sockaddr_storage), its size in *sslen. LP2P_EUNSUPPORTED
 * for any other shape, LP2P_EBADADDR for invalid bytes. */
struct sockaddr_storage;
LP2P_API int lp2p_multiaddr_to_sockaddr(const struct lp2p_multiaddr *ma,
                                        struct sockaddr_storage *ss,
                                        size_t *sslen);

/*
 * Host and TCP port of /ip4|ip6|dns|dns4|dns6/HOST/tcp/PORT, optionally
 * followed by /p2p/ID: `host` gets the address text or the DNS name
 * (NUL-terminated; LP2P_EOVERFLOW if `hostcap` is too small; 256 always
 * suffices), *family AF_INET (ip4, dns4), AF_INET6 (ip6, dns6) or
 * AF_UNSPEC (dns), a getaddrinfo hint. LP2P_EUNSUPPORTED for another shape.
 */
LP2P_API int lp2p_multiaddr_host_port(const struct lp2p_multiaddr *ma,
                                      char *host, size_t hostcap,
                                      uint16_t *port, int *family);

#endif /* LP2P_H */
