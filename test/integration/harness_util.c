/* See harness_util.h. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness_util.h"

bool harness_slow(void)
{
    const char *v = getenv("P2PRAFT_VALGRIND");
    return v != NULL && v[0] == '1';
}

unsigned harness_scaled_ms(unsigned ms)
{
    const char *v = getenv("P2PRAFT_TEST_TIMEOUT_SCALE");
    char *end;
    double k;
    if (v == NULL || v[0] == '\0') {
        return ms;
    }
    k = strtod(v, &end);
    if (*end != '\0' || !(k > 1) || k > 100) {
        return ms;
    }
    return (unsigned)((double)ms * k);
}

/* The kernel's ephemeral range, from which it picks the source port of
 * every outgoing connection and the port of a bind to port 0. */
static void ephemeral_range(int *lo, int *hi)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    *lo = 32768;
    *hi = 60999;
    if (f != NULL) {
        if (fscanf(f, "%d %d", lo, hi) != 2) {
            *lo = 32768;
            *hi = 60999;
        }
        fclose(f);
    }
}

static bool port_bindable(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    if (fd < 0) {
        return false;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* A port that a node listens on later, and again after a restart. A port
 * from the ephemeral range would be free now, yet the kernel may hand it
 * meanwhile to any outgoing connection (the cluster's own dials among
 * them) or to a bind to port 0, and the listen then fails with "address
 * already in use". So the port is taken below that range (or above it),
 * where the kernel assigns nothing by itself; each test process starts at
 * its own place, so that processes running side by side rarely meet, and a
 * port that is bound is skipped. */
int harness_free_port(void)
{
    static int next = -1;
    int lo, hi, first, span, tries;
    ephemeral_range(&lo, &hi);
    if (lo > 10000 + 1024) {
        first = 10000;
        span = lo - 10000;
    } else {
        first = hi + 1;
        span = 65535 - hi;
    }
    if (span <= 0) {
        return -1;
    }
    if (next < 0) {
        next = (int)(((unsigned)getpid() * 7919u) % (unsigned)span);
    }
    for (tries = 0; tries < span; tries++) {
        int port = first + next;
        next = (next + 1) % span;
        if (port_bindable(port)) {
            return port;
        }
    }
    return -1;
}

void harness_rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];
    struct stat st;
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
                harness_rm_rf(path);
            } else {
                unlink(path);
            }
        }
        closedir(d);
    }
    rmdir(dir);
}

uint64_t harness_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *harness_cli_path(void)
{
    static char cli[4096];
    ssize_t n;
    char *slash;
    if (cli[0] != '\0') {
        return cli;
    }
    n = readlink("/proc/self/exe", cli, sizeof(cli) - 16);
    if (n <= 0) {
        cli[0] = '\0';
        return NULL;
    }
    cli[n] = '\0';
    slash = strrchr(cli, '/');
    if (slash == NULL) {
        cli[0] = '\0';
        return NULL;
    }
    strcpy(slash + 1, "p2praft");
    return cli;
}

static void deadline_cb(uv_timer_t *t)
{
    (void)t;
}

