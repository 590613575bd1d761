/* Protobuf wire format (src/p2p/pb.c): fields of every wire type,
 * unknown fields skipped, truncated and overlong input refused, OOM. */
#include "lp2p.h"
#include "oom.h"
#include "p2p/pb.h"
#include "test.h"
#include "util/buf.h"

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
