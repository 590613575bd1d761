#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lp2p.h"
#include "buf.h"
#include "heap.h"
#include "varint.h"

void lp2p__buf_init(struct lp2p_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void lp2p__buf_free(struct lp2p_buf *b)
{
    lp2p__free(b->data);
    lp2p__buf_init(b);
}

int lp2p__buf_reserve(struct lp2p_buf *b, size_t extra)
{
    size_t need, cap;
    uint8_t *p;
    if (extra > (size_t)-1 - b->len) {
        return LP2P_EOVERFLOW;
    }
    need = b->len + extra;
    if (need <= b->cap) {
        return 0;
    }
    cap = b->cap != 0 ? b->cap : 64;
    while (cap < need) {
        cap = cap > (size_t)-1 / 2 ? need : cap * 2;
    }
    p = lp2p__realloc(b->data, cap);
    if (p == NULL) {
        return LP2P_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int lp2p__buf_append(struct lp2p_buf *b, const void *p, size_t n)
{
    int rv;
    if (n == 0) {
        return 0;
    }
    rv = lp2p__buf_reserve(b, n);
    if (rv != 0) {
        return rv;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int lp2p__buf_append_byte(struct lp2p_buf *b, uint8_t byte)
{
    return lp2p__buf_append(b, &byte, 1);
}

int lp2p__buf_printf(struct lp2p_buf *b, const char *fmt, ...)
{
    va_list ap;
    int k, rv;
    va_start(ap, fmt);
    k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0) {
        return LP2P_EINVAL;
    }
    rv = lp2p__buf_reserve(b, (size_t)k + 1); /* vsnprintf writes a NUL */
    if (rv != 0) {
        return rv;
    }
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)k;
    return 0;
}

int lp2p__buf_append_varint(struct lp2p_buf *b, uint64_t v)
{
    uint8_t tmp[LP2P_VARINT_MAX];
    size_t n = lp2p__varint_encode(v, tmp);
    if (n == 0) {
        return LP2P_EOVERFLOW;
    }
    return lp2p__buf_append(b, tmp, n);
}

void lp2p__buf_consume(struct lp2p_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

uint8_t *lp2p__buf_detach(struct lp2p_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len != NULL) {
        *len = b->len;
    }
    lp2p__buf_init(b);
    return p;
}
