/*
 * Yamux session state machine (sans-I/O), after the libp2p yamux spec.
 *
 * The host owns the connection. It feeds every received plaintext byte to
 * lp2p__yamux_feed() in any chunking, and whenever lp2p__yamux_want_write()
 * is true it pulls bytes with lp2p__yamux_pull() and sends them, in order.
 * The session never reads a clock and never touches a socket. Events
 * (stream opened by the peer, data, FIN, RST, writable, GO_AWAY, ping ack,
 * session error) reach the host through one callback, nghttp2-style.
 *
 * Callbacks run only inside lp2p__yamux_feed() and lp2p__yamux_pull(), on
 * the caller's thread. Inside a callback the host may call any function
 * here except lp2p__yamux_feed() (it returns LP2P_ESTATE) and
 * lp2p__yamux_session_free().
 *
 * Receive data is zero-copy: a DATA event borrows bytes of the buffer being
 * fed, valid only during the callback. The host keeps what it needs and
 * calls lp2p__yamux_stream_consume() once the application has used the
 * bytes; window updates follow consumption, never arrival. So yamux itself
 * buffers no received payload; the peer cannot make the host hold more than
 * the receive window of each stream.
 *
 * Windows: 256 KiB per stream each way at first; the peer's window is a
 * u32 and only ever grows by its updates. Ours auto-tunes without a clock:
 * when an update falls due (half a window consumed) and the peer had used
 * the whole window since our last update while the host had consumed
 * everything delivered, the window doubles, up to max_window (16 MiB) and
 * within window_budget for the whole session. Writes go to a bounded
 * per-stream queue; DATA frames never exceed the peer's window.
 *
 * Ownership: the session owns its streams; a stream handle stays valid
 * until lp2p__yamux_stream_release() (or session free). The session has no
 * pending requests, so lp2p__yamux_session_free() is synchronous and fires
 * no callback.
 *
 * Memory bound (checked by lp2p__yamux_session_mem()):
 *   sizeof(session) + hash buckets (<= 2 pointers per stream)
 *   + control queue (<= LP2P__YAMUX_CTRL_MAX + 12 bytes)
 *   + (max_inbound + max_outbound) * (sizeof(stream) + send_queue_max).
 * Released streams that linger (owing the peer a FIN or RST, or waiting
 * for its FIN) count against the stream limits until they go.
 *
 * Failure: a peer that breaks the protocol (bad header, wrong SYN parity,
 * reused ID, DATA beyond the window, window overflow, DATA after FIN,
 * flooding the control queue, too many refused SYNs) fails the session:
 * a GO_AWAY with code 1 (protocol error) is queued, the ERROR event fires
 * once, feed returns the error now and forever after, stream data is no
 * longer sent. The host pulls the remaining bytes, sends them and closes.
 */
#ifndef LP2P_P2P_YAMUX_H
#define LP2P_P2P_YAMUX_H

#include <stddef.h>
#include <stdint.h>

#define LP2P__YAMUX_HEADER_LEN 12
#define LP2P__YAMUX_INITIAL_WINDOW (256u * 1024u)
/* Largest DATA payload we send: the whole frame stays within 64 KiB. */
#define LP2P__YAMUX_MAX_PAYLOAD (64u * 1024u - 12u)
/* Bytes of queued control frames (ping acks, refusals) we hold for a peer
 * that does not read them; beyond this the session fails (flood). */
#define LP2P__YAMUX_CTRL_MAX (64u * 1024u)
/* Outstanding pings we started and not yet saw acknowledged. */
#define LP2P__YAMUX_MAX_PINGS 8

/* Frame types, flags and GO_AWAY codes (yamux spec). */
enum {
    LP2P__YAMUX_DATA = 0,
    LP2P__YAMUX_WINDOW_UPDATE = 1,
    LP2P__YAMUX_PING = 2,
    LP2P__YAMUX_GO_AWAY = 3
};
enum {
    LP2P__YAMUX_SYN = 1,
    LP2P__YAMUX_ACK = 2,
    LP2P__YAMUX_FIN = 4,
    LP2P__YAMUX_RST = 8
};
enum {
    LP2P__YAMUX_GOAWAY_NORMAL = 0,
    LP2P__YAMUX_GOAWAY_PROTO = 1,
    LP2P__YAMUX_GOAWAY_INTERNAL = 2
};

struct lp2p__yamux_session;
struct lp2p__yamux_stream;

