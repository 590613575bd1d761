/*
 * The key-value store of the cluster node. See kv.h.
 *
 * The state is an ordered map in memory and the field-table map on the
 * wire: its codec is a pair of custom hooks. Encoding walks the map in key
 * order and writes what the field-table codec wrote for the former flat
 * state, byte for byte, in pieces of at most CHUNK bytes (large values go
 * straight through). Decoding goes through the field-table codec itself
 * (the wire type below), so it accepts and refuses exactly what it did,
 * then builds the map: O(n) from keys in byte order (what p2praft writes),
 * O(n log n) from any other order (a repeated key: the last wins, as Go's
 * decoder does into a map).
 *
 * apply_in_place changes the map where it is; its one allocation (in
 * p2praft__kvmap_set) comes before any change, so a failed op leaves the
 * state exactly as it was.
 */
#include <stddef.h>
#include <string.h>

#include "raft/codec.h"
#include "raft/kv.h"
#include "util/buf.h"
#include "util/heap.h"
#include "util/mpack.h"

#define CHUNK 65536

static const struct p2praft_desc bytes_desc = {P2PRAFT_KIND_BYTES, NULL, NULL};

/* The state as the field-table codec sees it: the wire format. */
struct wire_state {
    struct p2praft_map data; /* char * keys, struct p2praft_bytes values */
    uint64_t seq;
    bool ok;
};

static const struct p2praft_field wire_fields[] = {
    {"Data", offsetof(struct wire_state, data),
     {P2PRAFT_KIND_MAP, NULL, &bytes_desc}},
    {"Seq", offsetof(struct wire_state, seq),
     {P2PRAFT_KIND_UINT64, NULL, NULL}},
    {"Ok", offsetof(struct wire_state, ok), {P2PRAFT_KIND_BOOL, NULL, NULL}},
};

static const struct p2praft_type wire_type = {
    "KVState", sizeof(struct wire_state), wire_fields, 3, NULL, NULL, NULL,
    NULL};

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

static const struct p2praft_field result_fields[] = {
    {"Ok", offsetof(struct p2praft__kv_result, ok),
     {P2PRAFT_KIND_BOOL, NULL, NULL}},
};

const struct p2praft_type p2praft__kv_result_type = {
    "KVResult", sizeof(struct p2praft__kv_result), result_fields, 1, NULL,
    NULL, NULL, NULL};

/* ---- reads ---------------------------------------------------------------- */

bool p2praft__kv_get(const struct p2praft__kv_state *st, const char *key,
                     const uint8_t **value, size_t *len)
{
    const struct p2praft__kvnode *n;
    *value = NULL;
    *len = 0;
    if (st == NULL) {
        return false;
    }
    n = p2praft__kvmap_get(&st->data, key, strlen(key));
    if (n == NULL) {
        return false;
    }
    if (n->vlen > 0) {
        *value = p2praft__kvnode_value(n);
        *len = n->vlen;
    }
    return true;
}

size_t p2praft__kv_count(const struct p2praft__kv_state *st)
{
    return st != NULL ? st->data.count : 0;
}

void p2praft__kv_seek(const struct p2praft__kv_state *st,
                      struct p2praft__kvmap_iter *it, const char *from)
{
    if (st == NULL) {
        it->depth = 0;
        return;
    }
    p2praft__kvmap_seek(&st->data, it, from != NULL ? from : "",
                        from != NULL ? strlen(from) : 0);
}

bool p2praft__kv_next(struct p2praft__kvmap_iter *it, const char **key,
                      size_t *klen, const uint8_t **value, size_t *vlen)
{
    const struct p2praft__kvnode *n = p2praft__kvmap_next(it);
    if (n == NULL) {
        return false;
    }
    *key = n->key;
    *klen = n->klen;
    *value = n->vlen > 0 ? p2praft__kvnode_value(n) : NULL;
    *vlen = n->vlen;
    return true;
}

