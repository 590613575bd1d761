/*
 * The default codec: a static field table <-> a msgpack map keyed by field
 * name, byte for byte what ugorji/go codec (go-libp2p-raft's default, a
 * zero MsgpackHandle) writes for the equivalent exported Go struct.
 *
 * Encoding writes into a growable buffer. Decoding is a bounds-checked
 * pull parser that builds a fresh zeroed value and swaps it into the target
 * only when the whole input was consumed without error, so a failed decode
 * leaves the target untouched and a successful one replaces it completely.
 * Lengths from the wire are checked against the remaining input before any
 * allocation, so a few bytes can never ask for gigabytes.
 */
#include <stdbool.h>
#include <string.h>

#include "p2praft.h"
#include "raft/codec.h"
#include "raft/snapshot.h"
#include "util/buf.h"
#include "util/heap.h"
#include "util/mpack.h"

#define MAX_DEPTH 64

/* ---- sizes and validation --------------------------------------------- */

static size_t kind_size(const struct p2praft_desc *d)
{
    switch (d->kind) {
    case P2PRAFT_KIND_NIL:
        return 1; /* a placeholder byte, so arrays of nil have storage */
    case P2PRAFT_KIND_BOOL:
        return sizeof(bool);
    case P2PRAFT_KIND_INT64:
        return sizeof(int64_t);
    case P2PRAFT_KIND_UINT64:
        return sizeof(uint64_t);
    case P2PRAFT_KIND_DOUBLE:
        return sizeof(double);
    case P2PRAFT_KIND_STRING:
        return sizeof(char *);
    case P2PRAFT_KIND_BYTES:
        return sizeof(struct p2praft_bytes);
    case P2PRAFT_KIND_STRUCT:
        return d->type != NULL ? d->type->size : 0;
    case P2PRAFT_KIND_ARRAY:
        return sizeof(struct p2praft_array);
    case P2PRAFT_KIND_MAP:
        return sizeof(struct p2praft_map);
    }
    return 0;
}

static bool is_custom(const struct p2praft_type *t)
{
    return t->fields == NULL && t->marshal != NULL && t->unmarshal != NULL;
}

/* ---- release ------------------------------------------------------------ */

static void release_struct(const struct p2praft_type *t, void *v);

static void release_value(const struct p2praft_desc *d, void *p)
{
    size_t i, es;
    switch (d->kind) {
    case P2PRAFT_KIND_STRING: {
        char **s = p;
        lp2p__free(*s);
        *s = NULL;
        break;
    }
    case P2PRAFT_KIND_BYTES: {
        struct p2praft_bytes *b = p;
        lp2p__free(b->data);
        b->data = NULL;
        b->len = 0;
        break;
    }
    case P2PRAFT_KIND_STRUCT:
        if (d->type != NULL) {
            release_struct(d->type, p);
        }
        break;
    case P2PRAFT_KIND_ARRAY: {
        struct p2praft_array *a = p;
        es = kind_size(d->elem);
        if (a->items != NULL) {
            for (i = 0; i < a->len; i++) {
                release_value(d->elem, (uint8_t *)a->items + i * es);
            }
        }
        lp2p__free(a->items);
        a->items = NULL;
        a->len = 0;
        break;
    }
    case P2PRAFT_KIND_MAP: {
        struct p2praft_map *m = p;
        es = kind_size(d->elem);
        for (i = 0; i < m->len; i++) {
            if (m->keys != NULL) {
                lp2p__free(m->keys[i]);
            }
            if (m->values != NULL) {
                release_value(d->elem, (uint8_t *)m->values + i * es);
            }
        }
        lp2p__free(m->keys);
        lp2p__free(m->values);
        m->keys = NULL;
        m->values = NULL;
        m->len = 0;
        break;
    }
    default:
        break;
    }
}

static void release_struct(const struct p2praft_type *t, void *v)
{
    size_t i;
    if (t->fields == NULL) {
        if (t->release != NULL) {
            t->release(v);
        }
        memset(v, 0, t->size);
        return;
    }
    for (i = 0; i < t->n_fields; i++) {
        release_value(&t->fields[i].desc, (uint8_t *)v + t->fields[i].offset);
    }
    memset(v, 0, t->size);
}

