/*
 * Remote clients over P2PRAFT_CLIENT_PROTOCOL (see clientproto.h).
 *
 * The credential is the libp2p identity: the Noise handshake proves the
 * peer's key, and only the peer IDs listed at start (cfg.clients,
 * cfg.clients_file) may use the protocol. Anyone else's stream is reset at
 * once, before a byte is read, then counted and logged at a bounded rate,
 * as the forward protocol does with non-members. A listed client beyond
 * cfg.api_max_conns streams gets the BUSY refusal frame before anything is
 * read. Each accepted stream is a session over the same frames as the
 * unix socket (session.c), so a remote client can do all that a local one
 * can.
 *
 * Clients are not members: their connections are not protected
 * (lp2p_host_protect), so they take the host's unprotected slots, with the
 * idle and protocol limits of strangers (an open client stream keeps its
 * connection busy).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "raft/api.h"
#include "raft/clientproto.h"
#include "raft/forward.h"
#include "raft/node.h"
#include "raft/session.h"
#include "util/heap.h"
#include "util/log.h"

#define MODULE "node"
#define LINE_MAX_LEN 1024

void p2praft__clientproto_init(struct p2praft__clientproto *cp)
{
    memset(cp, 0, sizeof(*cp));
    lp2p__list_init(&cp->sessions);
}

static int add_allowed(struct p2praft__clientproto *cp, const char *id,
                       const char *where, char *err, size_t errlen)
{
    struct lp2p_peer_id pid, *grown;
    size_t i;
    if (lp2p_peer_id_parse(&pid, id) != 0) {
        snprintf(err, errlen, "%s: '%s' is not a peer ID", where, id);
        return LP2P_EINVAL;
    }
    for (i = 0; i < cp->n_allowed; i++) {
        if (lp2p_peer_id_equal(&cp->allowed[i], &pid)) {
            return 0; /* listed twice */
        }
    }
    grown = lp2p__realloc(cp->allowed, (cp->n_allowed + 1) * sizeof(pid));
    if (grown == NULL) {
        snprintf(err, errlen, "out of memory");
        return LP2P_ENOMEM;
    }
    cp->allowed = grown;
    cp->allowed[cp->n_allowed++] = pid;
    return 0;
}

static int load_file(struct p2praft__clientproto *cp, const char *path,
                     char *err, size_t errlen)
{
    char line[LINE_MAX_LEN], where[LINE_MAX_LEN + 64];
    unsigned lineno = 0;
    FILE *f = fopen(path, "r");
    int rv = 0;
    if (f == NULL) {
        snprintf(err, errlen, "cannot read the clients file %s: %s", path,
                 strerror(errno));
        return LP2P_EIO;
    }
    while (rv == 0 && fgets(line, sizeof(line), f) != NULL) {
        char *p = line, *e;
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            snprintf(err, errlen, "%s:%u: line too long", path, lineno);
            rv = LP2P_EINVAL;
            break;
        }
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        e = p + strlen(p);
        while (e > p && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' ||
                         e[-1] == '\t')) {
            *--e = '\0';
        }
        if (*p == '\0' || *p == '#') {
            continue;
        }
        snprintf(where, sizeof(where), "%s:%u", path, lineno);
        rv = add_allowed(cp, p, where, err, errlen);
    }
    if (rv == 0 && ferror(f)) {
        snprintf(err, errlen, "cannot read the clients file %s", path);
        rv = LP2P_EIO;
    }
    fclose(f);
    return rv;
}

int p2praft__clientproto_load(struct p2praft_node *n, char *err,
                              size_t errlen)
{
    struct p2praft__clientproto *cp = &n->clients;
    size_t i;
    int rv;
    for (i = 0; i < n->cfg.n_clients; i++) {
        rv = add_allowed(cp, n->client_ids[i], "--client", err, errlen);
        if (rv != 0) {
            return rv;
        }
    }
    if (n->clients_file != NULL) {
        return load_file(cp, n->clients_file, err, errlen);
    }
    return 0;
}

