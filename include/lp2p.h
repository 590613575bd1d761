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

#include <stdbool.h>
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
    X(EOF, -30, "end of stream")                                              \
    X(ADDRINUSE, -31, "address already in use")                               \
    X(ADDRNOTAVAIL, -32, "address not available on this host")                \
    X(ACCESS, -33, "permission denied")                                       \
    X(ISDIR, -34, "is a directory")                                           \
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
    X(DENIED, -51, "peer not admitted")                                       \
    X(UNKNOWN, -52, "outcome unknown: it may or may not have been applied")   \
    X(NOTCAUGHTUP, -53, "this node has not caught up with a leader yet")      \
    X(REMOVED, -54, "this node was removed from the cluster")                 \
    X(BUSY, -60, "in use by another process")                                 \
    X(CORRUPT, -61, "stored data is damaged")                                 \
    X(NOSPACE, -62, "not enough free space")                                  \
    X(MISMATCH, -90, "compare-and-set: the value differs")

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
 * temporary file in the same directory and an atomic rename. Errors
 * (errno is logged at warn level): LP2P_EISDIR (`path` is a directory),
 * LP2P_ENOTFOUND (its directory does not exist), LP2P_EACCESS (not
 * writable), LP2P_EIO (any other failure), LP2P_ENOMEM. */
LP2P_API int lp2p_key_save(const char *path, const struct lp2p_key *key);

/*
 * Read a key file written by lp2p_key_save() or go-libp2p. Errors:
 * LP2P_ENOTFOUND (no such file), LP2P_EISDIR (`path` is a directory),
 * LP2P_EACCESS (not readable), LP2P_EIO (cannot read it otherwise),
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

/* ======================================================================
 * Host: a libp2p node on a libuv loop.
 *
 * A host owns a key, listens on TCP multiaddrs, dials peers and upgrades
 * every TCP connection to multistream-select -> /noise -> Yamux (inlined in
 * the Noise handshake, or negotiated as /yamux/1.0.0). Each Yamux stream
 * then runs multistream-select to pick an application protocol. The
 * identity of a peer always comes from the Noise handshake; a dial to an
 * address ending in /p2p/<id> fails with LP2P_EPEERID if the handshake
 * shows another key. There is at most one connection per peer, reused by
 * every stream; simultaneous dials are resolved the same way on both ends
 * (the connection dialed by the smaller peer ID survives, the other one
 * drains: no new streams, then closes).
 *
 * Model (libuv): everything runs on the loop thread; functions that take a
 * callback either return an error and never call it, or return 0 and call
 * it exactly once, never before they return. Closing is asynchronous:
 * pending requests complete with LP2P_ECANCELED, then the close callback
 * runs; memory is released after it.
 *
 * Multiaddrs cross this API as text ("/ip4/127.0.0.1/tcp/4001/p2p/12D3..").
 * Peer IDs and keys use struct lp2p_peer_id and struct lp2p_key (above).
 *
 * A client in outline (error handling left out):
 *
 *   lp2p_host_new(&host, loop, NULL);                  fresh identity
 *   lp2p_host_connect(host, "/ip4/127.0.0.1/tcp/4001/p2p/12D3...",
 *                     on_connected, ctx);
 *   on_connected(host, 0, peer, ctx):
 *       const char *protos[] = {"/my/proto/1.0.0"};
 *       lp2p_stream_open(host, peer, protos, 1, on_open, ctx);
 *   on_open(s, 0, ctx):
 *       lp2p_stream_read_start(s, on_read);
 *       lp2p_stream_write(s, req, len, on_written, ctx);  req kept until
 *       lp2p_stream_close_write(s);                       on_written
 *   on_read(s, 0, buf, n) ... on_read(s, LP2P_EEOF, NULL, 0):
 *       lp2p_stream_close(s, NULL, NULL);
 *   ...
 *   lp2p_host_close(host, on_closed, ctx);             then uv_run() ends
 *
 * A server calls lp2p_host_listen() and lp2p_host_set_handler(); its
 * handler receives each negotiated inbound stream and owns it.
 * ====================================================================== */

