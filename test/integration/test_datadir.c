/*
 * The data directory as an operator meets it, with real `p2praft node`
 * processes (the binary next to this runner) and files that libraft itself
 * wrote (raft/datadir.c, raft/diskcheck.c, util/sockpath.c):
 *
 *   datadir/one_node_per_directory   a second node on a live node's
 *                                    directory refuses with the holder's
 *                                    PID and touches nothing; so do the
 *                                    library and `p2praft check`
 *   datadir/owner                    another key; a directory from before
 *                                    owners were recorded
 *   datadir/bootstrap_on_state       --bootstrap on state: refused
 *   datadir/mem_restart_refused      a memory-store node started again
 *                                    under the same key: refused (it lost
 *                                    its term, vote and log)
 *   datadir/closed_segment_damage    4 bytes flipped in a closed segment,
 *   datadir/corrupt_file_refused     a corrupt-* file libraft set aside,
 *   datadir/metadata_deleted         deleted metadata,
 *   datadir/snapshot_damage          a changed snapshot: refused, named,
 *                                    with the way to recover
 *   datadir/snapshot_install_checked a leader's changed snapshot, sent to
 *                                    a follower: refused on install
 *   datadir/kill9_and_torn_tail      kill -9 restarts with no manual step;
 *                                    a torn last write is dropped, a
 *                                    changed complete one refused
 *   datadir/api_path                 --api never removes what it did not
 *                                    create: a file, a live socket
 *   datadir/no_space                 too small for one segment: refused
 *   datadir/check_read_only_backup   `p2praft check` on a read-only copy
 *   datadir/permission_warnings      key file and directory open to others
 *
 * Waits poll the child's output (or its exit) within a bound; no sleeps.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
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
#include "test.h"

static char base[64];

/* The CLI binary beside this test binary (see harness_cli_path()). */
static const char *cli_path(void)
{
    const char *p = harness_cli_path();
    ASSERT(p != NULL);
    return p;
}

static int scale(int ms)
{
    return harness_slow() ? ms * 5 : ms;
}

/* ---- children ------------------------------------------------------------ */

struct child {
    pid_t pid;
    int out; /* stdout and stderr, merged */
    char buf[16384];
    size_t len;
    int status; /* once exited */
    bool exited;
};

/* PIDs of the running nodes, killed at the start of the next test when a
 * failed one left them (PIDs, not pointers into a test's stack). */
static pid_t live[8];

static void track(pid_t pid, bool on)
{
    size_t i;
    for (i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
        if (on ? live[i] == 0 : live[i] == pid) {
            live[i] = on ? pid : 0;
            return;
        }
    }
    ASSERT(!on);
}

static void spawn(struct child *c, char *const argv[], bool tracked)
{
    int fds[2];
    ASSERT(pipe(fds) == 0);
    memset(c, 0, sizeof(*c));
    c->pid = fork();
    ASSERT(c->pid >= 0);
    if (c->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        unsetenv("P2PRAFT_LOG");
        execvp(argv[0][0] == '/' ? argv[0] : cli_path(), argv);
        _exit(127);
    }
    close(fds[1]);
    c->out = fds[0];
    if (tracked) {
        track(c->pid, true);
    }
}

