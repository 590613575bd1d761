/*
 * The multi-process cluster: real `p2praft node` processes (the binary next
 * to this runner: build/ or build/asan/) on 127.0.0.1, driven through their
 * unix-socket API (the frame format of p2praft.h) and the `p2praft kv` and
 * `p2praft status` commands.
 *
 *   cluster/three_nodes   writes through every node, cas and del; kill -9
 *                         of the leader, a new leader commits; the killed
 *                         node restarts and catches up from the log; a
 *                         follower away while the log is compacted catches
 *                         up from a snapshot; all three killed and
 *                         restarted from disk lose nothing acknowledged.
 *   cluster/five_nodes    loses two nodes (one the leader), keeps
 *                         committing.
 *   cluster/cli_and_api   exit codes of kv/status, malformed API clients.
 *   cluster/paused_leader_reroutes  requests through a follower while the
 *                         leader is SIGSTOPped: answered within 3 s (re-
 *                         routed, or UNKNOWN for a write that had reached
 *                         it), not at the 5 s deadline.
 *   cluster/kv_exit_codes 3 (CLI timeout after sending: applied later),
 *                         6 BUSY, 5 FAILED (no leader), 7 not caught up.
 *   cluster/misconfigured_logs  wrong /p2p/ ID, unreachable peer, refused
 *                         raft streams with counts: lines at the default
 *                         log level; --peer naming the node itself refused.
 *
 * No fixed sleeps: every wait polls a node's status (or the API) until a
 * condition holds, within a bound. Ports are picked by binding port 0
 * (raft's configuration must name each member's address before it starts).
 * Children die with the runner (PR_SET_PDEATHSIG) and are killed at exit.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness_util.h"
#include "p2praft.h"
#include "raft/api.h"
#include "test.h"
#include "util/byteorder.h"

#define MAXN 5
#define MAXKV 512

struct tnode {
    pid_t pid;
    bool paused; /* SIGSTOPped: its API cannot answer */
    int port;
    char id[LP2P_PEER_ID_STRMAX];
    char key[300], dir[300], api[300], log[300];
    /* non-zero: these --peer values instead of the other members */
    unsigned n_peer_args;
    char peer_args[4][400];
    /* more arguments for `p2praft node` */
    unsigned n_extra;
    const char *extra[8];
};

struct tcl {
    char base[256];
    unsigned n;
    unsigned threshold, trailing;
    bool mem; /* --store mem: a restart starts empty (with --bootstrap) */
    struct tnode nodes[MAXN];
    /* acknowledged writes: the value each key must have */
    unsigned n_kv;
    char keys[MAXKV][32];
    char vals[MAXKV][32];
    bool present[MAXKV];
};

static struct tcl *live;

static char cli[4096];

static const char *cli_path(void)
{
    ssize_t n;
    char *slash;
    if (cli[0] == '\0') {
        n = readlink("/proc/self/exe", cli, sizeof(cli) - 16);
        ASSERT(n > 0);
        cli[n] = '\0';
        slash = strrchr(cli, '/');
        ASSERT(slash != NULL);
        strcpy(slash + 1, "p2praft");
    }
    return cli;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Pause between two polls of a condition (never a synchronisation). */
static void poll_pause(void)
{
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static unsigned scale(unsigned ms)
{
    return harness_slow() ? ms * 3 : ms;
}

/* ---- the API, as a client (frames from the node's codec) ----------------- */

static int api_connect(const char *path)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int read_full(int fd, uint8_t *p, size_t len, int timeout_ms)
{
    while (len > 0) {
        struct pollfd pf = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&pf, 1, timeout_ms) <= 0) {
            return -1;
        }
        n = read(fd, p, len);
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Send a raw frame body, read the response body (at most cap bytes kept).
 * Returns the response length, or -1 if the node could not be reached or
 * closed without answering. */
static long api_raw(const char *path, const uint8_t *body, size_t len,
                    uint8_t *resp, size_t cap)
{
    uint8_t hdr[P2PRAFT__API_PREFIX];
    uint32_t rlen = 0;
    int fd = api_connect(path);
    uint8_t *tmp;
    if (fd < 0) {
        return -1;
    }
    p2praft__api_frame_prefix(hdr, (uint32_t)len);
    if (write(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr) ||
        write(fd, body, len) != (ssize_t)len ||
        read_full(fd, hdr, sizeof(hdr), 15000) != 0) {
        close(fd);
        return -1;
    }
    (void)p2praft__api_frame(hdr, sizeof(hdr), &rlen);
    tmp = malloc(rlen + 1);
    if (tmp == NULL || read_full(fd, tmp, rlen, 15000) != 0) {
        free(tmp);
        close(fd);
        return -1;
    }
    close(fd);
    memcpy(resp, tmp, rlen < cap ? rlen : cap);
    free(tmp);
    return (long)rlen;
}

struct answer {
    int status; /* -1: unreachable */
    uint64_t index;
    char payload[8192];
};

/* A request body of `op`: a is the key, then (cas) b the expected value
 * and c the new one, or (set) b the value. Into body (owned, lp2p heap). */
static size_t api_body(uint8_t op, uint8_t flags, const char *a,
                       const char *b, const char *c, uint8_t **body)
{
    struct p2praft__api_req q;
    uint8_t *frame;
    size_t len = 0;
    memset(&q, 0, sizeof(q));
    q.op = op;
    q.flags = flags;
    q.key = (char *)a;
    if (op == P2PRAFT_API_CAS) {
        q.exp = (uint8_t *)b;
        q.elen = strlen(b);
        q.val = (uint8_t *)c;
        q.vlen = strlen(c);
    } else if (op == P2PRAFT_API_SET) {
        q.val = (uint8_t *)b;
        q.vlen = strlen(b);
    }
    frame = p2praft__api_request_encode(&q, &len);
    ASSERT(frame != NULL);
    memmove(frame, frame + P2PRAFT__API_PREFIX, len - P2PRAFT__API_PREFIX);
    *body = frame;
    return len - P2PRAFT__API_PREFIX;
}

static void api_call(const char *path, uint8_t op, uint8_t flags,
                     const char *a, const char *b, const char *c,
                     struct answer *ans)
{
    uint8_t *body, resp[8200];
    struct p2praft__api_resp r;
    size_t len = api_body(op, flags, a, b, c, &body);
    long rlen;
    memset(ans, 0, sizeof(*ans));
    ans->status = -1;
    rlen = api_raw(path, body, len, resp, sizeof(resp) - 1);
    p2praft_free(body);
    if (rlen > (long)sizeof(resp) - 1) {
        rlen = sizeof(resp) - 1;
    }
    if (rlen < 0 ||
        p2praft__api_response_parse(&r, resp, (size_t)rlen) != 0) {
        return;
    }
    ans->status = r.status;
    ans->index = r.index;
    memcpy(ans->payload, r.payload, r.len);
    ans->payload[r.len] = '\0';
}

/* A field of a status text, or "" (copied to out). */
static const char *field(const char *text, const char *name, char *out,
                         size_t cap)
{
    char pat[64];
    const char *p;
    size_t n = 0;
    snprintf(pat, sizeof(pat), "%s: ", name);
    out[0] = '\0';
    for (p = text; (p = strstr(p, pat)) != NULL; p++) {
        if (p == text || p[-1] == '\n') {
            p += strlen(pat);
            while (p[n] != '\0' && p[n] != '\n' && n + 1 < cap) {
                n++;
            }
            memcpy(out, p, n);
            out[n] = '\0';
            break;
        }
    }
    return out;
}

static uint64_t field_u64(const char *text, const char *name)
{
    char v[64];
    return strtoull(field(text, name, v, sizeof(v)), NULL, 10);
}

/* ---- processes ------------------------------------------------------------ */

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];
    struct stat st;
    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            rm_rf(path);
        } else {
            unlink(path);
        }
    }
    closedir(d);
    rmdir(dir);
}

