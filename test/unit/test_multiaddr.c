/*
 * Multiaddr: the vectors of test/vectors/libp2p-keys-peerids.txt (all
 * of them; a missing section fails), canonical forms, error messages,
 * binary validation, encapsulation, the sockaddr helpers, OOM.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lp2p.h"
#include "oom.h"
#include "test.h"

#define VECTORS "libp2p-keys-peerids.txt"

/* Parse from a guarded copy whose last byte is the NUL. */
static int ma_parse(struct lp2p_multiaddr *ma, const char *s, char *err)
{
    size_t n = strlen(s) + 1;
    uint8_t *g = test__guarded(s, n);
    int rv;
    err[0] = '\0';
    rv = lp2p_multiaddr_parse(ma, (const char *)g, err, LP2P_ERRMSG_MAX);
    test__guarded_free(g, n);
    return rv;
}

static int ma_from_bytes(struct lp2p_multiaddr *ma, const uint8_t *p, size_t n,
                         char *err)
{
    uint8_t *g = test__guarded(p, n);
    int rv;
    err[0] = '\0';
    rv = lp2p_multiaddr_from_bytes(ma, g, n, err, LP2P_ERRMSG_MAX);
    test__guarded_free(g, n);
    return rv;
}

static void ma_hex(const struct lp2p_multiaddr *ma, char *out)
{
    test__hex(ma->bytes, ma->len, out);
}

static void ma_str(const struct lp2p_multiaddr *ma, char *out, size_t cap)
{
    int n = lp2p_multiaddr_to_string(ma, out, cap);
    ASSERT(n >= 0 && (size_t)n < cap);
    ASSERT_EQ(strlen(out), n);
}

TEST(multiaddr, vector_file)
{
    size_t len;
    char *text = (char *)test__read_vector(VECTORS, &len);
    char *line, *save = NULL, err[LP2P_ERRMSG_MAX];
    char cur[300] = "", bytes[600] = "";
    int entries = 0, cid_form = 0;
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "multiaddr ", 10) == 0) {
            ASSERT(strlen(line + 10) < sizeof(cur));
            strcpy(cur, line + 10);
            bytes[0] = '\0';
        } else if (strncmp(line, "  bytes=", 8) == 0 && cur[0]) {
            struct lp2p_multiaddr ma;
            char hex[600];
            ASSERT(strlen(line + 8) < sizeof(bytes));
            strcpy(bytes, line + 8);
            if (ma_parse(&ma, cur, err) != 0) {
                test__fail(__FILE__, __LINE__, "%s: %s", cur, err);
            }
            ma_hex(&ma, hex);
            if (strcmp(hex, bytes) != 0) {
                test__fail(__FILE__, __LINE__, "%s: bytes %s, want %s", cur,
                           hex, bytes);
            }
            lp2p_multiaddr_free(&ma);
        } else if (strncmp(line, "  roundtrip=", 12) == 0 && bytes[0]) {
            struct lp2p_multiaddr ma, again;
            char s[300];
            size_t n;
            uint8_t *raw = test__unhex(bytes, &n);
            {
                uint8_t *g = test__guarded(raw, n);
                ASSERT_OK(lp2p_multiaddr_validate(g, n, err, sizeof(err)));
                test__guarded_free(g, n);
            }
            ASSERT_OK(ma_from_bytes(&ma, raw, n, err));
            free(raw);
            ma_str(&ma, s, sizeof(s));
            ASSERT_STR_EQ(s, line + 12);
            ASSERT_OK(ma_parse(&again, s, err));
            ASSERT(lp2p_multiaddr_equal(&ma, &again));
            lp2p_multiaddr_free(&ma);
            lp2p_multiaddr_free(&again);
            entries++;
            cur[0] = bytes[0] = '\0';
        } else if (strncmp(line, "p2p with CID form -> ", 21) == 0) {
            /* The CID form parses, and prints as base58btc. */
            struct lp2p_multiaddr ma, again;
            struct lp2p_peer_id id;
            const char *cid = line + 21 + 5;
            char s[300], want[LP2P_PEER_ID_STRMAX + 8];
            ASSERT(strncmp(line + 21, "/p2p/b", 6) == 0);
            ASSERT_OK(ma_parse(&ma, line + 21, err));
            ASSERT_OK(lp2p_peer_id_parse(&id, cid));
            strcpy(want, "/p2p/");
            ASSERT_OK(lp2p_peer_id_to_string(&id, want + 5, sizeof(want) - 5));
            ma_str(&ma, s, sizeof(s));
            ASSERT_STR_EQ(s, want);
            ASSERT(strncmp(s, "/p2p/12D3KooW", 13) == 0);
            ASSERT_OK(ma_parse(&again, s, err));
            ASSERT(lp2p_multiaddr_equal(&ma, &again));
            lp2p_multiaddr_free(&ma);
            lp2p_multiaddr_free(&again);
            cid_form = 1;
        }
    }
    free(text);
    if (entries < 7 || !cid_form || cur[0] != '\0') {
        test__fail(__FILE__, __LINE__,
                   "%s: %d complete multiaddr entries (want >= 7), CID form "
                   "%d, unfinished '%s'",
                   VECTORS, entries, cid_form, cur);
    }
}

