/*
 * base58btc (and base36 decoding) by repeated multiplication: each input symbol multiplies the
 * big number held so far (little-endian digits in the output buffer) by
 * the base and adds itself. The digits are then reversed in place.
 */
#include "lp2p.h"
#include "base58.h"

#define LIMIT (1u << 20)

static const char alphabet[] =
    "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

static void reverse(uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n / 2; i++) {
        uint8_t t = p[i];
        p[i] = p[n - 1 - i];
        p[n - 1 - i] = t;
    }
}

int lp2p__base58_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    uint8_t *d = (uint8_t *)out;
    size_t zeros = 0, ndig = 0, i, j;
    if (len > LIMIT) {
        return LP2P_EINVAL;
    }
    while (zeros < len && in[zeros] == 0) {
        zeros++;
    }
    /* Digits (0..57), least significant first, after the '1' prefix. */
    if (cap < zeros + 1) {
        return LP2P_EOVERFLOW;
    }
    d += zeros;
    cap -= zeros + 1; /* room for digits */
    for (i = zeros; i < len; i++) {
        unsigned carry = in[i];
        for (j = 0; j < ndig; j++) {
            carry += (unsigned)d[j] << 8;
            d[j] = (uint8_t)(carry % 58);
            carry /= 58;
        }
        while (carry > 0) {
            if (ndig == cap) {
                return LP2P_EOVERFLOW;
            }
            d[ndig++] = (uint8_t)(carry % 58);
            carry /= 58;
        }
    }
    reverse(d, ndig);
    for (j = 0; j < ndig; j++) {
        d[j] = (uint8_t)alphabet[d[j]];
    }
    for (i = 0; i < zeros; i++) {
        out[i] = '1';
    }
    out[zeros + ndig] = '\0';
    return (int)(zeros + ndig);
}

/* The alphabet is 1-9, A-Z without I and O, a-z without l. */
static int digit_of(char c)
{
    if (c >= '1' && c <= '9') {
        return c - '1';
    }
    if (c >= 'A' && c <= 'H') {
        return c - 'A' + 9;
    }
    if (c >= 'J' && c <= 'N') {
        return c - 'J' + 17;
    }
    if (c >= 'P' && c <= 'Z') {
        return c - 'P' + 22;
    }
    if (c >= 'a' && c <= 'k') {
        return c - 'a' + 33;
    }
    if (c >= 'm' && c <= 'z') {
        return c - 'm' + 44;
    }
    return -1;
}

/* Digits of base36 (multibase 'k'/'K'), either case. */
static int digit36_of(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'Z') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Big-number conversion from `base` digits to bytes; leading `zero`
 * characters are leading zero bytes. */
static int basex_decode(const char *in, size_t len, uint8_t *out, size_t cap,
                        unsigned base, int (*digit)(char), char zero)
{
    size_t zeros = 0, nbytes = 0, i, j;
    uint8_t *b;
    if (len > LIMIT) {
        return LP2P_EINVAL;
    }
    for (i = 0; i < len; i++) {
        if (digit(in[i]) < 0) {
            return LP2P_EMALFORMED;
        }
    }
    while (zeros < len && in[zeros] == zero) {
        zeros++;
    }
    if (cap < zeros) {
        return LP2P_EOVERFLOW;
    }
    b = out + zeros;
    cap -= zeros;
    for (i = zeros; i < len; i++) {
        unsigned carry = (unsigned)digit(in[i]);
        for (j = 0; j < nbytes; j++) {
            carry += (unsigned)b[j] * base;
            b[j] = (uint8_t)(carry & 0xff);
            carry >>= 8;
        }
        while (carry > 0) {
            if (nbytes == cap) {
                return LP2P_EOVERFLOW;
            }
            b[nbytes++] = (uint8_t)(carry & 0xff);
            carry >>= 8;
        }
    }
    reverse(b, nbytes);
    for (i = 0; i < zeros; i++) {
        out[i] = 0;
    }
    return (int)(zeros + nbytes);
}

int lp2p__base58_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    return basex_decode(in, len, out, cap, 58, digit_of, '1');
}

int lp2p__base36_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    return basex_decode(in, len, out, cap, 36, digit36_of, '0');
}