static void cl_destroy(struct tcl *cl)
{
    unsigned i;
    for (i = 0; i < cl->n; i++) {
        if (cl->nodes[i].pid > 0) {
            kill(cl->nodes[i].pid, SIGKILL);
            waitpid(cl->nodes[i].pid, NULL, 0);
            cl->nodes[i].pid = 0;
        }
    }
    if (cl->base[0] != '\0') {
        rm_rf(cl->base);
    }
    free(cl);
    if (live == cl) {
        live = NULL;
    }
}

static void at_exit(void)
{
    if (live != NULL) {
        cl_destroy(live);
    }
}

static void dump_logs(struct tcl *cl)
{
    unsigned i;
    for (i = 0; i < cl->n; i++) {
        FILE *f = fopen(cl->nodes[i].log, "r");
        char line[512];
        int k = 0;
        if (f == NULL) {
            continue;
        }
        fprintf(stderr, "---- node %u log (last lines) ----\n", i);
        while (fgets(line, sizeof(line), f) != NULL) {
            if (++k > 200) {
                break;
            }
            fputs(line, stderr);
        }
        fclose(f);
    }
}

static struct tcl *cl_new(unsigned n, unsigned threshold, unsigned trailing)
{
    struct tcl *cl;
    unsigned i;
    static bool registered;
    if (!registered) {
        atexit(at_exit);
        registered = true;
    }
    if (live != NULL) {
        cl_destroy(live); /* left by a failed test */
    }
    cl = calloc(1, sizeof(*cl));
    ASSERT(cl != NULL);
    live = cl;
    cl->n = n;
    cl->threshold = threshold;
    cl->trailing = trailing;
    snprintf(cl->base, sizeof(cl->base), "/tmp/p2praft-cl-XXXXXX");
    ASSERT(mkdtemp(cl->base) != NULL);
    for (i = 0; i < n; i++) {
        struct tnode *nd = &cl->nodes[i];
        struct lp2p_key key;
        struct lp2p_peer_id pid;
        snprintf(nd->key, sizeof(nd->key), "%s/k%u", cl->base, i);
        snprintf(nd->dir, sizeof(nd->dir), "%s/d%u", cl->base, i);
        snprintf(nd->api, sizeof(nd->api), "%s/n%u.sock", cl->base, i);
        snprintf(nd->log, sizeof(nd->log), "%s/n%u.log", cl->base, i);
        ASSERT_OK(lp2p_key_generate(&key));
        ASSERT_OK(lp2p_key_save(nd->key, &key));
        ASSERT_OK(lp2p_peer_id_from_key(&key, &pid));
        lp2p_key_wipe(&key);
        ASSERT_OK(lp2p_peer_id_to_string(&pid, nd->id, sizeof(nd->id)));
        nd->port = harness_free_port();
        ASSERT(nd->port > 0);
    }
    return cl;
}

/* Wait until node i answers on its API. */
static void wait_api(struct tcl *cl, unsigned i, unsigned timeout_ms)
{
    uint64_t end = now_ms() + scale(timeout_ms);
    struct answer a;
    for (;;) {
        int st;
        api_call(cl->nodes[i].api, P2PRAFT_API_STATUS, 0, NULL, NULL, NULL,
                 &a);
        if (a.status == P2PRAFT_API_OK) {
            return;
        }
        if (waitpid(cl->nodes[i].pid, &st, WNOHANG) == cl->nodes[i].pid) {
            cl->nodes[i].pid = 0;
            dump_logs(cl);
            test__fail(__FILE__, __LINE__, "node %u exited (status %d)", i,
                       st);
        }
        if (now_ms() > end) {
            dump_logs(cl);
            test__fail(__FILE__, __LINE__, "node %u API not up", i);
        }
        poll_pause();
    }
}

