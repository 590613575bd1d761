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

#endif /* LP2P_H */
