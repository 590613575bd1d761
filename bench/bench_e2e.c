/*
 * p2praft's side of the benchmark against the seed (issue 5): the same
 * workload as bench/seed/main.go (go-libp2p-raft v0.5.0's Example_consensus,
 * measured), on three p2praft nodes in one process, each with its own lp2p
 * host on 127.0.0.1, talking raft over libp2p streams with p2praft's raft
 * I/O.
 *
 *   bench_e2e --store mem|shm|disk|tcp [--dir DIR] [--updates N] [--conc N]
 *             [--dur-ms N] [--opsize N] [--no-hint] [--busy-poll-us N]
 *
 * Stores: mem is p2praft's in-memory store (compare with the seed's
 * InmemStore), shm libraft's raft_uv on tmpfs (/dev/shm), disk raft_uv in
 * DIR (default /tmp; compare with raft-boltdb). tcp runs the same workload
 * on libraft alone: raft_uv on tmpfs with libraft's own TCP transport (no
 * libp2p), the yardstick for what p2praft adds on top of libraft.
 * One run prints, as the seed does,
 *   p2praft <store> <metric> <value> <unit>
 * for first_leader (ms, from the first raft_start until a leader every node
 * agrees on), seq1000_total (ms), seq_commit_p50/p99 (us), seq_ops (ops/s),
 * seq_syscalls (system calls of the loop thread, which runs all three
 * nodes, per sequential commit; only when the kernel lets us count them),
 * where the time of a sequential commit goes (each per commit, over the
 * same phase): seq_cpu_us (us of CPU, user + system, of the whole process),
 * seq_ctxsw (context switches, voluntary + involuntary, of the whole
 * process), seq_loop_sleeps (times the loop thread slept: its voluntary
 * switches) and seq_handoffs (appends handed to raft_uv; not for mem, which
 * has no raft_uv) -- "where a sequential commit's time goes" below says
 * how each is counted --,
 * op_size (bytes), conc64_commitstate_ops (ops/s: 64 commits kept in flight
 * on the leader for --dur-ms, 128-byte entries) and failover (ms, from
 * shutting the leader down (raft, io and host) until a commit succeeds on a
 * survivor). bench/e2e/run.sh repeats it, runs the seed in the same run and
 * prints both sides with ratios. Without arguments it only says so
 * (bench/run.sh runs every bench binary; the comparison is
 * bench/e2e/run.sh's job). --busy-poll-us N turns on the hosts' busy
 * polling (lp2p_host_config.busy_poll_us; all three share the one loop).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../test/integration/cluster.c"
#include "../test/integration/harness_util.c"
#include "../test/integration/netcluster.c"
#include "lib/syscount.c"
#include "raft/io.h"

struct bstate {
    int64_t Value;
    struct p2praft_bytes Pad;
};
static const struct p2praft_field bstate_fields[] = {
    {"Value", offsetof(struct bstate, Value), {P2PRAFT_KIND_INT64, 0, 0}},
    {"Pad", offsetof(struct bstate, Pad), {P2PRAFT_KIND_BYTES, 0, 0}}};
static const struct p2praft_type bstate_type = {
    "raftState", sizeof(struct bstate), bstate_fields, 2,
    NULL, NULL, NULL, NULL};

static const char *g_store = "mem";
static bool g_no_hint;
static uint32_t g_busy_poll_us; /* --busy-poll-us */

static void result(const char *metric, double v, const char *unit)
{
    printf("p2praft %s %s %.6g %s\n", g_store, metric, v, unit);
    fflush(stdout);
}

static double now_ms(void)
{
    return (double)uv_hrtime() / 1e6;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *sorted, size_t n, double p)
{
    long i = (long)(p * (double)n + 0.999999) - 1;
    if (i < 0) {
        i = 0;
    }
    if ((size_t)i >= n) {
        i = (long)n - 1;
    }
    return sorted[i];
}

/* ---- the cluster: p2praft's (netcluster) or libraft's alone (cluster) */

static bool g_tcp;
static struct nc g_nc;
static struct cluster g_cl;

static uv_loop_t *B_loop(void)
{
    return g_tcp ? &g_cl.loop : &g_nc.loop;
}

static struct p2praft_consensus *B_c(unsigned i)
{
    return g_tcp ? g_cl.nodes[i].c : g_nc.nodes[i].c;
}

static struct raft *B_raft(unsigned i)
{
    return g_tcp ? &g_cl.nodes[i].raft : &g_nc.nodes[i].raft;
}

