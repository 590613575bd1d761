/*
 * faults-client: the workload of the fault harness (test/faults/run.sh).
 *
 * Several worker threads send consistent gets, sets and compare-and-sets on
 * a few keys to every node's API socket (the frame format of p2praft.h, one
 * connection per request), and append each operation to a history file as
 * one JSON line: who (process), what (op, key, arguments), when
 * (invocation and completion, monotonic ns since the start) and the
 * outcome. interop/go/linearize checks that history with porcupine.
 *
 * Outcomes: "ok", "notfound" (get), "mismatch" (cas): the node answered and
 * the answer is definite; "fail": surely not applied (the request never
 * reached a node whole, or the node said so: see outcome_of()); "unknown":
 * it may or may not have been applied (a timeout, a broken connection after
 * the request was sent, an UNKNOWN answer). A process whose operation ended
 * "unknown" takes a new process number, as its operation stays open for
 * ever.
 *
 * Keys rotate: each of the --keys key slots moves to a new key every
 * --key-period-ms, and after --max-unknown of its writes ended unknown, so
 * that each key's history stays small enough for the checker (see struct
 * slot). After an answer that is not definite a worker backs off for
 * 20 ms, as a client would. On SIGTERM
 * or SIGINT (or after --secs) the workers finish their operation, then a
 * consistent read of every key that was used is retried on every node
 * until it gets a definite answer (--final-ms bounds it), and the history
 * is closed with an "end" line.
 *
 * Exit status: 0 after a complete run (whatever the cluster did), 2 usage,
 * 1 the history could not be written.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "p2praft.h"
#include "raft/api.h"

#define MAX_NODES 16
#define MAX_WORKERS 64
#define MAX_KEYS 16
#define TAG_MAX 48
#define VAL_MAX 4096

enum outcome { OUT_OK, OUT_NOTFOUND, OUT_MISMATCH, OUT_FAIL, OUT_UNKNOWN };

static const char *outcome_name[] = {"ok", "notfound", "mismatch", "fail",
                                     "unknown"};

struct opts {
    const char *api[MAX_NODES];
    unsigned n_nodes;
    const char *history;
    unsigned workers, keys, key_period_ms, max_unknown, timeout_ms,
        value_size, rate, secs, final_ms;
    uint64_t seed;
    bool plain_reads;
};

static struct opts o = {
    .workers = 8,
    .keys = 3,
    .key_period_ms = 5000,
    .max_unknown = 10,
    .timeout_ms = 10000,
    .value_size = 0,
    .rate = 0,
    .secs = 0,
    .final_ms = 60000,
};

static FILE *hist;
static pthread_mutex_t hist_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool running = true;
static uint64_t t0_mono;

/* The --keys key slots. Slot i uses key "k<i>.<ver>"; ver moves on every
 * --key-period-ms, and as soon as --max-unknown writes to the current key
 * ended unknown: each of those stays open until the end of the history,
 * and the checker's work grows exponentially with how many overlap. */
static struct slot {
    unsigned ver;
    long period;
    unsigned unknown;   /* writes to this version that ended unknown */
    char last[TAG_MAX]; /* last value known: the next cas's expected one */
} slots[MAX_KEYS];
static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t since_t0(void)
{
    return (int64_t)(mono_ns() - t0_mono);
}

/* xorshift64*: each worker has its own, seeded from --seed. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* ---- the wire: the node's own codec (src/raft/api.c) ------------------ */

/*
 * What an answer means for the history: the one place that maps API
 * statuses (p2praft.h) to outcomes. FAILED, BAD REQUEST, NOT LEADER and
 * BUSY say "surely not applied", and the checker holds the node to it: such
 * a write must never show up. UNKNOWN, and any status this client does not
 * know, may have been applied. NOT CAUGHT UP only answers plain reads.
 */