TEST(multiaddr, canonical_forms)
{
    static const struct {
        const char *in, *out;
    } vec[] = {
        {"/ip4/1.2.3.4/tcp/80/", "/ip4/1.2.3.4/tcp/80"},
        {"/ip4/1.2.3.4//", "/ip4/1.2.3.4"},
        {"/ip4/0.0.0.0/udp/0/quic-v1", "/ip4/0.0.0.0/udp/0/quic-v1"},
        {"/ip4/255.255.255.255/tcp/65535", "/ip4/255.255.255.255/tcp/65535"},
        {"/ip6/0:0:0:0:0:0:0:1", "/ip6/::1"},
        {"/ip6/::", "/ip6/::"},
        {"/ip6/2001:DB8:0:0:1:0:0:1", "/ip6/2001:db8::1:0:0:1"},
        {"/ip6/2001:db8:0:1:1:1:1:1", "/ip6/2001:db8:0:1:1:1:1:1"},
        {"/ip6/2001:0db8::0001", "/ip6/2001:db8::1"},
        {"/ip6/1:0:0:2:0:0:0:3", "/ip6/1:0:0:2::3"},
        {"/ip6/fe80:0:0:0:1::", "/ip6/fe80::1:0:0:0"}, /* first of equal runs */
        {"/ip6/::ffff:1.2.3.4", "/ip6/::ffff:1.2.3.4"},
        {"/ip6/::ffff:0102:0304", "/ip6/::ffff:1.2.3.4"},
        {"/ip6/::1.2.3.4", "/ip6/::102:304"},
        {"/ip6/::2:3", "/ip6/::2:3"},
        {"/ip6zone/eth0/ip6/fe80::1/tcp/1", "/ip6zone/eth0/ip6/fe80::1/tcp/1"},
        {"/ipfs/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
         "/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"},
        {"/dns6/a.b/tcp/1/tls/sni/a.b/ws", "/dns6/a.b/tcp/1/tls/sni/a.b/ws"},
        {"/dnsaddr/bootstrap.libp2p.io/p2p-circuit/wss/noise/quic/webtransport",
         "/dnsaddr/bootstrap.libp2p.io/p2p-circuit/wss/noise/quic/webtransport"},
    };
    size_t i;
    char err[LP2P_ERRMSG_MAX], s[300];
    for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        struct lp2p_multiaddr ma, again;
        if (ma_parse(&ma, vec[i].in, err) != 0) {
            test__fail(__FILE__, __LINE__, "%s: %s", vec[i].in, err);
        }
        ma_str(&ma, s, sizeof(s));
        ASSERT_STR_EQ(s, vec[i].out);
        ASSERT_OK(ma_parse(&again, s, err));
        ASSERT(lp2p_multiaddr_equal(&ma, &again));
        lp2p_multiaddr_free(&ma);
        lp2p_multiaddr_free(&again);
    }
}

TEST(multiaddr, text_errors_name_the_component)
{
    static const struct {
        const char *in, *msg;
    } vec[] = {
        {"", "empty multiaddr"},
        {"/", "empty multiaddr"},
        {"ip4/1.2.3.4", "must begin with '/'"},
        {"/foo/1", "unknown protocol 'foo'"},
        {"/ip4/1.2.3.4/tcp/80/bar", "unknown protocol 'bar'"},
        {"/IP4/1.2.3.4", "unknown protocol 'IP4'"},
        {"/ip4/1.2.3", "invalid ip4 address '1.2.3'"},
        {"/ip4/1.2.3.4.5", "invalid ip4 address '1.2.3.4.5'"},
        {"/ip4/1.2.3.256", "invalid ip4 address '1.2.3.256'"},
        {"/ip4/01.2.3.4", "invalid ip4 address '01.2.3.4'"},
        {"/ip4/1.2.3.04", "invalid ip4 address '1.2.3.04'"},
        {"/ip4/1..3.4", "invalid ip4 address '1..3.4'"},
        {"/ip4/1.2.3.4 ", "invalid ip4 address '1.2.3.4 '"},
        {"/ip4/1.2.3.1234", "invalid ip4 address '1.2.3.1234'"},
        {"/ip4/::1", "invalid ip4 address '::1'"},
        {"/ip4", "missing value for 'ip4'"},
        {"/ip4/", "missing value for 'ip4'"},
        {"/ip4//tcp/1", "invalid ip4 address ''"},
        {"/ip4/1.2.3.4//tcp/1", "empty component"},
        {"//ip4/1.2.3.4", "empty component"},
        {"/ip6/1.2.3.4", "invalid ip6 address '1.2.3.4'"},
        {"/ip6/::1::", "invalid ip6 address '::1::'"},
        {"/ip6/fe80::1%eth0", "invalid ip6 address 'fe80::1%eth0'"},
        {"/ip6/1:2:3:4:5:6:7:8:9", "invalid ip6 address"},
        {"/ip6/0000:0000:0000:0000:0000:0000:0000:0000:00000000",
         "invalid ip6 address"},
        {"/tcp/70000", "tcp port out of range '70000'"},
        {"/tcp/65536", "tcp port out of range '65536'"},
        {"/udp/123456789", "udp port out of range '123456789'"},
        {"/tcp/080", "invalid tcp port '080'"},
        {"/tcp/-1", "invalid tcp port '-1'"},
        {"/tcp/+1", "invalid tcp port '+1'"},
        {"/tcp/0x50", "invalid tcp port '0x50'"},
        {"/tcp", "missing value for 'tcp'"},
        {"/p2p/notapeerid", "invalid p2p peer ID 'notapeerid'"},
        {"/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5", "invalid p2p"},
        {"/p2p/bafybeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe",
         "codec 0x70 is not libp2p-key"},
        {"/dns/", "missing value for 'dns'"},
        {"/dns4//tcp/1", "dns4 value of 0 bytes"},
        {"/quic-v1/1", "unknown protocol '1'"},
        {"/ip4/1.2.3.4/tcp/1/unknownprotocolwithaverylongnamethatgoesonandonandonandon",
         "unknown protocol 'unknownprotocolwithaverylongnamethatgoesonandona...'"},
        {"/\x01", "unknown protocol '?'"},
    };
    size_t i;
    char err[LP2P_ERRMSG_MAX];
    for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        struct lp2p_multiaddr ma;
        int rv = ma_parse(&ma, vec[i].in, err);
        if (rv != LP2P_EBADADDR || strstr(err, vec[i].msg) == NULL) {
            test__fail(__FILE__, __LINE__, "'%s': %s '%s', want '%s'",
                       vec[i].in, lp2p_errname(rv), err, vec[i].msg);
        }
        ASSERT(ma.bytes == NULL && ma.len == 0);
    }
    /* Like go, a DNS name may hold any byte but '/' and NUL; it must
     * round trip. */
    {
        struct lp2p_multiaddr ma;
        char s[32];
        ASSERT_OK(ma_parse(&ma, "/dns/\x01\xff", err));
        ASSERT_EQ(lp2p_multiaddr_to_string(&ma, s, sizeof(s)), 7);
        ASSERT_STR_EQ(s, "/dns/\x01\xff");
        lp2p_multiaddr_free(&ma);
    }
    /* A NULL or zero-sized error buffer is fine. */
    {
        struct lp2p_multiaddr ma;
        ASSERT_ERR(lp2p_multiaddr_parse(&ma, "/foo", NULL, 0), LP2P_EBADADDR);
        ASSERT_ERR(lp2p_multiaddr_parse(&ma, "/foo", err, 0), LP2P_EBADADDR);
    }
}

