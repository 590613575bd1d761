/*
 * p2praft interop MODE MA [options]: our host as the dialing side of the
 * interop checks and benchmarks, with the same modes and output as the
 * reference peers (interop/js/peer.mjs):
 *   dial MA [--expect-agent PREFIX] [--expect-protocol P]...
 *       connect, ping x3, identify, echo 1 MiB and 64 MiB (sha256 both
 *       ways), 50 concurrent echo streams of 256 KiB; "ok NAME ..." or
 *       "FAIL NAME reason" per check; exit 1 if any failed
 *   bench-throughput MA [--bytes N] [--proto sink|echo]
 *   bench-rtt MA [--count N]
 *   bench-connect MA [--count N]
 * Benchmarks print "bench NAME VALUE UNIT key=value...".
 */
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "testproto.h"

#define MiB (1024u * 1024u)
#define CHUNK (64u * 1024u)
#define INFLIGHT 8

struct ctx {
    uv_loop_t loop;
    struct lp2p_host *host;
    struct lp2p_peer_id peer;
    const char *ma;
    int closed;
};

/* Run the loop until *flag is set. */
static void wait_for(struct ctx *c, const int *flag)
{
    while (!*flag) {
        if (uv_run(&c->loop, UV_RUN_ONCE) == 0 && !*flag) {
            break;
        }
    }
}

static double now_ms(void)
{
    return (double)uv_hrtime() / 1e6;
}

/* ---------------------------------------------------------------------
 * Connecting
 */
struct wait {
    int done;
    int status;
    struct lp2p_stream *s;
};

static void on_connected(struct lp2p_host *h, int status,
                         const struct lp2p_peer_id *peer, void *data)
{
    struct wait *w = data;
    struct ctx *c = lp2p_host_loop(h)->data;
    if (status == 0) {
        c->peer = *peer;
    }
    w->status = status;
    w->done = 1;
}

static int do_connect(struct ctx *c)
{
    struct wait w = {0, 0, NULL};
    int rv = lp2p_host_connect(c->host, c->ma, on_connected, &w);
    if (rv != 0) {
        return rv;
    }
    wait_for(c, &w.done);
    return w.status;
}

static void on_open(struct lp2p_stream *s, int status, void *data)
{
    struct wait *w = data;
    w->s = s;
    w->status = status;
    w->done = 1;
}

static int open_stream(struct ctx *c, const char *proto,
                       struct lp2p_stream **out)
{
    struct wait w = {0, 0, NULL};
    const char *protos[1];
    int rv;
    protos[0] = proto;
    rv = lp2p_stream_open(c->host, &c->peer, protos, 1, on_open, &w);
    if (rv != 0) {
        return rv;
    }
    wait_for(c, &w.done);
    *out = w.s;
    return w.status;
}

/* ---------------------------------------------------------------------
 * Echo check: send `total` pseudo-random bytes, hash both directions.
 */
struct echo_job {
    struct ctx *c;
    struct lp2p_stream *s;
    size_t total, queued, recv;
    int inflight;
    uint64_t rng;
    uint8_t (*bufs)[CHUNK];
    unsigned next_buf;
    EVP_MD_CTX *hs, *hr;
    int done;
    int status;
    char err[160];
    char hex[65];
};

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void echo_fail(struct echo_job *j, int status, const char *fmt, ...)
{
    va_list ap;
    if (j->done) {
        return;
    }
    j->done = 1;
    j->status = status != 0 ? status : LP2P_EPROTO;
    va_start(ap, fmt);
    vsnprintf(j->err, sizeof(j->err), fmt, ap);
    va_end(ap);
}

static void echo_fill(struct echo_job *j);

static void echo_written(struct lp2p_stream *s, int status, void *data)
{
    struct echo_job *j = data;
    (void)s;
    j->inflight--;
    if (status != 0) {
        echo_fail(j, status, "write failed: %s", lp2p_strerror(status));
        return;
    }
    echo_fill(j);
}

