/*
 * The CRC-32 that raft_uv (cowsql raft) stores in its segment and snapshot
 * metadata files: polynomial 0x04C11DB7, most significant bit first, no
 * reflection, no final xor, the running value passed in (raft starts at 0).
 * CRC-32/CKSUM without its length suffix and final xor: "123456789" gives
 * 0x89A1897F. Used to validate raft's files before raft loads them.
 */
#ifndef LP2P_UTIL_CRC32_H
#define LP2P_UTIL_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* The CRC of `len` bytes at `p` (borrowed), continuing from `crc`. */
uint32_t lp2p__crc32_raft(uint32_t crc, const void *p, size_t len);

#endif
