/*
 * raft_uv's CRC-32 (see crc32.h), eight bytes per step ("slicing by 8"):
 * a data directory of 100k entries is checked at every start, and a
 * table lookup per byte would make that check cost as much as reading the
 * files. The tables are built once, on first use.
 */
#include <pthread.h>

#include "util/crc32.h"

#define POLY 0x04C11DB7u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_build(void)
{
    unsigned i, k;
    for (i = 0; i < 256; i++) {
        uint32_t c = (uint32_t)i << 24;
        for (k = 0; k < 8; k++) {
            c = (c & 0x80000000u) != 0 ? (c << 1) ^ POLY : c << 1;
        }
        table[0][i] = c;
    }
    /* table[k][i]: the CRC of byte i followed by k zero bytes. */
    for (k = 1; k < 8; k++) {
        for (i = 0; i < 256; i++) {
            uint32_t c = table[k - 1][i];
            table[k][i] = (c << 8) ^ table[0][c >> 24];
        }
    }
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

uint32_t lp2p__crc32_raft(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    pthread_once(&table_once, table_build);
    while (len >= 8) {
        uint32_t one = crc ^ be32(p), two = be32(p + 4);
        crc = table[7][one >> 24] ^ table[6][(one >> 16) & 0xff] ^
              table[5][(one >> 8) & 0xff] ^ table[4][one & 0xff] ^
              table[3][two >> 24] ^ table[2][(two >> 16) & 0xff] ^
              table[1][(two >> 8) & 0xff] ^ table[0][two & 0xff];
        p += 8;
        len -= 8;
    }
    while (len-- > 0) {
        crc = (crc << 8) ^ table[0][(crc >> 24) ^ *p++];
    }
    return crc;
}
