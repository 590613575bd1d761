/*
 * The TCP multiaddrs the host can listen on and dial, in text form:
 *   /ip4/<a>/tcp/<port>   /ip6/<a>/tcp/<port>
 *   /dns/<name>/tcp/<port>  /dns4/..  /dns6/..
 * each optionally followed by /p2p/<peer-id> (or its alias /ipfs/).
 * Anything else is LP2P_EBADADDR with a sentence saying what is wrong.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

static int fail(char *err, size_t cap, const char *fmt, const char *arg)
{
    if (err != NULL && cap > 0) {
        snprintf(err, cap, fmt, arg);
    }
    return LP2P_EBADADDR;
}

/* Next component into `out` (NUL-terminated); advances *p. 0 at end. */
static int next_part(const char **p, char *out, size_t cap)
{
    const char *s = *p, *e;
    size_t n;
    if (*s == '\0') {
        return 0;
    }
    if (*s != '/') {
        return -1;
    }
    s++;
    e = strchr(s, '/');
    n = e != NULL ? (size_t)(e - s) : strlen(s);
    if (n >= cap) {
        return -1;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    *p = s + n;
    return 1;
}

int lp2p__tcp_addr_parse(const char *text, struct lp2p_tcp_addr *out,
                         char *err, size_t errcap)
{
    const char *p = text;
    char part[256];
    char *end;
    unsigned long port;
    unsigned char tmp[16];
    int rv;

    memset(out, 0, sizeof(*out));
    if (text == NULL || text[0] != '/') {
        return fail(err, errcap, "a multiaddr starts with '/': \"%s\"",
                    text ? text : "");
    }
    rv = next_part(&p, part, sizeof(part));
    if (rv != 1) {
        return fail(err, errcap, "malformed multiaddr \"%s\"", text);
    }
    if (strcmp(part, "ip4") == 0) {
        out->kind = LP2P_ADDR_IP4;
    } else if (strcmp(part, "ip6") == 0) {
        out->kind = LP2P_ADDR_IP6;
    } else if (strcmp(part, "dns") == 0) {
        out->kind = LP2P_ADDR_DNS;
    } else if (strcmp(part, "dns4") == 0) {
        out->kind = LP2P_ADDR_DNS4;
    } else if (strcmp(part, "dns6") == 0) {
        out->kind = LP2P_ADDR_DNS6;
    } else {
        return fail(err, errcap,
                    "unsupported protocol /%s (want /ip4, /ip6, /dns, "
                    "/dns4 or /dns6 then /tcp)",
                    part);
    }
    rv = next_part(&p, part, sizeof(part));
    if (rv != 1 || part[0] == '\0') {
        return fail(err, errcap, "missing address in \"%s\"", text);
    }
    if (out->kind == LP2P_ADDR_IP4 &&
        inet_pton(AF_INET, part, tmp) != 1) {
        return fail(err, errcap, "invalid IPv4 address \"%s\"", part);
    }
    if (out->kind == LP2P_ADDR_IP6 &&
        inet_pton(AF_INET6, part, tmp) != 1) {
        return fail(err, errcap, "invalid IPv6 address \"%s\"", part);
    }
    memcpy(out->host, part, strlen(part) + 1);
    rv = next_part(&p, part, sizeof(part));
    if (rv != 1 || strcmp(part, "tcp") != 0) {
        return fail(err, errcap, "only TCP is supported: expected /tcp/<port> "
                    "in \"%s\"", text);
    }
    rv = next_part(&p, part, sizeof(part));
    if (rv != 1 || part[0] < '0' || part[0] > '9') {
        return fail(err, errcap, "missing TCP port in \"%s\"", text);
    }
    port = strtoul(part, &end, 10);
    if (*end != '\0' || port > 65535) {
        return fail(err, errcap, "invalid TCP port \"%s\"", part);
    }
    out->port = (uint16_t)port;
    rv = next_part(&p, part, sizeof(part));
    if (rv == 0) {
        return 0;
    }
    if (rv < 0 || (strcmp(part, "p2p") != 0 && strcmp(part, "ipfs") != 0)) {
        return fail(err, errcap, "unsupported component after the port in "
                    "\"%s\" (only /p2p/<id>)", text);
    }
    rv = next_part(&p, part, sizeof(part));
    if (rv != 1 || lp2p_peer_id_parse(&out->peer, part) != 0) {
        return fail(err, errcap, "invalid peer ID in \"%s\"", text);
    }
    out->has_peer = 1;
    if (*p != '\0') {
        return fail(err, errcap, "trailing components after the peer ID in "
                    "\"%s\"", text);
    }
    return 0;
}

int lp2p__tcp_addr_format(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    int n;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        n = snprintf(out, cap, "/ip4/%s/tcp/%u", ip,
                     (unsigned)ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        n = snprintf(out, cap, "/ip6/%s/tcp/%u", ip,
                     (unsigned)ntohs(in6->sin6_port));
    } else {
        return LP2P_EBADADDR;
    }
    if (n < 0 || (size_t)n >= cap) {
        return LP2P_EOVERFLOW;
    }
    return 0;
}
