/* The cluster node's key-value store: semantics of set, delete and
 * compare-and-set applied in place, key order, the state's codec
 * (snapshots: the same bytes as the former flat state), and failure
 * atomicity of an op under allocation failures. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p2praft.h"
#include "raft/kv.h"
#include "oom.h"
#include "test.h"

static const struct p2praft_type *ST = &p2praft__kv_state_type;

/* Apply one op to *st, in place. Returns apply_in_place's rv. */
static int apply(struct p2praft__kv_state **st, int64_t kind, const char *key,
                 const char *value, const char *expect)
{
    struct p2praft__kv_op op;
    struct p2praft__kv_result res = {false};
    memset(&op, 0, sizeof(op));
    op.kind = kind;
    op.key = (char *)key;
    op.value.data = (uint8_t *)value;
    op.value.len = value != NULL ? strlen(value) : 0;
    op.expect.data = (uint8_t *)expect;
    op.expect.len = expect != NULL ? strlen(expect) : 0;
    return p2praft__kv_op_ops.apply_in_place(&op, *st, &res, NULL);
}

/* The i-th key in byte order (borrowed), or NULL. */
static const char *key_at(const struct p2praft__kv_state *st, size_t i)
{
    struct p2praft__kvmap_iter it;
    const char *k;
    const uint8_t *v;
    size_t klen, vlen, j;
    p2praft__kv_seek(st, &it, "");
    for (j = 0; p2praft__kv_next(&it, &k, &klen, &v, &vlen); j++) {
        if (j == i) {
            return k;
        }
    }
    return NULL;
}

static const char *get(const struct p2praft__kv_state *st, const char *key,
                       char *buf, size_t cap)
{
    const uint8_t *v;
    size_t len;
    if (!p2praft__kv_get(st, key, &v, &len)) {
        return NULL;
    }
    ASSERT(len < cap);
    if (len > 0) {
        memcpy(buf, v, len);
    }
    buf[len] = '\0';
    return buf;
}

TEST(kv, set_del_cas)
{
    struct p2praft__kv_state *st = p2praft_value_new(ST);
    char buf[64];
    ASSERT(st != NULL);
    ASSERT(get(st, "a", buf, sizeof(buf)) == NULL);

    ASSERT_OK(apply(&st, P2PRAFT__KV_SET, "b", "2", NULL));
    ASSERT_OK(apply(&st, P2PRAFT__KV_SET, "a", "1", NULL));
    ASSERT_OK(apply(&st, P2PRAFT__KV_SET, "c", "3", NULL));
    ASSERT(st->ok);
    ASSERT_EQ(st->seq, 3);
    ASSERT_EQ(p2praft__kv_count(st), 3);
    /* kept in byte order whatever the insertion order */
    ASSERT_STR_EQ(key_at(st, 0), "a");
    ASSERT_STR_EQ(key_at(st, 1), "b");
    ASSERT_STR_EQ(key_at(st, 2), "c");
    ASSERT_STR_EQ(get(st, "b", buf, sizeof(buf)), "2");

    ASSERT_OK(apply(&st, P2PRAFT__KV_SET, "b", "two", NULL)); /* replace */
    ASSERT_EQ(p2praft__kv_count(st), 3);
    ASSERT_STR_EQ(get(st, "b", buf, sizeof(buf)), "two");

    ASSERT_OK(apply(&st, P2PRAFT__KV_CAS, "b", "three", "two"));
    ASSERT(st->ok);
    ASSERT_STR_EQ(get(st, "b", buf, sizeof(buf)), "three");
    ASSERT_OK(apply(&st, P2PRAFT__KV_CAS, "b", "four", "two")); /* stale */
    ASSERT(!st->ok);
    ASSERT_STR_EQ(get(st, "b", buf, sizeof(buf)), "three");
    ASSERT_OK(apply(&st, P2PRAFT__KV_CAS, "zz", "x", "")); /* absent */
    ASSERT(!st->ok);
    ASSERT(get(st, "zz", buf, sizeof(buf)) == NULL);

    ASSERT_OK(apply(&st, P2PRAFT__KV_DEL, "a", NULL, NULL));
    ASSERT(st->ok);
    ASSERT(get(st, "a", buf, sizeof(buf)) == NULL);
    ASSERT_OK(apply(&st, P2PRAFT__KV_DEL, "a", NULL, NULL));
    ASSERT(!st->ok);
    ASSERT_OK(apply(&st, 99, "c", "x", NULL)); /* unknown kind: no-op */
    ASSERT(!st->ok);
    ASSERT_STR_EQ(get(st, "c", buf, sizeof(buf)), "3");
    ASSERT_EQ(st->seq, 10);
    ASSERT_OK(apply(&st, P2PRAFT__KV_NOP, NULL, NULL, NULL)); /* barrier */
    ASSERT(st->ok);
    ASSERT_EQ(st->seq, 11);
    ASSERT_EQ(p2praft__kv_count(st), 2);

    /* an empty value is a present key */
    ASSERT_OK(apply(&st, P2PRAFT__KV_SET, "e", "", NULL));
    ASSERT_STR_EQ(get(st, "e", buf, sizeof(buf)), "");
    ASSERT_OK(apply(&st, P2PRAFT__KV_CAS, "e", "full", ""));
    ASSERT(st->ok);

    ASSERT_OK(apply(&st, P2PRAFT__KV_DEL, "b", NULL, NULL));
    ASSERT_OK(apply(&st, P2PRAFT__KV_DEL, "c", NULL, NULL));
    ASSERT_OK(apply(&st, P2PRAFT__KV_DEL, "e", NULL, NULL));
    ASSERT_EQ(p2praft__kv_count(st), 0);
    p2praft_value_destroy(ST, st);
}

