/*
 * Start-up check of a data directory: what the check that runs before raft
 * loads a node's files costs, against the whole start (the check, then
 * raft_uv loading and replaying the same files).
 *
 * One node (p2praft_node) with snapshots off writes keys (64-byte values,
 * from 4 threads, so group commit packs a few into some entries) until its
 * log holds N entries (default 100,000), all kept in its segments, and
 * stops. The writers cycle over 256 keys: the key-value store copies its
 * map on every write, so a state of 100k keys would measure that instead. Then, 5 times each, medians printed: p2praft_datadir_check() on
 * the directory, and a full p2praft_node_start() + stop on it (which runs
 * the same check, then raft's load). The directory lives under BENCH_TMP
 * (default /tmp); its file system type is printed.
 *
 * Usage: bench_datadir [entries]; BENCH_KEEP=1 keeps the directory (for
 * `p2praft check --data-dir` or a profiler) and prints its path.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <time.h>

#include "../test/integration/harness_util.c"

#define WRITERS 4
#define RUNS 5

struct writer {
    struct p2praft_node *node;
    unsigned id;
    volatile bool *stop;
    unsigned written;
    int failures;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *write_keys(void *arg)
{
    struct writer *w = arg;
    char key[32], val[65], err[256];
    unsigned i;
    memset(val, 'v', 64);
    val[64] = '\0';
    for (i = 0; !*w->stop; i++) {
        snprintf(key, sizeof(key), "key-%u-%u", w->id, i % 64);
        if (p2praft_node_set(w->node, key, val, 64, err, sizeof(err)) != 0) {
            w->failures++;
        }
        w->written++;
    }
    return NULL;
}

static int start(struct p2praft_node **node, struct lp2p_key *key,
                 const char *dir, bool bootstrap)
{
    struct p2praft_node_config cfg;
    const char *listen[1] = {"/ip4/127.0.0.1/tcp/0"};
    char err[512];
    int rv;
    p2praft_node_config_init(&cfg);
    cfg.key = key;
    cfg.listen = listen;
    cfg.n_listen = 1;
    cfg.data_dir = dir;
    cfg.api_path = "";
    cfg.bootstrap = bootstrap;
    cfg.snapshot_threshold = 1u << 30; /* keep every entry in the log */
    rv = p2praft_node_start(node, &cfg, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "node start: %s\n", err);
    }
    return rv;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[n / 2];
}

static const char *fs_name(const char *path)
{
    struct statfs sf;
    if (statfs(path, &sf) != 0) {
        return "?";
    }
    return sf.f_type == 0x01021994 ? "tmpfs" : sf.f_type == 0xEF53 ? "ext4"
                                                                    : "other";
}

int main(int argc, char **argv)
{
    unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 100000;
    const char *tmp = getenv("BENCH_TMP") != NULL ? getenv("BENCH_TMP")
                                                  : "/tmp";
    struct writer w[WRITERS];
    pthread_t th[WRITERS];
    struct p2praft_datadir_info info;
    struct p2praft_node *node;
    struct lp2p_key key;
    char base[512], dir[600], err[512];
    double t, checks[RUNS], starts[RUNS];
    volatile bool stop = false;
    unsigned keys = 0;
    int i, failures = 0;

    snprintf(base, sizeof(base), "%s/p2praft-bench-dd-XXXXXX", tmp);
    if (mkdtemp(base) == NULL || lp2p_key_generate(&key) != 0) {
        return 1;
    }
    snprintf(dir, sizeof(dir), "%s/node", base);
    if (start(&node, &key, dir, true) != 0) {
        return 1;
    }
    /* a leader first: a single voter elects itself at once */
    while (p2praft_node_set(node, "warm", "up", 2, err, sizeof(err)) != 0) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    t = now_ms();
    for (i = 0; i < WRITERS; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].node = node;
        w[i].id = (unsigned)i;
        w[i].stop = &stop;
        pthread_create(&th[i], NULL, write_keys, &w[i]);
    }
    while (!stop) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        char *status = NULL, *p;
        nanosleep(&ts, NULL);
        if (p2praft_node_status(node, &status) == 0) {
            p = strstr(status, "commit_index: ");
            if (p != NULL && strtoull(p + 14, NULL, 10) >= n) {
                stop = true;
            }
            p2praft_free(status);
        }
    }
    for (i = 0; i < WRITERS; i++) {
        pthread_join(th[i], NULL);
        failures += w[i].failures;
        keys += w[i].written;
    }
    printf("wrote %u keys into %u+ entries in %.0f ms (%d failed), %s\n",
           keys, n, now_ms() - t, failures, fs_name(base));
    p2praft_node_stop(node);

    for (i = 0; i < RUNS; i++) {
        t = now_ms();
        if (p2praft_datadir_check(dir, &info, err, sizeof(err)) != 0) {
            fprintf(stderr, "check: %s\n", err);
            return 1;
        }
        checks[i] = now_ms() - t;
        t = now_ms();
        if (start(&node, &key, dir, false) != 0) {
            return 1;
        }
        starts[i] = now_ms() - t;
        p2praft_node_stop(node);
    }
    printf("directory: %llu entries, %u segments, %.1f MiB\n",
           (unsigned long long)info.entries, info.segments,
           (double)info.bytes_read / (1024.0 * 1024.0));
    printf("check alone: %.1f ms; whole node start (check + raft load): "
           "%.1f ms (medians of %d)\n",
           median(checks, RUNS), median(starts, RUNS), RUNS);
    lp2p_key_wipe(&key);
    if (getenv("BENCH_KEEP") != NULL) {
        printf("kept: %s\n", dir);
    } else {
        harness_rm_rf(base);
    }
    return 0;
}