static void echo_fill(struct echo_job *j)
{
    while (!j->done && j->inflight < INFLIGHT && j->queued < j->total) {
        uint8_t *b = j->bufs[j->next_buf++ % INFLIGHT];
        size_t n = j->total - j->queued < CHUNK ? j->total - j->queued : CHUNK;
        size_t i;
        int rv;
        for (i = 0; i + 8 <= n; i += 8) {
            uint64_t v = xorshift(&j->rng);
            memcpy(b + i, &v, 8);
        }
        for (; i < n; i++) {
            b[i] = (uint8_t)xorshift(&j->rng);
        }
        EVP_DigestUpdate(j->hs, b, n);
        rv = lp2p_stream_write(j->s, b, n, echo_written, j);
        if (rv != 0) {
            echo_fail(j, rv, "write: %s", lp2p_strerror(rv));
            return;
        }
        j->queued += n;
        j->inflight++;
    }
    if (j->queued == j->total && j->inflight == 0 && !j->done) {
        lp2p_stream_close_write(j->s);
    }
}

static void echo_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                      size_t len)
{
    struct echo_job *j = lp2p_stream_data(s);
    uint8_t a[32], b[32];
    unsigned la, lb, i;
    if (j->done) {
        return;
    }
    if (status == 0) {
        EVP_DigestUpdate(j->hr, buf, len);
        j->recv += len;
        return;
    }
    if (status != LP2P_EEOF) {
        echo_fail(j, status, "read after %zu bytes: %s", j->recv,
                  lp2p_strerror(status));
        return;
    }
    EVP_DigestFinal_ex(j->hs, a, &la);
    EVP_DigestFinal_ex(j->hr, b, &lb);
    for (i = 0; i < 32; i++) {
        snprintf(j->hex + 2 * i, 3, "%02x", a[i]);
    }
    if (j->recv != j->total || memcmp(a, b, 32) != 0) {
        echo_fail(j, LP2P_EPROTO, "sent %zu bytes, got back %zu bytes with "
                  "another sha256", j->total, j->recv);
        return;
    }
    j->done = 1;
}

static void echo_open(struct lp2p_stream *s, int status, void *data)
{
    struct echo_job *j = data;
    if (status != 0) {
        echo_fail(j, status, "open %s: %s", CLI_ECHO_PROTOCOL,
                  lp2p_strerror(status));
        return;
    }
    j->s = s;
    lp2p_stream_set_data(s, j);
    lp2p_stream_read_start(s, echo_read);
    echo_fill(j);
}

static int echo_start(struct ctx *c, struct echo_job *j, size_t total,
                      uint64_t seed)
{
    const char *protos[] = {CLI_ECHO_PROTOCOL};
    memset(j, 0, sizeof(*j));
    j->c = c;
    j->total = total;
    j->rng = seed | 1;
    j->bufs = malloc(INFLIGHT * sizeof(*j->bufs));
    j->hs = EVP_MD_CTX_new();
    j->hr = EVP_MD_CTX_new();
    if (j->bufs == NULL || j->hs == NULL || j->hr == NULL) {
        return LP2P_ENOMEM;
    }
    EVP_DigestInit_ex(j->hs, EVP_sha256(), NULL);
    EVP_DigestInit_ex(j->hr, EVP_sha256(), NULL);
    return lp2p_stream_open(c->host, &c->peer, protos, 1, echo_open, j);
}

static void echo_cleanup(struct echo_job *j)
{
    int closed = 0;
    (void)closed;
    if (j->s != NULL) {
        if (j->status != 0) {
            lp2p_stream_reset(j->s);
        }
        lp2p_stream_close(j->s, NULL, NULL);
        j->s = NULL;
    }
    free(j->bufs);
    EVP_MD_CTX_free(j->hs);
    EVP_MD_CTX_free(j->hr);
}

static int all_done(struct echo_job *jobs, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        if (!jobs[i].done) {
            return 0;
        }
    }
    return 1;
}