TEST(kv, snapshot_roundtrip)
{
    struct p2praft__kv_state *st = p2praft_value_new(ST), *back;
    uint8_t *enc = NULL;
    size_t len = 0;
    char key[16], val[16], buf[64];
    unsigned i;
    ASSERT(st != NULL);
    for (i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "k%02u", (i * 7) % 50);
        snprintf(val, sizeof(val), "v%u", i);
        ASSERT_OK(apply(&st, P2PRAFT__KV_SET, key, val, NULL));
    }
    ASSERT_OK(p2praft_encode_snapshot(ST, st, &enc, &len));
    back = p2praft_value_new(ST);
    ASSERT(back != NULL);
    ASSERT_OK(p2praft_decode_snapshot(ST, back, enc, len));
    ASSERT_EQ(back->seq, 50);
    ASSERT_EQ(p2praft__kv_count(back), 50);
    for (i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "k%02u", (i * 7) % 50);
        snprintf(val, sizeof(val), "v%u", i);
        ASSERT_STR_EQ(get(back, key, buf, sizeof(buf)), val);
    }
    /* truncated snapshots are refused, the target left alone */
    ASSERT(p2praft_decode_snapshot(ST, back, enc, len - 1) != 0);
    ASSERT_EQ(p2praft__kv_count(back), 50);
    p2praft_free(enc);
    p2praft_value_destroy(ST, back);
    p2praft_value_destroy(ST, st);
}

/* Out of memory anywhere in apply_in_place: an error, and nothing leaks. */
static int oom_body(void *ctx)
{
    struct p2praft__kv_state *st = p2praft_value_new(ST);
    char key[16];
    unsigned i;
    int rv = 0;
    (void)ctx;
    if (st == NULL) {
        return P2PRAFT_ENOMEM;
    }
    for (i = 0; rv == 0 && i < 4; i++) {
        snprintf(key, sizeof(key), "k%u", i);
        rv = apply(&st, P2PRAFT__KV_SET, key, "value", NULL);
    }
    if (rv == 0) {
        rv = apply(&st, P2PRAFT__KV_CAS, "k1", "new", "value");
    }
    if (rv == 0) {
        rv = apply(&st, P2PRAFT__KV_DEL, "k2", NULL, NULL);
    }
    p2praft_value_destroy(ST, st);
    return rv;
}