/* Read until `needle` shows up (1), or EOF / timeout (0). */
static int read_until(struct child *c, const char *needle, int timeout_ms)
{
    for (;;) {
        struct pollfd p = {c->out, POLLIN, 0};
        ssize_t n;
        c->buf[c->len] = '\0';
        if (needle != NULL && strstr(c->buf, needle) != NULL) {
            return 1;
        }
        if (c->len + 1 >= sizeof(c->buf) ||
            poll(&p, 1, scale(timeout_ms)) <= 0) {
            return 0;
        }
        n = read(c->out, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
        if (n <= 0) {
            return 0;
        }
        c->len += (size_t)n;
    }
}

/* Wait for the child to exit; its exit code (-1 if signalled). */
static int reap(struct child *c)
{
    if (!c->exited) {
        read_until(c, NULL, 15000); /* drain to EOF */
        if (waitpid(c->pid, &c->status, 0) != c->pid) {
            test__fail(__FILE__, __LINE__, "waitpid %d: %s; output: %s",
                       (int)c->pid, strerror(errno), c->buf);
        }
        c->exited = true;
        close(c->out);
        track(c->pid, false);
    }
    return WIFEXITED(c->status) ? WEXITSTATUS(c->status) : -1;
}

static void kill_child(struct child *c, int sig)
{
    if (c->pid > 0 && !c->exited) {
        kill(c->pid, sig);
        reap(c);
    }
}

static void kill_all(void)
{
    size_t i;
    for (i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
        if (live[i] > 0) {
            kill(live[i], SIGKILL);
            waitpid(live[i], NULL, 0);
            live[i] = 0;
        }
    }
}

/* Run the CLI to completion; its exit code, its output in c->buf. */
static int run(struct child *c, char *const argv[])
{
    spawn(c, argv, false);
    return reap(c);
}

/* ---- a one-node cluster --------------------------------------------------- */

struct node {
    char key[128], dir[128], api[128];
    char id[LP2P_PEER_ID_STRMAX];
    struct child c;
};

static void make_key(char *path, size_t cap, const char *name, char *id)
{
    struct lp2p_key key;
    struct lp2p_peer_id pid;
    snprintf(path, cap, "%s/%s", base, name);
    ASSERT_OK(lp2p_key_generate(&key));
    ASSERT_OK(lp2p_key_save(path, &key));
    ASSERT_OK(lp2p_peer_id_from_key(&key, &pid));
    lp2p_key_wipe(&key);
    ASSERT_OK(lp2p_peer_id_to_string(&pid, id, LP2P_PEER_ID_STRMAX));
}

static void node_init(struct node *n, const char *name)
{
    char kname[64];
    memset(n, 0, sizeof(*n));
    snprintf(kname, sizeof(kname), "%s.key", name);
    make_key(n->key, sizeof(n->key), kname, n->id);
    snprintf(n->dir, sizeof(n->dir), "%s/%s", base, name);
    snprintf(n->api, sizeof(n->api), "%s/%s.sock", base, name);
}

/* Start `p2praft node` with the node's key, dir and api, plus extra
 * arguments (NULL-terminated). Returns 1 once it printed "ready", 0 if
 * it exited first (c->buf holds what it said). */
static int node_start(struct node *n, const char *key, ...)
{
    char *argv[32];
    va_list ap;
    const char *a;
    int k = 0;
    argv[k++] = "p2praft";
    argv[k++] = "node";
    argv[k++] = "--key";
    argv[k++] = (char *)(key != NULL ? key : n->key);
    argv[k++] = "--data-dir";
    argv[k++] = n->dir;
    argv[k++] = "--api";
    argv[k++] = n->api;
    va_start(ap, key);
    while ((a = va_arg(ap, const char *)) != NULL && k < 31) {
        argv[k++] = (char *)a;
    }
    va_end(ap);
    argv[k] = NULL;
    spawn(&n->c, argv, true);
    if (read_until(&n->c, "\nready\n", 15000)) {
        return 1;
    }
    reap(&n->c);
    return 0;
}

/* The node must refuse to start, saying each of the strings. */
#define EXPECT_REFUSED(n, ...)                                                \
    do {                                                                      \
        const char *want_[] = {__VA_ARGS__, NULL};                            \
        int i_;                                                               \
        if (node_start(n, NULL, NULL)) {                                      \
            test__fail(__FILE__, __LINE__, "started: %s", (n)->c.buf);        \
        }                                                                     \
        ASSERT_EQ(reap(&(n)->c), 1);                                          \
        for (i_ = 0; want_[i_] != NULL; i_++) {                               \
            if (strstr((n)->c.buf, want_[i_]) == NULL) {                      \
                test__fail(__FILE__, __LINE__, "no '%s' in: %s", want_[i_],   \
                           (n)->c.buf);                                       \
            }                                                                 \
        }                                                                     \
    } while (0)

/* `p2praft kv --api` with up to 3 arguments; its exit code, output in
 * *out (may be NULL). */
static int kv(struct node *n, const char *op, const char *a, const char *b,
              char *out, size_t cap)
{
    struct child c;
    char *argv[10] = {"p2praft", "kv", "--api", n->api, (char *)op,
                      (char *)a, (char *)b, NULL};
    int rv = run(&c, argv);
    if (out != NULL) {
        size_t k = strlen(c.buf) < cap ? strlen(c.buf) : cap - 1;
        memcpy(out, c.buf, k);
        out[k] = '\0';
    }
    return rv;
}

static void set_ok(struct node *n, const char *k, const char *v)
{
    char out[512];
    if (kv(n, "set", k, v, out, sizeof(out)) != 0) {
        test__fail(__FILE__, __LINE__, "set %s: %s", k, out);
    }
}

/* A consistent read of k must give v. A node that just started answers
 * once it has a leader (exit 5, "no leader", until then): polled. */
static void get_is(struct node *n, const char *k, const char *v)
{
    char out[4096], want[4096];
    time_t end = time(NULL) + scale(10000) / 1000;
    int rv;
    while ((rv = kv(n, "get", "--consistent", k, out, sizeof(out))) == 5 &&
           time(NULL) < end) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL); /* a pause between polls, not a wait */
    }
    snprintf(want, sizeof(want), "%s\n", v);
    if (rv != 0 || strcmp(out, want) != 0) {
        test__fail(__FILE__, __LINE__, "get %s: exit %d, '%s' instead of '%s'",
                   k, rv, out, v);
    }
}