struct uv_loop_s;
struct lp2p_host;
struct lp2p_stream;
struct lp2p_key;
struct lp2p_peer_id;

/* Room for any multiaddr text this API produces, NUL included. */
#define LP2P_MULTIADDR_STRMAX 256

/* Built-in protocol IDs. */
#define LP2P_PING_PROTOCOL "/ipfs/ping/1.0.0"
#define LP2P_IDENTIFY_PROTOCOL "/ipfs/id/1.0.0"
#define LP2P_PROTOCOL_MAX 512 /* longest protocol ID accepted, bytes */

/*
 * Host configuration. Initialise with lp2p_host_config_init(), which sets
 * every field to its default (shown), then change what you need. A value of
 * 0 in a limit means "the default", not "unlimited".
 */
struct lp2p_host_config {
    /* Identity. Borrowed: copied by lp2p_host_new(). NULL: a fresh
     * Ed25519 key is generated. */
    const struct lp2p_key *key;
    /* TCP connect + security + muxer negotiation must finish within this
     * time, or the connection is closed with LP2P_ETIMEDOUT. 10000 ms. */
    uint64_t handshake_timeout_ms;
    /* A connection with no open stream for this long is closed. 120000
     * ms. UINT64_MAX disables it. */
    uint64_t idle_timeout_ms;
    /* Connections that are ready or being dialed: slots. 256. A dial
     * beyond it fails with LP2P_ELIMIT, unless it goes to a protected
     * peer, which evicts an unprotected inbound connection instead. An
     * inbound connection that finishes its handshake beyond it is closed,
     * unless its peer is protected (then the idlest unprotected inbound
     * connection is evicted). Pending inbound handshakes are bounded
     * apart (max_pending_handshakes), so at most max_conns +
     * max_pending_handshakes sockets are open. */
    uint32_t max_conns;
    /* Inbound connections whose Noise handshake has not finished (the
     * peer's identity is not known yet). 64. A new connection beyond it
     * evicts the oldest pending handshake of the remote IP address that
     * has the most of them, so a flood from some addresses cannot keep
     * others out. */
    uint32_t max_pending_handshakes;
    /* Streams the peer may have open on one connection at a time; further
     * SYNs are refused with a Yamux RST. 256. */
    uint32_t max_inbound_streams;
    /* Streams we may have open on one connection; lp2p_stream_open()
     * fails with LP2P_ELIMIT beyond it. 1024. */
    uint32_t max_outbound_streams;
    /* Largest receive window of one stream: the most a stream buffers for
     * a reader that stopped reading (the peer cannot send more). Windows
     * start at 256 KiB (Yamux) and grow toward this while the reader
     * keeps up. 16 MiB (as go-libp2p); at least 256 KiB. */
    uint32_t stream_window;
    /* Bytes one connection may have queued in the kernel-bound write
     * queue before streams stop being drained into it. 4 MiB. */
    uint32_t conn_write_buffer;
    /* Sent in identify. NULL: "p2praft/<LP2P_VERSION>". Borrowed: copied. */
    const char *agent_version;
    /* Multistream negotiation of one stream must finish within this time
     * or the stream is reset (LP2P_ETIMEDOUT). 10000 ms. */
    uint64_t negotiate_timeout_ms;
    /* Every this long a ready connection sends a Yamux PING; if the
     * previous one is still unanswered, the peer is gone and the
     * connection closes (streams get LP2P_ECLOSED). 30000 ms (as go's
     * yamux); UINT64_MAX disables. */
    uint64_t keepalive_ms;
    /* Non-zero: offer no muxer inside the Noise handshake, so Yamux is
     * always negotiated with multistream afterwards (one round trip more;
     * for peers that mishandle the extension, and for tests). 0. */
    int no_inline_muxer;
    /*
     * Limits for strangers. A peer is "protected" once the application
     * called lp2p_host_protect() for it (p2praft protects the members of
     * its raft group). The three limits below apply to inbound
     * connections of unprotected peers only; connections we dial, and
     * those of protected peers, follow the limits above.
     */
    /* Ready inbound connections of unprotected peers. Beyond it, an
     * unprotected peer is disconnected right after its handshake. 32. */
    uint32_t max_unprotected_conns;
    /* Closed after this long without an open stream (or idle_timeout_ms
     * if shorter). 10000 ms. UINT64_MAX: only idle_timeout_ms applies. */
    uint64_t unprotected_idle_ms;
    /* Closed with LP2P_ETIMEDOUT if, this long after its handshake, no
     * stream on it has negotiated a protocol (one served by a handler
     * here, or one we opened). 5000 ms. UINT64_MAX disables. */
    uint64_t protocol_timeout_ms;
    /*
     * Busy polling: after a connection read or wrote bytes, the loop keeps
     * polling its sockets without sleeping (epoll_wait with timeout 0)
     * until this many microseconds pass with no further socket activity
     * (or lp2p_host_kick()), so a reply that comes back within that time
     * is taken without the sleep and wakeup of the loop's thread. It
     * trades CPU for latency: at most busy_poll_us of spinning after each
     * burst of activity, one core's worth while traffic keeps coming. It
     * pays on VMs whose idle vCPUs halt at once (a cross-CPU wakeup costs
     * tens of microseconds there) and when the process has a core of its
     * own. It hurts on a machine whose CPUs are all busy: the spinning
     * takes CPU time from the threads and peers it waits for. A few tens
     * of microseconds cover a round trip on one machine.
     * 0 (the default): off, the loop sleeps as soon as it is idle and no
     * handle is added. At most 1000000 (1 s); more is refused with
     * LP2P_EINVAL. The spinning never keeps the loop alive by itself.
     */
    uint32_t busy_poll_us;
};