void p2praft_value_release(const struct p2praft_type *t, void *value)
{
    if (t == NULL || value == NULL) {
        return;
    }
    release_struct(t, value);
}

/* ---- encoding ----------------------------------------------------------- */

/* The msgpack primitives are Go's rules, shared with the raft wire codec:
 * util/mpack.h. */
static int encode_struct(const struct p2praft_type *t, const void *v,
                         struct lp2p_buf *b, int depth);

static int encode_value(const struct p2praft_desc *d, const void *p,
                        struct lp2p_buf *b, int depth)
{
    size_t i, es;
    int rv;
    if (depth > MAX_DEPTH) {
        return LP2P_ETOOBIG;
    }
    switch (d->kind) {
    case P2PRAFT_KIND_NIL:
        return lp2p__buf_append_byte(b, 0xc0);
    case P2PRAFT_KIND_BOOL:
        return lp2p__buf_append_byte(b, *(const bool *)p ? 0xc3 : 0xc2);
    case P2PRAFT_KIND_INT64:
        return lp2p__mp_put_int(b, *(const int64_t *)p);
    case P2PRAFT_KIND_UINT64:
        return lp2p__mp_put_uint(b, *(const uint64_t *)p);
    case P2PRAFT_KIND_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, p, sizeof(bits));
        return lp2p__mp_put_be(b, 0xcb, bits, 8);
    }
    case P2PRAFT_KIND_STRING: {
        const char *s = *(char *const *)p;
        return lp2p__mp_put_raw(b, s != NULL ? s : "",
                                s != NULL ? strlen(s) : 0);
    }
    case P2PRAFT_KIND_BYTES: {
        const struct p2praft_bytes *bs = p;
        if (bs->data == NULL) {
            return bs->len == 0 ? lp2p__buf_append_byte(b, 0xc0)
                                : LP2P_EINVAL;
        }
        return lp2p__mp_put_raw(b, bs->data, bs->len);
    }
    case P2PRAFT_KIND_STRUCT:
        if (d->type == NULL || d->type->fields == NULL) {
            return LP2P_EINVAL;
        }
        return encode_struct(d->type, p, b, depth + 1);
    case P2PRAFT_KIND_ARRAY: {
        const struct p2praft_array *a = p;
        if (d->elem == NULL) {
            return LP2P_EINVAL;
        }
        if (a->items == NULL) {
            return a->len == 0 ? lp2p__buf_append_byte(b, 0xc0) : LP2P_EINVAL;
        }
        rv = lp2p__mp_put_array_hdr(b, a->len);
        es = kind_size(d->elem);
        for (i = 0; rv == 0 && i < a->len; i++) {
            rv = encode_value(d->elem, (const uint8_t *)a->items + i * es, b,
                              depth + 1);
        }
        return rv;
    }
    case P2PRAFT_KIND_MAP: {
        const struct p2praft_map *m = p;
        if (d->elem == NULL) {
            return LP2P_EINVAL;
        }
        if (m->keys == NULL) {
            return m->len == 0 ? lp2p__buf_append_byte(b, 0xc0) : LP2P_EINVAL;
        }
        if (m->values == NULL && m->len > 0) {
            return LP2P_EINVAL;
        }
        rv = lp2p__mp_put_map_hdr(b, m->len);
        es = kind_size(d->elem);
        for (i = 0; rv == 0 && i < m->len; i++) {
            const char *k = m->keys[i] != NULL ? m->keys[i] : "";
            rv = lp2p__mp_put_raw(b, k, strlen(k));
            if (rv == 0) {
                rv = encode_value(d->elem, (const uint8_t *)m->values + i * es,
                                  b, depth + 1);
            }
        }
        return rv;
    }
    }
    return LP2P_EINVAL;
}

static int encode_struct(const struct p2praft_type *t, const void *v,
                         struct lp2p_buf *b, int depth)
{
    size_t i;
    int rv = lp2p__mp_put_map_hdr(b, t->n_fields);
    for (i = 0; rv == 0 && i < t->n_fields; i++) {
        const struct p2praft_field *f = &t->fields[i];
        rv = lp2p__mp_put_raw(b, f->name, strlen(f->name));
        if (rv == 0) {
            rv = encode_value(&f->desc, (const uint8_t *)v + f->offset, b,
                              depth);
        }
    }
    return rv;
}

