/*
 * The TCP layer of the host: listeners, dials (DNS through uv_getaddrinfo,
 * then each resolved address in turn), and the sockets of connections.
 *
 * The host owns its sockets and watches them with uv_poll: it calls
 * accept4(), connect(), recv() and send()/sendmsg() itself. Writes go out
 * with MSG_NOSIGNAL, so a peer that went away gives EPIPE, never SIGPIPE,
 * and the process's signal dispositions stay as the application set them
 * (libuv's TCP handles write with write()/writev()).
 *
 * Happy path, outbound: lp2p__dial_start() parses the multiaddr, resolves
 * it if it is a /dns* one, creates a conn, starts a non-blocking connect()
 * and watches the socket for writability; once connected the conn sets
 * TCP_NODELAY, watches for input and hands over to the upgrade
 * (host_conn.c); when the upgrade finishes, host.c admits the connection
 * (host_limits.c), resolves duplicates and completes the dial's waiters.
 *
 * Writing: bytes go to send() at once; what the socket does not take is
 * copied to the conn's queue, sent with one sendmsg() per writability
 * event, and streams are held back while the queue is over
 * conn_write_buffer. Reading: one recv() into the host's buffer per
 * readiness event (more only while the buffer comes back full). Both
 * kick busy polling (busy_poll_us, host.c), a compare when it is off.
 *
 * Failure modes: a connect error moves on to the next resolved address;
 * after the last one the waiters get the mapped error. The handshake timer
 * (started with the conn) bounds connect + upgrade; when it fires the conn
 * closes with LP2P_ETIMEDOUT. A write error found inside an API call
 * closes the conn from a deferred job, never inside that call. Accepting
 * without descriptors pauses the listener for ACCEPT_PAUSE_MS. Every close
 * goes through lp2p__conn_close(), which is idempotent; memory is freed
 * when the uv handles have closed and no job refers to the conn.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "host.h"
#include "../util/heap.h"
#include "../util/log.h"

#define MOD "tcp"

/* Listen backlog, accepts per readiness event, reads per event. */
#define LISTEN_BACKLOG 128
#define ACCEPTS_PER_EVENT 32
#define READS_PER_EVENT 16
/* Out of descriptors: try accepting again after this long. */
#define ACCEPT_PAUSE_MS 100
/* Buffers handed to one sendmsg(). */
#define IOV_PER_SEND 64

/* An errno from socket calls, as an LP2P_E* code. */
static int map_errno(int err)
{
    switch (err) {
    case ECONNREFUSED:
        return LP2P_ECONNREFUSED;
    case ETIMEDOUT:
        return LP2P_ETIMEDOUT;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
    case EHOSTDOWN:
        return LP2P_EUNREACHABLE;
    case EADDRINUSE:
        return LP2P_EADDRINUSE;
    case EADDRNOTAVAIL:
        return LP2P_EADDRNOTAVAIL;
    case EACCES:
    case EPERM:
        return LP2P_EACCESS;
    case ECANCELED:
        return LP2P_ECANCELED;
    case ENOMEM:
    case ENOBUFS:
        return LP2P_ENOMEM;
    case EMFILE:
    case ENFILE:
        return LP2P_ELIMIT;
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED:
    case ESHUTDOWN:
        return LP2P_ECLOSED;
    default:
        return LP2P_EIO;
    }
}

/* ---------------------------------------------------------------------
 * Connection objects
 */

static void conn_unref(struct lp2p_conn *c)
{
    struct lp2p_host *host = c->host;
    if (--c->handles > 0) {
        return;
    }
    while (!lp2p__list_empty(&c->wq)) {
        struct lp2p_chunk *ch =
            LP2P__CONTAINER_OF(c->wq.next, struct lp2p_chunk, link);
        lp2p__list_remove(&ch->link);
        lp2p__free(ch);
    }
    lp2p__conn_sec_free(c);
    lp2p__free(c);
    lp2p__host_unref(host);
}

