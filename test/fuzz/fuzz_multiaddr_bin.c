/* Fuzz binary multiaddr validation: valid bytes must iterate to their
 * full length, print, and parse back from the text to the same bytes;
 * invalid bytes must be refused by every entry point. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "lp2p.h"

FUZZ_TARGET(multiaddr_bin)
{
    struct lp2p_multiaddr ma, again;
    struct lp2p_multiaddr_component c;
    struct lp2p_peer_id id;
    char err[LP2P_ERRMSG_MAX], *txt;
    size_t off = 0, total = 0;
    int rv, n;
    err[0] = '\0';
    rv = lp2p_multiaddr_validate(data, size, err, sizeof(err));
    if (rv != 0) {
        FUZZ_CHECK(rv == LP2P_EBADADDR && err[0] != '\0');
        FUZZ_CHECK(lp2p_multiaddr_from_bytes(&ma, data, size, NULL, 0) ==
                   LP2P_EBADADDR);
        return 0;
    }
    rv = lp2p_multiaddr_from_bytes(&ma, data, size, err, sizeof(err));
    FUZZ_CHECK(rv == 0 && ma.len == size);
    while ((rv = lp2p_multiaddr_next(&ma, &off, &c)) == 1) {
        FUZZ_CHECK(c.offset == total && c.size > 0);
        total += c.size;
    }
    FUZZ_CHECK(rv == 0 && total == size);
    rv = lp2p_multiaddr_peer_id(&ma, &id);
    FUZZ_CHECK(rv == 0 || rv == LP2P_ENOTFOUND);
    n = lp2p_multiaddr_to_string(&ma, NULL, 0);
    FUZZ_CHECK(n >= 0);
    txt = malloc((size_t)n + 1);
    FUZZ_CHECK(txt != NULL);
    FUZZ_CHECK(lp2p_multiaddr_to_string(&ma, txt, (size_t)n + 1) == n);
    if (size > 0) {
        rv = lp2p_multiaddr_parse(&again, txt, err, sizeof(err));
        FUZZ_CHECK(rv == 0);
        FUZZ_CHECK(lp2p_multiaddr_equal(&ma, &again));
        lp2p_multiaddr_free(&again);
    }
    lp2p_multiaddr_free(&ma);
    free(txt);
    return 0;
}