TEST(kv, oom_sweep)
{
    /* In place, a write allocates one block at most (an insert, or a value
     * of another size): the state, 4 inserts and the cas. Copying the
     * store, as apply_to did, took more than 10. */
    ASSERT_EQ(test__oom_sweep(oom_body, NULL), 6);
}

/* ---- the wire: what the field-table codec wrote for the flat state ---- */

static const struct p2praft_desc flat_bytes = {P2PRAFT_KIND_BYTES, NULL, NULL};

struct flat {
    struct p2praft_map data;
    uint64_t seq;
    bool ok;
};

static const struct p2praft_field flat_fields[] = {
    {"Data", offsetof(struct flat, data), {P2PRAFT_KIND_MAP, NULL, &flat_bytes}},
    {"Seq", offsetof(struct flat, seq), {P2PRAFT_KIND_UINT64, NULL, NULL}},
    {"Ok", offsetof(struct flat, ok), {P2PRAFT_KIND_BOOL, NULL, NULL}},
};

static const struct p2praft_type flat_type = {
    "KVState", sizeof(struct flat), flat_fields, 3, NULL, NULL, NULL, NULL};

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* The flat model: sorted keys, values as the former apply_to stored them
 * (an empty value as NULL data, which encodes as nil). */
static void flat_set(struct flat *f, const char *key, const uint8_t *v,
                     size_t vlen)
{
    struct p2praft_bytes *vals = f->data.values;
    size_t i = 0;
    while (i < f->data.len && strcmp(f->data.keys[i], key) < 0) {
        i++;
    }
    if (i == f->data.len || strcmp(f->data.keys[i], key) != 0) {
        f->data.keys = realloc(f->data.keys,
                               (f->data.len + 1) * sizeof(char *));
        vals = realloc(vals, (f->data.len + 1) * sizeof(*vals));
        ASSERT(f->data.keys != NULL && vals != NULL);
        memmove(&f->data.keys[i + 1], &f->data.keys[i],
                (f->data.len - i) * sizeof(char *));
        memmove(&vals[i + 1], &vals[i], (f->data.len - i) * sizeof(*vals));
        f->data.keys[i] = strdup(key);
        vals[i].data = NULL;
        f->data.len++;
        f->data.values = vals;
    }
    free(vals[i].data);
    vals[i].data = vlen > 0 ? malloc(vlen) : NULL;
    if (vlen > 0) {
        memcpy(vals[i].data, v, vlen);
    }
    vals[i].len = vlen;
}

static bool flat_del(struct flat *f, const char *key)
{
    struct p2praft_bytes *vals = f->data.values;
    size_t i;
    for (i = 0; i < f->data.len; i++) {
        if (strcmp(f->data.keys[i], key) == 0) {
            free(f->data.keys[i]);
            free(vals[i].data);
            memmove(&f->data.keys[i], &f->data.keys[i + 1],
                    (f->data.len - i - 1) * sizeof(char *));
            memmove(&vals[i], &vals[i + 1],
                    (f->data.len - i - 1) * sizeof(*vals));
            f->data.len--;
            return true;
        }
    }
    return false;
}

static void flat_free(struct flat *f)
{
    struct p2praft_bytes *vals = f->data.values;
    size_t i;
    for (i = 0; i < f->data.len; i++) {
        free(f->data.keys[i]);
        free(vals[i].data);
    }
    free(f->data.keys);
    free(vals);
    memset(f, 0, sizeof(*f));
}

/* Encode the flat model as the former state would have been: Data nil
 * when empty (the former apply_to left it NULL). */
static void flat_encode(struct flat *f, uint8_t **out, size_t *len)
{
    struct flat view = *f;
    if (view.data.len == 0) {
        view.data.keys = NULL;
        view.data.values = NULL;
    }
    ASSERT_OK(p2praft_encode(&flat_type, &view, out, len));
}