/* The largest busy_poll_us accepted. */
#define LP2P_BUSY_POLL_US_MAX 1000000u

/* Fill `cfg` with the defaults above. */
LP2P_API void lp2p_host_config_init(struct lp2p_host_config *cfg);

/*
 * Create a host on `loop` (borrowed; must outlive the host). `cfg` may be
 * NULL for the defaults; it is copied. Signal handling is left alone: the
 * host writes to its sockets with MSG_NOSIGNAL, so a peer that went away
 * is an error (LP2P_ECLOSED), never a SIGPIPE. On success *out holds the host,
 * which the caller frees with lp2p_host_close(). Errors: LP2P_ENOMEM,
 * LP2P_EINVAL (bad config), LP2P_EBADKEY, LP2P_ECRYPTO.
 */
LP2P_API int lp2p_host_new(struct lp2p_host **out, struct uv_loop_s *loop,
                           const struct lp2p_host_config *cfg);

typedef void (*lp2p_host_close_cb)(struct lp2p_host *host, void *data);

/*
 * Close the host: stop listening, cancel dials (their callbacks get
 * LP2P_ECANCELED), close every connection (DISCONNECTED events fire) and
 * with it every stream: pending opens fail, pending writes complete and
 * reading streams get their read callback, all with LP2P_ECANCELED, on
 * later loop iterations. `cb` (may be NULL) runs once, after every stream
 * the application was handed has been closed with lp2p_stream_close()
 * (as with uv_loop_close(), the host cannot free what the application
 * still holds), and after all its libuv handles have closed. The host is
 * freed when `cb` returns; call no other function on it after
 * lp2p_host_close() except lp2p_stream_close() on its streams.
 */
LP2P_API void lp2p_host_close(struct lp2p_host *host, lp2p_host_close_cb cb,
                              void *data);

/* The host's peer ID. Borrowed; valid until the host is freed. */
LP2P_API const struct lp2p_peer_id *lp2p_host_id(const struct lp2p_host *host);

/* The host's key (copied into *key). Treat it as a secret. */
LP2P_API void lp2p_host_key(const struct lp2p_host *host, struct lp2p_key *key);