TEST(multiaddr, dns_value_limit)
{
    char in[300], err[LP2P_ERRMSG_MAX];
    struct lp2p_multiaddr ma;
    strcpy(in, "/dns/");
    memset(in + 5, 'a', 255);
    in[260] = '\0';
    ASSERT_OK(ma_parse(&ma, in, err));
    ASSERT_EQ(ma.len, 1 + 2 + 255);
    lp2p_multiaddr_free(&ma);
    in[260] = 'a';
    in[261] = '\0';
    ASSERT_ERR(ma_parse(&ma, in, err), LP2P_EBADADDR);
    ASSERT(strstr(err, "dns value of 256 bytes") != NULL);
}

TEST(multiaddr, binary_errors)
{
    static const struct {
        const char *hex, *msg;
    } vec[] = {
        {"04", "truncated ip4 value at byte 1"},
        {"047f0000", "truncated ip4 value"},
        {"047f000001060f", "truncated tcp value at byte 6"},
        {"29000000", "truncated ip6 value"},
        {"63", "unknown protocol code 99 at byte 0"},
        {"047f000001ff", "truncated protocol code at byte 5"},
        {"8000", "invalid varint protocol code at byte 0"},
        {"ffffffffffffffffff01", "invalid varint protocol code"},
        {"35", "truncated dns value length at byte 1"},
        {"3505616263", "truncated dns value at byte 2"},
        {"3500", "dns value of 0 bytes"},
        {"3503612f62", "dns value at byte 2 contains '/'"},
        {"3503610062", "contains NUL"},
        {"358000", "invalid varint dns value length"},
        {"a503", "truncated p2p value length"},
        {"a5030411020102", "multihash function 0x11"},
        {"a50303121faa", "sha2-256 multihash of 31 bytes"},
        {"a503031220aa", "multihash truncated: 1 of 32"},
        {"a503041220aaff", "invalid p2p value"},
        {"a50341", "truncated p2p value at byte 3: 65 bytes, 0 left"},
        {"a50341" "0041" "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000", "too long for a peer ID"},
        {"a503030001aa63", "unknown protocol code 99 at byte 6"},
        {"a503030001aaff", "truncated protocol code at byte 6"},
    };
    size_t i;
    char err[LP2P_ERRMSG_MAX];
    for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        struct lp2p_multiaddr ma;
        size_t n;
        uint8_t *raw = test__unhex(vec[i].hex, &n);
        int rv = ma_from_bytes(&ma, raw, n, err);
        if (rv != LP2P_EBADADDR || strstr(err, vec[i].msg) == NULL) {
            test__fail(__FILE__, __LINE__, "%s: %s '%s', want '%s'",
                       vec[i].hex, lp2p_errname(rv), err, vec[i].msg);
        }
        ASSERT(ma.bytes == NULL && ma.len == 0);
        free(raw);
    }
    /* Zero bytes are refused, as go does; an empty struct (what
     * decapsulating everything leaves) prints as "". */
    {
        struct lp2p_multiaddr ma;
        char s[4] = "x";
        ASSERT_ERR(lp2p_multiaddr_from_bytes(&ma, NULL, 0, err, sizeof(err)),
                   LP2P_EBADADDR);
        ASSERT_STR_EQ(err, "empty multiaddr");
        ASSERT_ERR(lp2p_multiaddr_validate(NULL, 0, NULL, 0), LP2P_EBADADDR);
        lp2p_multiaddr_init(&ma);
        ASSERT_EQ(lp2p_multiaddr_to_string(&ma, s, sizeof(s)), 0);
        ASSERT_STR_EQ(s, "");
    }
}

