/* multistream-select 1.0 state machines. */
#include <stdlib.h>
#include <string.h>

#include "lp2p.h"
#include "p2p/multistream.h"
#include "test.h"
#include "util/buf.h"

/* Feed `in` to `m` in chunks of `chunk` bytes (0 = all at once), each
 * chunk from a guarded copy. Returns the total consumed or the error. */
static long feed_chunks(struct lp2p_mss *m, const uint8_t *in, size_t len,
                        size_t chunk, struct lp2p_buf *out)
{
    size_t off = 0;
    if (chunk == 0) {
        chunk = len;
    }
    while (off < len) {
        size_t n = len - off < chunk ? len - off : chunk;
        uint8_t *g = test__guarded(in + off, n);
        int rv = lp2p__mss_feed(m, g, n, out);
        test__guarded_free(g, n);
        if (rv < 0) {
            return rv;
        }
        off += (size_t)rv;
        if ((size_t)rv < n || m->state != LP2P_MSS_RUNNING) {
            break; /* done: the rest is for the next layer */
        }
    }
    return (long)off;
}

/* Run initiator and responder against each other until neither has output
 * left, moving bytes in chunks of `chunk`. Returns 0 or the first error. */
static int run_pair(struct lp2p_mss *a, struct lp2p_mss *b, size_t chunk)
{
    struct lp2p_buf ab, ba, tmp;
    int rv = 0, rounds = 0;
    lp2p__buf_init(&ab);
    lp2p__buf_init(&ba);
    lp2p__buf_init(&tmp);
    rv = lp2p__mss_start(a, &ab);
    if (rv == 0) {
        rv = lp2p__mss_start(b, &ba);
    }
    while (rv == 0 && (ab.len > 0 || ba.len > 0) && rounds++ < 100) {
        if (ab.len > 0) {
            long n = b->state == LP2P_MSS_RUNNING
                         ? feed_chunks(b, ab.data, ab.len, chunk, &ba)
                         : (long)ab.len;
            if (n < 0) {
                rv = (int)n;
                break;
            }
            ab.len = 0;
        }
        if (ba.len > 0) {
            long n = a->state == LP2P_MSS_RUNNING
                         ? feed_chunks(a, ba.data, ba.len, chunk, &ab)
                         : (long)ba.len;
            if (n < 0) {
                rv = (int)n;
                break;
            }
            ba.len = 0;
        }
    }
    lp2p__buf_free(&ab);
    lp2p__buf_free(&ba);
    lp2p__buf_free(&tmp);
    return rv;
}

static const uint8_t JS_NOISE[] = "\x13/multistream/1.0.0\n\x07/noise\n";

TEST(multistream, initiator_first_write_matches_js)
{
    /* js-libp2p captured: header and proposal in one 28-byte write. */
    static const char *protos[] = {"/noise"};
    struct lp2p_mss m;
    struct lp2p_buf out;
    size_t len;
    uint8_t *want = test__unhex(
        "132f6d756c746973747265616d2f312e302e300a072f6e6f6973650a", &len);
    lp2p__buf_init(&out);
    ASSERT_OK(lp2p__mss_init_initiator(&m, protos, 1));
    ASSERT_OK(lp2p__mss_start(&m, &out));
    ASSERT_EQ(out.len, len);
    ASSERT_MEM_EQ(out.data, want, len);
    ASSERT_EQ(out.len, sizeof(JS_NOISE) - 1);
    ASSERT_MEM_EQ(out.data, JS_NOISE, out.len);
    /* The responder's answer in the capture is the same 28 bytes. */
    out.len = 0;
    ASSERT_EQ(lp2p__mss_feed(&m, want, len, &out), (int)len);
    ASSERT(lp2p__mss_done(&m));
    ASSERT_STR_EQ(lp2p__mss_selected(&m), "/noise");
    ASSERT_EQ(out.len, 0);
    free(want);
    lp2p__buf_free(&out);
}

