/*
 * Unsigned varint as multiformats defines it: LEB128, at most 9 bytes
 * (values below 2^63), minimal encoding only.
 */
#ifndef LP2P_UTIL_VARINT_H
#define LP2P_UTIL_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define LP2P_VARINT_MAX 9

/* Bytes needed to encode `v`, or 0 if v >= 2^63. */
size_t lp2p__varint_len(uint64_t v);

/* Write `v` to `out` (room for LP2P_VARINT_MAX bytes). Returns the number
 * of bytes written, or 0 if v >= 2^63. */
size_t lp2p__varint_encode(uint64_t v, uint8_t *out);

/*
 * Decode one varint from `in`. Returns the number of bytes consumed (> 0),
 * LP2P_EAGAIN if `in` ends inside the varint, LP2P_ENONMINIMAL for a
 * redundant trailing zero group, or LP2P_EOVERFLOW past 9 bytes.
 */
int lp2p__varint_decode(const uint8_t *in, size_t len, uint64_t *v);

#endif
