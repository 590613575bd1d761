/*
 * Connection slots that hostile peers cannot exhaust, the timers of ready
 * connections, and the reports of what the limits did.
 *
 * A peer's identity is known only once its Noise handshake finished, so
 * the limits work in two steps:
 *
 * - Before the handshake (inbound only): at most max_pending_handshakes.
 *   A new connection over that evicts the oldest pending handshake of the
 *   remote address that has the most of them. A flood from one address
 *   (or one NAT) thus only displaces its own handshakes, and another
 *   address always gets its turn; a member behind the flooding address
 *   loses its handshake only if max_pending_handshakes newer connections
 *   arrive from there while it runs (a handshake takes one round trip
 *   and a few signatures). A per-address cap would instead lock out every
 *   member behind that address. Each pending handshake is also bounded by
 *   handshake_timeout_ms.
 *
 * - After the handshake: a protected peer (lp2p_host_protect(), the
 *   members of a raft group) is always admitted; if that puts the ready
 *   connections over max_conns, the idlest unprotected inbound connection
 *   is evicted for it. An unprotected inbound connection is admitted only
 *   under max_unprotected_conns (and max_conns); it then has
 *   protocol_timeout_ms to negotiate a stream to a registered handler
 *   (either direction), and is closed after unprotected_idle_ms without
 *   streams. So strangers hold at most max_unprotected_conns slots, and
 *   only by using a protocol we serve.
 *
 * Outbound connections are the application's own: they are capped by
 * max_conns only (a dial to a protected peer evicts an unprotected inbound
 * connection rather than failing).
 *
 * Evictions and refusals are counted and reported at warn level, at most
 * one line per LIMIT_REPORT_MS, and once more when the host closes.
 */
#include <stdio.h>
#include <string.h>

#include "host.h"
#include "../util/heap.h"
#include "../util/log.h"

#define MOD "limits"

/* A draining connection (superseded, or the peer sent GO_AWAY) closes
 * this long after its last stream. */
#define DRAIN_GRACE_MS 1000
/* At most one report of the limits per this long. */
#define LIMIT_REPORT_MS 10000

/* ---------------------------------------------------------------------
 * Reports
 */

static const char *const kind_text[LP2P_LIM_N] = {
    "pending handshakes evicted for newer ones",
    "unprotected peers refused (max_unprotected_conns)",
    "connections refused (max_conns, nothing to evict)",
    "unprotected connections evicted for protected peers",
    "connections closed for opening no protocol in time",
    "connections not accepted (out of descriptors or memory)",
};

static void report(struct lp2p_host *host)
{
    char line[640];
    size_t off = 0;
    int k, any = 0;
    for (k = 0; k < LP2P_LIM_N; k++) {
        if (host->lim[k] == 0) {
            continue;
        }
        off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%llu %s",
                                any ? ", " : "",
                                (unsigned long long)host->lim[k],
                                kind_text[k]);
        if (off >= sizeof(line)) {
            off = sizeof(line) - 1;
        }
        any = 1;
        host->lim[k] = 0;
    }
    host->lim_reported = uv_now(host->loop);
    host->lim_ever = 1;
    if (any) {
        LOG_WARN(MOD, "connection limits: %s (%u connections, %u pending "
                 "handshakes, %u unprotected)",
                 line, host->n_conns, host->n_pending, host->n_unprotected);
    }
}

static void on_report_timer(uv_timer_t *t)
{
    report(t->data);
}

void lp2p__limits_note(struct lp2p_host *host, enum lp2p_limit_kind kind)
{
    uint64_t now = uv_now(host->loop);
    host->lim[kind]++;
    host->lim_total[kind]++;
    if (!host->lim_ever || now - host->lim_reported >= LIMIT_REPORT_MS) {
        uv_timer_stop(&host->lim_timer);
        report(host);
    } else if (!uv_is_active((uv_handle_t *)&host->lim_timer) &&
               !host->closing) {
        uv_timer_start(&host->lim_timer, on_report_timer,
                       LIMIT_REPORT_MS - (now - host->lim_reported), 0);
    }
}

static void lim_timer_closed(uv_handle_t *h)
{
    lp2p__host_unref(h->data);
}