static void start(struct tcl *cl, unsigned i, bool bootstrap)
{
    struct tnode *nd = &cl->nodes[i];
    char *argv[64], listen[64], peers[MAXN][400], thr[16], trl[16];
    int k = 0;
    unsigned j;
    snprintf(listen, sizeof(listen), "/ip4/127.0.0.1/tcp/%d", nd->port);
    snprintf(thr, sizeof(thr), "%u", cl->threshold);
    snprintf(trl, sizeof(trl), "%u", cl->trailing);
    argv[k++] = "p2praft";
    argv[k++] = "node";
    argv[k++] = "--key";
    argv[k++] = nd->key;
    argv[k++] = "--listen";
    argv[k++] = listen;
    argv[k++] = "--data-dir";
    argv[k++] = nd->dir;
    argv[k++] = "--api";
    argv[k++] = nd->api;
    argv[k++] = "--snapshot-threshold";
    argv[k++] = thr;
    argv[k++] = "--snapshot-trailing";
    argv[k++] = trl;
    for (j = 0; j < cl->n && nd->n_peer_args == 0; j++) {
        if (j == i) {
            continue;
        }
        snprintf(peers[j], sizeof(peers[j]), "/ip4/127.0.0.1/tcp/%d/p2p/%s",
                 cl->nodes[j].port, cl->nodes[j].id);
        argv[k++] = "--peer";
        argv[k++] = peers[j];
    }
    for (j = 0; j < nd->n_peer_args; j++) {
        argv[k++] = "--peer";
        argv[k++] = nd->peer_args[j];
    }
    for (j = 0; j < nd->n_extra; j++) {
        argv[k++] = (char *)nd->extra[j];
    }
    if (cl->mem) {
        argv[k++] = "--store";
        argv[k++] = "mem";
        bootstrap = true; /* nothing survived: a fresh member */
    }
    if (bootstrap) {
        argv[k++] = "--bootstrap";
    }
    argv[k] = NULL;
    cli_path();
    nd->pid = fork();
    ASSERT(nd->pid >= 0);
    if (nd->pid == 0) {
        int fd = open(nd->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(cli, argv);
        _exit(127);
    }
    wait_api(cl, i, 10000);
}

static void kill9(struct tcl *cl, unsigned i)
{
    ASSERT(cl->nodes[i].pid > 0);
    kill(cl->nodes[i].pid, SIGKILL);
    waitpid(cl->nodes[i].pid, NULL, 0);
    cl->nodes[i].pid = 0;
}

/* SIGTERM: the node must shut down cleanly (exit 0; under ASan, with no
 * leak or error). */
static void stop(struct tcl *cl, unsigned i)
{
    int st = 0;
    ASSERT(cl->nodes[i].pid > 0);
    kill(cl->nodes[i].pid, SIGTERM);
    ASSERT(waitpid(cl->nodes[i].pid, &st, 0) == cl->nodes[i].pid);
    cl->nodes[i].pid = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        dump_logs(cl);
        test__fail(__FILE__, __LINE__, "node %u exit status 0x%x", i, st);
    }
}

static void status_of(struct tcl *cl, unsigned i, struct answer *a)
{
    api_call(cl->nodes[i].api, P2PRAFT_API_STATUS, 0, NULL, NULL, NULL, a);
}

/* The index of the leader that every running node agrees on. */
static unsigned wait_leader(struct tcl *cl, unsigned timeout_ms)
{
    uint64_t end = now_ms() + scale(timeout_ms);
    struct answer a;
    char leader[128], l[128], role[32];
    for (;;) {
        unsigned i, li = cl->n;
        bool agree = true;
        leader[0] = '\0';
        for (i = 0; i < cl->n && agree; i++) {
            if (cl->nodes[i].pid <= 0 || cl->nodes[i].paused) {
                continue;
            }
            status_of(cl, i, &a);
            if (a.status != P2PRAFT_API_OK) {
                agree = false;
                break;
            }
            field(a.payload, "leader", l, sizeof(l));
            if (strcmp(l, "none") == 0 ||
                (leader[0] != '\0' && strcmp(l, leader) != 0)) {
                agree = false;
            }
            snprintf(leader, sizeof(leader), "%s", l);
            if (strcmp(field(a.payload, "role", role, sizeof(role)),
                       "leader") == 0) {
                li = i;
            }
        }
        if (agree && li < cl->n && strcmp(cl->nodes[li].id, leader) == 0) {
            return li;
        }
        if (now_ms() > end) {
            dump_logs(cl);
            test__fail(__FILE__, __LINE__, "no agreed leader in %u ms",
                       timeout_ms);
        }
        poll_pause();
    }
}

/* Wait until node i applied at least `index` and has caught up (it
 * serves plain reads from then on). */
static void wait_applied(struct tcl *cl, unsigned i, uint64_t index,
                         unsigned timeout_ms)
{
    uint64_t end = now_ms() + scale(timeout_ms);
    struct answer a;
    char v[16];
    for (;;) {
        status_of(cl, i, &a);
        if (a.status == P2PRAFT_API_OK &&
            field_u64(a.payload, "applied_index") >= index &&
            strcmp(field(a.payload, "caught_up", v, sizeof(v)), "yes") == 0) {
            return;
        }
        if (now_ms() > end) {
            dump_logs(cl);
            test__fail(__FILE__, __LINE__,
                       "node %u did not apply index %llu in %u ms: %s", i,
                       (unsigned long long)index, timeout_ms, a.payload);
        }
        poll_pause();
    }
}

static uint64_t commit_index(struct tcl *cl, unsigned i)
{
    struct answer a;
    status_of(cl, i, &a);
    ASSERT_EQ(a.status, P2PRAFT_API_OK);
    return field_u64(a.payload, "commit_index");
}

static uint64_t status_u64(struct tcl *cl, unsigned i, const char *name)
{
    struct answer a;
    status_of(cl, i, &a);
    ASSERT_EQ(a.status, P2PRAFT_API_OK);
    return field_u64(a.payload, name);
}

static void remember(struct tcl *cl, const char *key, const char *val,
                     bool present)
{
    unsigned i;
    for (i = 0; i < cl->n_kv; i++) {
        if (strcmp(cl->keys[i], key) == 0) {
            break;
        }
    }
    ASSERT(i < MAXKV);
    if (i == cl->n_kv) {
        cl->n_kv++;
        snprintf(cl->keys[i], sizeof(cl->keys[i]), "%s", key);
    }
    snprintf(cl->vals[i], sizeof(cl->vals[i]), "%s", val != NULL ? val : "");
    cl->present[i] = present;
}

/* set key=val through node i; must be acknowledged. Returns the index. */
static uint64_t put(struct tcl *cl, unsigned i, const char *key,
                    const char *val)
{
    struct answer a;
    api_call(cl->nodes[i].api, P2PRAFT_API_SET, 0, key, val, NULL, &a);
    if (a.status != P2PRAFT_API_OK) {
        dump_logs(cl);
        test__fail(__FILE__, __LINE__, "set %s via node %u: status %d %s",
                   key, i, a.status, a.payload);
    }
    remember(cl, key, val, true);
    return a.index;
}

/* Every acknowledged key has its value on node i (local reads, or
 * consistent ones). */
static void check_all(struct tcl *cl, unsigned i, bool consistent)
{
    unsigned k;
    struct answer a;
    for (k = 0; k < cl->n_kv; k++) {
        api_call(cl->nodes[i].api, P2PRAFT_API_GET, consistent ? 1 : 0,
                 cl->keys[k], NULL, NULL, &a);
        if (cl->present[k]) {
            if (a.status != P2PRAFT_API_OK ||
                strcmp(a.payload, cl->vals[k]) != 0) {
                test__fail(__FILE__, __LINE__,
                           "node %u: %s = (%d) '%s', expected '%s'", i,
                           cl->keys[k], a.status, a.payload, cl->vals[k]);
            }
        } else {
            ASSERT_EQ(a.status, P2PRAFT_API_NOTFOUND);
        }
    }
}

