/*
 * The API wire codec of the cluster node: frames, requests and responses,
 * both ways (format: p2praft.h, cluster node section). The unix socket
 * server, the forward protocol, the blocking calls, the CLI and the tests
 * all go through it, so a format change touches this file only. Sans-I/O:
 * bytes in, bytes out.
 */
#ifndef P2PRAFT_RAFT_API_H
#define P2PRAFT_RAFT_API_H

#include <stddef.h>
#include <stdint.h>

#include "p2praft.h"

/* Frame: u32 big-endian body length, then the body. */
#define P2PRAFT__API_PREFIX 4
/* The one format version, first byte of every body. */
#define P2PRAFT__API_VERSION 1
/* Request flags (GET only). */
#define P2PRAFT__API_CONSISTENT 0x01

/* Byte offsets in a request body. */
enum {
    P2PRAFT__API_REQ_VERSION = 0,
    P2PRAFT__API_REQ_OP = 1,
    P2PRAFT__API_REQ_FLAGS = 2,
    P2PRAFT__API_REQ_FIELDS = 3 /* the fields: u32 big-endian length | bytes */
};
#define P2PRAFT__API_FIELD_PREFIX 4

/* Byte offsets in a response body; the payload starts at the end of the
 * header, which is also the shortest valid response. */
enum {
    P2PRAFT__API_RESP_VERSION = 0,
    P2PRAFT__API_RESP_STATUS = 1,
    P2PRAFT__API_RESP_INDEX = 2, /* u64 big-endian */
    P2PRAFT__API_RESP_PAYLOAD = 10
};

/* A request. Parsed: key is NUL-terminated; val and exp hold vlen / elen
 * bytes plus a NUL; all three are owned (lp2p heap). To encode, the caller
 * fills it with borrowed pointers (key: a C string, or NULL for STATUS and
 * BARRIER). */
struct p2praft__api_req {
    uint8_t op, flags;
    char *key;
    uint8_t *val, *exp;
    size_t vlen, elen;
};

/* A parsed response: a view into the body it was parsed from. */
struct p2praft__api_resp {
    uint8_t status; /* any byte: unknown statuses are the caller's call */
    uint64_t index;
    const uint8_t *payload;
    size_t len;
};

/*
 * Look for a frame at the start of `buf` (`len` bytes, borrowed). Once the
 * prefix is in, *body_len holds the announced body length. 0: the whole
 * frame (P2PRAFT__API_PREFIX + *body_len bytes) is there; LP2P_EAGAIN: more
 * bytes needed; LP2P_ETOOBIG: the body would exceed P2PRAFT_API_FRAME_MAX.
 */
int p2praft__api_frame(const uint8_t *buf, size_t len, uint32_t *body_len);

/* Write the frame prefix for a body of `body_len` bytes at p[0..3]. */
void p2praft__api_frame_prefix(uint8_t *p, uint32_t body_len);

/*
 * Parse a request body (borrowed) into `r` (zeroed by the caller). 0, or
 * -1 with a sentence in err; what was parsed so far stays in `r`: release
 * it with p2praft__api_req_release() in both cases. Never reads past
 * body + len.
 */
int p2praft__api_request_parse(struct p2praft__api_req *r, const uint8_t *body,
                               size_t len, char *err, size_t errlen);

/* Free what a parse left in `r` and zero its pointers. */
void p2praft__api_req_release(struct p2praft__api_req *r);

/*
 * Encode `r` (borrowed) as a whole frame, prefix included: the fields that
 * r->op carries, flags as given. Returns the frame (free with lp2p__free or
 * p2praft_free) and its length in *len, or NULL when out of memory. The
 * caller keeps within the limits (key, value sizes) it wants the peer to
 * accept: the encoder checks nothing.
 */
uint8_t *p2praft__api_request_encode(const struct p2praft__api_req *r,
                                     size_t *len);

/* Encode a response frame, prefix included: `payload` (borrowed, plen
 * bytes, may be NULL when plen is 0). Returns it (lp2p heap) with its
 * length in *len, or NULL when out of memory. */
uint8_t *p2praft__api_response_encode(uint8_t status, uint64_t index,
                                      const void *payload, size_t plen,
                                      size_t *len);

/* Parse a response body (borrowed; `out` points into it). 0, or
 * LP2P_EPROTO when it is shorter than the header or of another version. */
int p2praft__api_response_parse(struct p2praft__api_resp *out,
                                const uint8_t *body, size_t len);

/* The library code of a response status (what the blocking node calls
 * return): 0, LP2P_ENOTFOUND, LP2P_EMISMATCH, LP2P_ERAFT (FAILED),
 * LP2P_EINVAL (BAD REQUEST), LP2P_ENOTLEADER, LP2P_ELIMIT (BUSY),
 * LP2P_ENOTCAUGHTUP, LP2P_EUNKNOWN (UNKNOWN, and any status byte this
 * build does not know). */
int p2praft__api_status_code(uint8_t status);

/* The constant BUSY response frame, prefix included (static storage: it
 * may be written without copying). */
const uint8_t *p2praft__api_busy_frame(size_t *len);

#endif