void lp2p__limits_init(struct lp2p_host *host)
{
    uv_timer_init(host->loop, &host->lim_timer);
    host->lim_timer.data = host;
    /* A report due later never keeps the loop alive by itself. */
    uv_unref((uv_handle_t *)&host->lim_timer);
    lp2p__host_ref(host);
}

void lp2p__limits_close(struct lp2p_host *host)
{
    report(host);
    uv_close((uv_handle_t *)&host->lim_timer, lim_timer_closed);
}

/* ---------------------------------------------------------------------
 * Protected peers
 */

static size_t protected_index(const struct lp2p_host *host,
                              const struct lp2p_peer_id *peer)
{
    size_t i;
    for (i = 0; i < host->n_protected; i++) {
        if (lp2p_peer_id_equal(&host->protected_peers[i], peer)) {
            return i;
        }
    }
    return SIZE_MAX;
}

int lp2p__host_is_protected(const struct lp2p_host *host,
                            const struct lp2p_peer_id *peer)
{
    return protected_index(host, peer) != SIZE_MAX;
}

int lp2p_host_protect(struct lp2p_host *h, const struct lp2p_peer_id *peer,
                      bool on)
{
    struct lp2p__list *e;
    size_t i;
    if (h == NULL || peer == NULL) {
        return LP2P_EINVAL;
    }
    i = protected_index(h, peer);
    if (on && i == SIZE_MAX) {
        struct lp2p_peer_id *np = lp2p__realloc(
            h->protected_peers, (h->n_protected + 1) * sizeof(*np));
        if (np == NULL) {
            return LP2P_ENOMEM;
        }
        h->protected_peers = np;
        np[h->n_protected++] = *peer;
    } else if (!on && i != SIZE_MAX) {
        h->protected_peers[i] = h->protected_peers[--h->n_protected];
    } else {
        return 0;
    }
    /* Ready inbound connections of the peer change side. */
    for (e = h->conns.next; e != &h->conns; e = e->next) {
        struct lp2p_conn *c = LP2P__CONTAINER_OF(e, struct lp2p_conn, link);
        if (c->state != LP2P_CONN_S_READY || !c->inbound ||
            !lp2p_peer_id_equal(&c->peer, peer)) {
            continue;
        }
        if (on && c->counted_unprotected) {
            c->counted_unprotected = 0;
            h->n_unprotected--;
        } else if (!on && !c->counted_unprotected) {
            c->counted_unprotected = 1;
            h->n_unprotected++;
            /* A fresh window to open a protocol, from now. */
            c->ready_at = uv_now(h->loop);
        }
        lp2p__conn_timer_arm(c);
    }
    return 0;
}

/* ---------------------------------------------------------------------
 * Slots
 */

static uint32_t established(const struct lp2p_host *host)
{
    return host->n_conns - host->n_pending;
}

/* The unprotected inbound connection to evict: one without streams, idle
 * the longest, else the oldest. NULL if there is none. */
static struct lp2p_conn *pick_unprotected(struct lp2p_host *host,
                                          const struct lp2p_conn *except)
{
    struct lp2p__list *e;
    struct lp2p_conn *idlest = NULL, *oldest = NULL;
    for (e = host->conns.next; e != &host->conns; e = e->next) {
        struct lp2p_conn *c = LP2P__CONTAINER_OF(e, struct lp2p_conn, link);
        if (c == except || !c->counted_unprotected || c->fail_status != 0 ||
            c->state != LP2P_CONN_S_READY) {
            continue;
        }
        if (lp2p__list_empty(&c->streams)) {
            if (idlest == NULL || c->idle_since < idlest->idle_since) {
                idlest = c;
            }
        } else if (oldest == NULL || c->ready_at < oldest->ready_at) {
            oldest = c;
        }
    }
    return idlest != NULL ? idlest : oldest;
}

/* Evict one unprotected connection for a protected peer; 0 if done. The
 * close runs from a deferred job (we may be inside an API call); the
 * victim is marked so that it is not picked twice. */
