/*
 * The TCP layer of the host: listeners, dials (DNS through uv_getaddrinfo,
 * then each resolved address in turn), socket reads and writes, the
 * handshake and idle timers, and the caps on connections and pending
 * handshakes.
 *
 * Happy path, outbound: lp2p__dial_start() parses the multiaddr, resolves
 * it if it is a /dns* one, creates a conn and calls uv_tcp_connect(); on
 * connect the conn sets TCP_NODELAY, starts reading and hands over to the
 * upgrade (host_conn.c); when the upgrade finishes, host.c resolves
 * duplicates and completes the dial's waiters.
 *
 * Failure modes: a connect error moves on to the next resolved address;
 * after the last one the waiters get the mapped error. The handshake timer
 * (started with the conn) bounds connect + upgrade; when it fires the conn
 * closes with LP2P_ETIMEDOUT. Inbound connections over the caps are
 * accepted and closed at once (the kernel would otherwise keep them in the
 * backlog). Every close goes through lp2p__conn_close(), which is
 * idempotent; memory is freed when both uv handles have closed.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "host.h"
#include "../util/heap.h"
#include "../util/log.h"

#define MOD "tcp"

/* A write in flight; the bytes follow the struct. */
struct conn_wreq {
    uv_write_t req;
    struct lp2p_conn *conn;
    size_t len;
    uint8_t data[];
};

static int map_uv_error(int uverr)
{
    switch (uverr) {
    case UV_ECONNREFUSED:
        return LP2P_ECONNREFUSED;
    case UV_ETIMEDOUT:
        return LP2P_ETIMEDOUT;
    case UV_ENETUNREACH:
    case UV_EHOSTUNREACH:
    case UV_EADDRNOTAVAIL:
    case UV_EAI_NONAME:
    case UV_EAI_AGAIN:
    case UV_EAI_FAIL:
    case UV_EAI_NODATA:
    case UV_EAI_FAMILY:
    case UV_EAI_ADDRFAMILY:
        return LP2P_EUNREACHABLE;
    case UV_ECANCELED:
        return LP2P_ECANCELED;
    case UV_ENOMEM:
    case UV_ENOBUFS:
        return LP2P_ENOMEM;
    case UV_EOF:
    case UV_ECONNRESET:
    case UV_EPIPE:
        return LP2P_ECLOSED;
    default:
        return LP2P_EIO;
    }
}

/* ---------------------------------------------------------------------
 * Connection objects
 */

static void conn_handle_closed(uv_handle_t *h)
{
    struct lp2p_conn *c = h->data;
    struct lp2p_host *host = c->host;
    if (--c->handles > 0) {
        return;
    }
    lp2p__conn_sec_free(c);
    lp2p__free(c);
    lp2p__host_unref(host);
}

static void on_handshake_timeout(uv_timer_t *t);

/* A new conn with its TCP handle initialised. NULL on error. */
static struct lp2p_conn *conn_new(struct lp2p_host *host, int inbound)
{
    struct lp2p_conn *c = lp2p__calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->host = host;
    c->inbound = inbound;
    c->state = LP2P_CONN_S_CONNECTING;
    lp2p__list_init(&c->streams);
    if (uv_tcp_init(host->loop, &c->tcp) != 0) {
        lp2p__free(c);
        return NULL;
    }
    c->tcp.data = c;
    uv_timer_init(host->loop, &c->timer);
    c->timer.data = c;
    uv_timer_init(host->loop, &c->keepalive);
    c->keepalive.data = c;
    c->handles = 3;
    lp2p__host_ref(host);
    lp2p__list_push(&host->conns, &c->link);
    host->n_conns++;
    host->n_pending++;
    c->counted_pending = 1;
    uv_timer_start(&c->timer, on_handshake_timeout,
                   host->cfg.handshake_timeout_ms, 0);
    return c;
}

static void dial_attempt_failed(struct lp2p_dial *d, int status);

