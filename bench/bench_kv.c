/*
 * Key-value write benchmark: what one write costs as the store grows.
 *
 * Real p2praft nodes in this process (p2praft_node_start: libp2p host,
 * raft over libp2p, raft_uv storage, the node's request path), 1 node
 * alone or 3 nodes, each store preloaded with N keys, then:
 *
 *   seq:  one writer, one p2praft_node_set() at a time on the leader;
 *         writes per second and p50/p99 latency;
 *   conc: 16 writers at once on the leader (group commit packs them).
 *
 * Each write sets a random key among N + 10000 ("k%010u": mostly
 * replacements of preloaded keys, some inserts) to 100 fresh bytes.
 *
 * Preloading through writes would itself cost O(N^2) where a write costs
 * O(N), so each store starts from a raft snapshot of the N keys, written
 * into every data directory with libraft's own raft_uv before the nodes
 * start (framed as p2praft frames its snapshots): the nodes load it as
 * after a restart. "load" is the time from starting the nodes until a
 * leader is agreed and has caught up; "mem/key" the heap in use
 * (mallinfo2) after the load, per key and node, beyond what the same
 * nodes hold with no keys.
 *
 *   bench_kv [--nodes 1,3] [--keys 0,10000,100000,1000000] [--secs S]
 *            [--writers W] [--value BYTES] [--dir D]
 *
 * Data directories go under --dir (default $BENCH_TMP or /dev/shm: tmpfs,
 * so the numbers are the CPU's, not a disk's). Every phase runs S seconds
 * (default 3) and at least 5 writes. The load average is printed before
 * and after each row: the machine is shared.
 */
#include <malloc.h>
#include <pthread.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "../test/integration/harness_util.c"
#include "p2praft.h"
#include "raft/snapshot.h"
#include "util/buf.h"
#include "util/mpack.h"

#define MAX_NODES 3
#define EXTRA_KEYS 10000u
#define MIN_WRITES 5

struct bnode {
    struct p2praft_node *node;
    struct lp2p_key key;
    char id[LP2P_PEER_ID_STRMAX];
    raft_id rid;
    char dir[640], listen[64], peer_addr[256];
    const char *peers[MAX_NODES];
};

static unsigned g_value = 100;
static double g_secs = 3;
static unsigned g_writers = 16;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_kv: %s: %s\n", what, why);
    exit(1);
}

static const char *loadavg(char *out, size_t cap)
{
    FILE *f = fopen("/proc/loadavg", "r");
    out[0] = '\0';
    if (f != NULL) {
        if (fgets(out, (int)cap, f) == NULL) {
            out[0] = '\0';
        }
        fclose(f);
    }
    out[strcspn(out, " ")] = '\0'; /* the 1-minute average */
    return out;
}

static double heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (double)mi.uordblks + (double)mi.hblkhd;
}

/* The value written for key number i at write number w (w 0: preload). */
static void fill_value(uint8_t *v, unsigned i, uint64_t w)
{
    uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15u + w + 1;
    unsigned k;
    for (k = 0; k < g_value; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v[k] = (uint8_t)x;
    }
}

/* The KV state with keys 0..n-1, as the node's codec writes it:
 * {"Data": {key: value...} or nil, "Seq": n, "Ok": true}. */
static void kv_state_bytes(unsigned n, struct lp2p_buf *b)
{
    uint8_t *v = malloc(g_value > 0 ? g_value : 1);
    char key[32];
    unsigned i;
    int rv;
    lp2p__buf_init(b);
    rv = lp2p__mp_put_map_hdr(b, 3);
    rv |= lp2p__mp_put_raw(b, "Data", 4);
    if (n == 0) {
        rv |= lp2p__mp_put_nil(b);
    } else {
        rv |= lp2p__mp_put_map_hdr(b, n);
    }
    for (i = 0; rv == 0 && i < n; i++) {
        int k = snprintf(key, sizeof(key), "k%010u", i);
        fill_value(v, i, 0);
        rv |= lp2p__mp_put_raw(b, key, (size_t)k);
        rv |= lp2p__mp_put_raw(b, v, g_value);
    }
    rv |= lp2p__mp_put_raw(b, "Seq", 3);
    rv |= lp2p__mp_put_uint(b, n);
    rv |= lp2p__mp_put_raw(b, "Ok", 2);
    rv |= lp2p__mp_put_bool(b, true);
    free(v);
    if (rv != 0) {
        die("state", "out of memory");
    }
}

