/*
 * Multiaddr in text and binary form.
 *
 * The binary form is the one we keep: a run of components, each a
 * multiformats uvarint protocol code followed by the value (fixed size for
 * ip4/ip6/tcp/udp, uvarint length || bytes for the others, nothing for
 * value-less protocols). comp_read() is the single place that decodes and
 * validates one binary component; everything that walks bytes (printing,
 * iteration, decapsulation, sockaddr helpers) goes through it, so invalid
 * bytes in a struct filled by hand are caught everywhere.
 *
 * The text parser converts one "/name/value" at a time and appends the
 * binary form to a growing buffer; nothing is kept on failure. Every error
 * message names the component that is wrong.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "lp2p.h"
#include "../util/err.h"
#include "key.h"
#include "../util/base58.h"
#include "../util/buf.h"
#include "../util/heap.h"
#include "../util/varint.h"

enum vkind { V_NONE, V_IP4, V_IP6, V_PORT, V_TEXT, V_P2P };

struct proto {
    uint32_t code;
    const char *name;
    enum vkind kind;
};

#define TEXT_MAX 255 /* dns*, sni, ip6zone values */

static const struct proto protos[] = {
    {LP2P_MA_IP4, "ip4", V_IP4},
    {LP2P_MA_TCP, "tcp", V_PORT},
    {LP2P_MA_UDP, "udp", V_PORT},
    {LP2P_MA_IP6, "ip6", V_IP6},
    {LP2P_MA_IP6ZONE, "ip6zone", V_TEXT},
    {LP2P_MA_DNS, "dns", V_TEXT},
    {LP2P_MA_DNS4, "dns4", V_TEXT},
    {LP2P_MA_DNS6, "dns6", V_TEXT},
    {LP2P_MA_DNSADDR, "dnsaddr", V_TEXT},
    {LP2P_MA_P2P, "p2p", V_P2P},
    {LP2P_MA_P2P_CIRCUIT, "p2p-circuit", V_NONE},
    {LP2P_MA_TLS, "tls", V_NONE},
    {LP2P_MA_SNI, "sni", V_TEXT},
    {LP2P_MA_NOISE, "noise", V_NONE},
    {LP2P_MA_QUIC, "quic", V_NONE},
    {LP2P_MA_QUIC_V1, "quic-v1", V_NONE},
    {LP2P_MA_WEBTRANSPORT, "webtransport", V_NONE},
    {LP2P_MA_WS, "ws", V_NONE},
    {LP2P_MA_WSS, "wss", V_NONE},
};

#define NPROTOS (sizeof(protos) / sizeof(protos[0]))

static const struct proto *proto_by_code(uint64_t code)
{
    size_t i;
    for (i = 0; i < NPROTOS; i++) {
        if (protos[i].code == code) {
            return &protos[i];
        }
    }
    return NULL;
}

static const struct proto *proto_by_name(const char *name, size_t len)
{
    size_t i;
    if (len == 4 && memcmp(name, "ipfs", 4) == 0) {
        return proto_by_code(LP2P_MA_P2P);
    }
    for (i = 0; i < NPROTOS; i++) {
        if (strlen(protos[i].name) == len &&
            memcmp(protos[i].name, name, len) == 0) {
            return &protos[i];
        }
    }
    return NULL;
}


/* A printable, bounded copy of user text for error messages. */
struct quoted {
    char s[52];
};

