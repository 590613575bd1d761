/* See slowproxy.h. */
#include <stdlib.h>
#include <string.h>

#include "slowproxy.h"

#define TICK_MS 10
#define HIGH (256 * 1024) /* bytes queued toward a side before pausing */

struct sp_conn;

/* One direction of a connection: reads `from`, writes `to`. */
struct sp_dir {
    struct sp_conn *c;
    uv_tcp_t *from, *to;
    bool paced;
    bool reading;
    bool eof;
    uint64_t used; /* paced bytes in this tick */
};

struct sp_conn {
    struct slowproxy *sp;
    struct sp_conn *next;
    uv_tcp_t a; /* accepted */
    uv_tcp_t b; /* to the target */
    uv_connect_t connect;
    struct sp_dir ab, ba;
    bool connected;
    bool closing;
    int handles;
};

struct slowproxy {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t tick;
    struct sockaddr_in target;
    bool to_target;
    uint64_t budget; /* paced bytes per tick */
    uint64_t paced;
    int port;
    struct sp_conn *conns;
    bool closing;
    int handles;
};

struct sp_write {
    uv_write_t req;
    struct sp_dir *d;
    char data[];
};

static void dir_resume(struct sp_dir *d);

static void sp_maybe_free(struct slowproxy *sp)
{
    if (sp->closing && sp->handles == 0 && sp->conns == NULL) {
        free(sp);
    }
}

static void conn_handle_closed(uv_handle_t *h)
{
    struct sp_conn *c = h->data;
    struct slowproxy *sp = c->sp;
    struct sp_conn **pp;
    if (--c->handles > 0) {
        return;
    }
    for (pp = &sp->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    free(c);
    sp_maybe_free(sp);
}

static void conn_close(struct sp_conn *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    c->handles = 2;
    uv_close((uv_handle_t *)&c->a, conn_handle_closed);
    uv_close((uv_handle_t *)&c->b, conn_handle_closed);
}

/* A read buffer: 64 KiB, or what is left of the tick's budget when paced
 * (so that no read overshoots the pace). */
static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct sp_conn *c = h->data;
    struct sp_dir *d = h == (uv_handle_t *)&c->a ? &c->ab : &c->ba;
    size_t size = 65536;
    struct sp_write *w;
    (void)hint;
    if (d->paced && c->sp->budget - d->used < size) {
        size = d->used < c->sp->budget ? (size_t)(c->sp->budget - d->used)
                                       : 1;
    }
    w = malloc(sizeof(*w) + size);
    buf->base = w != NULL ? w->data : NULL;
    buf->len = w != NULL ? size : 0;
}

static void write_cb(uv_write_t *req, int status)
{
    struct sp_write *w = req->data;
    struct sp_dir *d = w->d;
    free(w);
    if (d->c->closing) {
        return;
    }
    if (status != 0) {
        conn_close(d->c);
        return;
    }
    dir_resume(d);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct sp_conn *c = s->data;
    struct sp_dir *d = s == (uv_stream_t *)&c->a ? &c->ab : &c->ba;
    struct sp_write *w =
        buf->base != NULL
            ? (struct sp_write *)(void *)(buf->base -
                                          offsetof(struct sp_write, data))
            : NULL;
    uv_buf_t out;
    if (n <= 0) {
        free(w);
        if (n < 0) {
            /* EOF or error: the whole connection goes (raft streams do
             * not half-close connections). */
            conn_close(c);
        }
        return;
    }
    w->d = d;
    w->req.data = w;
    out = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)d->to, &out, 1, write_cb) != 0) {
        free(w);
        conn_close(c);
        return;
    }
    if (d->paced) {
        d->used += (uint64_t)n;
        c->sp->paced += (uint64_t)n;
    }
    if ((d->paced && d->used >= c->sp->budget) ||
        uv_stream_get_write_queue_size((uv_stream_t *)d->to) > HIGH) {
        uv_read_stop((uv_stream_t *)d->from);
        d->reading = false;
    }
}