static unsigned other(struct tcl *cl, unsigned not1, unsigned not2)
{
    unsigned i;
    for (i = 0; i < cl->n; i++) {
        if (i != not1 && i != not2 && cl->nodes[i].pid > 0 &&
            !cl->nodes[i].paused) {
            return i;
        }
    }
    test__fail(__FILE__, __LINE__, "no other node");
}

/* ---- tests ---------------------------------------------------------------- */

/* Several kill -9 and restart rounds: about 8 s on a quiet machine. */
static void three_nodes(bool mem);

TEST_TIMEOUT(cluster, three_nodes, 120)
{
    three_nodes(false);
}

/* The same with the memory store, but for the restart of all three: a
 * restarted node starts empty and catches up from the others. */
TEST_TIMEOUT(cluster, three_nodes_mem, 120)
{
    three_nodes(true);
}

static void three_nodes(bool mem)
{
    struct tcl *cl = cl_new(3, 32, 8);
    struct answer a;
    char key[32], val[32];
    unsigned i, j, leader, dead, f;
    uint64_t t0, t, idx;

    cl->mem = mem;
    t0 = now_ms();
    for (i = 0; i < 3; i++) {
        start(cl, i, true);
    }
    leader = wait_leader(cl, 10000);
    printf("  3 nodes up, leader elected: %llu ms\n",
           (unsigned long long)(now_ms() - t0));

    /* Writes through every node; each is applied on the node that took it
     * when acknowledged; consistent reads see it everywhere. */
    t = now_ms();
    for (i = 0; i < 3; i++) {
        for (j = 0; j < 3; j++) {
            snprintf(key, sizeof(key), "k%u-%u", i, j);
            snprintf(val, sizeof(val), "v%u-%u", i, j);
            idx = put(cl, i, key, val);
            ASSERT(idx > 0);
            ASSERT(status_u64(cl, i, "applied_index") >= idx);
            api_call(cl->nodes[i].api, P2PRAFT_API_GET, 0, key, NULL, NULL,
                     &a);
            ASSERT_EQ(a.status, P2PRAFT_API_OK);
            ASSERT_STR_EQ(a.payload, val);
        }
    }
    printf("  9 writes through 3 nodes: %llu ms\n",
           (unsigned long long)(now_ms() - t));
    for (i = 0; i < 3; i++) {
        check_all(cl, i, true);
    }
    ASSERT(status_u64(cl, (leader + 1) % 3, "forwarded") > 0);
    ASSERT(status_u64(cl, leader, "served_forwards") > 0);

    /* compare-and-set and delete, from followers */
    f = (leader + 1) % 3;
    api_call(cl->nodes[f].api, P2PRAFT_API_CAS, 0, "k0-0", "v0-0", "c1", &a);
    ASSERT_EQ(a.status, P2PRAFT_API_OK);
    remember(cl, "k0-0", "c1", true);
    api_call(cl->nodes[f].api, P2PRAFT_API_CAS, 0, "k0-0", "v0-0", "c2", &a);
    ASSERT_EQ(a.status, P2PRAFT_API_MISMATCH);
    api_call(cl->nodes[f].api, P2PRAFT_API_CAS, 0, "absent", "", "x", &a);
    ASSERT_EQ(a.status, P2PRAFT_API_MISMATCH);
    api_call(cl->nodes[(f + 1) % 3].api, P2PRAFT_API_DEL, 0, "k0-1", NULL,
             NULL, &a);
    ASSERT_EQ(a.status, P2PRAFT_API_OK);
    remember(cl, "k0-1", NULL, false);
    api_call(cl->nodes[(f + 1) % 3].api, P2PRAFT_API_DEL, 0, "k0-1", NULL,
             NULL, &a);
    ASSERT_EQ(a.status, P2PRAFT_API_NOTFOUND);
    for (i = 0; i < 3; i++) {
        check_all(cl, i, true);
    }

    /* kill -9 the leader: a new leader commits, writes go on */
    dead = leader;
    kill9(cl, dead);
    t = now_ms();
    idx = put(cl, other(cl, dead, dead), "after-kill", "1");
    printf("  kill -9 leader -> first write acknowledged: %llu ms\n",
           (unsigned long long)(now_ms() - t));
    leader = wait_leader(cl, 5000);
    ASSERT(leader != dead);
    for (i = 0; i < 4; i++) {
        snprintf(key, sizeof(key), "log-%u", i);
        put(cl, other(cl, dead, i % 2 == 0 ? leader : dead), key, "L");
    }

    /* restart it: it catches up from the log (nothing was compacted past
     * its last entry) */
    t = now_ms();
    start(cl, dead, false);
    idx = commit_index(cl, leader);
    wait_applied(cl, dead, idx, 10000);
    printf("  restarted node caught up from the log: %llu ms\n",
           (unsigned long long)(now_ms() - t));
    if (!mem) {
        ASSERT_EQ(status_u64(cl, dead, "snapshots_installed"), 0);
    }
    check_all(cl, dead, false);

    /* a follower away while the leader compacts its log catches up from a
     * snapshot */
    f = other(cl, leader, leader);
    kill9(cl, f);
    t = now_ms();
    for (i = 0; i < 4 * cl->threshold; i++) {
        snprintf(key, sizeof(key), "snap-%u", i % 40);
        snprintf(val, sizeof(val), "s%u", i);
        put(cl, i % 2 == 0 ? leader : other(cl, leader, f), key, val);
    }
    printf("  %u writes with one node down: %llu ms\n", 4 * cl->threshold,
           (unsigned long long)(now_ms() - t));
    ASSERT(status_u64(cl, leader, "snapshots_taken") > 0);
    t = now_ms();
    start(cl, f, false);
    idx = commit_index(cl, leader);
    wait_applied(cl, f, idx, 10000);
    printf("  restarted node caught up from a snapshot: %llu ms\n",
           (unsigned long long)(now_ms() - t));
    ASSERT(status_u64(cl, f, "snapshots_installed") >= 1);
    check_all(cl, f, false);
    put(cl, f, "after-snapshot", "ok");

    /* all three go down, restart from disk: nothing acknowledged is lost.
     * The leader (which sent the snapshot) stops cleanly (checked: exit 0,
     * and under ASan no leak); the two others are killed -9. (The node
     * that installed the snapshot is not stopped cleanly on purpose:
     * libraft 0.22.1 leaks the InstallSnapshot messages a leader re-sends
     * while the follower is still installing, see the report.) */
    if (mem) {
        for (i = 0; i < 3; i++) {
            stop(cl, i);
        }
        printf("  total: %llu ms\n", (unsigned long long)(now_ms() - t0));
        cl_destroy(cl);
        return;
    }
    stop(cl, leader);
    kill9(cl, f);
    kill9(cl, other(cl, f, leader));
    t = now_ms();
    for (i = 0; i < 3; i++) {
        start(cl, i, false);
    }
    leader = wait_leader(cl, 10000);
    printf("  all 3 restarted from disk, leader elected: %llu ms\n",
           (unsigned long long)(now_ms() - t));
    for (i = 0; i < 3; i++) {
        check_all(cl, i, true);
    }
    put(cl, (leader + 2) % 3, "after-restart", "ok");
    for (i = 0; i < 3; i++) {
        check_all(cl, i, true);
    }
    printf("  %u keys verified on every node\n", cl->n_kv);
    for (i = 0; i < 3; i++) {
        stop(cl, i);
    }
    printf("  total: %llu ms\n", (unsigned long long)(now_ms() - t0));
    cl_destroy(cl);
}

