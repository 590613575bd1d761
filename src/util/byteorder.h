/*
 * Big-endian (network order) integers in byte buffers, as every length
 * prefix and header of our own wire formats uses them. Byte by byte, so
 * neither alignment nor the host's byte order matters. The caller bounds
 * the buffer: each call reads or writes exactly 2, 4 or 8 bytes.
 */
#ifndef LP2P_UTIL_BYTEORDER_H
#define LP2P_UTIL_BYTEORDER_H

#include <stdint.h>

static inline void lp2p__put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline uint16_t lp2p__get16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline void lp2p__put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t lp2p__get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

static inline void lp2p__put64(uint8_t *p, uint64_t v)
{
    lp2p__put32(p, (uint32_t)(v >> 32));
    lp2p__put32(p + 4, (uint32_t)v);
}

static inline uint64_t lp2p__get64(const uint8_t *p)
{
    return (uint64_t)lp2p__get32(p) << 32 | lp2p__get32(p + 4);
}

#endif
