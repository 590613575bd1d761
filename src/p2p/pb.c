#include <string.h>

#include "lp2p.h"
#include "pb.h"

#define PB_VARINT_MAX 10

void lp2p__pb_reader_init(struct lp2p_pb_reader *r, const uint8_t *data,
                          size_t len)
{
    r->p = data;
    r->end = data + len;
}

int lp2p__pb_varint(const uint8_t *in, size_t len, uint64_t *v)
{
    uint64_t x = 0;
    size_t i;
    for (i = 0; i < len && i < PB_VARINT_MAX; i++) {
        x |= (uint64_t)(in[i] & 0x7f) << (7 * i);
        if ((in[i] & 0x80) == 0) {
            if (i == PB_VARINT_MAX - 1 && in[i] > 1) {
                return LP2P_EMALFORMED; /* bits beyond 64 */
            }
            *v = x;
            return (int)(i + 1);
        }
    }
    return i == PB_VARINT_MAX ? LP2P_EMALFORMED : LP2P_ETRUNCATED;
}

static int read_le(struct lp2p_pb_reader *r, size_t n, uint64_t *v)
{
    size_t i;
    if ((size_t)(r->end - r->p) < n) {
        return LP2P_ETRUNCATED;
    }
    *v = 0;
    for (i = 0; i < n; i++) {
        *v |= (uint64_t)r->p[i] << (8 * i);
    }
    r->p += n;
    return 0;
}

int lp2p__pb_next(struct lp2p_pb_reader *r, struct lp2p_pb_field *f)
{
    uint64_t key, len;
    int n;
    if (r->p == r->end) {
        return 0;
    }
    n = lp2p__pb_varint(r->p, (size_t)(r->end - r->p), &key);
    if (n < 0) {
        return n;
    }
    r->p += n;
    if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff) {
        return LP2P_EMALFORMED;
    }
    f->num = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    f->u64 = 0;
    f->data = NULL;
    f->len = 0;
    switch (f->wire) {
    case LP2P_PB_VARINT:
        n = lp2p__pb_varint(r->p, (size_t)(r->end - r->p), &f->u64);
        if (n < 0) {
            return n;
        }
        r->p += n;
        return 1;
    case LP2P_PB_FIXED64:
        n = read_le(r, 8, &f->u64);
        return n < 0 ? n : 1;
    case LP2P_PB_FIXED32:
        n = read_le(r, 4, &f->u64);
        return n < 0 ? n : 1;
    case LP2P_PB_LEN:
        n = lp2p__pb_varint(r->p, (size_t)(r->end - r->p), &len);
        if (n < 0) {
            return n;
        }
        r->p += n;
        if (len > (uint64_t)(r->end - r->p)) {
            return LP2P_ETRUNCATED;
        }
        f->data = r->p;
        f->len = (size_t)len;
        r->p += len;
        return 1;
    default:
        return LP2P_EUNSUPPORTED; /* groups (3, 4) and reserved 6, 7 */
    }
}

static int put_raw_varint(struct lp2p_buf *b, uint64_t v)
{
    uint8_t tmp[PB_VARINT_MAX];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    return lp2p__buf_append(b, tmp, n);
}

int lp2p__pb_put_varint(struct lp2p_buf *b, uint32_t num, uint64_t v)
{
    int rv = put_raw_varint(b, ((uint64_t)num << 3) | LP2P_PB_VARINT);
    return rv != 0 ? rv : put_raw_varint(b, v);
}

int lp2p__pb_put_bytes(struct lp2p_buf *b, uint32_t num, const void *p,
                       size_t len)
{
    int rv = put_raw_varint(b, ((uint64_t)num << 3) | LP2P_PB_LEN);
    if (rv == 0) {
        rv = put_raw_varint(b, len);
    }
    if (rv == 0) {
        rv = lp2p__buf_append(b, p, len);
    }
    return rv;
}

int lp2p__pb_put_string(struct lp2p_buf *b, uint32_t num, const char *s)
{
    return lp2p__pb_put_bytes(b, num, s, strlen(s));
}