void lp2p__conn_close(struct lp2p_conn *c, int status)
{
    struct lp2p_host *host = c->host;
    enum lp2p_conn_state prev = c->state;
    if (prev == LP2P_CONN_S_CLOSING) {
        return;
    }
    c->state = LP2P_CONN_S_CLOSING;
    c->close_status = status;
    if (status != 0 && status != LP2P_ECANCELED) {
        LOG_DEBUG(MOD, "closing %s conn %s: %s",
                  c->inbound ? "inbound" : "outbound", c->remote_addr,
                  lp2p_strerror(status));
    }
    lp2p__list_remove(&c->link);
    host->n_conns--;
    if (c->counted_pending) {
        c->counted_pending = 0;
        host->n_pending--;
    }
    /* Streams learn that the connection is gone (the reason is logged);
     * closing the host says LP2P_ECANCELED. */
    lp2p__conn_streams_abort(c, status == LP2P_ECANCELED ? LP2P_ECANCELED
                                                         : LP2P_ECLOSED);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
    uv_close((uv_handle_t *)&c->keepalive, conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    if (prev == LP2P_CONN_S_READY) {
        lp2p__host_conn_gone(c, status);
    }
    if (c->dial != NULL) {
        struct lp2p_dial *d = c->dial;
        c->dial = NULL;
        d->conn = NULL;
        dial_attempt_failed(d, status == 0 ? LP2P_ECLOSED : status);
    }
}

static void on_handshake_timeout(uv_timer_t *t)
{
    struct lp2p_conn *c = t->data;
    LOG_INFO(MOD, "handshake with %s timed out", c->remote_addr);
    lp2p__conn_close(c, LP2P_ETIMEDOUT);
}

/* A draining connection (superseded, or the peer sent GO_AWAY) closes
 * this long after its last stream. */
#define DRAIN_GRACE_MS 1000

static void on_idle_timer(uv_timer_t *t)
{
    struct lp2p_conn *c = t->data;
    uint64_t now = uv_now(c->host->loop);
    uint64_t limit = c->draining ? DRAIN_GRACE_MS : c->host->cfg.idle_timeout_ms;
    if (!lp2p__list_empty(&c->streams)) {
        c->idle_since = now;
    } else if (now - c->idle_since >= limit) {
        LOG_DEBUG(MOD, "closing idle conn to %s", c->remote_addr);
        lp2p__conn_close(c, 0);
        return;
    }
    uv_timer_start(&c->timer, on_idle_timer, limit - (now - c->idle_since),
                   0);
}

void lp2p__conn_touch(struct lp2p_conn *c)
{
    c->idle_since = uv_now(c->host->loop);
}

void lp2p__conn_drain(struct lp2p_conn *c)
{
    if (c->draining || c->state != LP2P_CONN_S_READY) {
        c->draining = 1;
        return;
    }
    c->draining = 1;
    c->idle_since = uv_now(c->host->loop);
    uv_timer_start(&c->timer, on_idle_timer, DRAIN_GRACE_MS, 0);
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

/* Called by host.c when the upgrade finished: the timer now watches for
 * idleness, and the conn no longer counts as a pending handshake. */
void lp2p__conn_ready_timers(struct lp2p_conn *c)
{
    struct lp2p_host *host = c->host;
    if (c->counted_pending) {
        c->counted_pending = 0;
        host->n_pending--;
    }
    uv_timer_stop(&c->timer);
    if (host->cfg.keepalive_ms != UINT64_MAX) {
        uv_timer_start(&c->keepalive, on_keepalive, host->cfg.keepalive_ms,
                       host->cfg.keepalive_ms);
    }
    c->idle_since = uv_now(host->loop);
    if (host->cfg.idle_timeout_ms != UINT64_MAX) {
        uv_timer_start(&c->timer, on_idle_timer, host->cfg.idle_timeout_ms,
                       0);
    }
}

/* ---------------------------------------------------------------------
 * Reading and writing
 */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct lp2p_conn *c = h->data;
    struct lp2p_host *host = c->host;
    (void)suggested;
    if (host->rbuf_busy) {
        /* Never happens with one reader at a time; be safe anyway. */
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    host->rbuf_busy = 1;
    buf->base = (char *)host->rbuf;
    buf->len = sizeof(host->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct lp2p_conn *c = s->data;
    struct lp2p_host *host = c->host;
    int rv;
    if (buf->base == (char *)host->rbuf) {
        host->rbuf_busy = 0;
    }
    if (nread == 0) {
        return;
    }
    if (c->state == LP2P_CONN_S_CLOSING) {
        return;
    }
    if (nread < 0) {
        rv = map_uv_error((int)nread);
        if (nread != UV_EOF) {
            LOG_DEBUG(MOD, "read from %s: %s", c->remote_addr,
                      uv_strerror((int)nread));
        }
        lp2p__conn_close(c, rv == LP2P_ECLOSED && c->state ==
                         LP2P_CONN_S_READY ? 0 : rv);
        return;
    }
    /* host->rbuf is free again for nested reads, but the data we are
     * processing sits in it: work on it before any other read can run
     * (reads only run from the loop, never nested inside this call). */
    rv = lp2p__conn_feed(c, (const uint8_t *)buf->base, (size_t)nread);
    if (rv != 0 && c->state != LP2P_CONN_S_CLOSING) {
        lp2p__conn_close(c, rv);
    }
}

static void on_written(uv_write_t *req, int status)
{
    struct conn_wreq *w = LP2P_CONTAINER(req, struct conn_wreq, req);
    struct lp2p_conn *c = w->conn;
    uint64_t limit = c->host->cfg.conn_write_buffer;
    int was_full = c->write_queued >= limit;
    c->write_queued -= w->len;
    lp2p__free(w);
    if (status != 0) {
        if (status != UV_ECANCELED && c->state != LP2P_CONN_S_CLOSING) {
            LOG_DEBUG(MOD, "write to %s: %s", c->remote_addr,
                      uv_strerror(status));
            lp2p__conn_close(c, LP2P_ECLOSED);
        }
        return;
    }
    if (was_full && c->write_queued < limit &&
        c->state == LP2P_CONN_S_READY) {
        lp2p__conn_writable(c);
    }
}

/* Queue bytes for the socket (copied). 0, LP2P_ENOMEM, LP2P_ECLOSED. */
int lp2p__conn_write(struct lp2p_conn *c, const uint8_t *p, size_t len)
{
    struct conn_wreq *w;
    uv_buf_t b;
    int rv;
    if (c->state == LP2P_CONN_S_CLOSING ||
        c->state == LP2P_CONN_S_CONNECTING) {
        return LP2P_ECLOSED;
    }
    if (len == 0) {
        return 0;
    }
    if (c->write_queued == 0) {
        b = uv_buf_init((char *)(uintptr_t)p, (unsigned)len);
        rv = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (rv > 0) {
            p += rv;
            len -= (size_t)rv;
            if (len == 0) {
                return 0;
            }
        } else if (rv != UV_EAGAIN && rv != UV_ENOSYS) {
            return LP2P_ECLOSED;
        }
    }
    w = lp2p__malloc(sizeof(*w) + len);
    if (w == NULL) {
        return LP2P_ENOMEM;
    }
    w->conn = c;
    w->len = len;
    memcpy(w->data, p, len);
    b = uv_buf_init((char *)w->data, (unsigned)len);
    rv = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (rv != 0) {
        lp2p__free(w);
        return LP2P_ECLOSED;
    }
    c->write_queued += len;
    return 0;
}

/* Socket set-up common to both directions, then the upgrade. */
static int conn_start(struct lp2p_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    int rv;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 60); /* the kernel's probes, as a backstop */
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        lp2p__tcp_addr_format((struct sockaddr *)&ss, c->local_addr,
                              sizeof(c->local_addr));
    }
    len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        lp2p__tcp_addr_format((struct sockaddr *)&ss, c->remote_addr,
                              sizeof(c->remote_addr));
    }
    c->state = LP2P_CONN_S_UPGRADING;
    rv = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rv != 0) {
        return map_uv_error(rv);
    }
    return lp2p__conn_upgrade_start(c);
}

