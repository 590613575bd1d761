/* Foundation: errors, logging, heap hook, buffers, varint, protobuf. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p.h"
#include "p2praft.h"
#include "oom.h"
#include "p2p/pb.h"
#include "test.h"
#include "util/buf.h"
#include "util/heap.h"
#include "util/log.h"
#include "util/varint.h"

TEST(errors, table)
{
    ASSERT_STR_EQ(lp2p_strerror(0), "success");
    ASSERT_STR_EQ(lp2p_strerror(LP2P_ENOMEM), "out of memory");
    ASSERT_STR_EQ(p2praft_strerror(P2PRAFT_ENOSTATE),
                  "no state has been agreed upon yet");
    ASSERT_EQ(P2PRAFT_ENOSTATE, LP2P_ENOSTATE);
    ASSERT_STR_EQ(lp2p_strerror(-9999), "unknown error");
    ASSERT_STR_EQ(lp2p_errname(LP2P_EPEERID), "LP2P_EPEERID");
}

/* Callers decide on codes: which ones leave a write's outcome unknown. */
TEST(errors, outcome_unknown)
{
    static const int unknown[] = {P2PRAFT_EUNKNOWN, P2PRAFT_ETIMEDOUT,
                                  P2PRAFT_ESHUTDOWN};
    static const int not_applied[] = {
        P2PRAFT_ENOTLEADER, P2PRAFT_ENOLEADER, P2PRAFT_ERAFT,
        P2PRAFT_ENOACTOR,   P2PRAFT_ENORAFT,   P2PRAFT_EINVAL,
        P2PRAFT_ENOMEM,     P2PRAFT_ELIMIT,    P2PRAFT_ENOTCAUGHTUP,
        P2PRAFT_ENOTFOUND,  P2PRAFT_EMISMATCH};
    size_t i;
    for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        ASSERT(p2praft_outcome_unknown(unknown[i]));
    }
    for (i = 0; i < sizeof(not_applied) / sizeof(not_applied[0]); i++) {
        ASSERT(!p2praft_outcome_unknown(not_applied[i]));
    }
    ASSERT(!p2praft_outcome_unknown(0));
    ASSERT(!p2praft_outcome_unknown(P2PRAFT_EAPPLY)); /* committed */
    ASSERT_STR_EQ(lp2p_errname(P2PRAFT_EUNKNOWN), "LP2P_EUNKNOWN");
    ASSERT(strstr(p2praft_strerror(P2PRAFT_EUNKNOWN), "unknown") != NULL);
}

struct log_capture {
    int calls;
    enum lp2p_log_level level;
    char module[32];
    char msg[128];
};

static void capture_cb(void *ctx, enum lp2p_log_level level,
                       const char *module, const char *msg)
{
    struct log_capture *c = ctx;
    c->calls++;
    c->level = level;
    snprintf(c->module, sizeof(c->module), "%s", module);
    snprintf(c->msg, sizeof(c->msg), "%s", msg);
}

TEST(log, levels_and_sink)
{
    struct log_capture c;
    enum lp2p_log_level l;
    memset(&c, 0, sizeof(c));
    lp2p_log_set(LP2P_LOG_WARN, capture_cb, &c);
    LOG_INFO("test", "hidden %d", 1);
    ASSERT_EQ(c.calls, 0);
    LOG_ERROR("test", "shown %d", 42);
    ASSERT_EQ(c.calls, 1);
    ASSERT_EQ(c.level, LP2P_LOG_ERROR);
    ASSERT_STR_EQ(c.module, "test");
    ASSERT_STR_EQ(c.msg, "shown 42");
    lp2p_log_set(LP2P_LOG_OFF, NULL, NULL);
    LOG_ERROR("test", "off");
    ASSERT_EQ(c.calls, 1);
    ASSERT_OK(lp2p_log_level_parse("debug", &l));
    ASSERT_EQ(l, LP2P_LOG_DEBUG);
    ASSERT_ERR(lp2p_log_level_parse("loud", &l), LP2P_EINVAL);
}

TEST(heap, oom_hook_fails_nth)
{
    void *a, *b;
    test__oom_install(2);
    a = lp2p__malloc(10);
    b = lp2p__malloc(10);
    ASSERT(a != NULL);
    ASSERT(b == NULL);
    ASSERT_EQ(test__oom_live(), 1);
    lp2p__free(a);
    ASSERT_EQ(test__oom_live(), 0);
    test__oom_remove();
}

TEST(buf, append_consume_detach)
{
    struct lp2p_buf b;
    uint8_t *p;
    size_t n;
    int i;
    lp2p__buf_init(&b);
    for (i = 0; i < 1000; i++) {
        ASSERT_OK(lp2p__buf_append_byte(&b, (uint8_t)i));
    }
    ASSERT_EQ(b.len, 1000);
    lp2p__buf_consume(&b, 998);
    ASSERT_EQ(b.len, 2);
    ASSERT_EQ(b.data[0], (uint8_t)998);
    ASSERT_OK(lp2p__buf_append_varint(&b, 300));
    ASSERT_EQ(b.len, 4);
    ASSERT_EQ(b.data[2], 0xac);
    ASSERT_EQ(b.data[3], 0x02);
    p = lp2p__buf_detach(&b, &n);
    ASSERT_EQ(n, 4);
    ASSERT(b.data == NULL && b.len == 0);
    lp2p__free(p);
}