unsigned p2praft__kv_snapshot_threshold(const struct p2praft__kv_state *st,
                                        unsigned configured)
{
    size_t quarter = st != NULL ? st->data.count / 4 : 0;
    if (quarter > UINT32_MAX) {
        quarter = UINT32_MAX;
    }
    return quarter > configured ? (unsigned)quarter : configured;
}

/* ---- codec ---------------------------------------------------------------- */

static int flush(struct lp2p_buf *b, p2praft_write_fn write, void *wctx)
{
    int rv = 0;
    if (b->len > 0) {
        rv = write(wctx, b->data, b->len);
        b->len = 0;
    }
    return rv;
}

int p2praft__kv_encode(const struct p2praft__kv_state *st,
                       p2praft_write_fn write, void *wctx)
{
    struct p2praft__kvmap_iter it;
    const struct p2praft__kvnode *n;
    struct lp2p_buf b;
    int rv;

    lp2p__buf_init(&b);
    rv = lp2p__mp_put_map_hdr(&b, 3);
    if (rv == 0) {
        rv = lp2p__mp_put_raw(&b, "Data", 4);
    }
    if (rv == 0) {
        rv = st->data.count == 0 && !st->data_map
                 ? lp2p__mp_put_nil(&b)
                 : lp2p__mp_put_map_hdr(&b, st->data.count);
    }
    p2praft__kvmap_seek(&st->data, &it, "", 0);
    while (rv == 0 && (n = p2praft__kvmap_next(&it)) != NULL) {
        rv = lp2p__mp_put_raw(&b, n->key, n->klen);
        if (rv != 0) {
            break;
        }
        if (n->vnil) {
            rv = lp2p__mp_put_nil(&b);
        } else if (n->vlen >= CHUNK / 4) {
            /* Large: the header here, the bytes straight to the writer. */
            rv = lp2p__mp_put_raw_hdr(&b, n->vlen);
            if (rv == 0) {
                rv = flush(&b, write, wctx);
            }
            if (rv == 0) {
                rv = write(wctx, p2praft__kvnode_value(n), n->vlen);
            }
        } else {
            rv = lp2p__mp_put_raw(&b, p2praft__kvnode_value(n), n->vlen);
        }
        if (rv == 0 && b.len >= CHUNK) {
            rv = flush(&b, write, wctx);
        }
    }
    if (rv == 0) {
        rv = lp2p__mp_put_raw(&b, "Seq", 3);
    }
    if (rv == 0) {
        rv = lp2p__mp_put_uint(&b, st->seq);
    }
    if (rv == 0) {
        rv = lp2p__mp_put_raw(&b, "Ok", 2);
    }
    if (rv == 0) {
        rv = lp2p__mp_put_bool(&b, st->ok);
    }
    if (rv == 0) {
        rv = flush(&b, write, wctx);
    }
    lp2p__buf_free(&b);
    return rv;
}

static int state_marshal(const void *value, p2praft_write_fn write,
                         void *wctx)
{
    return p2praft__kv_encode(value, write, wctx);
}

/* Keys strictly ascending in wire order? Then the map builds in O(n). */
static bool ascending(const struct p2praft_map *m)
{
    size_t i;
    for (i = 1; i < m->len; i++) {
        if (strcmp(m->keys[i - 1], m->keys[i]) >= 0) {
            return false;
        }
    }
    return true;
}

