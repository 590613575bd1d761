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
 * chunk once; "memcpy twice" copies it through a 256 KiB buffer, the
 * floor for two copies. Medians of RUNS runs; wire overhead = header bytes of all
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

#define RUNS 7
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

/* copies: 1 for the plain baseline, 2 for yamux's own copy count (into
 * the send queue, then into the wire buffer). */
static double run_memcpy(uint64_t total, int copies)
{
    static uint8_t src[CHUNK], mid[4 * CHUNK], dst[CHUNK];
    uint64_t done = 0;
    double t0 = now_s();
    volatile uint32_t sink = 0;
    size_t m = 0;
    memset(src, 0x5a, sizeof(src));
    while (done < total) {
        if (copies == 2) {
            memcpy(mid + m, src, CHUNK);
            memcpy(dst, mid + m, CHUNK);
            m = (m + CHUNK) % sizeof(mid);
        } else {
            memcpy(dst, src, CHUNK);
        }
        sink += dst[done % CHUNK];
        src[0]++;
        done += CHUNK;
    }
    (void)sink;
    return now_s() - t0;
}

int main(int argc, char **argv)
{
    uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 1024;
    int ns[2] = {1, 16}, c, r;
    uint64_t total = mib * 1024 * 1024, wire[2] = {0, 0};
    /* t[case][run]; cases: memcpy, memcpy twice, yamux ns[0], yamux ns[1].
     * Runs interleave the cases, so a noisy neighbour hits all alike. */
    double t[4][RUNS], mbs[4];
    const char *names[2] = {"memcpy 64 KiB chunks",
                            "memcpy twice (yamux's copies)"};
    if (argc > 2) {
        ns[1] = atoi(argv[2]);
        if (ns[1] < 1 || ns[1] > 64) {
            ns[1] = 16;
        }
    }
    for (r = 0; r < RUNS; r++) {
        t[0][r] = run_memcpy(total, 1);
        t[1][r] = run_memcpy(total, 2);
        for (c = 0; c < 2; c++) {
            t[2 + c][r] = run_yamux(total, ns[c], &wire[c]);
            if (t[2 + c][r] < 0) {
                fprintf(stderr, "yamux run failed\n");
                return 1;
            }
        }
    }
    for (c = 0; c < 4; c++) {
        qsort(t[c], RUNS, sizeof(double), cmp);
        mbs[c] = (double)total / t[c][RUNS / 2] / 1e6;
    }
    printf("%-34s %10s %10s %10s\n", "case (median of 7, interleaved)",
           "MB/s", "vs memcpy", "wire ovh");
    for (c = 0; c < 2; c++) {
        printf("%-34s %10.0f %9.1f%% %10s\n", names[c], mbs[c],
               100.0 * mbs[c] / mbs[0], "-");
    }
    for (c = 0; c < 2; c++) {
        char name[64];
        snprintf(name, sizeof(name), "yamux %llu MiB, %d stream(s)",
                 (unsigned long long)mib, ns[c]);
        printf("%-34s %10.0f %9.1f%% %9.3f%%\n", name, mbs[2 + c],
               100.0 * mbs[2 + c] / mbs[0],
               100.0 * (double)(wire[c] - total) / (double)total);
    }
    return 0;
}