TEST(multistream, responder_byte_by_byte_and_all_at_once)
{
    static const char *protos[] = {"/yamux/1.0.0", "/noise"};
    size_t chunk;
    for (chunk = 0; chunk <= 5; chunk++) {
        struct lp2p_mss r;
        struct lp2p_buf out;
        long n;
        lp2p__buf_init(&out);
        ASSERT_OK(lp2p__mss_init_responder(&r, protos, 2, NULL, NULL));
        ASSERT_OK(lp2p__mss_start(&r, &out));
        ASSERT_EQ(out.len, 0);
        n = feed_chunks(&r, JS_NOISE, sizeof(JS_NOISE) - 1, chunk, &out);
        ASSERT_EQ(n, (long)sizeof(JS_NOISE) - 1);
        ASSERT(lp2p__mss_done(&r));
        ASSERT_STR_EQ(lp2p__mss_selected(&r), "/noise");
        ASSERT_EQ(out.len, sizeof(JS_NOISE) - 1);
        ASSERT_MEM_EQ(out.data, JS_NOISE, out.len);
        ASSERT_ERR(lp2p__mss_feed(&r, JS_NOISE, 1, &out), LP2P_ESTATE);
        lp2p__buf_free(&out);
    }
}

TEST(multistream, na_then_success_all_chunkings)
{
    static const char *offer[] = {"/tls/1.0.0", "/noise"};
    static const char *have[] = {"/noise"};
    size_t chunk;
    for (chunk = 0; chunk <= 4; chunk++) {
        struct lp2p_mss a, b;
        ASSERT_OK(lp2p__mss_init_initiator(&a, offer, 2));
        ASSERT_OK(lp2p__mss_init_responder(&b, have, 1, NULL, NULL));
        ASSERT_OK(run_pair(&a, &b, chunk));
        ASSERT(lp2p__mss_done(&a));
        ASSERT(lp2p__mss_done(&b));
        ASSERT_STR_EQ(lp2p__mss_selected(&a), "/noise");
        ASSERT_STR_EQ(lp2p__mss_selected(&b), "/noise");
    }
}

TEST(multistream, na_exact_bytes)
{
    static const char *have[] = {"/noise"};
    static const uint8_t in[] = "\x13/multistream/1.0.0\n\x0b/tls/1.0.0\n";
    static const uint8_t want[] = "\x13/multistream/1.0.0\n\x03na\n";
    struct lp2p_mss b;
    struct lp2p_buf out;
    lp2p__buf_init(&out);
    ASSERT_OK(lp2p__mss_init_responder(&b, have, 1, NULL, NULL));
    ASSERT_OK(lp2p__mss_start(&b, &out));
    ASSERT_EQ(lp2p__mss_feed(&b, in, sizeof(in) - 1, &out),
              (int)sizeof(in) - 1);
    ASSERT(!lp2p__mss_done(&b));
    ASSERT_EQ(out.len, sizeof(want) - 1);
    ASSERT_MEM_EQ(out.data, want, out.len);
    ASSERT(lp2p__mss_selected(&b) == NULL);
    lp2p__buf_free(&out);
}

TEST(multistream, all_refused_is_enoproto)
{
    static const char *offer[] = {"/a", "/b", "/c"};
    static const char *have[] = {"/d"};
    struct lp2p_mss a, b;
    ASSERT_OK(lp2p__mss_init_initiator(&a, offer, 3));
    ASSERT_OK(lp2p__mss_init_responder(&b, have, 1, NULL, NULL));
    ASSERT_ERR(run_pair(&a, &b, 0), LP2P_ENOPROTO);
    ASSERT(!lp2p__mss_done(&a));
    ASSERT_EQ(a.state, LP2P_MSS_FAILED);
    ASSERT_ERR(lp2p__mss_feed(&a, JS_NOISE, 1, NULL), LP2P_ESTATE);
}

static int match_echo(void *ctx, const char *proto, size_t len)
{
    int *calls = ctx;
    (*calls)++;
    ASSERT_EQ(strlen(proto), len);
    return len > 6 && memcmp(proto, "/echo/", 6) == 0;
}

