/*
 * Fuzz the yamux session. The first byte picks a mode:
 *   bit 0..1 == 0: the rest is fed, as is, to a client and to a server
 *                  session (pure frame parser);
 *   otherwise:     the rest is a program of operations that mixes feeds of
 *                  raw bytes with API calls (open, write, close, reset,
 *                  release, consume, accept, ping, goaway, sweep, pull).
 * Invariants: no crash, no leak (ASan), the session's heap use never
 * exceeds its documented bound, pull never writes past its buffer, and an
 * error, once reported, stays.
 */
#include <string.h>

#include "fuzz.h"
#include "lp2p.h"
#include "p2p/yamux.h"

#define NH 16

struct fz {
    struct lp2p__yamux_session *s;
    struct lp2p__yamux_stream *h[NH];
    int consume_now;
    int errors;
};

static void fz_add(struct fz *f, struct lp2p__yamux_stream *st)
{
    int i;
    for (i = 0; i < NH; i++) {
        if (f->h[i] == NULL) {
            f->h[i] = st;
            return;
        }
    }
    lp2p__yamux_stream_release(st); /* from inside the callback */
}

static void fz_cb(void *ud, const struct lp2p__yamux_event *ev)
{
    struct fz *f = ud;
    switch (ev->type) {
    case LP2P__YAMUX_EV_STREAM_OPENED:
        fz_add(f, ev->stream);
        break;
    case LP2P__YAMUX_EV_DATA:
        FUZZ_CHECK(ev->len > 0);
        if (f->consume_now) {
            FUZZ_CHECK(lp2p__yamux_stream_consume(ev->stream, ev->len) == 0);
        }
        break;
    case LP2P__YAMUX_EV_ERROR:
        f->errors++;
        FUZZ_CHECK(f->errors == 1);
        FUZZ_CHECK(ev->error < 0);
        break;
    default:
        break;
    }
}

static void drain(struct fz *f, size_t cap)
{
    static uint8_t out[70000 + 16];
    size_t n;
    int guard = 0;
    if (cap > 70000) {
        cap = 70000;
    }
    out[cap] = 0xA5;
    while ((n = lp2p__yamux_pull(f->s, out, cap)) > 0 && guard++ < 64) {
        FUZZ_CHECK(n <= cap);
    }
    FUZZ_CHECK(out[cap] == 0xA5);
}

static void check_mem(struct fz *f)
{
    FUZZ_CHECK(lp2p__yamux_session_mem(f->s) <=
               lp2p__yamux_session_mem_bound(f->s));
}

static void raw(const uint8_t *data, size_t size, int client)
{
    struct fz f;
    memset(&f, 0, sizeof(f));
    f.consume_now = 1;
    if (lp2p__yamux_session_new(&f.s, client, NULL, fz_cb, &f) != 0) {
        return;
    }
    (void)lp2p__yamux_feed(f.s, data, size);
    check_mem(&f);
    drain(&f, 65536);
    lp2p__yamux_session_free(f.s);
}

static void program(const uint8_t *p, size_t n, int client)
{
    struct fz f;
    struct lp2p__yamux_config cfg;
    static const uint8_t junk[4096];
    size_t i = 0;
    int err = 0;
    memset(&f, 0, sizeof(f));
    lp2p__yamux_config_init(&cfg);
    cfg.max_inbound_streams = 6;
    cfg.max_outbound_streams = 6;
    cfg.max_backlog = 3;
    cfg.max_refused = 20;
    cfg.send_queue_max = 3000;
    cfg.window_budget = 4u * 1024 * 1024;
    if (lp2p__yamux_session_new(&f.s, client, &cfg, fz_cb, &f) != 0) {
        return;
    }
    while (i < n) {
        uint8_t op = p[i++];
        uint8_t arg = i < n ? p[i] : 0;
        struct lp2p__yamux_stream **h = &f.h[arg % NH];
        size_t acc;
        switch (op % 12) {
        case 0:
        case 1:
        case 2: { /* feed the next arg+1 bytes (or fewer) */
            size_t k = (size_t)arg + 1;
            int rv;
            i = i < n ? i + 1 : n;
            if (k > n - i) {
                k = n - i;
            }
            rv = lp2p__yamux_feed(f.s, p + i, k);
            if (err != 0) {
                FUZZ_CHECK(rv == err);
            }
            if (rv != 0) {
                err = rv;
                FUZZ_CHECK(lp2p__yamux_session_error(f.s) == rv);
            }
            i += k;
            break;
        }
        case 3: {
            struct lp2p__yamux_stream *st;
            if (lp2p__yamux_stream_open(f.s, &st) == 0) {
                fz_add(&f, st);
            }
            break;
        }
        case 4:
            i++;
            if (*h != NULL) {
                (void)lp2p__yamux_stream_write(*h, junk,
                                               (size_t)arg * 16 + 1, &acc);
                FUZZ_CHECK(acc <= (size_t)arg * 16 + 1);
            }
            break;
        case 5:
            i++;
            if (*h != NULL) {
                (void)lp2p__yamux_stream_close(*h);
            }
            break;
        case 6:
            i++;
            if (*h != NULL) {
                (void)lp2p__yamux_stream_reset(*h);
            }
            break;
        case 7:
            i++;
            if (*h != NULL) {
                lp2p__yamux_stream_release(*h);
                *h = NULL;
            }
            break;
        case 8:
            i++;
            if (*h != NULL) {
                (void)lp2p__yamux_stream_consume(*h, (size_t)arg * 64);
                (void)lp2p__yamux_stream_accept(*h);
            }
            break;
        case 9:
            i++;
            drain(&f, (size_t)arg * 300);
            break;
        case 10:
            i++;
            if (arg & 1) {
                (void)lp2p__yamux_ping(f.s, NULL);
            } else if (arg & 2) {
                (void)lp2p__yamux_goaway(f.s, arg >> 2);
            } else if (arg & 4) {
                lp2p__yamux_session_sweep(f.s);
            } else {
                f.consume_now = !f.consume_now;
            }
            break;
        default:
            drain(&f, 65536);
            break;
        }
        check_mem(&f);
    }
    drain(&f, 65536);
    lp2p__yamux_session_free(f.s);
}

FUZZ_TARGET(yamux)
{
    if (size == 0) {
        return 0;
    }
    if ((data[0] & 3) == 0) {
        raw(data + 1, size - 1, 1);
        raw(data + 1, size - 1, 0);
    } else {
        program(data + 1, size - 1, data[0] & 4);
    }
    return 0;
}