static enum outcome outcome_of(uint8_t op, uint8_t status)
{
    switch (status) {
    case P2PRAFT_API_OK:
        return OUT_OK;
    case P2PRAFT_API_NOTFOUND:
        return op == P2PRAFT_API_GET ? OUT_NOTFOUND : OUT_UNKNOWN;
    case P2PRAFT_API_MISMATCH:
        return op == P2PRAFT_API_CAS ? OUT_MISMATCH : OUT_UNKNOWN;
    case P2PRAFT_API_FAILED:
    case P2PRAFT_API_BADREQ:
    case P2PRAFT_API_NOTLEADER:
    case P2PRAFT_API_BUSY:
    case P2PRAFT_API_NOTCAUGHTUP:
        return OUT_FAIL;
    default: /* P2PRAFT_API_UNKNOWN, or a status from a newer node */
        return OUT_UNKNOWN;
    }
}

/* Wait for `events` on fd until deadline (mono ns): 0, or -1 (errno). */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        uint64_t now = mono_ns();
        int rv;
        if (now >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        rv = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
        if (rv > 0) {
            return 0;
        }
        if (rv < 0 && errno != EINTR) {
            return -1;
        }
    }
}

/* Move len bytes; *done counts what moved (so a caller knows whether a
 * request went out whole). 0 or -1 (errno). */
static int io_all(int fd, uint8_t *p, size_t len, bool wr, uint64_t deadline,
                  size_t *done)
{
    while (len > 0) {
        ssize_t n;
        if (wait_fd(fd, wr ? POLLOUT : POLLIN, deadline) != 0) {
            return -1;
        }
        n = wr ? send(fd, p, len, MSG_NOSIGNAL) : recv(fd, p, len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = ECONNRESET;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
        if (done != NULL) {
            *done += (size_t)n;
        }
    }
    return 0;
}

struct result {
    enum outcome out;
    bool sent; /* the whole request reached the node's socket */
    uint8_t value[VAL_MAX + 1];
    size_t vlen;
    char msg[160];
};

/* One request to the node at `path`; fills *res. */
static void call(const char *path, const struct p2praft__api_req *q,
                 struct result *res)
{
    struct sockaddr_un sa;
    uint64_t deadline = mono_ns() + (uint64_t)o.timeout_ms * 1000000u;
    uint8_t *frame, hdr[P2PRAFT__API_PREFIX], *body = NULL;
    struct p2praft__api_resp resp;
    size_t len, sent = 0;
    uint32_t rlen;
    int fd;
    struct p2praft__api_req wire = *q;

    memset(res, 0, offsetof(struct result, value));
    res->msg[0] = '\0';
    /* API version 2: every request carries an id (not 0); one request per
     * connection here, so any will do. */
    wire.id = 1;
    frame = p2praft__api_request_encode(&wire, &len);
    if (frame == NULL) {
        res->out = OUT_FAIL;
        snprintf(res->msg, sizeof(res->msg), "out of memory");
        return;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        res->out = OUT_FAIL;
        snprintf(res->msg, sizeof(res->msg), "socket: %s", strerror(errno));
        p2praft_free(frame);
        return;
    }
    /* A unix socket connects at once or fails: nothing was sent. */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        res->out = OUT_FAIL;
        snprintf(res->msg, sizeof(res->msg), "connect: %s", strerror(errno));
        p2praft_free(frame);
        close(fd);
        return;
    }
    if (io_all(fd, frame, len, true, deadline, &sent) != 0) {
        /* Only a whole frame can be parsed, let alone applied. */
        res->out = sent == len ? OUT_UNKNOWN : OUT_FAIL;
        res->sent = sent == len;
        snprintf(res->msg, sizeof(res->msg), "send: %s", strerror(errno));
        p2praft_free(frame);
        close(fd);
        return;
    }
    p2praft_free(frame);
    res->sent = true;
    res->out = OUT_UNKNOWN;
    if (io_all(fd, hdr, sizeof(hdr), false, deadline, NULL) != 0) {
        snprintf(res->msg, sizeof(res->msg), "no answer: %s",
                 errno == ETIMEDOUT ? "client timeout" : strerror(errno));
        close(fd);
        return;
    }
    if (p2praft__api_frame(hdr, sizeof(hdr), &rlen) == LP2P_ETOOBIG ||
        (body = malloc(rlen + 1)) == NULL ||
        io_all(fd, body, rlen, false, deadline, NULL) != 0 ||
        p2praft__api_response_parse(&resp, body, rlen) != 0) {
        snprintf(res->msg, sizeof(res->msg), "bad or partial answer (%" PRIu32
                 " bytes)", rlen);
        free(body);
        close(fd);
        return;
    }
    close(fd);
    res->out = outcome_of(q->op, resp.status);
    if (resp.status == P2PRAFT_API_OK && q->op == P2PRAFT_API_GET) {
        res->vlen = resp.len < VAL_MAX ? resp.len : VAL_MAX;
        memcpy(res->value, resp.payload, res->vlen);
    } else if (res->out == OUT_UNKNOWN || res->out == OUT_FAIL) {
        snprintf(res->msg, sizeof(res->msg), "status %u: %.*s", resp.status,
                 (int)(resp.len < 120 ? resp.len : 120),
                 (const char *)resp.payload);
    }
    free(body);
}

