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

size_t p2praft__api_frame_start(struct lp2p_buf *b, uint8_t type, uint8_t code,
                                uint32_t id, uint64_t index)
{
    uint8_t h[P2PRAFT__API_PREFIX + P2PRAFT__API_RESP_PAYLOAD] = {0};
    uint8_t *body = h + P2PRAFT__API_PREFIX;
    size_t start = b->len;
    body[P2PRAFT__API_RESP_VERSION] = P2PRAFT__API_VERSION;
    body[P2PRAFT__API_RESP_TYPE] = type;
    body[P2PRAFT__API_RESP_CODE] = code;
    lp2p__put32(body + P2PRAFT__API_RESP_ID, id);
    lp2p__put64(body + P2PRAFT__API_RESP_INDEX, index);
    if (lp2p__buf_append(b, h, sizeof(h)) != 0) {
        return (size_t)-1;
    }
    return start;
}

void p2praft__api_frame_end(struct lp2p_buf *b, size_t start)
{
    p2praft__api_frame_prefix(b->data + start,
                              (uint32_t)(b->len - start - P2PRAFT__API_PREFIX));
}

int p2praft__api_put_field(struct lp2p_buf *b, const void *p, size_t len)
{
    uint8_t hdr[P2PRAFT__API_FIELD_PREFIX];
    int rv;
    lp2p__put32(hdr, (uint32_t)len);
    rv = lp2p__buf_reserve(b, sizeof(hdr) + len);
    if (rv == 0) {
        rv = lp2p__buf_append(b, hdr, sizeof(hdr));
    }
    if (rv == 0 && len > 0) {
        rv = lp2p__buf_append(b, p, len);
    }
    return rv;
}

/* ---- requests ------------------------------------------------------------ */

bool p2praft__api_is_operator(uint8_t op)
{
    return op >= P2PRAFT_API_SNAPSHOT && op <= P2PRAFT_API_HEALTH;
}

bool p2praft__api_is_write(uint8_t op)
{
    return op == P2PRAFT_API_SET || op == P2PRAFT_API_DEL ||
           op == P2PRAFT_API_CAS;
}

bool p2praft__api_is_member(uint8_t op)
{
    return op >= P2PRAFT_API_PEERS && op <= P2PRAFT_API_REMOVED;
}

bool p2praft__api_is_change(uint8_t op)
{
    return op == P2PRAFT_API_PEER_ADD || op == P2PRAFT_API_PEER_RM;
}

/* Which fields an op carries, in wire order: key (or prefix), expected,
 * value, after. The membership ops carry their argument (a multiaddr, a
 * peer ID) in the key field. */
static bool has_key(uint8_t op)
{
    return op == P2PRAFT_API_GET || p2praft__api_is_write(op) ||
           op == P2PRAFT_API_LS || op == P2PRAFT_API_WATCH ||
           op == P2PRAFT_API_PEER_ADD || op == P2PRAFT_API_PEER_RM ||
           op == P2PRAFT_API_TRANSFER;
}

/* A prefix may be empty; a key may not (TRANSFER: empty is any voter). */
static bool key_is_prefix(uint8_t op)
{
    return op == P2PRAFT_API_LS || op == P2PRAFT_API_WATCH ||
           op == P2PRAFT_API_TRANSFER;
}

static bool has_expected(uint8_t op)
{
    return op == P2PRAFT_API_CAS;
}

static bool has_value(uint8_t op)
{
    return op == P2PRAFT_API_SET || op == P2PRAFT_API_CAS;
}

/* The u32 between the header and the fields. */
static bool has_word(uint8_t op)
{
    return op == P2PRAFT_API_LS || op == P2PRAFT_API_UNWATCH;
}