/* ---------------------------------------------------------------------
 * Listeners
 */

static void listener_closed(uv_handle_t *h);

static void spare_closed(uv_handle_t *h)
{
    struct lp2p_listener *l = h->data;
    l->spare_busy = 0;
    listener_closed(h);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct lp2p_listener *l = server->data;
    struct lp2p_host *host = l->host;
    struct lp2p_conn *c;
    int rv;
    if (status != 0) {
        LOG_WARN(MOD, "accept on %s: %s", l->addr, uv_strerror(status));
        return;
    }
    c = conn_new(host, 1);
    if (c == NULL) {
        /* Accept into the listener's spare handle and drop it: libuv stops
         * watching the socket until a pending connection is accepted. */
        LOG_ERROR(MOD, "accept on %s: out of memory, dropping a connection",
                  l->addr);
        if (!l->spare_busy && uv_tcp_init(host->loop, &l->spare) == 0) {
            l->spare.data = l;
            l->spare_busy = 1;
            l->handles++;
            uv_accept(server, (uv_stream_t *)&l->spare);
            uv_close((uv_handle_t *)&l->spare, spare_closed);
        }
        return;
    }
    rv = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rv != 0) {
        LOG_WARN(MOD, "accept on %s: %s", l->addr, uv_strerror(rv));
        lp2p__conn_close(c, LP2P_EIO);
        return;
    }
    if (host->closing) {
        lp2p__conn_close(c, LP2P_ECANCELED);
        return;
    }
    /* conn_new already counted this one. */
    if (host->n_conns > host->cfg.max_conns ||
        host->n_pending > host->cfg.max_pending_handshakes) {
        LOG_WARN(MOD, "refusing inbound connection: %u conns, %u pending "
                 "handshakes (limits %u, %u)",
                 host->n_conns - 1, host->n_pending - 1, host->cfg.max_conns,
                 host->cfg.max_pending_handshakes);
        lp2p__conn_close(c, LP2P_ELIMIT);
        return;
    }
    rv = conn_start(c);
    if (rv != 0) {
        lp2p__conn_close(c, rv);
    }
}