static void same_bytes_as_flat(struct p2praft__kv_state *st, struct flat *f)
{
    uint8_t *a, *b;
    size_t alen, blen;
    ASSERT_OK(p2praft_encode(ST, st, &a, &alen));
    flat_encode(f, &b, &blen);
    ASSERT_EQ(alen, blen);
    ASSERT_MEM_EQ(a, b, alen);
    p2praft_free(a);
    p2praft_free(b);
}

/* Random ops: the in-place state and the former flat state encode to the
 * same bytes after every op, so snapshots are what they were. */
TEST(kv, wire_bytes_unchanged)
{
    struct p2praft__kv_state *st = p2praft_value_new(ST);
    struct flat f;
    char key[8], val[16], exp[16];
    unsigned step;
    memset(&f, 0, sizeof(f));
    ASSERT(st != NULL);
    same_bytes_as_flat(st, &f); /* empty: Data is nil */
    for (step = 0; step < 3000; step++) {
        uint32_t what = rnd(10);
        const uint8_t *cur;
        size_t curlen;
        bool had, ok;
        snprintf(key, sizeof(key), "%c%u", 'a' + (int)rnd(3), rnd(40));
        snprintf(val, sizeof(val), "%.*s", (int)rnd(6), "vvvvvv");
        had = p2praft__kv_get(st, key, &cur, &curlen);
        if (what < 5) {
            ASSERT_OK(apply(&st, P2PRAFT__KV_SET, key, val, NULL));
            flat_set(&f, key, (const uint8_t *)val, strlen(val));
            ok = true;
        } else if (what < 8) {
            ok = flat_del(&f, key);
            ASSERT_OK(apply(&st, P2PRAFT__KV_DEL, key, NULL, NULL));
            ASSERT_EQ(ok, had);
        } else {
            /* expect the current value half of the time */
            if (had && rnd(2) == 0) {
                snprintf(exp, sizeof(exp), "%.*s", (int)curlen,
                         cur != NULL ? (const char *)cur : "");
            } else {
                snprintf(exp, sizeof(exp), "x");
            }
            ok = had && strlen(exp) == curlen &&
                 memcmp(exp, cur != NULL ? (const char *)cur : "", curlen) ==
                     0;
            ASSERT_OK(apply(&st, P2PRAFT__KV_CAS, key, val, exp));
            if (ok) {
                flat_set(&f, key, (const uint8_t *)val, strlen(val));
            }
        }
        ASSERT_EQ(st->ok, ok);
        f.seq++;
        f.ok = ok;
        same_bytes_as_flat(st, &f);
    }
    flat_free(&f);
    p2praft_value_destroy(ST, st);
}

/* Decoding is the field-table codec's: the same errors; keys in any order
 * (Go writes a map's keys in random order) come out sorted, and a repeated
 * key keeps its last value, as Go's decoder does. */
