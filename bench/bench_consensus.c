/*
 * Consensus benchmark: 3 raft nodes in one process (one libuv loop),
 * raft_uv storage on disk, libraft's TCP transport on 127.0.0.1, OpLog mode
 * with 128-byte ops (an op carries 128 bytes; apply_to counts them).
 *
 *   sequential: one commit in flight; commit rate and p50/p99 latency;
 *   64 committers: 64 async commits always in flight (each completion
 *                  issues the next); group commit packs them into entries.
 *
 * Each run is done with the data directories under /tmp and under
 * build/bench-data (the file system type of each is printed: tmpfs numbers
 * do not include real fsync costs).
 *
 * Usage: bench_consensus [seconds per phase, default 3]
 * Environment: BENCH_TMP=dir replaces /tmp (e.g. /dev/shm for tmpfs),
 * BENCH_NAGLE=1 keeps Nagle on raft_uv_tcp's sockets, BENCH_DEBUG=1 prints
 * every commit slower than 50 ms. Expect one ~100 ms stall per 8 MB raft_uv
 * segment rollover at full throughput (max column; segments cannot be made
 * larger than 8 MB).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "../test/integration/cluster.c"
#include "../test/integration/harness_util.c"
#include "lib/syscount.c"

struct bstate {
    uint64_t Ops;
    uint64_t Bytes;
};
static const struct p2praft_field bstate_fields[] = {
    {"Ops", offsetof(struct bstate, Ops), {P2PRAFT_KIND_UINT64, 0, 0}},
    {"Bytes", offsetof(struct bstate, Bytes), {P2PRAFT_KIND_UINT64, 0, 0}}};
static const struct p2praft_type bstate_type = {
    "state", sizeof(struct bstate), bstate_fields, 2, NULL, NULL, NULL, NULL};

struct bop {
    struct p2praft_bytes Data;
};
static const struct p2praft_field bop_fields[] = {
    {"Data", offsetof(struct bop, Data), {P2PRAFT_KIND_BYTES, 0, 0}}};
static const struct p2praft_type bop_type = {
    "op", sizeof(struct bop), bop_fields, 1, NULL, NULL, NULL, NULL};

static int bop_apply(const void *op, const void *state, void *new_state,
                     void *ctx)
{
    const struct bop *o = op;
    const struct bstate *s = state;
    struct bstate *ns = new_state;
    (void)ctx;
    ns->Ops = s->Ops + 1;
    ns->Bytes = s->Bytes + o->Data.len;
    return 0;
}
static const struct p2praft_op_type bop_optype = {
    .type = &bop_type, .apply_to = bop_apply, .ctx = NULL};

struct run {
    struct cluster *cl;
    struct p2praft_consensus *c;
    unsigned inflight;
    uint64_t t_start;
    uint64_t t_end;      /* stop issuing after this (uv_hrtime ns) */
    uint64_t issued;
    uint64_t done;
    uint64_t failed;
    uint64_t *lat;       /* ns per completed commit */
    size_t nlat, caplat;
    uint8_t payload[128];
};

struct slot {
    struct run *r;
    uint64_t t0;
};

static void issue(struct slot *s);

static void done_cb(void *ctx, int status, void *state, const char *errmsg)
{
    struct slot *s = ctx;
    struct run *r = s->r;
    uint64_t now = uv_hrtime();
    p2praft_value_destroy(&bstate_type, state);
    r->done++;
    if (status != 0) {
        if (r->failed++ == 0) {
            fprintf(stderr, "  first failure: %s (%s)\n", lp2p_errname(status),
                    errmsg != NULL ? errmsg : "");
        }
    } else if (r->nlat < r->caplat) {
        r->lat[r->nlat++] = now - s->t0;
        if (getenv("BENCH_DEBUG") != NULL && now - s->t0 > 50000000u) {
            fprintf(stderr, "  slow commit: %.1f ms, issued at +%.3f s\n",
                    (double)(now - s->t0) / 1e6,
                    (double)(s->t0 - r->t_start) / 1e9);
        }
    }
    if (now < r->t_end) {
        issue(s);
    } else {
        r->inflight--;
    }
}

static void issue(struct slot *s)
{
    struct run *r = s->r;
    struct bop op;
    op.Data.data = r->payload;
    op.Data.len = sizeof(r->payload);
    s->t0 = uv_hrtime();
    r->issued++;
    if (p2praft_consensus_commit_op(r->c, &op, done_cb, s) != 0) {
        r->failed++;
        r->inflight--;
    }
}

static bool run_idle(void *ctx)
{
    return ((struct run *)ctx)->inflight == 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, size_t n, double p)
{
    size_t i;
    if (n == 0) {
        return 0;
    }
    i = (size_t)(p * (double)(n - 1));
    return (double)v[i] / 1e6;
}