static const char *quote(struct quoted *q, const char *p, size_t n)
{
    size_t i, max = sizeof(q->s) - 4;
    for (i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)p[i];
        q->s[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (n > max) {
        memcpy(q->s + i, "...", 3);
        i += 3;
    }
    q->s[i] = '\0';
    return q->s;
}

/* ---- binary ---- */

static int comp_read(const uint8_t *p, size_t len, size_t off,
                     struct lp2p_multiaddr_component *c, char *err,
                     size_t errcap)
{
    const struct proto *pr;
    uint64_t code, vlen = 0;
    size_t pos = off, i;
    int n;
    n = lp2p__varint_decode(p + pos, len - pos, &code);
    if (n < 0) {
        lp2p__errmsg_set(err, errcap, "%s protocol code at byte %zu",
               n == LP2P_EAGAIN ? "truncated" : "invalid varint", off);
        return LP2P_EBADADDR;
    }
    pos += (size_t)n;
    pr = proto_by_code(code);
    if (pr == NULL) {
        lp2p__errmsg_set(err, errcap, "unknown protocol code %llu at byte %zu",
               (unsigned long long)code, off);
        return LP2P_EBADADDR;
    }
    switch (pr->kind) {
    case V_NONE:
        vlen = 0;
        break;
    case V_IP4:
        vlen = 4;
        break;
    case V_IP6:
        vlen = 16;
        break;
    case V_PORT:
        vlen = 2;
        break;
    case V_TEXT:
    case V_P2P:
        n = lp2p__varint_decode(p + pos, len - pos, &vlen);
        if (n < 0) {
            lp2p__errmsg_set(err, errcap, "%s %s value length at byte %zu",
                   n == LP2P_EAGAIN ? "truncated" : "invalid varint",
                   pr->name, pos);
            return LP2P_EBADADDR;
        }
        pos += (size_t)n;
        break;
    }
    if (vlen > len - pos) {
        lp2p__errmsg_set(err, errcap, "truncated %s value at byte %zu: %llu bytes, "
               "%zu left", pr->name, pos, (unsigned long long)vlen,
               len - pos);
        return LP2P_EBADADDR;
    }
    if (pr->kind == V_TEXT) {
        if (vlen == 0 || vlen > TEXT_MAX) {
            lp2p__errmsg_set(err, errcap, "%s value of %llu bytes at byte %zu "
                   "(1..%d allowed)", pr->name, (unsigned long long)vlen,
                   pos, TEXT_MAX);
            return LP2P_EBADADDR;
        }
        for (i = 0; i < vlen; i++) {
            if (p[pos + i] == '/' || p[pos + i] == '\0') {
                lp2p__errmsg_set(err, errcap, "%s value at byte %zu contains %s",
                       pr->name, pos, p[pos + i] == '/' ? "'/'" : "NUL");
                return LP2P_EBADADDR;
            }
        }
    } else if (pr->kind == V_P2P) {
        struct lp2p_peer_id id;
        char why[96];
        why[0] = '\0';
        if (vlen > LP2P_PEER_ID_MAX) {
            lp2p__errmsg_set(err, errcap, "p2p value of %llu bytes at byte %zu is "
                   "too long for a peer ID", (unsigned long long)vlen, pos);
            return LP2P_EBADADDR;
        }
        if (lp2p__peer_id_from_bytes(&id, p + pos, (size_t)vlen, why,
                                     sizeof(why)) != 0) {
            lp2p__errmsg_set(err, errcap, "invalid p2p value at byte %zu: %s", pos,
                   why);
            return LP2P_EBADADDR;
        }
    }
    c->code = pr->code;
    c->name = pr->name;
    c->value = pr->kind == V_NONE ? NULL : p + pos;
    c->value_len = (size_t)vlen;
    c->offset = off;
    c->size = pos + (size_t)vlen - off;
    return 0;
}

void lp2p_multiaddr_init(struct lp2p_multiaddr *ma)
{
    ma->bytes = NULL;
    ma->len = 0;
}

void lp2p_multiaddr_free(struct lp2p_multiaddr *ma)
{
    lp2p__free(ma->bytes);
    lp2p_multiaddr_init(ma);
}

int lp2p_multiaddr_validate(const uint8_t *p, size_t len, char *err,
                            size_t errcap)
{
    struct lp2p_multiaddr_component c;
    size_t off = 0;
    if (len == 0) {
        lp2p__errmsg_set(err, errcap, "empty multiaddr");
        return LP2P_EBADADDR;
    }
    while (off < len) {
        int rv = comp_read(p, len, off, &c, err, errcap);
        if (rv != 0) {
            return rv;
        }
        off += c.size;
    }
    return 0;
}

int lp2p_multiaddr_from_bytes(struct lp2p_multiaddr *ma, const uint8_t *p,
                              size_t len, char *err, size_t errcap)
{
    int rv;
    lp2p_multiaddr_init(ma);
    rv = lp2p_multiaddr_validate(p, len, err, errcap);
    if (rv != 0) {
        return rv;
    }
    ma->bytes = lp2p__memdup(p, len);
    if (ma->bytes == NULL) {
        lp2p__errmsg_set(err, errcap, "out of memory");
        return LP2P_ENOMEM;
    }
    ma->len = len;
    return 0;
}

int lp2p_multiaddr_next(const struct lp2p_multiaddr *ma, size_t *offset,
                        struct lp2p_multiaddr_component *c)
{
    int rv;
    if (*offset >= ma->len) {
        return 0;
    }
    rv = comp_read(ma->bytes, ma->len, *offset, c, NULL, 0);
    if (rv != 0) {
        return rv;
    }
    *offset += c->size;
    return 1;
}

/* ---- printing ---- */

struct sink {
    char *out;
    size_t cap;
    size_t len; /* full length, even past cap */
};

static void put(struct sink *s, const char *p, size_t n)
{
    if (s->len < s->cap) {
        size_t room = s->cap - 1 - s->len;
        memcpy(s->out + s->len, p, n < room ? n : room);
    }
    s->len += n;
}

static void puts_(struct sink *s, const char *p)
{
    put(s, p, strlen(p));
}

/* RFC 5952: lowercase hex, no leading zeros, the longest run (first on a
 * tie) of two or more zero groups as "::"; IPv4-mapped addresses as
 * "::ffff:a.b.c.d" (what go-multiaddr prints). */
static size_t ip6_format(const uint8_t *a, char *out /* 46 */)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    unsigned w[8];
    int i, best = -1, bestlen = 0, run = -1, runlen = 0;
    size_t n = 0;
    if (memcmp(a, mapped, 12) == 0) {
        return (size_t)sprintf(out, "::ffff:%u.%u.%u.%u", a[12], a[13], a[14],
                               a[15]);
    }
    for (i = 0; i < 8; i++) {
        w[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
        if (w[i] == 0) {
            if (run < 0) {
                run = i;
                runlen = 0;
            }
            runlen++;
            if (runlen > bestlen) {
                best = run;
                bestlen = runlen;
            }
        } else {
            run = -1;
        }
    }
    if (bestlen < 2) {
        best = -1;
    }
    for (i = 0; i < 8; i++) {
        if (i == best) {
            out[n++] = ':';
            out[n++] = ':';
            i += bestlen - 1;
            continue;
        }
        if (i > 0 && i != best + bestlen) {
            out[n++] = ':';
        }
        n += (size_t)sprintf(out + n, "%x", w[i]);
    }
    out[n] = '\0';
    return n;
}

static int format(const uint8_t *p, size_t len, struct sink *s)
{
    struct lp2p_multiaddr_component c;
    size_t off = 0;
    char tmp[LP2P_PEER_ID_STRMAX];
    int rv;
    while (off < len) {
        rv = comp_read(p, len, off, &c, NULL, 0);
        if (rv != 0) {
            return rv;
        }
        off += c.size;
        put(s, "/", 1);
        puts_(s, c.name);
        if (c.value == NULL) {
            continue;
        }
        put(s, "/", 1);
        switch (proto_by_code(c.code)->kind) {
        case V_IP4:
            sprintf(tmp, "%u.%u.%u.%u", c.value[0], c.value[1], c.value[2],
                    c.value[3]);
            puts_(s, tmp);
            break;
        case V_IP6:
            ip6_format(c.value, tmp);
            puts_(s, tmp);
            break;
        case V_PORT:
            sprintf(tmp, "%u", (unsigned)c.value[0] << 8 | c.value[1]);
            puts_(s, tmp);
            break;
        case V_TEXT:
            put(s, (const char *)c.value, c.value_len);
            break;
        case V_P2P:
            rv = lp2p__base58_encode(c.value, c.value_len, tmp, sizeof(tmp));
            if (rv < 0) {
                return LP2P_EBADADDR; /* cannot happen: length checked */
            }
            puts_(s, tmp);
            break;
        case V_NONE:
            break;
        }
    }
    return 0;
}

int lp2p_multiaddr_to_string(const struct lp2p_multiaddr *ma, char *out,
                             size_t cap)
{
    struct sink s = {out, cap, 0};
    int rv = format(ma->bytes, ma->len, &s);
    if (rv != 0) {
        if (cap > 0) {
            out[0] = '\0';
        }
        return rv;
    }
    if (cap > 0) {
        out[s.len < cap ? s.len : cap - 1] = '\0';
    }
    if (s.len > INT_MAX) {
        return LP2P_EOVERFLOW;
    }
    return (int)s.len;
}

/* ---- text parsing ---- */

static int parse_ip4(const char *v, size_t n, uint8_t out[4])
{
    size_t i = 0;
    int part;
    for (part = 0; part < 4; part++) {
        unsigned x = 0;
        size_t start = i;
        if (part > 0) {
            if (i >= n || v[i] != '.') {
                return -1;
            }
            start = ++i;
        }
        while (i < n && v[i] >= '0' && v[i] <= '9' && i - start < 3) {
            x = x * 10 + (unsigned)(v[i] - '0');
            i++;
        }
        if (i == start || x > 255 || (v[start] == '0' && i - start > 1)) {
            return -1;
        }
        out[part] = (uint8_t)x;
    }
    return i == n ? 0 : -1;
}

/* 0 ok, -1 not a decimal number (or leading zero), -2 out of range. */
static int parse_port(const char *v, size_t n, uint16_t *port)
{
    unsigned long x = 0;
    size_t i;
    if (n == 0) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return -1;
        }
    }
    if (v[0] == '0' && n > 1) {
        return -1;
    }
    if (n > 5) {
        return -2;
    }
    for (i = 0; i < n; i++) {
        x = x * 10 + (unsigned long)(v[i] - '0');
    }
    if (x > 65535) {
        return -2;
    }
    *port = (uint16_t)x;
    return 0;
}

