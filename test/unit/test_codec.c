/* The field-table msgpack codec (src/raft/codec.c): ugorji-exact bytes,
 * errors, hooks, OOM. */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_types.h"
#include "oom.h"
#include "p2praft.h"
#include "test.h"

/* ---- small helper types ---- */

struct msg {
    char *Msg;
};
static const struct p2praft_field msg_fields[] = {
    {"Msg", offsetof(struct msg, Msg), {P2PRAFT_KIND_STRING, NULL, NULL}}};
static const struct p2praft_type msg_type = {
    "msg", sizeof(struct msg), msg_fields, 1, NULL, NULL, NULL, NULL};

struct one_i {
    int64_t I;
};
static const struct p2praft_field one_i_fields[] = {
    {"I", offsetof(struct one_i, I), {P2PRAFT_KIND_INT64, NULL, NULL}}};
static const struct p2praft_type one_i_type = {
    "one_i", sizeof(struct one_i), one_i_fields, 1, NULL, NULL, NULL, NULL};

struct one_u {
    uint64_t U;
};
static const struct p2praft_field one_u_fields[] = {
    {"U", offsetof(struct one_u, U), {P2PRAFT_KIND_UINT64, NULL, NULL}}};
static const struct p2praft_type one_u_type = {
    "one_u", sizeof(struct one_u), one_u_fields, 1, NULL, NULL, NULL, NULL};

static void expect_hex(const struct p2praft_type *t, const void *v,
                       const char *hex)
{
    uint8_t *out;
    size_t len;
    char *got;
    ASSERT_OK(p2praft_encode(t, v, &out, &len));
    got = malloc(2 * len + 1);
    test__hex(out, len, got);
    if (strcmp(got, hex) != 0) {
        test__fail(__FILE__, __LINE__, "encoded %s, expected %s", got, hex);
    }
    free(got);
    p2praft_free(out);
}

TEST(codec, good_as_new_exact)
{
    struct msg m = {"Good as new"};
    struct msg back = {NULL};
    uint8_t *out;
    size_t len;
    static const uint8_t want[] = {0x81, 0xa3, 'M', 's', 'g', 0xab, 'G',
                                   'o',  'o',  'd', ' ', 'a', 's',  ' ',
                                   'n',  'e',  'w'};
    ASSERT_OK(p2praft_encode(&msg_type, &m, &out, &len));
    ASSERT_EQ(len, sizeof(want));
    ASSERT_MEM_EQ(out, want, len);
    ASSERT_OK(p2praft_decode(&msg_type, &back, out, len));
    ASSERT_STR_EQ(back.Msg, "Good as new");
    p2praft_value_release(&msg_type, &back);
    ASSERT(back.Msg == NULL);
    p2praft_free(out);
}

TEST(codec, ints_as_ugorji)
{
    struct one_i i;
    struct one_u u;
    /* 81 a1 'I' == 81a149 */
    i.I = 0;
    expect_hex(&one_i_type, &i, "81a14900");
    i.I = 127;
    expect_hex(&one_i_type, &i, "81a1497f");
    i.I = 128; /* signed form: int16, never uint8 */
    expect_hex(&one_i_type, &i, "81a149d10080");
    i.I = 1998;
    expect_hex(&one_i_type, &i, "81a149d107ce");
    i.I = 32767;
    expect_hex(&one_i_type, &i, "81a149d17fff");
    i.I = 32768;
    expect_hex(&one_i_type, &i, "81a149d200008000");
    i.I = 2147483648LL;
    expect_hex(&one_i_type, &i, "81a149d30000000080000000");
    i.I = -1;
    expect_hex(&one_i_type, &i, "81a149ff");
    i.I = -32;
    expect_hex(&one_i_type, &i, "81a149e0");
    i.I = -33;
    expect_hex(&one_i_type, &i, "81a149d0df");
    i.I = -128;
    expect_hex(&one_i_type, &i, "81a149d080");
    i.I = -129;
    expect_hex(&one_i_type, &i, "81a149d1ff7f");
    i.I = -32769;
    expect_hex(&one_i_type, &i, "81a149d2ffff7fff");
    i.I = INT64_MIN;
    expect_hex(&one_i_type, &i, "81a149d38000000000000000");
    u.U = 127;
    expect_hex(&one_u_type, &u, "81a1557f");
    u.U = 128;
    expect_hex(&one_u_type, &u, "81a155cc80");
    u.U = 256;
    expect_hex(&one_u_type, &u, "81a155cd0100");
    u.U = 65536;
    expect_hex(&one_u_type, &u, "81a155ce00010000");
    u.U = UINT64_MAX;
    expect_hex(&one_u_type, &u, "81a155cfffffffffffffffff");
}

