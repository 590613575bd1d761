/* util/varint.c: unsigned varints, against the multiformats spec. */
#include "lp2p.h"
#include "test.h"
#include "util/varint.h"

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
