/* src/util: errors, logging, heap hook, buffers, varint, base58btc, base32. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p.h"
#include "p2praft.h"
#include "oom.h"
#include "test.h"
#include "util/base32.h"
#include "util/base58.h"
#include "util/buf.h"
#include "util/heap.h"
#include "util/log.h"
#include "util/varint.h"

TEST(errors, table)
{
    ASSERT_STR_EQ(lp2p_strerror(0), "success");
    ASSERT_STR_EQ(lp2p_strerror(LP2P_ENOMEM), "out of memory");
    ASSERT_STR_EQ(p2praft_strerror(P2PRAFT_ENOSTATE),
                  "no state has been agreed upon yet");
    ASSERT_EQ(P2PRAFT_ENOSTATE, LP2P_ENOSTATE);
    ASSERT_STR_EQ(lp2p_strerror(-9999), "unknown error");
    ASSERT_STR_EQ(lp2p_errname(LP2P_EPEERID), "LP2P_EPEERID");
}

struct log_capture {
    int calls;
    enum lp2p_log_level level;
    char module[32];
    char msg[128];
};

static void capture_cb(void *ctx, enum lp2p_log_level level,
                       const char *module, const char *msg)
{
    struct log_capture *c = ctx;
    c->calls++;
    c->level = level;
    snprintf(c->module, sizeof(c->module), "%s", module);
    snprintf(c->msg, sizeof(c->msg), "%s", msg);
}

TEST(log, levels_and_sink)
{
    struct log_capture c;
    enum lp2p_log_level l;
    memset(&c, 0, sizeof(c));
    lp2p_log_set(LP2P_LOG_WARN, capture_cb, &c);
    LOG_INFO("test", "hidden %d", 1);
    ASSERT_EQ(c.calls, 0);
    LOG_ERROR("test", "shown %d", 42);
    ASSERT_EQ(c.calls, 1);
    ASSERT_EQ(c.level, LP2P_LOG_ERROR);
    ASSERT_STR_EQ(c.module, "test");
    ASSERT_STR_EQ(c.msg, "shown 42");
    lp2p_log_set(LP2P_LOG_OFF, NULL, NULL);
    LOG_ERROR("test", "off");
    ASSERT_EQ(c.calls, 1);
    ASSERT_OK(lp2p_log_level_parse("debug", &l));
    ASSERT_EQ(l, LP2P_LOG_DEBUG);
    ASSERT_ERR(lp2p_log_level_parse("loud", &l), LP2P_EINVAL);
}

TEST(heap, oom_hook_fails_nth)
{
    void *a, *b;
    test__oom_install(2);
    a = lp2p__malloc(10);
    b = lp2p__malloc(10);
    ASSERT(a != NULL);
    ASSERT(b == NULL);
    ASSERT_EQ(test__oom_live(), 1);
    lp2p__free(a);
    ASSERT_EQ(test__oom_live(), 0);
    test__oom_remove();
}

TEST(buf, append_consume_detach)
{
    struct lp2p_buf b;
    uint8_t *p;
    size_t n;
    int i;
    lp2p__buf_init(&b);
    for (i = 0; i < 1000; i++) {
        ASSERT_OK(lp2p__buf_append_byte(&b, (uint8_t)i));
    }
    ASSERT_EQ(b.len, 1000);
    lp2p__buf_consume(&b, 998);
    ASSERT_EQ(b.len, 2);
    ASSERT_EQ(b.data[0], (uint8_t)998);
    ASSERT_OK(lp2p__buf_append_varint(&b, 300));
    ASSERT_EQ(b.len, 4);
    ASSERT_EQ(b.data[2], 0xac);
    ASSERT_EQ(b.data[3], 0x02);
    p = lp2p__buf_detach(&b, &n);
    ASSERT_EQ(n, 4);
    ASSERT(b.data == NULL && b.len == 0);
    lp2p__free(p);
}

TEST(varint, spec_vectors)
{
    /* From the multiformats unsigned-varint spec. */
    static const struct {
        uint64_t v;
        const char *hex;
    } vec[] = {{1, "01"},       {127, "7f"},         {128, "8001"},
               {255, "ff01"},   {300, "ac02"},       {16384, "808001"},
               {0, "00"},       {0x7fffffffffffffffULL, "ffffffffffffffff7f"}};
    size_t i;
    for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        uint8_t out[LP2P_VARINT_MAX];
        char hex[2 * LP2P_VARINT_MAX + 1];
        uint64_t back = 0;
        size_t n = lp2p__varint_encode(vec[i].v, out);
        test__hex(out, n, hex);
        ASSERT_STR_EQ(hex, vec[i].hex);
        ASSERT_EQ(lp2p__varint_len(vec[i].v), n);
        ASSERT_EQ(lp2p__varint_decode(out, n, &back), (int)n);
        ASSERT_EQ_U64(back, vec[i].v);
    }
    ASSERT_EQ(lp2p__varint_len(1ULL << 63), 0);
}

TEST(varint, rejects_bad_input)
{
    static const uint8_t nonmin[] = {0x81, 0x00};
    static const uint8_t nonmin2[] = {0x80, 0x80, 0x00};
    static const uint8_t tenbytes[] = {0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t partial[] = {0x80, 0x80};
    uint64_t v;
    ASSERT_ERR(lp2p__varint_decode(nonmin, 2, &v), LP2P_ENONMINIMAL);
    ASSERT_ERR(lp2p__varint_decode(nonmin2, 3, &v), LP2P_ENONMINIMAL);
    ASSERT_ERR(lp2p__varint_decode(tenbytes, 10, &v), LP2P_EOVERFLOW);
    ASSERT_ERR(lp2p__varint_decode(tenbytes, 9, &v), LP2P_EOVERFLOW);
    ASSERT_ERR(lp2p__varint_decode(partial, 2, &v), LP2P_EAGAIN);
    ASSERT_ERR(lp2p__varint_decode(partial, 0, &v), LP2P_EAGAIN);
}

/* ---- base58btc and base32 (multibase) ---- */

/* Guarded copies so that an over-read faults. */
static int b58_dec(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s);
    uint8_t *g = test__guarded(s, n);
    int rv = lp2p__base58_decode((const char *)g, n, out, cap);
    test__guarded_free(g, n);
    return rv;
}

static int b32_dec(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s);
    uint8_t *g = test__guarded(s, n);
    int rv = lp2p__base32_decode((const char *)g, n, out, cap);
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

static int b32_enc(const void *p, size_t n, char *out, size_t cap)
{
    uint8_t *g = test__guarded(p, n);
    int rv = lp2p__base32_encode(g, n, out, cap);
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