static bool B_running(unsigned i)
{
    return g_tcp ? g_cl.nodes[i].running : g_nc.nodes[i].running;
}

static int B_prepare(const char *dir, enum p2praft_store_kind store)
{
    if (g_tcp) {
        g_cl.base_dir = dir;
        g_cl.election_ms = 150;
        g_cl.heartbeat_ms = 30;
        return cluster_prepare(&g_cl, 3, &bstate_type, NULL, NULL);
    }
    g_nc.base_dir = dir;
    g_nc.store = store;
    g_nc.no_hint = g_no_hint;
    g_nc.busy_poll_us = g_busy_poll_us;
    return nc_prepare(&g_nc, 3, &bstate_type, NULL, NULL);
}

static int B_start(unsigned i)
{
    return g_tcp ? cluster_start(&g_cl, i, true) : nc_start(&g_nc, i, true);
}

static int B_wait_leader(unsigned ms)
{
    return g_tcp ? cluster_wait_leader(&g_cl, ms) : nc_wait_leader(&g_nc, ms);
}

static bool B_run_until(bool (*cond)(void *), void *ctx, unsigned ms)
{
    return harness_run_until(B_loop(), cond, ctx, ms);
}

/* The node goes away: raft, io and (for p2praft) its host. */
static void B_kill(unsigned i)
{
    if (g_tcp) {
        cluster_stop(&g_cl, i);
    } else {
        nc_kill(&g_nc, i);
    }
}

static void B_close(void)
{
    if (g_tcp) {
        cluster_close(&g_cl);
    } else {
        nc_close(&g_nc);
    }
}

/* ---- where a sequential commit's time goes ----
 *
 * Read before and after the sequential phase, printed per commit:
 * - CPU time (user + system) and context switches (voluntary +
 *   involuntary) from getrusage(RUSAGE_SELF): these count every thread of
 *   the process, the loop thread (which runs all three nodes) and libuv's
 *   thread pool (where raft_uv writes).
 * - The loop thread's own voluntary switches, getrusage(RUSAGE_THREAD) on
 *   it (the counter /proc/self/task/<tid>/status shows as
 *   voluntary_ctxt_switches): how many times it slept, in epoll waiting for
 *   the network or for a write done on the pool, or in a blocking system
 *   call. The memory store never makes it wait for storage.
 * - Appends that reach raft_uv, counted by wrapping raft_uv's own
 *   raft_io append method: for p2praft the raft_uv under its raft I/O
 *   (p2praft__io_raft_uv(), a test hook), for the libraft baseline the
 *   raft_uv that libraft calls directly, so both sides are counted at the
 *   same place. Each append raft_uv writes through libuv's thread pool
 *   (uv_queue_work; on tmpfs always, as tmpfs has no direct I/O) is one
 *   hand-off to a pool thread and one uv_async wakeup of the loop back.
 *   Two caveats make it an upper bound on pool hand-offs: raft_uv groups
 *   appends that arrive while a write runs into one write, and on a file
 *   system with direct I/O and kernel AIO (a disk) it writes without the
 *   pool. The memory store has no raft_uv: nothing is printed for it.
 */

typedef int (*append_fn)(struct raft_io *io, struct raft_io_append *req,
                         const struct raft_entry entries[], unsigned n,
                         raft_io_append_cb cb);

static struct {
    struct raft_io *uv; /* raft_uv's raft_io, NULL: none (memory store) */
    append_fn append;   /* its own append */
} g_uv[3];
static uint64_t g_uv_appends;
static bool g_uv_any;

static int counting_append(struct raft_io *io, struct raft_io_append *req,
                           const struct raft_entry entries[], unsigned n,
                           raft_io_append_cb cb)
{
    unsigned i;
    for (i = 0; i < 3; i++) {
        if (g_uv[i].uv == io) {
            int rv = g_uv[i].append(io, req, entries, n, cb);
            if (rv == 0) {
                g_uv_appends++;
            }
            return rv;
        }
    }
    abort(); /* only installed on the ios of g_uv */
}

/* Count the appends that reach each node's raft_uv from now on. */
static void uv_count_start(void)
{
    unsigned i;
    for (i = 0; i < 3; i++) {
        struct raft_io *uv = g_tcp ? &g_cl.nodes[i].io
                                   : p2praft__io_raft_uv(&g_nc.nodes[i].io);
        g_uv[i].uv = uv;
        if (uv != NULL) {
            g_uv[i].append = uv->append;
            uv->append = counting_append;
            g_uv_any = true;
        }
    }
}

