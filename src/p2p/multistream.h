/*
 * multistream-select 1.0 as two sans-I/O state machines (no sockets, no
 * clock): bytes in, bytes out, and a result.
 *
 * A message is uvarint(len) || bytes || '\n', len counting the '\n', at
 * most LP2P_MSS_MAX_MSG bytes. Both sides first send the header
 * "/multistream/1.0.0". The initiator then proposes protocols one at a
 * time; the responder echoes the one it accepts or answers "na". "ls" asks
 * the responder for its list.
 *
 * Usage: init, then lp2p__mss_start() (which writes the first output), then
 * feed every received chunk to lp2p__mss_feed() and send whatever it
 * appended to `out`. Feed consumes input until negotiation completes; bytes
 * after the final message are not consumed and belong to the next layer
 * (go-libp2p's lazy select sends header + protocol + application data in
 * one write). A message split across chunks, or several in one chunk, is
 * handled: partial messages are buffered inside the object (no
 * allocation). Output is appended to a caller-owned lp2p_buf.
 */
#ifndef LP2P_P2P_MULTISTREAM_H
#define LP2P_P2P_MULTISTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"

#define LP2P_MSS_HEADER "/multistream/1.0.0"
/* Largest message, length prefix excluded, '\n' included (go and js). */
#define LP2P_MSS_MAX_MSG 1024

enum lp2p_mss_state {
    LP2P_MSS_IDLE = 0,   /* initialised, start not called */
    LP2P_MSS_RUNNING,    /* negotiating */
    LP2P_MSS_DONE,       /* a protocol was agreed: lp2p__mss_selected() */
    LP2P_MSS_LISTED,     /* initiator: ls answered, nothing proposed */
    LP2P_MSS_FAILED      /* an error was returned; the object is dead */
};

/*
 * Responder matcher: return 1 to accept `proto` (`len` bytes, not
 * NUL-terminated in general, but followed by a NUL here), 0 to refuse.
 * Called synchronously from lp2p__mss_feed(), only for protocols that are
 * not in the exact list.
 */
typedef int (*lp2p_mss_match_cb)(void *ctx, const char *proto, size_t len);

/* Initiator "ls" result: called once per protocol the responder listed,
 * synchronously from lp2p__mss_feed(). `proto` is borrowed for the call. */
typedef void (*lp2p_mss_ls_cb)(void *ctx, const char *proto, size_t len);

struct lp2p_mss {
    int initiator;
    enum lp2p_mss_state state;
    int header_seen;  /* the peer's header arrived */
    int header_sent;  /* responder: our header went out */
    /* Initiator: protocols to propose, in order; responder: protocols
     * supported (both borrowed). */
    const char *const *protos;
    size_t nprotos;
    size_t cur;       /* index of the outstanding proposal */
    int want_ls;      /* initiator: send "ls" first */
    int ls_pending;   /* initiator: waiting for the ls answer */
    lp2p_mss_ls_cb ls_cb;
    void *ls_ctx;
    /* Responder: optional matcher. */
    lp2p_mss_match_cb match;
    void *match_ctx;
    /* Partial message: length prefix and body. */
    uint8_t pend[LP2P_MSS_MAX_MSG + 2];
    size_t pend_len;
    /* The agreed protocol, NUL-terminated. */
    char selected[LP2P_MSS_MAX_MSG];
};

/*
 * Initiator proposing `protos[0..n)` in order (n may be 0 only with
 * lp2p__mss_set_ls()). The array and the strings are borrowed and must stay
 * valid as long as `m` is used. Each protocol must be 1..1023 bytes with no
 * '\n'. Returns 0 or LP2P_EINVAL.
 */
int lp2p__mss_init_initiator(struct lp2p_mss *m, const char *const *protos,
                             size_t n);

/*
 * Initiator only: send "ls" before the first proposal; `cb` receives each
 * listed protocol. After the answer, the initiator proposes protos[] as
 * usual, or ends in LP2P_MSS_LISTED if it has none. Call before start.
 */
int lp2p__mss_set_ls(struct lp2p_mss *m, lp2p_mss_ls_cb cb, void *ctx);

/*
 * Responder accepting any of `protos[0..n)` (exact match), or any protocol
 * for which `match` (may be NULL) returns 1. `protos` is borrowed like the
 * initiator's and is also the answer to "ls". Returns 0 or LP2P_EINVAL.
 */
int lp2p__mss_init_responder(struct lp2p_mss *m, const char *const *protos,
                             size_t n, lp2p_mss_match_cb match, void *ctx);

/*
 * Write the first output: the initiator's header plus its first proposal
 * (or "ls") in one piece; nothing for the responder, which answers the
 * header when it arrives. Returns 0, LP2P_ENOMEM or LP2P_ESTATE.
 */
int lp2p__mss_start(struct lp2p_mss *m, struct lp2p_buf *out);

/*
 * Feed received bytes; replies are appended to `out`. Returns the number of
 * bytes consumed (all of them unless negotiation completed inside `in`, or
 * `len` exceeds INT_MAX: then at most INT_MAX), or
 * an error: LP2P_EPROTO (bad header, malformed message, unexpected answer),
 * LP2P_ETOOBIG (message above LP2P_MSS_MAX_MSG), LP2P_ENOPROTO (initiator:
 * every proposal was refused), LP2P_ENOMEM, LP2P_ESTATE (fed after
 * completion or failure). After an error the object is dead. On ENOMEM
 * `out` may hold a partial reply: discard the connection.
 */
int lp2p__mss_feed(struct lp2p_mss *m, const uint8_t *in, size_t len,
                   struct lp2p_buf *out);

/* 1 once a protocol was agreed. */
int lp2p__mss_done(const struct lp2p_mss *m);

/* The agreed protocol (NUL-terminated, owned by `m`), or NULL. */
const char *lp2p__mss_selected(const struct lp2p_mss *m);

/* Append one message (uvarint length, `s`, '\n'). 0, LP2P_ETOOBIG,
 * LP2P_ENOMEM. */
int lp2p__mss_write_msg(struct lp2p_buf *out, const char *s, size_t len);

#endif