static void conn_handle_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

static void on_handshake_timeout(uv_timer_t *t);
static void on_conn_poll(uv_poll_t *p, int status, int events);

/* Watch the socket for `events` (UV_READABLE, UV_WRITABLE, both or 0). */
static void poll_set(struct lp2p_conn *c, int events)
{
    if (events == c->poll_events || c->state == LP2P_CONN_S_CLOSING) {
        return;
    }
    c->poll_events = events;
    if (events == 0) {
        uv_poll_stop(&c->poll);
    } else {
        uv_poll_start(&c->poll, events, on_conn_poll);
    }
}

/* A new conn owning the socket `fd` (which the caller closes if this
 * returns NULL). Inbound conns count as pending handshakes. */
static struct lp2p_conn *conn_new(struct lp2p_host *host, int inbound, int fd)
{
    struct lp2p_conn *c = lp2p__calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->host = host;
    c->inbound = inbound;
    c->state = LP2P_CONN_S_CONNECTING;
    c->fd = fd;
    lp2p__list_init(&c->streams);
    lp2p__list_init(&c->wq);
    lp2p__list_init(&c->plink);
    if (uv_poll_init_socket(host->loop, &c->poll, fd) != 0) {
        lp2p__free(c);
        return NULL;
    }
    c->poll.data = c;
    uv_timer_init(host->loop, &c->timer);
    c->timer.data = c;
    uv_timer_init(host->loop, &c->keepalive);
    c->keepalive.data = c;
    c->handles = 3;
    lp2p__host_ref(host);
    lp2p__list_insert_tail(&host->conns, &c->link);
    host->n_conns++;
    if (inbound) {
        host->n_pending++;
        c->counted_pending = 1;
        lp2p__list_insert_tail(&host->pending, &c->plink);
    }
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
    lp2p__limits_conn_gone(c);
    /* Streams learn that the connection is gone (the reason is logged);
     * closing the host says LP2P_ECANCELED. */
    lp2p__conn_streams_abort(c, status == LP2P_ECANCELED ? LP2P_ECANCELED
                                                         : LP2P_ECLOSED);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
    uv_close((uv_handle_t *)&c->keepalive, conn_handle_closed);
    /* uv_close() stops watching the descriptor first. */
    uv_close((uv_handle_t *)&c->poll, conn_handle_closed);
    close(c->fd);
    c->fd = -1;
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

static void conn_fail_job(struct lp2p_host *host, void *arg, int status)
{
    struct lp2p_conn *c = arg;
    (void)host;
    if (c->state != LP2P_CONN_S_CLOSING) {
        lp2p__conn_close(c, status);
    }
    conn_unref(c);
}

void lp2p__conn_fail(struct lp2p_conn *c, int status)
{
    if (c->fail_status != 0 || c->state == LP2P_CONN_S_CLOSING) {
        return;
    }
    c->fail_status = status;
    c->handles++; /* the job holds the conn */
    lp2p__host_defer(c->host, &c->job, conn_fail_job, c, status);
}

static void on_handshake_timeout(uv_timer_t *t)
{
    struct lp2p_conn *c = t->data;
    LOG_INFO(MOD, "handshake with %s timed out", c->remote_addr);
    lp2p__conn_close(c, LP2P_ETIMEDOUT);
}

/* ---------------------------------------------------------------------
 * Reading and writing
 */

/* The status to close with when the socket ended: a ready connection that
 * the peer closed or reset ends normally (0). */
static int end_status(const struct lp2p_conn *c, int rv)
{
    return rv == LP2P_ECLOSED && c->state == LP2P_CONN_S_READY ? 0 : rv;
}

static void conn_read(struct lp2p_conn *c)
{
    struct lp2p_host *host = c->host;
    ssize_t n;
    int i, rv;
    for (i = 0; i < READS_PER_EVENT; i++) {
        n = recv(c->fd, host->rbuf, sizeof(host->rbuf), 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return;
            }
            LOG_DEBUG(MOD, "read from %s: %s", c->remote_addr,
                      strerror(errno));
            lp2p__conn_close(c, end_status(c, map_errno(errno)));
            return;
        }
        if (n == 0) {
            lp2p__conn_close(c, end_status(c, LP2P_ECLOSED));
            return;
        }
        host->bytes_in += (uint64_t)n;
        lp2p__host_busy_kick(host);
        /* Reads never nest (nothing below runs the loop), so the shared
         * buffer stays ours until the feed returns. */
        rv = lp2p__conn_feed(c, host->rbuf, (size_t)n);
        if (c->state == LP2P_CONN_S_CLOSING) {
            return;
        }
        if (rv != 0) {
            lp2p__conn_close(c, rv);
            return;
        }
        if ((size_t)n < sizeof(host->rbuf)) {
            return;
        }
    }
}

