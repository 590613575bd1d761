/* The cluster node's key-value store: apply_to semantics of set, delete and
 * compare-and-set, key order, and the state's codec (snapshots). */
#include <stdio.h>
#include <string.h>

#include "p2praft.h"
#include "raft/kv.h"
#include "oom.h"
#include "test.h"

static const struct p2praft_type *ST = &p2praft__kv_state_type;

/* Apply one op to *st (replaced by the new state). Returns apply_to's rv. */
static int apply(struct p2praft__kv_state **st, int64_t kind, const char *key,
                 const char *value, const char *expect)
{
    struct p2praft__kv_op op;
    struct p2praft__kv_state *ns = p2praft_value_new(ST);
    int rv;
    if (ns == NULL) {
        return P2PRAFT_ENOMEM;
    }
    memset(&op, 0, sizeof(op));
    op.kind = kind;
    op.key = (char *)key;
    op.value.data = (uint8_t *)value;
    op.value.len = value != NULL ? strlen(value) : 0;
    op.expect.data = (uint8_t *)expect;
    op.expect.len = expect != NULL ? strlen(expect) : 0;
    rv = p2praft__kv_op_ops.apply_to(&op, *st, ns, NULL);
    if (rv != 0) {
        p2praft_value_destroy(ST, ns);
        return rv;
    }
    p2praft_value_destroy(ST, *st);
    *st = ns;
    return 0;
}

static const char *get(const struct p2praft__kv_state *st, const char *key,
                       char *buf, size_t cap)
{
    const struct p2praft_bytes *v = p2praft__kv_lookup(st, key);
    if (v == NULL) {
        return NULL;
    }
    ASSERT(v->len < cap);
    if (v->len > 0) {
        memcpy(buf, v->data, v->len);
    }
    buf[v->len] = '\0';
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
    ASSERT_EQ(st->data.len, 3);
    /* kept in byte order whatever the insertion order */
    ASSERT_STR_EQ(st->data.keys[0], "a");
    ASSERT_STR_EQ(st->data.keys[1], "b");
    ASSERT_STR_EQ(st->data.keys[2], "c");
    ASSERT_STR_EQ(get(st, "b", buf, sizeof(buf)), "2");

    ASSERT_OK(apply(&st, P2PRAFT__KV_SET, "b", "two", NULL)); /* replace */
    ASSERT_EQ(st->data.len, 3);
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
    ASSERT_EQ(st->data.len, 2);

    /* an empty value is a present key */
    ASSERT_OK(apply(&st, P2PRAFT__KV_SET, "e", "", NULL));
    ASSERT_STR_EQ(get(st, "e", buf, sizeof(buf)), "");
    ASSERT_OK(apply(&st, P2PRAFT__KV_CAS, "e", "full", ""));
    ASSERT(st->ok);

    ASSERT_OK(apply(&st, P2PRAFT__KV_DEL, "b", NULL, NULL));
    ASSERT_OK(apply(&st, P2PRAFT__KV_DEL, "c", NULL, NULL));
    ASSERT_OK(apply(&st, P2PRAFT__KV_DEL, "e", NULL, NULL));
    ASSERT_EQ(st->data.len, 0);
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
    ASSERT_EQ(back->data.len, 50);
    for (i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "k%02u", (i * 7) % 50);
        snprintf(val, sizeof(val), "v%u", i);
        ASSERT_STR_EQ(get(back, key, buf, sizeof(buf)), val);
    }
    /* truncated snapshots are refused, the target left alone */
    ASSERT(p2praft_decode_snapshot(ST, back, enc, len - 1) != 0);
    ASSERT_EQ(back->data.len, 50);
    p2praft_free(enc);
    p2praft_value_destroy(ST, back);
    p2praft_value_destroy(ST, st);
}

/* Out of memory anywhere in apply_to: an error, and nothing leaks (the
 * consensus releases the partial new state). */
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
    ASSERT(test__oom_sweep(oom_body, NULL) > 10);
}