static void rm_tree(const char *dir);

/* At exit (a failed test ends its process): no node or directory left. */
static void at_exit(void)
{
    char cmd[128];
    kill_all();
    if (base[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
        if (system(cmd) != 0) {
            fprintf(stderr, "cannot remove %s\n", base);
        }
    }
}

static void base_init(void)
{
    static bool registered;
    if (!registered) {
        atexit(at_exit);
        registered = true;
    }
    kill_all();
    if (base[0] != '\0') {
        rm_tree(base);
    }
    snprintf(base, sizeof(base), "/tmp/p2praft-dd-XXXXXX");
    ASSERT(mkdtemp(base) != NULL);
}

static void rm_tree(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ASSERT(system(cmd) == 0);
}

static void base_done(void)
{
    kill_all();
    rm_tree(base);
    base[0] = '\0';
}

/* ---- files ---------------------------------------------------------------- */

/* The name in dir that starts with prefix and is the largest file (or the
 * last in name order when equal); "" if none. */
static void find_file(const char *dir, const char *prefix, bool largest,
                      char *out, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    off_t best = -1;
    out[0] = '\0';
    ASSERT(d != NULL);
    while ((e = readdir(d)) != NULL) {
        char path[512];
        struct stat st;
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0) {
            continue;
        }
        if ((largest && st.st_size > best) ||
            (!largest && strcmp(e->d_name, out) > 0)) {
            best = st.st_size;
            snprintf(out, cap, "%s", e->d_name);
        }
    }
    closedir(d);
}

static bool has_file(const char *dir, const char *prefix)
{
    char name[256];
    find_file(dir, prefix, false, name, sizeof(name));
    return name[0] != '\0';
}

static uint8_t *slurp(const char *dir, const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return test__read_file(path, len);
}

static void spill(const char *dir, const char *name, const uint8_t *p,
                  size_t len)
{
    char path[512];
    int fd;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_TRUNC);
    ASSERT(fd >= 0);
    ASSERT(write(fd, p, len) == (ssize_t)len);
    close(fd);
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

/* Walk the batches of a segment (no checks): the offset and end of the
 * last one. */
static void last_batch(const uint8_t *b, size_t len, size_t *start,
                       size_t *end)
{
    size_t off = 8;
    *start = *end = 0;
    while (off + 16 <= len) {
        uint64_t n = le64(b + off + 8), i, data = 0;
        if (n == 0) {
            break;
        }
        for (i = 0; i < n; i++) {
            data += le64(b + off + 16 + 16 * i + 8) >> 32;
        }
        *start = off;
        *end = off + 16 + 16 * n + data;
        off = *end;
    }
}

/* ---- tests ---------------------------------------------------------------- */