/* Run `n` echo checks of `size` bytes at once. 0 or the first error. */
static int run_echo(struct ctx *c, int n, size_t size, char *msg, size_t cap)
{
    struct echo_job *jobs = calloc((size_t)n, sizeof(*jobs));
    int i, rv = 0, flag = 0;
    for (i = 0; i < n; i++) {
        rv = echo_start(c, &jobs[i], size, 0x9e3779b97f4a7c15ull * (i + 1));
        if (rv != 0) {
            jobs[i].done = 1;
            jobs[i].status = rv;
            snprintf(jobs[i].err, sizeof(jobs[i].err), "open: %s",
                     lp2p_strerror(rv));
        }
    }
    while (!all_done(jobs, n)) {
        if (uv_run(&c->loop, UV_RUN_ONCE) == 0) {
            break;
        }
    }
    (void)flag;
    rv = 0;
    for (i = 0; i < n; i++) {
        if (!jobs[i].done) {
            jobs[i].status = LP2P_ECLOSED;
            snprintf(jobs[i].err, sizeof(jobs[i].err), "did not finish");
        }
        if (jobs[i].status != 0 && rv == 0) {
            rv = jobs[i].status;
            snprintf(msg, cap, "stream %d: %s", i, jobs[i].err);
        }
    }
    if (rv == 0) {
        snprintf(msg, cap, "sha256=%s", jobs[0].hex);
    }
    for (i = 0; i < n; i++) {
        echo_cleanup(&jobs[i]);
    }
    free(jobs);
    return rv;
}

/* ---------------------------------------------------------------------
 * dial mode
 */
struct ping_wait {
    int done, status;
    uint64_t rtt;
};

static void on_ping(struct lp2p_host *h, int status, uint64_t rtt, void *data)
{
    struct ping_wait *w = data;
    (void)h;
    w->done = 1;
    w->status = status;
    w->rtt = rtt;
}

struct id_wait {
    int done, status;
    char agent[256], pv[64];
    char protos[2048];
    char **want;
    size_t n_want;
    const char *expect_agent;
    char missing[512];
};

static void on_identify(struct lp2p_host *h, int status,
                        const struct lp2p_identify_info *info, void *data)
{
    struct id_wait *w = data;
    size_t i, k, off = 0;
    (void)h;
    w->done = 1;
    w->status = status;
    if (status != 0) {
        return;
    }
    snprintf(w->agent, sizeof(w->agent), "%s",
             info->agent_version ? info->agent_version : "");
    snprintf(w->pv, sizeof(w->pv), "%s",
             info->protocol_version ? info->protocol_version : "");
    for (i = 0; i < info->n_protocols && off < sizeof(w->protos); i++) {
        int n = snprintf(w->protos + off, sizeof(w->protos) - off, "%s%s",
                         i ? "," : "", info->protocols[i]);
        if (n < 0) {
            break;
        }
        off += (size_t)n;
    }
    off = 0;
    for (k = 0; k < w->n_want; k++) {
        int found = 0;
        for (i = 0; i < info->n_protocols; i++) {
            if (strcmp(info->protocols[i], w->want[k]) == 0) {
                found = 1;
            }
        }
        if (!found && off < sizeof(w->missing)) {
            int n = snprintf(w->missing + off, sizeof(w->missing) - off,
                             "%s%s", off ? "," : "", w->want[k]);
            if (n > 0) {
                off += (size_t)n;
            }
        }
    }
}

static int check_line(int ok, const char *name, const char *msg)
{
    printf("%s %s%s%s\n", ok ? "ok" : "FAIL", name, msg[0] ? " " : "", msg);
    fflush(stdout);
    return ok ? 0 : 1;
}