TEST(varint, spec_vectors)
{
    /* From the multiformats unsigned-varint spec. */
    static const struct {
        uint64_t v;
        const char *hex;
    } vec[] = {{1, "01"},       {127, "7f"},         {128, "8001"},
               {255, "ff01"},   {300, "ac02"},       {16384, "808001"},
               {0, "00"},       {0x7fffffffffffffffULL, "ffffffffffffffff7f"}};
    size_t i;
    for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        uint8_t out[LP2P_VARINT_MAX];
        char hex[2 * LP2P_VARINT_MAX + 1];
        uint64_t back = 0;
        size_t n = lp2p__varint_encode(vec[i].v, out);
        test__hex(out, n, hex);
        ASSERT_STR_EQ(hex, vec[i].hex);
        ASSERT_EQ(lp2p__varint_len(vec[i].v), n);
        ASSERT_EQ(lp2p__varint_decode(out, n, &back), (int)n);
        ASSERT_EQ_U64(back, vec[i].v);
    }
    ASSERT_EQ(lp2p__varint_len(1ULL << 63), 0);
}

TEST(varint, rejects_bad_input)
{
    static const uint8_t nonmin[] = {0x81, 0x00};
    static const uint8_t nonmin2[] = {0x80, 0x80, 0x00};
    static const uint8_t tenbytes[] = {0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t partial[] = {0x80, 0x80};
    uint64_t v;
    ASSERT_ERR(lp2p__varint_decode(nonmin, 2, &v), LP2P_ENONMINIMAL);
    ASSERT_ERR(lp2p__varint_decode(nonmin2, 3, &v), LP2P_ENONMINIMAL);
    ASSERT_ERR(lp2p__varint_decode(tenbytes, 10, &v), LP2P_EOVERFLOW);
    ASSERT_ERR(lp2p__varint_decode(tenbytes, 9, &v), LP2P_EOVERFLOW);
    ASSERT_ERR(lp2p__varint_decode(partial, 2, &v), LP2P_EAGAIN);
    ASSERT_ERR(lp2p__varint_decode(partial, 0, &v), LP2P_EAGAIN);
}

TEST(pb, roundtrip_and_skip_unknown)
{
    struct lp2p_buf b;
    struct lp2p_pb_reader r;
    struct lp2p_pb_field f;
    static const uint8_t fixed[] = {0x1d, 1, 2, 3, 4,              /* 3: f32 */
                                    0x21, 1, 2, 3, 4, 5, 6, 7, 8}; /* 4: f64 */
    int seen = 0;
    lp2p__buf_init(&b);
    ASSERT_OK(lp2p__pb_put_varint(&b, 1, 1));
    ASSERT_OK(lp2p__buf_append(&b, fixed, sizeof(fixed)));
    ASSERT_OK(lp2p__pb_put_string(&b, 2, "hello"));
    lp2p__pb_reader_init(&r, b.data, b.len);
    for (;;) {
        int rv = lp2p__pb_next(&r, &f);
        ASSERT(rv >= 0);
        if (rv == 0)
            break;
        if (f.num == 1) {
            ASSERT_EQ(f.wire, LP2P_PB_VARINT);
            ASSERT_EQ(f.u64, 1);
            seen |= 1;
        } else if (f.num == 2) {
            ASSERT_EQ(f.len, 5);
            ASSERT_MEM_EQ(f.data, "hello", 5);
            seen |= 2;
        } else if (f.num == 3) {
            ASSERT_EQ(f.u64, 0x04030201);
            seen |= 4;
        } else if (f.num == 4) {
            ASSERT_EQ_U64(f.u64, 0x0807060504030201ULL);
            seen |= 8;
        }
    }
    ASSERT_EQ(seen, 15);
    lp2p__buf_free(&b);
}

TEST(pb, rejects_truncated_and_overlong)
{
    static const uint8_t trunc_len[] = {0x12, 0x05, 'h', 'i'};
    static const uint8_t trunc_key[] = {0x80};
    static const uint8_t group[] = {0x0b};
    static const uint8_t field0[] = {0x00, 0x01};
    static const uint8_t overlong[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t trunc_f32[] = {0x1d, 1, 2};
    struct lp2p_pb_reader r;
    struct lp2p_pb_field f;
    uint8_t *g;
#define EXPECT(arr, err)                                                      \
    g = test__guarded(arr, sizeof(arr));                                      \
    lp2p__pb_reader_init(&r, g, sizeof(arr));                                 \
    ASSERT_ERR(lp2p__pb_next(&r, &f), err);                                   \
    test__guarded_free(g, sizeof(arr))
    EXPECT(trunc_len, LP2P_ETRUNCATED);
    EXPECT(trunc_key, LP2P_ETRUNCATED);
    EXPECT(group, LP2P_EUNSUPPORTED);
    EXPECT(field0, LP2P_EMALFORMED);
    EXPECT(overlong, LP2P_EMALFORMED);
    EXPECT(trunc_f32, LP2P_ETRUNCATED);
#undef EXPECT
}

static int pb_oom_body(void *ctx)
{
    struct lp2p_buf b;
    int i, rv = 0;
    (void)ctx;
    lp2p__buf_init(&b);
    for (i = 0; i < 40 && rv == 0; i++) {
        rv = lp2p__pb_put_string(&b, 3, "some protocol name to grow the buffer");
    }
    lp2p__buf_free(&b);
    return rv;
}

TEST(pb, oom_sweep)
{
    ASSERT(test__oom_sweep(pb_oom_body, NULL) > 0);
}