static int buf_write(void *wctx, const void *data, size_t len)
{
    return lp2p__buf_append(wctx, data, len);
}

int p2praft__encode_append(const struct p2praft_type *t, const void *value,
                           struct lp2p_buf *b)
{
    if (t == NULL || value == NULL) {
        return LP2P_EINVAL;
    }
    if (is_custom(t)) {
        return t->marshal(value, buf_write, b);
    }
    if (t->fields == NULL) {
        return LP2P_EINVAL;
    }
    return encode_struct(t, value, b, 0);
}

int p2praft_encode(const struct p2praft_type *t, const void *value,
                   uint8_t **out, size_t *len)
{
    struct lp2p_buf b;
    int rv;
    if (out == NULL || len == NULL) {
        return LP2P_EINVAL;
    }
    lp2p__buf_init(&b);
    rv = p2praft__encode_append(t, value, &b);
    if (rv != 0) {
        lp2p__buf_free(&b);
        return rv;
    }
    if (b.data == NULL) {
        /* A custom marshal hook wrote nothing: still return a buffer. */
        rv = lp2p__buf_reserve(&b, 1);
        if (rv != 0) {
            return rv;
        }
    }
    *out = lp2p__buf_detach(&b, len);
    return 0;
}

int p2praft_encode_snapshot(const struct p2praft_type *t, const void *state,
                            uint8_t **out, size_t *len)
{
    return p2praft_encode(t, state, out, len);
}

void p2praft_free(void *p)
{
    lp2p__free(p);
}

void *p2praft_malloc(size_t size)
{
    return lp2p__malloc(size);
}

void *p2praft_calloc(size_t n, size_t size)
{
    return lp2p__calloc(n, size);
}

char *p2praft_strdup(const char *s)
{
    return lp2p__strdup(s);
}

/* ---- decoding ----------------------------------------------------------- */

struct cur {
    const uint8_t *p;
    const uint8_t *end;
};

static size_t left(const struct cur *c)
{
    return (size_t)(c->end - c->p);
}

static int get_be(struct cur *c, unsigned n, uint64_t *v)
{
    unsigned i;
    if (left(c) < n) {
        return LP2P_ETRUNCATED;
    }
    *v = 0;
    for (i = 0; i < n; i++) {
        *v = (*v << 8) | c->p[i];
    }
    c->p += n;
    return 0;
}

/* Wrong-type reports distinguish invalid msgpack (0xc1) from a valid value
 * of another type. */
static int wrong_type(uint8_t tag)
{
    return tag == 0xc1 ? LP2P_EMALFORMED : LP2P_ETYPE;
}

/* Reads an integer whose tag was already consumed. *neg tells whether the
 * value is negative (then *s holds it), else *u holds it. wrong_type(tag) if
 * `tag` is not an integer tag. */
static int get_int(struct cur *c, uint8_t tag, bool *neg, int64_t *s,
                   uint64_t *u)
{
    uint64_t v;
    int rv;
    if (tag <= 0x7f) {
        *neg = false;
        *u = tag;
        return 0;
    }
    if (tag >= 0xe0) {
        *neg = true;
        *s = (int8_t)tag;
        return 0;
    }
    switch (tag) {
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        rv = get_be(c, 1u << (tag - 0xcc), &v);
        if (rv != 0) {
            return rv;
        }
        *neg = false;
        *u = v;
        return 0;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        unsigned n = 1u << (tag - 0xd0);
        int64_t x;
        rv = get_be(c, n, &v);
        if (rv != 0) {
            return rv;
        }
        if (n == 1) {
            x = (int8_t)v;
        } else if (n == 2) {
            x = (int16_t)v;
        } else if (n == 4) {
            x = (int32_t)v;
        } else {
            x = (int64_t)v;
        }
        *neg = x < 0;
        if (x < 0) {
            *s = x;
        } else {
            *u = (uint64_t)x;
        }
        return 0;
    }
    default:
        return wrong_type(tag);
    }
}