static void five_nodes(bool mem);

TEST(cluster, five_nodes)
{
    five_nodes(false);
}

TEST(cluster, five_nodes_mem)
{
    five_nodes(true);
}

static void five_nodes(bool mem)
{
    struct tcl *cl = cl_new(5, 1024, 128);
    char key[32];
    unsigned i, leader, second;
    uint64_t t0 = now_ms(), t;

    cl->mem = mem;
    for (i = 0; i < 5; i++) {
        start(cl, i, true);
    }
    leader = wait_leader(cl, 10000);
    printf("  5 nodes up, leader elected: %llu ms\n",
           (unsigned long long)(now_ms() - t0));
    for (i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "a%u", i);
        put(cl, i % 5, key, "x");
    }
    /* lose two: the leader and a follower */
    second = (leader + 1) % 5;
    kill9(cl, leader);
    kill9(cl, second);
    t = now_ms();
    put(cl, other(cl, leader, second), "after", "1");
    printf("  2 of 5 killed (one the leader) -> write acknowledged: %llu "
           "ms\n",
           (unsigned long long)(now_ms() - t));
    for (i = 0; i < 30; i++) {
        unsigned k = (leader + 2 + i % 3) % 5;
        snprintf(key, sizeof(key), "b%u", i);
        put(cl, k, key, "y");
    }
    for (i = 0; i < 5; i++) {
        if (cl->nodes[i].pid > 0) {
            check_all(cl, i, true);
        }
    }
    for (i = 0; i < 5; i++) {
        if (cl->nodes[i].pid > 0) {
            stop(cl, i);
        }
    }
    printf("  total: %llu ms\n", (unsigned long long)(now_ms() - t0));
    cl_destroy(cl);
}

/* Send a raw body: the node must answer BAD REQUEST. */
static void expect_badreq(const char *api, const uint8_t *body, size_t len)
{
    uint8_t resp[512];
    struct p2praft__api_resp r;
    long rlen = api_raw(api, body, len, resp, sizeof(resp) - 1);
    ASSERT(rlen >= 0 && rlen < (long)sizeof(resp));
    ASSERT_OK(p2praft__api_response_parse(&r, resp, (size_t)rlen));
    ASSERT_EQ(r.status, P2PRAFT_API_BADREQ);
}

/* Run the CLI; its exit status; stdout in out, stderr in err (NULL: to
 * /dev/null). */