/* The loop the host runs on. */
LP2P_API struct uv_loop_s *lp2p_host_loop(const struct lp2p_host *host);

/*
 * Busy polling (busy_poll_us): note activity now, so the loop keeps
 * polling without sleeping for busy_poll_us from here. The host does this
 * itself whenever a connection reads or writes; an application calls it
 * when it hands work to another thread whose completion should be picked
 * up without a wakeup (p2praft does, when a raft log write goes to the
 * disk thread). Costs one clock read. No-op when busy_poll_us is 0 or
 * the host is closing. Loop thread only.
 */
LP2P_API void lp2p_host_kick(struct lp2p_host *host);

/*
 * Listen on `maddr`: /ip4/<a>/tcp/<port> or /ip6/<a>/tcp/<port>; port 0
 * picks a free port. May be called several times. Errors: LP2P_EBADADDR
 * (not a TCP listen address), LP2P_EADDRINUSE (the port is taken),
 * LP2P_EADDRNOTAVAIL (no interface has that address), LP2P_EACCESS (a
 * privileged port), LP2P_ELIMIT (out of descriptors), LP2P_EIO (any other
 * socket error, logged at warn level), LP2P_ENOMEM, LP2P_ESHUTDOWN (host
 * closing).
 */
LP2P_API int lp2p_host_listen(struct lp2p_host *host, const char *maddr);

/*
 * The i-th address the host actually listens on (port 0 resolved), as
 * text without /p2p/. A listener on 0.0.0.0 or :: yields one address per
 * interface of its family (IPv6 link-local ones left out). Identify
 * advertises the same list. Returns 0, LP2P_ENOTFOUND when i is past the end, or
 * LP2P_EOVERFLOW when `cap` is too small (use LP2P_MULTIADDR_STRMAX).
 */
LP2P_API int lp2p_host_listen_addr(const struct lp2p_host *host, size_t i,
                                   char *out, size_t cap);

/* The number of listen addresses. */
LP2P_API size_t lp2p_host_listen_count(const struct lp2p_host *host);

/*
 * Connections.
 */

/* Information about one connection, valid for the duration of a callback. */
struct lp2p_conn_info {
    const struct lp2p_peer_id *peer; /* remote identity (from Noise) */
    const char *local_addr;          /* multiaddr text */
    const char *remote_addr;         /* multiaddr text */
    int inbound;                     /* 1 if the peer dialed us */
    const char *muxer;               /* "/yamux/1.0.0" */
    int inlined_muxer; /* 1 if negotiated inside the Noise handshake */
};

/* `peer` is the connected peer on success, NULL on error; borrowed for
 * the duration of the call. */
typedef void (*lp2p_connect_cb)(struct lp2p_host *host, int status,
                                const struct lp2p_peer_id *peer, void *data);

/*
 * Connect to the peer at `maddr`, text, one of
 *   /ip4/<a>/tcp/<p>[/p2p/<id>]   /ip6/<a>/tcp/<p>[/p2p/<id>]
 *   /dns/<name>/tcp/<p>[/p2p/<id>]  /dns4/..  /dns6/..   (uv_getaddrinfo)
 * and upgrade the connection. If the address names a peer we are already
 * connected to, the existing connection is reused and `cb` runs on the
 * next loop iteration. If a dial to that peer is in flight, `cb` joins it.
 * `cb` then runs once with 0 and the peer ID, or with an error:
 * LP2P_EBADADDR, LP2P_EUNREACHABLE (DNS failure, no route),
 * LP2P_ECONNREFUSED, LP2P_ETIMEDOUT (handshake_timeout_ms), LP2P_EPEERID
 * (the Noise identity is not the /p2p/ one), LP2P_ENOPROTO (the peer
 * speaks neither /noise nor yamux), LP2P_EPROTO, LP2P_ELIMIT,
 * LP2P_ECANCELED (host closed), LP2P_EINVAL (dialing ourselves). A
 * successful dial adds the address to the peerstore. `maddr` is copied.
 */