static void str_header(size_t n, const char *hdr_hex)
{
    struct msg m;
    uint8_t *out;
    size_t len, hl = strlen(hdr_hex) / 2;
    uint8_t *hdr;
    m.Msg = malloc(n + 1);
    memset(m.Msg, 'x', n);
    m.Msg[n] = '\0';
    ASSERT_OK(p2praft_encode(&msg_type, &m, &out, &len));
    hdr = test__unhex(hdr_hex, &hl);
    ASSERT_EQ(len, 5 + hl + n);
    ASSERT_MEM_EQ(out + 5, hdr, hl);
    free(hdr);
    p2praft_free(out);
    free(m.Msg);
}

TEST(codec, strings_never_str8)
{
    str_header(0, "a0");
    str_header(31, "bf");
    str_header(32, "da0020");
    str_header(255, "da00ff");
    str_header(65535, "daffff");
    str_header(65536, "db00010000");
}

TEST(codec, everything_roundtrip_and_msgpackc)
{
    struct everything e, back;
    uint8_t bytes[3] = {0, 1, 0xff};
    uint8_t *out, *out2;
    size_t len, len2;
    msgpack_unpacked u;
    size_t off = 0;

    everything_fixed(&e);
    ASSERT_OK(p2praft_encode(&everything_type, &e, &out, &len));

    /* An independent msgpack parser agrees on structure and values. */
    msgpack_unpacked_init(&u);
    ASSERT_EQ(msgpack_unpack_next(&u, (const char *)out, len, &off),
              MSGPACK_UNPACK_SUCCESS);
    ASSERT_EQ(off, len);
    ASSERT_EQ(u.data.type, MSGPACK_OBJECT_MAP);
    ASSERT_EQ(u.data.via.map.size, 15);
    ASSERT_EQ(u.data.via.map.ptr[0].key.via.str.size, 1);
    ASSERT_EQ(u.data.via.map.ptr[0].val.type, MSGPACK_OBJECT_BOOLEAN);
    ASSERT_EQ(u.data.via.map.ptr[1].val.via.i64, -5);
    ASSERT_EQ(u.data.via.map.ptr[2].val.via.u64, 300);
    ASSERT_EQ(u.data.via.map.ptr[3].val.type, MSGPACK_OBJECT_FLOAT64);
    ASSERT(u.data.via.map.ptr[3].val.via.f64 == 2.5);
    ASSERT_EQ(u.data.via.map.ptr[5].val.type, MSGPACK_OBJECT_STR);
    ASSERT_EQ(u.data.via.map.ptr[5].val.via.str.size, 3);
    ASSERT_EQ(u.data.via.map.ptr[7].val.via.array.size, 3);
    ASSERT_EQ(u.data.via.map.ptr[7].val.via.array.ptr[2].via.i64, 70000);
    ASSERT_EQ(u.data.via.map.ptr[10].val.via.array.ptr[1].type,
              MSGPACK_OBJECT_NIL);
    ASSERT_EQ(u.data.via.map.ptr[14].val.type, MSGPACK_OBJECT_NIL);
    msgpack_unpacked_destroy(&u);

    memset(&back, 0, sizeof(back));
    ASSERT_OK(p2praft_decode(&everything_type, &back, out, len));
    ASSERT(back.B);
    ASSERT_EQ(back.I, -5);
    ASSERT_EQ_U64(back.U, 300);
    ASSERT(back.F == 2.5);
    ASSERT_STR_EQ(back.S, "hola, \"mundo\"");
    ASSERT_EQ(back.Bytes.len, 3);
    ASSERT_MEM_EQ(back.Bytes.data, bytes, 3);
    ASSERT_STR_EQ(back.In.Name, "in");
    ASSERT_EQ(((int64_t *)back.Ints.items)[1], -200);
    ASSERT_STR_EQ(((char **)back.Strs.items)[1], "bc");
    ASSERT_EQ(((struct inner *)back.Inners.items)[1].D, -8);
    ASSERT_EQ(((struct p2praft_array *)back.Nested.items)[0].len, 2);
    ASSERT(((struct p2praft_array *)back.Nested.items)[1].items == NULL);
    ASSERT_EQ(back.M.len, 1);
    ASSERT_STR_EQ(back.M.keys[0], "k1");
    ASSERT_EQ(((int64_t *)back.M.values)[0], 10);
    ASSERT_STR_EQ(((struct inner *)back.MS.values)[0].Name, "z");
    ASSERT_EQ(((struct p2praft_array *)back.MA.values)[0].len, 2);

    /* Re-encoding the decoded value gives the same bytes. */
    ASSERT_OK(p2praft_encode(&everything_type, &back, &out2, &len2));
    ASSERT_EQ(len2, len);
    ASSERT_MEM_EQ(out2, out, len);
    p2praft_free(out2);

    /* A copy is deep and equal. */
    {
        struct everything cp;
        ASSERT_OK(p2praft_value_copy(&everything_type, &cp, &back));
        ASSERT(cp.S != back.S);
        ASSERT_OK(p2praft_encode(&everything_type, &cp, &out2, &len2));
        ASSERT_EQ(len2, len);
        ASSERT_MEM_EQ(out2, out, len);
        p2praft_free(out2);
        p2praft_value_release(&everything_type, &cp);
    }
    p2praft_value_release(&everything_type, &back);
    p2praft_free(out);
}