struct put_wait {
    bool done;
    int status;
};

static void put_cb(struct raft_io_snapshot_put *req, int status)
{
    struct put_wait *w = req->data;
    w->done = true;
    w->status = status;
}

static void io_closed(struct raft_io *io)
{
    *(bool *)io->data = true;
}

/* Write a snapshot at index 1, term 1, of `framed` with the configuration
 * of every node into nd->dir, with raft_uv, as an installed snapshot. */
static void seed_dir(struct bnode *nd, struct bnode *all, unsigned n,
                     const struct lp2p_buf *framed)
{
    uv_loop_t loop;
    struct raft_uv_transport tr;
    struct raft_io io;
    struct raft_configuration conf;
    struct raft_snapshot snap;
    struct raft_snapshot *loaded = NULL;
    struct raft_entry *entries = NULL;
    struct raft_buffer buf;
    struct raft_io_snapshot_put req;
    struct put_wait w = {false, 0};
    raft_term term;
    raft_id vote;
    raft_index start;
    size_t n_entries = 0;
    bool closed = false;
    unsigned i;

    if (mkdir(nd->dir, 0700) != 0) {
        die(nd->dir, "mkdir");
    }
    memset(&tr, 0, sizeof(tr));
    tr.version = 1;
    memset(&io, 0, sizeof(io));
    if (uv_loop_init(&loop) != 0 || raft_uv_tcp_init(&tr, &loop) != 0) {
        die(nd->dir, "raft_uv_tcp_init");
    }
    if (raft_uv_init(&io, &loop, nd->dir, &tr) != 0) {
        die(nd->dir, io.errmsg);
    }
    if (io.init(&io, nd->rid, nd->id) != 0 ||
        io.load(&io, &term, &vote, &loaded, &start, &entries, &n_entries) !=
            0) {
        die(nd->dir, io.errmsg);
    }
    if (io.set_term(&io, 1) != 0) {
        die(nd->dir, io.errmsg);
    }
    raft_configuration_init(&conf);
    for (i = 0; i < n; i++) {
        if (raft_configuration_add(&conf, all[i].rid, all[i].id,
                                   RAFT_VOTER) != 0) {
            die("configuration", "out of memory");
        }
    }
    buf.base = framed->data;
    buf.len = framed->len;
    memset(&snap, 0, sizeof(snap));
    snap.index = 1;
    snap.term = 1;
    snap.configuration = conf;
    snap.configuration_index = 1;
    snap.bufs = &buf;
    snap.n_bufs = 1;
    req.data = &w;
    if (io.snapshot_put(&io, 0, &req, &snap, put_cb) != 0) {
        die(nd->dir, io.errmsg);
    }
    while (!w.done) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    if (w.status != 0) {
        die(nd->dir, raft_strerror(w.status));
    }
    raft_configuration_close(&conf);
    io.data = &closed;
    io.close(&io, io_closed);
    while (!closed) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    raft_uv_close(&io);
    raft_uv_tcp_close(&tr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

static void prepare(struct bnode *ns, unsigned n, const char *base)
{
    unsigned i;
    memset(ns, 0, n * sizeof(*ns));
    for (i = 0; i < n; i++) {
        struct lp2p_peer_id pid;
        int port = harness_free_port();
        if (port <= 0 || lp2p_key_generate(&ns[i].key) != 0 ||
            lp2p_peer_id_from_key(&ns[i].key, &pid) != 0) {
            die("prepare", "key or port");
        }
        lp2p_peer_id_to_string(&pid, ns[i].id, sizeof(ns[i].id));
        ns[i].rid = p2praft_server_id(&pid);
        snprintf(ns[i].dir, sizeof(ns[i].dir), "%s/n%u", base, i);
        snprintf(ns[i].listen, sizeof(ns[i].listen), "/ip4/127.0.0.1/tcp/%d",
                 port);
        snprintf(ns[i].peer_addr, sizeof(ns[i].peer_addr), "%s/p2p/%s",
                 ns[i].listen, ns[i].id);
    }
}

static void start_node(struct bnode *ns, unsigned n, unsigned i)
{
    struct p2praft_node_config cfg;
    const char *listen[1] = {ns[i].listen};
    char err[512];
    unsigned j, k = 0;
    for (j = 0; j < n; j++) {
        if (j != i) {
            ns[i].peers[k++] = ns[j].peer_addr;
        }
    }
    p2praft_node_config_init(&cfg);
    cfg.key = &ns[i].key;
    cfg.listen = listen;
    cfg.n_listen = 1;
    cfg.data_dir = ns[i].dir;
    cfg.peers = ns[i].peers;
    cfg.n_peers = k;
    cfg.api_path = "";
    cfg.timeout_ms = 120000; /* measure slow writes, never time them out */
    if (p2praft_node_start(&ns[i].node, &cfg, err, sizeof(err)) != 0) {
        die("node start", err);
    }
}

static bool field(struct p2praft_node *nd, const char *name, char *out,
                  size_t cap)
{
    char *text = NULL, pat[64];
    const char *p;
    size_t k = 0;
    out[0] = '\0';
    if (p2praft_node_status(nd, &text) != 0) {
        return false;
    }
    snprintf(pat, sizeof(pat), "\n%s: ", name);
    p = strstr(text, pat);
    if (p != NULL) {
        p += strlen(pat);
        while (p[k] != '\0' && p[k] != '\n' && k + 1 < cap) {
            k++;
        }
        memcpy(out, p, k);
    }
    out[k] = '\0';
    p2praft_free(text);
    return p != NULL;
}

/* The leader, once every node agrees on it and it has caught up. */
static unsigned wait_leader(struct bnode *ns, unsigned n)
{
    uint64_t end = now_ns() + 600 * 1000000000ull;
    struct timespec pause = {0, 2 * 1000 * 1000};
    while (now_ns() < end) {
        char role[32], leader[128], l[128], cu[16];
        unsigned i;
        int li = -1;
        bool agree = true;
        leader[0] = '\0';
        for (i = 0; i < n; i++) {
            field(ns[i].node, "leader", l, sizeof(l));
            field(ns[i].node, "role", role, sizeof(role));
            if (strcmp(role, "leader") == 0) {
                li = (int)i;
            }
            if (strcmp(l, "none") == 0 ||
                (leader[0] != '\0' && strcmp(leader, l) != 0)) {
                agree = false;
            }
            snprintf(leader, sizeof(leader), "%s", l);
        }
        if (agree && li >= 0 && strcmp(ns[li].id, leader) == 0) {
            /* a consistent read makes the leader commit a barrier and
             * catch up: the store is then ready for writes */
            uint8_t *v = NULL;
            size_t len = 0;
            p2praft_node_get(ns[li].node, "k0000000000", true, &v, &len, NULL,
                             0);
            p2praft_free(v);
            field(ns[li].node, "caught_up", cu, sizeof(cu));
            if (strcmp(cu, "yes") == 0) {
                return (unsigned)li;
            }
        }
        nanosleep(&pause, NULL);
    }
    die("cluster", "no leader after 600 s");
    return 0;
}

struct writer {
    pthread_t t;
    struct p2praft_node *node;
    unsigned id;
    unsigned nkeys;
    uint64_t end_ns;
    const unsigned *go; /* bounded phase: stop once end passed, min writes */
    uint64_t *lat;
    size_t nlat, cap;
    unsigned long failed;
    uint64_t rng;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    uint8_t *v = malloc(g_value > 0 ? g_value : 1);
    char key[32], err[256];
    uint64_t n = 0;
    while (now_ns() < w->end_ns || w->nlat + w->failed < MIN_WRITES) {
        unsigned i;
        uint64_t t0;
        int rv;
        w->rng ^= w->rng << 13;
        w->rng ^= w->rng >> 7;
        w->rng ^= w->rng << 17;
        i = (unsigned)(w->rng % (w->nkeys + EXTRA_KEYS));
        snprintf(key, sizeof(key), "k%010u", i);
        fill_value(v, i, ++n + ((uint64_t)w->id << 40));
        t0 = now_ns();
        rv = p2praft_node_set(w->node, key, v, g_value, err, sizeof(err));
        if (rv != 0) {
            if (w->failed++ == 0) {
                fprintf(stderr, "bench_kv: write: %s: %s\n",
                        p2praft_strerror(rv), err);
            }
            continue;
        }
        if (w->nlat == w->cap) {
            w->cap = w->cap != 0 ? w->cap * 2 : 4096;
            w->lat = realloc(w->lat, w->cap * sizeof(*w->lat));
            if (w->lat == NULL) {
                die("latencies", "out of memory");
            }
        }
        w->lat[w->nlat++] = now_ns() - t0;
    }
    free(v);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct phase_result {
    double ops, p50_ms, p99_ms;
    unsigned long failed;
};

static struct phase_result phase(struct p2praft_node *leader, unsigned nkeys,
                                 unsigned writers)
{
    struct writer *ws = calloc(writers, sizeof(*ws));
    struct phase_result r = {0, 0, 0, 0};
    uint64_t t0 = now_ns(), t1, *all;
    size_t total = 0, k = 0;
    unsigned i;
    if (ws == NULL) {
        die("phase", "out of memory");
    }
    for (i = 0; i < writers; i++) {
        ws[i].node = leader;
        ws[i].id = i;
        ws[i].nkeys = nkeys;
        ws[i].end_ns = t0 + (uint64_t)(g_secs * 1e9);
        ws[i].rng = 0x2545f4914f6cdd1du * (i + 1);
        if (pthread_create(&ws[i].t, NULL, writer_main, &ws[i]) != 0) {
            die("phase", "pthread_create");
        }
    }
    for (i = 0; i < writers; i++) {
        pthread_join(ws[i].t, NULL);
        total += ws[i].nlat;
        r.failed += ws[i].failed;
    }
    t1 = now_ns();
    all = malloc((total > 0 ? total : 1) * sizeof(*all));
    if (all == NULL) {
        die("phase", "out of memory");
    }
    for (i = 0; i < writers; i++) {
        memcpy(all + k, ws[i].lat, ws[i].nlat * sizeof(*all));
        k += ws[i].nlat;
        free(ws[i].lat);
    }
    qsort(all, total, sizeof(*all), cmp_u64);
    r.ops = (double)total / ((double)(t1 - t0) / 1e9);
    if (total > 0) {
        r.p50_ms = (double)all[(total - 1) / 2] / 1e6;
        r.p99_ms = (double)all[(size_t)((double)(total - 1) * 0.99)] / 1e6;
    }
    free(all);
    free(ws);
    return r;
}

/* Heap in use by n started nodes with an empty store: the baseline that
 * mem/key is counted beyond. */
static double g_base_heap[MAX_NODES + 1];

static void run_row(const char *root, unsigned n, unsigned nkeys)
{
    struct bnode ns[MAX_NODES];
    struct lp2p_buf state, framed;
    char base[600], la0[32], la1[32];
    double h0, h1, per_key = 0;
    uint64_t t0, t1;
    unsigned i, li;
    struct phase_result seq, conc;

    snprintf(base, sizeof(base), "%s/bench_kv.XXXXXX", root);
    if (mkdtemp(base) == NULL) {
        die(base, "mkdtemp");
    }
    loadavg(la0, sizeof(la0));
    prepare(ns, n, base);
    kv_state_bytes(nkeys, &state);
    lp2p__buf_init(&framed);
    if (lp2p__buf_reserve(&framed, P2PRAFT__SNAP_HEADER + state.len) != 0 ||
        p2praft__snapshot_header(framed.data, state.data, state.len) != 0) {
        die("frame", "out of memory");
    }
    memcpy(framed.data + P2PRAFT__SNAP_HEADER, state.data, state.len);
    framed.len = P2PRAFT__SNAP_HEADER + state.len;
    lp2p__buf_free(&state);
    for (i = 0; i < n; i++) {
        seed_dir(&ns[i], ns, n, &framed);
    }
    lp2p__buf_free(&framed);
    malloc_trim(0);

    h0 = heap_in_use();
    t0 = now_ns();
    for (i = 0; i < n; i++) {
        start_node(ns, n, i);
    }
    li = wait_leader(ns, n);
    t1 = now_ns();
    h1 = heap_in_use();
    if (nkeys == 0) {
        g_base_heap[n] = h1 - h0;
    } else {
        per_key = (h1 - h0 - g_base_heap[n]) / ((double)nkeys * n);
    }

    seq = phase(ns[li].node, nkeys, 1);
    conc = phase(ns[li].node, nkeys, g_writers);

    for (i = 0; i < n; i++) {
        p2praft_node_stop(ns[i].node);
        lp2p_key_wipe(&ns[i].key);
        harness_rm_rf(ns[i].dir);
    }
    rmdir(base);
    loadavg(la1, sizeof(la1));
    printf("%5u %8u %9.0f %8.0f %9.0f %8.2f %8.2f %9.0f %8.2f %8.2f %5lu "
           "%s/%s\n",
           n, nkeys, (double)(t1 - t0) / 1e6, per_key, seq.ops, seq.p50_ms,
           seq.p99_ms, conc.ops, conc.p50_ms, conc.p99_ms,
           seq.failed + conc.failed, la0, la1);
    fflush(stdout);
}

/* "a,b,c" into vals (at most max); the count. */
static unsigned parse_list(const char *s, unsigned *vals, unsigned max)
{
    unsigned n = 0;
    char *end;
    while (*s != '\0' && n < max) {
        vals[n++] = (unsigned)strtoul(s, &end, 10);
        s = *end == ',' ? end + 1 : end;
        if (end == s && *s != '\0') {
            break;
        }
    }
    return n;
}

int main(int argc, char **argv)
{
    unsigned nodes[4] = {1, 3}, keys[16] = {0, 10000, 100000, 1000000};
    unsigned n_nodes = 2, n_keys = 4, a, b;
    const char *dir = getenv("BENCH_TMP");
    int i;
    if (dir == NULL || dir[0] == '\0') {
        dir = "/dev/shm";
    }
    for (i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--nodes") == 0 && v != NULL) {
            n_nodes = parse_list(v, nodes, 4);
        } else if (strcmp(argv[i], "--keys") == 0 && v != NULL) {
            n_keys = parse_list(v, keys, 16);
        } else if (strcmp(argv[i], "--secs") == 0 && v != NULL) {
            g_secs = atof(v);
        } else if (strcmp(argv[i], "--writers") == 0 && v != NULL) {
            g_writers = (unsigned)atoi(v);
        } else if (strcmp(argv[i], "--value") == 0 && v != NULL) {
            g_value = (unsigned)atoi(v);
        } else if (strcmp(argv[i], "--dir") == 0 && v != NULL) {
            dir = v;
        } else {
            fprintf(stderr,
                    "usage: bench_kv [--nodes 1,3] [--keys 0,10000,...] "
                    "[--secs S] [--writers W] [--value BYTES] [--dir D]\n");
            return 2;
        }
        i++;
    }
    if (g_writers == 0 || g_secs <= 0) {
        fprintf(stderr, "bench_kv: --writers and --secs must be positive\n");
        return 2;
    }
    p2praft_log_set(LP2P_LOG_ERROR, NULL, NULL);
    printf("p2praft node KV writes: %u-byte values, %.1f s per phase, data "
           "in %s\n",
           g_value, g_secs, dir);
    printf("nodes     keys   load_ms mem_B/key   seq_w/s  seq_p50  seq_p99 "
           " conc_w/s conc_p50 conc_p99  fail load1m\n");
    for (a = 0; a < n_nodes; a++) {
        if (nodes[a] < 1 || nodes[a] > MAX_NODES) {
            fprintf(stderr, "bench_kv: 1 to %u nodes\n", MAX_NODES);
            return 2;
        }
        /* mem/key counts beyond the same nodes with no keys. */
        if (keys[0] != 0) {
            run_row(dir, nodes[a], 0);
        }
        for (b = 0; b < n_keys; b++) {
            run_row(dir, nodes[a], keys[b]);
        }
    }
    return 0;
}
