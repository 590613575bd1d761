/*
 * The API wire codec of the cluster node: frames, requests, answers and
 * watch events, both ways (format: p2praft.h, cluster node section). The
 * unix socket server, the client protocol, the forward protocol, the
 * blocking calls, the client library and the tests all go through it, so a
 * format change touches this file only. Sans-I/O: bytes in, bytes out.
 *
 * Version 2 (this one) carries a request ID in every request and response,
 * so that one connection can carry many requests at once, answered in any
 * order. Version 1 had none; it is only recognised, to answer an old client
 * in a format it can read (p2praft__api_v1_answer_encode()), and the
 * connection-level BUSY refusal is sent in it, since it goes out before the
 * client's version is known and both generations read it.
 */
#ifndef P2PRAFT_RAFT_API_H
#define P2PRAFT_RAFT_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p2praft.h"
#include "util/buf.h"

/* Frame: u32 big-endian body length, then the body. */
#define P2PRAFT__API_PREFIX 4
/* The format version, first byte of every body. */
#define P2PRAFT__API_VERSION P2PRAFT_API_VERSION
#define P2PRAFT__API_VERSION_1 1
/* Request flags. */
#define P2PRAFT__API_CONSISTENT P2PRAFT_API_FLAG_CONSISTENT
#define P2PRAFT__API_KEYS_ONLY P2PRAFT_API_FLAG_KEYS_ONLY

/* Byte offsets in a request body. LS and UNWATCH have a u32 after the
 * header (limit, target), then come the fields. */
enum {
    P2PRAFT__API_REQ_VERSION = 0,
    P2PRAFT__API_REQ_OP = 1,
    P2PRAFT__API_REQ_FLAGS = 2,
    P2PRAFT__API_REQ_ID = 3,    /* u32 big-endian */
    P2PRAFT__API_REQ_FIELDS = 7 /* each field: u32 big-endian length | bytes */
};
#define P2PRAFT__API_FIELD_PREFIX 4

/* Byte offsets in a response body; the payload starts at the end of the
 * header, which is also the shortest valid response. */
enum {
    P2PRAFT__API_RESP_VERSION = 0,
    P2PRAFT__API_RESP_TYPE = 1,   /* P2PRAFT_API_ANSWER or _EVENT */
    P2PRAFT__API_RESP_CODE = 2,   /* answer: status; event: its kind */
    P2PRAFT__API_RESP_ID = 3,     /* u32 big-endian */
    P2PRAFT__API_RESP_INDEX = 7,  /* u64 big-endian */
    P2PRAFT__API_RESP_PAYLOAD = 15
};

/* Version 1 answers: u8 version (1) | u8 status | u64 index | payload. */
enum {
    P2PRAFT__API_V1_STATUS = 1,
    P2PRAFT__API_V1_INDEX = 2,
    P2PRAFT__API_V1_PAYLOAD = 10
};

/* An LS answer holds at most this many entries, and stops adding entries
 * once its payload passes this many bytes (it always holds one, if any). */
#define P2PRAFT__API_LS_PAGE_MAX 1000
#define P2PRAFT__API_LS_PAGE_BYTES (1024 * 1024)

/* A request. Parsed: key and after are NUL-terminated (NULL when the op
 * has no such field); val and exp hold vlen / elen bytes plus a NUL; all
 * are owned (lp2p heap). To encode, the caller fills it with borrowed
 * pointers (key, after: C strings or NULL). `key` is the prefix of LS and
 * WATCH ("" or NULL: every key). `version` is what a parse found (even when
 * it failed past the first byte), so that the answer can be sent in a form
 * the client reads; the encoder always writes the current version. */
struct p2praft__api_req {
    uint8_t version, op, flags;
    uint32_t id;
    char *key;
    uint8_t *val, *exp;
    size_t vlen, elen;
    char *after;     /* LS: list keys after this one */
    uint32_t limit;  /* LS: at most this many entries (0: a full page) */
    uint32_t target; /* UNWATCH: the ID of the watch to end */
};

/* A parsed response: a view into the body it was parsed from. A version-1
 * body parses too (type ANSWER, id 0): an old node's answer or the BUSY
 * refusal; `version` tells. */
struct p2praft__api_resp {
    uint8_t version;
    uint8_t type;   /* P2PRAFT_API_ANSWER or P2PRAFT_API_EVENT */
    uint8_t status; /* answer: any byte (unknown ones are the caller's
                     * call); event: its kind (P2PRAFT_WATCH_*) */
    uint32_t id;
    uint64_t index;
    const uint8_t *payload;
    size_t len;
};