TEST(datadir, one_node_per_directory)
{
    struct node a, b;
    struct child c;
    char want[64], err[512], opens[2][256];
    struct p2praft_node_config cfg;
    struct p2praft_node *lib = NULL;
    struct lp2p_key key;
    const char *listen[1] = {"/ip4/127.0.0.1/tcp/0"};

    base_init();
    node_init(&a, "a");
    ASSERT(node_start(&a, NULL, "--bootstrap", NULL));
    set_ok(&a, "k1", "v1");
    find_file(a.dir, "open-", false, opens[0], sizeof(opens[0]));
    ASSERT(opens[0][0] != '\0');

    /* a second node on the same directory, another key or the same */
    node_init(&b, "b");
    snprintf(b.dir, sizeof(b.dir), "%s", a.dir);
    snprintf(want, sizeof(want), "in use by process %d", (int)a.c.pid);
    EXPECT_REFUSED(&b, want);
    /* one clear line */
    ASSERT(strchr(b.c.buf, '\n') == b.c.buf + strlen(b.c.buf) - 1);
    ASSERT(node_start(&b, a.key, NULL) == 0);
    ASSERT(strstr(b.c.buf, want) != NULL);
    /* it took nothing: a's socket, segments and writes go on */
    find_file(a.dir, "open-", false, opens[1], sizeof(opens[1]));
    ASSERT_STR_EQ(opens[1], opens[0]);
    set_ok(&a, "k2", "v2");
    get_is(&a, "k1", "v1");

    /* the library refuses the same way */
    ASSERT_OK(lp2p_key_load(a.key, &key));
    p2praft_node_config_init(&cfg);
    cfg.key = &key;
    cfg.listen = listen;
    cfg.n_listen = 1;
    cfg.data_dir = a.dir;
    cfg.api_path = "";
    ASSERT_ERR(p2praft_node_start(&lib, &cfg, err, sizeof(err)),
               P2PRAFT_EBUSY);
    ASSERT(strstr(err, want) != NULL);
    lp2p_key_wipe(&key);

    /* and so does the offline check */
    {
        char *argv[] = {"p2praft", "check", "--data-dir", a.dir, NULL};
        ASSERT_EQ(run(&c, argv), 1);
        ASSERT(strstr(c.buf, want) != NULL);
    }

    /* once a is gone (even by kill -9), the directory is free */
    kill_child(&a.c, SIGKILL);
    {
        char *argv[] = {"p2praft", "check", "--data-dir", a.dir, NULL};
        ASSERT_EQ(run(&c, argv), 0);
        ASSERT(strstr(c.buf, "ok: term 1") != NULL);
    }
    ASSERT(node_start(&a, NULL, NULL));
    get_is(&a, "k2", "v2");
    kill_child(&a.c, SIGTERM);
    ASSERT_EQ(a.c.status, 0);
    base_done();
}

TEST(datadir, bootstrap_on_state)
{
    struct node a, e;
    base_init();
    node_init(&a, "a");
    ASSERT(node_start(&a, NULL, "--bootstrap", NULL));
    set_ok(&a, "k", "v");
    kill_child(&a.c, SIGKILL);
    /* --bootstrap on a directory with state: refused, not ignored */
    ASSERT(node_start(&a, NULL, "--bootstrap", NULL) == 0);
    ASSERT_EQ(reap(&a.c), 1);
    ASSERT(strstr(a.c.buf, "already holds raft state") != NULL);
    ASSERT(strstr(a.c.buf, "drop --bootstrap") != NULL);
    ASSERT(node_start(&a, NULL, NULL));
    get_is(&a, "k", "v");
    kill_child(&a.c, SIGTERM);
    /* no state and no --bootstrap: said before anything is written */
    node_init(&e, "empty");
    EXPECT_REFUSED(&e, "holds no raft state", "--bootstrap");
    ASSERT(!has_file(e.dir, "p2praft.owner"));
    base_done();
}

/* A memory node forgets its raft term, vote and log with its process: a
 * second start under the same key would rejoin as if it had never voted
 * nor acknowledged anything. Refused, after a kill -9 and after a clean
 * stop alike; another key on a fresh directory still starts. */
TEST(datadir, mem_restart_refused)
{
    struct node a, b;
    base_init();
    node_init(&a, "a");
    ASSERT(node_start(&a, NULL, "--store", "mem", "--bootstrap", NULL));
    set_ok(&a, "k", "v");
    kill_child(&a.c, SIGKILL);
    ASSERT(node_start(&a, NULL, "--store", "mem", "--bootstrap", NULL) == 0);
    ASSERT_EQ(reap(&a.c), 1);
    ASSERT(strstr(a.c.buf, "ran here before with --store mem") != NULL);
    ASSERT(strstr(a.c.buf, "vote twice") != NULL);
    node_init(&b, "b");
    ASSERT(node_start(&b, NULL, "--store", "mem", "--bootstrap", NULL));
    set_ok(&b, "k", "v");
    kill_child(&b.c, SIGTERM);
    ASSERT_EQ(reap(&b.c), 0);
    ASSERT(node_start(&b, NULL, "--store", "mem", "--bootstrap", NULL) == 0);
    ASSERT_EQ(reap(&b.c), 1);
    ASSERT(strstr(b.c.buf, "ran here before with --store mem") != NULL);
    base_done();
}