bool harness_run_until(uv_loop_t *loop, bool (*cond)(void *ctx), void *ctx,
                       unsigned timeout_ms)
{
    uv_timer_t timer;
    uint64_t end;
    bool ok;
    uv_update_time(loop);
    end = uv_now(loop) + timeout_ms;
    uv_timer_init(loop, &timer);
    /* Only wakes the loop at the deadline; the condition is checked after
     * every loop iteration, i.e. after every event. */
    uv_timer_start(&timer, deadline_cb, timeout_ms, 0);
    while (!(ok = cond(ctx)) && uv_now(loop) < end) {
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

struct leader_ctx {
    struct raft *const *rafts;
    unsigned n;
    int leader;
};

static bool has_leader(void *ctx)
{
    struct leader_ctx *l = ctx;
    unsigned i;
    int leader = -1;
    for (i = 0; i < l->n; i++) {
        if (l->rafts[i] != NULL && raft_state(l->rafts[i]) == RAFT_LEADER) {
            leader = (int)i;
        }
    }
    if (leader < 0) {
        return false;
    }
    for (i = 0; i < l->n; i++) {
        raft_id id;
        const char *addr;
        if (l->rafts[i] == NULL) {
            continue;
        }
        raft_leader(l->rafts[i], &id, &addr);
        if (id != l->rafts[leader]->id) {
            return false;
        }
    }
    l->leader = leader;
    return true;
}

int harness_wait_leader(uv_loop_t *loop, struct raft *const *rafts,
                        unsigned n, unsigned timeout_ms)
{
    struct leader_ctx l = {rafts, n, -1};
    if (!harness_run_until(loop, has_leader, &l, timeout_ms)) {
        return -1;
    }
    return l.leader;
}

int harness_consensus_new(struct p2praft_consensus **c, uv_loop_t *loop,
                          const struct p2praft_type *st,
                          const struct p2praft_op_type *op,
                          const void *initial)
{
    if (*c != NULL) {
        return 0;
    }
    return op != NULL ? p2praft_oplog_new(c, loop, st, op, initial)
                      : p2praft_consensus_new(c, loop, st, initial);
}

int harness_raft_start(struct raft *r, bool bootstrap, unsigned n,
                       const raft_id *ids, const char *const *addrs)
{
    struct raft_configuration conf;
    unsigned j;
    int rv;
    if (bootstrap) {
        raft_configuration_init(&conf);
        for (j = 0; j < n; j++) {
            rv = raft_configuration_add(&conf, ids[j], addrs[j], RAFT_VOTER);
            if (rv != 0) {
                raft_configuration_close(&conf);
                return LP2P_ERAFT;
            }
        }
        rv = raft_bootstrap(r, &conf);
        raft_configuration_close(&conf);
        if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
            fprintf(stderr, "raft_bootstrap: %s\n", raft_errmsg(r));
            return LP2P_ERAFT;
        }
    }
    rv = raft_start(r);
    if (rv != 0) {
        fprintf(stderr, "raft_start: %s\n", raft_errmsg(r));
        return LP2P_ERAFT;
    }
    return 0;
}

int harness_attach_actor(struct p2praft_consensus *c,
                         struct p2praft_actor **actor, struct raft *r)
{
    int rv;
    if (*actor == NULL) {
        rv = p2praft_actor_new(actor, r);
        if (rv != 0) {
            return rv;
        }
    }
    p2praft_consensus_set_actor(c, *actor);
    return 0;
}

static void pump_cb(void *ctx, int status, void *state, const char *errmsg);

static void pump_issue(struct harness_pump *p)
{
    char m[32];
    struct harness_msg_state st;
    snprintf(m, sizeof(m), "count: %d", p->issued);
    st.Msg = m;
    if (p2praft_consensus_commit_state(p->c, &st, pump_cb, p) != 0) {
        p->failures++;
        p->done++;
    }
    p->issued++;
}

static void pump_cb(void *ctx, int status, void *state, const char *errmsg)
{
    struct harness_pump *p = ctx;
    (void)errmsg;
    p2praft_value_destroy(p->type, state);
    if (status != 0 && p->failures++ == 0) {
        p->first_error = status;
    }
    p->done++;
    if (p->issued < p->total) {
        pump_issue(p);
    }
}

void harness_pump_start(struct harness_pump *p)
{
    while (p->issued < 64 && p->issued < p->total) {
        pump_issue(p);
    }
}

bool harness_pump_done(void *ctx)
{
    struct harness_pump *p = ctx;
    return p->done >= p->total;
}

bool harness_snapshot_persisted(void *ctx)
{
    struct harness_snap *s = ctx;
    unsigned long long idx = raft_last_applied(s->r), term, index, ts;
    bool found = false;
    struct dirent *e;
    DIR *d;
    if (s->r->legacy.snapshot_taking ||
        p2praft_consensus_snapshots(s->c) <= s->before) {
        return false;
    }
    d = opendir(s->dir);
    if (d == NULL) {
        return false;
    }
    while (!found && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".meta") == 0 &&
            sscanf(e->d_name, "snapshot-%llu-%llu-%llu", &term, &index,
                   &ts) == 3 &&
            index == idx) {
            found = true;
        }
    }
    closedir(d);
    return found;
}

int harness_drop_segments(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    int snaps = 0;
    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        if (strncmp(e->d_name, "snapshot-", 9) == 0) {
            snaps++;
            continue;
        }
        if (strncmp(e->d_name, "metadata", 8) == 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    return snaps;
}