/* String or binary header (tag consumed): 0 with *len, or wrong_type(tag)
 * if not one. */
static int get_str_len(struct cur *c, uint8_t tag, size_t *len)
{
    uint64_t v;
    int rv;
    if (tag >= 0xa0 && tag <= 0xbf) {
        *len = tag & 0x1f;
        return *len > left(c) ? LP2P_ETRUNCATED : 0;
    }
    switch (tag) {
    case 0xd9:
    case 0xc4:
        rv = get_be(c, 1, &v);
        break;
    case 0xda:
    case 0xc5:
        rv = get_be(c, 2, &v);
        break;
    case 0xdb:
    case 0xc6:
        rv = get_be(c, 4, &v);
        break;
    default:
        return wrong_type(tag);
    }
    if (rv != 0) {
        return rv;
    }
    if (v > left(c)) {
        return LP2P_ETRUNCATED;
    }
    *len = (size_t)v;
    return 0;
}

/* Array or map header (tag consumed; `fix` the fixed form's high nibble,
 * t16 and t32 the longer forms' tags): 0 with *n, or wrong_type(tag) if
 * not one. */
static int get_container_len(struct cur *c, uint8_t tag, uint8_t fix,
                             uint8_t t16, uint8_t t32, size_t *n)
{
    uint64_t v;
    int rv;
    if ((tag & 0xf0) == fix) {
        *n = tag & 0x0f;
        return 0;
    }
    if (tag == t16) {
        rv = get_be(c, 2, &v);
    } else if (tag == t32) {
        rv = get_be(c, 4, &v);
    } else {
        return wrong_type(tag);
    }
    if (rv != 0) {
        return rv;
    }
    *n = (size_t)v;
    return 0;
}

/* A string of `len` bytes at the cursor, copied with a NUL. */
static int take_cstr(struct cur *c, size_t len, char **out)
{
    char *s;
    if (memchr(c->p, 0, len) != NULL) {
        return LP2P_EMALFORMED;
    }
    s = lp2p__malloc(len + 1);
    if (s == NULL) {
        return LP2P_ENOMEM;
    }
    memcpy(s, c->p, len);
    s[len] = '\0';
    c->p += len;
    *out = s;
    return 0;
}

static int decode_struct(const struct p2praft_type *t, struct cur *c, void *v,
                         int depth);

/* Decode one value into zeroed storage p. On error p may hold partial data:
 * the caller releases the enclosing value. */
