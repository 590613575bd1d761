#include "lp2p.h"
#include "varint.h"

size_t lp2p__varint_len(uint64_t v)
{
    size_t n = 1;
    if (v >> 63) {
        return 0;
    }
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t lp2p__varint_encode(uint64_t v, uint8_t *out)
{
    size_t n = 0;
    if (v >> 63) {
        return 0;
    }
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

int lp2p__varint_decode(const uint8_t *in, size_t len, uint64_t *v)
{
    uint64_t x = 0;
    size_t i;
    for (i = 0; i < len; i++) {
        uint8_t b = in[i];
        if (i == LP2P_VARINT_MAX) {
            return LP2P_EOVERFLOW;
        }
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            if (b == 0 && i > 0) {
                return LP2P_ENONMINIMAL;
            }
            *v = x;
            return (int)(i + 1);
        }
    }
    return len >= LP2P_VARINT_MAX ? LP2P_EOVERFLOW : LP2P_EAGAIN;
}
