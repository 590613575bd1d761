/*
 * A framed API connection over a unix socket or a libp2p stream (see
 * apiconn.h).
 *
 * Reading: bytes go straight into `in` (a unix socket reads into its spare
 * room; a stream's buffer is copied), and every whole frame at its head is
 * handed to on_frame, as long as the owner keeps reading. A frame that
 * announces more than P2PRAFT_API_FRAME_MAX ends the reading with
 * LP2P_ETOOBIG before its body is buffered.
 *
 * Writing: each frame is one uv_write (or lp2p_stream_write) with its own
 * small record; libuv and the stream complete them in order. The record
 * says what to tell the owner (on_sent) and whether to free the frame.
 *
 * Closing: a graceful close waits for `pending` to reach 0, then closes
 * the handle (a stream: lp2p_stream_close, which sends FIN after its
 * queue); an immediate one closes the handle at once, which completes the
 * pending writes with an error (uv_close cancels them; a reset stream
 * fails them). on_closed runs once the handle is closed and every write
 * completed, in whichever order those come.
 */
#include <string.h>

#include "raft/api.h"
#include "raft/apiconn.h"
#include "util/heap.h"

#define READ_CHUNK 65536

struct wrec {
    uv_write_t w; /* unix socket only */
    struct p2praft__apiconn *c;
    uint8_t *frame;
    size_t len;
    bool borrowed;
    int kind;
    void *ptr;
};

static void maybe_closed(struct p2praft__apiconn *c)
{
    if (c->handle_closed && c->pending == 0 && !c->closed_reported) {
        c->closed_reported = true;
        lp2p__buf_free(&c->in);
        c->ops->on_closed(c);
    }
}

static void close_handle(struct p2praft__apiconn *c);

static void write_done(struct wrec *w, int status)
{
    struct p2praft__apiconn *c = w->c;
    c->pending--;
    c->pending_bytes -= w->len;
    if (!w->borrowed) {
        lp2p__free(w->frame);
    }
    c->ops->on_sent(c, w->kind, w->ptr, w->len, status);
    lp2p__free(w);
    if (c->closing && c->pending == 0) {
        close_handle(c);
    }
    maybe_closed(c);
}

/* ---- reading ------------------------------------------------------------- */

/* Hand over the whole frames at the head of `in`, then drop them (once:
 * dropping each in turn would move the rest of the buffer every time). */
static void deliver(struct p2praft__apiconn *c)
{
    size_t off = 0;
    if (c->delivering) {
        return; /* read_start from inside on_frame: the loop goes on */
    }
    c->delivering = true;
    while (c->reading && !c->closing && !c->ended) {
        uint32_t blen = 0;
        int rv = p2praft__api_frame(c->in.data + off, c->in.len - off, &blen);
        if (rv == LP2P_ETOOBIG) {
            c->too_big = blen;
            c->ended = true;
            p2praft__apiconn_read_stop(c);
            c->ops->on_end(c, LP2P_ETOOBIG);
            break;
        }
        if (rv != 0) {
            break;
        }
        /* on_frame may close c: the buffer stays until on_closed, which
         * never runs from inside a call. */
        c->ops->on_frame(c, c->in.data + off + P2PRAFT__API_PREFIX, blen);
        off += P2PRAFT__API_PREFIX + (size_t)blen;
    }
    c->delivering = false;
    if (off > 0) {
        lp2p__buf_consume(&c->in, off);
    }
}

static void read_ended(struct p2praft__apiconn *c, int status)
{
    if (c->ended || c->closing) {
        return;
    }
    c->ended = true;
    p2praft__apiconn_read_stop(c);
    c->ops->on_end(c, status);
}

static void pipe_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct p2praft__apiconn *c = h->data;
    size_t want = READ_CHUNK;
    uint32_t blen = 0;
    (void)hint;
    /* Read a large frame's body in one go once its length is known. */
    if (p2praft__api_frame(c->in.data, c->in.len, &blen) == LP2P_EAGAIN &&
        c->in.len >= P2PRAFT__API_PREFIX &&
        P2PRAFT__API_PREFIX + (size_t)blen - c->in.len > want) {
        want = P2PRAFT__API_PREFIX + (size_t)blen - c->in.len;
    }
    if (lp2p__buf_reserve(&c->in, want) != 0) {
        buf->base = NULL;
        buf->len = 0; /* libuv reports UV_ENOBUFS */
        return;
    }
    buf->base = (char *)c->in.data + c->in.len;
    buf->len = c->in.cap - c->in.len;
}

static void pipe_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct p2praft__apiconn *c = s->data;
    (void)buf;
    if (nread < 0) {
        read_ended(c, nread == UV_EOF ? LP2P_EEOF : LP2P_ECLOSED);
        return;
    }
    c->in.len += (size_t)nread;
    deliver(c);
}

static void stream_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                        size_t len)
{
    struct p2praft__apiconn *c = lp2p_stream_data(s);
    if (status != 0) {
        read_ended(c, status);
        return;
    }
    if (lp2p__buf_append(&c->in, buf, len) != 0) {
        read_ended(c, LP2P_ENOMEM);
        return;
    }
    deliver(c);
}