TEST(datadir, owner)
{
    struct node a;
    char other_key[128], other_id[LP2P_PEER_ID_STRMAX], path[256];
    uint8_t *owner;
    size_t len;

    base_init();
    node_init(&a, "a");
    make_key(other_key, sizeof(other_key), "other.key", other_id);
    ASSERT(node_start(&a, NULL, "--bootstrap", NULL));
    set_ok(&a, "k", "v");
    kill_child(&a.c, SIGTERM);
    owner = slurp(a.dir, "p2praft.owner", &len);
    ASSERT(strncmp((char *)owner, a.id, strlen(a.id)) == 0);
    free(owner);

    /* another key: refused, naming both peers */
    ASSERT(node_start(&a, other_key, NULL) == 0);
    ASSERT_EQ(reap(&a.c), 1);
    ASSERT(strstr(a.c.buf, a.id) != NULL);
    ASSERT(strstr(a.c.buf, other_id) != NULL);
    ASSERT(strstr(a.c.buf, "belongs to peer") != NULL);

    /* a directory from before owners were recorded: another key is no
     * member of its cluster, and gets no claim on it */
    snprintf(path, sizeof(path), "%s/p2praft.owner", a.dir);
    ASSERT(unlink(path) == 0);
    ASSERT(node_start(&a, other_key, NULL) == 0);
    ASSERT(strstr(a.c.buf, "not a member") != NULL);
    ASSERT(strstr(a.c.buf, other_id) != NULL);
    ASSERT(access(path, F_OK) != 0);
    /* its member's key: recorded at this first start, with a note */
    ASSERT(node_start(&a, NULL, NULL));
    ASSERT(strstr(a.c.buf, "had no owner record") != NULL);
    get_is(&a, "k", "v");
    kill_child(&a.c, SIGTERM);
    owner = slurp(a.dir, "p2praft.owner", &len);
    ASSERT(strncmp((char *)owner, a.id, strlen(a.id)) == 0);
    free(owner);
    ASSERT(node_start(&a, other_key, NULL) == 0);
    ASSERT(strstr(a.c.buf, "belongs to peer") != NULL);
    base_done();
}

/* A node that wrote keys k0..k(n-1) with snapshots at `threshold`, then
 * stopped cleanly. */
static void written(struct node *a, unsigned n, const char *threshold)
{
    char k[16], v[16];
    unsigned i;
    node_init(a, "a");
    ASSERT(node_start(a, NULL, "--bootstrap", "--snapshot-threshold",
                      threshold, "--snapshot-trailing", "4", NULL));
    for (i = 0; i < n; i++) {
        snprintf(k, sizeof(k), "key%u", i);
        snprintf(v, sizeof(v), "value%u", i);
        set_ok(a, k, v);
    }
    kill_child(&a->c, SIGTERM);
    ASSERT_EQ(a->c.status, 0);
}

TEST(datadir, closed_segment_damage)
{
    struct node a;
    char seg[256], path[512];
    struct child c;
    char *argv[] = {"p2praft", "check", "--data-dir", NULL, NULL};
    uint8_t *b;
    size_t len;

    /* 4 bytes flipped in the middle of a closed segment of 60 entries:
     * libraft would set it aside as corrupt-* and start without them */
    base_init();
    written(&a, 60, "100000");
    find_file(a.dir, "0000", true, seg, sizeof(seg));
    ASSERT(strcmp(seg, "0000000000000001-0000000000000001") != 0);
    b = slurp(a.dir, seg, &len);
    b[len / 2] ^= 0xff;
    b[len / 2 + 1] ^= 0xff;
    b[len / 2 + 2] ^= 0xff;
    b[len / 2 + 3] ^= 0xff;
    spill(a.dir, seg, b, len);
    free(b);
    EXPECT_REFUSED(&a, seg, "checksum", "replace the node",
                   "restore a backup");
    ASSERT(!has_file(a.dir, "corrupt-"));
    snprintf(path, sizeof(path), "%s/%s", a.dir, seg);
    ASSERT(access(path, F_OK) == 0); /* left where it was */
    argv[3] = a.dir;
    ASSERT_EQ(run(&c, argv), 1);
    ASSERT(strstr(c.buf, seg) != NULL);
    base_done();
}

