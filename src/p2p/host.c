/*
 * The host object: configuration, lifecycle and asynchronous close,
 * stream handlers, observers, deferred callbacks, and the bookkeeping of
 * ready connections (one per peer; simultaneous dials resolved).
 *
 * Simultaneous dials: when a connection to peer P becomes ready while
 * another ready one exists, both ends keep the connection that was dialed
 * by the smaller peer ID (byte order of the multihash) and mark the other
 * one draining: it accepts no new streams from us, finishes the ones it
 * has, and closes when empty (the idle timer does that). Both ends see
 * both connections, so both make the same choice without talking.
 */
#include <string.h>

#include "host.h"
#include "../util/heap.h"
#include "../util/log.h"

#define MOD "host"


/* ---------------------------------------------------------------------
 * Configuration and creation
 */
void lp2p_host_config_init(struct lp2p_host_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->handshake_timeout_ms = 10000;
    cfg->idle_timeout_ms = 120000;
    cfg->max_conns = 256;
    cfg->max_pending_handshakes = 64;
    cfg->max_inbound_streams = 256;
    cfg->max_outbound_streams = 1024;
    cfg->stream_window = 16 * 1024 * 1024;
    cfg->conn_write_buffer = 4 * 1024 * 1024;
    cfg->negotiate_timeout_ms = 10000;
    cfg->keepalive_ms = 30000;
    cfg->max_unprotected_conns = 32;
    cfg->unprotected_idle_ms = 10000;
    cfg->protocol_timeout_ms = 5000;
}

static void fill_defaults(struct lp2p_host_config *c)
{
    struct lp2p_host_config d;
    lp2p_host_config_init(&d);
    if (c->handshake_timeout_ms == 0)
        c->handshake_timeout_ms = d.handshake_timeout_ms;
    if (c->idle_timeout_ms == 0)
        c->idle_timeout_ms = d.idle_timeout_ms;
    if (c->max_conns == 0)
        c->max_conns = d.max_conns;
    if (c->max_pending_handshakes == 0)
        c->max_pending_handshakes = d.max_pending_handshakes;
    if (c->max_inbound_streams == 0)
        c->max_inbound_streams = d.max_inbound_streams;
    if (c->max_outbound_streams == 0)
        c->max_outbound_streams = d.max_outbound_streams;
    if (c->stream_window == 0)
        c->stream_window = d.stream_window;
    if (c->stream_window < 256 * 1024)
        c->stream_window = 256 * 1024;
    if (c->conn_write_buffer == 0)
        c->conn_write_buffer = d.conn_write_buffer;
    if (c->negotiate_timeout_ms == 0)
        c->negotiate_timeout_ms = d.negotiate_timeout_ms;
    if (c->keepalive_ms == 0)
        c->keepalive_ms = d.keepalive_ms;
    if (c->max_unprotected_conns == 0)
        c->max_unprotected_conns = d.max_unprotected_conns;
    if (c->unprotected_idle_ms == 0)
        c->unprotected_idle_ms = d.unprotected_idle_ms;
    if (c->protocol_timeout_ms == 0)
        c->protocol_timeout_ms = d.protocol_timeout_ms;
}

static void reaper_closed(uv_handle_t *h)
{
    struct lp2p_host *host = h->data;
    lp2p_host_close_cb cb = host->close_cb;
    void *data = host->close_data;
    lp2p__ps_free(&host->ps);
    lp2p_key_wipe(&host->key);
    lp2p__free(host->agent);
    lp2p__free(host->handlers);
    lp2p__free(host->observers);
    lp2p__free(host->protected_peers);
    if (cb != NULL) {
        /* The host memory is still valid during the callback. */
        cb(host, data);
    }
    lp2p__free(host);
}

static void run_deferred(uv_idle_t *idle)
{
    struct lp2p_host *host = idle->data;
    struct lp2p__list batch;
    /* Take the current batch: callbacks may defer more for next time. */
    lp2p__list_take(&batch, &host->deferred);
    while (!lp2p__list_empty(&batch)) {
        struct lp2p_deferred *d =
            LP2P__CONTAINER_OF(batch.next, struct lp2p_deferred, link);
        lp2p__list_remove(&d->link);
        d->fn(host, d->arg, d->status); /* may free d */
    }
    if (lp2p__list_empty(&host->deferred)) {
        uv_idle_stop(&host->reaper);
        host->reaper_active = 0;
    }
    if (host->closing && host->objects == 0 &&
        lp2p__list_empty(&host->deferred) &&
        !uv_is_closing((uv_handle_t *)&host->reaper)) {
        uv_close((uv_handle_t *)&host->reaper, reaper_closed);
    }
}

