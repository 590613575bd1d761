/*
 * util/byteorder.h: big-endian integers in byte buffers. Known bytes, the
 * extremes, and unaligned positions.
 */
#include "test.h"
#include "util/byteorder.h"

TEST(byteorder, known_bytes)
{
    uint8_t b[8];
    lp2p__put16(b, 0x0102);
    ASSERT_MEM_EQ(b, "\x01\x02", 2);
    lp2p__put32(b, 0x01020304u);
    ASSERT_MEM_EQ(b, "\x01\x02\x03\x04", 4);
    lp2p__put64(b, 0x0102030405060708ull);
    ASSERT_MEM_EQ(b, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    ASSERT_EQ(lp2p__get16((const uint8_t *)"\xfe\x01"), 0xfe01);
    ASSERT_EQ_U64(lp2p__get32((const uint8_t *)"\x80\x00\x00\x01"),
                  0x80000001u);
    ASSERT_EQ_U64(lp2p__get64((const uint8_t *)"\xff\x00\x00\x00\x00\x00"
                                               "\x00\x01"),
                  0xff00000000000001ull);
}

TEST(byteorder, roundtrip_extremes_unaligned)
{
    static const uint64_t v64[] = {0, 1, 0xff, 0x100, 0x7fffffffffffffffull,
                                   0x8000000000000000ull, UINT64_MAX};
    static const uint32_t v32[] = {0, 1, 0xff, 0x10000, 0x7fffffffu,
                                   0x80000000u, UINT32_MAX};
    uint8_t buf[16];
    size_t i, off;
    for (off = 0; off < 8; off++) {
        for (i = 0; i < sizeof(v64) / sizeof(v64[0]); i++) {
            memset(buf, 0xaa, sizeof(buf));
            lp2p__put64(buf + off, v64[i]);
            ASSERT_EQ_U64(lp2p__get64(buf + off), v64[i]);
            /* nothing written outside the 8 bytes */
            ASSERT(off == 0 || buf[off - 1] == 0xaa);
            ASSERT(off + 8 == sizeof(buf) || buf[off + 8] == 0xaa);
        }
        for (i = 0; i < sizeof(v32) / sizeof(v32[0]); i++) {
            lp2p__put32(buf + off, v32[i]);
            ASSERT_EQ_U64(lp2p__get32(buf + off), v32[i]);
            lp2p__put16(buf + off, (uint16_t)v32[i]);
            ASSERT_EQ(lp2p__get16(buf + off), (uint16_t)v32[i]);
        }
    }
}