TEST(datadir, corrupt_file_refused)
{
    struct node a;
    char path[512];
    /* what libraft set aside at an earlier start: entries are missing */
    base_init();
    written(&a, 5, "100000");
    snprintf(path, sizeof(path), "%s/corrupt-1764561000000000000-open-1",
             a.dir);
    ASSERT(close(open(path, O_WRONLY | O_CREAT, 0600)) == 0);
    EXPECT_REFUSED(&a, "corrupt-1764561000000000000-open-1", "set",
                   "restore a backup");
    base_done();
}

TEST(datadir, metadata_deleted)
{
    struct node a;
    char path[512];
    /* the term and vote would be forgotten: it could vote twice */
    base_init();
    written(&a, 5, "100000");
    snprintf(path, sizeof(path), "%s/metadata1", a.dir);
    ASSERT(unlink(path) == 0);
    snprintf(path, sizeof(path), "%s/metadata2", a.dir);
    unlink(path);
    EXPECT_REFUSED(&a, "metadata1", "term and vote", "replace the node");
    base_done();
}

TEST(datadir, snapshot_damage)
{
    struct node a;
    char snap[256];
    uint8_t *b;
    size_t len;
    /* a snapshot whose bytes changed: libraft would load it silently
     * (it reported `keys: 100`, yet key48 was "not found") */
    base_init();
    written(&a, 100, "16");
    find_file(a.dir, "snapshot-", false, snap, sizeof(snap));
    ASSERT(snap[0] != '\0');
    if (strstr(snap, ".meta") != NULL) {
        snap[strlen(snap) - 5] = '\0';
    }
    b = slurp(a.dir, snap, &len);
    ASSERT(len > 200);
    b[len - 100] ^= 0x01;
    spill(a.dir, snap, b, len);
    free(b);
    EXPECT_REFUSED(&a, snap, "SHA-256", "restore a backup");
    base_done();
}

/* `p2praft status` of a node: 1 if it says "role: leader". */
static int is_leader(struct node *n)
{
    struct child c;
    char *argv[] = {"p2praft", "status", "--api", n->api, NULL};
    return run(&c, argv) == 0 && strstr(c.buf, "role: leader\n") != NULL;
}

TEST(datadir, snapshot_install_checked)
{
    struct node ns[3];
    char listen[3][64], peers[3][2][256], snap[256], k[32], v[32];
    uint64_t end;
    int i, j, leader = -1, f;
    uint8_t *b;
    size_t len;

    base_init();
    for (i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%d", i);
        node_init(&ns[i], name);
        snprintf(listen[i], sizeof(listen[i]), "/ip4/127.0.0.1/tcp/%d",
                 harness_free_port());
    }
    for (i = 0; i < 3; i++) {
        int m = 0;
        for (j = 0; j < 3; j++) {
            if (j != i) {
                snprintf(peers[i][m++], sizeof(peers[i][0]), "%s/p2p/%s",
                         listen[j], ns[j].id);
            }
        }
        /* Not a test of elections: 1 s (not 150 ms), so that a leader on
         * a loaded machine keeps its lease through the 100 writes (it lost
         * it once, and a write's outcome with it, under make check). */
        ASSERT(node_start(&ns[i], NULL, "--listen", listen[i], "--peer",
                          peers[i][0], "--peer", peers[i][1], "--bootstrap",
                          "--snapshot-threshold", "16", "--snapshot-trailing",
                          "4", "--election-ms", "1000", NULL));
    }
    for (end = (uint64_t)time(NULL) + 15; leader < 0; ) {
        for (i = 0; i < 3 && leader < 0; i++) {
            if (is_leader(&ns[i])) {
                leader = i;
            }
        }
        ASSERT((uint64_t)time(NULL) < end);
    }
    /* a follower away while the leader snapshots its log */
    f = (leader + 1) % 3;
    kill_child(&ns[f].c, SIGKILL);
    for (i = 0; i < 100; i++) {
        snprintf(k, sizeof(k), "key%d", i);
        snprintf(v, sizeof(v), "value%d", i);
        set_ok(&ns[leader], k, v);
    }
    /* the leader's newest snapshot (covering key0..key79 at least) gets a
     * changed byte on disk, while it runs */
    find_file(ns[leader].dir, "snapshot-", false, snap, sizeof(snap));
    ASSERT(snap[0] != '\0');
    if (strstr(snap, ".meta") != NULL) {
        snap[strlen(snap) - 5] = '\0';
    }
    b = slurp(ns[leader].dir, snap, &len);
    b[len - 20] ^= 0x01;
    spill(ns[leader].dir, snap, b, len);
    free(b);
    /* the follower comes back; the leader sends it that snapshot: refused
     * on install, its state is not replaced by damaged bytes */
    ASSERT(node_start(&ns[f], NULL, "--listen", listen[f], "--peer",
                      peers[f][0], "--peer", peers[f][1],
                      "--snapshot-threshold", "16", "--snapshot-trailing", "4",
                      "--election-ms", "1000", NULL));
    if (!read_until(&ns[f].c, "snapshot refused, it is damaged", 15000)) {
        test__fail(__FILE__, __LINE__, "no refusal: %s", ns[f].c.buf);
    }
    ASSERT(kv(&ns[f], "get", "key48", NULL, NULL, 0) != 0);
    base_done();
}