TEST(multiaddr, to_string_capacity)
{
    struct lp2p_multiaddr ma, bad;
    char err[LP2P_ERRMSG_MAX], s[64];
    static const char txt[] = "/ip4/127.0.0.1/tcp/4001";
    static uint8_t junk[] = {0x63};
    size_t n = strlen(txt);
    ASSERT_OK(ma_parse(&ma, txt, err));
    ASSERT_EQ(lp2p_multiaddr_to_string(&ma, NULL, 0), n);
    memset(s, 'x', sizeof(s));
    ASSERT_EQ(lp2p_multiaddr_to_string(&ma, s, n), n); /* one short */
    ASSERT_EQ(strlen(s), n - 1);
    ASSERT(strncmp(s, txt, n - 1) == 0);
    ASSERT_EQ(lp2p_multiaddr_to_string(&ma, s, n + 1), n);
    ASSERT_STR_EQ(s, txt);
    lp2p_multiaddr_free(&ma);
    bad.bytes = junk;
    bad.len = 1;
    ASSERT_ERR(lp2p_multiaddr_to_string(&bad, s, sizeof(s)), LP2P_EBADADDR);
    ASSERT_STR_EQ(s, "");
}

static void parse_ok(struct lp2p_multiaddr *ma, const char *s)
{
    char err[LP2P_ERRMSG_MAX];
    if (ma_parse(ma, s, err) != 0) {
        test__fail(__FILE__, __LINE__, "%s: %s", s, err);
    }
}

static void expect_str(const struct lp2p_multiaddr *ma, const char *want)
{
    char s[300];
    ma_str(ma, s, sizeof(s));
    ASSERT_STR_EQ(s, want);
}

TEST(multiaddr, iterate)
{
    struct lp2p_multiaddr ma;
    struct lp2p_multiaddr_component c;
    size_t off = 0;
    parse_ok(&ma, "/ip4/127.0.0.1/tcp/4001/p2p/"
                  "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5/quic");
    ASSERT_EQ(lp2p_multiaddr_next(&ma, &off, &c), 1);
    ASSERT_EQ(c.code, LP2P_MA_IP4);
    ASSERT_STR_EQ(c.name, "ip4");
    ASSERT_EQ(c.value_len, 4);
    ASSERT_EQ(c.value[0], 127);
    ASSERT_EQ(c.offset, 0);
    ASSERT_EQ(c.size, 5);
    ASSERT_EQ(lp2p_multiaddr_next(&ma, &off, &c), 1);
    ASSERT_EQ(c.code, LP2P_MA_TCP);
    ASSERT_EQ(c.value[0] << 8 | c.value[1], 4001);
    ASSERT_EQ(lp2p_multiaddr_next(&ma, &off, &c), 1);
    ASSERT_EQ(c.code, LP2P_MA_P2P);
    ASSERT_EQ(c.value_len, 38);
    ASSERT_EQ(c.size, 2 + 1 + 38);
    ASSERT_EQ(lp2p_multiaddr_next(&ma, &off, &c), 1);
    ASSERT_EQ(c.code, LP2P_MA_QUIC);
    ASSERT(c.value == NULL && c.value_len == 0);
    ASSERT_EQ(lp2p_multiaddr_next(&ma, &off, &c), 0);
    ASSERT_EQ(off, ma.len);
    lp2p_multiaddr_free(&ma);
}