struct lp2p__yamux_config {
    uint32_t max_inbound_streams;  /* streams the peer opened, default 256 */
    uint32_t max_outbound_streams; /* streams we opened, default 1024 */
    uint32_t max_backlog;    /* unaccepted inbound, also our unacked outbound
                                streams; default 256 (spec) */
    uint32_t max_refused;    /* SYNs refused in a row (no accept between)
                                before the peer counts as flooding; 1024 */
    uint32_t max_window;     /* receive window auto-tuning cap, 16 MiB */
    uint64_t window_budget;  /* sum of all streams' receive windows that
                                auto-tuning may reach, default 64 MiB */
    size_t send_queue_max;   /* bytes a stream queues for sending, 256 KiB */
};

enum lp2p__yamux_event_type {
    /* A new inbound stream (`stream`). Call accept (sends the ACK), or
     * reset/release to refuse. Counts against the backlog until accepted. */
    LP2P__YAMUX_EV_STREAM_OPENED,
    /* The peer acknowledged our stream (`stream`). */
    LP2P__YAMUX_EV_STREAM_ACKED,
    /* `len` bytes at `data` (borrowed for the callback) arrived on
     * `stream`; consume them later with lp2p__yamux_stream_consume(). */
    LP2P__YAMUX_EV_DATA,
    /* The peer half-closed `stream`: no more data will arrive. */
    LP2P__YAMUX_EV_FIN,
    /* The peer reset `stream`; `value` is the error code of the RST frame
     * (go-yamux v5 puts one in its length). Release the stream. */
    LP2P__YAMUX_EV_RESET,
    /* `stream`'s send queue has room again (at most half full) after a
     * short write; the queue drains as fast as the peer's window allows. */
    LP2P__YAMUX_EV_WRITABLE,
    /* The peer sent GO_AWAY with code `value`: open no more streams. */
    LP2P__YAMUX_EV_GO_AWAY,
    /* The peer acknowledged our ping with opaque `value`. */
    LP2P__YAMUX_EV_PING_ACK,
    /* The session failed with `error` (negative code). Fires once. */
    LP2P__YAMUX_EV_ERROR
};

struct lp2p__yamux_event {
    enum lp2p__yamux_event_type type;
    struct lp2p__yamux_stream *stream; /* or NULL for session events */
    const uint8_t *data;               /* EV_DATA only */
    size_t len;                        /* EV_DATA only */
    uint32_t value;                    /* RESET, GO_AWAY, PING_ACK */
    int error;                         /* EV_ERROR only */
};

/* `ev` is borrowed for the duration of the call. */
typedef void (*lp2p__yamux_event_cb)(void *ud,
                                     const struct lp2p__yamux_event *ev);

/* Fill `cfg` with the defaults listed above. */
void lp2p__yamux_config_init(struct lp2p__yamux_config *cfg);

/*
 * Create a session. `is_client` picks odd stream IDs (client, the dialer)
 * or even ones (server). `cfg` is copied; NULL means defaults. `cb` and
 * `ud` are borrowed until lp2p__yamux_session_free(). On success *out owns
 * the new session. Returns 0, LP2P_EINVAL (zero limits, NULL cb) or
 * LP2P_ENOMEM.
 */
int lp2p__yamux_session_new(struct lp2p__yamux_session **out, int is_client,
                            const struct lp2p__yamux_config *cfg,
                            lp2p__yamux_event_cb cb, void *ud);

/* Free the session and every stream; handles become invalid at once. No
 * callback runs. NULL is a no-op. Not from inside a callback. */
void lp2p__yamux_session_free(struct lp2p__yamux_session *s);

/*
 * Process `len` received bytes (borrowed for the call), all of them;
 * a frame may be split over any number of calls. Events fire from inside.
 * Returns 0, or the session's error: LP2P_EPROTO, LP2P_EWINDOW (the peer
 * exceeded a window), LP2P_ENOMEM; or LP2P_ESTATE when called from a
 * callback. After an error the session ignores input; pull the GO_AWAY.
 */
int lp2p__yamux_feed(struct lp2p__yamux_session *s, const uint8_t *data,
                     size_t len);

/* Nonzero when lp2p__yamux_pull() would produce bytes. */
int lp2p__yamux_want_write(const struct lp2p__yamux_session *s);

/*
 * Copy whole frames to send into `out` (`cap` bytes), in wire order.
 * Returns the bytes written; 0 when nothing is pending or cap < 13.
 * DATA frames are cut to fit, so a 64 KiB buffer is used fully. May fire
 * WRITABLE events.
 */
size_t lp2p__yamux_pull(struct lp2p__yamux_session *s, uint8_t *out,
                        size_t cap);