/* The socket can take more: send the queue with one sendmsg(). */
static void conn_flush(struct lp2p_conn *c)
{
    uint64_t limit = c->host->cfg.conn_write_buffer;
    struct iovec iov[IOV_PER_SEND];
    struct msghdr m;
    struct lp2p__list *e;
    int was_full = c->write_queued >= limit;
    size_t n = 0, done;
    ssize_t w;
    for (e = c->wq.next; e != &c->wq && n < IOV_PER_SEND; e = e->next) {
        struct lp2p_chunk *ch = LP2P__CONTAINER_OF(e, struct lp2p_chunk, link);
        iov[n].iov_base = ch->data + ch->off;
        iov[n].iov_len = ch->len - ch->off;
        n++;
    }
    memset(&m, 0, sizeof(m));
    m.msg_iov = iov;
    m.msg_iovlen = n;
    do {
        w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        }
        LOG_DEBUG(MOD, "write to %s: %s", c->remote_addr, strerror(errno));
        lp2p__conn_close(c, LP2P_ECLOSED);
        return;
    }
    done = (size_t)w;
    c->host->bytes_out += done;
    lp2p__host_busy_kick(c->host);
    c->write_queued -= done;
    while (done > 0) {
        struct lp2p_chunk *ch =
            LP2P__CONTAINER_OF(c->wq.next, struct lp2p_chunk, link);
        size_t left = ch->len - ch->off;
        if (done < left) {
            ch->off += done;
            break;
        }
        done -= left;
        lp2p__list_remove(&ch->link);
        lp2p__free(ch);
    }
    if (lp2p__list_empty(&c->wq)) {
        poll_set(c, UV_READABLE);
    }
    if (was_full && c->write_queued < limit &&
        c->state == LP2P_CONN_S_READY) {
        lp2p__conn_writable(c);
    }
}

static int conn_start(struct lp2p_conn *c);

/* The non-blocking connect() finished, one way or the other. */
static void conn_connected(struct lp2p_conn *c)
{
    int err = 0, rv;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = errno;
    }
    if (err != 0) {
        LOG_DEBUG(MOD, "connect %s: %s", c->remote_addr, strerror(err));
        lp2p__conn_close(c, map_errno(err));
        return;
    }
    rv = conn_start(c);
    if (rv != 0) {
        lp2p__conn_close(c, rv);
    }
}

static void on_conn_poll(uv_poll_t *p, int status, int events)
{
    struct lp2p_conn *c = p->data;
    if (c->state == LP2P_CONN_S_CLOSING) {
        return;
    }
    if (c->state == LP2P_CONN_S_CONNECTING) {
        conn_connected(c);
        return;
    }
    if (status < 0) {
        /* An error condition (libuv says EBADF for POLLERR): the socket
         * knows which. */
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        LOG_DEBUG(MOD, "socket of %s: %s", c->remote_addr,
                  err != 0 ? strerror(err) : uv_strerror(status));
        lp2p__conn_close(c, end_status(c, err != 0 ? map_errno(err)
                                                   : LP2P_ECLOSED));
        return;
    }
    if (events & UV_READABLE) {
        conn_read(c);
    }
    if ((events & UV_WRITABLE) && c->state != LP2P_CONN_S_CLOSING &&
        !lp2p__list_empty(&c->wq)) {
        conn_flush(c);
    }
}