LP2P_API int lp2p_host_connect(struct lp2p_host *host, const char *maddr,
                               lp2p_connect_cb cb, void *data);

/*
 * Connect to `peer` (copied) using its peerstore addresses, tried in turn
 * until one works; reuses an existing connection. Errors as
 * lp2p_host_connect(), plus LP2P_ENOTFOUND (no known address), either
 * returned at once or given to `cb`.
 */
LP2P_API int lp2p_host_connect_peer(struct lp2p_host *host,
                                    const struct lp2p_peer_id *peer,
                                    lp2p_connect_cb cb, void *data);

/* 1 if a ready connection to `peer` exists, else 0. */
LP2P_API int lp2p_host_is_connected(const struct lp2p_host *host,
                                    const struct lp2p_peer_id *peer);

/* Close every connection to `peer` (streams are reset). 0 or
 * LP2P_ENOTFOUND. */
LP2P_API int lp2p_host_disconnect(struct lp2p_host *host,
                                  const struct lp2p_peer_id *peer);

/* The number of connections, in all states. */
LP2P_API size_t lp2p_host_conn_count(const struct lp2p_host *host);

/* Traffic so far: bytes read from and written to the host's sockets (any
 * NULL pointer is skipped), and the streams open now. */
LP2P_API void lp2p_host_traffic(const struct lp2p_host *host,
                                uint64_t *bytes_in, uint64_t *bytes_out,
                                size_t *streams);

/*
 * Protect `peer` (copied) when `on`, or stop protecting it. Protected
 * peers always get a connection slot: they are exempt from the limits for
 * strangers (max_unprotected_conns, unprotected_idle_ms,
 * protocol_timeout_ms), and when the slots are full, one of theirs evicts
 * the idlest unprotected inbound connection instead of being refused.
 * Call it for every member as a configuration changes. Takes effect on
 * existing connections at once. Idempotent. 0, LP2P_ENOMEM (nothing
 * changed), LP2P_EINVAL (NULL argument).
 */
LP2P_API int lp2p_host_protect(struct lp2p_host *h,
                               const struct lp2p_peer_id *peer, bool on);

enum lp2p_conn_event {
    LP2P_CONN_CONNECTED = 1,   /* a connection became ready (upgraded) */
    LP2P_CONN_DISCONNECTED = 2 /* a ready connection closed */
};

/* `info` is borrowed for the duration of the call. For DISCONNECTED,
 * `status` says why (0: closed by us or a normal GO_AWAY/EOF). */
typedef void (*lp2p_conn_event_cb)(struct lp2p_host *host,
                                   enum lp2p_conn_event event,
                                   const struct lp2p_conn_info *info,
                                   int status, void *data);

/*
 * Observe connection events. Any number of observers; each (cb, data)
 * pair at most once (LP2P_EEXIST). The callbacks may call any host
 * function. Errors: LP2P_ENOMEM, LP2P_EEXIST.
 */
LP2P_API int lp2p_host_observe(struct lp2p_host *host, lp2p_conn_event_cb cb,
                               void *data);

/* Stop observing; 0 or LP2P_ENOTFOUND. Safe inside a callback. */
LP2P_API int lp2p_host_unobserve(struct lp2p_host *host, lp2p_conn_event_cb cb,
                                 void *data);

/*
 * Streams.
 */

/*
 * Called for every inbound stream that negotiated a protocol this handler
 * serves. The application now owns `stream` and must eventually call
 * lp2p_stream_close() on it. lp2p_stream_protocol() gives the protocol.
 */
typedef void (*lp2p_stream_handler)(struct lp2p_stream *stream, void *data);

/* Optional: return non-zero if `protocol` (NUL-terminated, borrowed) is
 * served by this handler. */
typedef int (*lp2p_protocol_match)(const char *protocol, void *data);