static void listener_closed(uv_handle_t *h)
{
    struct lp2p_listener *l = h->data;
    struct lp2p_host *host = l->host;
    size_t i;
    if (--l->handles > 0) {
        return;
    }
    for (i = 0; i < l->n_addrs; i++) {
        lp2p__free(l->addrs[i]);
    }
    lp2p__free(l->addrs);
    lp2p__free(l);
    lp2p__host_unref(host);
}

static int listener_push(struct lp2p_listener *l, const char *text)
{
    char **na = lp2p__realloc(l->addrs, (l->n_addrs + 1) * sizeof(*na));
    if (na == NULL) {
        return LP2P_ENOMEM;
    }
    l->addrs = na;
    na[l->n_addrs] = lp2p__strdup(text);
    if (na[l->n_addrs] == NULL) {
        return LP2P_ENOMEM;
    }
    l->n_addrs++;
    return 0;
}

/* Fill l->addrs: the bound address, or for an unspecified one, each
 * interface address of the same family (IPv6 link-local ones need a zone,
 * so they are left out). */
static int listener_expand(struct lp2p_listener *l, const struct sockaddr *sa)
{
    uv_interface_address_t *ifs;
    char text[LP2P_MULTIADDR_STRMAX];
    int n, i, rv = 0;
    int any4 = sa->sa_family == AF_INET &&
               ((const struct sockaddr_in *)sa)->sin_addr.s_addr == 0;
    int any6 = sa->sa_family == AF_INET6 &&
               IN6_IS_ADDR_UNSPECIFIED(
                   &((const struct sockaddr_in6 *)sa)->sin6_addr);
    if ((!any4 && !any6) || uv_interface_addresses(&ifs, &n) != 0) {
        return listener_push(l, l->addr);
    }
    for (i = 0; i < n && rv == 0; i++) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        if (any4 && ifs[i].address.address4.sin_family == AF_INET) {
            memcpy(&ss, &ifs[i].address.address4, sizeof(struct sockaddr_in));
            ((struct sockaddr_in *)&ss)->sin_port =
                ((const struct sockaddr_in *)sa)->sin_port;
        } else if (any6 && ifs[i].address.address6.sin6_family == AF_INET6 &&
                   !IN6_IS_ADDR_LINKLOCAL(&ifs[i].address.address6.sin6_addr)) {
            memcpy(&ss, &ifs[i].address.address6,
                   sizeof(struct sockaddr_in6));
            ((struct sockaddr_in6 *)&ss)->sin6_port =
                ((const struct sockaddr_in6 *)sa)->sin6_port;
            ((struct sockaddr_in6 *)&ss)->sin6_scope_id = 0;
        } else {
            continue;
        }
        if (lp2p__tcp_addr_format((struct sockaddr *)&ss, text,
                                  sizeof(text)) == 0) {
            rv = listener_push(l, text);
        }
    }
    uv_free_interface_addresses(ifs, n);
    if (rv == 0 && l->n_addrs == 0) {
        rv = listener_push(l, l->addr);
    }
    return rv;
}