static int mode_dial(struct ctx *c, const char *expect_agent, char **want,
                     size_t n_want)
{
    char msg[4096], id[LP2P_PEER_ID_STRMAX];
    int failed = 0, rv, i;
    double t0 = now_ms();
    rv = do_connect(c);
    if (rv != 0) {
        if (rv == LP2P_EBADADDR) {
            cli_addr_error("interop", "dial", c->ma, rv);
        }
        snprintf(msg, sizeof(msg), "%s", lp2p_strerror(rv));
        check_line(0, "connect", msg);
        return 1;
    }
    lp2p_peer_id_to_string(&c->peer, id, sizeof(id));
    snprintf(msg, sizeof(msg), "peer=%s encryption=/noise muxer=/yamux/1.0.0 "
             "ms=%.2f", id, now_ms() - t0);
    check_line(1, "connect", msg);
    {
        char rtts[128] = "";
        size_t off = 0;
        for (i = 0; i < 3; i++) {
            struct ping_wait pw = {0, 0, 0};
            rv = lp2p_host_ping(c->host, &c->peer, on_ping, &pw);
            if (rv == 0) {
                wait_for(c, &pw.done);
                rv = pw.status;
            }
            if (rv != 0) {
                break;
            }
            off += (size_t)snprintf(rtts + off, sizeof(rtts) - off, "%s%.2f",
                                    i ? "," : "", (double)pw.rtt / 1e6);
        }
        if (rv != 0) {
            snprintf(msg, sizeof(msg), "%s", lp2p_strerror(rv));
        } else {
            snprintf(msg, sizeof(msg), "rtt_ms=%s", rtts);
        }
        failed += check_line(rv == 0, "ping", msg);
    }
    {
        struct id_wait w;
        memset(&w, 0, sizeof(w));
        w.want = want;
        w.n_want = n_want;
        rv = lp2p_host_identify(c->host, &c->peer, on_identify, &w);
        if (rv == 0) {
            wait_for(c, &w.done);
            rv = w.status;
        }
        if (rv != 0) {
            snprintf(msg, sizeof(msg), "%s", lp2p_strerror(rv));
            failed += check_line(0, "identify", msg);
        } else {
            int ok = 1;
            char head[64] = "";
            snprintf(msg, sizeof(msg),
                     "agent=\"%s\" protocolVersion=\"%s\" protocols=%s",
                     w.agent, w.pv, w.protos);
            if (expect_agent != NULL &&
                strncmp(w.agent, expect_agent, strlen(expect_agent)) != 0) {
                ok = 0;
                snprintf(head, sizeof(head), "agent does not start with "
                         "\"%.20s\": ", expect_agent);
            } else if (w.missing[0] != '\0') {
                ok = 0;
                snprintf(head, sizeof(head), "missing protocols: ");
            }
            if (!ok) {
                char full[8300];
                snprintf(full, sizeof(full), "%s%s%s", head,
                         w.missing[0] ? w.missing : "", msg);
                failed += check_line(0, "identify", full);
            } else {
                failed += check_line(1, "identify", msg);
            }
        }
    }
    {
        static const struct {
            const char *name;
            size_t size;
        } sizes[] = {{"echo-1MiB", MiB}, {"echo-64MiB", 64 * MiB}};
        size_t k;
        for (k = 0; k < 2; k++) {
            char m2[512];
            t0 = now_ms();
            rv = run_echo(c, 1, sizes[k].size, m2, sizeof(m2));
            if (rv == 0) {
                snprintf(msg, sizeof(msg), "bytes=%zu %s ms=%.1f",
                         sizes[k].size, m2, now_ms() - t0);
            } else {
                snprintf(msg, sizeof(msg), "%s", m2);
            }
            failed += check_line(rv == 0, sizes[k].name, msg);
        }
    }
    {
        char m2[512];
        t0 = now_ms();
        rv = run_echo(c, 50, 256 * 1024, m2, sizeof(m2));
        if (rv == 0) {
            snprintf(msg, sizeof(msg), "streams=50 bytes_each=262144 ms=%.1f",
                     now_ms() - t0);
        } else {
            snprintf(msg, sizeof(msg), "%s", m2);
        }
        failed += check_line(rv == 0, "echo-50-concurrent", msg);
    }
    return failed == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------------
 * Benchmarks
 */
struct tp_job {
    struct lp2p_stream *s;
    size_t total, queued;
    int inflight;
    uint8_t *buf;
    uint8_t reply[8];
    size_t reply_len, recv;
    int done, status;
};

static void tp_fill(struct tp_job *j);

static void tp_written(struct lp2p_stream *s, int status, void *data)
{
    struct tp_job *j = data;
    (void)s;
    j->inflight--;
    if (status != 0 && !j->done) {
        j->done = 1;
        j->status = status;
        return;
    }
    tp_fill(j);
}

static void tp_fill(struct tp_job *j)
{
    while (!j->done && j->inflight < INFLIGHT && j->queued < j->total) {
        size_t n = j->total - j->queued < CHUNK ? j->total - j->queued : CHUNK;
        if (lp2p_stream_write(j->s, j->buf, n, tp_written, j) != 0) {
            j->done = 1;
            j->status = LP2P_ECLOSED;
            return;
        }
        j->queued += n;
        j->inflight++;
    }
    if (j->queued == j->total && j->inflight == 0 && !j->done) {
        lp2p_stream_close_write(j->s);
    }
}

static void tp_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                    size_t len)
{
    struct tp_job *j = lp2p_stream_data(s);
    if (status == 0) {
        size_t take = 8 - j->reply_len < len ? 8 - j->reply_len : len;
        memcpy(j->reply + j->reply_len, buf, take);
        j->reply_len += take;
        j->recv += len;
        return;
    }
    j->done = 1;
    j->status = status == LP2P_EEOF ? 0 : status;
}

