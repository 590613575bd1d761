/* raft_uv's CRC-32 (util/crc32.h): the catalogue check value, and the
 * eight-bytes-a-step code against a plain bit-by-bit reference for every
 * length, alignment and chaining. */
#include <stdint.h>
#include <stdlib.h>

#include "test.h"
#include "util/crc32.h"

/* MSB-first CRC, polynomial 0x04C11DB7, bit by bit: the definition. */
static uint32_t reference(uint32_t crc, const uint8_t *p, size_t len)
{
    size_t i;
    int k;
    for (i = 0; i < len; i++) {
        crc ^= (uint32_t)p[i] << 24;
        for (k = 0; k < 8; k++) {
            crc = (crc & 0x80000000u) != 0 ? (crc << 1) ^ 0x04C11DB7u
                                           : crc << 1;
        }
    }
    return crc;
}

TEST(crc32, check_value)
{
    /* CRC-32/CKSUM's check value is 0x765E7680 after its final xor. */
    ASSERT_EQ_U64(lp2p__crc32_raft(0, "123456789", 9), 0x89A1897Fu);
    ASSERT_EQ_U64(lp2p__crc32_raft(0, "", 0), 0);
    ASSERT_EQ_U64(lp2p__crc32_raft(0x1234, "", 0), 0x1234);
}

TEST(crc32, matches_reference)
{
    uint8_t buf[300];
    size_t i, off, len;
    srand(7);
    for (i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)rand();
    }
    for (off = 0; off < 9; off++) {
        for (len = 0; off + len <= sizeof(buf); len += 1 + len / 8) {
            ASSERT_EQ_U64(lp2p__crc32_raft(0, buf + off, len),
                          reference(0, buf + off, len));
        }
    }
    /* chained: raft checksums a batch's entries one after the other */
    ASSERT_EQ_U64(lp2p__crc32_raft(lp2p__crc32_raft(0, buf, 13), buf + 13,
                                   200),
                  reference(0, buf, 213));
}