/* ---- values ----------------------------------------------------------- */

/* The bytes written for a tag: the tag, then '=' and 'x' padding up to
 * --value-size when it is set (so that the log fills the disk faster). */
static size_t value_of(const char *tag, uint8_t *out)
{
    size_t n = strlen(tag), i;
    memcpy(out, tag, n);
    if (o.value_size > n + 1) {
        out[n] = '=';
        for (i = n + 1; i < o.value_size; i++) {
            out[i] = 'x';
        }
        n = o.value_size;
    }
    return n;
}

/* The tag a read value carries, or "CORRUPT:..." when the padding was
 * damaged (which no write produced, so the checker rejects it). */
static void tag_of(const uint8_t *v, size_t len, char *tag, size_t cap)
{
    const uint8_t *eq = memchr(v, '=', len);
    size_t tl = eq != NULL ? (size_t)(eq - v) : len, i;
    bool good = tl < cap && (eq == NULL || len == o.value_size);
    for (i = tl + 1; good && eq != NULL && i < len; i++) {
        good = v[i] == 'x';
    }
    if (good) {
        memcpy(tag, v, tl);
        tag[tl] = '\0';
        return;
    }
    snprintf(tag, cap, "CORRUPT:%zu:%.*s", len, (int)(len < 16 ? len : 16),
             (const char *)v);
}

/* ---- the history ------------------------------------------------------ */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
        } else if (c < 0x20 || c >= 0x7f) {
            fprintf(f, "\\u%04x", c);
        } else {
            fputc(c, f);
        }
    }
    fputc('"', f);
}

struct op_rec {
    int proc, node;
    uint8_t op;
    bool final;
    const char *key, *exp, *val; /* tags */
    int64_t call, ret;
    const struct result *res;
    const char *got; /* tag read */
};

static const char *op_name(uint8_t op)
{
    return op == P2PRAFT_API_GET ? "get" : op == P2PRAFT_API_SET ? "set"
                                                                  : "cas";
}

static void record(const struct op_rec *r)
{
    pthread_mutex_lock(&hist_mu);
    fprintf(hist, "{\"type\":\"op\",\"proc\":%d,\"node\":%d,\"op\":\"%s\","
                  "\"key\":",
            r->proc, r->node, op_name(r->op));
    json_str(hist, r->key);
    if (r->exp != NULL) {
        fputs(",\"exp\":", hist);
        json_str(hist, r->exp);
    }
    if (r->val != NULL) {
        fputs(",\"val\":", hist);
        json_str(hist, r->val);
    }
    fprintf(hist, ",\"call\":%" PRId64 ",\"ret\":%" PRId64
                  ",\"res\":\"%s\",\"sent\":%s",
            r->call, r->ret, outcome_name[r->res->out],
            r->res->sent ? "true" : "false");
    if (r->got != NULL) {
        fputs(",\"got\":", hist);
        json_str(hist, r->got);
    }
    if (r->final) {
        fputs(",\"final\":true", hist);
    }
    if (r->res->msg[0] != '\0') {
        fputs(",\"msg\":", hist);
        json_str(hist, r->res->msg);
    }
    fputs("}\n", hist);
    pthread_mutex_unlock(&hist_mu);
}