int lp2p_host_listen(struct lp2p_host *host, const char *maddr)
{
    struct lp2p_tcp_addr a;
    struct sockaddr_storage ss;
    struct lp2p_listener *l;
    char err[128];
    int len, rv;
    if (host == NULL || maddr == NULL) {
        return LP2P_EINVAL;
    }
    if (host->closing) {
        return LP2P_ESHUTDOWN;
    }
    rv = lp2p__tcp_addr_parse(maddr, &a, err, sizeof(err));
    if (rv != 0) {
        LOG_WARN(MOD, "listen %s: %s", maddr, err);
        return rv;
    }
    if (a.kind != LP2P_ADDR_IP4 && a.kind != LP2P_ADDR_IP6) {
        LOG_WARN(MOD, "listen %s: only /ip4 and /ip6 can be listened on",
                 maddr);
        return LP2P_EBADADDR;
    }
    memset(&ss, 0, sizeof(ss));
    if (a.kind == LP2P_ADDR_IP4) {
        rv = uv_ip4_addr(a.host, a.port, (struct sockaddr_in *)&ss);
    } else {
        rv = uv_ip6_addr(a.host, a.port, (struct sockaddr_in6 *)&ss);
    }
    if (rv != 0) {
        return LP2P_EBADADDR;
    }
    l = lp2p__calloc(1, sizeof(*l));
    if (l == NULL) {
        return LP2P_ENOMEM;
    }
    l->host = host;
    rv = uv_tcp_init(host->loop, &l->tcp);
    if (rv != 0) {
        lp2p__free(l);
        return LP2P_EIO;
    }
    l->tcp.data = l;
    l->handles = 1;
    lp2p__host_ref(host);
    lp2p__list_push(&host->listeners, &l->link);
    rv = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss,
                     a.kind == LP2P_ADDR_IP6 ? UV_TCP_IPV6ONLY : 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&l->tcp, 128, on_connection);
    }
    if (rv != 0) {
        LOG_WARN(MOD, "listen %s: %s", maddr, uv_strerror(rv));
        goto err;
    }
    len = sizeof(ss);
    rv = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len);
    if (rv != 0 || lp2p__tcp_addr_format((struct sockaddr *)&ss, l->addr,
                                         sizeof(l->addr)) != 0) {
        goto err;
    }
    if (listener_expand(l, (struct sockaddr *)&ss) != 0) {
        goto err;
    }
    LOG_INFO(MOD, "listening on %s", l->addr);
    return 0;
err:
    lp2p__list_remove(&l->link);
    uv_close((uv_handle_t *)&l->tcp, listener_closed);
    return LP2P_EIO;
}

void lp2p__listeners_close(struct lp2p_host *host)
{
    while (!lp2p__list_empty(&host->listeners)) {
        struct lp2p_listener *l =
            LP2P_CONTAINER(host->listeners.next, struct lp2p_listener, link);
        lp2p__list_remove(&l->link);
        uv_close((uv_handle_t *)&l->tcp, listener_closed);
    }
}

const char *lp2p__listen_addr(const struct lp2p_host *host, size_t i)
{
    const struct lp2p_list *e;
    for (e = host->listeners.next; e != &host->listeners; e = e->next) {
        const struct lp2p_listener *l =
            LP2P_CONTAINER(e, const struct lp2p_listener, link);
        if (i < l->n_addrs) {
            return l->addrs[i];
        }
        i -= l->n_addrs;
    }
    return NULL;
}

size_t lp2p_host_listen_count(const struct lp2p_host *host)
{
    size_t n = 0;
    while (lp2p__listen_addr(host, n) != NULL) {
        n++;
    }
    return n;
}