static int run_cli_full(char *const argv[], char *out, size_t cap, char *err,
                        size_t errcap)
{
    int fds[2], efds[2] = {-1, -1}, st = 0;
    pid_t pid;
    size_t len = 0, elen = 0;
    ASSERT(pipe(fds) == 0);
    if (err != NULL) {
        ASSERT(pipe(efds) == 0);
    }
    pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(fds[1], 1);
        dup2(err != NULL ? efds[1] : null, 2);
        close(fds[0]);
        close(fds[1]);
        if (err != NULL) {
            close(efds[0]);
            close(efds[1]);
        }
        execv(cli_path(), argv);
        _exit(127);
    }
    close(fds[1]);
    if (err != NULL) {
        close(efds[1]);
    }
    for (;;) {
        struct pollfd p[2] = {{fds[0], POLLIN, 0}, {efds[0], POLLIN, 0}};
        bool open_out = fds[0] >= 0, open_err = efds[0] >= 0;
        ssize_t n;
        if (!open_out && !open_err) {
            break;
        }
        if (poll(p, 2, (int)scale(15000)) <= 0) {
            break;
        }
        if (open_out && (p[0].revents & (POLLIN | POLLHUP)) != 0) {
            n = read(fds[0], out + len, cap - 1 - len);
            if (n <= 0) {
                close(fds[0]);
                fds[0] = -1;
            } else {
                len += (size_t)n;
            }
        }
        if (open_err && (p[1].revents & (POLLIN | POLLHUP)) != 0) {
            n = read(efds[0], err + elen, errcap - 1 - elen);
            if (n <= 0) {
                close(efds[0]);
                efds[0] = -1;
            } else {
                elen += (size_t)n;
            }
        }
    }
    out[len] = '\0';
    if (err != NULL) {
        err[elen] = '\0';
    }
    if (fds[0] >= 0) {
        close(fds[0]);
    }
    if (efds[0] >= 0) {
        close(efds[0]);
    }
    ASSERT(waitpid(pid, &st, 0) == pid);
    ASSERT(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static int run_cli(char *const argv[], char *out, size_t cap)
{
    return run_cli_full(argv, out, cap, NULL, 0);
}

TEST(cluster, cli_and_api)
{
    struct tcl *cl = cl_new(1, 1024, 128);
    struct tnode *nd = &cl->nodes[0];
    char out[4096];
    uint8_t body[64], resp[512], *valid;
    size_t len;
    uint32_t rlen32 = 0;
    struct answer a;
    int fd;

    start(cl, 0, true);
    wait_leader(cl, 10000);
    {
        char *set[] = {"p2praft", "kv", "--api", nd->api, "set", "k", "v1",
                       NULL};
        char *get[] = {"p2praft", "kv", "--api", nd->api, "get",
                       "--consistent", "k", NULL};
        char *miss[] = {"p2praft", "kv", "--api", nd->api, "get", "nope",
                        NULL};
        char *cas_bad[] = {"p2praft", "kv", "--api", nd->api, "cas", "k",
                           "zz", "v2", NULL};
        char *cas_ok[] = {"p2praft", "kv", "--api", nd->api, "cas", "k",
                          "v1", "v2", NULL};
        char *del[] = {"p2praft", "kv", "--api", nd->api, "del", "k", NULL};
        char *usage1[] = {"p2praft", "kv", "--api", nd->api, NULL};
        char *usage2[] = {"p2praft", "kv", "--api", nd->api, "set", "k",
                          NULL};
        char *usage3[] = {"p2praft", "kv", "get", "k", NULL};
        char *nosock[] = {"p2praft", "kv", "--api", "/nonexistent/x.sock",
                          "get", "k", NULL};
        char *status[] = {"p2praft", "status", "--api", nd->api, NULL};
        char *nostatus[] = {"p2praft", "status", "--data-dir", "/nonexistent",
                            NULL};
        ASSERT_EQ(run_cli(set, out, sizeof(out)), 0);
        ASSERT_EQ(run_cli(get, out, sizeof(out)), 0);
        ASSERT_STR_EQ(out, "v1\n");
        ASSERT_EQ(run_cli(miss, out, sizeof(out)), 1);
        ASSERT_EQ(run_cli(cas_bad, out, sizeof(out)), 1);
        ASSERT_EQ(run_cli(cas_ok, out, sizeof(out)), 0);
        ASSERT_EQ(run_cli(del, out, sizeof(out)), 0);
        ASSERT_EQ(run_cli(del, out, sizeof(out)), 1);
        ASSERT_EQ(run_cli(usage1, out, sizeof(out)), 2);
        ASSERT_EQ(run_cli(usage2, out, sizeof(out)), 2);
        ASSERT_EQ(run_cli(usage3, out, sizeof(out)), 2);
        ASSERT_EQ(run_cli(nosock, out, sizeof(out)), 4);
        ASSERT_EQ(run_cli(status, out, sizeof(out)), 0);
        ASSERT(strstr(out, "role: leader\n") != NULL);
        ASSERT(strstr(out, nd->id) != NULL);
        ASSERT(strstr(out, "members: 1\n") != NULL);
        ASSERT_EQ(run_cli(nostatus, out, sizeof(out)), 4);
    }

    /* malformed clients get BAD REQUEST and a closed connection: valid
     * bodies from the codec, each spoilt in one place */
    len = api_body(P2PRAFT_API_GET, 0, "k", NULL, NULL, &valid);
    ASSERT(len <= sizeof(body));
    memcpy(body, valid, len);
    p2praft_free(valid);
    body[P2PRAFT__API_REQ_VERSION] = 9;
    expect_badreq(nd->api, body, len);
    body[P2PRAFT__API_REQ_VERSION] = P2PRAFT__API_VERSION;
    body[P2PRAFT__API_REQ_OP] = 77;
    expect_badreq(nd->api, body, len);
    body[P2PRAFT__API_REQ_OP] = P2PRAFT_API_GET; /* key beyond the body */
    lp2p__put32(body + P2PRAFT__API_REQ_FIELDS, 1000);
    expect_badreq(nd->api, body, len);
    body[P2PRAFT__API_REQ_OP] = P2PRAFT_API_BARRIER; /* not for clients */
    expect_badreq(nd->api, body, P2PRAFT__API_REQ_FIELDS);
    body[P2PRAFT__API_REQ_OP] = P2PRAFT_API_STATUS; /* trailing bytes */
    expect_badreq(nd->api, body, P2PRAFT__API_REQ_FIELDS + 2);
    /* a frame length over the limit: answered without reading it */
    fd = api_connect(nd->api);
    ASSERT(fd >= 0);
    p2praft__api_frame_prefix(body, 0x7fffffff);
    ASSERT(write(fd, body, P2PRAFT__API_PREFIX) == P2PRAFT__API_PREFIX);
    ASSERT(read_full(fd, resp, P2PRAFT__API_PREFIX, 5000) == 0);
    ASSERT_EQ(p2praft__api_frame(resp, P2PRAFT__API_PREFIX, &rlen32),
              P2PRAFT_EAGAIN);
    ASSERT(rlen32 >= P2PRAFT__API_RESP_PAYLOAD && rlen32 < sizeof(resp));
    ASSERT(read_full(fd, resp, rlen32, 5000) == 0);
    {
        struct p2praft__api_resp r;
        ASSERT_OK(p2praft__api_response_parse(&r, resp, rlen32));
        ASSERT_EQ(r.status, P2PRAFT_API_BADREQ);
        resp[rlen32] = '\0';
        ASSERT(strstr((const char *)r.payload, "exceeds") != NULL);
    }
    ASSERT(read(fd, resp, 1) == 0); /* closed */
    close(fd);
    /* a client that hangs up mid-frame does not disturb the node */
    fd = api_connect(nd->api);
    ASSERT(fd >= 0);
    p2praft__api_frame_prefix(body, 100);
    ASSERT(write(fd, body, P2PRAFT__API_PREFIX + 2) ==
           P2PRAFT__API_PREFIX + 2);
    close(fd);
    api_call(nd->api, P2PRAFT_API_SET, 0, "still", "alive", NULL, &a);
    ASSERT_EQ(a.status, P2PRAFT_API_OK);
    api_call(nd->api, P2PRAFT_API_GET, 0, "still", NULL, NULL, &a);
    ASSERT_EQ(a.status, P2PRAFT_API_OK);
    ASSERT_STR_EQ(a.payload, "alive");
    stop(cl, 0);
    cl_destroy(cl);
}

/* ---- outcomes, re-routing, exit codes, what the log says ------------------ */

/* Send a request on a new connection without waiting: the fd. A node
 * that refused the connection (BUSY) may have closed it already: the send
 * then fails, and the answer tells. */
static int api_send(const char *path, uint8_t op, uint8_t flags,
                    const char *a, const char *b)
{
    uint8_t *body, hdr[P2PRAFT__API_PREFIX];
    size_t len = api_body(op, flags, a, b, NULL, &body);
    int fd = api_connect(path);
    ASSERT(fd >= 0);
    p2praft__api_frame_prefix(hdr, (uint32_t)len);
    if (send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL) == (ssize_t)sizeof(hdr)) {
        (void)!send(fd, body, len, MSG_NOSIGNAL);
    }
    p2praft_free(body);
    return fd;
}

/* Read the answer of api_send() into ans (status -1: none in time). */
static void api_recv(int fd, unsigned timeout_ms, struct answer *ans)
{
    uint8_t hdr[P2PRAFT__API_PREFIX], body[8200];
    uint32_t rlen = 0;
    struct p2praft__api_resp r;
    memset(ans, 0, sizeof(*ans));
    ans->status = -1;
    if (read_full(fd, hdr, sizeof(hdr), (int)timeout_ms) != 0) {
        return;
    }
    (void)p2praft__api_frame(hdr, sizeof(hdr), &rlen);
    if (rlen > sizeof(body) || read_full(fd, body, rlen, 5000) != 0 ||
        p2praft__api_response_parse(&r, body, rlen) != 0) {
        return;
    }
    ans->status = r.status;
    ans->index = r.index;
    memcpy(ans->payload, r.payload, r.len);
    ans->payload[r.len] = '\0';
}

