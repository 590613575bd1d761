/* util/buf.c: the growable byte buffer. */
#include <string.h>

#include "lp2p.h"
#include "test.h"
#include "util/buf.h"
#include "util/heap.h"

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

/* lp2p__buf_printf appends the whole text after what is there, without its
 * NUL, however long (the status and metrics texts are built with it). */
TEST(buf, printf_appends_whole_text)
{
    struct lp2p_buf b;
    char big[2001];
    size_t i;
    lp2p__buf_init(&b);
    ASSERT_OK(lp2p__buf_append(&b, "ab", 2));
    ASSERT_OK(lp2p__buf_printf(&b, "%s=%d;", "x", 42));
    ASSERT_EQ(b.len, 7);
    ASSERT(memcmp(b.data, "abx=42;", 7) == 0);
    ASSERT_OK(lp2p__buf_printf(&b, "%s", ""));
    ASSERT_EQ(b.len, 7);
    for (i = 0; i < sizeof(big) - 1; i++) {
        big[i] = (char)('a' + i % 26);
    }
    big[sizeof(big) - 1] = '\0';
    ASSERT_OK(lp2p__buf_printf(&b, "[%s]\n", big));
    ASSERT_EQ(b.len, 7 + 1 + 2000 + 2);
    ASSERT_EQ(b.data[7], '[');
    ASSERT(memcmp(b.data + 8, big, 2000) == 0);
    ASSERT(memcmp(b.data + 2008, "]\n", 2) == 0);
    lp2p__buf_free(&b);
}