TEST(multiaddr, encapsulate_decapsulate)
{
    struct lp2p_multiaddr a, b, c, d;
    parse_ok(&a, "/ip4/1.2.3.4/tcp/10");
    parse_ok(&b, "/p2p/12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5");
    ASSERT_OK(lp2p_multiaddr_encapsulate(&a, &b));
    expect_str(&a, "/ip4/1.2.3.4/tcp/10/p2p/"
                   "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5");
    /* Component-wise: /tcp/1 does not match /tcp/10. */
    parse_ok(&c, "/tcp/1");
    ASSERT_EQ(lp2p_multiaddr_decapsulate(&a, &c), 0);
    lp2p_multiaddr_free(&c);
    parse_ok(&c, "/tcp/10");
    ASSERT_EQ(lp2p_multiaddr_decapsulate(&a, &c), 1);
    expect_str(&a, "/ip4/1.2.3.4");
    lp2p_multiaddr_free(&c);
    /* Last occurrence, and everything after it. */
    lp2p_multiaddr_free(&a);
    parse_ok(&a, "/ip4/1.2.3.4/tcp/1/p2p-circuit/ip4/1.2.3.4/tcp/1/ws");
    parse_ok(&c, "/ip4/1.2.3.4/tcp/1");
    ASSERT_EQ(lp2p_multiaddr_decapsulate(&a, &c), 1);
    expect_str(&a, "/ip4/1.2.3.4/tcp/1/p2p-circuit");
    ASSERT_EQ(lp2p_multiaddr_decapsulate(&a, &c), 1);
    ASSERT(a.len == 0 && a.bytes == NULL); /* everything removed */
    ASSERT_EQ(lp2p_multiaddr_decapsulate(&a, &c), 0);
    lp2p_multiaddr_init(&d);
    ASSERT_EQ(lp2p_multiaddr_decapsulate(&c, &d), 0); /* empty tail */
    ASSERT_OK(lp2p_multiaddr_encapsulate(&c, &d));
    expect_str(&c, "/ip4/1.2.3.4/tcp/1");
    /* By protocol name (ipfs is p2p). */
    ASSERT_OK(lp2p_multiaddr_copy(&d, &c));
    ASSERT(lp2p_multiaddr_equal(&c, &d));
    ASSERT_OK(lp2p_multiaddr_encapsulate(&d, &b));
    ASSERT_OK(lp2p_multiaddr_encapsulate(&d, &c));
    ASSERT_OK(lp2p_multiaddr_encapsulate(&d, &b));
    ASSERT_EQ(lp2p_multiaddr_decapsulate_proto(&d, "ipfs"), 1);
    expect_str(&d, "/ip4/1.2.3.4/tcp/1/p2p/"
                   "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"
                   "/ip4/1.2.3.4/tcp/1");
    ASSERT_EQ(lp2p_multiaddr_decapsulate_proto(&d, "tcp"), 1);
    expect_str(&d, "/ip4/1.2.3.4/tcp/1/p2p/"
                   "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5/ip4/1.2.3.4");
    ASSERT_EQ(lp2p_multiaddr_decapsulate_proto(&d, "udp"), 0);
    ASSERT_ERR(lp2p_multiaddr_decapsulate_proto(&d, "nope"), LP2P_EBADADDR);
    ASSERT_EQ(lp2p_multiaddr_decapsulate_proto(&d, "ip4"), 1);
    ASSERT_EQ(lp2p_multiaddr_decapsulate_proto(&d, "ip4"), 1);
    ASSERT(d.len == 0);
    lp2p_multiaddr_free(&a);
    lp2p_multiaddr_free(&b);
    lp2p_multiaddr_free(&c);
    lp2p_multiaddr_free(&d);
}

TEST(multiaddr, peer_id)
{
    struct lp2p_multiaddr ma;
    struct lp2p_peer_id id, want;
    char s[LP2P_PEER_ID_STRMAX];
    parse_ok(&ma, "/ip4/1.2.3.4/tcp/1/p2p/"
                  "bafzaajaiaejcbcui4poxicprsx6vfwznhs5f24wkm4e36hmucin7g5eiag2a6324");
    ASSERT_OK(lp2p_multiaddr_peer_id(&ma, &id));
    ASSERT_OK(lp2p_peer_id_parse(&want,
                                 "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"));
    ASSERT(lp2p_peer_id_equal(&id, &want));
    ASSERT_OK(lp2p_peer_id_to_string(&id, s, sizeof(s)));
    lp2p_multiaddr_free(&ma);
    /* Not the last component: no peer ID (go's SplitAddr agrees). */
    parse_ok(&ma, "/p2p/12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"
                  "/p2p-circuit");
    ASSERT_ERR(lp2p_multiaddr_peer_id(&ma, &id), LP2P_ENOTFOUND);
    lp2p_multiaddr_free(&ma);
    ASSERT_ERR(lp2p_multiaddr_peer_id(&ma, &id), LP2P_ENOTFOUND);
}