static int put_value(struct lp2p_buf *b, const struct proto *pr,
                     const char *v, size_t n, char *err, size_t errcap)
{
    struct quoted q;
    uint8_t raw[16];
    int rv;
    switch (pr->kind) {
    case V_NONE:
        return 0;
    case V_IP4:
        if (parse_ip4(v, n, raw) != 0) {
            lp2p__errmsg_set(err, errcap, "invalid ip4 address '%s'", quote(&q, v, n));
            return LP2P_EBADADDR;
        }
        return lp2p__buf_append(b, raw, 4);
    case V_IP6: {
        char tmp[INET6_ADDRSTRLEN];
        if (n == 0 || n >= sizeof(tmp)) {
            lp2p__errmsg_set(err, errcap, "invalid ip6 address '%s'", quote(&q, v, n));
            return LP2P_EBADADDR;
        }
        memcpy(tmp, v, n);
        tmp[n] = '\0';
        if (inet_pton(AF_INET6, tmp, raw) != 1) {
            lp2p__errmsg_set(err, errcap, "invalid ip6 address '%s'", quote(&q, v, n));
            return LP2P_EBADADDR;
        }
        return lp2p__buf_append(b, raw, 16);
    }
    case V_PORT: {
        uint16_t port = 0;
        rv = parse_port(v, n, &port);
        if (rv != 0) {
            lp2p__errmsg_set(err, errcap, rv == -2 ? "%s port out of range '%s'"
                                         : "invalid %s port '%s'",
                   pr->name, quote(&q, v, n));
            return LP2P_EBADADDR;
        }
        raw[0] = (uint8_t)(port >> 8);
        raw[1] = (uint8_t)port;
        return lp2p__buf_append(b, raw, 2);
    }
    case V_TEXT:
        if (n == 0 || n > TEXT_MAX) {
            lp2p__errmsg_set(err, errcap, "%s value of %zu bytes '%s' (1..%d allowed)",
                   pr->name, n, quote(&q, v, n), TEXT_MAX);
            return LP2P_EBADADDR;
        }
        rv = lp2p__buf_append_varint(b, n);
        return rv != 0 ? rv : lp2p__buf_append(b, v, n);
    case V_P2P: {
        struct lp2p_peer_id id;
        char why[96];
        why[0] = '\0';
        if (lp2p__peer_id_parse(&id, v, n, why, sizeof(why)) != 0) {
            lp2p__errmsg_set(err, errcap, "invalid p2p peer ID '%s': %s",
                   quote(&q, v, n), why);
            return LP2P_EBADADDR;
        }
        rv = lp2p__buf_append_varint(b, id.len);
        return rv != 0 ? rv : lp2p__buf_append(b, id.bytes, id.len);
    }
    }
    return LP2P_EBADADDR;
}