TEST(multistream, responder_matcher)
{
    static const char *offer[] = {"/other", "/echo/2.0"};
    static const char *have[] = {"/noise"};
    struct lp2p_mss a, b;
    int calls = 0;
    ASSERT_OK(lp2p__mss_init_initiator(&a, offer, 2));
    ASSERT_OK(lp2p__mss_init_responder(&b, have, 1, match_echo, &calls));
    ASSERT_OK(run_pair(&a, &b, 1));
    ASSERT_EQ(calls, 2);
    ASSERT_STR_EQ(lp2p__mss_selected(&a), "/echo/2.0");
    ASSERT_STR_EQ(lp2p__mss_selected(&b), "/echo/2.0");
}

struct ls_seen {
    int n;
    char names[4][32];
};

static void on_ls(void *ctx, const char *proto, size_t len)
{
    struct ls_seen *s = ctx;
    ASSERT(len < 32 && s->n < 4);
    memcpy(s->names[s->n], proto, len);
    s->names[s->n][len] = '\0';
    s->n++;
}

TEST(multistream, ls_exact_bytes_and_initiator_list)
{
    static const char *have[] = {"/a", "/bb"};
    static const uint8_t in[] = "\x13/multistream/1.0.0\n\x03ls\n";
    /* uvarint(total) (uvarint(len) proto \n)* \n */
    static const uint8_t want[] =
        "\x13/multistream/1.0.0\n\x0a\x03/a\n\x04/bb\n\n";
    struct lp2p_mss a, b;
    struct lp2p_buf out;
    struct ls_seen seen;
    lp2p__buf_init(&out);
    ASSERT_OK(lp2p__mss_init_responder(&b, have, 2, NULL, NULL));
    ASSERT_OK(lp2p__mss_start(&b, &out));
    ASSERT_EQ(lp2p__mss_feed(&b, in, sizeof(in) - 1, &out),
              (int)sizeof(in) - 1);
    ASSERT_EQ(out.len, sizeof(want) - 1);
    ASSERT_MEM_EQ(out.data, want, out.len);

    /* An initiator with nothing to propose just lists. */
    memset(&seen, 0, sizeof(seen));
    ASSERT_OK(lp2p__mss_init_initiator(&a, NULL, 0));
    ASSERT_OK(lp2p__mss_set_ls(&a, on_ls, &seen));
    out.len = 0;
    ASSERT_OK(lp2p__mss_start(&a, &out));
    ASSERT_EQ(out.len, sizeof(in) - 1);
    ASSERT_MEM_EQ(out.data, in, out.len);
    out.len = 0;
    ASSERT_EQ(feed_chunks(&a, want, sizeof(want) - 1, 1, &out),
              (long)sizeof(want) - 1);
    ASSERT_EQ(a.state, LP2P_MSS_LISTED);
    ASSERT_EQ(seen.n, 2);
    ASSERT_STR_EQ(seen.names[0], "/a");
    ASSERT_STR_EQ(seen.names[1], "/bb");
    ASSERT_EQ(out.len, 0);
    lp2p__buf_free(&out);
}

TEST(multistream, ls_then_propose)
{
    static const char *offer[] = {"/x", "/bb"};
    static const char *have[] = {"/a", "/bb"};
    struct lp2p_mss a, b;
    struct ls_seen seen;
    memset(&seen, 0, sizeof(seen));
    ASSERT_OK(lp2p__mss_init_initiator(&a, offer, 2));
    ASSERT_OK(lp2p__mss_set_ls(&a, on_ls, &seen));
    ASSERT_OK(lp2p__mss_init_responder(&b, have, 2, NULL, NULL));
    ASSERT_OK(run_pair(&a, &b, 3));
    ASSERT_EQ(seen.n, 2);
    ASSERT_STR_EQ(lp2p__mss_selected(&a), "/bb");
    ASSERT_STR_EQ(lp2p__mss_selected(&b), "/bb");
}