static int state_unmarshal(void *value, const uint8_t *data, size_t len)
{
    struct p2praft__kv_state *st = value;
    struct wire_state *w = NULL;
    struct p2praft_bytes *vals;
    struct p2praft__kvnode **nodes = NULL;
    size_t i, n;
    bool sorted;
    int rv;

    rv = p2praft__decode_new(&wire_type, data, len, (void **)&w);
    if (rv != 0) {
        return rv;
    }
    n = w->data.len;
    vals = w->data.values;
    if (n > 0) {
        nodes = lp2p__calloc(n, sizeof(*nodes));
        if (nodes == NULL) {
            rv = LP2P_ENOMEM;
            goto out;
        }
    }
    sorted = ascending(&w->data);
    for (i = 0; i < n; i++) {
        nodes[i] = p2praft__kvmap_node_new(w->data.keys[i],
                                           strlen(w->data.keys[i]),
                                           vals[i].data, vals[i].len,
                                           vals[i].data == NULL);
        if (nodes[i] == NULL) {
            while (i > 0) {
                lp2p__free(nodes[--i]);
            }
            rv = LP2P_ENOMEM;
            goto out;
        }
        /* Give back the decoded copies as we go: less at the peak. */
        lp2p__free(w->data.keys[i]);
        w->data.keys[i] = NULL;
        lp2p__free(vals[i].data);
        vals[i].data = NULL;
        vals[i].len = 0;
    }
    if (sorted) {
        p2praft__kvmap_build_sorted(&st->data, nodes, n);
    } else {
        for (i = 0; i < n; i++) {
            p2praft__kvmap_insert_node(&st->data, nodes[i]);
        }
    }
    st->seq = w->seq;
    st->ok = w->ok;
    st->data_map = w->data.keys != NULL;
out:
    lp2p__free(nodes);
    p2praft_value_destroy(&wire_type, w);
    return rv;
}

static void state_release(void *value)
{
    struct p2praft__kv_state *st = value;
    p2praft__kvmap_clear(&st->data);
}

static int state_copy(void *dst, const void *src)
{
    struct p2praft__kv_state *d = dst;
    const struct p2praft__kv_state *s = src;
    int rv = p2praft__kvmap_clone(&d->data, &s->data);
    if (rv != 0) {
        return rv;
    }
    d->seq = s->seq;
    d->ok = s->ok;
    d->data_map = s->data_map;
    return 0;
}

const struct p2praft_type p2praft__kv_state_type = {
    "KVState",       sizeof(struct p2praft__kv_state),
    NULL,            0,
    state_marshal,   state_unmarshal,
    state_release,   state_copy};

/* ---- apply ---------------------------------------------------------------- */

static bool value_equal(const struct p2praft__kvnode *n,
                        const struct p2praft_bytes *b)
{
    return n->vlen == b->len &&
           (b->len == 0 || memcmp(p2praft__kvnode_value(n), b->data,
                                  b->len) == 0);
}

static int apply_in_place(const void *opv, void *statev, void *resv,
                          void *ctx)
{
    const struct p2praft__kv_op *op = opv;
    struct p2praft__kv_state *st = statev;
    struct p2praft__kv_result *res = resv;
    const char *key = op->key != NULL ? op->key : "";
    size_t klen = strlen(key);
    const struct p2praft__kvnode *cur;
    bool ok;
    int rv;
    (void)ctx;

    /* The one step that can fail comes first: until it succeeded, nothing
     * changed. An empty value is stored as nil, as the flat map did. */
    switch (op->kind) {
    case P2PRAFT__KV_SET:
        rv = p2praft__kvmap_set(&st->data, key, klen, op->value.data,
                                op->value.len, true);
        if (rv != 0) {
            return rv;
        }
        ok = true;
        break;
    case P2PRAFT__KV_DEL:
        ok = p2praft__kvmap_del(&st->data, key, klen);
        break;
    case P2PRAFT__KV_CAS:
        cur = p2praft__kvmap_get(&st->data, key, klen);
        ok = cur != NULL && value_equal(cur, &op->expect);
        if (ok) {
            rv = p2praft__kvmap_set(&st->data, key, klen, op->value.data,
                                    op->value.len, true);
            if (rv != 0) {
                return rv;
            }
        }
        break;
    case P2PRAFT__KV_NOP:
        ok = true; /* Data unchanged */
        break;
    default:
        /* Unknown kinds are refused before they are committed; one in the
         * log is applied as a failed no-op, the same on every node. */
        ok = false;
        break;
    }
    st->seq++;
    st->ok = ok;
    st->data_map = st->data.count > 0;
    res->ok = ok;
    return 0;
}

const struct p2praft_op_type p2praft__kv_op_ops = {
    .type = &p2praft__kv_op_type,
    .apply_in_place = apply_in_place,
    .result_type = &p2praft__kv_result_type};