/* Queue bytes for the socket (copied); they are sent at once if the
 * socket takes them. 0, or LP2P_ECLOSED when the conn is closing or not
 * connected yet. A send error or a failed allocation does not fail the
 * call: the conn closes from a deferred job and the bytes are dropped. */
int lp2p__conn_write(struct lp2p_conn *c, const uint8_t *p, size_t len)
{
    struct lp2p_chunk *ch;
    ssize_t n;
    if (c->state == LP2P_CONN_S_CLOSING ||
        c->state == LP2P_CONN_S_CONNECTING) {
        return LP2P_ECLOSED;
    }
    if (len == 0 || c->fail_status != 0) {
        return 0;
    }
    /* A reply may follow soon: busy polling starts here, and a read of it
     * extends it. */
    lp2p__host_busy_kick(c->host);
    if (lp2p__list_empty(&c->wq)) {
        do {
            n = send(c->fd, p, len, MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                LOG_DEBUG(MOD, "write to %s: %s", c->remote_addr,
                          strerror(errno));
                lp2p__conn_fail(c, LP2P_ECLOSED);
                return 0;
            }
            n = 0;
        }
        c->host->bytes_out += (uint64_t)n;
        p += n;
        len -= (size_t)n;
        if (len == 0) {
            return 0;
        }
    }
    ch = lp2p__malloc(sizeof(*ch) + len);
    if (ch == NULL) {
        lp2p__conn_fail(c, LP2P_ENOMEM);
        return 0;
    }
    ch->len = len;
    ch->off = 0;
    memcpy(ch->data, p, len);
    lp2p__list_insert_tail(&c->wq, &ch->link);
    c->write_queued += len;
    poll_set(c, UV_READABLE | UV_WRITABLE);
    return 0;
}

/* Socket set-up common to both directions, then the upgrade. */
static int conn_start(struct lp2p_conn *c)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int one = 1, idle = 60;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* The kernel's keepalive probes, as a backstop to Yamux pings. */
    setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    if (getsockname(c->fd, (struct sockaddr *)&ss, &len) == 0) {
        lp2p__tcp_addr_format((struct sockaddr *)&ss, c->local_addr,
                              sizeof(c->local_addr));
    }
    len = sizeof(ss);
    if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0) {
        lp2p__tcp_addr_format((struct sockaddr *)&ss, c->remote_addr,
                              sizeof(c->remote_addr));
    }
    c->state = LP2P_CONN_S_UPGRADING;
    poll_set(c, UV_READABLE);
    return lp2p__conn_upgrade_start(c);
}

/* ---------------------------------------------------------------------
 * Listeners
 */

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

static void listener_close(struct lp2p_listener *l)
{
    lp2p__list_remove(&l->link);
    uv_close((uv_handle_t *)&l->poll, listener_closed);
    uv_close((uv_handle_t *)&l->pause, listener_closed);
    close(l->fd);
    l->fd = -1;
}

/* The remote IP of an accepted socket: 4 bytes for IPv4 (also when mapped
 * into IPv6), 16 for IPv6. */
static void remote_ip(const struct sockaddr_storage *ss, uint8_t ip[16],
                      uint8_t *ip_len)
{
    if (ss->ss_family == AF_INET) {
        memcpy(ip, &((const struct sockaddr_in *)ss)->sin_addr, 4);
        *ip_len = 4;
    } else if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(ip, a->s6_addr + 12, 4);
            *ip_len = 4;
        } else {
            memcpy(ip, a->s6_addr, 16);
            *ip_len = 16;
        }
    } else {
        *ip_len = 0;
    }
}