TEST(multistream, several_messages_in_one_read)
{
    static const char *have[] = {"/bb"};
    static const uint8_t in[] =
        "\x13/multistream/1.0.0\n\x03ls\n\x03/x\n\x04/bb\n";
    static const uint8_t want[] = "\x13/multistream/1.0.0\n"
                                  "\x06\x04/bb\n\n"
                                  "\x03na\n"
                                  "\x04/bb\n";
    struct lp2p_mss b;
    struct lp2p_buf out;
    lp2p__buf_init(&out);
    ASSERT_OK(lp2p__mss_init_responder(&b, have, 1, NULL, NULL));
    ASSERT_OK(lp2p__mss_start(&b, &out));
    ASSERT_EQ(lp2p__mss_feed(&b, in, sizeof(in) - 1, &out),
              (int)sizeof(in) - 1);
    ASSERT(lp2p__mss_done(&b));
    ASSERT_EQ(out.len, sizeof(want) - 1);
    ASSERT_MEM_EQ(out.data, want, out.len);
    lp2p__buf_free(&out);
}

TEST(multistream, lazy_select_trailing_bytes)
{
    /* go-libp2p lazy select: header + protocol + application bytes. */
    static const char *have[] = {"/ipfs/ping/1.0.0"};
    static const uint8_t in[] =
        "\x13/multistream/1.0.0\n\x11/ipfs/ping/1.0.0\nPING-PAYLOAD";
    const size_t app = 12, total = sizeof(in) - 1;
    size_t chunk;
    for (chunk = 0; chunk <= 7; chunk++) {
        struct lp2p_mss b;
        struct lp2p_buf out;
        long n;
        lp2p__buf_init(&out);
        ASSERT_OK(lp2p__mss_init_responder(&b, have, 1, NULL, NULL));
        ASSERT_OK(lp2p__mss_start(&b, &out));
        n = feed_chunks(&b, in, total, chunk, &out);
        ASSERT_EQ(n, (long)(total - app));
        ASSERT(lp2p__mss_done(&b));
        ASSERT_MEM_EQ(in + n, "PING-PAYLOAD", app);
        lp2p__buf_free(&out);
    }
}

TEST(multistream, initiator_trailing_bytes_after_echo)
{
    static const char *offer[] = {"/noise"};
    static const uint8_t in[] = "\x13/multistream/1.0.0\n\x07/noise\nXYZ";
    struct lp2p_mss a;
    struct lp2p_buf out;
    lp2p__buf_init(&out);
    ASSERT_OK(lp2p__mss_init_initiator(&a, offer, 1));
    ASSERT_OK(lp2p__mss_start(&a, &out));
    ASSERT_EQ(lp2p__mss_feed(&a, in, sizeof(in) - 1, &out),
              (int)sizeof(in) - 4);
    ASSERT(lp2p__mss_done(&a));
    lp2p__buf_free(&out);
}

static int responder_feed_all(const uint8_t *in, size_t len, size_t chunk)
{
    static const char *have[] = {"/noise"};
    struct lp2p_mss b;
    struct lp2p_buf out;
    long n;
    lp2p__buf_init(&out);
    ASSERT_OK(lp2p__mss_init_responder(&b, have, 1, NULL, NULL));
    ASSERT_OK(lp2p__mss_start(&b, &out));
    n = feed_chunks(&b, in, len, chunk, &out);
    lp2p__buf_free(&out);
    return n < 0 ? (int)n : 0;
}

TEST(multistream, oversize_rejected)
{
    uint8_t big[1100];
    size_t chunk;
    memset(big, 'a', sizeof(big));
    /* 1025 = 0x81 0x08 */
    big[0] = 0x81;
    big[1] = 0x08;
    for (chunk = 0; chunk <= 2; chunk++) {
        ASSERT_ERR(responder_feed_all(big, sizeof(big), chunk),
                   LP2P_ETOOBIG);
        /* The length alone is enough to reject. */
        ASSERT_ERR(responder_feed_all(big, 2, chunk), LP2P_ETOOBIG);
    }
    /* Three-byte lengths are always too big. */
    big[0] = 0x80;
    big[1] = 0x80;
    big[2] = 0x01;
    ASSERT_ERR(responder_feed_all(big, 3, 0), LP2P_ETOOBIG);
    ASSERT_ERR(responder_feed_all(big, 3, 1), LP2P_ETOOBIG);
    /* 1024 bytes is allowed by size (then refused as a bad header). */
    big[0] = 0x80;
    big[1] = 0x08;
    big[1025] = '\n';
    ASSERT_ERR(responder_feed_all(big, 1026, 0), LP2P_EPROTO);
    ASSERT_ERR(responder_feed_all(big, 1026, 1), LP2P_EPROTO);
    ASSERT_EQ(responder_feed_all(big, 1025, 1), 0); /* still waiting */
}