/*
 * Serve `protocol` (copied). With `match` NULL the handler serves exactly
 * that protocol ID; otherwise it serves any ID for which `match` returns
 * non-zero (the ID `protocol` is still what identify advertises). Exact
 * matches win over matchers; matchers are tried in registration order.
 * Setting a handler for an ID already registered replaces it. Errors:
 * LP2P_EINVAL (empty or longer than LP2P_PROTOCOL_MAX, or containing a
 * newline), LP2P_ENOMEM.
 */
LP2P_API int lp2p_host_set_handler(struct lp2p_host *host,
                                   const char *protocol,
                                   lp2p_protocol_match match,
                                   lp2p_stream_handler handler, void *data);

/* Stop serving `protocol`; 0 or LP2P_ENOTFOUND. Open streams stay open. */
LP2P_API int lp2p_host_remove_handler(struct lp2p_host *host,
                                      const char *protocol);

/* `stream` is NULL on error; on success the caller owns it (close it with
 * lp2p_stream_close()). */
typedef void (*lp2p_stream_open_cb)(struct lp2p_stream *stream, int status,
                                    void *data);

/*
 * Open a stream to `peer` (copied), connecting first if needed (as
 * lp2p_host_connect_peer()), and negotiate the first of `protocols` (n IDs,
 * copied, in preference order) that the peer accepts. `cb` runs once with
 * the stream, or with an error: those of lp2p_host_connect_peer(),
 * LP2P_ENOPROTO (the peer refused every protocol), LP2P_ELIMIT
 * (max_outbound_streams), LP2P_ERESET, LP2P_ETIMEDOUT
 * (negotiate_timeout_ms), LP2P_ECLOSED (connection lost),
 * LP2P_ECANCELED (host closed). Errors returned at once: LP2P_EINVAL,
 * LP2P_ENOMEM, LP2P_ESHUTDOWN.
 */
LP2P_API int lp2p_stream_open(struct lp2p_host *host,
                              const struct lp2p_peer_id *peer,
                              const char *const *protocols, size_t n,
                              lp2p_stream_open_cb cb, void *data);

/*
 * Data arrives. `status` is 0 with `len` > 0 bytes at `buf` (borrowed for
 * the duration of the call), or, with len 0: LP2P_EEOF once when the peer
 * half-closed (no more data will come), LP2P_ERESET when the peer reset the
 * stream, LP2P_ETIMEDOUT when the deadline passed, LP2P_ECLOSED when the
 * connection was lost, LP2P_ECANCELED when the host is closing. After a
 * non-zero status the callback is not called again.
 */
typedef void (*lp2p_stream_read_cb)(struct lp2p_stream *stream, int status,
                                    const uint8_t *buf, size_t len);

/*
 * Start delivering data to `cb`. Data received while reading is stopped
 * stays buffered, up to stream_window bytes; past that the peer is held
 * back by flow control. Errors: LP2P_EINVAL, LP2P_ESTATE (closed).
 * May be called from inside the read callback.
 */
LP2P_API int lp2p_stream_read_start(struct lp2p_stream *stream,
                                    lp2p_stream_read_cb cb);

/* Stop delivering data (back-pressure toward the peer). */
LP2P_API void lp2p_stream_read_stop(struct lp2p_stream *stream);

/* Write completion: 0 once every byte is in the connection's outgoing
 * buffer (its flow-control window granted); otherwise LP2P_ERESET,
 * LP2P_ETIMEDOUT, LP2P_ECLOSED or LP2P_ECANCELED, and the data may be
 * partially sent. */
typedef void (*lp2p_stream_write_cb)(struct lp2p_stream *stream, int status,
                                     void *data);

/*
 * Queue `len` bytes for sending. `buf` is BORROWED until `cb` runs (not
 * copied): keep it alive and unchanged. Writes complete in order. `cb` may
 * be NULL: then what the stream's window takes is handed on at once and
 * nothing is scheduled (no loop turn); `buf` is borrowed until
 * lp2p_stream_write_queue_size() no longer counts it. Back-pressure: completions run only as the peer's window and the
 * socket let the data go, so a writer that waits for each completion (or
 * watches lp2p_stream_write_queue_size()) uses bounded memory. Errors
 * (cb not called): LP2P_ESTATE (write side closed, stream reset or
 * closed), LP2P_EINVAL, LP2P_ENOMEM.
 */
