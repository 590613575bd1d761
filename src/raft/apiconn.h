/*
 * A framed API connection (apiconn.c): API frames (api.h) in and out over
 * a unix socket (uv_pipe_t) or a libp2p stream, the same for the node's
 * sessions and for the client library. It cuts the bytes that arrive into
 * frames, writes the frames it is given (many may be in flight, completed
 * in order), and closes once: gracefully (what was queued still goes) or
 * at once. Loop thread only.
 */
#ifndef P2PRAFT_RAFT_APICONN_H
#define P2PRAFT_RAFT_APICONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lp2p.h"
#include "util/buf.h"

struct p2praft__apiconn;

struct p2praft__apiconn_ops {
    /* A whole frame arrived: its body (borrowed for the call). The callee
     * may stop reading or close; nothing else is delivered after a close. */
    void (*on_frame)(struct p2praft__apiconn *c, const uint8_t *body,
                     size_t len);
    /* Reading ended, once: LP2P_EEOF (the peer closed its side),
     * LP2P_ETOOBIG (a frame announced more than P2PRAFT_API_FRAME_MAX;
     * c->too_big holds its length), or another error. Writing may go on. */
    void (*on_end)(struct p2praft__apiconn *c, int status);
    /* A frame given to p2praft__apiconn_send() is done, once: 0 when all
     * of it went (to the kernel, or into the libp2p connection), else an
     * error (LP2P_ECANCELED when the close dropped it). `kind` and `ptr`
     * are what the sender passed. */
    void (*on_sent)(struct p2praft__apiconn *c, int kind, void *ptr,
                    size_t len, int status);
    /* Closed: every on_sent ran, nothing follows. The owner may free c. */
    void (*on_closed)(struct p2praft__apiconn *c);
};

struct p2praft__apiconn {
    const struct p2praft__apiconn_ops *ops;
    void *data; /* the owner's */
    uv_pipe_t pipe;              /* the unix socket transport, or */
    struct lp2p_stream *stream;  /* the libp2p one */
    struct lp2p_buf in;
    unsigned pending;   /* frames sent and not yet completed */
    size_t pending_bytes;
    uint32_t too_big;   /* see on_end */
    /* Whether a write that failed may have delivered its whole frame: a
     * unix socket write fails only for bytes it did not write, a libp2p
     * write says "maybe partially sent". */
    bool failed_write_may_arrive;
    bool reading, delivering, ended, closing, graceful;
    bool handle_closing, handle_closed, closed_reported;
};

/* Set up `c` on a unix socket: p2praft__apiconn_pipe_init() makes the
 * handle (then the caller accepts or connects into c->pipe), and
 * p2praft__apiconn_pipe_ready() starts using it. 0 or a libuv error from
 * uv_pipe_init (nothing to close then). */
int p2praft__apiconn_pipe_init(struct p2praft__apiconn *c, uv_loop_t *loop,
                               const struct p2praft__apiconn_ops *ops,
                               void *data);
void p2praft__apiconn_pipe_ready(struct p2praft__apiconn *c);

/* Set up `c` on an open libp2p stream (owned from now on: the close
 * closes it). */
void p2praft__apiconn_stream_init(struct p2praft__apiconn *c,
                                  struct lp2p_stream *s,
                                  const struct p2praft__apiconn_ops *ops,
                                  void *data);

/* Deliver frames (again) / hold them back (back-pressure). */
void p2praft__apiconn_read_start(struct p2praft__apiconn *c);
void p2praft__apiconn_read_stop(struct p2praft__apiconn *c);

/*
 * Write one frame (`frame`, `len` bytes, prefix included). With `borrowed`
 * false the frame is taken (lp2p heap) and freed once done; with it true
 * it must stay untouched until on_sent. on_sent(kind, ptr) follows exactly
 * once. Errors (no on_sent then, and an owned frame is freed): LP2P_ESTATE
 * (closing), LP2P_ENOMEM.
 */
int p2praft__apiconn_send(struct p2praft__apiconn *c, uint8_t *frame,
                          size_t len, bool borrowed, int kind, void *ptr);

/*
 * Close, once. Graceful: stop reading, let the frames already sent go,
 * then close (a libp2p stream ends with FIN). Otherwise at once: frames
 * not yet written are dropped (on_sent with an error), a stream is reset.
 * on_closed follows. A graceful close may be turned into an immediate one
 * by calling again with graceful false.
 */
void p2praft__apiconn_close(struct p2praft__apiconn *c, bool graceful);

#endif
