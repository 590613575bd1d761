#include "lp2p.h"
#include "base32.h"

#define LIMIT (1u << 24)

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

int lp2p__base32_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    size_t n, i, o = 0;
    unsigned acc = 0, bits = 0;
    if (len > LIMIT) {
        return LP2P_EINVAL;
    }
    n = LP2P_BASE32_ENCODED_LEN(len);
    if (cap < n + 1) {
        return LP2P_EOVERFLOW;
    }
    for (i = 0; i < len; i++) {
        acc = ((acc << 8) | in[i]) & 0xfff;
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = alphabet[(acc >> bits) & 31];
        }
    }
    if (bits > 0) {
        out[o++] = alphabet[(acc << (5 - bits)) & 31];
    }
    out[o] = '\0';
    return (int)o;
}

static int digit_of(char c)
{
    if (c >= 'a' && c <= 'z') {
        return c - 'a';
    }
    if (c >= '2' && c <= '7') {
        return c - '2' + 26;
    }
    return -1;
}

int lp2p__base32_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    size_t i, o = 0, rem;
    unsigned acc = 0, bits = 0;
    if (len > LIMIT) {
        return LP2P_EINVAL;
    }
    rem = len % 8;
    if (rem == 1 || rem == 3 || rem == 6) {
        return LP2P_EMALFORMED;
    }
    if (cap < len * 5 / 8) {
        return LP2P_EOVERFLOW;
    }
    for (i = 0; i < len; i++) {
        int d = digit_of(in[i]);
        if (d < 0) {
            return LP2P_EMALFORMED;
        }
        acc = ((acc << 5) | (unsigned)d) & 0xfff;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Left-over bits (fewer than 5) must be zero padding. */
    if ((acc & ((1u << bits) - 1)) != 0) {
        return LP2P_EMALFORMED;
    }
    return (int)o;
}
