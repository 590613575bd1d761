/* Fuzz the KV state's decoder (raft/kv.c: a snapshot's bytes into the
 * ordered map): what it accepts must be a valid map, encode, decode again
 * to the same bytes, and copy to the same bytes; rejections must be the
 * field-table codec's documented errors. */
#include <string.h>

#include "fuzz.h"
#include "p2praft.h"
#include "raft/kv.h"

FUZZ_TARGET(kv_state)
{
    const struct p2praft_type *t = &p2praft__kv_state_type;
    struct p2praft__kv_state *v, *v2, *cp;
    uint8_t *out, *out2;
    size_t len, len2;
    int rv;
    v = p2praft_value_new(t);
    FUZZ_CHECK(v != NULL);
    rv = p2praft_decode(t, v, data, size);
    if (rv != 0) {
        FUZZ_CHECK(rv == P2PRAFT_EUNKNOWNFIELD || rv == P2PRAFT_ETYPE ||
                   rv == P2PRAFT_ETRUNCATED || rv == P2PRAFT_ETRAILING ||
                   rv == P2PRAFT_EMALFORMED || rv == P2PRAFT_ETOOBIG);
        FUZZ_CHECK(p2praft__kv_count(v) == 0);
        p2praft_value_destroy(t, v);
        return 0;
    }
    FUZZ_CHECK(p2praft__kvmap_valid(&v->data));
    FUZZ_CHECK(p2praft_encode(t, v, &out, &len) == 0);
    v2 = p2praft_value_new(t);
    FUZZ_CHECK(v2 != NULL);
    FUZZ_CHECK(p2praft_decode(t, v2, out, len) == 0);
    FUZZ_CHECK(p2praft__kv_count(v2) == p2praft__kv_count(v));
    FUZZ_CHECK(p2praft_encode(t, v2, &out2, &len2) == 0);
    FUZZ_CHECK(len2 == len && memcmp(out, out2, len) == 0);
    p2praft_free(out2);
    cp = p2praft_value_dup(t, v2);
    FUZZ_CHECK(cp != NULL);
    FUZZ_CHECK(p2praft_encode(t, cp, &out2, &len2) == 0);
    FUZZ_CHECK(len2 == len && memcmp(out, out2, len) == 0);
    p2praft_free(out2);
    p2praft_value_destroy(t, cp);
    p2praft_value_destroy(t, v2);
    p2praft_value_destroy(t, v);
    p2praft_free(out);
    return 0;
}