static void on_listen_poll(uv_poll_t *p, int status, int events);

static void on_accept_resume(uv_timer_t *t)
{
    struct lp2p_listener *l = t->data;
    if (l->fd >= 0) {
        uv_poll_start(&l->poll, UV_READABLE, on_listen_poll);
    }
}

static void accepted(struct lp2p_listener *l, int fd,
                     const struct sockaddr_storage *ss)
{
    struct lp2p_host *host = l->host;
    struct lp2p_conn *c;
    uint8_t ip[16];
    uint8_t ip_len;
    int rv;
    remote_ip(ss, ip, &ip_len);
    /* Room among the pending handshakes, evicting one if needed. */
    lp2p__limits_accept(host, ip, ip_len);
    c = conn_new(host, 1, fd);
    if (c == NULL) {
        close(fd);
        lp2p__limits_note(host, LP2P_LIM_ACCEPT_FAILED);
        return;
    }
    memcpy(c->ip, ip, sizeof(ip));
    c->ip_len = ip_len;
    rv = conn_start(c);
    if (rv != 0) {
        lp2p__conn_close(c, rv);
    }
}

static void on_listen_poll(uv_poll_t *p, int status, int events)
{
    struct lp2p_listener *l = p->data;
    struct lp2p_host *host = l->host;
    struct sockaddr_storage ss;
    socklen_t len;
    int i, fd;
    (void)events;
    if (status < 0) {
        LOG_WARN(MOD, "listener %s: %s", l->addr, uv_strerror(status));
        return;
    }
    for (i = 0; i < ACCEPTS_PER_EVENT && l->fd >= 0; i++) {
        len = sizeof(ss);
        fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return;
            }
            /* Out of descriptors or memory: the connection stays in the
             * backlog; stop watching for a while instead of spinning. */
            LOG_DEBUG(MOD, "accept on %s: %s", l->addr, strerror(errno));
            lp2p__limits_note(host, LP2P_LIM_ACCEPT_FAILED);
            uv_poll_stop(&l->poll);
            uv_timer_start(&l->pause, on_accept_resume, ACCEPT_PAUSE_MS, 0);
            return;
        }
        if (host->closing) {
            close(fd);
            continue;
        }
        accepted(l, fd, &ss);
    }
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
    socklen_t len;
    int rv, fd, one = 1;
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
        len = sizeof(struct sockaddr_in);
    } else {
        rv = uv_ip6_addr(a.host, a.port, (struct sockaddr_in6 *)&ss);
        len = sizeof(struct sockaddr_in6);
    }
    if (rv != 0) {
        return LP2P_EBADADDR;
    }
    l = lp2p__calloc(1, sizeof(*l));
    if (l == NULL) {
        return LP2P_ENOMEM;
    }
    l->host = host;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                IPPROTO_TCP);
    if (fd < 0) {
        rv = map_errno(errno);
        LOG_WARN(MOD, "listen %s: %s", maddr, strerror(errno));
        lp2p__free(l);
        return rv;
    }
    /* As libuv does: a restarted node can bind its port at once. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (a.kind == LP2P_ADDR_IP6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 ||
        listen(fd, LISTEN_BACKLOG) != 0) {
        rv = map_errno(errno);
        LOG_WARN(MOD, "listen %s: %s", maddr, strerror(errno));
        close(fd);
        lp2p__free(l);
        return rv;
    }
    if (uv_poll_init_socket(host->loop, &l->poll, fd) != 0) {
        close(fd);
        lp2p__free(l);
        return LP2P_ENOMEM;
    }
    l->fd = fd;
    l->poll.data = l;
    uv_timer_init(host->loop, &l->pause);
    l->pause.data = l;
    l->handles = 2;
    lp2p__host_ref(host);
    lp2p__list_insert_tail(&host->listeners, &l->link);
    len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
        lp2p__tcp_addr_format((struct sockaddr *)&ss, l->addr,
                              sizeof(l->addr)) != 0) {
        rv = LP2P_EIO;
        goto err;
    }
    rv = listener_expand(l, (struct sockaddr *)&ss);
    if (rv != 0) {
        goto err;
    }
    uv_poll_start(&l->poll, UV_READABLE, on_listen_poll);
    LOG_INFO(MOD, "listening on %s", l->addr);
    return 0;
err:
    listener_close(l);
    return rv;
}

void lp2p__listeners_close(struct lp2p_host *host)
{
    while (!lp2p__list_empty(&host->listeners)) {
        listener_close(LP2P__CONTAINER_OF(host->listeners.next,
                                      struct lp2p_listener, link));
    }
}

const char *lp2p__listen_addr(const struct lp2p_host *host, size_t i)
{
    const struct lp2p__list *e;
    for (e = host->listeners.next; e != &host->listeners; e = e->next) {
        const struct lp2p_listener *l =
            LP2P__CONTAINER_OF(e, const struct lp2p_listener, link);
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
            LP2P__CONTAINER_OF(d->waiters.next, struct lp2p_waiter, link);
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

/* Try the next resolved address; 0 if an attempt started. */
static int dial_try(struct lp2p_dial *d, const struct sockaddr *sa)
{
    struct lp2p_host *host = d->host;
    struct lp2p_conn *c;
    socklen_t salen = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                : sizeof(struct sockaddr_in);
    int fd, rv;
    rv = lp2p__limits_dial(host, d->addr.has_peer ? &d->addr.peer : NULL);
    if (rv != 0) {
        LOG_WARN(MOD, "dial %s: connection limits reached", d->text);
        return rv;
    }
    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                IPPROTO_TCP);
    if (fd < 0) {
        LOG_INFO(MOD, "dial %s: %s", d->text, strerror(errno));
        return map_errno(errno);
    }
    c = conn_new(host, 0, fd);
    if (c == NULL) {
        close(fd);
        return LP2P_ENOMEM;
    }
    c->dial = d;
    d->conn = c;
    if (d->addr.has_peer) {
        c->has_expected = 1;
        c->expected = d->addr.peer;
    }
    lp2p__tcp_addr_format(sa, c->remote_addr, sizeof(c->remote_addr));
    do {
        rv = connect(fd, sa, salen);
    } while (rv != 0 && errno == EINTR);
    if (rv == 0 || errno == EINPROGRESS) {
        /* Writable once connected or failed; never finished in here, so
         * the waiters are never called inside the dialing call. */
        poll_set(c, UV_WRITABLE);
        return 0;
    }
    if (errno == ECONNREFUSED) {
        /* Loopback refuses at once; report it as the kernel would later. */
        lp2p__conn_fail(c, LP2P_ECONNREFUSED);
        return 0;
    }
    rv = map_errno(errno);
    LOG_DEBUG(MOD, "connect %s: %s", d->text, strerror(errno));
    c->dial = NULL;
    d->conn = NULL;
    lp2p__conn_close(c, rv);
    return rv;
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
    struct lp2p__list *e;
    for (e = host->dials.next; e != &host->dials; e = e->next) {
        struct lp2p_dial *d = LP2P__CONTAINER_OF(e, struct lp2p_dial, link);
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
            lp2p__list_insert_tail(&d->waiters, &w->link);
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
    lp2p__list_insert_tail(&d->waiters, &w->link);
    lp2p__list_insert_tail(&host->dials, &d->link);
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
    struct lp2p__list *e, *next;
    for (e = host->dials.next; e != &host->dials; e = next) {
        struct lp2p_dial *d = LP2P__CONTAINER_OF(e, struct lp2p_dial, link);
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