TEST(multiaddr, sockaddr)
{
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
    struct sockaddr_storage ss;
    struct lp2p_multiaddr ma;
    size_t sslen;
    char host[256];
    uint16_t port;
    int family;

    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_port = htons(4001);
    ASSERT(inet_pton(AF_INET, "127.0.0.1", &in.sin_addr) == 1);
    ASSERT_OK(lp2p_multiaddr_from_sockaddr(&ma, (struct sockaddr *)&in));
    expect_str(&ma, "/ip4/127.0.0.1/tcp/4001");
    ASSERT_OK(lp2p_multiaddr_to_sockaddr(&ma, &ss, &sslen));
    ASSERT_EQ(sslen, sizeof(in));
    ASSERT_MEM_EQ(&ss, &in, sizeof(in));
    ASSERT_OK(lp2p_multiaddr_host_port(&ma, host, sizeof(host), &port, &family));
    ASSERT_STR_EQ(host, "127.0.0.1");
    ASSERT_EQ(port, 4001);
    ASSERT_EQ(family, AF_INET);
    ASSERT_ERR(lp2p_multiaddr_host_port(&ma, host, 9, &port, &family),
               LP2P_EOVERFLOW);
    ASSERT_OK(lp2p_multiaddr_host_port(&ma, host, 10, &port, &family));
    lp2p_multiaddr_free(&ma);

    memset(&in6, 0, sizeof(in6));
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(443);
    ASSERT(inet_pton(AF_INET6, "::1", &in6.sin6_addr) == 1);
    ASSERT_OK(lp2p_multiaddr_from_sockaddr(&ma, (struct sockaddr *)&in6));
    expect_str(&ma, "/ip6/::1/tcp/443");
    ASSERT_OK(lp2p_multiaddr_to_sockaddr(&ma, &ss, &sslen));
    ASSERT_EQ(sslen, sizeof(in6));
    ASSERT_MEM_EQ(&ss, &in6, sizeof(in6));
    ASSERT_OK(lp2p_multiaddr_host_port(&ma, host, sizeof(host), &port, &family));
    ASSERT_STR_EQ(host, "::1");
    ASSERT_EQ(family, AF_INET6);
    lp2p_multiaddr_free(&ma);

    /* An IPv4-mapped IPv6 peer address becomes /ip4. */
    ASSERT(inet_pton(AF_INET6, "::ffff:10.0.0.1", &in6.sin6_addr) == 1);
    ASSERT_OK(lp2p_multiaddr_from_sockaddr(&ma, (struct sockaddr *)&in6));
    expect_str(&ma, "/ip4/10.0.0.1/tcp/443");
    lp2p_multiaddr_free(&ma);
    in6.sin6_family = AF_UNIX;
    ASSERT_ERR(lp2p_multiaddr_from_sockaddr(&ma, (struct sockaddr *)&in6),
               LP2P_EINVAL);

    /* With /p2p after it: still a TCP endpoint. */
    parse_ok(&ma, "/ip4/1.2.3.4/tcp/5/p2p/"
                  "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5");
    ASSERT_OK(lp2p_multiaddr_to_sockaddr(&ma, &ss, &sslen));
    ASSERT_EQ(((struct sockaddr_in *)&ss)->sin_port, htons(5));
    lp2p_multiaddr_free(&ma);

    /* DNS names for host_port, not for sockaddr. */
    parse_ok(&ma, "/dns4/example.com/tcp/443");
    ASSERT_ERR(lp2p_multiaddr_to_sockaddr(&ma, &ss, &sslen), LP2P_EUNSUPPORTED);
    ASSERT_OK(lp2p_multiaddr_host_port(&ma, host, sizeof(host), &port, &family));
    ASSERT_STR_EQ(host, "example.com");
    ASSERT_EQ(port, 443);
    ASSERT_EQ(family, AF_INET);
    ASSERT_ERR(lp2p_multiaddr_host_port(&ma, host, 11, &port, &family),
               LP2P_EOVERFLOW);
    lp2p_multiaddr_free(&ma);
    parse_ok(&ma, "/dns/localhost/tcp/1");
    ASSERT_OK(lp2p_multiaddr_host_port(&ma, host, sizeof(host), &port, &family));
    ASSERT_EQ(family, AF_UNSPEC);
    lp2p_multiaddr_free(&ma);
    parse_ok(&ma, "/dns6/localhost/tcp/1");
    ASSERT_OK(lp2p_multiaddr_host_port(&ma, host, sizeof(host), &port, &family));
    ASSERT_EQ(family, AF_INET6);
    lp2p_multiaddr_free(&ma);

    /* Other shapes. */
    {
        static const char *const other[] = {
            "/ip4/1.2.3.4/udp/5",        "/ip4/1.2.3.4",
            "/ip4/1.2.3.4/tcp/5/ws",     "/tcp/5",
            "/ip4/1.2.3.4/tcp/5/p2p/12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5/ws",
            "/dnsaddr/x/tcp/5",
        };
        size_t i;
        for (i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
            parse_ok(&ma, other[i]);
            ASSERT_ERR(lp2p_multiaddr_to_sockaddr(&ma, &ss, &sslen),
                       LP2P_EUNSUPPORTED);
            ASSERT_ERR(lp2p_multiaddr_host_port(&ma, host, sizeof(host), &port,
                                                &family),
                       LP2P_EUNSUPPORTED);
            lp2p_multiaddr_free(&ma);
        }
        ASSERT_ERR(lp2p_multiaddr_to_sockaddr(&ma, &ss, &sslen),
                   LP2P_EUNSUPPORTED); /* empty */
    }
}

static int oom_body(void *ctx)
{
    struct lp2p_multiaddr a, b, c;
    char s[300];
    int rv;
    (void)ctx;
    rv = lp2p_multiaddr_parse(&a, "/ip4/127.0.0.1/tcp/4001", NULL, 0);
    if (rv != 0) {
        return rv;
    }
    rv = lp2p_multiaddr_parse(
        &b, "/dns/a-rather-long-host-name.example.com/tcp/1/p2p/"
            "bafzaajaiaejcbcui4poxicprsx6vfwznhs5f24wkm4e36hmucin7g5eiag2a6324",
        NULL, 0);
    if (rv != 0) {
        goto out_a;
    }
    rv = lp2p_multiaddr_encapsulate(&a, &b);
    if (rv != 0) {
        goto out_b;
    }
    rv = lp2p_multiaddr_copy(&c, &a);
    if (rv != 0) {
        goto out_b;
    }
    rv = lp2p_multiaddr_to_string(&c, s, sizeof(s));
    rv = rv > 0 ? 0 : -100;
    lp2p_multiaddr_free(&c);
out_b:
    lp2p_multiaddr_free(&b);
out_a:
    lp2p_multiaddr_free(&a);
    return rv;
}