int lp2p_multiaddr_parse(struct lp2p_multiaddr *ma, const char *s, char *err,
                         size_t errcap)
{
    struct lp2p_buf b;
    struct quoted q;
    size_t n = strlen(s), pos = 1;
    int rv = 0;
    lp2p_multiaddr_init(ma);
    if (n == 0) {
        lp2p__errmsg_set(err, errcap, "empty multiaddr");
        return LP2P_EBADADDR;
    }
    if (s[0] != '/') {
        lp2p__errmsg_set(err, errcap, "multiaddr '%s' must begin with '/'",
               quote(&q, s, n));
        return LP2P_EBADADDR;
    }
    while (n > 0 && s[n - 1] == '/') {
        n--;
    }
    if (n == 0) {
        lp2p__errmsg_set(err, errcap, "empty multiaddr");
        return LP2P_EBADADDR;
    }
    lp2p__buf_init(&b);
    while (pos <= n) {
        const struct proto *pr;
        const char *name = s + pos, *slash;
        size_t nlen, vlen;
        slash = memchr(name, '/', n - pos);
        nlen = slash ? (size_t)(slash - name) : n - pos;
        if (nlen == 0) {
            lp2p__errmsg_set(err, errcap, "empty component at offset %zu", pos);
            rv = LP2P_EBADADDR;
            goto fail;
        }
        pr = proto_by_name(name, nlen);
        if (pr == NULL) {
            lp2p__errmsg_set(err, errcap, "unknown protocol '%s'",
                   quote(&q, name, nlen));
            rv = LP2P_EBADADDR;
            goto fail;
        }
        rv = lp2p__buf_append_varint(&b, pr->code);
        if (rv != 0) {
            goto fail;
        }
        pos += nlen + 1;
        if (pr->kind == V_NONE) {
            continue;
        }
        if (pos > n) {
            lp2p__errmsg_set(err, errcap, "missing value for '%s'", pr->name);
            rv = LP2P_EBADADDR;
            goto fail;
        }
        slash = memchr(s + pos, '/', n - pos);
        vlen = slash ? (size_t)(slash - (s + pos)) : n - pos;
        rv = put_value(&b, pr, s + pos, vlen, err, errcap);
        if (rv != 0) {
            goto fail;
        }
        pos += vlen + 1;
    }
    ma->bytes = lp2p__buf_detach(&b, &ma->len);
    return 0;
fail:
    if (rv == LP2P_ENOMEM) {
        lp2p__errmsg_set(err, errcap, "out of memory");
    }
    lp2p__buf_free(&b);
    return rv;
}