static uint8_t allowed_flags(uint8_t op)
{
    switch (op) {
    case P2PRAFT_API_GET:
        return P2PRAFT__API_CONSISTENT;
    case P2PRAFT_API_LS:
        return P2PRAFT__API_CONSISTENT | P2PRAFT__API_KEYS_ONLY;
    case P2PRAFT_API_TRANSFER:
        return P2PRAFT__API_HANDOVER;
    default:
        return 0;
    }
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

/* A key field: 1 (0 for a prefix or `after`) to P2PRAFT_KV_KEY_MAX bytes,
 * no NUL. */
static int take_key(const uint8_t **p, const uint8_t *end, char **out,
                    bool may_be_empty, const char *what, char *err,
                    size_t errlen)
{
    size_t klen = 0;
    if (take_field(p, end, P2PRAFT_KV_KEY_MAX, (uint8_t **)out, &klen, what,
                   err, errlen) != 0) {
        return -1;
    }
    if ((klen == 0 && !may_be_empty) || memchr(*out, '\0', klen) != NULL) {
        snprintf(err, errlen, "a %s is %d to %d bytes without NUL", what,
                 may_be_empty ? 0 : 1, P2PRAFT_KV_KEY_MAX);
        return -1;
    }
    return 0;
}

int p2praft__api_request_parse(struct p2praft__api_req *r, const uint8_t *body,
                               size_t len, char *err, size_t errlen)
{
    const uint8_t *p = body, *end = body + len;
    if (len > 0) {
        r->version = p[P2PRAFT__API_REQ_VERSION];
        if (r->version != P2PRAFT__API_VERSION) {
            snprintf(err, errlen,
                     "unsupported API version %u: this node speaks version "
                     "%d; use a p2praft client of the same release",
                     r->version, P2PRAFT__API_VERSION);
            return -1;
        }
    }
    if (len < P2PRAFT__API_REQ_FIELDS) {
        snprintf(err, errlen, "truncated request (%zu bytes)", len);
        return -1;
    }
    r->op = p[P2PRAFT__API_REQ_OP];
    r->flags = p[P2PRAFT__API_REQ_FLAGS];
    r->id = lp2p__get32(p + P2PRAFT__API_REQ_ID);
    p += P2PRAFT__API_REQ_FIELDS;
    if ((r->op < P2PRAFT_API_GET || r->op > P2PRAFT_API_HELLO) &&
        !p2praft__api_is_operator(r->op) &&
        r->op != P2PRAFT_API_SNAPSHOT_NOW && !p2praft__api_is_member(r->op)) {
        snprintf(err, errlen, "unknown operation %u", r->op);
        return -1;
    }
    if ((r->flags & ~(unsigned)allowed_flags(r->op)) != 0) {
        snprintf(err, errlen, "unknown flags 0x%02x for operation %u",
                 r->flags, r->op);
        return -1;
    }
    if (has_word(r->op)) {
        if (end - p < 4) {
            snprintf(err, errlen, "truncated request: %s missing",
                     r->op == P2PRAFT_API_LS ? "limit" : "watch ID");
            return -1;
        }
        if (r->op == P2PRAFT_API_LS) {
            r->limit = lp2p__get32(p);
        } else {
            r->target = lp2p__get32(p);
        }
        p += 4;
    }
    if (has_key(r->op) &&
        take_key(&p, end, &r->key, key_is_prefix(r->op),
                 p2praft__api_is_member(r->op) ? "membership argument"
                 : key_is_prefix(r->op)        ? "prefix"
                                               : "key",
                 err, errlen) != 0) {
        return -1;
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
    if (r->op == P2PRAFT_API_LS &&
        take_key(&p, end, &r->after, true, "start key", err, errlen) != 0) {
        return -1;
    }
    /* SNAPSHOT: an optional cursor, for a paged backup (backup.h). */
    if (r->op == P2PRAFT_API_SNAPSHOT && p != end &&
        take_key(&p, end, &r->key, true, "backup cursor", err, errlen) != 0) {
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
    lp2p__free(r->after);
    r->key = r->after = NULL;
    r->val = r->exp = NULL;
    r->vlen = r->elen = 0;
}

uint8_t *p2praft__api_request_encode(const struct p2praft__api_req *r,
                                     size_t *len)
{
    struct lp2p_buf b;
    uint8_t hdr[P2PRAFT__API_PREFIX + P2PRAFT__API_REQ_FIELDS + 4] = {0};
    uint8_t *h = hdr + P2PRAFT__API_PREFIX;
    size_t hlen = P2PRAFT__API_PREFIX + P2PRAFT__API_REQ_FIELDS;
    int rv;
    h[P2PRAFT__API_REQ_VERSION] = P2PRAFT__API_VERSION;
    h[P2PRAFT__API_REQ_OP] = r->op;
    h[P2PRAFT__API_REQ_FLAGS] = r->flags;
    lp2p__put32(h + P2PRAFT__API_REQ_ID, r->id);
    if (has_word(r->op)) {
        lp2p__put32(h + P2PRAFT__API_REQ_FIELDS,
                    r->op == P2PRAFT_API_LS ? r->limit : r->target);
        hlen += 4;
    }
    lp2p__buf_init(&b);
    rv = lp2p__buf_reserve(&b, hlen + 4 * P2PRAFT__API_FIELD_PREFIX +
                                   (r->key != NULL ? strlen(r->key) : 0) +
                                   r->elen + r->vlen +
                                   (r->after != NULL ? strlen(r->after) : 0));
    if (rv == 0) {
        rv = lp2p__buf_append(&b, hdr, hlen);
    }
    if (rv == 0 && has_key(r->op)) {
        rv = p2praft__api_put_field(&b, r->key,
                                    r->key != NULL ? strlen(r->key) : 0);
    }
    if (rv == 0 && has_expected(r->op)) {
        rv = p2praft__api_put_field(&b, r->exp, r->elen);
    }
    if (rv == 0 && has_value(r->op)) {
        rv = p2praft__api_put_field(&b, r->val, r->vlen);
    }
    if (rv == 0 && r->op == P2PRAFT_API_LS) {
        rv = p2praft__api_put_field(&b, r->after,
                                    r->after != NULL ? strlen(r->after) : 0);
    }
    if (rv == 0 && r->op == P2PRAFT_API_SNAPSHOT && r->key != NULL) {
        rv = p2praft__api_put_field(&b, r->key, strlen(r->key));
    }
    if (rv != 0) {
        lp2p__buf_free(&b);
        return NULL;
    }
    p2praft__api_frame_prefix(b.data, (uint32_t)(b.len - P2PRAFT__API_PREFIX));
    return lp2p__buf_detach(&b, len);
}

/* ---- responses ----------------------------------------------------------- */

uint8_t *p2praft__api_response_encode(uint8_t status, uint32_t id,
                                      uint64_t index, const void *payload,
                                      size_t plen, size_t *len)
{
    struct lp2p_buf b;
    size_t start;
    lp2p__buf_init(&b);
    if (lp2p__buf_reserve(&b, P2PRAFT__API_PREFIX + P2PRAFT__API_RESP_PAYLOAD +
                                  plen) != 0) {
        return NULL;
    }
    start = p2praft__api_frame_start(&b, P2PRAFT_API_ANSWER, status, id,
                                     index);
    if (start == (size_t)-1 ||
        (plen > 0 && lp2p__buf_append(&b, payload, plen) != 0)) {
        lp2p__buf_free(&b);
        return NULL;
    }
    p2praft__api_frame_end(&b, start);
    return lp2p__buf_detach(&b, len);
}

uint8_t *p2praft__api_v1_answer_encode(uint8_t status, const char *msg,
                                       size_t *len)
{
    size_t mlen = strlen(msg);
    size_t body = P2PRAFT__API_V1_PAYLOAD + mlen;
    uint8_t *f = lp2p__calloc(1, P2PRAFT__API_PREFIX + body), *b;
    if (f == NULL) {
        return NULL;
    }
    b = f + P2PRAFT__API_PREFIX;
    p2praft__api_frame_prefix(f, (uint32_t)body);
    b[0] = P2PRAFT__API_VERSION_1;
    b[P2PRAFT__API_V1_STATUS] = status;
    memcpy(b + P2PRAFT__API_V1_PAYLOAD, msg, mlen);
    *len = P2PRAFT__API_PREFIX + body;
    return f;
}

int p2praft__api_event_encode(struct lp2p_buf *b, uint8_t kind, uint32_t id,
                              uint64_t index, const char *key, size_t klen,
                              const void *val, size_t vlen, uint64_t count)
{
    size_t old = b->len, start;
    int rv = lp2p__buf_reserve(b, P2PRAFT__API_PREFIX +
                                      P2PRAFT__API_RESP_PAYLOAD +
                                      2 * P2PRAFT__API_FIELD_PREFIX + klen +
                                      vlen + 8);
    if (rv != 0) {
        return rv;
    }
    start = p2praft__api_frame_start(b, P2PRAFT_API_EVENT, kind, id, index);
    switch (kind) {
    case P2PRAFT_WATCH_SET:
    case P2PRAFT_WATCH_CAS:
        rv = p2praft__api_put_field(b, key, klen);
        if (rv == 0) {
            rv = p2praft__api_put_field(b, val, vlen);
        }
        break;
    case P2PRAFT_WATCH_DEL:
        rv = p2praft__api_put_field(b, key, klen);
        break;
    case P2PRAFT_WATCH_DROPPED: {
        uint8_t c[8];
        lp2p__put64(c, count);
        rv = lp2p__buf_append(b, c, sizeof(c));
        break;
    }
    default:
        break;
    }
    if (rv != 0) {
        b->len = old;
        return rv;
    }
    p2praft__api_frame_end(b, start);
    return 0;
}

int p2praft__api_response_parse(struct p2praft__api_resp *out,
                                const uint8_t *body, size_t len)
{
    memset(out, 0, sizeof(*out));
    if (len < 1) {
        return LP2P_EPROTO;
    }
    out->version = body[0];
    if (out->version == P2PRAFT__API_VERSION_1) {
        if (len < P2PRAFT__API_V1_PAYLOAD) {
            return LP2P_EPROTO;
        }
        out->type = P2PRAFT_API_ANSWER;
        out->status = body[P2PRAFT__API_V1_STATUS];
        out->index = lp2p__get64(body + P2PRAFT__API_V1_INDEX);
        out->payload = body + P2PRAFT__API_V1_PAYLOAD;
        out->len = len - P2PRAFT__API_V1_PAYLOAD;
        return 0;
    }
    if (out->version != P2PRAFT__API_VERSION ||
        len < P2PRAFT__API_RESP_PAYLOAD) {
        return LP2P_EPROTO;
    }
    out->type = body[P2PRAFT__API_RESP_TYPE];
    if (out->type != P2PRAFT_API_ANSWER && out->type != P2PRAFT_API_EVENT) {
        return LP2P_EPROTO;
    }
    out->status = body[P2PRAFT__API_RESP_CODE];
    out->id = lp2p__get32(body + P2PRAFT__API_RESP_ID);
    out->index = lp2p__get64(body + P2PRAFT__API_RESP_INDEX);
    out->payload = body + P2PRAFT__API_RESP_PAYLOAD;
    out->len = len - P2PRAFT__API_RESP_PAYLOAD;
    return 0;
}

/* A field view at *p (bounded by end, at most max bytes). */
static int view_field(const uint8_t **p, const uint8_t *end, size_t max,
                      const uint8_t **out, size_t *len)
{
    uint32_t n;
    if (end - *p < P2PRAFT__API_FIELD_PREFIX) {
        return LP2P_EPROTO;
    }
    n = lp2p__get32(*p);
    *p += P2PRAFT__API_FIELD_PREFIX;
    if (n > max || (size_t)(end - *p) < n) {
        return LP2P_EPROTO;
    }
    *out = *p;
    *len = n;
    *p += n;
    return 0;
}

/* A key view: 1 to P2PRAFT_KV_KEY_MAX bytes without NUL. */
static int view_key(const uint8_t **p, const uint8_t *end, const uint8_t **out,
                    size_t *len)
{
    if (view_field(p, end, P2PRAFT_KV_KEY_MAX, out, len) != 0 || *len == 0 ||
        memchr(*out, '\0', *len) != NULL) {
        return LP2P_EPROTO;
    }
    return 0;
}

int p2praft__api_event_parse(const struct p2praft__api_resp *a,
                             struct p2praft__api_event *ev)
{
    const uint8_t *p = a->payload, *end = a->payload + a->len;
    memset(ev, 0, sizeof(*ev));
    if (a->type != P2PRAFT_API_EVENT) {
        return LP2P_EPROTO;
    }
    ev->kind = a->status;
    switch (ev->kind) {
    case P2PRAFT_WATCH_STARTED:
        break;
    case P2PRAFT_WATCH_SET:
    case P2PRAFT_WATCH_CAS:
        if (view_key(&p, end, &ev->key, &ev->klen) != 0 ||
            view_field(&p, end, P2PRAFT_KV_VALUE_MAX, &ev->val, &ev->vlen) !=
                0) {
            return LP2P_EPROTO;
        }
        break;
    case P2PRAFT_WATCH_DEL:
        if (view_key(&p, end, &ev->key, &ev->klen) != 0) {
            return LP2P_EPROTO;
        }
        break;
    case P2PRAFT_WATCH_DROPPED:
        if (end - p < 8) {
            return LP2P_EPROTO;
        }
        ev->count = lp2p__get64(p);
        p += 8;
        break;
    default:
        return LP2P_EPROTO;
    }
    return p == end ? 0 : LP2P_EPROTO;
}

/* ---- LS pages ------------------------------------------------------------ */

int p2praft__api_ls_put(struct lp2p_buf *b, const char *key, size_t klen,
                        const void *val, size_t vlen)
{
    size_t old = b->len;
    int rv = p2praft__api_put_field(b, key, klen);
    if (rv == 0) {
        rv = p2praft__api_put_field(b, val, vlen);
    }
    if (rv != 0) {
        b->len = old;
    }
    return rv;
}

void p2praft__api_ls_head(uint8_t *payload, bool more, uint32_t count)
{
    payload[0] = more ? 1 : 0;
    lp2p__put32(payload + 1, count);
}

int p2praft__api_ls_parse(const uint8_t *payload, size_t len, bool *more,
                          uint32_t *count,
                          int (*cb)(void *ctx, const uint8_t *key, size_t klen,
                                    const uint8_t *val, size_t vlen),
                          void *ctx)
{
    const uint8_t *p, *end = payload + len, *k, *v;
    size_t klen, vlen;
    uint32_t n, i;
    int pass, rv;
    if (len < P2PRAFT__API_LS_HEAD || payload[0] > 1) {
        return LP2P_EPROTO;
    }
    *more = payload[0] == 1;
    n = lp2p__get32(payload + 1);
    *count = n;
    /* Check the whole page before the first callback, so that a consumer
     * never gets half of a bad page. */
    for (pass = 0; pass < 2; pass++) {
        p = payload + P2PRAFT__API_LS_HEAD;
        for (i = 0; i < n; i++) {
            if (view_key(&p, end, &k, &klen) != 0 ||
                view_field(&p, end, P2PRAFT_KV_VALUE_MAX, &v, &vlen) != 0) {
                return LP2P_EPROTO;
            }
            if (pass == 1 && cb != NULL) {
                rv = cb(ctx, k, klen, v, vlen);
                if (rv != 0) {
                    return rv;
                }
            }
        }
        if (p != end) {
            return LP2P_EPROTO;
        }
    }
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

const char *p2praft__api_status_name(uint8_t status, char *buf, size_t len)
{
    static const char *const names[] = {
        "ok",          "not found", "mismatch", "failed",       "bad request",
        "not leader",  "unknown",   "busy",     "not caught up"};
    if (status < sizeof(names) / sizeof(names[0])) {
        return names[status];
    }
    snprintf(buf, len, "status %u", status);
    return buf;
}

#define BUSY_MSG "busy: too many connections at once; try again later"

/* The BUSY frame is constant: no allocation on the path that refuses work
 * for lack of resources. Arrays of bytes have no padding between them. */
static const struct {
    uint8_t head[P2PRAFT__API_PREFIX + P2PRAFT__API_V1_PAYLOAD];
    char msg[sizeof(BUSY_MSG) - 1];
} busy_frame = {
    {0, 0, 0, (uint8_t)(P2PRAFT__API_V1_PAYLOAD + sizeof(BUSY_MSG) - 1),
     P2PRAFT__API_VERSION_1, P2PRAFT_API_BUSY, 0, 0, 0, 0, 0, 0, 0, 0},
    BUSY_MSG};

_Static_assert(sizeof(busy_frame) == P2PRAFT__API_PREFIX +
                                         P2PRAFT__API_V1_PAYLOAD +
                                         sizeof(BUSY_MSG) - 1,
               "busy frame is packed");

const uint8_t *p2praft__api_busy_frame(size_t *len)
{
    *len = sizeof(busy_frame);
    return (const uint8_t *)&busy_frame;
}
