/*
 * The API wire codec (see api.h; format: p2praft.h, cluster node section).
 *
 * The parsers take bytes from clients and peers: they bound every length
 * before using it, never read past the input, and answer bad input with a
 * sentence (requests) or LP2P_EPROTO (responses), never an assert. The
 * encoders write exactly the bytes the parsers accept.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "raft/api.h"
#include "util/buf.h"
#include "util/byteorder.h"
#include "util/heap.h"

/* ---- frames -------------------------------------------------------------- */

int p2praft__api_frame(const uint8_t *buf, size_t len, uint32_t *body_len)
{
    if (len < P2PRAFT__API_PREFIX) {
        return LP2P_EAGAIN;
    }
    *body_len = lp2p__get32(buf);
    if (*body_len > P2PRAFT_API_FRAME_MAX) {
        return LP2P_ETOOBIG;
    }
    if (len - P2PRAFT__API_PREFIX < *body_len) {
        return LP2P_EAGAIN;
    }
    return 0;
}

void p2praft__api_frame_prefix(uint8_t *p, uint32_t body_len)
{
    lp2p__put32(p, body_len);
}

/* ---- requests ------------------------------------------------------------ */

/* Which fields an op carries, in wire order: key, expected, value. */
static bool has_key(uint8_t op)
{
    return op != P2PRAFT_API_STATUS && op != P2PRAFT_API_BARRIER;
}

static bool has_expected(uint8_t op)
{
    return op == P2PRAFT_API_CAS;
}

static bool has_value(uint8_t op)
{
    return op == P2PRAFT_API_SET || op == P2PRAFT_API_CAS;
}