/* ---- operations ---- */

int lp2p_multiaddr_copy(struct lp2p_multiaddr *dst,
                        const struct lp2p_multiaddr *src)
{
    lp2p_multiaddr_init(dst);
    if (src->len == 0) {
        return 0;
    }
    dst->bytes = lp2p__memdup(src->bytes, src->len);
    if (dst->bytes == NULL) {
        return LP2P_ENOMEM;
    }
    dst->len = src->len;
    return 0;
}

int lp2p_multiaddr_equal(const struct lp2p_multiaddr *a,
                         const struct lp2p_multiaddr *b)
{
    return a->len == b->len &&
           (a->len == 0 || memcmp(a->bytes, b->bytes, a->len) == 0);
}

int lp2p_multiaddr_encapsulate(struct lp2p_multiaddr *ma,
                               const struct lp2p_multiaddr *tail)
{
    uint8_t *p;
    if (tail->len == 0) {
        return 0;
    }
    if (tail->len > SIZE_MAX - ma->len) {
        return LP2P_EOVERFLOW;
    }
    p = lp2p__realloc(ma->bytes, ma->len + tail->len);
    if (p == NULL) {
        return LP2P_ENOMEM;
    }
    memcpy(p + ma->len, tail->bytes, tail->len);
    ma->bytes = p;
    ma->len += tail->len;
    return 0;
}