LP2P_API int lp2p_stream_write(struct lp2p_stream *stream, const uint8_t *buf,
                               size_t len, lp2p_stream_write_cb cb,
                               void *data);

/* One buffer of lp2p_stream_writev(). */
struct lp2p_iovec {
    const uint8_t *base;
    size_t len;
};

/*
 * Queue the `n` buffers of `bufs` as one write: each buffer is BORROWED
 * until `cb` runs, exactly as with lp2p_stream_write(); the array itself
 * is copied. The buffers go out in order, and the connection is flushed
 * once for all of them, so small pieces leave in one encrypted message and
 * one system call. `cb` (may be NULL) runs once, after the last buffer
 * completed (or with the first error). Errors (cb not called, nothing
 * queued): those of lp2p_stream_write(); LP2P_EINVAL also for n == 0.
 */
LP2P_API int lp2p_stream_writev(struct lp2p_stream *stream,
                                const struct lp2p_iovec *bufs, size_t n,
                                lp2p_stream_write_cb cb, void *data);

/* Bytes queued by lp2p_stream_write() and not yet completed. */
LP2P_API size_t lp2p_stream_write_queue_size(const struct lp2p_stream *stream);

/*
 * Half-close: after the queued writes, send FIN. Reading continues. 0, or
 * LP2P_ESTATE if already closed for writing or reset.
 */
LP2P_API int lp2p_stream_close_write(struct lp2p_stream *stream);

/*
 * Abort the stream now: send RST, complete pending writes with
 * LP2P_ECANCELED, stop reading. The handle stays valid until
 * lp2p_stream_close(). Idempotent.
 */
LP2P_API void lp2p_stream_reset(struct lp2p_stream *stream);

/*
 * Deadline: `ms` from now, if the stream is not yet closed, it is reset
 * and reads and pending writes report LP2P_ETIMEDOUT. 0 clears the
 * deadline. Replaces any earlier deadline. Errors: LP2P_ESTATE, LP2P_ENOMEM.
 */
LP2P_API int lp2p_stream_set_deadline(struct lp2p_stream *stream, uint64_t ms);

typedef void (*lp2p_stream_close_cb)(struct lp2p_stream *stream, void *data);

/*
 * Release the stream. If neither side reset it and our write side is
 * still open, queued writes are still sent, then FIN; data that still
 * arrives is discarded; if the peer has not closed its side within
 * negotiate_timeout_ms, the stream is reset. No read callback runs
 * after this call; pending write callbacks still run. `cb` (may be NULL)
 * runs exactly once, on a later loop iteration, after which the handle
 * is freed. Call exactly once per stream.
 */
LP2P_API void lp2p_stream_close(struct lp2p_stream *stream,
                                lp2p_stream_close_cb cb, void *data);

/* The negotiated protocol ID, borrowed for the stream's lifetime. */
LP2P_API const char *lp2p_stream_protocol(const struct lp2p_stream *stream);

/* The remote peer, borrowed for the stream's lifetime. */
LP2P_API const struct lp2p_peer_id *
lp2p_stream_peer(const struct lp2p_stream *stream);

/* The host. */
LP2P_API struct lp2p_host *lp2p_stream_host(const struct lp2p_stream *stream);

/* 1 if the peer opened the stream. */
LP2P_API int lp2p_stream_inbound(const struct lp2p_stream *stream);

/* Application data pointer, NULL until set. */
LP2P_API void lp2p_stream_set_data(struct lp2p_stream *stream, void *data);
LP2P_API void *lp2p_stream_data(const struct lp2p_stream *stream);

/*
 * Peerstore: what the host knows about other peers.
 */