TEST(codec, empty_values_and_nil)
{
    struct everything e;
    uint8_t *out;
    size_t len;
    memset(&e, 0, sizeof(e));
    /* Zero value: nil slices/maps/bytes are nil, strings "". */
    ASSERT_OK(p2praft_encode(&everything_type, &e, &out, &len));
    ASSERT_EQ(out[0], 0x8f);
    {
        struct everything back;
        memset(&back, 0, sizeof(back));
        ASSERT_OK(p2praft_decode(&everything_type, &back, out, len));
        ASSERT(back.Bytes.data == NULL);
        ASSERT(back.Ints.items == NULL);
        ASSERT(back.M.keys == NULL);
        ASSERT_STR_EQ(back.S, "");
        p2praft_value_release(&everything_type, &back);
    }
    p2praft_free(out);
}

TEST(codec, decode_replaces)
{
    struct msg m;
    struct everything e;
    /* {} into a value holding data: the old string is dropped, not kept. */
    static const uint8_t empty_map[] = {0x80};
    m.Msg = p2praft_strdup("old");
    ASSERT_OK(p2praft_decode(&msg_type, &m, empty_map, 1));
    ASSERT(m.Msg == NULL);
    /* {"I": 7} into a filled value: other fields become zero. */
    memset(&e, 0, sizeof(e));
    e.S = p2praft_strdup("left over");
    e.B = true;
    {
        static const uint8_t in[] = {0x81, 0xa1, 'I', 0x07};
        ASSERT_OK(p2praft_decode(&everything_type, &e, in, sizeof(in)));
    }
    ASSERT(e.S == NULL);
    ASSERT(!e.B);
    ASSERT_EQ(e.I, 7);
    p2praft_value_release(&everything_type, &e);
}