static void dir_resume(struct sp_dir *d)
{
    if (d->reading || d->c->closing || !d->c->connected ||
        (d->paced && d->used >= d->c->sp->budget) ||
        uv_stream_get_write_queue_size((uv_stream_t *)d->to) > HIGH) {
        return;
    }
    if (uv_read_start((uv_stream_t *)d->from, alloc_cb, read_cb) == 0) {
        d->reading = true;
    }
}

static void tick_cb(uv_timer_t *t)
{
    struct slowproxy *sp = t->data;
    struct sp_conn *c;
    for (c = sp->conns; c != NULL; c = c->next) {
        c->ab.used = 0;
        c->ba.used = 0;
        dir_resume(&c->ab);
        dir_resume(&c->ba);
    }
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct sp_conn *c = req->data;
    if (status != 0 || c->closing) {
        conn_close(c);
        return;
    }
    c->connected = true;
    dir_resume(&c->ab);
    dir_resume(&c->ba);
}

static void accept_cb(uv_stream_t *server, int status)
{
    struct slowproxy *sp = server->data;
    struct sp_conn *c;
    if (status != 0 || sp->closing) {
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return;
    }
    c->sp = sp;
    uv_tcp_init(sp->loop, &c->a);
    uv_tcp_init(sp->loop, &c->b);
    c->a.data = c;
    c->b.data = c;
    c->next = sp->conns;
    sp->conns = c;
    c->ab.c = c->ba.c = c;
    c->ab.from = &c->a;
    c->ab.to = &c->b;
    c->ab.paced = sp->to_target;
    c->ba.from = &c->b;
    c->ba.to = &c->a;
    c->ba.paced = !sp->to_target;
    if (uv_accept(server, (uv_stream_t *)&c->a) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->a, 1);
    uv_tcp_nodelay(&c->b, 1);
    c->connect.data = c;
    if (uv_tcp_connect(&c->connect, &c->b,
                       (const struct sockaddr *)&sp->target,
                       connect_cb) != 0) {
        conn_close(c);
    }
}

int slowproxy_start(struct slowproxy **out, uv_loop_t *loop,
                    const char *host, int port, bool to_target,
                    uint64_t bytes_per_sec)
{
    struct slowproxy *sp = calloc(1, sizeof(*sp));
    struct sockaddr_in sa;
    int namelen = sizeof(sa), rv;
    if (sp == NULL) {
        return UV_ENOMEM;
    }
    sp->loop = loop;
    sp->to_target = to_target;
    sp->budget = bytes_per_sec * TICK_MS / 1000;
    if (sp->budget == 0) {
        sp->budget = 1;
    }
    uv_ip4_addr(host, port, &sp->target);
    uv_tcp_init(loop, &sp->listener);
    uv_timer_init(loop, &sp->tick);
    sp->listener.data = sp;
    sp->tick.data = sp;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    rv = uv_tcp_bind(&sp->listener, (const struct sockaddr *)&sa, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&sp->listener, 16, accept_cb);
    }
    if (rv == 0) {
        rv = uv_tcp_getsockname(&sp->listener, (struct sockaddr *)&sa,
                                &namelen);
    }
    sp->port = ntohs(sa.sin_port);
    uv_timer_start(&sp->tick, tick_cb, TICK_MS, TICK_MS);
    *out = sp;
    if (rv != 0) {
        slowproxy_close(sp);
        *out = NULL;
    }
    return rv;
}

int slowproxy_port(const struct slowproxy *p)
{
    return p->port;
}

uint64_t slowproxy_paced_bytes(const struct slowproxy *p)
{
    return p->paced;
}

static void sp_handle_closed(uv_handle_t *h)
{
    struct slowproxy *sp = h->data;
    sp->handles--;
    sp_maybe_free(sp);
}

void slowproxy_close(struct slowproxy *sp)
{
    struct sp_conn *c;
    sp->closing = true;
    for (c = sp->conns; c != NULL; c = c->next) {
        conn_close(c);
    }
    sp->handles = 2;
    uv_close((uv_handle_t *)&sp->listener, sp_handle_closed);
    uv_close((uv_handle_t *)&sp->tick, sp_handle_closed);
}