/* Does node i's log (its stderr) hold a line with all of the needles? */
static bool log_has(struct tcl *cl, unsigned i, const char *const *needles,
                    size_t n)
{
    FILE *f = fopen(cl->nodes[i].log, "r");
    char line[1024];
    bool found = false;
    if (f == NULL) {
        return false;
    }
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        size_t k;
        found = true;
        for (k = 0; k < n && found; k++) {
            found = strstr(line, needles[k]) != NULL;
        }
    }
    fclose(f);
    return found;
}

static void wait_log(struct tcl *cl, unsigned i, const char *const *needles,
                     size_t n, unsigned timeout_ms)
{
    uint64_t end = now_ms() + scale(timeout_ms);
    while (!log_has(cl, i, needles, n)) {
        if (now_ms() > end) {
            dump_logs(cl);
            test__fail(__FILE__, __LINE__,
                       "node %u logged no line with '%s'%s%s in %u ms", i,
                       needles[0], n > 1 ? " and '" : "",
                       n > 1 ? needles[1] : "", timeout_ms);
        }
        poll_pause();
    }
}

static void pause_node(struct tcl *cl, unsigned i, bool paused)
{
    ASSERT(kill(cl->nodes[i].pid, paused ? SIGSTOP : SIGCONT) == 0);
    cl->nodes[i].paused = paused;
}

/* The leader is paused (SIGSTOP) just as requests reach a follower, which
 * forwards them to it. A new leader is up in a few hundred milliseconds:
 * reads and barriers, and writes that never reached the paused leader, go
 * to it; a write that had reached it is answered UNKNOWN at once. None
 * waits for the node's 5 s deadline. */
TEST(cluster, paused_leader_reroutes)
{
    struct tcl *cl = cl_new(3, 1024, 128);
    struct answer a;
    char key[32];
    int fds[6];
    uint64_t t0, took[6];
    unsigned i, leader, f, next, n_ok = 0, n_unknown = 0;
    const char *needles[2];

    for (i = 0; i < 3; i++) {
        start(cl, i, true);
    }
    leader = wait_leader(cl, 10000);
    f = (leader + 1) % 3;
    put(cl, f, "warm", "1"); /* the forward path is up */

    pause_node(cl, leader, true);
    t0 = now_ms();
    for (i = 0; i < 6; i++) {
        snprintf(key, sizeof(key), "p%u", i);
        fds[i] = i % 2 == 0
                     ? api_send(cl->nodes[f].api, P2PRAFT_API_GET, 1, "warm",
                                NULL)
                     : api_send(cl->nodes[f].api, P2PRAFT_API_SET, 0, key,
                                "v");
    }
    for (i = 0; i < 6; i++) {
        api_recv(fds[i], scale(15000), &a);
        took[i] = now_ms() - t0;
        close(fds[i]);
        snprintf(key, sizeof(key), "p%u", i);
        printf("  %s via a follower, leader paused: status %d after %llu "
               "ms%s%s\n",
               i % 2 == 0 ? "consistent get" : "set", a.status,
               (unsigned long long)took[i], a.status != 0 ? ": " : "",
               a.status != 0 ? a.payload : "");
        if (i % 2 == 0) {
            ASSERT_EQ(a.status, P2PRAFT_API_OK);
            ASSERT_STR_EQ(a.payload, "1");
        } else if (a.status == P2PRAFT_API_OK) {
            remember(cl, key, "v", true);
            n_ok++;
        } else {
            ASSERT_EQ(a.status, P2PRAFT_API_UNKNOWN);
            n_unknown++;
        }
        /* well before the node's 5 s request deadline */
        ASSERT(took[i] < scale(3000));
    }
    printf("  writes: %u ok, %u unknown\n", n_ok, n_unknown);
    next = wait_leader(cl, 10000);
    ASSERT(next != leader);
    /* each said who leads now, and in which term */
    needles[0] = "leader is now";
    needles[1] = cl->nodes[next].id;
    wait_log(cl, other(cl, leader, next), needles, 2, 5000);
    needles[0] = "this node is now the leader (term";
    wait_log(cl, next, needles, 1, 5000);

    pause_node(cl, leader, false);
    wait_leader(cl, 10000);
    put(cl, leader, "after-pause", "ok");
    for (i = 0; i < 3; i++) {
        check_all(cl, i, true);
    }
    for (i = 0; i < 3; i++) {
        stop(cl, i);
    }
    cl_destroy(cl);
}

/* The exit codes of `p2praft kv`, one per kind of answer: 3 when the
 * CLI's own --timeout-ms expires after it sent the request (the write is
 * then applied: its outcome was unknown, not "unreachable"), 6 BUSY (not
 * applied), 5 FAILED (no leader: not applied), 7 NOT CAUGHT UP. */