static bool listed(const struct p2praft__clientproto *cp,
                   const struct lp2p_peer_id *peer)
{
    size_t i;
    for (i = 0; i < cp->n_allowed; i++) {
        if (lp2p_peer_id_equal(&cp->allowed[i], peer)) {
            return true;
        }
    }
    return false;
}

static void refused(struct p2praft_node *n, struct lp2p__ratelog *rl,
                    const struct lp2p_peer_id *peer, const char *why)
{
    p2praft__refused_stream(n, rl, P2PRAFT_CLIENT_PROTOCOL, peer, why);
}

static void session_closing(struct p2praft__session *s)
{
    s->node->clients.n_sessions--;
}

static void session_freed(struct p2praft__session *s)
{
    lp2p__list_remove(&s->link);
}

static const struct p2praft__session_owner owner = {session_closing,
                                                    session_freed};

static void handler(struct lp2p_stream *st, void *data)
{
    struct p2praft_node *n = data;
    struct p2praft__clientproto *cp = &n->clients;
    const struct lp2p_peer_id *peer = lp2p_stream_peer(st);
    struct p2praft__session *s;
    if (n->stopping || !listed(cp, peer)) {
        if (!n->stopping) {
            refused(n, &cp->refused_peer, peer,
                    "not a listed client: --client, --clients-file");
        }
        lp2p_stream_reset(st);
        lp2p_stream_close(st, NULL, NULL);
        return;
    }
    if (cp->n_sessions >= n->cfg.api_max_conns) {
        /* Tell it, before reading anything, that nothing was done. */
        size_t len;
        const uint8_t *busy = p2praft__api_busy_frame(&len);
        refused(n, &cp->refused_busy, peer, "too many at once");
        if (lp2p_stream_write(st, busy, len, NULL, NULL) != 0) {
            lp2p_stream_reset(st);
        }
        lp2p_stream_close(st, NULL, NULL);
        return;
    }
    s = p2praft__session_new(n, &owner, NULL);
    if (s == NULL) {
        lp2p_stream_reset(st);
        lp2p_stream_close(st, NULL, NULL);
        return;
    }
    p2praft__apiconn_stream_init(&s->conn, st, &p2praft__session_conn_ops, s);
    lp2p__list_insert_head(&cp->sessions, &s->link);
    cp->n_sessions++;
    p2praft__session_start(s);
}

int p2praft__clientproto_serve(struct p2praft_node *n)
{
    return lp2p_host_set_handler(n->host, P2PRAFT_CLIENT_PROTOCOL, NULL,
                                 handler, n);
}

void p2praft__clientproto_tick(struct p2praft_node *n, uint64_t now)
{
    struct p2praft__clientproto *cp = &n->clients;
    struct lp2p__list *q, *next;
    LP2P__LIST_FOREACH_SAFE(q, next, &cp->sessions) {
        p2praft__session_tick(
            LP2P__CONTAINER_OF(q, struct p2praft__session, link), now);
    }
    p2praft__refused_tick(&cp->refused_peer, now, P2PRAFT_CLIENT_PROTOCOL,
                          "not a listed client");
    p2praft__refused_tick(&cp->refused_busy, now, P2PRAFT_CLIENT_PROTOCOL,
                          "too many at once");
}

void p2praft__clientproto_close(struct p2praft_node *n)
{
    struct lp2p__list *q, *next;
    if (n->host != NULL) {
        lp2p_host_remove_handler(n->host, P2PRAFT_CLIENT_PROTOCOL);
    }
    LP2P__LIST_FOREACH_SAFE(q, next, &n->clients.sessions) {
        p2praft__session_close(
            LP2P__CONTAINER_OF(q, struct p2praft__session, link), false);
    }
}

void p2praft__clientproto_free(struct p2praft__clientproto *cp)
{
    lp2p__free(cp->allowed);
    cp->allowed = NULL;
    cp->n_allowed = 0;
}
