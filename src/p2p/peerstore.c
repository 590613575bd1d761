/*
 * The peerstore: per peer, addresses with an expiry, the public key proven
 * by a Noise handshake, and what identify reported (agent, protocols).
 * A flat array with linear search: hosts talk to tens of peers, not
 * millions. Bounded: at most PS_MAX_PEERS peers and PS_MAX_ADDRS
 * addresses per peer, so a peer that lies in identify cannot grow it
 * without limit.
 */
#include <string.h>

#include "host.h"
#include "../util/heap.h"

#define PS_MAX_PEERS 4096
#define PS_MAX_ADDRS 64

void lp2p__ps_init(struct lp2p_peerstore *ps)
{
    memset(ps, 0, sizeof(*ps));
}

static void free_identity(struct lp2p_ps_peer *p)
{
    size_t i;
    for (i = 0; i < p->n_protocols; i++) {
        lp2p__free(p->protocols[i]);
    }
    lp2p__free(p->protocols);
    lp2p__free(p->agent);
    p->protocols = NULL;
    p->n_protocols = 0;
    p->agent = NULL;
}

void lp2p__ps_free(struct lp2p_peerstore *ps)
{
    size_t i, j;
    for (i = 0; i < ps->n; i++) {
        struct lp2p_ps_peer *p = &ps->peers[i];
        for (j = 0; j < p->n_addrs; j++) {
            lp2p__free(p->addrs[j].text);
        }
        lp2p__free(p->addrs);
        free_identity(p);
    }
    lp2p__free(ps->peers);
    memset(ps, 0, sizeof(*ps));
}

struct lp2p_ps_peer *lp2p__ps_find(struct lp2p_peerstore *ps,
                                   const struct lp2p_peer_id *id)
{
    size_t i;
    for (i = 0; i < ps->n; i++) {
        if (lp2p_peer_id_equal(&ps->peers[i].id, id)) {
            return &ps->peers[i];
        }
    }
    return NULL;
}

struct lp2p_ps_peer *lp2p__ps_get(struct lp2p_peerstore *ps,
                                  const struct lp2p_peer_id *id)
{
    struct lp2p_ps_peer *p = lp2p__ps_find(ps, id);
    if (p != NULL) {
        return p;
    }
    if (ps->n == PS_MAX_PEERS) {
        return NULL;
    }
    if (ps->n == ps->cap) {
        size_t cap = ps->cap == 0 ? 8 : ps->cap * 2;
        struct lp2p_ps_peer *np =
            lp2p__realloc(ps->peers, cap * sizeof(*np));
        if (np == NULL) {
            return NULL;
        }
        ps->peers = np;
        ps->cap = cap;
    }
    p = &ps->peers[ps->n++];
    memset(p, 0, sizeof(*p));
    p->id = *id;
    return p;
}

int lp2p__ps_add_addr(struct lp2p_peerstore *ps,
                      const struct lp2p_peer_id *id, const char *text,
                      uint64_t now, uint64_t ttl_ms)
{
    struct lp2p_ps_peer *p;
    struct lp2p_ps_addr *na;
    uint64_t expiry;
    size_t i;
    if (ttl_ms == 0) {
        p = lp2p__ps_find(ps, id);
        if (p == NULL) {
            return 0;
        }
        for (i = 0; i < p->n_addrs; i++) {
            if (strcmp(p->addrs[i].text, text) == 0) {
                lp2p__free(p->addrs[i].text);
                p->addrs[i] = p->addrs[--p->n_addrs];
                break;
            }
        }
        return 0;
    }
    expiry = ttl_ms == LP2P_TTL_PERMANENT || ttl_ms > UINT64_MAX - now
                 ? UINT64_MAX
                 : now + ttl_ms;
    p = lp2p__ps_get(ps, id);
    if (p == NULL) {
        return ps->n == PS_MAX_PEERS ? LP2P_ELIMIT : LP2P_ENOMEM;
    }
    for (i = 0; i < p->n_addrs; i++) {
        if (strcmp(p->addrs[i].text, text) == 0) {
            if (expiry > p->addrs[i].expiry) {
                p->addrs[i].expiry = expiry;
            }
            return 0;
        }
    }
    /* Drop expired entries before growing. */
    for (i = 0; i < p->n_addrs;) {
        if (p->addrs[i].expiry <= now) {
            lp2p__free(p->addrs[i].text);
            p->addrs[i] = p->addrs[--p->n_addrs];
        } else {
            i++;
        }
    }
    if (p->n_addrs == PS_MAX_ADDRS) {
        return LP2P_ELIMIT;
    }
    na = lp2p__realloc(p->addrs, (p->n_addrs + 1) * sizeof(*na));
    if (na == NULL) {
        return LP2P_ENOMEM;
    }
    p->addrs = na;
    na[p->n_addrs].text = lp2p__strdup(text);
    if (na[p->n_addrs].text == NULL) {
        return LP2P_ENOMEM;
    }
    na[p->n_addrs].expiry = expiry;
    p->n_addrs++;
    return 0;
}

