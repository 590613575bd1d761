/*
 * Yamux framing overhead: move N MiB through two sessions back to back in
 * memory (no crypto, no sockets) and compare with a plain memcpy of the
 * same bytes in the same chunk size.
 *
 * The yamux path: the application writes 64 KiB chunks into a stream (one
 * copy into the send queue), the sender pulls frames into a 65519-byte
 * buffer (the largest Noise plaintext; second copy), the receiver is fed
 * that buffer and hands the payload to the application zero-copy, which
 * consumes it (window updates flow back). The memcpy baseline copies each
 * chunk once. Medians of RUNS runs; wire overhead = header bytes of all
 * frames (both directions) / payload bytes.
 *
 *   build/bench/bench_yamux [MiB] [streams]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lp2p.h"
#include "p2p/yamux.h"

#define RUNS 5
#define CHUNK 65536
#define WIRE 65519

struct side {
    struct lp2p__yamux_session *s;
    uint64_t rx;
    uint32_t sink;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_event(void *ud, const struct lp2p__yamux_event *ev)
{
    struct side *sd = ud;
    if (ev->type == LP2P__YAMUX_EV_STREAM_OPENED) {
        lp2p__yamux_stream_accept(ev->stream);
    } else if (ev->type == LP2P__YAMUX_EV_DATA) {
        sd->rx += ev->len;
        sd->sink += ev->data[0]; /* touch it, as a reader would */
        lp2p__yamux_stream_consume(ev->stream, ev->len);
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Returns seconds, or a negative value on failure. */
static double run_yamux(uint64_t total, int nstreams, uint64_t *wire)
{
    struct side c, s;
    struct lp2p__yamux_stream *st[64];
    static uint8_t src[CHUNK], buf[WIRE];
    uint64_t sent[64] = {0}, per = total / (uint64_t)nstreams;
    double t0, t;
    int i, done = 0;
    size_t n;
    memset(&c, 0, sizeof(c));
    memset(&s, 0, sizeof(s));
    memset(src, 0x5a, sizeof(src));
    *wire = 0;
    if (lp2p__yamux_session_new(&c.s, 1, NULL, on_event, &c) != 0 ||
        lp2p__yamux_session_new(&s.s, 0, NULL, on_event, &s) != 0) {
        return -1;
    }
    for (i = 0; i < nstreams; i++) {
        if (lp2p__yamux_stream_open(c.s, &st[i]) != 0) {
            return -1;
        }
    }
    t0 = now_s();
    while (s.rx < per * (uint64_t)nstreams) {
        for (i = 0; i < nstreams; i++) {
            while (sent[i] < per) {
                size_t acc, want = CHUNK;
                if (per - sent[i] < want) {
                    want = (size_t)(per - sent[i]);
                }
                if (lp2p__yamux_stream_write(st[i], src, want, &acc) != 0) {
                    return -1;
                }
                sent[i] += acc;
                if (acc < want) {
                    break;
                }
            }
        }
        while ((n = lp2p__yamux_pull(c.s, buf, sizeof(buf))) > 0) {
            *wire += n;
            if (lp2p__yamux_feed(s.s, buf, n) != 0) {
                return -1;
            }
        }
        while ((n = lp2p__yamux_pull(s.s, buf, sizeof(buf))) > 0) {
            *wire += n;
            if (lp2p__yamux_feed(c.s, buf, n) != 0) {
                return -1;
            }
        }
        if (++done > 10000000) {
            return -1;
        }
    }
    t = now_s() - t0;
    if (s.sink == 12345) {
        printf(" ");
    }
    for (i = 0; i < nstreams; i++) {
        lp2p__yamux_stream_release(st[i]);
    }
    lp2p__yamux_session_free(c.s);
    lp2p__yamux_session_free(s.s);
    return t;
}

static double run_memcpy(uint64_t total)
{
    static uint8_t src[CHUNK], dst[CHUNK];
    uint64_t done = 0;
    double t0 = now_s();
    volatile uint32_t sink = 0;
    memset(src, 0x5a, sizeof(src));
    while (done < total) {
        memcpy(dst, src, CHUNK);
        sink += dst[done % CHUNK];
        src[0]++;
        done += CHUNK;
    }
    (void)sink;
    return now_s() - t0;
}

int main(int argc, char **argv)
{
    uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 256;
    int nstreams_list[2] = {1, 16}, k, r;
    uint64_t total = mib * 1024 * 1024, wire = 0;
    double tm[RUNS], ty[RUNS], mc, ym;
    if (argc > 2) {
        nstreams_list[1] = atoi(argv[2]);
        if (nstreams_list[1] < 1 || nstreams_list[1] > 64) {
            nstreams_list[1] = 16;
        }
    }
    for (r = 0; r < RUNS; r++) {
        tm[r] = run_memcpy(total);
    }
    qsort(tm, RUNS, sizeof(double), cmp);
    mc = (double)total / tm[RUNS / 2] / 1e6;
    printf("%-34s %10s %10s %10s\n", "case (median of 5)", "MB/s",
           "vs memcpy", "wire ovh");
    printf("%-34s %10.0f %9.1f%% %10s\n", "memcpy 64 KiB chunks", mc, 100.0,
           "-");
    for (k = 0; k < 2; k++) {
        char name[64];
        for (r = 0; r < RUNS; r++) {
            ty[r] = run_yamux(total, nstreams_list[k], &wire);
            if (ty[r] < 0) {
                fprintf(stderr, "yamux run failed\n");
                return 1;
            }
        }
        qsort(ty, RUNS, sizeof(double), cmp);
        ym = (double)total / ty[RUNS / 2] / 1e6;
        snprintf(name, sizeof(name), "yamux %llu MiB, %d stream(s)",
                 (unsigned long long)mib, nstreams_list[k]);
        printf("%-34s %10.0f %9.1f%% %9.3f%%\n", name, ym, 100.0 * ym / mc,
               100.0 * (double)(wire - total) / (double)total);
    }
    return 0;
}