int lp2p_host_listen_addr(const struct lp2p_host *host, size_t i, char *out,
                          size_t cap)
{
    const char *a = lp2p__listen_addr(host, i);
    size_t n;
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

/* ---------------------------------------------------------------------
 * Dials
 */

static void dial_free(struct lp2p_dial *d)
{
    struct lp2p_host *host = d->host;
    size_t i;
    if (d->ai_list != NULL) {
        uv_freeaddrinfo(d->ai_list);
    }
    for (i = 0; i < d->n_fallback; i++) {
        lp2p__free(d->fallback[i]);
    }
    lp2p__free(d->fallback);
    lp2p__free(d->text);
    lp2p__free(d);
    lp2p__host_unref(host);
}

/* Complete every waiter with `status` and free the dial. */
static void dial_finish(struct lp2p_dial *d, int status,
                        const struct lp2p_peer_id *peer)
{
    struct lp2p_host *host = d->host;
    lp2p__list_remove(&d->link);
    while (!lp2p__list_empty(&d->waiters)) {
        struct lp2p_waiter *w =
            LP2P_CONTAINER(d->waiters.next, struct lp2p_waiter, link);
        lp2p__list_remove(&w->link);
        if (w->cb != NULL) {
            w->cb(host, status, status == 0 ? peer : NULL, w->data);
        }
        lp2p__free(w);
    }
    if (d->conn != NULL) {
        d->conn->dial = NULL;
        d->conn = NULL;
    }
    dial_free(d);
}

/* The conn of this dial is ready (host.c picked the surviving conn). */
void lp2p__dial_done(struct lp2p_dial *d, struct lp2p_conn *c)
{
    dial_finish(d, 0, &c->peer);
}

static int dial_next(struct lp2p_dial *d);

static void on_connect(uv_connect_t *req, int status)
{
    struct lp2p_conn *c = req->data;
    int rv;
    if (c->state == LP2P_CONN_S_CLOSING) {
        return;
    }
    if (status != 0) {
        LOG_DEBUG(MOD, "connect %s: %s", c->dial ? c->dial->text : "?",
                  uv_strerror(status));
        lp2p__conn_close(c, map_uv_error(status));
        return;
    }
    rv = conn_start(c);
    if (rv != 0) {
        lp2p__conn_close(c, rv);
    }
}

/* Try the next resolved address; 0 if an attempt started. */
static int dial_try(struct lp2p_dial *d, const struct sockaddr *sa)
{
    struct lp2p_host *host = d->host;
    struct lp2p_conn *c;
    int rv;
    if (host->n_conns >= host->cfg.max_conns ||
        host->n_pending >= host->cfg.max_pending_handshakes) {
        LOG_WARN(MOD, "dial %s: connection limits reached", d->text);
        return LP2P_ELIMIT;
    }
    c = conn_new(host, 0);
    if (c == NULL) {
        return LP2P_ENOMEM;
    }
    c->dial = d;
    d->conn = c;
    if (d->addr.has_peer) {
        c->has_expected = 1;
        c->expected = d->addr.peer;
    }
    lp2p__tcp_addr_format(sa, c->remote_addr, sizeof(c->remote_addr));
    c->connect_req.data = c;
    rv = uv_tcp_connect(&c->connect_req, &c->tcp, sa, on_connect);
    if (rv != 0) {
        c->dial = NULL;
        d->conn = NULL;
        lp2p__conn_close(c, map_uv_error(rv));
        return map_uv_error(rv);
    }
    return 0;
}

static void dial_attempt_failed(struct lp2p_dial *d, int status)
{
    d->last_error = status;
    if (status == LP2P_EPEERID || status == LP2P_ECANCELED ||
        d->host->closing) {
        dial_finish(d, status, NULL);
        return;
    }
    if (dial_next(d) != 0) {
        dial_finish(d, d->last_error, NULL);
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res)
{
    struct lp2p_dial *d = req->data;
    d->resolving = 0;
    if (status != 0 || d->host->closing) {
        if (res != NULL) {
            uv_freeaddrinfo(res);
        }
        if (status != 0 && status != UV_ECANCELED) {
            LOG_INFO(MOD, "resolve %s: %s", d->addr.host,
                     uv_strerror(status));
        }
        dial_finish(d, d->host->closing ? LP2P_ECANCELED
                                        : LP2P_EUNREACHABLE, NULL);
        return;
    }
    d->ai_list = res;
    d->ai_next = res;
    d->last_error = LP2P_EUNREACHABLE;
    if (dial_next(d) != 0) {
        dial_finish(d, d->last_error, NULL);
    }
}

static int dial_resolve(struct lp2p_dial *d);

/* Start the next attempt of `d`: next resolved address, else next
 * fallback multiaddr. 0 if one started, else an error (last_error set). */
static int dial_next(struct lp2p_dial *d)
{
    int rv;
    while (d->ai_next != NULL) {
        struct addrinfo *ai = d->ai_next;
        d->ai_next = ai->ai_next;
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) {
            continue;
        }
        rv = dial_try(d, ai->ai_addr);
        if (rv == 0) {
            return 0;
        }
        d->last_error = rv;
        if (rv == LP2P_ELIMIT || rv == LP2P_ENOMEM) {
            return rv;
        }
    }
    while (d->i_fallback < d->n_fallback) {
        char *text = d->fallback[d->i_fallback++];
        struct lp2p_tcp_addr a;
        if (lp2p__tcp_addr_parse(text, &a, NULL, 0) != 0) {
            continue;
        }
        if (d->addr.has_peer) {
            a.has_peer = 1;
            a.peer = d->addr.peer;
        }
        d->addr = a;
        lp2p__free(d->text);
        d->text = text;
        d->fallback[d->i_fallback - 1] = NULL;
        if (d->ai_list != NULL) {
            uv_freeaddrinfo(d->ai_list);
            d->ai_list = d->ai_next = NULL;
        }
        rv = dial_resolve(d);
        if (rv == 0) {
            return 0;
        }
        d->last_error = rv;
    }
    return d->last_error != 0 ? d->last_error : LP2P_EUNREACHABLE;
}

/* Resolve d->addr (synchronously for IP literals). */
static int dial_resolve(struct lp2p_dial *d)
{
    struct lp2p_host *host = d->host;
    struct addrinfo hints;
    struct sockaddr_storage ss;
    char port[8];
    int rv;
    memset(&ss, 0, sizeof(ss));
    if (d->addr.kind == LP2P_ADDR_IP4 || d->addr.kind == LP2P_ADDR_IP6) {
        if (d->addr.kind == LP2P_ADDR_IP4) {
            rv = uv_ip4_addr(d->addr.host, d->addr.port,
                             (struct sockaddr_in *)&ss);
        } else {
            rv = uv_ip6_addr(d->addr.host, d->addr.port,
                             (struct sockaddr_in6 *)&ss);
        }
        if (rv != 0) {
            return LP2P_EBADADDR;
        }
        rv = dial_try(d, (struct sockaddr *)&ss);
        if (rv != 0) {
            d->last_error = rv;
        }
        return rv;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = d->addr.kind == LP2P_ADDR_DNS4   ? AF_INET
                      : d->addr.kind == LP2P_ADDR_DNS6 ? AF_INET6
                                                       : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    snprintf(port, sizeof(port), "%u", (unsigned)d->addr.port);
    d->gai.data = d;
    rv = uv_getaddrinfo(host->loop, &d->gai, on_resolved, d->addr.host, port,
                        &hints);
    if (rv != 0) {
        d->last_error = LP2P_EUNREACHABLE;
        return LP2P_EUNREACHABLE;
    }
    d->resolving = 1;
    return 0;
}

static struct lp2p_dial *dial_find(struct lp2p_host *host,
                                   const struct lp2p_peer_id *peer)
{
    struct lp2p_list *e;
    for (e = host->dials.next; e != &host->dials; e = e->next) {
        struct lp2p_dial *d = LP2P_CONTAINER(e, struct lp2p_dial, link);
        if (d->addr.has_peer && lp2p_peer_id_equal(&d->addr.peer, peer)) {
            return d;
        }
    }
    return NULL;
}

struct connected_note {
    struct lp2p_deferred d;
    lp2p_connect_cb cb;
    void *data;
    struct lp2p_peer_id peer;
};

static void deferred_connected(struct lp2p_host *host, void *arg, int status)
{
    struct connected_note *n = arg;
    if (status == 0 && !lp2p_host_is_connected(host, &n->peer)) {
        status = LP2P_ECLOSED;
    }
    if (n->cb != NULL) {
        n->cb(host, status, status == 0 ? &n->peer : NULL, n->data);
    }
    lp2p__free(n);
}

int lp2p__dial_start(struct lp2p_host *host, const char *text,
                     const struct lp2p_peer_id *peer, char **fallback,
                     size_t n_fallback, lp2p_connect_cb cb, void *data)
{
    struct lp2p_tcp_addr a;
    struct lp2p_dial *d;
    struct lp2p_waiter *w;
    char err[128];
    int rv;
    size_t i;

    if (host->closing) {
        rv = LP2P_ESHUTDOWN;
        goto err_fallback;
    }
    rv = lp2p__tcp_addr_parse(text, &a, err, sizeof(err));
    if (rv != 0) {
        LOG_INFO(MOD, "dial %s: %s", text, err);
        goto err_fallback;
    }
    if (peer != NULL) {
        if (a.has_peer && !lp2p_peer_id_equal(&a.peer, peer)) {
            rv = LP2P_EPEERID;
            goto err_fallback;
        }
        a.has_peer = 1;
        a.peer = *peer;
    }
    if (a.has_peer) {
        if (lp2p_peer_id_equal(&a.peer, &host->id)) {
            rv = LP2P_EINVAL;
            goto err_fallback;
        }
        if (lp2p_host_is_connected(host, &a.peer)) {
            struct connected_note *n = lp2p__malloc(sizeof(*n));
            if (n == NULL) {
                rv = LP2P_ENOMEM;
                goto err_fallback;
            }
            n->cb = cb;
            n->data = data;
            n->peer = a.peer;
            lp2p__host_defer(host, &n->d, deferred_connected, n, 0);
            goto out_fallback;
        }
        d = dial_find(host, &a.peer);
        if (d != NULL) {
            w = lp2p__calloc(1, sizeof(*w));
            if (w == NULL) {
                rv = LP2P_ENOMEM;
                goto err_fallback;
            }
            w->cb = cb;
            w->data = data;
            lp2p__list_push(&d->waiters, &w->link);
            goto out_fallback;
        }
    }
    d = lp2p__calloc(1, sizeof(*d));
    w = lp2p__calloc(1, sizeof(*w));
    if (d == NULL || w == NULL || (d->text = lp2p__strdup(text)) == NULL) {
        lp2p__free(d);
        lp2p__free(w);
        rv = LP2P_ENOMEM;
        goto err_fallback;
    }
    d->host = host;
    d->addr = a;
    d->fallback = fallback;
    d->n_fallback = n_fallback;
    lp2p__list_init(&d->waiters);
    w->cb = cb;
    w->data = data;
    lp2p__list_push(&d->waiters, &w->link);
    lp2p__list_push(&host->dials, &d->link);
    lp2p__host_ref(host);
    rv = dial_resolve(d);
    if (rv != 0) {
        /* Try the fallbacks before giving up, but never call back
         * before returning: a failure here is returned. */
        rv = dial_next(d);
        if (rv != 0) {
            lp2p__list_remove(&w->link);
            lp2p__free(w);
            dial_finish(d, rv, NULL);
            return rv;
        }
    }
    return 0;

out_fallback:
    rv = 0;
err_fallback:
    for (i = 0; i < n_fallback; i++) {
        lp2p__free(fallback[i]);
    }
    lp2p__free(fallback);
    return rv;
}

void lp2p__dial_cancel_all(struct lp2p_host *host)
{
    struct lp2p_list *e, *next;
    for (e = host->dials.next; e != &host->dials; e = next) {
        struct lp2p_dial *d = LP2P_CONTAINER(e, struct lp2p_dial, link);
        next = e->next;
        if (d->resolving) {
            /* on_resolved will finish it with ECANCELED. */
            uv_cancel((uv_req_t *)&d->gai);
            continue;
        }
        if (d->conn != NULL) {
            struct lp2p_conn *c = d->conn;
            c->dial = NULL;
            d->conn = NULL;
            lp2p__conn_close(c, LP2P_ECANCELED);
        }
        dial_finish(d, LP2P_ECANCELED, NULL);
    }
}

int lp2p_host_connect(struct lp2p_host *host, const char *maddr,
                      lp2p_connect_cb cb, void *data)
{
    if (host == NULL || maddr == NULL) {
        return LP2P_EINVAL;
    }
    return lp2p__dial_start(host, maddr, NULL, NULL, 0, cb, data);
}
