/* util/base58.c: base58btc, against draft-msporny-base58, through guarded
 * copies so that an over-read faults. */
#include <stdlib.h>
#include <string.h>

#include "lp2p.h"
#include "test.h"
#include "util/base58.h"

/* Guarded copies so that an over-read faults. */
static int b58_dec(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s);
    uint8_t *g = test__guarded(s, n);
    int rv = lp2p__base58_decode((const char *)g, n, out, cap);
    test__guarded_free(g, n);
    return rv;
}

static int b58_enc(const void *p, size_t n, char *out, size_t cap)
{
    uint8_t *g = test__guarded(p, n);
    int rv = lp2p__base58_encode(g, n, out, cap);
    test__guarded_free(g, n);
    return rv;
}

TEST(base58, spec_vectors)
{
    /* draft-msporny-base58 test vectors. */
    static const struct {
        const char *hex, *b58;
    } vec[] = {
        {"48656c6c6f20576f726c6421", "2NEpo7TZRRrLZSi2U"},
        {"54686520717569636b2062726f776e20666f78206a756d7073206f76657220746"
         "865206c617a7920646f672e",
         "USm3fpXnKG5EUBx2ndxBDMPVciP5hGey2Jh4NDv6gmeo1LkMeiKrLJUUBk6Z"},
        {"0000287fb4cd", "11233QC4"},
        {"", ""},
        {"00", "1"},
        {"0000", "11"},
        {"61", "2g"},
        {"626262", "a3gV"},
        {"ff", "5Q"},
    };
    size_t i;
    for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        size_t n;
        uint8_t *raw = test__unhex(vec[i].hex, &n);
        char out[128];
        uint8_t back[128];
        ASSERT_EQ(b58_enc(raw, n, out, sizeof(out)), (int)strlen(vec[i].b58));
        ASSERT_STR_EQ(out, vec[i].b58);
        ASSERT_EQ(b58_dec(vec[i].b58, back, sizeof(back)), (int)n);
        ASSERT_MEM_EQ(back, raw, n);
        /* Exactly enough room works, one less does not. */
        ASSERT_EQ(b58_enc(raw, n, out, strlen(vec[i].b58) + 1),
                  (int)strlen(vec[i].b58));
        ASSERT_ERR(b58_enc(raw, n, out, strlen(vec[i].b58)), LP2P_EOVERFLOW);
        if (n > 0) {
            ASSERT_ERR(b58_dec(vec[i].b58, back, n - 1), LP2P_EOVERFLOW);
        }
        free(raw);
    }
}

TEST(base58, rejects_bad_characters)
{
    uint8_t out[64];
    ASSERT_ERR(b58_dec("0", out, sizeof(out)), LP2P_EMALFORMED);
    ASSERT_ERR(b58_dec("abcO", out, sizeof(out)), LP2P_EMALFORMED);
    ASSERT_ERR(b58_dec("Il", out, sizeof(out)), LP2P_EMALFORMED);
    ASSERT_ERR(b58_dec("2g ", out, sizeof(out)), LP2P_EMALFORMED);
    ASSERT_ERR(b58_dec("2g+", out, sizeof(out)), LP2P_EMALFORMED);
    ASSERT_ERR(lp2p__base58_decode("2\0g", 3, out, sizeof(out)),
               LP2P_EMALFORMED);
    ASSERT_ERR(b58_dec("\xc3\xa9", out, sizeof(out)), LP2P_EMALFORMED);
}

TEST(base58, roundtrip_many)
{
    uint8_t in[80], back[80];
    char txt[LP2P_BASE58_ENCODED_MAX(80) + 1];
    unsigned x = 12345;
    int len, i;
    for (len = 0; len <= 80; len++) {
        for (i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            /* Some leading zeros now and then. */
            in[i] = (i < len / 7 && (x >> 20) % 3 == 0) ? 0 : (uint8_t)(x >> 16);
        }
        ASSERT(b58_enc(in, (size_t)len, txt, sizeof(txt)) >= 0);
        ASSERT_EQ(b58_dec(txt, back, sizeof(back)), len);
        ASSERT_MEM_EQ(back, in, (size_t)len);
    }
}

TEST(base58, every_character)
{
    /* Each single character decodes to its index in the alphabet, and
     * every other byte value is refused. */
    static const char alphabet[] =
        "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    int c;
    for (c = 1; c < 256; c++) {
        char s[2] = {(char)c, 0};
        const char *pos = strchr(alphabet, c);
        uint8_t out[2];
        int n = b58_dec(s, out, sizeof(out));
        if (pos == NULL) {
            ASSERT_ERR(n, LP2P_EMALFORMED);
        } else if (c == '1') {
            ASSERT_EQ(n, 1);
            ASSERT_EQ(out[0], 0);
        } else {
            ASSERT_EQ(n, 1);
            ASSERT_EQ(out[0], pos - alphabet);
        }
    }
}