TEST(multistream, garbage_and_bad_header)
{
    static const uint8_t v2[] = "\x13/multistream/2.0.0\n";
    static const uint8_t nonl[] = "\x13/multistream/1.0.0x";
    static const uint8_t zero[] = "\x00";
    static const uint8_t nonmin[] = "\x93\x00";
    static const uint8_t http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                                  "0123456789012345678901234567890123456789"
                                  "0123456789012345678901234567890123456789";
    size_t chunk;
    for (chunk = 0; chunk <= 1; chunk++) {
        ASSERT_ERR(responder_feed_all(v2, sizeof(v2) - 1, chunk),
                   LP2P_EPROTO);
        ASSERT_ERR(responder_feed_all(nonl, sizeof(nonl) - 1, chunk),
                   LP2P_EPROTO);
        ASSERT_ERR(responder_feed_all(zero, 1, chunk), LP2P_EPROTO);
        ASSERT_ERR(responder_feed_all(nonmin, 2, chunk), LP2P_EPROTO);
        ASSERT_ERR(responder_feed_all(http, sizeof(http) - 1, chunk),
                   LP2P_EPROTO);
    }
}

TEST(multistream, initiator_rejects_bad_answers)
{
    static const char *offer[] = {"/noise"};
    static const uint8_t wrong[] = "\x13/multistream/1.0.0\n\x05/tls\n";
    static const uint8_t nohdr[] = "\x07/noise\n";
    struct lp2p_mss a;
    struct lp2p_buf out;
    lp2p__buf_init(&out);
    ASSERT_OK(lp2p__mss_init_initiator(&a, offer, 1));
    ASSERT_OK(lp2p__mss_start(&a, &out));
    ASSERT_ERR(lp2p__mss_feed(&a, wrong, sizeof(wrong) - 1, &out),
               LP2P_EPROTO);
    ASSERT(lp2p__mss_selected(&a) == NULL);
    ASSERT_OK(lp2p__mss_init_initiator(&a, offer, 1));
    ASSERT_OK(lp2p__mss_start(&a, &out));
    ASSERT_ERR(lp2p__mss_feed(&a, nohdr, sizeof(nohdr) - 1, &out),
               LP2P_EPROTO);
    lp2p__buf_free(&out);
}

TEST(multistream, invalid_config)
{
    static const char *bad1[] = {""};
    static const char *bad2[] = {"a\nb"};
    struct lp2p_mss m;
    struct lp2p_buf out;
    char longp[1100];
    const char *bad3[] = {longp};
    memset(longp, 'x', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    lp2p__buf_init(&out);
    ASSERT_ERR(lp2p__mss_init_initiator(&m, bad1, 1), LP2P_EINVAL);
    ASSERT_ERR(lp2p__mss_init_initiator(&m, bad2, 1), LP2P_EINVAL);
    ASSERT_ERR(lp2p__mss_init_responder(&m, bad3, 1, NULL, NULL),
               LP2P_EINVAL);
    ASSERT_OK(lp2p__mss_init_initiator(&m, NULL, 0));
    ASSERT_ERR(lp2p__mss_start(&m, &out), LP2P_EINVAL);
    ASSERT_ERR(lp2p__mss_write_msg(&out, longp, 1024), LP2P_ETOOBIG);
    ASSERT_OK(lp2p__mss_write_msg(&out, longp, 1023));
    ASSERT_EQ(out.len, 1026);
    lp2p__buf_free(&out);
}