static int evict_for_protected(struct lp2p_host *host,
                               const struct lp2p_conn *except)
{
    struct lp2p_conn *v = pick_unprotected(host, except);
    if (v == NULL) {
        return LP2P_ELIMIT;
    }
    LOG_DEBUG(MOD, "evicting unprotected %s for a protected peer",
              v->remote_addr);
    lp2p__limits_note(host, LP2P_LIM_EVICTED_FOR_PROTECTED);
    lp2p__conn_fail(v, LP2P_ELIMIT);
    return 0;
}

static int same_ip(const struct lp2p_conn *c, const uint8_t *ip,
                   size_t ip_len)
{
    return c->ip_len == ip_len && memcmp(c->ip, ip, ip_len) == 0;
}

void lp2p__limits_accept(struct lp2p_host *host, const uint8_t *ip,
                         size_t ip_len)
{
    struct lp2p__list *e, *f;
    struct lp2p_conn *victim = NULL;
    uint32_t best = 0;
    if (host->n_pending < host->cfg.max_pending_handshakes) {
        return;
    }
    /* The list is oldest first, and only a strictly larger count wins:
     * the victim is the oldest handshake of the busiest address (ties go
     * to the address whose oldest handshake is older). At most
     * max_pending_handshakes squared comparisons. */
    for (e = host->pending.next; e != &host->pending; e = e->next) {
        struct lp2p_conn *c = LP2P__CONTAINER_OF(e, struct lp2p_conn, plink);
        uint32_t n = same_ip(c, ip, ip_len) ? 1 : 0; /* the newcomer */
        for (f = host->pending.next; f != &host->pending; f = f->next) {
            struct lp2p_conn *o = LP2P__CONTAINER_OF(f, struct lp2p_conn, plink);
            n += (uint32_t)same_ip(o, c->ip, c->ip_len);
        }
        if (n > best) {
            best = n;
            victim = c;
        }
    }
    if (victim != NULL) {
        LOG_DEBUG(MOD, "evicting the pending handshake of %s (%u pending "
                  "from that address)", victim->remote_addr, best);
        lp2p__limits_note(host, LP2P_LIM_EVICTED_PENDING);
        lp2p__conn_close(victim, LP2P_ELIMIT);
    }
}

int lp2p__limits_admit(struct lp2p_conn *c)
{
    struct lp2p_host *host = c->host;
    if (c->counted_pending) {
        c->counted_pending = 0;
        host->n_pending--;
        lp2p__list_remove(&c->plink);
    }
    c->ready_at = uv_now(host->loop);
    if (!c->inbound) {
        return 0; /* slot taken when the dial started */
    }
    if (lp2p__host_is_protected(host, &c->peer)) {
        if (established(host) > host->cfg.max_conns &&
            evict_for_protected(host, c) != 0) {
            lp2p__limits_note(host, LP2P_LIM_REFUSED_FULL);
            return LP2P_ELIMIT;
        }
        return 0;
    }
    if (host->n_unprotected >= host->cfg.max_unprotected_conns) {
        LOG_DEBUG(MOD, "refusing unprotected %s: %u unprotected connections",
                  c->remote_addr, host->n_unprotected);
        lp2p__limits_note(host, LP2P_LIM_REFUSED_UNPROTECTED);
        return LP2P_ELIMIT;
    }
    if (established(host) > host->cfg.max_conns) {
        lp2p__limits_note(host, LP2P_LIM_REFUSED_FULL);
        return LP2P_ELIMIT;
    }
    c->counted_unprotected = 1;
    host->n_unprotected++;
    return 0;
}

int lp2p__limits_dial(struct lp2p_host *host, const struct lp2p_peer_id *peer)
{
    if (established(host) < host->cfg.max_conns) {
        return 0;
    }
    if (peer != NULL && lp2p__host_is_protected(host, peer)) {
        return evict_for_protected(host, NULL);
    }
    return LP2P_ELIMIT;
}

void lp2p__limits_conn_gone(struct lp2p_conn *c)
{
    struct lp2p_host *host = c->host;
    if (c->counted_pending) {
        c->counted_pending = 0;
        host->n_pending--;
        lp2p__list_remove(&c->plink);
    }
    if (c->counted_unprotected) {
        c->counted_unprotected = 0;
        host->n_unprotected--;
    }
}