static void reaper_kick(struct lp2p_host *host)
{
    if (!host->reaper_active &&
        !uv_is_closing((uv_handle_t *)&host->reaper)) {
        uv_idle_start(&host->reaper, run_deferred);
        host->reaper_active = 1;
    }
}

void lp2p__host_defer(struct lp2p_host *host, struct lp2p_deferred *d,
                      void (*fn)(struct lp2p_host *, void *, int), void *arg,
                      int status)
{
    d->fn = fn;
    d->arg = arg;
    d->status = status;
    lp2p__list_insert_tail(&host->deferred, &d->link);
    reaper_kick(host);
}

/* ---------------------------------------------------------------------
 * Busy polling. While the `busy` idle handle is started, libuv polls with
 * timeout 0 instead of sleeping; its callback stops it once busy_ns passed
 * since the last activity. The handle is unref'd: it never keeps the loop
 * alive, and it counts as an object of the host until its close ran.
 */
static void busy_check(uv_idle_t *idle)
{
    struct lp2p_host *host = idle->data;
    if (uv_hrtime() - host->busy_last > host->busy_ns) {
        uv_idle_stop(&host->busy);
        host->busy_active = 0;
    }
}

/* Only through lp2p__host_busy_kick(), which lp2p_host_close() turns off
 * (busy_ns 0) before it closes the handle. */
void lp2p__host_busy_start(struct lp2p_host *host)
{
    uv_idle_start(&host->busy, busy_check);
    host->busy_active = 1;
}

static void busy_closed(uv_handle_t *h)
{
    lp2p__host_unref(h->data);
}

void lp2p_host_kick(struct lp2p_host *host)
{
    if (host != NULL) {
        lp2p__host_busy_kick(host);
    }
}

void lp2p__host_ref(struct lp2p_host *host)
{
    host->objects++;
}

void lp2p__host_unref(struct lp2p_host *host)
{
    host->objects--;
    if (host->closing && host->objects == 0) {
        reaper_kick(host);
    }
}

int lp2p_host_new(struct lp2p_host **out, struct uv_loop_s *loop,
                  const struct lp2p_host_config *cfg)
{
    struct lp2p_host *host;
    char agent[64];
    int rv;
    if (out == NULL || loop == NULL ||
        (cfg != NULL && cfg->busy_poll_us > LP2P_BUSY_POLL_US_MAX)) {
        return LP2P_EINVAL;
    }
    host = lp2p__calloc(1, sizeof(*host));
    if (host == NULL) {
        return LP2P_ENOMEM;
    }
    host->loop = loop;
    if (cfg != NULL) {
        host->cfg = *cfg;
    } else {
        lp2p_host_config_init(&host->cfg);
    }
    fill_defaults(&host->cfg);
    lp2p__list_init(&host->listeners);
    lp2p__list_init(&host->conns);
    lp2p__list_init(&host->dials);
    lp2p__list_init(&host->pending);
    lp2p__list_init(&host->deferred);
    lp2p__ps_init(&host->ps);
    if (cfg != NULL && cfg->key != NULL) {
        rv = lp2p_key_from_seed(&host->key, cfg->key->seed);
    } else {
        rv = lp2p_key_generate(&host->key);
    }
    if (rv != 0) {
        goto err;
    }
    host->cfg.key = NULL;
    rv = lp2p_peer_id_from_key(&host->key, &host->id);
    if (rv != 0) {
        goto err;
    }
    lp2p_peer_id_to_string(&host->id, host->id_str, sizeof(host->id_str));
    if (cfg != NULL && cfg->agent_version != NULL) {
        host->agent = lp2p__strdup(cfg->agent_version);
    } else {
        memcpy(agent, "p2praft/" LP2P_VERSION, sizeof("p2praft/" LP2P_VERSION));
        host->agent = lp2p__strdup(agent);
    }
    rv = LP2P_ENOMEM;
    if (host->agent == NULL) {
        goto err;
    }
    host->cfg.agent_version = NULL;
    rv = lp2p_host_set_handler(host, LP2P_PING_PROTOCOL, NULL,
                               lp2p__ping_handler, NULL);
    if (rv != 0) {
        goto err;
    }
    rv = lp2p_host_set_handler(host, LP2P_IDENTIFY_PROTOCOL, NULL,
                               lp2p__identify_handler, NULL);
    if (rv != 0) {
        goto err;
    }
    uv_idle_init(loop, &host->reaper);
    host->reaper.data = host;
    if (host->cfg.busy_poll_us > 0) {
        uv_idle_init(loop, &host->busy);
        uv_unref((uv_handle_t *)&host->busy);
        host->busy.data = host;
        host->busy_ns = (uint64_t)host->cfg.busy_poll_us * 1000;
        lp2p__host_ref(host);
    }
    lp2p__limits_init(host);
    *out = host;
    return 0;
err:
    lp2p_key_wipe(&host->key);
    lp2p__free(host->agent);
    {
        size_t i;
        for (i = 0; i < host->n_handlers; i++) {
            lp2p__free(host->handlers[i].protocol);
        }
    }
    lp2p__free(host->handlers);
    lp2p__free(host);
    return rv;
}

