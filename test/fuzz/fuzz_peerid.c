/* Fuzz peer ID parsing (text, and the same bytes as a multihash): what
 * parses must print in both forms and parse back to the same peer ID. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "lp2p.h"

static void roundtrip(const struct lp2p_peer_id *id)
{
    struct lp2p_peer_id back;
    char s[LP2P_PEER_ID_STRMAX];
    FUZZ_CHECK(id->len > 0 && id->len <= LP2P_PEER_ID_MAX);
    FUZZ_CHECK(lp2p_peer_id_to_string(id, s, sizeof(s)) == 0);
    FUZZ_CHECK(lp2p_peer_id_parse(&back, s) == 0);
    FUZZ_CHECK(lp2p_peer_id_equal(id, &back));
    FUZZ_CHECK(lp2p_peer_id_to_cid(id, s, sizeof(s)) == 0);
    FUZZ_CHECK(lp2p_peer_id_parse(&back, s) == 0);
    FUZZ_CHECK(lp2p_peer_id_equal(id, &back));
}

FUZZ_TARGET(peerid)
{
    struct lp2p_peer_id id;
    char *s = malloc(size + 1);
    FUZZ_CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    if (lp2p_peer_id_parse(&id, s) == 0) {
        roundtrip(&id);
    }
    if (lp2p_peer_id_from_bytes(&id, data, size) == 0) {
        FUZZ_CHECK(id.len == size && memcmp(id.bytes, data, size) == 0);
        roundtrip(&id);
    }
    free(s);
    return 0;
}