TEST(codec, errors_are_distinct)
{
    struct msg m = {NULL};
    struct one_i i = {0};
    struct one_u u = {0};
    uint8_t *out;
    size_t len, k;
    /* unknown field */
    static const uint8_t unk[] = {0x81, 0xa3, 'M', 's', 'h', 0xa0};
    /* wrong type: Msg is an int */
    static const uint8_t wrong[] = {0x81, 0xa3, 'M', 's', 'g', 0x01};
    /* top-level not a map */
    static const uint8_t notmap[] = {0x91, 0x01};
    /* trailing byte */
    static const uint8_t trail[] = {0x81, 0xa3, 'M', 's', 'g', 0xa0, 0x00};
    /* int64 overflow from uint64 */
    static const uint8_t ovf[] = {0x81, 0xa1, 'I', 0xcf, 0x80, 0, 0, 0,
                                  0,    0,    0,   0};
    /* uint64 from a negative */
    static const uint8_t neg[] = {0x81, 0xa1, 'U', 0xff};
    /* 0xc1 never used */
    static const uint8_t bad[] = {0x81, 0xa3, 'M', 's', 'g', 0xc1};
    /* embedded NUL in a string */
    static const uint8_t nul[] = {0x81, 0xa3, 'M', 's', 'g', 0xa1, 0x00};
    /* huge array length in a few bytes */
    static const uint8_t huge[] = {0x81, 0xa4, 'I',  'n',  't',
                                   's',  0xdd, 0xff, 0xff, 0xff, 0xff};
    ASSERT_ERR(p2praft_decode(&msg_type, &m, unk, sizeof(unk)),
               P2PRAFT_EUNKNOWNFIELD);
    ASSERT_ERR(p2praft_decode(&msg_type, &m, wrong, sizeof(wrong)),
               P2PRAFT_ETYPE);
    ASSERT_ERR(p2praft_decode(&msg_type, &m, notmap, sizeof(notmap)),
               P2PRAFT_ETYPE);
    ASSERT_ERR(p2praft_decode(&msg_type, &m, trail, sizeof(trail)),
               P2PRAFT_ETRAILING);
    ASSERT_ERR(p2praft_decode(&one_i_type, &i, ovf, sizeof(ovf)),
               P2PRAFT_ETYPE);
    ASSERT_ERR(p2praft_decode(&one_u_type, &u, neg, sizeof(neg)),
               P2PRAFT_ETYPE);
    ASSERT_ERR(p2praft_decode(&msg_type, &m, bad, sizeof(bad)),
               P2PRAFT_EMALFORMED);
    ASSERT_ERR(p2praft_decode(&msg_type, &m, nul, sizeof(nul)),
               P2PRAFT_EMALFORMED);
    ASSERT_ERR(p2praft_decode(&everything_type, &m, huge, sizeof(huge)),
               P2PRAFT_ETRUNCATED);
    ASSERT_ERR(p2praft_decode(&msg_type, &m, NULL, 0), P2PRAFT_ETRUNCATED);
    ASSERT(m.Msg == NULL);

    /* Every strict prefix of a valid encoding is truncated, read from the
     * end of a guarded page. */
    {
        struct msg g = {"Good as new"};
        ASSERT_OK(p2praft_encode(&msg_type, &g, &out, &len));
        for (k = 0; k < len; k++) {
            uint8_t *p = test__guarded(out, k);
            ASSERT_ERR(p2praft_decode(&msg_type, &m, p, k),
                       P2PRAFT_ETRUNCATED);
            test__guarded_free(p, k);
        }
        p2praft_free(out);
    }
}

/* ---- Marshable: the seed's JSON example ---- */

struct marshable {
    char *A;
};

static int json_marshal(const void *v, p2praft_write_fn w, void *wctx)
{
    const struct marshable *m = v;
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "{\"A\":\"%s\"}\n", m->A ? m->A : "");
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        return P2PRAFT_ETOOBIG;
    }
    return w(wctx, buf, (size_t)n);
}

static int json_unmarshal(void *v, const uint8_t *data, size_t len)
{
    struct marshable *m = v;
    const char *pre = "{\"A\":\"";
    size_t pl = strlen(pre), end;
    if (len < pl + 3 || memcmp(data, pre, pl) != 0) {
        return P2PRAFT_EMALFORMED;
    }
    end = len;
    while (end > pl && data[end - 1] != '"') {
        end--;
    }
    if (end <= pl) {
        return P2PRAFT_EMALFORMED;
    }
    m->A = strndup((const char *)data + pl, end - 1 - pl);
    return m->A != NULL ? 0 : P2PRAFT_ENOMEM;
}

static void json_release(void *v)
{
    struct marshable *m = v;
    free(m->A);
    m->A = NULL;
}

static const struct p2praft_type marshable_type = {
    "marshable", sizeof(struct marshable), NULL, 0,
    json_marshal, json_unmarshal, json_release, NULL};

TEST(codec, encode_decode_snapshot_marshable)
{
    struct marshable m = {"testing"}, m2 = {NULL};
    uint8_t *out;
    size_t len;
    ASSERT_OK(p2praft_encode_snapshot(&marshable_type, &m, &out, &len));
    ASSERT_EQ(len, strlen("{\"A\":\"testing\"}\n"));
    ASSERT_MEM_EQ(out, "{\"A\":\"testing\"}\n", len);
    ASSERT_OK(p2praft_decode_snapshot(&marshable_type, &m2, out, len));
    ASSERT_STR_EQ(m2.A, "testing");
    {
        /* copies of custom values go through the hooks */
        struct marshable *d = p2praft_value_dup(&marshable_type, &m2);
        ASSERT(d != NULL);
        ASSERT_STR_EQ(d->A, "testing");
        ASSERT(d->A != m2.A);
        p2praft_value_destroy(&marshable_type, d);
    }
    ASSERT_ERR(p2praft_decode_snapshot(&marshable_type, &m2,
                                       (const uint8_t *)"nope", 4),
               P2PRAFT_EMALFORMED);
    ASSERT_STR_EQ(m2.A, "testing"); /* failed decode leaves it alone */
    json_release(&m2);
    p2praft_free(out);
}