void lp2p_host_close(struct lp2p_host *host, lp2p_host_close_cb cb,
                     void *data)
{
    size_t i;
    if (host == NULL || host->closing) {
        return;
    }
    host->closing = 1;
    host->close_cb = cb;
    host->close_data = data;
    lp2p__listeners_close(host);
    lp2p__dial_cancel_all(host);
    while (!lp2p__list_empty(&host->conns)) {
        struct lp2p_conn *c =
            LP2P__CONTAINER_OF(host->conns.next, struct lp2p_conn, link);
        lp2p__conn_close(c, LP2P_ECANCELED);
    }
    lp2p__ping_free_all(host);
    lp2p__limits_close(host);
    if (host->busy_ns != 0) {
        /* busy_ns 0: no kick starts it again. */
        host->busy_ns = 0;
        host->busy_active = 0;
        uv_close((uv_handle_t *)&host->busy, busy_closed);
    }
    for (i = 0; i < host->n_handlers; i++) {
        lp2p__free(host->handlers[i].protocol);
    }
    host->n_handlers = 0;
    reaper_kick(host);
}

const struct lp2p_peer_id *lp2p_host_id(const struct lp2p_host *host)
{
    return &host->id;
}

void lp2p_host_key(const struct lp2p_host *host, struct lp2p_key *key)
{
    *key = host->key;
}

struct uv_loop_s *lp2p_host_loop(const struct lp2p_host *host)
{
    return host->loop;
}

/* ---------------------------------------------------------------------
 * Handlers
 */
int lp2p_host_set_handler(struct lp2p_host *host, const char *protocol,
                          lp2p_protocol_match match,
                          lp2p_stream_handler handler, void *data)
{
    struct lp2p_handler *nh;
    size_t i, n;
    if (host == NULL || protocol == NULL || handler == NULL) {
        return LP2P_EINVAL;
    }
    n = strlen(protocol);
    if (n == 0 || n > LP2P_PROTOCOL_MAX || strchr(protocol, '\n') != NULL) {
        return LP2P_EINVAL;
    }
    if (host->closing) {
        return LP2P_ESHUTDOWN;
    }
    for (i = 0; i < host->n_handlers; i++) {
        if (strcmp(host->handlers[i].protocol, protocol) == 0) {
            host->handlers[i].match = match;
            host->handlers[i].handler = handler;
            host->handlers[i].data = data;
            return 0;
        }
    }
    nh = lp2p__realloc(host->handlers,
                       (host->n_handlers + 1) * sizeof(*nh));
    if (nh == NULL) {
        return LP2P_ENOMEM;
    }
    host->handlers = nh;
    nh[host->n_handlers].protocol = lp2p__strdup(protocol);
    if (nh[host->n_handlers].protocol == NULL) {
        return LP2P_ENOMEM;
    }
    nh[host->n_handlers].match = match;
    nh[host->n_handlers].handler = handler;
    nh[host->n_handlers].data = data;
    host->n_handlers++;
    return 0;
}

int lp2p_host_remove_handler(struct lp2p_host *host, const char *protocol)
{
    size_t i;
    if (host == NULL || protocol == NULL) {
        return LP2P_EINVAL;
    }
    for (i = 0; i < host->n_handlers; i++) {
        if (strcmp(host->handlers[i].protocol, protocol) == 0) {
            lp2p__free(host->handlers[i].protocol);
            memmove(&host->handlers[i], &host->handlers[i + 1],
                    (host->n_handlers - i - 1) * sizeof(host->handlers[0]));
            host->n_handlers--;
            return 0;
        }
    }
    return LP2P_ENOTFOUND;
}

