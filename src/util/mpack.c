/*
 * msgpack primitives: Go's encoding rules for writing, a strict reader, and
 * value framing. See mpack.h.
 */
#include "util/mpack.h"

#include <string.h>

#include "lp2p.h"

/* ---- writing ------------------------------------------------------------ */

int lp2p__mp_put_be(struct lp2p_buf *b, uint8_t tag, uint64_t v, unsigned n)
{
    uint8_t tmp[9];
    unsigned i;
    tmp[0] = tag;
    for (i = 0; i < n; i++) {
        tmp[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    }
    return lp2p__buf_append(b, tmp, 1 + n);
}

int lp2p__mp_put_uint(struct lp2p_buf *b, uint64_t u)
{
    if (u <= 0x7f) {
        return lp2p__buf_append_byte(b, (uint8_t)u);
    }
    if (u <= 0xff) {
        return lp2p__mp_put_be(b, 0xcc, u, 1);
    }
    if (u <= 0xffff) {
        return lp2p__mp_put_be(b, 0xcd, u, 2);
    }
    if (u <= 0xffffffffu) {
        return lp2p__mp_put_be(b, 0xce, u, 4);
    }
    return lp2p__mp_put_be(b, 0xcf, u, 8);
}

int lp2p__mp_put_int(struct lp2p_buf *b, int64_t i)
{
    if (i > 127) {
        if (i <= 32767) {
            return lp2p__mp_put_be(b, 0xd1, (uint64_t)i, 2);
        }
        if (i <= 2147483647) {
            return lp2p__mp_put_be(b, 0xd2, (uint64_t)i, 4);
        }
        return lp2p__mp_put_be(b, 0xd3, (uint64_t)i, 8);
    }
    if (i >= -32) {
        return lp2p__buf_append_byte(b, (uint8_t)(int8_t)i);
    }
    if (i >= -128) {
        return lp2p__mp_put_be(b, 0xd0, (uint64_t)i & 0xff, 1);
    }
    if (i >= -32768) {
        return lp2p__mp_put_be(b, 0xd1, (uint64_t)i & 0xffff, 2);
    }
    if (i >= -2147483647 - 1) {
        return lp2p__mp_put_be(b, 0xd2, (uint64_t)i & 0xffffffffu, 4);
    }
    return lp2p__mp_put_be(b, 0xd3, (uint64_t)i, 8);
}

int lp2p__mp_put_nil(struct lp2p_buf *b)
{
    return lp2p__buf_append_byte(b, 0xc0);
}

int lp2p__mp_put_bool(struct lp2p_buf *b, bool v)
{
    return lp2p__buf_append_byte(b, v ? 0xc3 : 0xc2);
}

int lp2p__mp_put_raw_hdr(struct lp2p_buf *b, size_t len)
{
    if (len < 32) {
        return lp2p__buf_append_byte(b, (uint8_t)(0xa0 | len));
    }
    if (len <= 0xffff) {
        return lp2p__mp_put_be(b, 0xda, len, 2);
    }
    if ((uint64_t)len <= 0xffffffffu) {
        return lp2p__mp_put_be(b, 0xdb, len, 4);
    }
    return LP2P_ETOOBIG;
}

int lp2p__mp_put_raw(struct lp2p_buf *b, const void *p, size_t len)
{
    int rv = lp2p__mp_put_raw_hdr(b, len);
    if (rv != 0 || len == 0) {
        return rv;
    }
    return lp2p__buf_append(b, p, len);
}

static int put_container_hdr(struct lp2p_buf *b, size_t n, uint8_t fix,
                             uint8_t t16, uint8_t t32)
{
    if (n < 16) {
        return lp2p__buf_append_byte(b, (uint8_t)(fix | n));
    }
    if (n <= 0xffff) {
        return lp2p__mp_put_be(b, t16, n, 2);
    }
    if ((uint64_t)n <= 0xffffffffu) {
        return lp2p__mp_put_be(b, t32, n, 4);
    }
    return LP2P_ETOOBIG;
}

int lp2p__mp_put_array_hdr(struct lp2p_buf *b, size_t n)
{
    return put_container_hdr(b, n, 0x90, 0xdc, 0xdd);
}

int lp2p__mp_put_map_hdr(struct lp2p_buf *b, size_t n)
{
    return put_container_hdr(b, n, 0x80, 0xde, 0xdf);
}

/* ---- headers -------------------------------------------------------------- */

enum mp_kind {
    MP_NIL,
    MP_BOOL,
    MP_UINT,
    MP_NEGINT,
    MP_FLOAT,
    MP_RAW,
    MP_EXT,
    MP_ARRAY,
    MP_MAP
};

struct mp_hdr {
    enum mp_kind kind;
    uint64_t u;    /* UINT value; RAW/EXT payload length; ARRAY/MAP count */
    int64_t s;     /* NEGINT value */
    size_t skip;   /* payload bytes that follow the header (FLOAT, RAW, EXT) */
    bool truthy;   /* BOOL value */
};

static uint64_t be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    unsigned i;
    for (i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Parse the header at p[0..len): 0 and *used bytes, LP2P_EAGAIN if the
 * header itself is cut, LP2P_EMALFORMED on 0xc1. Payload bytes are not
 * checked here. */
static int parse_hdr(const uint8_t *p, size_t len, struct mp_hdr *h,
                     size_t *used)
{
    uint8_t t;
    unsigned n = 0; /* length bytes after the tag */
    if (len < 1) {
        return LP2P_EAGAIN;
    }
    t = p[0];
    memset(h, 0, sizeof(*h));
    if (t <= 0x7f) {
        h->kind = MP_UINT;
        h->u = t;
    } else if (t <= 0x8f) {
        h->kind = MP_MAP;
        h->u = t & 0x0f;
    } else if (t <= 0x9f) {
        h->kind = MP_ARRAY;
        h->u = t & 0x0f;
    } else if (t <= 0xbf) {
        h->kind = MP_RAW;
        h->u = t & 0x1f;
    } else if (t >= 0xe0) {
        h->kind = MP_NEGINT;
        h->s = (int8_t)t;
    } else {
        switch (t) {
        case 0xc0:
            h->kind = MP_NIL;
            break;
        case 0xc1:
            return LP2P_EMALFORMED;
        case 0xc2:
        case 0xc3:
            h->kind = MP_BOOL;
            h->truthy = t == 0xc3;
            break;
        case 0xc4: case 0xc5: case 0xc6:
            h->kind = MP_RAW;
            n = 1u << (t - 0xc4);
            break;
        case 0xc7: case 0xc8: case 0xc9:
            h->kind = MP_EXT;
            n = 1u << (t - 0xc7);
            break;
        case 0xca:
            h->kind = MP_FLOAT;
            h->skip = 4;
            break;
        case 0xcb:
            h->kind = MP_FLOAT;
            h->skip = 8;
            break;
        case 0xcc: case 0xcd: case 0xce: case 0xcf:
            h->kind = MP_UINT;
            n = 1u << (t - 0xcc);
            break;
        case 0xd0: case 0xd1: case 0xd2: case 0xd3:
            h->kind = MP_NEGINT; /* fixed below when not negative */
            n = 1u << (t - 0xd0);
            break;
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
            h->kind = MP_EXT;
            h->u = 1u << (t - 0xd4);
            h->skip = (size_t)h->u + 1; /* type byte and data */
            break;
        case 0xd9: case 0xda: case 0xdb:
            h->kind = MP_RAW;
            n = 1u << (t - 0xd9);
            break;
        case 0xdc: case 0xdd:
            h->kind = MP_ARRAY;
            n = t == 0xdc ? 2 : 4;
            break;
        default: /* 0xde, 0xdf */
            h->kind = MP_MAP;
            n = t == 0xde ? 2 : 4;
            break;
        }
    }
    if (len < 1 + (size_t)n) {
        return LP2P_EAGAIN;
    }
    if (n > 0) {
        uint64_t v = be(p + 1, n);
        if (t >= 0xd0 && t <= 0xd3) {
            int64_t x = n == 1 ? (int8_t)v
                        : n == 2 ? (int16_t)v
                        : n == 4 ? (int32_t)v
                                 : (int64_t)v;
            if (x < 0) {
                h->s = x;
            } else {
                h->kind = MP_UINT;
                h->u = (uint64_t)x;
            }
        } else {
            h->u = v;
        }
        if (h->kind == MP_RAW) {
            h->skip = (size_t)h->u;
        } else if (h->kind == MP_EXT) {
            h->skip = (size_t)h->u + 1;
        }
    } else if (h->kind == MP_RAW) {
        h->skip = (size_t)h->u;
    }
    *used = 1 + n;
    return 0;
}

/* Read a header at the cursor, with its payload (if any) inside the buffer. */
static int get_hdr(struct lp2p_mp_cur *c, struct mp_hdr *h)
{
    size_t used;
    int rv = parse_hdr(c->p, lp2p__mp_left(c), h, &used);
    if (rv == LP2P_EAGAIN) {
        return LP2P_ETRUNCATED;
    }
    if (rv != 0) {
        return rv;
    }
    if (h->skip > lp2p__mp_left(c) - used) {
        return LP2P_ETRUNCATED;
    }
    c->p += used;
    return 0;
}

/* ---- reading ------------------------------------------------------------ */

bool lp2p__mp_peek_nil(const struct lp2p_mp_cur *c)
{
    return c->p < c->end && *c->p == 0xc0;
}

int lp2p__mp_get_nil(struct lp2p_mp_cur *c)
{
    if (c->p >= c->end) {
        return LP2P_ETRUNCATED;
    }
    if (*c->p != 0xc0) {
        return *c->p == 0xc1 ? LP2P_EMALFORMED : LP2P_ETYPE;
    }
    c->p++;
    return 0;
}

int lp2p__mp_get_uint(struct lp2p_mp_cur *c, uint64_t *out)
{
    struct lp2p_mp_cur save = *c;
    struct mp_hdr h;
    int rv = get_hdr(c, &h);
    if (rv != 0) {
        return rv;
    }
    if (h.kind == MP_UINT) {
        *out = h.u;
        return 0;
    }
    *c = save;
    return h.kind == MP_NEGINT ? LP2P_EOVERFLOW : LP2P_ETYPE;
}

int lp2p__mp_get_int(struct lp2p_mp_cur *c, int64_t *out)
{
    struct lp2p_mp_cur save = *c;
    struct mp_hdr h;
    int rv = get_hdr(c, &h);
    if (rv != 0) {
        return rv;
    }
    if (h.kind == MP_NEGINT) {
        *out = h.s;
        return 0;
    }
    if (h.kind == MP_UINT && h.u <= (uint64_t)INT64_MAX) {
        *out = (int64_t)h.u;
        return 0;
    }
    *c = save;
    return h.kind == MP_UINT ? LP2P_EOVERFLOW : LP2P_ETYPE;
}

int lp2p__mp_get_bool(struct lp2p_mp_cur *c, bool *out)
{
    struct lp2p_mp_cur save = *c;
    struct mp_hdr h;
    int rv = get_hdr(c, &h);
    if (rv != 0) {
        return rv;
    }
    if (h.kind != MP_BOOL) {
        *c = save;
        return LP2P_ETYPE;
    }
    *out = h.truthy;
    return 0;
}

int lp2p__mp_get_raw(struct lp2p_mp_cur *c, bool nil_ok, const uint8_t **p,
                     size_t *len)
{
    struct lp2p_mp_cur save = *c;
    struct mp_hdr h;
    int rv = get_hdr(c, &h);
    if (rv != 0) {
        return rv;
    }
    if (h.kind == MP_NIL && nil_ok) {
        *p = NULL;
        *len = 0;
        return 0;
    }
    if (h.kind != MP_RAW) {
        *c = save;
        return LP2P_ETYPE;
    }
    *p = c->p;
    *len = h.skip;
    c->p += h.skip;
    return 0;
}

int lp2p__mp_get_array_hdr(struct lp2p_mp_cur *c, bool nil_ok, size_t *n,
                           bool *nil)
{
    struct lp2p_mp_cur save = *c;
    struct mp_hdr h;
    int rv = get_hdr(c, &h);
    if (rv != 0) {
        return rv;
    }
    if (h.kind == MP_NIL && nil_ok) {
        *n = 0;
        *nil = true;
        return 0;
    }
    if (h.kind != MP_ARRAY) {
        *c = save;
        return LP2P_ETYPE;
    }
    if (h.u > lp2p__mp_left(c)) {
        *c = save;
        return LP2P_ETRUNCATED;
    }
    *n = (size_t)h.u;
    if (nil != NULL) {
        *nil = false;
    }
    return 0;
}

int lp2p__mp_get_map_hdr(struct lp2p_mp_cur *c, size_t *n)
{
    struct lp2p_mp_cur save = *c;
    struct mp_hdr h;
    int rv = get_hdr(c, &h);
    if (rv != 0) {
        return rv;
    }
    if (h.kind != MP_MAP) {
        *c = save;
        return LP2P_ETYPE;
    }
    if (h.u > lp2p__mp_left(c) / 2) {
        *c = save;
        return LP2P_ETRUNCATED;
    }
    *n = (size_t)h.u;
    return 0;
}

int lp2p__mp_value_len(const uint8_t *p, size_t len, size_t max, size_t *out)
{
    uint64_t pending = 1;
    size_t pos = 0;
    if (len > max) {
        len = max;
    }
    while (pending > 0) {
        struct mp_hdr h;
        size_t used;
        int rv = parse_hdr(p + pos, len - pos, &h, &used);
        if (rv == LP2P_EAGAIN) {
            return len == max ? LP2P_ETOOBIG : LP2P_EAGAIN;
        }
        if (rv != 0) {
            return rv;
        }
        pending--;
        pos += used;
        if (h.skip > max - pos) {
            return LP2P_ETOOBIG;
        }
        if (h.skip > len - pos) {
            return LP2P_EAGAIN;
        }
        pos += h.skip;
        if (h.kind == MP_ARRAY || h.kind == MP_MAP) {
            uint64_t items = h.kind == MP_MAP ? 2 * h.u : h.u;
            /* Each pending item needs at least one more byte. */
            if (items > (uint64_t)(max - pos) ||
                pending + items > (uint64_t)(max - pos)) {
                return LP2P_ETOOBIG;
            }
            pending += items;
        }
    }
    *out = pos;
    return 0;
}

int lp2p__mp_skip(struct lp2p_mp_cur *c)
{
    size_t n;
    int rv = lp2p__mp_value_len(c->p, lp2p__mp_left(c), lp2p__mp_left(c), &n);
    if (rv == LP2P_EAGAIN || rv == LP2P_ETOOBIG) {
        return LP2P_ETRUNCATED;
    }
    if (rv != 0) {
        return rv;
    }
    c->p += n;
    return 0;
}