/* Queue a PING|SYN; its opaque value goes to *value (may be NULL). The
 * PING_ACK event reports the answer. 0, LP2P_ELIMIT (too many in flight),
 * or the session error. */
int lp2p__yamux_ping(struct lp2p__yamux_session *s, uint32_t *value);

/* Queue a GO_AWAY with `code` (once; later calls return 0 and send
 * nothing). Afterwards the peer's new streams are refused and we open
 * none. Existing streams go on. 0 or the session error. */
int lp2p__yamux_goaway(struct lp2p__yamux_session *s, uint32_t code);

/* 0, or the error that failed the session. */
int lp2p__yamux_session_error(const struct lp2p__yamux_session *s);

/*
 * Bound the life of released streams (the session has no clock). Each
 * call marks the released streams still lingering (waiting for the peer's
 * FIN, or for window to flush queued data); those already marked by the
 * previous call are reset and freed once the RST is pulled. Call it from a
 * timer, e.g. every 30 s, from outside callbacks.
 */
void lp2p__yamux_session_sweep(struct lp2p__yamux_session *s);

/* Streams currently allocated (including released ones still lingering). */
uint32_t lp2p__yamux_session_streams(const struct lp2p__yamux_session *s);

/* Bytes the session holds on the heap now (structs, queues, buckets). */
size_t lp2p__yamux_session_mem(const struct lp2p__yamux_session *s);

/* The bound documented above, for this session's configuration. */
size_t lp2p__yamux_session_mem_bound(const struct lp2p__yamux_session *s);

/*
 * Open an outbound stream; WINDOW_UPDATE|SYN goes out on the next pull and
 * data may be written at once. *out is valid until
 * lp2p__yamux_stream_release(). Returns 0, LP2P_ECLOSED (GO_AWAY either
 * way), LP2P_ELIMIT (stream or unacked limit, IDs exhausted),
 * LP2P_ENOMEM, or the session error.
 */
int lp2p__yamux_stream_open(struct lp2p__yamux_session *s,
                            struct lp2p__yamux_stream **out);

/* Accept an inbound stream: queue its ACK (with any consumed credit).
 * Writing accepts implicitly. 0, or LP2P_ESTATE when not inbound-pending. */
int lp2p__yamux_stream_accept(struct lp2p__yamux_stream *st);

/*
 * Queue up to `len` bytes of `data` (copied) for sending; *accepted gets
 * how many were taken (less than len when the send queue is full: wait for
 * EV_WRITABLE). Frames never exceed the peer's window. Returns 0,
 * LP2P_ECLOSED (after close), LP2P_ERESET, LP2P_ENOMEM (nothing taken), or
 * the session error.
 */
int lp2p__yamux_stream_write(struct lp2p__yamux_stream *st, const void *data,
                             size_t len, size_t *accepted);

/* Half-close: FIN goes out after the queued data. 0 or LP2P_ERESET. */
int lp2p__yamux_stream_close(struct lp2p__yamux_stream *st);

/* Reset: drop queued data, send RST. Idempotent; returns 0. */
int lp2p__yamux_stream_reset(struct lp2p__yamux_stream *st);

/* The application used `n` received bytes; their window credit goes back
 * to the peer (when half a window is due). 0 or LP2P_EINVAL (n exceeds
 * the unconsumed bytes). */
int lp2p__yamux_stream_consume(struct lp2p__yamux_stream *st, size_t n);

/*
 * Give the handle back; it is invalid after the call. A stream closed both
 * ways (or reset) goes at once. If we half-closed, queued data and our FIN
 * are still sent, incoming data is dropped and credited, and the stream
 * goes when the peer's FIN or RST arrives (lp2p__yamux_session_sweep()
 * bounds that wait). Otherwise the stream is reset. Call it for every
 * stream, including refused inbound ones.
 */
void lp2p__yamux_stream_release(struct lp2p__yamux_stream *st);

uint32_t lp2p__yamux_stream_id(const struct lp2p__yamux_stream *st);
void lp2p__yamux_stream_set_user(struct lp2p__yamux_stream *st, void *user);
void *lp2p__yamux_stream_user(const struct lp2p__yamux_stream *st);
/* Bytes the peer lets us send now (its window for this stream). */
uint32_t lp2p__yamux_stream_send_window(const struct lp2p__yamux_stream *st);
/* Our receive window size for this stream (grows with auto-tuning). */
uint32_t lp2p__yamux_stream_recv_window(const struct lp2p__yamux_stream *st);
/* Bytes waiting in the send queue. */
size_t lp2p__yamux_stream_queued(const struct lp2p__yamux_stream *st);

#endif