#define LP2P_TTL_PERMANENT UINT64_MAX
#define LP2P_TTL_CONNECTED 600000 /* 10 min: addresses we dialed */

/*
 * Add (or refresh) an address of `peer` (copied), text; an address ending
 * in /p2p/<id> must name `peer` (else LP2P_EPEERID). The address expires
 * `ttl_ms` from now (LP2P_TTL_PERMANENT: never); re-adding keeps the
 * later expiry. 0 ttl removes it. Errors: LP2P_EBADADDR, LP2P_ENOMEM,
 * LP2P_ELIMIT (more than 64 addresses for one peer).
 */
LP2P_API int lp2p_peerstore_add_addr(struct lp2p_host *host,
                                     const struct lp2p_peer_id *peer,
                                     const char *maddr, uint64_t ttl_ms);

/*
 * The i-th unexpired address of `peer`, text without /p2p/. 0,
 * LP2P_ENOTFOUND (past the end or unknown peer), LP2P_EOVERFLOW (cap).
 */
LP2P_API int lp2p_peerstore_addr(struct lp2p_host *host,
                                 const struct lp2p_peer_id *peer, size_t i,
                                 char *out, size_t cap);

/*
 * The Ed25519 public key of `peer`, once a Noise handshake proved it (or
 * derived from an identity peer ID). 0 or LP2P_ENOTFOUND.
 */
LP2P_API int lp2p_peerstore_pubkey(struct lp2p_host *host,
                                   const struct lp2p_peer_id *peer,
                                   uint8_t pub[32]);

/*
 * What identify told us about `peer`: agent version and protocols,
 * borrowed until the next identify of that peer or the host is freed.
 * `protocols` may be NULL. 0 or LP2P_ENOTFOUND (never identified).
 */
LP2P_API int lp2p_peerstore_identity(struct lp2p_host *host,
                                     const struct lp2p_peer_id *peer,
                                     const char **agent_version,
                                     const char *const **protocols,
                                     size_t *n_protocols);

/*
 * Services. Ping (both roles) and identify (responder) are always served.
 */

/* `rtt_ns` is the round trip, valid when status is 0. */
typedef void (*lp2p_ping_cb)(struct lp2p_host *host, int status,
                             uint64_t rtt_ns, void *data);

/*
 * Ping `peer` once on /ipfs/ping/1.0.0 (32 random bytes, echoed) on a new
 * stream, closed afterwards; the round trip excludes stream negotiation.
 * Connects first if needed (peerstore addresses). Errors: those of
 * lp2p_stream_open(), LP2P_EPROTO (wrong echo), LP2P_ETIMEDOUT (no echo
 * within 10 s).
 */
LP2P_API int lp2p_host_ping(struct lp2p_host *host,
                            const struct lp2p_peer_id *peer, lp2p_ping_cb cb,
                            void *data);

/* Result of identify; all pointers borrowed for the callback only. */
struct lp2p_identify_info {
    const char *protocol_version;
    const char *agent_version;
    const char *const *protocols;
    size_t n_protocols;
    const char *const *listen_addrs; /* multiaddr text */
    size_t n_listen_addrs;
    const char *observed_addr; /* how the peer sees us; may be NULL */
    uint8_t pubkey[32];        /* checked against the peer ID */
};

typedef void (*lp2p_identify_cb)(struct lp2p_host *host, int status,
                                 const struct lp2p_identify_info *info,
                                 void *data);

/*
 * Run /ipfs/id/1.0.0 as initiator: read every message until EOF (at most
 * 8 KiB each, at most 10), merge them, check the public key matches the
 * peer ID, and store addresses, protocols and agent in the peerstore.
 * Errors: those of lp2p_stream_open(), LP2P_EPROTO (malformed or too
 * big), LP2P_EPEERID (publicKey of another peer), LP2P_EBADKEY.
 */
LP2P_API int lp2p_host_identify(struct lp2p_host *host,
                                const struct lp2p_peer_id *peer,
                                lp2p_identify_cb cb, void *data);

#endif /* LP2P_H */
