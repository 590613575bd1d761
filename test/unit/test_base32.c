/* util/base32.c: base32 as multibase 'b' (RFC 4648, lowercase, no
 * padding), through guarded copies so that an over-read faults. */
#include <string.h>

#include "lp2p.h"
#include "test.h"
#include "util/base32.h"

/* Guarded copies so that an over-read faults. */
static int b32_dec(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s);
    uint8_t *g = test__guarded(s, n);
    int rv = lp2p__base32_decode((const char *)g, n, out, cap);
    test__guarded_free(g, n);
    return rv;
}

static int b32_enc(const void *p, size_t n, char *out, size_t cap)
{
    uint8_t *g = test__guarded(p, n);
    int rv = lp2p__base32_encode(g, n, out, cap);
    test__guarded_free(g, n);
    return rv;
}

TEST(base32, rfc4648_vectors)
{
    /* RFC 4648 section 10, lowercase and unpadded as multibase 'b'. */
    static const struct {
        const char *in, *out;
    } vec[] = {{"", ""},           {"f", "my"},         {"fo", "mzxq"},
               {"foo", "mzxw6"},   {"foob", "mzxw6yq"}, {"fooba", "mzxw6ytb"},
               {"foobar", "mzxw6ytboi"}};
    size_t i;
    for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        char out[32];
        uint8_t back[32];
        size_t n = strlen(vec[i].in);
        ASSERT_EQ(b32_enc(vec[i].in, n, out, sizeof(out)),
                  (int)strlen(vec[i].out));
        ASSERT_STR_EQ(out, vec[i].out);
        ASSERT_EQ(LP2P_BASE32_ENCODED_LEN(n), strlen(vec[i].out));
        ASSERT_EQ(b32_dec(vec[i].out, back, sizeof(back)), (int)n);
        ASSERT_MEM_EQ(back, vec[i].in, n);
        ASSERT_ERR(b32_enc(vec[i].in, n, out, strlen(vec[i].out)),
                   LP2P_EOVERFLOW);
    }
}

TEST(base32, rejects_bad_input)
{
    uint8_t out[32];
    ASSERT_ERR(b32_dec("MZXQ", out, sizeof(out)), LP2P_EMALFORMED); /* upper */
    ASSERT_ERR(b32_dec("mzxq====", out, sizeof(out)), LP2P_EMALFORMED);
    ASSERT_ERR(b32_dec("m", out, sizeof(out)), LP2P_EMALFORMED); /* 1 char */
    ASSERT_ERR(b32_dec("mzx", out, sizeof(out)), LP2P_EMALFORMED);
    ASSERT_ERR(b32_dec("mzxw6y", out, sizeof(out)), LP2P_EMALFORMED);
    ASSERT_ERR(b32_dec("mz", out, sizeof(out)), LP2P_EMALFORMED); /* bits */
    ASSERT_ERR(b32_dec("m1", out, sizeof(out)), LP2P_EMALFORMED);
    ASSERT_ERR(b32_dec("mzxw6ytboi", out, 5), LP2P_EOVERFLOW);
    ASSERT_EQ(b32_dec("mzxw6ytboi", out, 6), 6);
}