static void phase(struct cluster *cl, int leader, unsigned committers,
                  double secs, const char *label)
{
    struct run r;
    struct slot *slots;
    uint64_t t0, t1, sc0, sc1;
    unsigned i;
    double el;
    int scfd = syscount_open();
    memset(&r, 0, sizeof(r));
    memset(r.payload, 0xab, sizeof(r.payload));
    r.cl = cl;
    r.c = cl->nodes[leader].c;
    r.caplat = 4000000;
    r.lat = malloc(r.caplat * sizeof(*r.lat));
    slots = calloc(committers, sizeof(*slots));
    sc0 = syscount_read(scfd);
    t0 = uv_hrtime();
    r.t_start = t0;
    r.t_end = t0 + (uint64_t)(secs * 1e9);
    r.inflight = committers;
    for (i = 0; i < committers; i++) {
        slots[i].r = &r;
        issue(&slots[i]);
    }
    cluster_run_until(cl, run_idle, &r, (unsigned)(secs * 1000) + 30000);
    t1 = uv_hrtime();
    sc1 = syscount_read(scfd);
    el = (double)(t1 - t0) / 1e9;
    qsort(r.lat, r.nlat, sizeof(*r.lat), cmp_u64);
    printf("  %-16s %8.0f ops/s  p50 %5.2f  p90 %5.2f  p99 %6.2f  max %6.2f ms"
           "  (%llu ops, %llu failed, %.1f s)\n",
           label, (double)r.nlat / el, pct(r.lat, r.nlat, 0.50),
           pct(r.lat, r.nlat, 0.90), pct(r.lat, r.nlat, 0.99),
           pct(r.lat, r.nlat, 1.0),
           (unsigned long long)r.nlat, (unsigned long long)r.failed, el);
    if (scfd >= 0 && r.nlat > 0) {
        /* The loop thread's: raft_uv's thread pool is not counted. */
        printf("  %-16s %8.1f system calls per commit on the loop thread\n",
               "", (double)(sc1 - sc0) / (double)r.nlat);
        close(scfd);
    }
    fflush(stdout);
    free(slots);
    free(r.lat);
}

static const char *fs_name(const char *dir)
{
    struct statfs s;
    if (statfs(dir, &s) != 0) {
        return "?";
    }
    switch ((unsigned long)s.f_type) {
    case 0x01021994UL:
        return "tmpfs";
    case 0xEF53UL:
        return "ext4";
    case 0x9123683EUL:
        return "btrfs";
    case 0x58465342UL:
        return "xfs";
    case 0x794c7630UL:
        return "overlayfs";
    default:
        return "other";
    }
}

/* raft_uv_tcp leaves Nagle on; its connections live as long as the nodes,
 * so switch it off on every TCP handle of the loop once they exist. */
static int set_nodelay(struct cluster *cl)
{
    if (getenv("BENCH_NAGLE") != NULL) {
        return 0;
    }
    return cluster_nodelay(cl);
}

static int bench_dir(const char *base, double secs)
{
    struct cluster cl;
    int leader;
    memset(&cl, 0, sizeof(cl));
    cl.base_dir = base;
    cl.election_ms = 500;
    cl.heartbeat_ms = 50;
    cl.snapshot_threshold = 16384;
    cl.snapshot_trailing = 4096;
    printf("data dirs under %s (%s)\n", base, fs_name(base));
    if (cluster_init(&cl, 3, &bstate_type, &bop_optype, NULL) != 0) {
        fprintf(stderr, "cluster_init failed\n");
        return 1;
    }
    leader = cluster_wait_leader(&cl, 10000);
    if (leader < 0) {
        fprintf(stderr, "no leader\n");
        cluster_close(&cl);
        return 1;
    }
    phase(&cl, leader, 1, 0.5, "warm-up"); /* connections, allocation */
    printf("  TCP_NODELAY set on %d sockets\n", set_nodelay(&cl));
    phase(&cl, leader, 1, secs, "sequential (1)");
    phase(&cl, leader, 64, secs, "64 committers");

    cluster_close(&cl);
    return 0;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 3.0;
    int rv = 0;
    if (secs <= 0) {
        secs = 3.0;
    }
    double load[3] = {0, 0, 0};
    getloadavg(load, 3);
    printf("3 nodes, one process, raft_uv + TCP 127.0.0.1, 128-byte ops, "
           "group commit; %.1f s per phase; %ld cpus, load %.2f\n", secs,
           sysconf(_SC_NPROCESSORS_ONLN), load[0]);
    printf("targets: sequential >= 1500 commits/s; 64 committers >= 50000 "
           "ops/s at p99 <= 10 ms\n");
    rv |= bench_dir(getenv("BENCH_TMP") ? getenv("BENCH_TMP") : "/tmp", secs);
    mkdir("build/bench-data", 0755);
    rv |= bench_dir("build/bench-data", secs);
    rmdir("build/bench-data");
    return rv;
}