void p2praft__apiconn_read_start(struct p2praft__apiconn *c)
{
    if (c->reading || c->ended || c->closing) {
        return;
    }
    c->reading = true;
    /* Frames already buffered come first. */
    deliver(c);
    if (!c->reading || c->ended || c->closing) {
        return;
    }
    if (c->stream != NULL) {
        if (lp2p_stream_read_start(c->stream, stream_read) != 0) {
            read_ended(c, LP2P_ECLOSED);
        }
    } else if (uv_read_start((uv_stream_t *)&c->pipe, pipe_alloc,
                             pipe_read) != 0) {
        read_ended(c, LP2P_ECLOSED);
    }
}

void p2praft__apiconn_read_stop(struct p2praft__apiconn *c)
{
    if (!c->reading) {
        return;
    }
    c->reading = false;
    if (c->handle_closing) {
        return;
    }
    if (c->stream != NULL) {
        lp2p_stream_read_stop(c->stream);
    } else {
        uv_read_stop((uv_stream_t *)&c->pipe);
    }
}

/* ---- writing ------------------------------------------------------------- */

static void pipe_written(uv_write_t *req, int status)
{
    struct wrec *w = req->data;
    write_done(w, status == 0 ? 0
                  : status == UV_ECANCELED ? LP2P_ECANCELED
                                           : LP2P_ECLOSED);
}

static void stream_written(struct lp2p_stream *s, int status, void *data)
{
    (void)s;
    write_done(data, status);
}

int p2praft__apiconn_send(struct p2praft__apiconn *c, uint8_t *frame,
                          size_t len, bool borrowed, int kind, void *ptr)
{
    struct wrec *w;
    int rv;
    if (c->closing) {
        if (!borrowed) {
            lp2p__free(frame);
        }
        return LP2P_ESTATE;
    }
    w = lp2p__calloc(1, sizeof(*w));
    if (w == NULL) {
        if (!borrowed) {
            lp2p__free(frame);
        }
        return LP2P_ENOMEM;
    }
    w->c = c;
    w->frame = frame;
    w->len = len;
    w->borrowed = borrowed;
    w->kind = kind;
    w->ptr = ptr;
    if (c->stream != NULL) {
        rv = lp2p_stream_write(c->stream, frame, len, stream_written, w);
    } else {
        uv_buf_t b = uv_buf_init((char *)frame, (unsigned)len);
        w->w.data = w;
        rv = uv_write(&w->w, (uv_stream_t *)&c->pipe, &b, 1, pipe_written) ==
                     0
                 ? 0
                 : LP2P_ECLOSED;
    }
    if (rv != 0) {
        if (!borrowed) {
            lp2p__free(frame);
        }
        lp2p__free(w);
        return rv == LP2P_ENOMEM ? rv : LP2P_ESTATE;
    }
    c->pending++;
    c->pending_bytes += len;
    return 0;
}

/* ---- set-up and closing -------------------------------------------------- */

int p2praft__apiconn_pipe_init(struct p2praft__apiconn *c, uv_loop_t *loop,
                               const struct p2praft__apiconn_ops *ops,
                               void *data)
{
    int rv;
    memset(c, 0, sizeof(*c));
    c->ops = ops;
    c->data = data;
    lp2p__buf_init(&c->in);
    rv = uv_pipe_init(loop, &c->pipe, 0);
    c->pipe.data = c;
    return rv;
}

void p2praft__apiconn_pipe_ready(struct p2praft__apiconn *c)
{
    (void)c; /* nothing yet: reading starts with read_start */
}

void p2praft__apiconn_stream_init(struct p2praft__apiconn *c,
                                  struct lp2p_stream *s,
                                  const struct p2praft__apiconn_ops *ops,
                                  void *data)
{
    memset(c, 0, sizeof(*c));
    c->ops = ops;
    c->data = data;
    c->stream = s;
    c->failed_write_may_arrive = true;
    lp2p__buf_init(&c->in);
    lp2p_stream_set_data(s, c);
}

static void pipe_closed(uv_handle_t *h)
{
    struct p2praft__apiconn *c = h->data;
    c->handle_closed = true;
    maybe_closed(c);
}

static void stream_closed(struct lp2p_stream *s, void *data)
{
    struct p2praft__apiconn *c = data;
    (void)s;
    c->handle_closed = true;
    maybe_closed(c);
}

static void close_handle(struct p2praft__apiconn *c)
{
    if (c->handle_closing) {
        return;
    }
    c->handle_closing = true;
    if (c->stream != NULL) {
        if (!c->graceful) {
            lp2p_stream_reset(c->stream);
        }
        /* Nothing touches the stream after this call but its callbacks. */
        lp2p_stream_close(c->stream, stream_closed, c);
        return;
    }
    uv_close((uv_handle_t *)&c->pipe, pipe_closed);
}

void p2praft__apiconn_close(struct p2praft__apiconn *c, bool graceful)
{
    if (c->closing) {
        if (!graceful && !c->handle_closing) {
            /* Give up waiting for the queued frames. */
            c->graceful = false;
            close_handle(c);
        }
        return;
    }
    p2praft__apiconn_read_stop(c);
    c->closing = true;
    c->graceful = graceful;
    if (graceful && c->pending > 0) {
        return; /* write_done closes the handle */
    }
    close_handle(c);
}