TEST(kv, decode_any_order)
{
    /* {"Data": {"b": "2", "a": "1", "b": "3", "c": nil, "d": ""},
     *  "Seq": 7, "Ok": true} */
    static const uint8_t in[] = {
        0x83, 0xa4, 'D', 'a', 't', 'a', 0x85, 0xa1, 'b', 0xa1, '2', 0xa1,
        'a',  0xa1, '1', 0xa1, 'b', 0xa1, '3', 0xa1, 'c', 0xc0, 0xa1, 'd',
        0xa0, 0xa3, 'S', 'e',  'q', 0x07, 0xa2, 'O', 'k', 0xc3};
    /* sorted, without the repeat; nil and "" kept apart */
    static const uint8_t out[] = {
        0x83, 0xa4, 'D',  'a', 't',  'a',  0x84, 0xa1, 'a', 0xa1, '1',
        0xa1, 'b',  0xa1, '3', 0xa1, 'c',  0xc0, 0xa1, 'd', 0xa0, 0xa3,
        'S',  'e',  'q',  0x07, 0xa2, 'O', 'k',  0xc3};
    /* an empty map stays a map until an op runs */
    static const uint8_t empty[] = {0x83, 0xa4, 'D', 'a', 't', 'a', 0x80,
                                    0xa3, 'S',  'e', 'q', 0x00, 0xa2, 'O',
                                    'k',  0xc2};
    struct p2praft__kv_state *st = p2praft_value_new(ST);
    uint8_t *enc, bad[sizeof(in) + 1];
    size_t len;
    char buf[8];
    ASSERT(st != NULL);
    ASSERT_OK(p2praft_decode(ST, st, in, sizeof(in)));
    ASSERT_EQ(p2praft__kv_count(st), 4);
    ASSERT_STR_EQ(get(st, "b", buf, sizeof(buf)), "3");
    ASSERT_STR_EQ(key_at(st, 0), "a");
    ASSERT_STR_EQ(key_at(st, 3), "d");
    ASSERT_OK(p2praft_encode(ST, st, &enc, &len));
    ASSERT_EQ(len, sizeof(out));
    ASSERT_MEM_EQ(enc, out, len);
    p2praft_free(enc);

    ASSERT_OK(p2praft_decode(ST, st, empty, sizeof(empty)));
    ASSERT_OK(p2praft_encode(ST, st, &enc, &len));
    ASSERT_EQ(len, sizeof(empty));
    ASSERT_MEM_EQ(enc, empty, len);
    p2praft_free(enc);
    ASSERT_OK(apply(&st, P2PRAFT__KV_NOP, NULL, NULL, NULL));
    ASSERT_OK(p2praft_encode(ST, st, &enc, &len));
    ASSERT_EQ(enc[6], 0xc0); /* Data: nil, as the flat state after an op */
    p2praft_free(enc);

    /* the field-table codec's refusals, the target left alone */
    ASSERT_OK(p2praft_decode(ST, st, in, sizeof(in)));
    memcpy(bad, in, sizeof(in));
    bad[sizeof(in)] = 0xc0;
    ASSERT_ERR(p2praft_decode(ST, st, bad, sizeof(in) + 1), P2PRAFT_ETRAILING);
    ASSERT_ERR(p2praft_decode(ST, st, in, sizeof(in) - 1),
               P2PRAFT_ETRUNCATED);
    memcpy(bad, in, sizeof(in));
    bad[3] = 'X'; /* "DXta" */
    ASSERT_ERR(p2praft_decode(ST, st, bad, sizeof(in)),
               P2PRAFT_EUNKNOWNFIELD);
    memcpy(bad, in, sizeof(in));
    bad[9] = 0x01; /* a value that is an integer */
    ASSERT_ERR(p2praft_decode(ST, st, bad, sizeof(in)), P2PRAFT_ETYPE);
    ASSERT_EQ(p2praft__kv_count(st), 4);
    ASSERT_STR_EQ(get(st, "b", buf, sizeof(buf)), "3");
    p2praft_value_destroy(ST, st);
}

/* A store of 200,000 keys: encoded by walking the map, decoded back in
 * O(n), the same bytes again; a copy (get_current_state's) is equal too. */
TEST_TIMEOUT(kv, large_store_snapshot_roundtrip, 120)
{
    struct p2praft__kv_state *st = p2praft_value_new(ST), *back, *copy;
    uint8_t *enc, *enc2;
    size_t len, len2;
    char key[32], val[64], buf[64];
    unsigned i, n = getenv("P2PRAFT_VALGRIND") != NULL ? 20000 : 200000;
    ASSERT(st != NULL);
    for (i = 0; i < n; i++) {
        /* inserted in a scrambled order */
        unsigned k = (unsigned)(((uint64_t)i * 7919u) % n);
        snprintf(key, sizeof(key), "user/%08u", k);
        snprintf(val, sizeof(val), "value of %u", k);
        ASSERT_OK(apply(&st, P2PRAFT__KV_SET, key, val, NULL));
    }
    ASSERT_EQ(p2praft__kv_count(st), n);
    ASSERT(p2praft__kvmap_valid(&st->data));
    ASSERT_OK(p2praft_encode_snapshot(ST, st, &enc, &len));
    back = p2praft_value_new(ST);
    ASSERT(back != NULL);
    ASSERT_OK(p2praft_decode_snapshot(ST, back, enc, len));
    ASSERT_EQ(p2praft__kv_count(back), n);
    ASSERT_EQ(back->seq, n);
    ASSERT(p2praft__kvmap_valid(&back->data));
    ASSERT_STR_EQ(get(back, "user/00012345", buf, sizeof(buf)),
                  "value of 12345");
    ASSERT_OK(p2praft_encode_snapshot(ST, back, &enc2, &len2));
    ASSERT_EQ(len2, len);
    ASSERT_MEM_EQ(enc2, enc, len);
    p2praft_free(enc2);
    copy = p2praft_value_dup(ST, back);
    ASSERT(copy != NULL);
    ASSERT_OK(p2praft_encode_snapshot(ST, copy, &enc2, &len2));
    ASSERT_EQ(len2, len);
    ASSERT_MEM_EQ(enc2, enc, len);
    p2praft_free(enc2);
    p2praft_free(enc);
    p2praft_value_destroy(ST, copy);
    p2praft_value_destroy(ST, back);
    p2praft_value_destroy(ST, st);
}