TEST(cluster, kv_exit_codes)
{
    struct tcl *cl = cl_new(3, 1024, 128);
    struct tnode *n0 = &cl->nodes[0];
    char out[4096], err[4096], v[16];
    struct answer a;
    uint64_t end;
    unsigned i, leader;
    int held[2];

    n0->extra[n0->n_extra++] = "--api-max-conns";
    n0->extra[n0->n_extra++] = "2";
    n0->extra[n0->n_extra++] = "--timeout-ms";
    n0->extra[n0->n_extra++] = harness_slow() ? "3000" : "1000";
    for (i = 0; i < 3; i++) {
        start(cl, i, true);
    }
    leader = wait_leader(cl, 10000);
    put(cl, 0, "k", "v");
    {
        /* 3: the node is paused, the request sent, no answer in time */
        char *set[] = {"p2praft", "kv", "--api", n0->api, "--timeout-ms",
                       "300", "set", "late", "1", NULL};
        unsigned p = leader == 0 ? 1 : 0;
        char *setp[] = {"p2praft", "kv", "--api", cl->nodes[p].api,
                        "--timeout-ms", "300", "set", "late", "1", NULL};
        pause_node(cl, p, true);
        ASSERT_EQ(run_cli_full(p == 0 ? set : setp, out, sizeof(out), err,
                               sizeof(err)),
                  3);
        ASSERT(strstr(err, "outcome is unknown") != NULL);
        pause_node(cl, p, false);
        /* ... and it was applied once the node woke up */
        end = now_ms() + scale(10000);
        for (;;) {
            api_call(cl->nodes[p].api, P2PRAFT_API_GET, 1, "late", NULL, NULL,
                     &a);
            if (a.status == P2PRAFT_API_OK) {
                break;
            }
            ASSERT(now_ms() < end);
            poll_pause();
        }
        ASSERT_STR_EQ(a.payload, "1");
    }
    {
        /* 6: both connection slots held; nothing is applied */
        char *set[] = {"p2praft", "kv", "--api", n0->api, "set", "busy", "1",
                       NULL};
        end = now_ms() + scale(10000);
        for (i = 0; i < 2; i++) {
            /* held: a STATUS answered on it proves the node serves it (a
             * slot freed just before may be seen a moment late) */
            for (;;) {
                held[i] = api_send(n0->api, P2PRAFT_API_STATUS, 0, NULL,
                                   NULL);
                api_recv(held[i], scale(5000), &a);
                if (a.status == P2PRAFT_API_OK) {
                    break;
                }
                ASSERT(a.status == P2PRAFT_API_BUSY || a.status == -1);
                close(held[i]);
                ASSERT(now_ms() < end);
                poll_pause();
            }
        }
        ASSERT_EQ(run_cli_full(set, out, sizeof(out), err, sizeof(err)), 6);
        ASSERT(strstr(err, "busy") != NULL);
        close(held[0]);
        close(held[1]);
        end = now_ms() + scale(10000);
        for (;;) {
            api_call(n0->api, P2PRAFT_API_GET, 1, "busy", NULL, NULL, &a);
            if (a.status != P2PRAFT_API_BUSY) {
                break;
            }
            ASSERT(now_ms() < end);
            poll_pause();
        }
        ASSERT_EQ(a.status, P2PRAFT_API_NOTFOUND);
    }
    /* 5: the others stopped, node 0 knows no leader: a write fails, and
     * surely was not applied */
    stop(cl, 1);
    stop(cl, 2);
    end = now_ms() + scale(10000);
    for (;;) {
        status_of(cl, 0, &a);
        if (a.status == P2PRAFT_API_OK &&
            strcmp(field(a.payload, "leader", v, sizeof(v)), "none") == 0) {
            break;
        }
        ASSERT(now_ms() < end);
        poll_pause();
    }
    {
        char *set[] = {"p2praft", "kv", "--api", n0->api, "set", "nol", "1",
                       NULL};
        ASSERT_EQ(run_cli_full(set, out, sizeof(out), err, sizeof(err)), 5);
        ASSERT(strstr(err, "no leader") != NULL);
    }
    /* 7: node 0 restarted alone has not caught up; status says so */
    stop(cl, 0);
    start(cl, 0, false);
    {
        char *get[] = {"p2praft", "kv", "--api", n0->api, "get", "k", NULL};
        char *status[] = {"p2praft", "status", "--api", n0->api, NULL};
        ASSERT_EQ(run_cli_full(get, out, sizeof(out), err, sizeof(err)), 7);
        ASSERT(strstr(err, "caught up") != NULL);
        ASSERT_EQ(run_cli(status, out, sizeof(out)), 0);
        ASSERT(strstr(out, "caught_up: no\n") != NULL);
        start(cl, 1, false);
        wait_applied(cl, 0, 0, 10000);
        ASSERT_EQ(run_cli(get, out, sizeof(out)), 0);
        ASSERT_STR_EQ(out, "v\n");
    }
    stop(cl, 0);
    stop(cl, 1);
    cl_destroy(cl);
}

/* A misconfigured node used to print `ready`, then nothing, and stay a
 * candidate for ever. At the default log level it now says which peer has
 * another key than its /p2p/ ID, which one is unreachable (and for how
 * long), and how many raft streams it refused; a --peer naming the node
 * itself is refused at start. */
TEST(cluster, misconfigured_logs)
{
    struct tcl *cl = cl_new(2, 1024, 128);
    struct tnode *a = &cl->nodes[0], *b = &cl->nodes[1];
    char ghost[2][LP2P_PEER_ID_STRMAX], out[4096], err[4096], dir[320];
    char listen[64], self[400];
    const char *needles[3];
    unsigned i;
    int port;

    for (i = 0; i < 2; i++) {
        struct lp2p_key key;
        struct lp2p_peer_id pid;
        ASSERT_OK(lp2p_key_generate(&key));
        ASSERT_OK(lp2p_peer_id_from_key(&key, &pid));
        lp2p_key_wipe(&key);
        ASSERT_OK(lp2p_peer_id_to_string(&pid, ghost[i], sizeof(ghost[i])));
    }
    port = harness_free_port(); /* nobody listens there */
    ASSERT(port > 0);
    /* b lists a correctly; a lists b's address with another ID, and a peer
     * at a dead port */
    snprintf(a->peer_args[0], sizeof(a->peer_args[0]),
             "/ip4/127.0.0.1/tcp/%d/p2p/%s", b->port, ghost[0]);
    snprintf(a->peer_args[1], sizeof(a->peer_args[1]),
             "/ip4/127.0.0.1/tcp/%d/p2p/%s", port, ghost[1]);
    a->n_peer_args = 2;
    start(cl, 1, true);
    start(cl, 0, true);

    needles[0] = "another key than this /p2p/ ID";
    needles[1] = ghost[0];
    wait_log(cl, 0, needles, 2, 10000);
    needles[0] = "unreachable for";
    needles[1] = ghost[1];
    wait_log(cl, 0, needles, 2, 10000);
    /* b's raft streams are refused by a (b is not among a's members) */
    needles[0] = "refused";
    needles[1] = P2PRAFT_PROTOCOL;
    needles[2] = "in all";
    wait_log(cl, 0, needles, 3, 15000);

    /* --peer naming the node itself */
    snprintf(dir, sizeof(dir), "%s/self", cl->base);
    snprintf(listen, sizeof(listen), "/ip4/127.0.0.1/tcp/%d",
             harness_free_port());
    snprintf(self, sizeof(self), "%s/p2p/%s", listen, a->id);
    {
        char *argv[] = {"p2praft", "node",   "--key",  a->key, "--data-dir",
                        dir,       "--listen", listen, "--peer", self,
                        "--bootstrap", NULL};
        ASSERT_EQ(run_cli_full(argv, out, sizeof(out), err, sizeof(err)), 1);
        ASSERT(strstr(err, "names this node itself") != NULL);
        ASSERT(strstr(out, "ready") == NULL);
    }
    stop(cl, 0);
    stop(cl, 1);
    cl_destroy(cl);
}