/* Read one field at *p (bounded by end) into a fresh copy. */
static int take_field(const uint8_t **p, const uint8_t *end, size_t max,
                      uint8_t **out, size_t *len, const char *what,
                      char *err, size_t errlen)
{
    uint32_t n;
    if (end - *p < P2PRAFT__API_FIELD_PREFIX) {
        snprintf(err, errlen, "truncated request: %s missing", what);
        return -1;
    }
    n = lp2p__get32(*p);
    *p += P2PRAFT__API_FIELD_PREFIX;
    if (n > max) {
        snprintf(err, errlen, "%s too long (%" PRIu32 " bytes, max %zu)", what,
                 n, max);
        return -1;
    }
    if ((size_t)(end - *p) < n) {
        snprintf(err, errlen, "truncated request: %s", what);
        return -1;
    }
    *out = lp2p__malloc((size_t)n + 1);
    if (*out == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (n > 0) {
        memcpy(*out, *p, n);
    }
    (*out)[n] = '\0';
    *len = n;
    *p += n;
    return 0;
}

int p2praft__api_request_parse(struct p2praft__api_req *r, const uint8_t *body,
                               size_t len, char *err, size_t errlen)
{
    const uint8_t *p = body, *end = body + len;
    size_t klen = 0;
    if (len < P2PRAFT__API_REQ_FIELDS) {
        snprintf(err, errlen, "truncated request (%zu bytes)", len);
        return -1;
    }
    if (p[P2PRAFT__API_REQ_VERSION] != P2PRAFT__API_VERSION) {
        snprintf(err, errlen, "unsupported request version %u",
                 p[P2PRAFT__API_REQ_VERSION]);
        return -1;
    }
    r->op = p[P2PRAFT__API_REQ_OP];
    r->flags = p[P2PRAFT__API_REQ_FLAGS];
    p += P2PRAFT__API_REQ_FIELDS;
    if (r->op < P2PRAFT_API_GET || r->op > P2PRAFT_API_BARRIER) {
        snprintf(err, errlen, "unknown operation %u", r->op);
        return -1;
    }
    if ((r->flags & ~(unsigned)P2PRAFT__API_CONSISTENT) != 0 ||
        (r->flags != 0 && r->op != P2PRAFT_API_GET)) {
        snprintf(err, errlen, "unknown flags 0x%02x", r->flags);
        return -1;
    }
    if (has_key(r->op)) {
        if (take_field(&p, end, P2PRAFT_KV_KEY_MAX, (uint8_t **)&r->key,
                       &klen, "key", err, errlen) != 0) {
            return -1;
        }
        if (klen == 0 || memchr(r->key, '\0', klen) != NULL) {
            snprintf(err, errlen, "a key is 1 to %d bytes without NUL",
                     P2PRAFT_KV_KEY_MAX);
            return -1;
        }
    }
    if (has_expected(r->op) &&
        take_field(&p, end, P2PRAFT_KV_VALUE_MAX, &r->exp, &r->elen,
                   "expected value", err, errlen) != 0) {
        return -1;
    }
    if (has_value(r->op) &&
        take_field(&p, end, P2PRAFT_KV_VALUE_MAX, &r->val, &r->vlen, "value",
                   err, errlen) != 0) {
        return -1;
    }
    if (p != end) {
        snprintf(err, errlen, "%zu unexpected bytes after the request",
                 (size_t)(end - p));
        return -1;
    }
    return 0;
}

void p2praft__api_req_release(struct p2praft__api_req *r)
{
    lp2p__free(r->key);
    lp2p__free(r->val);
    lp2p__free(r->exp);
    r->key = NULL;
    r->val = r->exp = NULL;
    r->vlen = r->elen = 0;
}

static int append_field(struct lp2p_buf *b, const void *p, size_t len)
{
    uint8_t hdr[P2PRAFT__API_FIELD_PREFIX];
    int rv;
    lp2p__put32(hdr, (uint32_t)len);
    rv = lp2p__buf_append(b, hdr, sizeof(hdr));
    if (rv == 0 && len > 0) {
        rv = lp2p__buf_append(b, p, len);
    }
    return rv;
}

uint8_t *p2praft__api_request_encode(const struct p2praft__api_req *r,
                                     size_t *len)
{
    struct lp2p_buf b;
    uint8_t hdr[P2PRAFT__API_PREFIX + P2PRAFT__API_REQ_FIELDS] = {0};
    int rv;
    hdr[P2PRAFT__API_PREFIX + P2PRAFT__API_REQ_VERSION] = P2PRAFT__API_VERSION;
    hdr[P2PRAFT__API_PREFIX + P2PRAFT__API_REQ_OP] = r->op;
    hdr[P2PRAFT__API_PREFIX + P2PRAFT__API_REQ_FLAGS] = r->flags;
    lp2p__buf_init(&b);
    rv = lp2p__buf_append(&b, hdr, sizeof(hdr));
    if (rv == 0 && has_key(r->op)) {
        rv = append_field(&b, r->key, strlen(r->key));
    }
    if (rv == 0 && has_expected(r->op)) {
        rv = append_field(&b, r->exp, r->elen);
    }
    if (rv == 0 && has_value(r->op)) {
        rv = append_field(&b, r->val, r->vlen);
    }
    if (rv != 0) {
        lp2p__buf_free(&b);
        return NULL;
    }
    p2praft__api_frame_prefix(b.data, (uint32_t)(b.len - P2PRAFT__API_PREFIX));
    return lp2p__buf_detach(&b, len);
}

/* ---- responses ----------------------------------------------------------- */

uint8_t *p2praft__api_response_encode(uint8_t status, uint64_t index,
                                      const void *payload, size_t plen,
                                      size_t *len)
{
    size_t body = P2PRAFT__API_RESP_PAYLOAD + plen;
    uint8_t *f = lp2p__malloc(P2PRAFT__API_PREFIX + body), *b;
    if (f == NULL) {
        return NULL;
    }
    b = f + P2PRAFT__API_PREFIX;
    p2praft__api_frame_prefix(f, (uint32_t)body);
    b[P2PRAFT__API_RESP_VERSION] = P2PRAFT__API_VERSION;
    b[P2PRAFT__API_RESP_STATUS] = status;
    lp2p__put64(b + P2PRAFT__API_RESP_INDEX, index);
    if (plen > 0) {
        memcpy(b + P2PRAFT__API_RESP_PAYLOAD, payload, plen);
    }
    *len = P2PRAFT__API_PREFIX + body;
    return f;
}

int p2praft__api_response_parse(struct p2praft__api_resp *out,
                                const uint8_t *body, size_t len)
{
    if (len < P2PRAFT__API_RESP_PAYLOAD ||
        body[P2PRAFT__API_RESP_VERSION] != P2PRAFT__API_VERSION) {
        return LP2P_EPROTO;
    }
    out->status = body[P2PRAFT__API_RESP_STATUS];
    out->index = lp2p__get64(body + P2PRAFT__API_RESP_INDEX);
    out->payload = body + P2PRAFT__API_RESP_PAYLOAD;
    out->len = len - P2PRAFT__API_RESP_PAYLOAD;
    return 0;
}

/* ---- statuses ------------------------------------------------------------ */

int p2praft__api_status_code(uint8_t status)
{
    switch (status) {
    case P2PRAFT_API_OK:
        return 0;
    case P2PRAFT_API_NOTFOUND:
        return LP2P_ENOTFOUND;
    case P2PRAFT_API_MISMATCH:
        return LP2P_EMISMATCH;
    case P2PRAFT_API_FAILED:
        return LP2P_ERAFT;
    case P2PRAFT_API_BADREQ:
        return LP2P_EINVAL;
    case P2PRAFT_API_NOTLEADER:
        return LP2P_ENOTLEADER;
    case P2PRAFT_API_BUSY:
        return LP2P_ELIMIT;
    case P2PRAFT_API_NOTCAUGHTUP:
        return LP2P_ENOTCAUGHTUP;
    case P2PRAFT_API_UNKNOWN:
    default:
        /* A status this build does not know cannot vouch for anything. */
        return LP2P_EUNKNOWN;
    }
}

#define BUSY_MSG "busy: too many requests at once; try again later"

/* The BUSY frame is constant: no allocation on the path that refuses work
 * for lack of resources. Arrays of bytes have no padding between them. */
static const struct {
    uint8_t head[P2PRAFT__API_PREFIX + P2PRAFT__API_RESP_PAYLOAD];
    char msg[sizeof(BUSY_MSG) - 1];
} busy_frame = {
    {0, 0, 0, (uint8_t)(P2PRAFT__API_RESP_PAYLOAD + sizeof(BUSY_MSG) - 1),
     P2PRAFT__API_VERSION, P2PRAFT_API_BUSY, 0, 0, 0, 0, 0, 0, 0, 0},
    BUSY_MSG};

_Static_assert(sizeof(busy_frame) == P2PRAFT__API_PREFIX +
                                         P2PRAFT__API_RESP_PAYLOAD +
                                         sizeof(BUSY_MSG) - 1,
               "busy frame is packed");

const uint8_t *p2praft__api_busy_frame(size_t *len)
{
    *len = sizeof(busy_frame);
    return (const uint8_t *)&busy_frame;
}