/* Failure atomicity of each op kind: with any allocation failed, the op
 * fails and the state is exactly what it was (same bytes, same Seq). */
struct atomic_case {
    int64_t kind;
    const char *key, *value, *expect;
};

static int atomic_body(void *ctx)
{
    const struct atomic_case *c = ctx;
    struct p2praft__kv_state *st = p2praft_value_new(ST);
    uint8_t *before = NULL, *after = NULL;
    size_t blen = 0, alen = 0;
    int rv = 0;
    if (st == NULL) {
        return P2PRAFT_ENOMEM;
    }
    if (rv == 0) {
        rv = apply(&st, P2PRAFT__KV_SET, "a", "1", NULL);
    }
    if (rv == 0) {
        rv = apply(&st, P2PRAFT__KV_SET, "b", "22", NULL);
    }
    if (rv == 0) {
        rv = p2praft_encode(ST, st, &before, &blen);
    }
    if (rv == 0) {
        rv = apply(&st, c->kind, c->key, c->value, c->expect);
        if (rv != 0) {
            ASSERT_EQ(rv, P2PRAFT_ENOMEM);
            /* unchanged; encoding it may fail too, then try no further */
            if (p2praft_encode(ST, st, &after, &alen) == 0) {
                ASSERT_EQ(alen, blen);
                ASSERT_MEM_EQ(after, before, blen);
            }
        }
    }
    p2praft_free(before);
    p2praft_free(after);
    p2praft_value_destroy(ST, st);
    return rv;
}

TEST(kv, apply_atomic_under_oom)
{
    static const struct atomic_case cases[] = {
        {P2PRAFT__KV_SET, "c", "new", NULL},     /* insert */
        {P2PRAFT__KV_SET, "b", "longer", NULL},  /* replace, other size */
        {P2PRAFT__KV_CAS, "b", "xyz", "22"},     /* cas that matches */
        {P2PRAFT__KV_SET, "a", "", NULL},        /* to an empty value */
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ASSERT(test__oom_sweep(atomic_body, (void *)&cases[i]) >= 5);
    }
}

/* Snapshots are spaced by the store's size: never below the configured
 * threshold, a quarter of the keys above it. */
TEST(kv, snapshot_threshold_grows_with_the_store)
{
    struct p2praft__kv_state *st = p2praft_value_new(ST);
    char key[16];
    unsigned i;
    ASSERT(st != NULL);
    ASSERT_EQ(p2praft__kv_snapshot_threshold(NULL, 1024), 1024);
    ASSERT_EQ(p2praft__kv_snapshot_threshold(st, 1024), 1024);
    for (i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "k%u", i);
        ASSERT_OK(apply(&st, P2PRAFT__KV_SET, key, "v", NULL));
    }
    ASSERT_EQ(p2praft__kv_snapshot_threshold(st, 1024), 2500);
    ASSERT_EQ(p2praft__kv_snapshot_threshold(st, 4000), 4000);
    ASSERT_EQ(p2praft__kv_snapshot_threshold(st, 8), 2500);
    p2praft_value_destroy(ST, st);
}