static int decode_value(const struct p2praft_desc *d, struct cur *c, void *p,
                        int depth)
{
    uint8_t tag;
    size_t n, i, es;
    int rv;
    if (depth > MAX_DEPTH) {
        return LP2P_ETOOBIG;
    }
    if (left(c) < 1) {
        return LP2P_ETRUNCATED;
    }
    tag = *c->p;
    if (tag == 0xc0) {
        /* nil decodes to the zero value of every kind, as in Go. */
        c->p++;
        return 0;
    }
    if (d->kind == P2PRAFT_KIND_STRUCT) {
        if (d->type == NULL || d->type->fields == NULL) {
            return LP2P_EINVAL;
        }
        return decode_struct(d->type, c, p, depth + 1);
    }
    c->p++;
    switch (d->kind) {
    case P2PRAFT_KIND_NIL:
        return wrong_type(tag);
    case P2PRAFT_KIND_BOOL:
        if (tag != 0xc2 && tag != 0xc3) {
            return wrong_type(tag);
        }
        *(bool *)p = tag == 0xc3;
        return 0;
    case P2PRAFT_KIND_INT64:
    case P2PRAFT_KIND_UINT64: {
        bool neg;
        int64_t s = 0;
        uint64_t u = 0;
        rv = get_int(c, tag, &neg, &s, &u);
        if (rv != 0) {
            return rv;
        }
        if (d->kind == P2PRAFT_KIND_INT64) {
            if (!neg && u > (uint64_t)INT64_MAX) {
                return LP2P_ETYPE;
            }
            *(int64_t *)p = neg ? s : (int64_t)u;
        } else {
            if (neg) {
                return LP2P_ETYPE;
            }
            *(uint64_t *)p = u;
        }
        return 0;
    }
    case P2PRAFT_KIND_DOUBLE: {
        uint64_t bits;
        if (tag == 0xcb) {
            rv = get_be(c, 8, &bits);
            if (rv == 0) {
                memcpy(p, &bits, sizeof(double));
            }
            return rv;
        }
        if (tag == 0xca) {
            float f;
            uint32_t b32;
            rv = get_be(c, 4, &bits);
            if (rv == 0) {
                b32 = (uint32_t)bits;
                memcpy(&f, &b32, sizeof(f));
                *(double *)p = (double)f;
            }
            return rv;
        }
        return wrong_type(tag);
    }
    case P2PRAFT_KIND_STRING:
        rv = get_str_len(c, tag, &n);
        if (rv != 0) {
            return rv;
        }
        return take_cstr(c, n, (char **)p);
    case P2PRAFT_KIND_BYTES: {
        struct p2praft_bytes *b = p;
        rv = get_str_len(c, tag, &n);
        if (rv != 0) {
            return rv;
        }
        /* Non-NULL even when empty: "" and nil stay distinct. */
        b->data = lp2p__malloc(n > 0 ? n : 1);
        if (b->data == NULL) {
            return LP2P_ENOMEM;
        }
        memcpy(b->data, c->p, n);
        b->len = n;
        c->p += n;
        return 0;
    }
    case P2PRAFT_KIND_ARRAY: {
        struct p2praft_array *a = p;
        if (d->elem == NULL) {
            return LP2P_EINVAL;
        }
        rv = get_container_len(c, tag, 0x90, 0xdc, 0xdd, &n);
        if (rv != 0) {
            return rv;
        }
        if (n > left(c)) { /* each element takes at least one byte */
            return LP2P_ETRUNCATED;
        }
        es = kind_size(d->elem);
        a->items = lp2p__calloc(n > 0 ? n : 1, es);
        if (a->items == NULL) {
            return LP2P_ENOMEM;
        }
        a->len = n;
        for (i = 0; i < n; i++) {
            rv = decode_value(d->elem, c, (uint8_t *)a->items + i * es,
                              depth + 1);
            if (rv != 0) {
                return rv;
            }
        }
        return 0;
    }
    case P2PRAFT_KIND_MAP: {
        struct p2praft_map *m = p;
        if (d->elem == NULL) {
            return LP2P_EINVAL;
        }
        rv = get_container_len(c, tag, 0x80, 0xde, 0xdf, &n);
        if (rv != 0) {
            return rv;
        }
        if (n > left(c) / 2) { /* a key and a value: two bytes at least */
            return LP2P_ETRUNCATED;
        }
        es = kind_size(d->elem);
        m->keys = lp2p__calloc(n > 0 ? n : 1, sizeof(char *));
        if (m->keys == NULL) {
            return LP2P_ENOMEM;
        }
        m->values = lp2p__calloc(n > 0 ? n : 1, es);
        if (m->values == NULL) {
            lp2p__free(m->keys);
            m->keys = NULL;
            return LP2P_ENOMEM;
        }
        m->len = n;
        for (i = 0; i < n; i++) {
            size_t klen;
            uint8_t ktag;
            if (left(c) < 1) {
                return LP2P_ETRUNCATED;
            }
            ktag = *c->p++;
            rv = get_str_len(c, ktag, &klen);
            if (rv != 0) {
                return rv;
            }
            rv = take_cstr(c, klen, &m->keys[i]);
            if (rv != 0) {
                return rv;
            }
            rv = decode_value(d->elem, c, (uint8_t *)m->values + i * es,
                              depth + 1);
            if (rv != 0) {
                return rv;
            }
        }
        return 0;
    }
    default:
        return LP2P_EINVAL;
    }
}