const char *lp2p__ps_addr(struct lp2p_peerstore *ps,
                          const struct lp2p_peer_id *id, uint64_t now,
                          size_t i)
{
    struct lp2p_ps_peer *p = lp2p__ps_find(ps, id);
    size_t j;
    if (p == NULL) {
        return NULL;
    }
    for (j = 0; j < p->n_addrs; j++) {
        if (p->addrs[j].expiry > now && i-- == 0) {
            return p->addrs[j].text;
        }
    }
    return NULL;
}

int lp2p__ps_set_pubkey(struct lp2p_peerstore *ps,
                        const struct lp2p_peer_id *id, const uint8_t pub[32])
{
    struct lp2p_ps_peer *p = lp2p__ps_get(ps, id);
    if (p == NULL) {
        return ps->n == PS_MAX_PEERS ? LP2P_ELIMIT : LP2P_ENOMEM;
    }
    memcpy(p->pubkey, pub, 32);
    p->has_pubkey = 1;
    return 0;
}

int lp2p__ps_set_identity(struct lp2p_peerstore *ps,
                          const struct lp2p_peer_id *id, char *agent,
                          char **protocols, size_t n)
{
    struct lp2p_ps_peer *p = lp2p__ps_get(ps, id);
    if (p == NULL) {
        return ps->n == PS_MAX_PEERS ? LP2P_ELIMIT : LP2P_ENOMEM;
    }
    free_identity(p);
    p->agent = agent;
    p->protocols = protocols;
    p->n_protocols = n;
    p->identified = 1;
    return 0;
}

/* ---------------------------------------------------------------------
 * Public API
 */

int lp2p_peerstore_add_addr(struct lp2p_host *host,
                            const struct lp2p_peer_id *peer,
                            const char *maddr, uint64_t ttl_ms)
{
    struct lp2p_tcp_addr a;
    char text[LP2P_MULTIADDR_STRMAX];
    const char *p2p;
    size_t n;
    int rv;
    if (host == NULL || peer == NULL || maddr == NULL) {
        return LP2P_EINVAL;
    }
    rv = lp2p__tcp_addr_parse(maddr, &a, NULL, 0);
    if (rv != 0) {
        return rv;
    }
    if (a.has_peer && !lp2p_peer_id_equal(&a.peer, peer)) {
        return LP2P_EPEERID;
    }
    /* Store without the /p2p/ suffix. */
    p2p = strstr(maddr, "/p2p/");
    if (p2p == NULL) {
        p2p = strstr(maddr, "/ipfs/");
    }
    n = p2p != NULL ? (size_t)(p2p - maddr) : strlen(maddr);
    if (n >= sizeof(text)) {
        return LP2P_EBADADDR;
    }
    memcpy(text, maddr, n);
    text[n] = '\0';
    return lp2p__ps_add_addr(&host->ps, peer, text, uv_now(host->loop),
                             ttl_ms);
}

int lp2p_peerstore_addr(struct lp2p_host *host,
                        const struct lp2p_peer_id *peer, size_t i, char *out,
                        size_t cap)
{
    const char *a;
    size_t n;
    if (host == NULL || peer == NULL || out == NULL) {
        return LP2P_EINVAL;
    }
    a = lp2p__ps_addr(&host->ps, peer, uv_now(host->loop), i);
    if (a == NULL) {
        return LP2P_ENOTFOUND;
    }
    n = strlen(a);
    if (n + 1 > cap) {
        return LP2P_EOVERFLOW;
    }
    memcpy(out, a, n + 1);
    return 0;
}

int lp2p_peerstore_pubkey(struct lp2p_host *host,
                          const struct lp2p_peer_id *peer, uint8_t pub[32])
{
    struct lp2p_ps_peer *p;
    if (host == NULL || peer == NULL) {
        return LP2P_EINVAL;
    }
    p = lp2p__ps_find(&host->ps, peer);
    if (p != NULL && p->has_pubkey) {
        memcpy(pub, p->pubkey, 32);
        return 0;
    }
    /* An identity peer ID embeds the key: 00 24 08 01 12 20 || pub. */
    if (peer->len == 38 && peer->bytes[0] == 0x00 && peer->bytes[1] == 36 &&
        peer->bytes[2] == 0x08 && peer->bytes[3] == 0x01 &&
        peer->bytes[4] == 0x12 && peer->bytes[5] == 0x20) {
        memcpy(pub, peer->bytes + 6, 32);
        return 0;
    }
    return LP2P_ENOTFOUND;
}

int lp2p_peerstore_identity(struct lp2p_host *host,
                            const struct lp2p_peer_id *peer,
                            const char **agent_version,
                            const char *const **protocols,
                            size_t *n_protocols)
{
    struct lp2p_ps_peer *p;
    if (host == NULL || peer == NULL) {
        return LP2P_EINVAL;
    }
    p = lp2p__ps_find(&host->ps, peer);
    if (p == NULL || !p->identified) {
        return LP2P_ENOTFOUND;
    }
    if (agent_version != NULL) {
        *agent_version = p->agent;
    }
    if (protocols != NULL) {
        *protocols = (const char *const *)p->protocols;
    }
    if (n_protocols != NULL) {
        *n_protocols = p->n_protocols;
    }
    return 0;
}
