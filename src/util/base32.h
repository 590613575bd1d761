/*
 * base32 as RFC 4648 defines it, with the lowercase alphabet and no
 * padding: the form multibase 'b' (and so CIDv1 text) uses.
 */
#ifndef LP2P_UTIL_BASE32_H
#define LP2P_UTIL_BASE32_H

#include <stddef.h>
#include <stdint.h>

/* Characters needed for `len` bytes (no NUL). */
#define LP2P_BASE32_ENCODED_LEN(len) (((len) * 8 + 4) / 5)

/*
 * Encode `len` bytes into `out` (capacity `cap`) and NUL-terminate.
 * Returns the number of characters written (without the NUL), or
 * LP2P_EOVERFLOW if `out` is too small, LP2P_EINVAL if len is over 2^24.
 */
int lp2p__base32_encode(const uint8_t *in, size_t len, char *out, size_t cap);

/*
 * Decode `len` characters (lowercase only, no padding) into `out`
 * (capacity `cap`). Returns the number of bytes written, or
 * LP2P_EMALFORMED for a character outside the alphabet, an impossible
 * length (1, 3 or 6 characters in the last group) or non-zero unused bits
 * in the last character (so that every byte string has one encoding),
 * LP2P_EOVERFLOW if `out` is too small, LP2P_EINVAL if len is over 2^24.
 */
int lp2p__base32_decode(const char *in, size_t len, uint8_t *out, size_t cap);

#endif