static void uv_count_stop(void)
{
    unsigned i;
    for (i = 0; i < 3; i++) {
        if (g_uv[i].uv != NULL) {
            g_uv[i].uv->append = g_uv[i].append;
        }
    }
}

struct prof {
    struct rusage self, loop; /* the process; the loop thread (the caller) */
    uint64_t appends;
};

static void prof_read(struct prof *p)
{
    getrusage(RUSAGE_SELF, &p->self);
    getrusage(RUSAGE_THREAD, &p->loop);
    p->appends = g_uv_appends;
}

static double tv_us(const struct timeval *tv)
{
    return (double)tv->tv_sec * 1e6 + (double)tv->tv_usec;
}

static void prof_print(const struct prof *a, const struct prof *b, int n)
{
    double cpu = tv_us(&b->self.ru_utime) - tv_us(&a->self.ru_utime) +
                 tv_us(&b->self.ru_stime) - tv_us(&a->self.ru_stime);
    long ctxsw = (b->self.ru_nvcsw - a->self.ru_nvcsw) +
                 (b->self.ru_nivcsw - a->self.ru_nivcsw);
    result("seq_cpu_us", cpu / n, "us");
    result("seq_ctxsw", (double)ctxsw / n, "switches");
    result("seq_loop_sleeps", (double)(b->loop.ru_nvcsw - a->loop.ru_nvcsw) / n,
           "sleeps");
    if (g_uv_any) {
        result("seq_handoffs", (double)(b->appends - a->appends) / n,
               "appends");
    }
}

/* ---- sequential phase ---- */

struct seq {
    unsigned leader;
    int total, done;
    int failed;
    int64_t last;
    uint64_t t0;
    uint64_t *lat;
};

static void seq_next(struct seq *s);

static void seq_cb(void *ctx, int status, void *state, const char *errmsg)
{
    struct seq *s = ctx;
    if (status != 0) {
        fprintf(stderr, "bench_e2e: commit: %s %s\n", p2praft_strerror(status),
                errmsg != NULL ? errmsg : "");
        s->failed = 1;
        return;
    }
    s->lat[s->done] = uv_hrtime() - s->t0;
    s->last = ((struct bstate *)state)->Value;
    p2praft_value_destroy(&bstate_type, state);
    s->done++;
    if (s->done < s->total) {
        seq_next(s);
    }
}

static void seq_next(struct seq *s)
{
    struct bstate st;
    memset(&st, 0, sizeof(st));
    st.Value = (int64_t)s->done * 2;
    s->t0 = uv_hrtime();
    if (p2praft_consensus_commit_state(B_c(s->leader), &st, seq_cb, s) != 0) {
        s->failed = 1;
    }
}

static bool seq_finished(void *ctx)
{
    struct seq *s = ctx;
    return s->failed || s->done >= s->total;
}

static raft_index g_applied_target;

static bool all_applied(void *ctx)
{
    unsigned i;
    (void)ctx;
    for (i = 0; i < 3; i++) {
        if (B_running(i) && raft_last_applied(B_raft(i)) < g_applied_target) {
            return false;
        }
    }
    return true;
}

/* ---- concurrent phase ---- */

struct conc {
    unsigned leader;
    uint8_t *pad;
    size_t pad_len;
    uint64_t deadline; /* uv_now */
    int inflight;
    long ok, failed, seq;
    int first_error;
};

static void conc_issue(struct conc *c);

static void conc_cb(void *ctx, int status, void *state, const char *errmsg)
{
    struct conc *c = ctx;
    (void)errmsg;
    p2praft_value_destroy(&bstate_type, state);
    c->inflight--;
    if (status != 0) {
        if (c->failed++ == 0) {
            c->first_error = status;
        }
    } else {
        c->ok++;
    }
    if (uv_now(B_loop()) < c->deadline) {
        conc_issue(c);
    }
}

static void conc_issue(struct conc *c)
{
    struct bstate st;
    st.Value = ((int64_t)1 << 30) + c->seq++;
    st.Pad.data = c->pad;
    st.Pad.len = c->pad_len;
    if (p2praft_consensus_commit_state(B_c(c->leader), &st, conc_cb, c) == 0) {
        c->inflight++;
    } else {
        c->failed++;
    }
}

static bool conc_finished(void *ctx)
{
    struct conc *c = ctx;
    return c->inflight == 0;
}

/* ---- failover ---- */

struct fo {
    int old;
    int pending;
    int ok;
    int64_t value;
};