static void truncate_at(struct lp2p_multiaddr *ma, size_t off)
{
    if (off == 0) {
        lp2p_multiaddr_free(ma);
    } else {
        ma->len = off;
    }
}

int lp2p_multiaddr_decapsulate(struct lp2p_multiaddr *ma,
                               const struct lp2p_multiaddr *tail)
{
    struct lp2p_multiaddr_component c;
    size_t off = 0, found = SIZE_MAX;
    int rv;
    if (tail->len == 0) {
        return 0;
    }
    /* Components are self-delimiting, so equal bytes from a component
     * boundary of `ma` mean equal components. */
    while ((rv = lp2p_multiaddr_next(ma, &off, &c)) == 1) {
        if (ma->len - c.offset >= tail->len &&
            memcmp(ma->bytes + c.offset, tail->bytes, tail->len) == 0) {
            found = c.offset;
        }
    }
    if (rv < 0) {
        return rv;
    }
    if (found == SIZE_MAX) {
        return 0;
    }
    truncate_at(ma, found);
    return 1;
}

int lp2p_multiaddr_decapsulate_proto(struct lp2p_multiaddr *ma,
                                     const char *name)
{
    struct lp2p_multiaddr_component c;
    const struct proto *pr = proto_by_name(name, strlen(name));
    size_t off = 0, found = SIZE_MAX;
    int rv;
    if (pr == NULL) {
        return LP2P_EBADADDR;
    }
    while ((rv = lp2p_multiaddr_next(ma, &off, &c)) == 1) {
        if (c.code == pr->code) {
            found = c.offset;
        }
    }
    if (rv < 0) {
        return rv;
    }
    if (found == SIZE_MAX) {
        return 0;
    }
    truncate_at(ma, found);
    return 1;
}

int lp2p_multiaddr_peer_id(const struct lp2p_multiaddr *ma,
                           struct lp2p_peer_id *id)
{
    struct lp2p_multiaddr_component c, last;
    size_t off = 0;
    int rv, any = 0;
    memset(&last, 0, sizeof(last));
    while ((rv = lp2p_multiaddr_next(ma, &off, &c)) == 1) {
        last = c;
        any = 1;
    }
    if (rv < 0) {
        return rv;
    }
    if (!any || last.code != LP2P_MA_P2P) {
        return LP2P_ENOTFOUND;
    }
    return lp2p_peer_id_from_bytes(id, last.value, last.value_len);
}

int lp2p_multiaddr_from_sockaddr(struct lp2p_multiaddr *ma,
                                 const struct sockaddr *sa)
{
    uint8_t b[1 + 16 + 3];
    size_t n;
    const uint8_t *port;
    lp2p_multiaddr_init(ma);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        b[0] = LP2P_MA_IP4;
        memcpy(b + 1, &in->sin_addr, 4);
        n = 5;
        port = (const uint8_t *)&in->sin_port;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        const uint8_t *a = in6->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            b[0] = LP2P_MA_IP4;
            memcpy(b + 1, a + 12, 4);
            n = 5;
        } else {
            b[0] = LP2P_MA_IP6;
            memcpy(b + 1, a, 16);
            n = 17;
        }
        port = (const uint8_t *)&in6->sin6_port;
    } else {
        return LP2P_EINVAL;
    }
    b[n++] = LP2P_MA_TCP;
    b[n++] = port[0]; /* already big-endian */
    b[n++] = port[1];
    ma->bytes = lp2p__memdup(b, n);
    if (ma->bytes == NULL) {
        return LP2P_ENOMEM;
    }
    ma->len = n;
    return 0;
}

