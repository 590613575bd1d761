/* Fuzz base58btc: decoding arbitrary text must not crash, and whatever
 * decodes must encode back to exactly the same text (the encoding is
 * canonical); arbitrary bytes must survive encode + decode. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "lp2p.h"
#include "util/base58.h"

FUZZ_TARGET(base58)
{
    uint8_t *dec, *back;
    char *txt;
    size_t cap = size + 1, tcap = LP2P_BASE58_ENCODED_MAX(size) + 2;
    int n, m;
    if (size > 2048) {
        return 0; /* quadratic; peer IDs are far shorter */
    }
    dec = malloc(cap);
    back = malloc(cap);
    txt = malloc(tcap);
    FUZZ_CHECK(dec != NULL && back != NULL && txt != NULL);
    n = lp2p__base58_decode((const char *)data, size, dec, cap);
    if (n >= 0) {
        FUZZ_CHECK((size_t)n <= size);
        m = lp2p__base58_encode(dec, (size_t)n, txt, tcap);
        FUZZ_CHECK(m >= 0 && (size_t)m == size);
        FUZZ_CHECK(memcmp(txt, data, size) == 0);
        if (n > 0) {
            FUZZ_CHECK(lp2p__base58_decode((const char *)data, size, dec,
                                           (size_t)n - 1) == LP2P_EOVERFLOW);
        }
    } else {
        FUZZ_CHECK(n == LP2P_EMALFORMED);
    }
    /* The input as bytes. */
    m = lp2p__base58_encode(data, size, txt, tcap);
    FUZZ_CHECK(m >= 0 && (size_t)m < tcap);
    FUZZ_CHECK(strlen(txt) == (size_t)m);
    n = lp2p__base58_decode(txt, (size_t)m, back, cap);
    FUZZ_CHECK(n >= 0 && (size_t)n == size);
    FUZZ_CHECK(memcmp(back, data, size) == 0);
    free(dec);
    free(back);
    free(txt);
    return 0;
}