static int tp_run(struct ctx *c, const char *proto, size_t total,
                  double *secs)
{
    struct tp_job j;
    double t0;
    int rv, i;
    uint64_t count = 0;
    memset(&j, 0, sizeof(j));
    rv = open_stream(c, proto, &j.s);
    if (rv != 0) {
        return rv;
    }
    j.total = total;
    j.buf = calloc(1, CHUNK);
    lp2p_stream_set_data(j.s, &j);
    lp2p_stream_read_start(j.s, tp_read);
    t0 = now_ms();
    tp_fill(&j);
    wait_for(c, &j.done);
    *secs = (now_ms() - t0) / 1e3;
    lp2p_stream_close(j.s, NULL, NULL);
    free(j.buf);
    if (j.status != 0) {
        return j.status;
    }
    if (strcmp(proto, CLI_SINK_PROTOCOL) == 0) {
        for (i = 0; i < 8; i++) {
            count = count << 8 | j.reply[i];
        }
        if (j.reply_len != 8 || count != total) {
            fprintf(stderr, "sink replied %llu, expected %zu\n",
                    (unsigned long long)count, total);
            return LP2P_EPROTO;
        }
    } else if (j.recv != total) {
        fprintf(stderr, "echo returned %zu of %zu bytes\n", j.recv, total);
        return LP2P_EPROTO;
    }
    return 0;
}

static int mode_throughput(struct ctx *c, size_t bytes, const char *proto)
{
    double secs;
    int rv = do_connect(c);
    if (rv == 0) {
        rv = tp_run(c, proto, MiB, &secs); /* warm-up */
    }
    if (rv == 0) {
        rv = tp_run(c, proto, bytes, &secs);
    }
    if (rv != 0) {
        cli_error("interop", "bench-throughput", rv);
        return 1;
    }
    printf("bench throughput %.3f Gbit/s bytes=%zu seconds=%.4f proto=%s\n",
           (double)bytes * 8 / secs / 1e9, bytes, secs, proto);
    return 0;
}

struct rtt_job {
    size_t got;
    int done, status;
};