/* The first two components, HOST/tcp/PORT, and an optional /p2p after. */
static int tcp_shape(const struct lp2p_multiaddr *ma,
                     struct lp2p_multiaddr_component *host, uint16_t *port)
{
    struct lp2p_multiaddr_component c;
    size_t off = 0;
    int rv;
    rv = lp2p_multiaddr_next(ma, &off, host);
    if (rv <= 0) {
        return rv < 0 ? rv : LP2P_EUNSUPPORTED;
    }
    rv = lp2p_multiaddr_next(ma, &off, &c);
    if (rv <= 0) {
        return rv < 0 ? rv : LP2P_EUNSUPPORTED;
    }
    if (c.code != LP2P_MA_TCP) {
        return LP2P_EUNSUPPORTED;
    }
    *port = (uint16_t)((unsigned)c.value[0] << 8 | c.value[1]);
    rv = lp2p_multiaddr_next(ma, &off, &c);
    if (rv < 0) {
        return rv;
    }
    if (rv == 1 && c.code != LP2P_MA_P2P) {
        return LP2P_EUNSUPPORTED;
    }
    rv = lp2p_multiaddr_next(ma, &off, &c);
    if (rv != 0) {
        return rv < 0 ? rv : LP2P_EUNSUPPORTED;
    }
    return 0;
}

int lp2p_multiaddr_to_sockaddr(const struct lp2p_multiaddr *ma,
                               struct sockaddr_storage *ss, size_t *sslen)
{
    struct lp2p_multiaddr_component h;
    uint16_t port;
    int rv = tcp_shape(ma, &h, &port);
    if (rv != 0) {
        return rv;
    }
    memset(ss, 0, sizeof(*ss));
    if (h.code == LP2P_MA_IP4) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        memcpy(&in->sin_addr, h.value, 4);
        *sslen = sizeof(*in);
    } else if (h.code == LP2P_MA_IP6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        memcpy(&in6->sin6_addr, h.value, 16);
        *sslen = sizeof(*in6);
    } else {
        return LP2P_EUNSUPPORTED;
    }
    return 0;
}

int lp2p_multiaddr_host_port(const struct lp2p_multiaddr *ma, char *host,
                             size_t hostcap, uint16_t *port, int *family)
{
    struct lp2p_multiaddr_component h;
    char tmp[INET6_ADDRSTRLEN + 8];
    size_t n;
    int rv = tcp_shape(ma, &h, port);
    if (rv != 0) {
        return rv;
    }
    switch (h.code) {
    case LP2P_MA_IP4:
        n = (size_t)sprintf(tmp, "%u.%u.%u.%u", h.value[0], h.value[1],
                            h.value[2], h.value[3]);
        *family = AF_INET;
        break;
    case LP2P_MA_IP6:
        n = ip6_format(h.value, tmp);
        *family = AF_INET6;
        break;
    case LP2P_MA_DNS:
    case LP2P_MA_DNS4:
    case LP2P_MA_DNS6:
        *family = h.code == LP2P_MA_DNS4   ? AF_INET
                  : h.code == LP2P_MA_DNS6 ? AF_INET6
                                           : AF_UNSPEC;
        if (h.value_len + 1 > hostcap) {
            return LP2P_EOVERFLOW;
        }
        memcpy(host, h.value, h.value_len);
        host[h.value_len] = '\0';
        return 0;
    default:
        return LP2P_EUNSUPPORTED;
    }
    if (n + 1 > hostcap) {
        return LP2P_EOVERFLOW;
    }
    memcpy(host, tmp, n + 1);
    return 0;
}