/* ---- workers ---------------------------------------------------------- */

static void key_name(unsigned slot, unsigned ver, char *out, size_t cap)
{
    snprintf(out, cap, "k%u.%u", slot, ver);
}

/* The key slot i stands for now (its name into key), and the expected
 * value for a cas on it. Returns the key's version. */
static unsigned slot_key(unsigned i, char *key, size_t cap, char *last)
{
    long period = since_t0() / ((int64_t)o.key_period_ms * 1000000);
    struct slot *sl = &slots[i];
    unsigned ver;
    pthread_mutex_lock(&slots_mu);
    if (sl->period != period || sl->unknown >= o.max_unknown) {
        sl->ver++;
        sl->period = period;
        sl->unknown = 0;
        sl->last[0] = '\0';
    }
    ver = sl->ver;
    snprintf(last, TAG_MAX, "%s", sl->last);
    pthread_mutex_unlock(&slots_mu);
    key_name(i, ver, key, cap);
    return ver;
}

/* What an operation on version ver of slot i taught us: the value it holds
 * (tag, or NULL), whether a write's outcome is unknown. */
static void slot_done(unsigned i, unsigned ver, const char *tag,
                      bool unknown_write)
{
    struct slot *sl = &slots[i];
    pthread_mutex_lock(&slots_mu);
    if (sl->ver == ver) {
        if (tag != NULL) {
            snprintf(sl->last, TAG_MAX, "%.*s", TAG_MAX - 1, tag);
        }
        sl->unknown += unknown_write;
    }
    pthread_mutex_unlock(&slots_mu);
}

struct worker {
    pthread_t th;
    unsigned id;
    uint64_t rng;
};