/* A parsed watch event: views into the response's payload. */
struct p2praft__api_event {
    uint8_t kind;             /* P2PRAFT_WATCH_STARTED .. _DROPPED */
    const uint8_t *key, *val; /* SET, CAS: both; DEL: key */
    size_t klen, vlen;
    uint64_t count; /* DROPPED: events lost (0: unknown) */
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
 * Building a response frame in place, payload included, with no second
 * copy: p2praft__api_frame_start() appends the prefix and the header to `b`
 * and returns the frame's offset in b (or (size_t)-1 when out of memory);
 * the caller appends the payload (p2praft__api_put_field(), or plain
 * lp2p__buf_append()); p2praft__api_frame_end() writes the prefix of the
 * frame at `start`. One buffer may hold several frames.
 */
size_t p2praft__api_frame_start(struct lp2p_buf *b, uint8_t type, uint8_t code,
                                uint32_t id, uint64_t index);
void p2praft__api_frame_end(struct lp2p_buf *b, size_t start);

/* Append one field (u32 length, bytes; p borrowed). 0 or LP2P_ENOMEM. */
int p2praft__api_put_field(struct lp2p_buf *b, const void *p, size_t len);

/*
 * Parse a request body (borrowed) into `r` (zeroed by the caller). 0, or
 * -1 with a sentence in err; what was parsed so far stays in `r` (its
 * version and id once read): release it with p2praft__api_req_release()
 * in both cases. A body of another version than P2PRAFT__API_VERSION fails
 * with r->version set. Never reads past body + len.
 */
int p2praft__api_request_parse(struct p2praft__api_req *r, const uint8_t *body,
                               size_t len, char *err, size_t errlen);

/* Free what a parse left in `r` and zero its pointers. */
void p2praft__api_req_release(struct p2praft__api_req *r);

/*
 * Encode `r` (borrowed) as a whole frame, prefix included: the fields that
 * r->op carries, flags and id as given. Returns the frame (free with
 * lp2p__free or p2praft_free) and its length in *len, or NULL when out of
 * memory. The caller keeps within the limits (key, value sizes) it wants
 * the peer to accept: the encoder checks nothing.
 */
uint8_t *p2praft__api_request_encode(const struct p2praft__api_req *r,
                                     size_t *len);

/* Encode an ANSWER frame, prefix included: `payload` (borrowed, plen
 * bytes, may be NULL when plen is 0). Returns it (lp2p heap) with its
 * length in *len, or NULL when out of memory. */
uint8_t *p2praft__api_response_encode(uint8_t status, uint32_t id,
                                      uint64_t index, const void *payload,
                                      size_t plen, size_t *len);

/* Encode an answer in the version-1 format (for a client that sent a
 * version-1 request): `msg` (borrowed, a C string) as its payload. */
uint8_t *p2praft__api_v1_answer_encode(uint8_t status, const char *msg,
                                       size_t *len);

/*
 * Encode an EVENT frame of the watch `id` into `b` (appended): SET and CAS
 * carry key (klen bytes) and value, DEL the key, DROPPED the count,
 * STARTED nothing. 0 or LP2P_ENOMEM (b then holds what it held before).
 */
int p2praft__api_event_encode(struct lp2p_buf *b, uint8_t kind, uint32_t id,
                              uint64_t index, const char *key, size_t klen,
                              const void *val, size_t vlen, uint64_t count);

/* Parse a response body (borrowed; `out` points into it). 0, or
 * LP2P_EPROTO when it is shorter than its header, of an unknown version,
 * or of an unknown type. */
int p2praft__api_response_parse(struct p2praft__api_resp *out,
                                const uint8_t *body, size_t len);

/* Parse the payload of an EVENT response `a` (borrowed) into *ev. 0 or
 * LP2P_EPROTO (unknown kind, fields out of bounds or trailing bytes). */
int p2praft__api_event_parse(const struct p2praft__api_resp *a,
                             struct p2praft__api_event *ev);

/*
 * An LS answer's payload: u8 more | u32 count | count x (key field, value
 * field). The server builds it with p2praft__api_ls_put() after a
 * p2praft__api_frame_start() and patches the head with
 * p2praft__api_ls_head() once it knows the count. The client walks it with
 * p2praft__api_ls_parse(), which checks it whole first (keys 1 to
 * P2PRAFT_KV_KEY_MAX bytes without NUL, values within P2PRAFT_KV_VALUE_MAX,
 * nothing after) and then calls `cb` once per entry (views into payload);
 * a non-zero return from cb stops the walk and is returned. 0, LP2P_EPROTO
 * or cb's code.
 */
#define P2PRAFT__API_LS_HEAD 5
int p2praft__api_ls_put(struct lp2p_buf *b, const char *key, size_t klen,
                        const void *val, size_t vlen);
void p2praft__api_ls_head(uint8_t *payload, bool more, uint32_t count);
int p2praft__api_ls_parse(const uint8_t *payload, size_t len, bool *more,
                          uint32_t *count,
                          int (*cb)(void *ctx, const uint8_t *key, size_t klen,
                                    const uint8_t *val, size_t vlen),
                          void *ctx);

/* The library code of a response status (what the blocking node calls
 * return): 0, LP2P_ENOTFOUND, LP2P_EMISMATCH, LP2P_ERAFT (FAILED),
 * LP2P_EINVAL (BAD REQUEST), LP2P_ENOTLEADER, LP2P_ELIMIT (BUSY),
 * LP2P_ENOTCAUGHTUP, LP2P_EUNKNOWN (UNKNOWN, and any status byte this
 * build does not know). */
int p2praft__api_status_code(uint8_t status);

/* The name of a status byte ("ok", "not found", ...; "status N" for one
 * this build does not know, into buf). */
const char *p2praft__api_status_name(uint8_t status, char *buf, size_t len);

/* Is op a write (SET, DEL, CAS)? */
bool p2praft__api_is_write(uint8_t op);

/* Is op an operator request (SNAPSHOT, METRICS, CLUSTER, HEALTH: 20..23,
 * no fields)? */
bool p2praft__api_is_operator(uint8_t op);

/* The constant BUSY frame (version 1, id 0), prefix included (static
 * storage: it may be written without copying). It refuses a connection
 * before anything is read from it. */
const uint8_t *p2praft__api_busy_frame(size_t *len);

#endif