/* ---------------------------------------------------------------------
 * Timers of ready connections
 */

static uint64_t idle_limit(const struct lp2p_conn *c)
{
    const struct lp2p_host_config *cfg = &c->host->cfg;
    uint64_t lim = cfg->idle_timeout_ms;
    if (c->draining) {
        return DRAIN_GRACE_MS;
    }
    if (c->counted_unprotected && cfg->unprotected_idle_ms < lim) {
        lim = cfg->unprotected_idle_ms;
    }
    return lim;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Must it still negotiate a first protocol? */
static int protocol_pending(const struct lp2p_conn *c)
{
    return c->counted_unprotected && !c->negotiated && !c->draining &&
           c->host->cfg.protocol_timeout_ms != UINT64_MAX;
}

static void on_conn_timer(uv_timer_t *t);

void lp2p__conn_timer_arm(struct lp2p_conn *c)
{
    uint64_t now = uv_now(c->host->loop);
    uint64_t lim = idle_limit(c), next = UINT64_MAX;
    if (c->state != LP2P_CONN_S_READY) {
        return;
    }
    if (lim != UINT64_MAX) {
        next = add_sat(lp2p__list_empty(&c->streams) ? c->idle_since : now,
                       lim);
    }
    if (protocol_pending(c)) {
        uint64_t p = add_sat(c->ready_at, c->host->cfg.protocol_timeout_ms);
        if (p < next) {
            next = p;
        }
    }
    if (next == UINT64_MAX) {
        uv_timer_stop(&c->timer);
        return;
    }
    uv_timer_start(&c->timer, on_conn_timer, next > now ? next - now : 0, 0);
}

static void on_conn_timer(uv_timer_t *t)
{
    struct lp2p_conn *c = t->data;
    struct lp2p_host *host = c->host;
    uint64_t now = uv_now(host->loop);
    uint64_t lim = idle_limit(c);
    if (protocol_pending(c) &&
        now - c->ready_at >= host->cfg.protocol_timeout_ms) {
        LOG_DEBUG(MOD, "closing %s: no protocol negotiated in %llu ms",
                  c->remote_addr,
                  (unsigned long long)host->cfg.protocol_timeout_ms);
        lp2p__limits_note(host, LP2P_LIM_CLOSED_NO_PROTOCOL);
        lp2p__conn_close(c, LP2P_ETIMEDOUT);
        return;
    }
    if (!lp2p__list_empty(&c->streams)) {
        c->idle_since = now;
    } else if (lim != UINT64_MAX && now - c->idle_since >= lim) {
        LOG_DEBUG(MOD, "closing idle conn to %s", c->remote_addr);
        lp2p__conn_close(c, 0);
        return;
    }
    lp2p__conn_timer_arm(c);
}

void lp2p__conn_touch(struct lp2p_conn *c)
{
    c->idle_since = uv_now(c->host->loop);
}

void lp2p__conn_drain(struct lp2p_conn *c)
{
    c->draining = 1;
    if (c->state == LP2P_CONN_S_READY) {
        c->idle_since = uv_now(c->host->loop);
        lp2p__conn_timer_arm(c);
    }
}

static void on_keepalive(uv_timer_t *t)
{
    struct lp2p_conn *c = t->data;
    if (c->ping_outstanding) {
        LOG_INFO(MOD, "%s did not answer a keepalive ping in %llu ms",
                 c->remote_addr,
                 (unsigned long long)c->host->cfg.keepalive_ms);
        lp2p__conn_close(c, LP2P_ETIMEDOUT);
        return;
    }
    if (lp2p__conn_ping(c) == 0) {
        c->ping_outstanding = 1;
    }
}

void lp2p__conn_ready_timers(struct lp2p_conn *c)
{
    struct lp2p_host *host = c->host;
    uv_timer_stop(&c->timer); /* the handshake is over */
    if (host->cfg.keepalive_ms != UINT64_MAX) {
        uv_timer_start(&c->keepalive, on_keepalive, host->cfg.keepalive_ms,
                       host->cfg.keepalive_ms);
    }
    c->idle_since = uv_now(host->loop);
    lp2p__conn_timer_arm(c);
}