static int decode_struct(const struct p2praft_type *t, struct cur *c, void *v,
                         int depth)
{
    uint8_t tag;
    size_t n, i, j, klen;
    int rv;
    if (left(c) < 1) {
        return LP2P_ETRUNCATED;
    }
    tag = *c->p++;
    rv = get_container_len(c, tag, 0x80, 0xde, 0xdf, &n);
    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < n; i++) {
        const struct p2praft_field *f = NULL;
        uint8_t ktag;
        if (left(c) < 1) {
            return LP2P_ETRUNCATED;
        }
        ktag = *c->p++;
        rv = get_str_len(c, ktag, &klen);
        if (rv != 0) {
            return rv;
        }
        for (j = 0; j < t->n_fields; j++) {
            if (strlen(t->fields[j].name) == klen &&
                memcmp(t->fields[j].name, c->p, klen) == 0) {
                f = &t->fields[j];
                break;
            }
        }
        if (f == NULL) {
            return LP2P_EUNKNOWNFIELD;
        }
        c->p += klen;
        /* A repeated key: the last value wins, as in Go. */
        release_value(&f->desc, (uint8_t *)v + f->offset);
        rv = decode_value(&f->desc, c, (uint8_t *)v + f->offset, depth);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

int p2praft__decode_new(const struct p2praft_type *t, const uint8_t *data,
                        size_t len, void **out)
{
    void *tmp;
    int rv;
    if (t == NULL || (data == NULL && len > 0) || t->size == 0) {
        return LP2P_EINVAL;
    }
    tmp = lp2p__calloc(1, t->size);
    if (tmp == NULL) {
        return LP2P_ENOMEM;
    }
    if (is_custom(t)) {
        rv = t->unmarshal(tmp, data, len);
    } else if (t->fields == NULL) {
        rv = LP2P_EINVAL;
    } else {
        struct cur c;
        c.p = data;
        c.end = data + len;
        rv = decode_struct(t, &c, tmp, 0);
        if (rv == 0 && c.p != c.end) {
            rv = LP2P_ETRAILING;
        }
    }
    if (rv != 0) {
        release_struct(t, tmp);
        lp2p__free(tmp);
        return rv;
    }
    *out = tmp;
    return 0;
}

int p2praft_decode(const struct p2praft_type *t, void *value,
                   const uint8_t *data, size_t len)
{
    void *tmp;
    int rv;
    if (value == NULL) {
        return LP2P_EINVAL;
    }
    rv = p2praft__decode_new(t, data, len, &tmp);
    if (rv != 0) {
        return rv;
    }
    release_struct(t, value);
    memcpy(value, tmp, t->size);
    lp2p__free(tmp);
    return 0;
}

int p2praft_decode_snapshot(const struct p2praft_type *t, void *state,
                            const uint8_t *data, size_t len)
{
    /* The raft path: the bytes of a snapshot raft stored or sent carry a
     * frame (raft/snapshot.h) whose checks must pass. Bare bytes are the
     * state's own encoding, as go-libp2p-raft writes it. */
    if (data != NULL && p2praft__snapshot_is_framed(data, len)) {
        const uint8_t *payload;
        size_t plen;
        int rv = p2praft__snapshot_unframe(data, len, &payload, &plen, NULL,
                                           0);
        if (rv != 0) {
            return rv;
        }
        return p2praft_decode(t, state, payload, plen);
    }
    return p2praft_decode(t, state, data, len);
}

/* ---- copies ------------------------------------------------------------- */

static int copy_struct(const struct p2praft_type *t, void *dst,
                       const void *src);

static int copy_value(const struct p2praft_desc *d, void *dst, const void *src)
{
    size_t i, es;
    int rv;
    switch (d->kind) {
    case P2PRAFT_KIND_NIL:
        return 0;
    case P2PRAFT_KIND_BOOL:
    case P2PRAFT_KIND_INT64:
    case P2PRAFT_KIND_UINT64:
    case P2PRAFT_KIND_DOUBLE:
        memcpy(dst, src, kind_size(d));
        return 0;
    case P2PRAFT_KIND_STRING: {
        const char *s = *(char *const *)src;
        if (s == NULL) {
            return 0;
        }
        *(char **)dst = lp2p__strdup(s);
        return *(char **)dst != NULL ? 0 : LP2P_ENOMEM;
    }
    case P2PRAFT_KIND_BYTES: {
        const struct p2praft_bytes *s = src;
        struct p2praft_bytes *o = dst;
        if (s->data == NULL) {
            return 0;
        }
        o->data = lp2p__malloc(s->len > 0 ? s->len : 1);
        if (o->data == NULL) {
            return LP2P_ENOMEM;
        }
        memcpy(o->data, s->data, s->len);
        o->len = s->len;
        return 0;
    }
    case P2PRAFT_KIND_STRUCT:
        if (d->type == NULL) {
            return LP2P_EINVAL;
        }
        return copy_struct(d->type, dst, src);
    case P2PRAFT_KIND_ARRAY: {
        const struct p2praft_array *s = src;
        struct p2praft_array *o = dst;
        if (s->items == NULL) {
            return 0;
        }
        es = kind_size(d->elem);
        o->items = lp2p__calloc(s->len > 0 ? s->len : 1, es);
        if (o->items == NULL) {
            return LP2P_ENOMEM;
        }
        o->len = s->len;
        for (i = 0; i < s->len; i++) {
            rv = copy_value(d->elem, (uint8_t *)o->items + i * es,
                            (const uint8_t *)s->items + i * es);
            if (rv != 0) {
                return rv;
            }
        }
        return 0;
    }
    case P2PRAFT_KIND_MAP: {
        const struct p2praft_map *s = src;
        struct p2praft_map *o = dst;
        if (s->keys == NULL) {
            return 0;
        }
        es = kind_size(d->elem);
        o->keys = lp2p__calloc(s->len > 0 ? s->len : 1, sizeof(char *));
        if (o->keys == NULL) {
            return LP2P_ENOMEM;
        }
        o->values = lp2p__calloc(s->len > 0 ? s->len : 1, es);
        if (o->values == NULL) {
            lp2p__free(o->keys);
            o->keys = NULL;
            return LP2P_ENOMEM;
        }
        o->len = s->len;
        for (i = 0; i < s->len; i++) {
            o->keys[i] = lp2p__strdup(s->keys[i] != NULL ? s->keys[i] : "");
            if (o->keys[i] == NULL) {
                return LP2P_ENOMEM;
            }
            rv = copy_value(d->elem, (uint8_t *)o->values + i * es,
                            (const uint8_t *)s->values + i * es);
            if (rv != 0) {
                return rv;
            }
        }
        return 0;
    }
    }
    return LP2P_EINVAL;
}

static int copy_struct(const struct p2praft_type *t, void *dst,
                       const void *src)
{
    size_t i;
    int rv;
    if (t->fields == NULL) {
        if (t->copy != NULL) {
            return t->copy(dst, src);
        }
        if (is_custom(t)) {
            uint8_t *enc;
            size_t len;
            void *tmp;
            rv = p2praft_encode(t, src, &enc, &len);
            if (rv != 0) {
                return rv;
            }
            rv = p2praft__decode_new(t, enc, len, &tmp);
            lp2p__free(enc);
            if (rv != 0) {
                return rv;
            }
            memcpy(dst, tmp, t->size);
            lp2p__free(tmp);
            return 0;
        }
        return LP2P_EINVAL;
    }
    for (i = 0; i < t->n_fields; i++) {
        const struct p2praft_field *f = &t->fields[i];
        rv = copy_value(&f->desc, (uint8_t *)dst + f->offset,
                        (const uint8_t *)src + f->offset);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

int p2praft_value_copy(const struct p2praft_type *t, void *dst,
                       const void *src)
{
    int rv;
    if (t == NULL || dst == NULL || src == NULL) {
        return LP2P_EINVAL;
    }
    memset(dst, 0, t->size);
    rv = copy_struct(t, dst, src);
    if (rv != 0) {
        release_struct(t, dst);
    }
    return rv;
}

void *p2praft_value_new(const struct p2praft_type *t)
{
    if (t == NULL || t->size == 0) {
        return NULL;
    }
    return lp2p__calloc(1, t->size);
}

void *p2praft_value_dup(const struct p2praft_type *t, const void *src)
{
    void *v = p2praft_value_new(t);
    if (v == NULL) {
        return NULL;
    }
    if (p2praft_value_copy(t, v, src) != 0) {
        lp2p__free(v);
        return NULL;
    }
    return v;
}

void p2praft_value_destroy(const struct p2praft_type *t, void *value)
{
    if (value == NULL) {
        return;
    }
    if (t != NULL) {
        release_struct(t, value);
    }
    lp2p__free(value);
}