TEST(multiaddr, oom_sweep)
{
    ASSERT(test__oom_sweep(oom_body, NULL) >= 4);
}

/*
 * Cases from go-multiaddr's multiaddr_test.go (TestConstructFails and
 * TestConstructSucceeds restricted to our protocols, TestStringToBytes,
 * TestZone, TestRoundTrip, TestInvalidP2PAddr*, TestDecapsulate) and the
 * multiaddr spec's test/multiaddr.feature, so we agree with go on them.
 */
TEST(multiaddr, go_multiaddr_cases)
{
    static const char *const bad[] = {
        "/ip4", "/ip4/::1", "/ip4/fdpsofodsajfdoisa", "/ip6", "/ip6zone",
        "/ip6zone/", "/ip6zone//ip6/fe80::1", "/udp", "/tcp", "/udp/65536",
        "/tcp/65536", "/quic/65536", "/quic-v1/65536",
        "/ip4/127.0.0.1/udp/jfodsajfidosajfoidsa", "/ip4/127.0.0.1/udp",
        "/ip4/127.0.0.1/tcp/jfodsajfidosajfoidsa", "/ip4/127.0.0.1/tcp",
        "/ip4/127.0.0.1/quic/1234", "/ip4/127.0.0.1/quic-v1/1234",
        "/ip4/127.0.0.1/ipfs", "/ip4/127.0.0.1/ipfs/tcp",
        "/ip4/127.0.0.1/p2p", "/ip4/127.0.0.1/p2p/tcp",
        "/ip4/1.2.3.4/tcp/-1", "/", "",
        "/p2p/QmxoHT6iViN5xAjoz1VZ553cL31U9F94ht3QvWR1FrEbZY",
        "/p2p/k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl-",
        "/p2p/?unknownmultibase",
        "/p2p/k2jmtxwoe2phm1hbqp0e7nufqf6umvuu2e9qd7ana7h411a0haqj6i2z",
    };
    static const char *const good[] = {
        "/ip4/1.2.3.4", "/ip4/0.0.0.0", "/ip6/::1",
        "/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21",
        "/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21/udp/1234/quic",
        "/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21/udp/1234/quic-v1",
        "/ip6zone/x/ip6/fe80::1", "/ip6zone/x%y/ip6/fe80::1",
        "/ip6zone/x%y/ip6/::", "/ip6zone/x/ip6/fe80::1/udp/1234/quic",
        "/ip6zone/x/ip6/fe80::1/udp/1234/quic-v1", "/udp/0", "/tcp/0",
        "/udp/1234", "/tcp/1234", "/udp/65535", "/tcp/65535",
        "/ipfs/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC",
        "/ipfs/k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl7",
        "/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC",
        "/p2p/k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl7",
        "/p2p/bafzbeigvf25ytwc3akrijfecaotc74udrhcxzh2cx3we5qqnw5vgrei4bm",
        "/p2p/12D3KooWCryG7Mon9orvQxcS1rYZjotPgpwoJNHHKcLLfE4Hf5mV",
        "/p2p/k51qzi5uqu5dhb6l8spkdx7yxafegfkee5by8h7lmjh2ehc2sgg34z7c15vzqs",
        "/p2p/bafzaajaiaejcalj543iwv2d7pkjt7ykvefrkfu7qjfi6sduakhso4lay6abn2d5u",
        "/ipfs/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC/tcp/1234",
        "/p2p/k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl7/tcp/1234",
        "/ip4/127.0.0.1/udp/1234", "/ip4/127.0.0.1/udp/0",
        "/ip4/127.0.0.1/tcp/1234", "/ip4/127.0.0.1/tcp/1234/",
        "/ip4/127.0.0.1/udp/1234/quic", "/ip4/127.0.0.1/udp/1234/quic-v1",
        "/ip4/127.0.0.1/udp/1234/quic-v1/webtransport",
        "/ip4/127.0.0.1/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC/tcp/1234",
        "/ip4/127.0.0.1/tcp/127/ws", "/ip4/127.0.0.1/tcp/127/tls",
        "/ip4/127.0.0.1/tcp/127/tls/ws", "/ip4/127.0.0.1/tcp/127/noise",
        "/ip4/127.0.0.1/tcp/127/wss",
    };
    static const char *const same[] = {
        "/ip6/::ffff:127.0.0.1/tcp/111", "/ip4/127.0.0.1/tcp/123",
        "/ip4/127.0.0.1/tcp/123/tls", "/ip4/127.0.0.1/udp/123",
        "/ip4/127.0.0.1/udp/123/ip6/::",
        "/p2p/QmbHVEEepCi7rn7VL7Exxpd2Ci9NNB6ifvqwhsrbRMgQFP",
    };
    static const struct {
        const char *s, *hex;
    } bin[] = {
        {"/ip4/127.0.0.1/udp/1234", "047f000001910204d2"},
        {"/ip4/127.0.0.1/tcp/4321", "047f0000010610e1"},
        {"/ip4/127.0.0.1/udp/1234/ip4/127.0.0.1/tcp/4321",
         "047f000001910204d2047f0000010610e1"},
        {"/ip6zone/eth0/ip6/::1",
         "2a04657468302900000000000000000000000000000001"},
        {"/ip4/192.0.2.42/tcp/443", "04c000022a0601bb"}, /* .feature */
    };
    static const struct {
        const char *left, *right, *want; /* want "" = everything removed */
    } dec[] = {
        {"/ip4/1.2.3.4/tcp/1234", "/ip4/1.2.3.4", ""},
        {"/ip4/1.2.3.4", "/ip4/1.2.3.4/tcp/1234", "/ip4/1.2.3.4"},
        {"/ip4/1.2.3.5/tcp/1234", "/ip4/5.3.2.1", "/ip4/1.2.3.5/tcp/1234"},
        {"/ip4/1.2.3.5/udp/1234/quic-v1", "/udp/1234", "/ip4/1.2.3.5"},
        {"/ip4/1.2.3.6/udp/1234/quic-v1", "/udp/1234/quic-v1", "/ip4/1.2.3.6"},
        {"/ip4/1.2.3.7/tcp/1234", "/ws", "/ip4/1.2.3.7/tcp/1234"},
        {"/dnsaddr/wss.com/tcp/4001", "/ws", "/dnsaddr/wss.com/tcp/4001"},
        {"/dnsaddr/wss.com/tcp/4001/ws", "/wss", "/dnsaddr/wss.com/tcp/4001/ws"},
        {"/dnsaddr/wss.com/ws", "/wss", "/dnsaddr/wss.com/ws"},
        {"/dnsaddr/wss.com/ws", "/dnsaddr/wss.com", ""},
        {"/dnsaddr/wss.com/tcp/4001/wss", "/wss", "/dnsaddr/wss.com/tcp/4001"},
        {"/ip4/1.2.3.4/tcp/80", "/tcp/80", "/ip4/1.2.3.4"},
        {"/ip4/1.2.3.4/tcp/80", "/udp/80", "/ip4/1.2.3.4/tcp/80"},
    };
    char err[LP2P_ERRMSG_MAX], s[300], hex[300];
    struct lp2p_multiaddr ma, again;
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ma_parse(&ma, bad[i], err) != LP2P_EBADADDR || err[0] == '\0') {
            test__fail(__FILE__, __LINE__, "'%s' was accepted", bad[i]);
        }
    }
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (ma_parse(&ma, good[i], err) != 0) {
            test__fail(__FILE__, __LINE__, "'%s': %s", good[i], err);
        }
        ma_str(&ma, s, sizeof(s));
        ASSERT_OK(ma_parse(&again, s, err));
        ASSERT(lp2p_multiaddr_equal(&ma, &again));
        lp2p_multiaddr_free(&ma);
        lp2p_multiaddr_free(&again);
    }
    for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        parse_ok(&ma, same[i]);
        expect_str(&ma, same[i]);
        lp2p_multiaddr_free(&ma);
    }
    for (i = 0; i < sizeof(bin) / sizeof(bin[0]); i++) {
        parse_ok(&ma, bin[i].s);
        ma_hex(&ma, hex);
        ASSERT_STR_EQ(hex, bin[i].hex);
        expect_str(&ma, bin[i].s);
        lp2p_multiaddr_free(&ma);
    }
    for (i = 0; i < sizeof(dec) / sizeof(dec[0]); i++) {
        struct lp2p_multiaddr r;
        int rv;
        parse_ok(&ma, dec[i].left);
        parse_ok(&r, dec[i].right);
        rv = lp2p_multiaddr_decapsulate(&ma, &r);
        ASSERT_EQ(rv, strcmp(dec[i].left, dec[i].want) != 0);
        if (dec[i].want[0] == '\0') {
            ASSERT(ma.len == 0 && ma.bytes == NULL);
        } else {
            expect_str(&ma, dec[i].want);
        }
        lp2p_multiaddr_free(&ma);
        lp2p_multiaddr_free(&r);
    }
    /* TestInvalidP2PAddrBytes: a sha2-256 multihash of 33 bytes. */
    {
        size_t n;
        uint8_t *raw = test__unhex(
            "a503221221c05877cbae039d70a5e600ea02c6f9f2942439285c9e344e26f8d28"
            "0c850fad6", &n);
        ASSERT_ERR(ma_from_bytes(&ma, raw, n, err), LP2P_EBADADDR);
        free(raw);
    }
    /* Base36 CIDs name the same peers as their base58 text. */
    {
        struct lp2p_peer_id a, b;
        ASSERT_OK(lp2p_peer_id_parse(
            &a, "k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl7"));
        ASSERT_EQ(a.len, 34);
        ASSERT_EQ(a.bytes[0], 0x12);
        ASSERT_OK(lp2p_peer_id_parse(
            &b, "K2K4R8OQAMIGQDO6O7HSBFWD45Y70OYYNP98USK7ZMYFRZPQXH1POHL7"));
        ASSERT(lp2p_peer_id_equal(&a, &b));
        ASSERT_OK(lp2p_peer_id_parse(
            &a, "k51qzi5uqu5dhb6l8spkdx7yxafegfkee5by8h7lmjh2ehc2sgg34z7c15vzqs"));
        ASSERT_EQ(a.bytes[0], 0x00); /* identity: an Ed25519 key */
        ASSERT_EQ(a.len, 38);
    }
}