static void fo_cb(void *ctx, int status, void *state, const char *errmsg)
{
    struct fo *f = ctx;
    (void)errmsg;
    p2praft_value_destroy(&bstate_type, state);
    f->pending = 0;
    if (status == 0) {
        f->ok = 1;
    }
}

/* Called after every loop event: submit a write to the current leader when
 * none is in flight. */
static bool fo_step(void *ctx)
{
    struct fo *f = ctx;
    unsigned i;
    if (f->ok) {
        return true;
    }
    if (f->pending) {
        return false;
    }
    for (i = 0; i < 3; i++) {
        if ((int)i != f->old && B_running(i) &&
            raft_state(B_raft(i)) == RAFT_LEADER) {
            struct bstate st;
            memset(&st, 0, sizeof(st));
            st.Value = f->value;
            if (p2praft_consensus_commit_state(B_c(i), &st, fo_cb, f) == 0) {
                f->pending = 1;
            }
            break;
        }
    }
    return false;
}

static int run(const char *dir, enum p2praft_store_kind store, int updates,
               int concn, unsigned dur_ms, size_t opsize)
{
    struct seq s;
    struct conc c;
    struct fo f;
    struct bstate probe;
    uint8_t *enc;
    size_t enc_len;
    double t0, t1;
    uint64_t sc0, sc1;
    struct prof pr0, pr1;
    int leader, status = 1, scfd;
    unsigned i;

    if (B_prepare(dir, store) != 0) {
        fprintf(stderr, "bench_e2e: cluster set-up failed\n");
        return 1;
    }
    t0 = now_ms();
    for (i = 0; i < 3; i++) {
        if (B_start(i) != 0) {
            fprintf(stderr, "bench_e2e: start failed\n");
            goto out;
        }
    }
    leader = B_wait_leader(30000);
    if (leader < 0) {
        fprintf(stderr, "bench_e2e: no leader within 30 s\n");
        goto out;
    }
    result("first_leader", now_ms() - t0, "ms");
    if (g_tcp) {
        cluster_nodelay(&g_cl); /* as bench_consensus: Nagle off */
    }

    /* The example's 1000 sequential CommitState calls. */
    memset(&s, 0, sizeof(s));
    s.leader = (unsigned)leader;
    s.total = updates;
    s.lat = calloc((size_t)updates, sizeof(*s.lat));
    scfd = syscount_open();
    uv_count_start();
    prof_read(&pr0); /* outside the system call count */
    sc0 = syscount_read(scfd);
    t0 = now_ms();
    seq_next(&s);
    B_run_until(seq_finished, &s, 120000);
    t1 = now_ms();
    sc1 = syscount_read(scfd);
    prof_read(&pr1);
    uv_count_stop();
    if (scfd >= 0) {
        close(scfd);
    }
    if (s.failed || s.done < s.total) {
        fprintf(stderr, "bench_e2e: sequential phase failed at %d\n", s.done);
        free(s.lat);
        goto out;
    }
    g_applied_target = raft_last_applied(B_raft((unsigned)leader));
    if (!B_run_until(all_applied, NULL, 30000)) {
        fprintf(stderr, "bench_e2e: followers did not apply\n");
        free(s.lat);
        goto out;
    }
    qsort(s.lat, (size_t)s.total, sizeof(*s.lat), cmp_u64);
    result("seq1000_total", t1 - t0, "ms");
    result("seq_commit_p50", (double)pct(s.lat, (size_t)s.total, 0.5) / 1e3,
           "us");
    result("seq_commit_p99", (double)pct(s.lat, (size_t)s.total, 0.99) / 1e3,
           "us");
    result("seq_ops", s.total * 1000.0 / (t1 - t0), "ops/s");
    if (scfd >= 0) {
        result("seq_syscalls", (double)(sc1 - sc0) / s.total, "calls");
    }
    prof_print(&pr0, &pr1, s.total);
    free(s.lat);

    /* 128-byte entries: size the pad from the real encoding. */
    memset(&c, 0, sizeof(c));
    c.pad = malloc(opsize);
    memset(c.pad, 'x', opsize);
    memset(&probe, 0, sizeof(probe));
    probe.Value = (int64_t)1 << 30;
    probe.Pad.data = c.pad;
    probe.Pad.len = 1;
    if (p2praft_encode(&bstate_type, &probe, &enc, &enc_len) != 0) {
        free(c.pad);
        goto out;
    }
    p2praft_free(enc);
    c.pad_len = opsize > enc_len ? opsize - enc_len + 1 : 1;
    probe.Pad.len = c.pad_len;
    while (p2praft_encode(&bstate_type, &probe, &enc, &enc_len) == 0) {
        p2praft_free(enc);
        if (enc_len <= opsize || probe.Pad.len <= 1) {
            break;
        }
        probe.Pad.len--;
    }
    c.pad_len = probe.Pad.len;
    /* p2praft adds a 2-byte entry header (format version, kind) */
    result("op_size", (double)enc_len, "bytes");
    c.leader = (unsigned)leader;
    uv_update_time(B_loop());
    c.deadline = uv_now(B_loop()) + dur_ms;
    t0 = now_ms();
    for (i = 0; i < (unsigned)concn; i++) {
        conc_issue(&c);
    }
    B_run_until(conc_finished, &c, dur_ms + 30000);
    t1 = now_ms();
    free(c.pad);
    if (c.failed != 0 || c.inflight != 0) {
        fprintf(stderr, "bench_e2e: concurrent phase: %ld of %ld failed (%s)\n",
                c.failed, c.ok + c.failed, lp2p_errname(c.first_error));
        goto out;
    }
    {
        char name[64];
        snprintf(name, sizeof(name), "conc%d_commitstate_ops", concn);
        result(name, (double)c.ok * 1000.0 / (t1 - t0), "ops/s");
    }
    g_applied_target = raft_last_applied(B_raft((unsigned)leader));
    if (!B_run_until(all_applied, NULL, 60000)) {
        fprintf(stderr, "bench_e2e: followers did not catch up\n");
        goto out;
    }

    /* Failover: shut the leader down (raft, io, host). */
    memset(&f, 0, sizeof(f));
    f.old = leader;
    f.value = 7777777;
    t0 = now_ms();
    B_kill((unsigned)leader);
    if (!B_run_until(fo_step, &f, 60000)) {
        fprintf(stderr, "bench_e2e: no write within 60 s of the failover\n");
        goto out;
    }
    result("failover", now_ms() - t0, "ms");
    status = 0;
out:
    B_close();
    return status;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    enum p2praft_store_kind store = P2PRAFT_STORE_MEM;
    int updates = 1000, concn = 64, i;
    unsigned dur_ms = 3000;
    size_t opsize = 128;
    if (argc == 1) {
        printf("bench_e2e: compared with the seed by bench/e2e/run.sh "
               "(bench_e2e --store mem|shm|disk|tcp for one run)\n");
        return 0;
    }
    for (i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--store") == 0 && v != NULL) {
            g_store = v;
        } else if (strcmp(argv[i], "--dir") == 0 && v != NULL) {
            dir = v;
        } else if (strcmp(argv[i], "--updates") == 0 && v != NULL) {
            updates = atoi(v);
        } else if (strcmp(argv[i], "--conc") == 0 && v != NULL) {
            concn = atoi(v);
        } else if (strcmp(argv[i], "--dur-ms") == 0 && v != NULL) {
            dur_ms = (unsigned)atoi(v);
        } else if (strcmp(argv[i], "--opsize") == 0 && v != NULL) {
            opsize = (size_t)atoi(v);
        } else if (strcmp(argv[i], "--busy-poll-us") == 0 && v != NULL) {
            g_busy_poll_us = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(argv[i], "--no-hint") == 0) {
            g_no_hint = true;
            continue;
        } else {
            fprintf(stderr, "usage: bench_e2e --store mem|shm|disk|tcp "
                            "[--dir DIR] [--updates N] [--conc N] "
                            "[--dur-ms N] [--opsize N] [--no-hint] "
                            "[--busy-poll-us N]\n");
            return 2;
        }
        i++;
    }
    if (strcmp(g_store, "mem") == 0) {
        store = P2PRAFT_STORE_MEM;
    } else if (strcmp(g_store, "shm") == 0 || strcmp(g_store, "disk") == 0) {
        store = P2PRAFT_STORE_DISK;
    } else if (strcmp(g_store, "tcp") == 0) {
        g_tcp = true;
    } else {
        fprintf(stderr, "bench_e2e: --store must be mem, shm, disk or tcp\n");
        return 2;
    }
    if (dir == NULL) {
        dir = strcmp(g_store, "disk") == 0 ? "/tmp" : "/dev/shm";
    }
    if (updates < 1 || concn < 1 || opsize < 16) {
        return 2;
    }
    return run(dir, store, updates, concn, dur_ms, opsize);
}