/* ---- TestEncodeDecodeSnapshot ---- */

struct simple {
    int64_t D;
};
static const struct p2praft_field simple_fields[] = {
    {"D", offsetof(struct simple, D), {P2PRAFT_KIND_INT64, NULL, NULL}}};
static const struct p2praft_type simple_type = {
    "simple", sizeof(struct simple), simple_fields, 1, NULL, NULL, NULL, NULL};

struct test_state {
    int64_t A;
    char *B;
    struct simple C;
};
static const struct p2praft_field test_state_fields[] = {
    {"A", offsetof(struct test_state, A), {P2PRAFT_KIND_INT64, NULL, NULL}},
    {"B", offsetof(struct test_state, B), {P2PRAFT_KIND_STRING, NULL, NULL}},
    {"C", offsetof(struct test_state, C),
     {P2PRAFT_KIND_STRUCT, &simple_type, NULL}}};
static const struct p2praft_type test_state_type = {
    "testState", sizeof(struct test_state), test_state_fields, 3,
    NULL, NULL, NULL, NULL};

TEST(codec, encode_decode_snapshot)
{
    struct simple um = {25}, um2 = {0};
    struct test_state st, newst;
    uint8_t *out;
    size_t len;
    ASSERT_OK(p2praft_encode_snapshot(&simple_type, &um, &out, &len));
    ASSERT_OK(p2praft_decode_snapshot(&simple_type, &um2, out, len));
    ASSERT_EQ(um2.D, 25);
    p2praft_free(out);

    st.A = 5;
    st.B = strdup("hola");
    st.C.D = 1;
    memset(&newst, 0, sizeof(newst));
    ASSERT_OK(p2praft_encode_snapshot(&test_state_type, &st, &out, &len));
    ASSERT_OK(p2praft_decode_snapshot(&test_state_type, &newst, out, len));
    p2praft_free(out);
    ASSERT_EQ(newst.A, 5);
    ASSERT_STR_EQ(newst.B, "hola");
    ASSERT_EQ(newst.C.D, 1);
    /* no side modifications */
    free(st.B);
    st.B = strdup("adios");
    ASSERT_STR_EQ(newst.B, "hola");
    st.C.D = 6;
    ASSERT_EQ(newst.C.D, 1);
    free(st.B);
    p2praft_value_release(&test_state_type, &newst);
}

/* ---- OOM sweep over encode, decode and copy ---- */

struct oom_ctx {
    uint8_t *enc;
    size_t len;
};

static int oom_body(void *ctx)
{
    struct oom_ctx *o = ctx;
    struct everything *v, back;
    uint8_t *out;
    size_t len;
    int rv;
    memset(&back, 0, sizeof(back));
    rv = p2praft_decode(&everything_type, &back, o->enc, o->len);
    if (rv != 0) {
        return rv;
    }
    rv = p2praft_encode(&everything_type, &back, &out, &len);
    if (rv != 0) {
        p2praft_value_release(&everything_type, &back);
        return rv;
    }
    if (len != o->len || memcmp(out, o->enc, len) != 0) {
        p2praft_free(out);
        p2praft_value_release(&everything_type, &back);
        return P2PRAFT_EINVAL;
    }
    p2praft_free(out);
    v = p2praft_value_dup(&everything_type, &back);
    p2praft_value_release(&everything_type, &back);
    if (v == NULL) {
        return P2PRAFT_ENOMEM;
    }
    p2praft_value_destroy(&everything_type, v);
    return 0;
}

TEST(codec, oom_sweep)
{
    struct everything e;
    struct oom_ctx o;
    long n;
    everything_fixed(&e);
    ASSERT_OK(p2praft_encode(&everything_type, &e, &o.enc, &o.len));
    n = test__oom_sweep(oom_body, &o);
    ASSERT(n > 20);
    p2praft_free(o.enc);
}

/* The seed example's state: a snapshot of {Value:1998} is what Go writes. */
struct value_state {
    int64_t Value;
};
static const struct p2praft_field value_fields[] = {
    {"Value", offsetof(struct value_state, Value),
     {P2PRAFT_KIND_INT64, NULL, NULL}}};
static const struct p2praft_type value_type = {
    "raftState", sizeof(struct value_state), value_fields, 1,
    NULL, NULL, NULL, NULL};

TEST(codec, value_1998_snapshot)
{
    struct value_state v = {1998};
    expect_hex(&value_type, &v, "81a556616c7565d107ce");
}
