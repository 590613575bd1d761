/*
 * The TCP multiaddrs the host can listen on and dial, decoded with the
 * multiaddr codec:
 *   /ip4/<a>/tcp/<port>   /ip6/<a>/tcp/<port>
 *   /dns/<name>/tcp/<port>  /dns4/..  /dns6/..
 * each optionally followed by /p2p/<peer-id> (or its alias /ipfs/).
 * Anything else is LP2P_EBADADDR with a sentence saying what is wrong.
 */
#include <stdio.h>
#include <string.h>

#include "host.h"

int lp2p__tcp_addr_parse(const char *text, struct lp2p_tcp_addr *out,
                         char *err, size_t errcap)
{
    struct lp2p_multiaddr ma;
    struct lp2p_multiaddr_component c;
    char why[LP2P_ERRMSG_MAX];
    size_t off = 0;
    int family, rv;

    memset(out, 0, sizeof(*out));
    lp2p_multiaddr_init(&ma);
    rv = lp2p_multiaddr_parse(&ma, text != NULL ? text : "", why,
                              sizeof(why));
    if (rv != 0) {
        if (err != NULL && errcap > 0) {
            snprintf(err, errcap, "%s", why);
        }
        return rv == LP2P_ENOMEM ? rv : LP2P_EBADADDR;
    }
    rv = lp2p_multiaddr_host_port(&ma, out->host, sizeof(out->host),
                                  &out->port, &family);
    if (rv == 0 && lp2p_multiaddr_next(&ma, &off, &c) == 1) {
        switch (c.code) {
        case LP2P_MA_IP4:
            out->kind = LP2P_ADDR_IP4;
            break;
        case LP2P_MA_IP6:
            out->kind = LP2P_ADDR_IP6;
            break;
        case LP2P_MA_DNS4:
            out->kind = LP2P_ADDR_DNS4;
            break;
        case LP2P_MA_DNS6:
            out->kind = LP2P_ADDR_DNS6;
            break;
        default:
            out->kind = LP2P_ADDR_DNS;
            break;
        }
    } else if (rv == 0) {
        rv = LP2P_EBADADDR;
    }
    if (rv != 0) {
        if (err != NULL && errcap > 0) {
            snprintf(err, errcap, "not a TCP address: want /ip4, /ip6, /dns, "
                     "/dns4 or /dns6, then /tcp/<port>, then optionally "
                     "/p2p/<id>");
        }
        lp2p_multiaddr_free(&ma);
        return LP2P_EBADADDR;
    }
    rv = lp2p_multiaddr_peer_id(&ma, &out->peer);
    out->has_peer = rv == 0;
    lp2p_multiaddr_free(&ma);
    if (rv != 0 && rv != LP2P_ENOTFOUND) {
        if (err != NULL && errcap > 0) {
            snprintf(err, errcap, "invalid peer ID");
        }
        return LP2P_EBADADDR;
    }
    return 0;
}

int lp2p__tcp_addr_format(const struct sockaddr *sa, char *out, size_t cap)
{
    struct lp2p_multiaddr ma;
    int rv;
    lp2p_multiaddr_init(&ma);
    rv = lp2p_multiaddr_from_sockaddr(&ma, sa);
    if (rv != 0) {
        return rv == LP2P_EINVAL ? LP2P_EBADADDR : rv;
    }
    rv = lp2p_multiaddr_to_string(&ma, out, cap);
    lp2p_multiaddr_free(&ma);
    if (rv < 0) {
        return rv;
    }
    return (size_t)rv < cap ? 0 : LP2P_EOVERFLOW;
}