TEST(datadir, kill9_and_torn_tail)
{
    struct node a;
    char seg[256], big[3001], out[4096];
    uint8_t *b;
    size_t len, start, end, cut;
    unsigned i;

    base_init();
    node_init(&a, "a");
    ASSERT(node_start(&a, NULL, "--bootstrap", NULL));
    /* kill -9, restart without a manual step, a few times */
    for (i = 0; i < 3; i++) {
        snprintf(seg, sizeof(seg), "round%u", i);
        set_ok(&a, seg, "x");
        kill_child(&a.c, SIGKILL);
        ASSERT(node_start(&a, NULL, NULL));
        get_is(&a, seg, "x");
    }
    /* the last write: one batch of 3000 bytes, then kill -9 */
    memset(big, 'B', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    set_ok(&a, "before", "kept");
    set_ok(&a, "big", big);
    kill_child(&a.c, SIGKILL);
    find_file(a.dir, "open-", true, seg, sizeof(seg));
    b = slurp(a.dir, seg, &len);
    last_batch(b, len, &start, &end);
    ASSERT(end > start + 3000);

    /* a write torn at a sector inside that batch (never acknowledged):
     * dropped, as raft does, with a note; the rest is kept */
    cut = (start + 1024 + 511) / 512 * 512;
    memset(b + cut, 0, len - cut);
    spill(a.dir, seg, b, len);
    ASSERT(node_start(&a, NULL, NULL));
    ASSERT(strstr(a.c.buf, "was being written when the node stopped") !=
           NULL);
    get_is(&a, "before", "kept");
    ASSERT_EQ(kv(&a, "get", "--consistent", "big", out, sizeof(out)), 1);
    set_ok(&a, "big", big);
    kill_child(&a.c, SIGKILL);
    free(b);

    /* the same batch complete, with one byte changed: refused */
    find_file(a.dir, "open-", true, seg, sizeof(seg));
    b = slurp(a.dir, seg, &len);
    last_batch(b, len, &start, &end);
    ASSERT(end > start + 3000);
    b[end - 1000] ^= 0x02;
    spill(a.dir, seg, b, len);
    free(b);
    EXPECT_REFUSED(&a, seg, "data checksum mismatch", "replace the node");
    base_done();
}

/* A socket file nobody listens on any more. */
static void stale_socket(const char *path)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    ASSERT(strlen(path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path));
    ASSERT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    close(fd);
}

TEST(datadir, api_path)
{
    struct node a, b;
    uint8_t *keep;
    size_t len;
    int fd;

    base_init();
    node_init(&a, "a");
    node_init(&b, "b");
    /* a regular file where the socket should go: refused, left intact */
    fd = open(a.api, O_WRONLY | O_CREAT, 0600);
    ASSERT(fd >= 0 && write(fd, "precious", 8) == 8);
    close(fd);
    ASSERT(node_start(&a, NULL, "--bootstrap", NULL) == 0);
    ASSERT_EQ(reap(&a.c), 1);
    ASSERT(strstr(a.c.buf, "not a socket") != NULL);
    keep = test__read_file(a.api, &len);
    ASSERT(len == 8 && memcmp(keep, "precious", 8) == 0);
    free(keep);
    ASSERT(unlink(a.api) == 0);

    /* a stale socket (left by a node that died) is replaced */
    stale_socket(a.api);
    ASSERT(node_start(&a, NULL, "--bootstrap", NULL));
    set_ok(&a, "k", "v");

    /* another node pointed at a's live socket: refused; a keeps it */
    snprintf(b.api, sizeof(b.api), "%s", a.api);
    ASSERT(node_start(&b, NULL, "--bootstrap", NULL) == 0);
    ASSERT_EQ(reap(&b.c), 1);
    ASSERT(strstr(b.c.buf, "live socket") != NULL);
    get_is(&a, "k", "v");
    kill_child(&a.c, SIGTERM);
    ASSERT(access(a.api, F_OK) != 0); /* its own socket, removed */
    base_done();
}

