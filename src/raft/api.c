/* The API request codec shared by the unix socket and the forward
 * protocol (format: p2praft.h, cluster node section). */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "raft/api.h"
#include "util/heap.h"

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Read one field at *p (bounded by end) into a fresh copy. */
static int take_field(const uint8_t **p, const uint8_t *end, size_t max,
                      uint8_t **out, size_t *len, const char *what,
                      char *err, size_t errlen)
{
    uint32_t n;
    if (end - *p < 4) {
        snprintf(err, errlen, "truncated request: %s missing", what);
        return -1;
    }
    n = get32(*p);
    *p += 4;
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

/* Parse a request body into `r`. 0, or -1 with a message in err. */
int p2praft__api_parse(struct p2praft__api_req *r, const uint8_t *body,
                      size_t len, char *err, size_t errlen)
{
    const uint8_t *p = body, *end = body + len;
    size_t klen = 0;
    if (len < 3) {
        snprintf(err, errlen, "truncated request (%zu bytes)", len);
        return -1;
    }
    if (p[0] != 1) {
        snprintf(err, errlen, "unsupported request version %u", p[0]);
        return -1;
    }
    r->op = p[1];
    r->flags = p[2];
    p += 3;
    if (r->op < P2PRAFT_API_GET || r->op > P2PRAFT_API_BARRIER) {
        snprintf(err, errlen, "unknown operation %u", r->op);
        return -1;
    }
    if ((r->flags & ~1u) != 0 ||
        (r->flags != 0 && r->op != P2PRAFT_API_GET)) {
        snprintf(err, errlen, "unknown flags 0x%02x", r->flags);
        return -1;
    }
    if (r->op != P2PRAFT_API_STATUS && r->op != P2PRAFT_API_BARRIER) {
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
    if (r->op == P2PRAFT_API_CAS &&
        take_field(&p, end, P2PRAFT_KV_VALUE_MAX, &r->exp, &r->elen,
                   "expected value", err, errlen) != 0) {
        return -1;
    }
    if ((r->op == P2PRAFT_API_SET || r->op == P2PRAFT_API_CAS) &&
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

static bool has_key(uint8_t op)
{
    return op != P2PRAFT_API_STATUS && op != P2PRAFT_API_BARRIER;
}

size_t p2praft__api_encoded_len(const struct p2praft__api_req *r)
{
    size_t n = 3;
    if (has_key(r->op)) {
        n += 4 + (r->key != NULL ? strlen(r->key) : 0);
    }
    if (r->op == P2PRAFT_API_CAS) {
        n += 4 + r->elen;
    }
    if (r->op == P2PRAFT_API_SET || r->op == P2PRAFT_API_CAS) {
        n += 4 + r->vlen;
    }
    return n;
}

static uint8_t *put_field(uint8_t *p, const void *data, size_t len)
{
    put32(p, (uint32_t)len);
    if (len > 0) {
        memcpy(p + 4, data, len);
    }
    return p + 4 + len;
}

size_t p2praft__api_encode(const struct p2praft__api_req *r, uint8_t *out,
                           size_t cap)
{
    size_t klen = r->key != NULL ? strlen(r->key) : 0, len;
    uint8_t *p = out;
    if (r->op < P2PRAFT_API_GET || r->op > P2PRAFT_API_BARRIER ||
        (r->flags & ~1u) != 0 ||
        (r->flags != 0 && r->op != P2PRAFT_API_GET) ||
        (has_key(r->op) && (klen == 0 || klen > P2PRAFT_KV_KEY_MAX)) ||
        r->elen > P2PRAFT_KV_VALUE_MAX || r->vlen > P2PRAFT_KV_VALUE_MAX ||
        (r->elen > 0 && r->exp == NULL) || (r->vlen > 0 && r->val == NULL)) {
        return 0;
    }
    len = p2praft__api_encoded_len(r);
    if (len > cap) {
        return 0;
    }
    *p++ = 1;
    *p++ = r->op;
    *p++ = r->flags;
    if (has_key(r->op)) {
        p = put_field(p, r->key, klen);
    }
    if (r->op == P2PRAFT_API_CAS) {
        p = put_field(p, r->exp, r->elen);
    }
    if (r->op == P2PRAFT_API_SET || r->op == P2PRAFT_API_CAS) {
        p = put_field(p, r->val, r->vlen);
    }
    return (size_t)(p - out);
}