static void rtt_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                     size_t len)
{
    struct rtt_job *j = lp2p_stream_data(s);
    (void)buf;
    if (status != 0) {
        j->status = status;
        j->done = 1;
        return;
    }
    j->got += len;
    if (j->got >= 64) {
        j->done = 1;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *sorted, long n, double p)
{
    long i = (long)(p * (double)n + 0.999999) - 1;
    if (i < 0) {
        i = 0;
    }
    if (i >= n) {
        i = n - 1;
    }
    return sorted[i];
}

static int mode_rtt(struct ctx *c, long count)
{
    struct lp2p_stream *s;
    struct rtt_job j;
    uint8_t msg[64];
    double *samples = calloc((size_t)count, sizeof(double)), mean = 0;
    long warm = count < 1000 ? count : 1000, i;
    int rv = do_connect(c);
    if (rv == 0) {
        rv = open_stream(c, CLI_ECHO_PROTOCOL, &s);
    }
    if (rv != 0) {
        cli_error("interop", "bench-rtt", rv);
        free(samples);
        return 1;
    }
    memset(msg, 0x5a, sizeof(msg));
    memset(&j, 0, sizeof(j));
    lp2p_stream_set_data(s, &j);
    lp2p_stream_read_start(s, rtt_read);
    for (i = 0; i < warm + count; i++) {
        uint64_t t0 = uv_hrtime();
        j.done = 0;
        j.got = 0;
        rv = lp2p_stream_write(s, msg, 64, NULL, NULL);
        if (rv == 0) {
            wait_for(c, &j.done);
            rv = j.status;
        }
        if (rv != 0) {
            cli_error("interop", "bench-rtt", rv);
            free(samples);
            return 1;
        }
        if (i >= warm) {
            samples[i - warm] = (double)(uv_hrtime() - t0) / 1e3;
            mean += samples[i - warm];
        }
    }
    qsort(samples, (size_t)count, sizeof(double), cmp_double);
    printf("bench rtt_p50 %.1f us count=%ld size=64\n",
           pct(samples, count, 0.5), count);
    printf("bench rtt_p99 %.1f us count=%ld size=64\n",
           pct(samples, count, 0.99), count);
    printf("bench rtt_mean %.1f us count=%ld size=64\n",
           mean / (double)count, count);
    lp2p_stream_close(s, NULL, NULL);
    free(samples);
    return 0;
}

static int connect_once(struct ctx *c, double *ms)
{
    struct lp2p_stream *s;
    struct rtt_job j;
    uint8_t b = 0x2a;
    uint64_t t0 = uv_hrtime();
    int rv = do_connect(c);
    if (rv == 0) {
        rv = open_stream(c, CLI_ECHO_PROTOCOL, &s);
    }
    if (rv != 0) {
        return rv;
    }
    memset(&j, 0, sizeof(j));
    lp2p_stream_set_data(s, &j);
    lp2p_stream_read_start(s, rtt_read);
    rv = lp2p_stream_write(s, &b, 1, NULL, NULL);
    while (rv == 0 && j.got < 1 && !j.status) {
        uv_run(&c->loop, UV_RUN_ONCE);
    }
    *ms = (double)(uv_hrtime() - t0) / 1e6;
    lp2p_stream_close(s, NULL, NULL);
    lp2p_host_disconnect(c->host, &c->peer);
    return rv != 0 ? rv : j.status;
}

static int mode_connect(struct ctx *c, long count)
{
    double *samples = calloc((size_t)count, sizeof(double)), ms = 0;
    long i, warm = count < 20 ? count : 20;
    int rv = 0;
    for (i = 0; i < warm + count && rv == 0; i++) {
        rv = connect_once(c, &ms);
        if (i >= warm) {
            samples[i - warm] = ms;
        }
    }
    if (rv != 0) {
        cli_error("interop", "bench-connect", rv);
        free(samples);
        return 1;
    }
    qsort(samples, (size_t)count, sizeof(double), cmp_double);
    printf("bench connect_p50 %.3f ms count=%ld\n", pct(samples, count, 0.5),
           count);
    printf("bench connect_p99 %.3f ms count=%ld\n", pct(samples, count, 0.99),
           count);
    free(samples);
    return 0;
}

/* ---------------------------------------------------------------------
 * Command
 */
static const char usage[] =
    "usage: p2praft interop MODE MA [options]\n"
    "  dial MA [--expect-agent PREFIX] [--expect-protocol P]...\n"
    "        ping, identify, echo 1 MiB and 64 MiB, 50 concurrent echo "
    "streams\n"
    "  bench-throughput MA [--bytes N] [--proto sink|echo]\n"
    "  bench-rtt MA [--count N]\n"
    "  bench-connect MA [--count N]\n"
    "any mode: [--busy-poll-us N]  the dialing host busy-polls N us after "
    "activity\n"
    "        (lp2p_host_config.busy_poll_us; 0 = off, the default)\n";

static void on_host_closed(struct lp2p_host *h, void *data)
{
    (void)h;
    *(int *)data = 1;
}

static int run(int argc, char **argv)
{
    struct ctx c;
    const char *mode, *expect_agent = NULL, *proto = CLI_SINK_PROTOCOL;
    char *want[32];
    size_t n_want = 0, bytes = 1024 * MiB;
    long count = 0;
    struct lp2p_host_config hc;
    int i, rv;
    char *end;
    memset(&c, 0, sizeof(c));
    lp2p_host_config_init(&hc);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    mode = argv[1];
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' && c.ma == NULL) {
            c.ma = a; /* the multiaddr may come anywhere */
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "p2praft interop: %s needs a value\n%s", a, usage);
            return 2;
        }
        if (strcmp(a, "--expect-agent") == 0) {
            expect_agent = argv[++i];
        } else if (strcmp(a, "--expect-protocol") == 0 && n_want < 32) {
            want[n_want++] = argv[++i];
        } else if (strcmp(a, "--bytes") == 0) {
            bytes = (size_t)strtoull(argv[++i], &end, 10);
            if (*end != '\0' || bytes == 0) {
                fprintf(stderr, "p2praft interop: bad --bytes\n");
                return 2;
            }
        } else if (strcmp(a, "--count") == 0) {
            count = strtol(argv[++i], &end, 10);
            if (*end != '\0' || count <= 0) {
                fprintf(stderr, "p2praft interop: bad --count\n");
                return 2;
            }
        } else if (strcmp(a, "--busy-poll-us") == 0) {
            if (cli_busy_poll_us(argv[++i], &hc.busy_poll_us) != 0) {
                fprintf(stderr, "p2praft interop: bad --busy-poll-us (0 to "
                                "%u)\n", LP2P_BUSY_POLL_US_MAX);
                return 2;
            }
        } else if (strcmp(a, "--proto") == 0) {
            i++;
            if (strcmp(argv[i], "sink") == 0) {
                proto = CLI_SINK_PROTOCOL;
            } else if (strcmp(argv[i], "echo") == 0) {
                proto = CLI_ECHO_PROTOCOL;
            } else {
                fprintf(stderr, "p2praft interop: --proto sink|echo\n");
                return 2;
            }
        } else {
            fprintf(stderr, "p2praft interop: unknown argument %s\n%s", a,
                    usage);
            return 2;
        }
    }
    if (c.ma == NULL) {
        fprintf(stderr, "p2praft interop: %s needs a multiaddr\n%s", mode,
                usage);
        return 2;
    }
    uv_loop_init(&c.loop);
    c.loop.data = &c;
    rv = lp2p_host_new(&c.host, &c.loop, &hc);
    if (rv == 0) {
        rv = cli_serve_test_protocols(c.host);
    }
    if (rv != 0) {
        cli_error("interop", "cannot create a host", rv);
        return 1;
    }
    if (strcmp(mode, "dial") == 0) {
        rv = mode_dial(&c, expect_agent, want, n_want);
    } else if (strcmp(mode, "bench-throughput") == 0) {
        rv = mode_throughput(&c, bytes, proto);
    } else if (strcmp(mode, "bench-rtt") == 0) {
        rv = mode_rtt(&c, count ? count : 10000);
    } else if (strcmp(mode, "bench-connect") == 0) {
        rv = mode_connect(&c, count ? count : 200);
    } else {
        fprintf(stderr, "p2praft interop: unknown mode '%s'\n%s", mode, usage);
        rv = 2;
    }
    lp2p_host_close(c.host, on_host_closed, &c.closed);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    uv_loop_close(&c.loop);
    return rv;
}

const struct cli_command cli_cmd_interop = {
    "interop", "drive interop checks and benchmarks against a peer", run};
