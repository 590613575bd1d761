/* Fuzz the multiaddr text parser: anything it accepts must print, and the
 * printed text must parse back to the same bytes and print the same. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "lp2p.h"

FUZZ_TARGET(multiaddr_str)
{
    struct lp2p_multiaddr ma, again;
    char err[LP2P_ERRMSG_MAX], *s, *txt, *txt2;
    int rv, n, m;
    s = malloc(size + 1);
    FUZZ_CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    err[0] = '\0';
    rv = lp2p_multiaddr_parse(&ma, s, err, sizeof(err));
    if (rv != 0) {
        FUZZ_CHECK(rv == LP2P_EBADADDR || rv == LP2P_ENOMEM);
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(ma.bytes == NULL && ma.len == 0);
        free(s);
        return 0;
    }
    FUZZ_CHECK(lp2p_multiaddr_validate(ma.bytes, ma.len, NULL, 0) == 0);
    n = lp2p_multiaddr_to_string(&ma, NULL, 0);
    FUZZ_CHECK(n > 0);
    txt = malloc((size_t)n + 1);
    txt2 = malloc((size_t)n + 1);
    FUZZ_CHECK(txt != NULL && txt2 != NULL);
    FUZZ_CHECK(lp2p_multiaddr_to_string(&ma, txt, (size_t)n + 1) == n);
    rv = lp2p_multiaddr_parse(&again, txt, err, sizeof(err));
    FUZZ_CHECK(rv == 0);
    FUZZ_CHECK(lp2p_multiaddr_equal(&ma, &again));
    m = lp2p_multiaddr_to_string(&again, txt2, (size_t)n + 1);
    FUZZ_CHECK(m == n && strcmp(txt, txt2) == 0);
    lp2p_multiaddr_free(&again);
    lp2p_multiaddr_free(&ma);
    free(txt);
    free(txt2);
    free(s);
    return 0;
}
