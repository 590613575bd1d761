/* The key-value store of the cluster node. See kv.h. */
#include <stddef.h>
#include <string.h>

#include "raft/kv.h"

static const struct p2praft_desc bytes_desc = {P2PRAFT_KIND_BYTES, NULL, NULL};

static const struct p2praft_field state_fields[] = {
    {"Data", offsetof(struct p2praft__kv_state, data),
     {P2PRAFT_KIND_MAP, NULL, &bytes_desc}},
    {"Seq", offsetof(struct p2praft__kv_state, seq),
     {P2PRAFT_KIND_UINT64, NULL, NULL}},
    {"Ok", offsetof(struct p2praft__kv_state, ok),
     {P2PRAFT_KIND_BOOL, NULL, NULL}},
};

const struct p2praft_type p2praft__kv_state_type = {
    "KVState", sizeof(struct p2praft__kv_state), state_fields, 3,
    NULL,      NULL,                             NULL,         NULL};

static const struct p2praft_field op_fields[] = {
    {"Kind", offsetof(struct p2praft__kv_op, kind),
     {P2PRAFT_KIND_INT64, NULL, NULL}},
    {"Key", offsetof(struct p2praft__kv_op, key),
     {P2PRAFT_KIND_STRING, NULL, NULL}},
    {"Value", offsetof(struct p2praft__kv_op, value),
     {P2PRAFT_KIND_BYTES, NULL, NULL}},
    {"Expect", offsetof(struct p2praft__kv_op, expect),
     {P2PRAFT_KIND_BYTES, NULL, NULL}},
};

const struct p2praft_type p2praft__kv_op_type = {
    "KVOp", sizeof(struct p2praft__kv_op), op_fields, 4, NULL, NULL, NULL,
    NULL};

/* Binary search: the index of `key`, or -(insertion point) - 1. */
static ptrdiff_t find(const struct p2praft_map *m, const char *key)
{
    size_t lo = 0, hi = m->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->keys[mid], key);
        if (c == 0) {
            return (ptrdiff_t)mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -(ptrdiff_t)lo - 1;
}

size_t p2praft__kv_lower_bound(const struct p2praft__kv_state *st,
                               const char *key)
{
    ptrdiff_t i = find(&st->data, key);
    return i >= 0 ? (size_t)i : (size_t)(-i - 1);
}

const struct p2praft_bytes *p2praft__kv_lookup(
    const struct p2praft__kv_state *st, const char *key)
{
    ptrdiff_t i;
    if (st == NULL || st->data.len == 0) {
        return NULL;
    }
    i = find(&st->data, key);
    return i >= 0 ? &((const struct p2praft_bytes *)st->data.values)[i] : NULL;
}

static bool bytes_equal(const struct p2praft_bytes *a,
                        const struct p2praft_bytes *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data,
                                                      a->len) == 0);
}

/* Append (key, value) copies to the map under construction `m`, whose
 * arrays have room. On failure `m` stays releasable. */
static int push(struct p2praft_map *m, const char *key,
                const struct p2praft_bytes *v)
{
    struct p2praft_bytes *vals = m->values;
    char *k = p2praft_strdup(key);
    if (k == NULL) {
        return P2PRAFT_ENOMEM;
    }
    vals[m->len].data = NULL;
    vals[m->len].len = 0;
    if (v->len > 0) {
        vals[m->len].data = p2praft_malloc(v->len);
        if (vals[m->len].data == NULL) {
            p2praft_free(k);
            return P2PRAFT_ENOMEM;
        }
        memcpy(vals[m->len].data, v->data, v->len);
        vals[m->len].len = v->len;
    }
    m->keys[m->len] = k;
    m->len++;
    return 0;
}

static int apply_to(const void *opv, const void *statev, void *newv, void *ctx)
{
    const struct p2praft__kv_op *op = opv;
    const struct p2praft__kv_state *st = statev;
    struct p2praft__kv_state *ns = newv;
    const struct p2praft_map *m = &st->data;
    const struct p2praft_bytes *vals = m->values;
    const char *key = op->key != NULL ? op->key : "";
    ptrdiff_t at = find(m, key);
    size_t i, n, skip = SIZE_MAX, insert = SIZE_MAX;
    bool ok;
    int rv;
    (void)ctx;

    switch (op->kind) {
    case P2PRAFT__KV_SET:
        ok = true;
        break;
    case P2PRAFT__KV_DEL:
        ok = at >= 0;
        break;
    case P2PRAFT__KV_CAS:
        ok = at >= 0 && bytes_equal(&vals[at], &op->expect);
        break;
    case P2PRAFT__KV_NOP:
        ok = false; /* Data unchanged */
        break;
    default:
        /* Unknown kinds are refused before they are committed; one in the
         * log is applied as a failed no-op, the same on every node. */
        ok = false;
        break;
    }
    n = m->len;
    if (ok && op->kind == P2PRAFT__KV_DEL) {
        skip = (size_t)at;
        n--;
    } else if (ok && at >= 0) {
        skip = (size_t)at; /* replaced in place */
    } else if (ok) {
        insert = (size_t)(-at - 1);
        n++;
    }
    ns->seq = st->seq + 1;
    ns->ok = ok || op->kind == P2PRAFT__KV_NOP;
    if (n == 0) {
        return 0;
    }
    ns->data.keys = p2praft_calloc(n, sizeof(char *));
    ns->data.values = p2praft_calloc(n, sizeof(struct p2praft_bytes));
    if (ns->data.keys == NULL || ns->data.values == NULL) {
        return P2PRAFT_ENOMEM;
    }
    for (i = 0; i <= m->len; i++) {
        if (i == insert) {
            rv = push(&ns->data, key, &op->value);
            if (rv != 0) {
                return rv;
            }
        }
        if (i == m->len) {
            break;
        }
        if (i == skip) {
            if (op->kind == P2PRAFT__KV_DEL) {
                continue;
            }
            rv = push(&ns->data, m->keys[i], &op->value);
        } else {
            rv = push(&ns->data, m->keys[i], &vals[i]);
        }
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

const struct p2praft_op_type p2praft__kv_op_ops = {&p2praft__kv_op_type,
                                                   apply_to, NULL};
