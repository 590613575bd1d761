/*
 * base58btc (the Bitcoin alphabet), as peer IDs and multibase 'z' use it.
 * Leading zero bytes map to leading '1' characters and back. Nothing is
 * allocated: the digits are computed in the caller's output buffer.
 * Both directions are quadratic in the input length; callers bound it.
 */
#ifndef LP2P_UTIL_BASE58_H
#define LP2P_UTIL_BASE58_H

#include <stddef.h>
#include <stdint.h>

/* Upper bound of the characters base58 needs for `len` bytes (no NUL). */
#define LP2P_BASE58_ENCODED_MAX(len) ((len) * 138 / 100 + 1)

/*
 * Encode `len` bytes of `in` into `out` (capacity `cap`) and NUL-terminate.
 * Returns the number of characters written (without the NUL), or
 * LP2P_EOVERFLOW if `out` is too small (its contents are then undefined),
 * or LP2P_EINVAL if len is over 2^20.
 */
int lp2p__base58_encode(const uint8_t *in, size_t len, char *out, size_t cap);

/*
 * Decode `len` characters of `in` (no NUL needed) into `out` (capacity
 * `cap`). Returns the number of bytes written, LP2P_EMALFORMED for a
 * character outside the alphabet, LP2P_EOVERFLOW if the value does not fit
 * in `cap` bytes, or LP2P_EINVAL if len is over 2^20. An empty string
 * decodes to zero bytes.
 */
int lp2p__base58_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/*
 * Decode base36 (multibase 'k' and 'K': digits 0-9 then letters, either
 * case accepted as go-multibase does); leading '0's are zero bytes.
 * Same return values as lp2p__base58_decode().
 */
int lp2p__base36_decode(const char *in, size_t len, uint8_t *out, size_t cap);

#endif