const struct lp2p_handler *lp2p__host_match(const struct lp2p_host *host,
                                            const char *protocol)
{
    size_t i;
    for (i = 0; i < host->n_handlers; i++) {
        if (strcmp(host->handlers[i].protocol, protocol) == 0) {
            return &host->handlers[i];
        }
    }
    for (i = 0; i < host->n_handlers; i++) {
        const struct lp2p_handler *h = &host->handlers[i];
        if (h->match != NULL && h->match(protocol, h->data)) {
            return h;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------------
 * Observers
 */
int lp2p_host_observe(struct lp2p_host *host, lp2p_conn_event_cb cb,
                      void *data)
{
    struct lp2p_observer *no;
    size_t i;
    if (host == NULL || cb == NULL) {
        return LP2P_EINVAL;
    }
    for (i = 0; i < host->n_observers; i++) {
        if (!host->observers[i].removed && host->observers[i].cb == cb &&
            host->observers[i].data == data) {
            return LP2P_EEXIST;
        }
    }
    no = lp2p__realloc(host->observers,
                       (host->n_observers + 1) * sizeof(*no));
    if (no == NULL) {
        return LP2P_ENOMEM;
    }
    host->observers = no;
    no[host->n_observers].cb = cb;
    no[host->n_observers].data = data;
    no[host->n_observers].removed = 0;
    host->n_observers++;
    return 0;
}

static void compact_observers(struct lp2p_host *host)
{
    size_t i, j = 0;
    for (i = 0; i < host->n_observers; i++) {
        if (!host->observers[i].removed) {
            host->observers[j++] = host->observers[i];
        }
    }
    host->n_observers = j;
}

int lp2p_host_unobserve(struct lp2p_host *host, lp2p_conn_event_cb cb,
                        void *data)
{
    size_t i;
    if (host == NULL) {
        return LP2P_EINVAL;
    }
    for (i = 0; i < host->n_observers; i++) {
        struct lp2p_observer *o = &host->observers[i];
        if (!o->removed && o->cb == cb && o->data == data) {
            o->removed = 1;
            if (!host->notifying) {
                compact_observers(host);
            }
            return 0;
        }
    }
    return LP2P_ENOTFOUND;
}

void lp2p__host_notify(struct lp2p_host *host, struct lp2p_conn *c,
                       enum lp2p_conn_event ev, int status)
{
    struct lp2p_conn_info info;
    size_t i, n = host->n_observers;
    info.peer = &c->peer;
    info.local_addr = c->local_addr;
    info.remote_addr = c->remote_addr;
    info.inbound = c->inbound;
    info.muxer = "/yamux/1.0.0";
    info.inlined_muxer = c->sec != NULL ? c->sec->inlined : 0;
    host->notifying++;
    for (i = 0; i < n && i < host->n_observers; i++) {
        struct lp2p_observer *o = &host->observers[i];
        if (!o->removed) {
            o->cb(host, ev, &info, status, o->data);
        }
    }
    if (--host->notifying == 0) {
        compact_observers(host);
    }
}

/* ---------------------------------------------------------------------
 * Ready connections
 */
struct lp2p_conn *lp2p__host_find_conn(const struct lp2p_host *host,
                                       const struct lp2p_peer_id *peer)
{
    const struct lp2p__list *e;
    struct lp2p_conn *best = NULL;
    for (e = host->conns.next; e != &host->conns; e = e->next) {
        struct lp2p_conn *c = LP2P__CONTAINER_OF(e, struct lp2p_conn, link);
        if (c->state == LP2P_CONN_S_READY && !c->draining &&
            lp2p_peer_id_equal(&c->peer, peer)) {
            best = c;
            break;
        }
    }
    return best;
}

static int peer_id_cmp(const struct lp2p_peer_id *a,
                       const struct lp2p_peer_id *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int r = memcmp(a->bytes, b->bytes, n);
    if (r != 0) {
        return r;
    }
    return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
}

/* Peer ID of the side that dialed `c`. */
static const struct lp2p_peer_id *dialer_of(const struct lp2p_conn *c)
{
    return c->inbound ? &c->peer : &c->host->id;
}

void lp2p__host_conn_ready(struct lp2p_conn *c)
{
    struct lp2p_host *host = c->host;
    struct lp2p_conn *other = lp2p__host_find_conn(host, &c->peer);
    struct lp2p_dial *d = c->dial;
    if (lp2p__limits_admit(c) != 0) {
        /* Not announced: no DISCONNECTED event follows. */
        lp2p__conn_close(c, LP2P_ELIMIT);
        return;
    }
    lp2p__conn_ready_timers(c);
    if (other != NULL && other != c) {
        /* Keep the one dialed by the smaller peer ID. */
        int keep_new = peer_id_cmp(dialer_of(c), dialer_of(other)) < 0;
        struct lp2p_conn *loser = keep_new ? other : c;
        LOG_DEBUG(MOD, "two connections to %s: the one dialed by the "
                  "smaller peer ID stays", c->remote_addr);
        lp2p__conn_drain(loser);
    }
    lp2p__ps_set_pubkey(&host->ps, &c->peer, c->peer.bytes + 6);
    if (!c->inbound && c->remote_addr[0] != '\0') {
        lp2p__ps_add_addr(&host->ps, &c->peer, c->remote_addr,
                          uv_now(host->loop), LP2P_TTL_CONNECTED);
    }
    c->ready_announced = 1;
    lp2p__host_notify(host, c, LP2P_CONN_CONNECTED, 0);
    if (d != NULL && c->state == LP2P_CONN_S_READY) {
        c->dial = NULL;
        d->conn = NULL;
        lp2p__dial_done(d, c);
    }
}

void lp2p__host_conn_gone(struct lp2p_conn *c, int status)
{
    if (c->ready_announced) {
        c->ready_announced = 0;
        lp2p__host_notify(c->host, c, LP2P_CONN_DISCONNECTED, status);
    }
}

int lp2p_host_is_connected(const struct lp2p_host *host,
                           const struct lp2p_peer_id *peer)
{
    return lp2p__host_find_conn(host, peer) != NULL;
}

int lp2p_host_disconnect(struct lp2p_host *host,
                         const struct lp2p_peer_id *peer)
{
    struct lp2p__list *e, *next;
    int found = 0;
    for (e = host->conns.next; e != &host->conns; e = next) {
        struct lp2p_conn *c = LP2P__CONTAINER_OF(e, struct lp2p_conn, link);
        next = e->next;
        if (c->state != LP2P_CONN_S_CONNECTING &&
            c->state != LP2P_CONN_S_CLOSING && c->peer.len > 0 &&
            lp2p_peer_id_equal(&c->peer, peer)) {
            found = 1;
            lp2p__conn_close(c, 0);
            next = host->conns.next; /* the list changed */
        }
    }
    return found ? 0 : LP2P_ENOTFOUND;
}

size_t lp2p_host_conn_count(const struct lp2p_host *host)
{
    return host->n_conns;
}

void lp2p_host_traffic(const struct lp2p_host *host, uint64_t *bytes_in,
                       uint64_t *bytes_out, size_t *streams)
{
    const struct lp2p__list *e;
    size_t n = 0;
    if (bytes_in != NULL) {
        *bytes_in = host->bytes_in;
    }
    if (bytes_out != NULL) {
        *bytes_out = host->bytes_out;
    }
    if (streams != NULL) {
        for (e = host->conns.next; e != &host->conns; e = e->next) {
            const struct lp2p_conn *c =
                LP2P__CONTAINER_OF(e, struct lp2p_conn, link);
            n += c->n_in_streams + c->n_out_streams;
        }
        *streams = n;
    }
}

int lp2p_host_connect_peer(struct lp2p_host *host,
                           const struct lp2p_peer_id *peer,
                           lp2p_connect_cb cb, void *data)
{
    const char *first;
    char **fallback = NULL;
    size_t n = 0, i;
    uint64_t now;
    if (host == NULL || peer == NULL) {
        return LP2P_EINVAL;
    }
    if (host->closing) {
        return LP2P_ESHUTDOWN;
    }
    now = uv_now(host->loop);
    first = lp2p__ps_addr(&host->ps, peer, now, 0);
    if (first == NULL) {
        if (lp2p_host_is_connected(host, peer)) {
            /* Connected without a known address (inbound): reuse. */
            first = "/ip4/0.0.0.0/tcp/0";
        } else {
            return LP2P_ENOTFOUND;
        }
    } else {
        while (lp2p__ps_addr(&host->ps, peer, now, n + 1) != NULL) {
            n++;
        }
        if (n > 0) {
            fallback = lp2p__calloc(n, sizeof(*fallback));
            if (fallback == NULL) {
                return LP2P_ENOMEM;
            }
            for (i = 0; i < n; i++) {
                fallback[i] =
                    lp2p__strdup(lp2p__ps_addr(&host->ps, peer, now, i + 1));
                if (fallback[i] == NULL) {
                    while (i-- > 0) {
                        lp2p__free(fallback[i]);
                    }
                    lp2p__free(fallback);
                    return LP2P_ENOMEM;
                }
            }
        }
    }
    return lp2p__dial_start(host, first, peer, fallback, n, cb, data);
}