static void pace(uint64_t *next)
{
    uint64_t now = mono_ns();
    if (o.rate == 0) {
        return;
    }
    *next += 1000000000ull * o.workers / o.rate;
    if (*next > now) {
        struct timespec ts = {(time_t)((*next - now) / 1000000000u),
                              (long)((*next - now) % 1000000000u)};
        nanosleep(&ts, NULL);
    } else {
        *next = now; /* behind: no catching up in a burst */
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    static struct result results[MAX_WORKERS];
    struct result *res = &results[w->id];
    int proc = (int)w->id;
    uint64_t seq = 0, next = mono_ns();
    while (atomic_load(&running)) {
        struct p2praft__api_req q;
        char key[32], tag[TAG_MAX], exp[TAG_MAX], got[TAG_MAX + 32];
        uint8_t val[VAL_MAX], expv[VAL_MAX];
        unsigned k = (unsigned)(rnd(&w->rng) % o.keys), ver;
        unsigned node = (unsigned)(rnd(&w->rng) % o.n_nodes);
        unsigned dice = (unsigned)(rnd(&w->rng) % 10);
        struct op_rec r;
        ver = slot_key(k, key, sizeof(key), exp);
        memset(&q, 0, sizeof(q));
        memset(&r, 0, sizeof(r));
        q.key = key;
        r.key = key;
        if (dice < 4) {
            q.op = P2PRAFT_API_GET;
            q.flags = o.plain_reads ? 0 : 1; /* 1: consistent */
        } else {
            snprintf(tag, sizeof(tag), "w%u.%" PRIu64, w->id, seq++);
            q.val = val;
            q.vlen = value_of(tag, val);
            r.val = tag;
            if (dice < 7) {
                q.op = P2PRAFT_API_SET;
            } else {
                q.op = P2PRAFT_API_CAS;
                if (exp[0] == '\0') {
                    snprintf(exp, sizeof(exp), "none");
                }
                q.exp = expv;
                q.elen = value_of(exp, expv);
                r.exp = exp;
            }
        }
        r.op = q.op;
        r.proc = proc;
        r.node = (int)node;
        r.res = res;
        r.call = since_t0();
        call(o.api[node], &q, res);
        r.ret = since_t0();
        if (q.op == P2PRAFT_API_GET && res->out == OUT_OK) {
            tag_of(res->value, res->vlen, got, sizeof(got));
            r.got = got;
        }
        record(&r);
        slot_done(k, ver,
                  r.got != NULL ? r.got : res->out == OUT_OK ? tag : NULL,
                  q.op != P2PRAFT_API_GET && res->out == OUT_UNKNOWN);
        if (res->out == OUT_UNKNOWN) {
            proc += (int)o.workers; /* this one stays open for ever */
        }
        if (res->out == OUT_UNKNOWN || res->out == OUT_FAIL) {
            /* back off, as a client would, instead of spinning on a node
             * that fails at once */
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        pace(&next);
    }
    return NULL;
}

/* A definite consistent read of every key that was used, retried on every
 * node in turn until --final-ms runs out. Returns the keys left unread. */
static unsigned final_reads(int proc)
{
    uint64_t deadline = mono_ns() + (uint64_t)o.final_ms * 1000000u;
    static struct result res;
    unsigned missing = 0, node = 0, k, ver;
    for (k = 0; k < o.keys; k++) {
        for (ver = 1; ver <= slots[k].ver; ver++) {
            char key[32], got[TAG_MAX + 32];
            struct p2praft__api_req q;
            bool done = false;
            key_name(k, ver, key, sizeof(key));
            memset(&q, 0, sizeof(q));
            q.op = P2PRAFT_API_GET;
            q.flags = 1;
            q.key = key;
            while (!done && mono_ns() < deadline) {
                struct op_rec r;
                memset(&r, 0, sizeof(r));
                r.op = q.op;
                r.key = key;
                r.proc = proc;
                r.node = (int)node;
                r.final = true;
                r.res = &res;
                r.call = since_t0();
                call(o.api[node], &q, &res);
                r.ret = since_t0();
                if (res.out == OUT_OK) {
                    tag_of(res.value, res.vlen, got, sizeof(got));
                    r.got = got;
                }
                record(&r);
                done = res.out == OUT_OK || res.out == OUT_NOTFOUND;
                if (res.out == OUT_UNKNOWN) {
                    proc++;
                }
                node = (node + 1) % o.n_nodes;
                if (!done) {
                    struct timespec ts = {0, 50 * 1000 * 1000};
                    nanosleep(&ts, NULL);
                }
            }
            if (!done) {
                fprintf(stderr, "faults-client: no final read of %s\n", key);
                missing++;
            }
        }
    }
    return missing;
}

/* ---- main ------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: faults-client --api PATH [--api PATH]... --history FILE\n"
            "         [--workers N (8)] [--keys N (3)] [--key-period-ms N "
            "(5000)]\n"
            "         [--max-unknown N (10): a new key after N unknown "
            "writes]\n"
            "         [--timeout-ms N (10000)] [--value-size N (0)] [--rate "
            "OPS/S (0: no limit)]\n"
            "         [--secs N (0: until SIGTERM)] [--final-ms N (60000)] "
            "[--seed N]\n"
            "         [--plain-reads: the workload's gets are plain local "
            "reads, which are\n"
            "          not linearizable: a run with faults must then fail "
            "the check]\n");
}

static int num(const char *s, unsigned *out)
{
    char *end;
    unsigned long v;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v > 100000000ul) {
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

int main(int argc, char **argv)
{
    static struct worker workers[MAX_WORKERS];
    struct timespec real0;
    sigset_t set;
    unsigned i, missing;
    int a, sig = 0;

    o.seed = (uint64_t)time(NULL);
    for (a = 1; a < argc; a++) {
        const char *f = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        unsigned *np = NULL;
        if (strcmp(f, "-h") == 0 || strcmp(f, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(f, "--plain-reads") == 0) {
            o.plain_reads = true;
            continue;
        }
        if (v == NULL) {
            usage(stderr);
            return 2;
        }
        a++;
        if (strcmp(f, "--api") == 0) {
            if (o.n_nodes == MAX_NODES) {
                fprintf(stderr, "faults-client: at most %d nodes\n",
                        MAX_NODES);
                return 2;
            }
            o.api[o.n_nodes++] = v;
        } else if (strcmp(f, "--history") == 0) {
            o.history = v;
        } else if (strcmp(f, "--seed") == 0) {
            o.seed = strtoull(v, NULL, 10);
        } else if (strcmp(f, "--workers") == 0) {
            np = &o.workers;
        } else if (strcmp(f, "--keys") == 0) {
            np = &o.keys;
        } else if (strcmp(f, "--max-unknown") == 0) {
            np = &o.max_unknown;
        } else if (strcmp(f, "--key-period-ms") == 0) {
            np = &o.key_period_ms;
        } else if (strcmp(f, "--timeout-ms") == 0) {
            np = &o.timeout_ms;
        } else if (strcmp(f, "--value-size") == 0) {
            np = &o.value_size;
        } else if (strcmp(f, "--rate") == 0) {
            np = &o.rate;
        } else if (strcmp(f, "--secs") == 0) {
            np = &o.secs;
        } else if (strcmp(f, "--final-ms") == 0) {
            np = &o.final_ms;
        } else {
            fprintf(stderr, "faults-client: unknown option %s\n", f);
            usage(stderr);
            return 2;
        }
        if (np != NULL && num(v, np) != 0) {
            fprintf(stderr, "faults-client: bad value for %s: %s\n", f, v);
            return 2;
        }
    }
    if (o.n_nodes == 0 || o.history == NULL || o.workers == 0 ||
        o.workers > MAX_WORKERS || o.keys == 0 || o.keys > MAX_KEYS ||
        o.key_period_ms == 0 || o.max_unknown == 0 || o.timeout_ms == 0 ||
        o.value_size > VAL_MAX) {
        usage(stderr);
        return 2;
    }
    hist = fopen(o.history, "w");
    if (hist == NULL) {
        fprintf(stderr, "faults-client: %s: %s\n", o.history, strerror(errno));
        return 1;
    }
    /* Only the main thread takes the stop signals, in sigwait(). */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    for (i = 0; i < o.keys; i++) {
        slots[i].period = -1; /* the first operation opens version 1 */
    }
    t0_mono = mono_ns();
    clock_gettime(CLOCK_REALTIME, &real0);
    fprintf(hist,
            "{\"type\":\"start\",\"real0_ns\":%" PRIu64 ",\"nodes\":%u,"
            "\"workers\":%u,\"keys\":%u,\"key_period_ms\":%u,\"max_unknown\":%u,"
            "\"timeout_ms\":%u,\"value_size\":%u,\"seed\":%" PRIu64 "}\n",
            (uint64_t)real0.tv_sec * 1000000000u + (uint64_t)real0.tv_nsec,
            o.n_nodes, o.workers, o.keys, o.key_period_ms, o.max_unknown,
            o.timeout_ms,
            o.value_size, o.seed);
    for (i = 0; i < o.workers; i++) {
        workers[i].id = i;
        workers[i].rng = o.seed * 0x9E3779B97F4A7C15ull + i + 1;
        if (pthread_create(&workers[i].th, NULL, worker_main, &workers[i]) !=
            0) {
            fprintf(stderr, "faults-client: cannot start a worker\n");
            return 1;
        }
    }
    if (o.secs > 0) {
        struct timespec ts = {(time_t)o.secs, 0};
        sig = sigtimedwait(&set, NULL, &ts);
    } else {
        sigwait(&set, &sig);
    }
    atomic_store(&running, false);
    for (i = 0; i < o.workers; i++) {
        pthread_join(workers[i].th, NULL);
    }
    missing = final_reads((int)(o.workers * 1000000u));
    fprintf(hist, "{\"type\":\"end\",\"t\":%" PRId64 ",\"final_missing\":%u}\n",
            since_t0(), missing);
    if (fclose(hist) != 0) {
        fprintf(stderr, "faults-client: %s: %s\n", o.history, strerror(errno));
        return 1;
    }
    return 0;
}