TEST(datadir, no_space)
{
    struct node a;
    struct child c;
    char script[8192];
    char *argv[] = {"/usr/bin/unshare", "-Urm", "/bin/sh", "-c", script,
                    NULL};

    base_init();
    node_init(&a, "a");
    ASSERT(mkdir(a.dir, 0700) == 0);
    /* a 4 MiB tmpfs for the data directory, in a private mount namespace
     * (the test needs no privilege of its own) */
    snprintf(script, sizeof(script),
             "mount -t tmpfs -o size=4m tmpfs %s || exit 99; "
             "exec %s node --key %s --data-dir %s --api %s --bootstrap",
             a.dir, cli_path(), a.key, a.dir, a.api);
    if (access(argv[0], X_OK) != 0) {
        printf("  skipped: no %s\n", argv[0]);
        base_done();
        return;
    }
    spawn(&c, argv, true);
    if (read_until(&c, "\nready\n", 15000)) {
        test__fail(__FILE__, __LINE__, "started: %s", c.buf);
    }
    if (reap(&c) == 99 || strstr(c.buf, "unshare") != NULL) {
        printf("  skipped: cannot mount a tmpfs here: %s\n", c.buf);
        base_done();
        return;
    }
    ASSERT_EQ(c.status >> 8, 1);
    ASSERT(strstr(c.buf, "KiB free") != NULL);
    ASSERT(strstr(c.buf, "next log segment") != NULL);
    base_done();
}

TEST(datadir, check_read_only_backup)
{
    struct node a;
    struct child c;
    char script[8192], lock[256];
    char *argv[] = {"/usr/bin/unshare", "-Urm", "/bin/sh", "-c", script,
                    NULL};
    base_init();
    written(&a, 5, "100000");
    snprintf(lock, sizeof(lock), "%s/p2praft.lock", a.dir);
    ASSERT(unlink(lock) == 0); /* a copy taken without it */
    if (access(argv[0], X_OK) != 0) {
        printf("  skipped: no %s\n", argv[0]);
        base_done();
        return;
    }
    /* `p2praft check` on a backup mounted read-only */
    snprintf(script, sizeof(script),
             "mount --bind %s %s && mount -o remount,bind,ro %s || exit 99; "
             "exec %s check --data-dir %s",
             base, base, base, cli_path(), a.dir);
    if (run(&c, argv) == 99) {
        printf("  skipped: cannot mount read-only here: %s\n", c.buf);
        base_done();
        return;
    }
    if (c.status != 0 || strstr(c.buf, "ok: term 1") == NULL) {
        test__fail(__FILE__, __LINE__, "check: %s", c.buf);
    }
    base_done();
}

TEST(datadir, permission_warnings)
{
    struct node a;
    base_init();
    node_init(&a, "a");
    ASSERT(mkdir(a.dir, 0700) == 0);
    ASSERT(node_start(&a, NULL, "--bootstrap", NULL));
    ASSERT(strstr(a.c.buf, "accessible by group or others") == NULL);
    kill_child(&a.c, SIGTERM);
    ASSERT(chmod(a.dir, 0755) == 0);
    ASSERT(chmod(a.key, 0644) == 0);
    ASSERT(node_start(&a, NULL, NULL));
    ASSERT(strstr(a.c.buf, "data directory") != NULL);
    ASSERT(strstr(a.c.buf, "key file") != NULL);
    ASSERT(strstr(a.c.buf, "chmod 700") != NULL);
    ASSERT(strstr(a.c.buf, "chmod 600") != NULL);
    kill_child(&a.c, SIGTERM);
    base_done();
}
