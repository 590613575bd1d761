/*
 * The operator's commands, run as an operator runs them: real `p2praft
 * node` processes and the CLI next to this runner.
 *   ops/backup_restore_round_trip  a 3-node cluster with data (binary values
 *                       included, written by `state import`): `status
 *                       --cluster` (text and --json; a follower stopped:
 *                       reachable=no, lagging; back: caught up),
 *                       `state export`,
 *                       `snapshot save` from a follower and over libp2p as
 *                       a listed client (and its failures: bad path, a
 *                       directory, a disk that fills up half way (a file
 *                       size limit): never a partial file), then every node
 *                       stopped; `restore` refuses a live directory, one
 *                       with state, a changed and a truncated backup;
 *                       restored on three new directories, the cluster
 *                       starts and serves every key, byte for byte, and
 *                       takes new writes; restored again as a one-member
 *                       cluster (--member), it leads itself with every
 *                       key.
 *   ops/backup_large_paged  20 MiB of state (over P2PRAFT_API_FRAME_MAX):
 *                       `state export`, `snapshot save` read in pages,
 *                       restored as a one-member cluster, byte for byte.
 *   ops/metrics_and_health  `p2praft metrics` and `node --metrics-listen`
 *                       with real HTTP requests: /healthz 503 without a
 *                       leader (and says why), 200 once there is one and
 *                       the node caught up; /metrics counts a commit; 404,
 *                       405.
 *   ops/service_unit    contrib/p2praft.service: systemd-analyze verify
 *                       (when there is one), and every flag of its
 *                       ExecStart is one `p2praft node --help` lists.
 * Waits poll the event itself (a command's answer) with bounded time.
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness_util.h"
#include "p2praft.h"
#include "test.h"

#define NN 3

static char base[256];

/* The CLI binary beside this test binary (see harness_cli_path()). */
static const char *cli_path(void)
{
    const char *p = harness_cli_path();
    ASSERT(p != NULL);
    return p;
}

static unsigned scale(unsigned ms)
{
    return harness_slow() ? ms * 4 : ms;
}

/* Pause between two polls of a condition (never a synchronisation). */
static void poll_pause(void)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* ---- nodes --------------------------------------------------------------- */

struct onode {
    pid_t pid;
    int port;
    char id[LP2P_PEER_ID_STRMAX];
    char key[300], dir[300], api[300], log[300];
};

static struct onode nodes[NN];

static void cleanup(void)
{
    unsigned i;
    for (i = 0; i < NN; i++) {
        if (nodes[i].pid > 0) {
            kill(nodes[i].pid, SIGKILL);
            waitpid(nodes[i].pid, NULL, 0);
            nodes[i].pid = 0;
        }
    }
    if (base[0] != '\0') {
        harness_rm_rf(base);
        base[0] = '\0';
    }
}

static void setup(void)
{
    static bool registered;
    unsigned i;
    if (!registered) {
        atexit(cleanup);
        registered = true;
    }
    cleanup();
    memset(nodes, 0, sizeof(nodes));
    snprintf(base, sizeof(base), "/tmp/p2praft-ops-XXXXXX");
    ASSERT(mkdtemp(base) != NULL);
    for (i = 0; i < NN; i++) {
        struct onode *nd = &nodes[i];
        struct lp2p_key key;
        struct lp2p_peer_id pid;
        snprintf(nd->key, sizeof(nd->key), "%s/k%u", base, i);
        snprintf(nd->dir, sizeof(nd->dir), "%s/d%u", base, i);
        snprintf(nd->api, sizeof(nd->api), "%s/n%u.sock", base, i);
        snprintf(nd->log, sizeof(nd->log), "%s/n%u.log", base, i);
        ASSERT_OK(lp2p_key_generate(&key));
        ASSERT_OK(lp2p_key_save(nd->key, &key));
        ASSERT_OK(lp2p_peer_id_from_key(&key, &pid));
        lp2p_key_wipe(&key);
        ASSERT_OK(lp2p_peer_id_to_string(&pid, nd->id, sizeof(nd->id)));
        nd->port = harness_free_port();
        ASSERT(nd->port > 0);
    }
}

static void dump_log(unsigned i)
{
    FILE *f = fopen(nodes[i].log, "r");
    char line[512];
    int k = 0;
    if (f == NULL) {
        return;
    }
    fprintf(stderr, "---- node %u log ----\n", i);
    while (fgets(line, sizeof(line), f) != NULL && ++k < 200) {
        fputs(line, stderr);
    }
    fclose(f);
}

/* Does the file hold `needle`? */
static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char buf[65536];
    size_t n;
    if (f == NULL) {
        return false;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, needle) != NULL;
}

/* Start node i of `n` on its data directory `dir`, with the others of the
 * first `n` as peers, and `extra` arguments (NULL-terminated, may be
 * NULL); wait for its "ready" line. */
static void start(unsigned i, unsigned n, const char *dir, bool bootstrap,
                  const char *const *extra)
{
    struct onode *nd = &nodes[i];
    char *argv[40], listen[64], peers[NN][400];
    uint64_t end;
    int k = 0;
    unsigned j;
    snprintf(listen, sizeof(listen), "/ip4/127.0.0.1/tcp/%d", nd->port);
    argv[k++] = "p2praft";
    argv[k++] = "node";
    argv[k++] = "--key";
    argv[k++] = nd->key;
    argv[k++] = "--listen";
    argv[k++] = listen;
    argv[k++] = "--data-dir";
    argv[k++] = (char *)dir;
    argv[k++] = "--api";
    argv[k++] = nd->api;
    argv[k++] = "--snapshot-threshold";
    argv[k++] = "64";
    argv[k++] = "--snapshot-trailing";
    argv[k++] = "16";
    for (j = 0; j < n; j++) {
        if (j == i) {
            continue;
        }
        snprintf(peers[j], sizeof(peers[j]), "/ip4/127.0.0.1/tcp/%d/p2p/%s",
                 nodes[j].port, nodes[j].id);
        argv[k++] = "--peer";
        argv[k++] = peers[j];
    }
    for (j = 0; extra != NULL && extra[j] != NULL; j++) {
        argv[k++] = (char *)extra[j];
    }
    if (bootstrap) {
        argv[k++] = "--bootstrap";
    }
    argv[k] = NULL;
    cli_path();
    unlink(nd->log);
    nd->pid = fork();
    ASSERT(nd->pid >= 0);
    if (nd->pid == 0) {
        int fd = open(nd->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGPIPE, SIG_DFL);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(cli_path(), argv);
        _exit(127);
    }
    end = harness_now_ms() + scale(10000);
    while (!file_has(nd->log, "\nready\n")) {
        int st;
        if (waitpid(nd->pid, &st, WNOHANG) == nd->pid) {
            nd->pid = 0;
            dump_log(i);
            test__fail(__FILE__, __LINE__, "node %u exited (0x%x)", i, st);
        }
        if (harness_now_ms() > end) {
            dump_log(i);
            test__fail(__FILE__, __LINE__, "node %u not ready", i);
        }
        poll_pause();
    }
}

/* SIGTERM: a clean stop, exit 0. */
static void stop(unsigned i)
{
    int st = 0;
    ASSERT(nodes[i].pid > 0);
    kill(nodes[i].pid, SIGTERM);
    ASSERT(waitpid(nodes[i].pid, &st, 0) == nodes[i].pid);
    nodes[i].pid = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        dump_log(i);
        test__fail(__FILE__, __LINE__, "node %u exit status 0x%x", i, st);
    }
}

/* ---- the CLI ------------------------------------------------------------- */

/* Non-zero: the CLI's children may write files of at most this many
 * bytes (RLIMIT_FSIZE, SIGXFSZ ignored: a write past it fails with EFBIG,
 * as on a full disk). */
static rlim_t child_fsize;

/* Run the CLI with stdin from in_path (NULL: /dev/null), stdout into
 * out_path, stderr into err (NUL-terminated). Its exit status. */
static int run_io(char *const argv[], const char *in_path,
                  const char *out_path, char *err, size_t errcap)
{
    char errpath[400];
    int st = 0, fd;
    pid_t pid;
    snprintf(errpath, sizeof(errpath), "%s.err", out_path);
    cli_path();
    pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        int in = open(in_path != NULL ? in_path : "/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(in, 0);
        dup2(out, 1);
        dup2(e, 2);
        if (child_fsize != 0) {
            struct rlimit rl = {child_fsize, child_fsize};
            signal(SIGXFSZ, SIG_IGN);
            setrlimit(RLIMIT_FSIZE, &rl);
        }
        execv(cli_path(), argv);
        _exit(127);
    }
    ASSERT(waitpid(pid, &st, 0) == pid);
    ASSERT(WIFEXITED(st));
    if (err != NULL) {
        ssize_t n;
        fd = open(errpath, O_RDONLY);
        n = fd >= 0 ? read(fd, err, errcap - 1) : 0;
        err[n > 0 ? n : 0] = '\0';
        if (fd >= 0) {
            close(fd);
        }
    }
    unlink(errpath);
    return WEXITSTATUS(st);
}

/* The file's bytes (malloc'd, NUL added). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p;
    long n;
    ASSERT(f != NULL);
    ASSERT(fseek(f, 0, SEEK_END) == 0);
    n = ftell(f);
    ASSERT(n >= 0);
    rewind(f);
    p = malloc((size_t)n + 1);
    ASSERT(p != NULL);
    ASSERT(fread(p, 1, (size_t)n, f) == (size_t)n);
    p[n] = '\0';
    fclose(f);
    if (len != NULL) {
        *len = (size_t)n;
    }
    return p;
}

static void spew(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT(fwrite(p, 1, len, f) == len);
    ASSERT(fclose(f) == 0);
}

static size_t count(const char *s, const char *needle)
{
    size_t n = 0;
    while ((s = strstr(s, needle)) != NULL) {
        n++;
        s += strlen(needle);
    }
    return n;
}

/* Wait until `status --cluster` through node i answers with n members,
 * each reachable and with no lag; returns its output (malloc'd). */
static char *wait_cluster(unsigned i, unsigned n)
{
    char out[300], err[600];
    uint64_t end = harness_now_ms() + scale(20000);
    char *argv[] = {"p2praft", "status", "--api", nodes[i].api,
                    "--timeout-ms", "2000", "--cluster", NULL};
    snprintf(out, sizeof(out), "%s/cluster.out", base);
    for (;;) {
        int rc = run_io(argv, NULL, out, err, sizeof(err));
        if (rc == 0) {
            char *t = slurp(out, NULL);
            if (count(t, "member: ") == n &&
                count(t, "reachable=yes") == n && count(t, " lag=0 ") == n) {
                return t;
            }
            free(t);
        }
        if (harness_now_ms() > end) {
            dump_log(i);
            test__fail(__FILE__, __LINE__,
                       "cluster of %u not all reachable (exit %d: %s)", n, rc,
                       err);
        }
        poll_pause();
    }
}

/* The import document: NKEYS text keys, and BIN binary values. */
#define NKEYS 150
static const uint8_t BIN[] = {'b', 0x00, 0xff, 0xfe, '\n', 0x01, 'z'};

static void write_import(const char *path)
{
    FILE *f = fopen(path, "w");
    unsigned i;
    ASSERT(f != NULL);
    fprintf(f, "{\"format\":\"p2praft-state/1\",\"entries\":[\n");
    /* base64 of BIN: "YgD//goBeg==" */
    fprintf(f, "{\"key\":\"bin\",\"value_base64\":\"YgD//goBeg==\"},\n");
    fprintf(f, "{\"key\":\"empty\",\"value\":\"\"},\n");
    for (i = 0; i < NKEYS; i++) {
        fprintf(f, "{\"key\":\"key%03u\",\"value\":\"value %u \\u00e9\"}%s\n",
                i, i, i + 1 < NKEYS ? "," : "");
    }
    fprintf(f, "]}\n");
    ASSERT(fclose(f) == 0);
}

/* An export without its head line's index: what must match across the
 * restore. */
static char *entries_of(const char *export_text)
{
    const char *p = strstr(export_text, "\"entries\":[");
    ASSERT(p != NULL);
    return strdup(p);
}

TEST_TIMEOUT(ops, backup_restore_round_trip, 240)
{
    char path[400], out[400], err[1200], bak[400], rdirs[NN][300];
    char ckey[300], cid[LP2P_PEER_ID_STRMAX], maddr[400];
    const char *extra[3];
    char *t, *exp1, *exp2, *e1, *e2;
    size_t len;
    unsigned i;
    int rc;

    setup();
    /* a remote client's identity, listed by every node */
    {
        struct lp2p_key key;
        struct lp2p_peer_id pid;
        snprintf(ckey, sizeof(ckey), "%s/client.key", base);
        ASSERT_OK(lp2p_key_generate(&key));
        ASSERT_OK(lp2p_key_save(ckey, &key));
        ASSERT_OK(lp2p_peer_id_from_key(&key, &pid));
        lp2p_key_wipe(&key);
        ASSERT_OK(lp2p_peer_id_to_string(&pid, cid, sizeof(cid)));
        extra[0] = "--client";
        extra[1] = cid;
        extra[2] = NULL;
    }
    for (i = 0; i < NN; i++) {
        start(i, NN, nodes[i].dir, true, extra);
    }
    t = wait_cluster(1, NN);
    ASSERT(count(t, "state=leader") == 1);
    free(t);

    /* --json: one object, the members as an array */
    {
        char *argv[] = {"p2praft", "status", "--api", nodes[2].api,
                        "--cluster", "--json", NULL};
        snprintf(out, sizeof(out), "%s/cluster.json", base);
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 0);
        t = slurp(out, NULL);
        ASSERT(t[0] == '{' && strstr(t, "\"members\":[{") != NULL);
        ASSERT_EQ(count(t, "\"reachable\":true"), NN);
        ASSERT(strstr(t, "\"match\":") != NULL &&
               strstr(t, "\"last_contact_ms\":") != NULL);
        for (i = 0; i < NN; i++) {
            ASSERT(strstr(t, nodes[i].id) != NULL);
        }
        free(t);
    }

    /* data in: a whole document, through a follower */
    snprintf(path, sizeof(path), "%s/import.json", base);
    write_import(path);
    {
        char *argv[] = {"p2praft", "state", "import", "--api", nodes[2].api,
                        path, NULL};
        snprintf(out, sizeof(out), "%s/import.out", base);
        rc = run_io(argv, NULL, out, err, sizeof(err));
        if (rc != 0) {
            test__fail(__FILE__, __LINE__, "import: exit %d: %s", rc, err);
        }
        t = slurp(out, NULL);
        ASSERT(strstr(t, "imported 152 keys") != NULL);
        free(t);
    }
    /* ...and a bad document writes nothing */
    {
        char bad[400];
        char *argv[] = {"p2praft", "state", "import", "--api", nodes[0].api,
                        "-", NULL};
        snprintf(bad, sizeof(bad), "%s/bad.json", base);
        const char *doc = "{\"format\":\"p2praft-state/1\","
                          "\"entries\":[{\"key\":\"zz\",\"value\":\"1\"},"
                          "{\"key\":\"zz2\",\"value_base64\":\"!!\"}]}";
        spew(bad, doc, strlen(doc));
        ASSERT_EQ(run_io(argv, bad, out, err, sizeof(err)), 5);
        ASSERT(strstr(err, "entry 2") != NULL);
        ASSERT(strstr(err, "nothing written") != NULL);
    }

    /* export from another node: every entry, the binary one in base64 */
    {
        char *argv[] = {"p2praft", "state", "export", "--api", nodes[0].api,
                        NULL};
        snprintf(out, sizeof(out), "%s/export1.json", base);
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 0);
        exp1 = slurp(out, NULL);
        ASSERT(strncmp(exp1, "{\"format\":\"p2praft-state/1\",\"index\":",
                       36) == 0);
        ASSERT(strstr(exp1, "{\"key\":\"bin\",\"value_base64\":"
                            "\"YgD//goBeg==\"}") != NULL);
        ASSERT(strstr(exp1, "{\"key\":\"empty\",\"value\":\"\"}") != NULL);
        ASSERT(strstr(exp1, "{\"key\":\"key149\",\"value\":\"value 149 "
                            "\xc3\xa9\"}") != NULL);
        ASSERT(strstr(exp1, "\"zz\"") == NULL);
        ASSERT_EQ(count(exp1, "{\"key\":"), NKEYS + 2);
    }

    /* snapshot save from a follower */
    snprintf(bak, sizeof(bak), "%s/cluster.bak", base);
    {
        char *argv[] = {"p2praft", "snapshot", "save", "--api", nodes[1].api,
                        bak, NULL};
        rc = run_io(argv, NULL, out, err, sizeof(err));
        if (rc != 0) {
            test__fail(__FILE__, __LINE__, "save: exit %d: %s", rc, err);
        }
        t = slurp(out, NULL);
        ASSERT(strstr(t, "152 keys, 3 members") != NULL);
        free(t);
    }
    /* the same over libp2p, as a listed remote client */
    {
        char bak2[400];
        char *argv[] = {"p2praft", "snapshot", "save", "--node", maddr,
                        "--key", ckey, "--json", bak2, NULL};
        struct p2praft_backup_info info;
        size_t blen;
        char *b;
        snprintf(bak2, sizeof(bak2), "%s/remote.bak", base);
        snprintf(maddr, sizeof(maddr), "/ip4/127.0.0.1/tcp/%d/p2p/%s",
                 nodes[2].port, nodes[2].id);
        rc = run_io(argv, NULL, out, err, sizeof(err));
        if (rc != 0) {
            test__fail(__FILE__, __LINE__, "remote save: exit %d: %s", rc,
                       err);
        }
        t = slurp(out, NULL);
        ASSERT(strstr(t, "\"ok\":true") != NULL);
        ASSERT(strstr(t, "\"keys\":152") != NULL);
        free(t);
        b = slurp(bak2, &blen);
        ASSERT_OK(p2praft_backup_check((const uint8_t *)b, blen, &info, err,
                                       sizeof(err)));
        ASSERT_EQ(info.keys, NKEYS + 2);
        ASSERT_EQ(info.n_members, NN);
        free(b);
    }
    /* a path it cannot write: exit 5, a clear error, nothing left */
    {
        char nodir[400];
        char *argv[] = {"p2praft", "snapshot", "save", "--api", nodes[1].api,
                        nodir, NULL};
        snprintf(nodir, sizeof(nodir), "%s/no/such/dir.bak", base);
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 5);
        ASSERT(strstr(err, "nothing written") != NULL);
        snprintf(nodir, sizeof(nodir), "%s/d0", base); /* a directory */
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 5);
        ASSERT(strstr(err, "nothing written") != NULL);
        snprintf(nodir, sizeof(nodir), "-"); /* not stdout, not a file "-" */
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 5);
        ASSERT(strstr(err, "not to standard output") != NULL);
        ASSERT(access("-", F_OK) != 0);
        /* a disk that fills up half way: no file at all, the old one
         * kept */
        snprintf(nodir, sizeof(nodir), "%s/full.bak", base);
        child_fsize = 1000;
        rc = run_io(argv, NULL, out, err, sizeof(err));
        child_fsize = 0;
        ASSERT_EQ(rc, 5);
        ASSERT(strstr(err, "cannot write") != NULL);
        ASSERT(strstr(err, "nothing written") != NULL);
        ASSERT(access(nodir, F_OK) != 0);
        spew(nodir, P2PRAFT_BACKUP_MAGIC "old", 11); /* an older backup */
        child_fsize = 1000;
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 5);
        child_fsize = 0;
        ASSERT(strstr(err, "cannot write") != NULL);
        t = slurp(nodir, &len);
        ASSERT_STR_EQ(t, P2PRAFT_BACKUP_MAGIC "old");
        free(t);
        /* a file that is not a backup (a typo naming the key file), a
         * FIFO: refused, left as they were (before, the key was replaced
         * by the backup, and a device or FIFO by a file) */
        snprintf(nodir, sizeof(nodir), "%s", nodes[0].key);
        {
            size_t klen;
            char *key = slurp(nodir, &klen);
            ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 5);
            ASSERT(strstr(err, "is not a p2praft backup: not replaced") !=
                   NULL);
            ASSERT(strstr(err, "nothing written") != NULL);
            t = slurp(nodir, &len);
            ASSERT(len == klen && memcmp(t, key, len) == 0);
            free(t);
            free(key);
        }
        snprintf(nodir, sizeof(nodir), "%s/fifo", base);
        ASSERT(mkfifo(nodir, 0600) == 0);
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 5);
        ASSERT(strstr(err, "not a regular file") != NULL);
        {
            struct stat st;
            ASSERT(lstat(nodir, &st) == 0 && S_ISFIFO(st.st_mode));
        }
        unlink(nodir);
        /* no temporary file left beside it */
        {
            DIR *d = opendir(base);
            struct dirent *e;
            ASSERT(d != NULL);
            while ((e = readdir(d)) != NULL) {
                ASSERT(strstr(e->d_name, ".tmp.") == NULL);
            }
            closedir(d);
        }
    }
    /* a follower down: the leader reports it unreachable, lagging, with
     * its last contact; back up, it catches up */
    {
        unsigned f = NN, via;
        char *argv[] = {"p2praft", "status", "--api", NULL, "--cluster",
                        NULL};
        char *set[] = {"p2praft", "kv", "--api", NULL, "set", "while-down",
                       "1", NULL};
        char want[200];
        uint64_t end;
        t = wait_cluster(0, NN);
        for (i = 0; i < NN && f == NN; i++) {
            char line[200];
            snprintf(line, sizeof(line), "member: %s role=voter "
                                         "state=follower", nodes[i].id);
            if (strstr(t, line) != NULL) {
                f = i;
            }
        }
        free(t);
        ASSERT(f < NN);
        via = (f + 1) % NN;
        stop(f);
        set[3] = nodes[via].api;
        ASSERT_EQ(run_io(set, NULL, out, err, sizeof(err)), 0);
        argv[3] = nodes[via].api;
        snprintf(want, sizeof(want), "member: %s role=voter state=follower "
                                     "reachable=no", nodes[f].id);
        end = harness_now_ms() + scale(10000);
        for (;;) {
            ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 0);
            t = slurp(out, NULL);
            if (strstr(t, want) != NULL) {
                const char *m = strstr(t, want);
                ASSERT(strstr(m, " lag=0 ") == NULL ||
                       strstr(m, " lag=0 ") > strchr(m, '\n'));
                ASSERT(strstr(m, "last_contact_ms=") != NULL);
                free(t);
                break;
            }
            free(t);
            ASSERT(harness_now_ms() < end);
            poll_pause();
        }
        start(f, NN, nodes[f].dir, false, extra);
        free(wait_cluster(via, NN));
    }
    /* a backup from a node cut off from its leader: saved (whole, at its
     * index), with a warning that it may be behind (it was silent) */
    {
        unsigned keep = NN, l = NN, j;
        char wbak[400];
        char *save[] = {"p2praft", "snapshot", "save", "--api", NULL, wbak,
                        NULL};
        uint64_t end;
        t = wait_cluster(0, NN);
        for (j = 0; j < NN; j++) {
            char line[200];
            snprintf(line, sizeof(line), "member: %s role=voter state=leader",
                     nodes[j].id);
            if (strstr(t, line) != NULL) {
                l = j;
            }
        }
        free(t);
        ASSERT(l < NN);
        keep = (l + 1) % NN;
        for (j = 0; j < NN; j++) {
            if (j != keep) {
                stop(j);
            }
        }
        snprintf(wbak, sizeof(wbak), "%s/behind.bak", base);
        save[4] = nodes[keep].api;
        end = harness_now_ms() + scale(10000);
        for (;;) {
            ASSERT_EQ(run_io(save, NULL, out, err, sizeof(err)), 0);
            if (strstr(err, "warning: the node is not in step with a leader") !=
                NULL) {
                break;
            }
            ASSERT(harness_now_ms() < end);
            poll_pause();
        }
        ASSERT(strstr(err, "may be behind the cluster's") != NULL);
        {
            uint8_t *data = (uint8_t *)slurp(wbak, &len);
            ASSERT_EQ(p2praft_backup_check(data, len, NULL, err, sizeof(err)),
                      0);
            free(data);
        }
        for (j = 0; j < NN; j++) {
            if (j != keep) {
                start(j, NN, nodes[j].dir, false, extra);
            }
        }
        free(wait_cluster(keep, NN));
    }
    /* restore onto a running node's directory: refused (its lock) */
    {
        char *argv[] = {"p2praft", "restore", "--data-dir", nodes[0].dir, bak,
                        NULL};
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 5);
        ASSERT(strstr(err, "in use") != NULL);
    }
    for (i = 0; i < NN; i++) {
        stop(i);
    }
    /* ...and, stopped, it holds state: refused too */
    {
        char *argv[] = {"p2praft", "restore", "--data-dir", nodes[0].dir, bak,
                        NULL};
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 5);
        ASSERT(strstr(err, "holds raft state") != NULL);
    }
    /* a changed byte, a truncated file: refused, nothing created */
    {
        char *b = slurp(bak, &len);
        char broken[400], dir[400];
        char *argv[] = {"p2praft", "restore", "--data-dir", dir, broken,
                        NULL};
        snprintf(broken, sizeof(broken), "%s/broken.bak", base);
        snprintf(dir, sizeof(dir), "%s/never", base);
        b[len / 2] ^= 0x01;
        spew(broken, b, len);
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 5);
        ASSERT(strstr(err, "checksum mismatch") != NULL);
        b[len / 2] ^= 0x01;
        spew(broken, b, len - 10);
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 5);
        ASSERT(strstr(err, "truncated") != NULL);
        ASSERT(access(dir, F_OK) != 0);
        /* a foreign file; a device that never ends (it was read until
         * memory ran out) */
        snprintf(broken, sizeof(broken), "%s", nodes[0].log);
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 5);
        ASSERT(strstr(err, "not a p2praft backup") != NULL);
        snprintf(broken, sizeof(broken), "/dev/zero");
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 5);
        ASSERT(strstr(err, "/dev/zero is a device") != NULL);
        ASSERT(access(dir, F_OK) != 0);
        free(b);
    }

    /* restore the same backup on three new directories (same keys: the
     * backup's configuration), start them without --bootstrap */
    for (i = 0; i < NN; i++) {
        char *argv[] = {"p2praft", "restore", "--data-dir", rdirs[i], bak,
                        NULL};
        snprintf(rdirs[i], sizeof(rdirs[i]), "%s/r%u", base, i);
        rc = run_io(argv, NULL, out, err, sizeof(err));
        if (rc != 0) {
            test__fail(__FILE__, __LINE__, "restore: exit %d: %s", rc, err);
        }
        t = slurp(out, NULL);
        ASSERT(strstr(t, "152 keys") != NULL);
        ASSERT(strstr(t, nodes[i].id) != NULL);
        free(t);
    }
    /* what restore wrote passes the start-up checks as they stand */
    {
        char *argv[] = {"p2praft", "check", "--data-dir", rdirs[0], NULL};
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 0);
        t = slurp(out, NULL);
        ASSERT(strstr(t, "1 snapshots") != NULL);
        free(t);
    }
    for (i = 0; i < NN; i++) {
        start(i, NN, rdirs[i], false, NULL);
    }
    free(wait_cluster(2, NN));
    /* every key, byte for byte */
    {
        char *argv[] = {"p2praft", "state", "export", "--api", nodes[2].api,
                        NULL};
        snprintf(out, sizeof(out), "%s/export2.json", base);
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 0);
        exp2 = slurp(out, NULL);
        e1 = entries_of(exp1);
        e2 = entries_of(exp2);
        ASSERT_STR_EQ(e1, e2);
        free(e1);
        free(e2);
        free(exp1);
        free(exp2);
    }
    {
        char *argv[] = {"p2praft", "kv", "--api", nodes[1].api, "get",
                        "--raw", "--consistent", "bin", NULL};
        snprintf(out, sizeof(out), "%s/bin.out", base);
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 0);
        t = slurp(out, &len);
        ASSERT_EQ(len, sizeof(BIN));
        ASSERT(memcmp(t, BIN, sizeof(BIN)) == 0);
        free(t);
    }
    /* and the restored cluster takes writes */
    {
        char *argv[] = {"p2praft", "kv", "--api", nodes[0].api, "set",
                        "after-restore", "yes", NULL};
        char *get[] = {"p2praft", "kv", "--api", nodes[2].api, "get",
                       "--consistent", "after-restore", NULL};
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 0);
        ASSERT_EQ(run_io(get, NULL, out, err, sizeof(err)), 0);
        t = slurp(out, NULL);
        ASSERT_STR_EQ(t, "yes\n");
        free(t);
    }
    for (i = 0; i < NN; i++) {
        stop(i);
    }

    /* a new one-member cluster from the same backup (--member): node 0
     * alone, a leader of itself, with every key */
    {
        char sdir[300];
        char *argv[] = {"p2praft", "restore", "--data-dir", sdir, "--member",
                        nodes[0].id, bak, NULL};
        char *get[] = {"p2praft", "kv", "--api", nodes[0].api, "get",
                       "--consistent", "key042", NULL};
        snprintf(sdir, sizeof(sdir), "%s/single", base);
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 0);
        t = slurp(out, NULL);
        ASSERT_EQ(count(t, "member: "), 1);
        free(t);
        start(0, 1, sdir, false, NULL);
        t = wait_cluster(0, 1);
        free(t);
        ASSERT_EQ(run_io(get, NULL, out, err, sizeof(err)), 0);
        t = slurp(out, NULL);
        ASSERT_STR_EQ(t, "value 42 \xc3\xa9\n");
        free(t);
        stop(0);
    }
    /* a member that is not a peer ID: refused */
    {
        char sdir[300];
        char *argv[] = {"p2praft", "restore", "--data-dir", sdir, "--member",
                        "nope", bak, NULL};
        snprintf(sdir, sizeof(sdir), "%s/bad-member", base);
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 5);
        ASSERT(strstr(err, "not a peer ID") != NULL);
    }
    cleanup();
}

/* A backup over 8 MiB (P2PRAFT_API_FRAME_MAX), read in pages: 5 values of
 * ~4 MiB (20 MiB of state) on a one-node cluster; `state export` of it;
 * `snapshot save` (text and --json), restored as a one-member cluster
 * that serves the values byte for byte. */
TEST_TIMEOUT(ops, backup_large_paged, 180)
{
    enum { NV = 5, VLEN = 4 * 1024 * 1024 - 4096 };
    char out[400], err[600], bak[300], vfile[300], key[16], sdir[300];
    unsigned char *v;
    char *t;
    size_t len;
    unsigned i;

    setup();
    snprintf(out, sizeof(out), "%s/cmd.out", base);
    snprintf(bak, sizeof(bak), "%s/large.bak", base);
    snprintf(vfile, sizeof(vfile), "%s/value", base);
    start(0, 1, nodes[0].dir, true, NULL);
    t = wait_cluster(0, 1);
    free(t);
    v = malloc(VLEN);
    ASSERT(v != NULL);
    for (i = 0; i < NV; i++) {
        char at[310];
        char *set[] = {"p2praft", "kv", "--api", nodes[0].api, "--timeout-ms",
                       "30000", "set", key, at, NULL};
        size_t j;
        FILE *f;
        for (j = 0; j < VLEN; j++) {
            v[j] = (unsigned char)(j * 7 + i * 131 + (j >> 12));
        }
        snprintf(key, sizeof(key), "big%u", i);
        snprintf(at, sizeof(at), "@%s", vfile);
        f = fopen(vfile, "wb");
        ASSERT(f != NULL);
        ASSERT_EQ(fwrite(v, 1, VLEN, f), VLEN);
        fclose(f);
        if (run_io(set, NULL, out, err, sizeof(err)) != 0) {
            test__fail(__FILE__, __LINE__, "set %s: %s", key, err);
        }
    }
    /* state export pages its LS too */
    {
        char *argv[] = {"p2praft", "state", "export", "--api", nodes[0].api,
                        NULL};
        ASSERT_EQ(run_io(argv, NULL, out, err, sizeof(err)), 0);
        t = slurp(out, &len);
        ASSERT(len > (size_t)NV * VLEN); /* base64 of binary values */
        ASSERT_EQ(count(t, "\"key\":\"big"), NV);
        free(t);
    }
    /* save: over 8 MiB, in pages */
    {
        char *argv[] = {"p2praft", "snapshot", "save", "--api", nodes[0].api,
                        bak, NULL};
        char *json[] = {"p2praft", "snapshot", "save", "--api", nodes[0].api,
                        "--json", bak, NULL};
        struct stat st;
        if (run_io(argv, NULL, out, err, sizeof(err)) != 0) {
            test__fail(__FILE__, __LINE__, "save: %s", err);
        }
        t = slurp(out, NULL);
        ASSERT(strstr(t, "5 keys") != NULL);
        free(t);
        ASSERT(stat(bak, &st) == 0);
        ASSERT((size_t)st.st_size > (size_t)NV * VLEN);
        ASSERT((size_t)st.st_size > (size_t)P2PRAFT_API_FRAME_MAX);
        /* again, as JSON: a new backup, the same size */
        ASSERT_EQ(run_io(json, NULL, out, err, sizeof(err)), 0);
        t = slurp(out, NULL);
        ASSERT(strstr(t, "\"keys\":5") != NULL);
        free(t);
    }
    stop(0);
    /* restored as a new one-member cluster: every byte is back */
    snprintf(sdir, sizeof(sdir), "%s/large-restored", base);
    {
        char *argv[] = {"p2praft", "restore", "--data-dir", sdir, "--member",
                        nodes[0].id, bak, NULL};
        if (run_io(argv, NULL, out, err, sizeof(err)) != 0) {
            test__fail(__FILE__, __LINE__, "restore: %s", err);
        }
    }
    start(0, 1, sdir, false, NULL);
    t = wait_cluster(0, 1);
    free(t);
    for (i = 0; i < NV; i += NV - 1) { /* the first and the last */
        char *get[] = {"p2praft", "kv", "--api", nodes[0].api, "get",
                       "--consistent", "--raw", key, NULL};
        size_t j;
        snprintf(key, sizeof(key), "big%u", i);
        for (j = 0; j < VLEN; j++) {
            v[j] = (unsigned char)(j * 7 + i * 131 + (j >> 12));
        }
        ASSERT_EQ(run_io(get, NULL, out, err, sizeof(err)), 0);
        t = slurp(out, &len);
        ASSERT_EQ(len, (size_t)VLEN);
        ASSERT(memcmp(t, v, VLEN) == 0);
        free(t);
    }
    stop(0);
    free(v);
    cleanup();
}

/* `state import` of documents that are not what export writes: each is
 * refused whole (exit 5, the reason named, nothing written) rather than
 * half understood, and a device is not read for ever. Before the fix a
 * key listed twice was set twice (the
 * first value silently lost), an entry's unknown field ("ttl") was
 * ignored, and a document of another format (or none) was imported. */
TEST_TIMEOUT(ops, state_import_refuses_ambiguous, 60)
{
    static const struct {
        const char *doc, *why;
    } bad[] = {
        {"{\"format\":\"p2praft-state/1\",\"entries\":[{\"key\":\"a\","
         "\"value\":\"1\"},{\"key\":\"b\",\"value\":\"x\"},{\"key\":\"a\","
         "\"value\":\"2\"}]}",
         "entry 3: key 'a' is also entry 1's"},
        {"{\"format\":\"p2praft-state/1\",\"entries\":[{\"key_base64\":"
         "\"YQ==\",\"value\":\"1\"},{\"key\":\"a\",\"value\":\"2\"}]}",
         "entry 2: key 'a' is also entry 1's"},
        {"{\"format\":\"p2praft-state/1\",\"entries\":[{\"key\":\"a\","
         "\"value\":\"1\",\"ttl\":5}]}",
         "entry 1: unknown field \"ttl\""},
        {"{\"format\":\"p2praft-state/2\",\"entries\":[{\"key\":\"a\","
         "\"value\":\"1\"}]}",
         "format \"p2praft-state/2\""},
        {"{\"entries\":[{\"key\":\"a\",\"value\":\"1\"}]}",
         "no \"format\":\"p2praft-state/1\""},
    };
    char out[400], err[600], doc[300];
    unsigned i;
    char *t;

    setup();
    snprintf(out, sizeof(out), "%s/cmd.out", base);
    snprintf(doc, sizeof(doc), "%s/doc.json", base);
    start(0, 1, nodes[0].dir, true, NULL);
    t = wait_cluster(0, 1);
    free(t);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *imp[] = {"p2praft", "state", "import", "--api", nodes[0].api,
                       doc, NULL};
        spew(doc, bad[i].doc, strlen(bad[i].doc));
        if (run_io(imp, NULL, out, err, sizeof(err)) != 5 ||
            strstr(err, bad[i].why) == NULL ||
            strstr(err, "(nothing written)") == NULL) {
            test__fail(__FILE__, __LINE__, "document %u: %s", i, err);
        }
    }
    {
        /* a value one byte over the limit, after a good entry */
        static const char head[] = "{\"format\":\"p2praft-state/1\","
                                   "\"entries\":[{\"key\":\"ok\",\"value\":"
                                   "\"1\"},{\"key\":\"huge\",\"value\":\"";
        size_t vlen = (size_t)P2PRAFT_KV_VALUE_MAX + 1;
        size_t hl = sizeof(head) - 1, total = hl + vlen + 4;
        char *big = malloc(total);
        char *imp[] = {"p2praft", "state", "import", "--api", nodes[0].api,
                       doc, NULL};
        ASSERT(big != NULL);
        memcpy(big, head, hl);
        memset(big + hl, 'v', vlen);
        memcpy(big + hl + vlen, "\"}]}", 4);
        spew(doc, big, total);
        free(big);
        ASSERT_EQ(run_io(imp, NULL, out, err, sizeof(err)), 5);
        ASSERT(strstr(err, "entry 2: value over") != NULL);
        ASSERT(strstr(err, "(nothing written)") != NULL);
    }
    {
        char *imp[] = {"p2praft", "state", "import", "--api", nodes[0].api,
                       "/dev/urandom", NULL};
        ASSERT_EQ(run_io(imp, NULL, out, err, sizeof(err)), 5);
        ASSERT(strstr(err, "/dev/urandom is a device") != NULL);
    }
    {
        char *ls[] = {"p2praft", "kv", "--api", nodes[0].api, "ls", NULL};
        ASSERT_EQ(run_io(ls, NULL, out, err, sizeof(err)), 0);
        t = slurp(out, NULL);
        ASSERT_STR_EQ(t, ""); /* nothing written */
        free(t);
    }
    stop(0);
    cleanup();
}

/* ---- paged backups against careless and hostile clients ------------------ */

static struct p2praft_client *api_client(unsigned i)
{
    struct p2praft_client_config cfg;
    struct p2praft_client *c = NULL;
    char err[300];
    p2praft_client_config_init(&cfg);
    cfg.api_path = nodes[i].api;
    cfg.timeout_ms = scale(30000);
    if (p2praft_client_open(&c, &cfg, err, sizeof(err)) != 0) {
        test__fail(__FILE__, __LINE__, "client: %s", err);
    }
    return c;
}

/* One SNAPSHOT request with `cursor`: the answer (never NULL here). */
static struct p2praft_result *page(struct p2praft_client *c,
                                   const char *cursor)
{
    struct p2praft_request rq;
    struct p2praft_result *res = NULL;
    memset(&rq, 0, sizeof(rq));
    rq.op = P2PRAFT_API_SNAPSHOT;
    rq.key = (char *)cursor;
    p2praft_client_call(c, &rq, &res);
    ASSERT(res != NULL);
    return res;
}

static uint64_t head64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* A `p2praft snapshot save` child writing FILE; its pid. */
static pid_t save_child(unsigned i, const char *file)
{
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(cli_path(), "p2praft", "snapshot", "save", "--api", nodes[i].api,
              "--timeout-ms", "30000", file, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* A backup of two pages (two values of 3 MiB). Cursors that are garbage,
 * negative, overflowing, past the end or of another backup are refused
 * one by one, with an error and nothing else: the node runs on, and the
 * honest reader's backup is still there afterwards. A second save started
 * meanwhile makes the first reader fail ("start again"), never read the
 * second's bytes; two CLI saves to one FILE at once leave one whole
 * backup and no temporary file; a node restarted mid-save refuses the
 * old cursor; a node killed mid-save leaves a whole backup or nothing. */
TEST_TIMEOUT(ops, backup_cursor_hostile, 120)
{
    enum { VLEN = 3 * 1024 * 1024 };
    char out[400], err[600], vfile[300], at[310], bak[300], cur[96];
    struct p2praft_client *a, *b;
    struct p2praft_result *r;
    uint64_t ida, total, idb;
    uint8_t *whole;
    unsigned char *v;
    size_t have, len;
    unsigned i;
    char *t;
    FILE *f;

    setup();
    snprintf(out, sizeof(out), "%s/cmd.out", base);
    snprintf(vfile, sizeof(vfile), "%s/value", base);
    snprintf(at, sizeof(at), "@%s", vfile);
    snprintf(bak, sizeof(bak), "%s/two.bak", base);
    start(0, 1, nodes[0].dir, true, NULL);
    t = wait_cluster(0, 1);
    free(t);
    v = malloc(VLEN);
    ASSERT(v != NULL);
    for (have = 0; have < VLEN; have++) {
        v[have] = (unsigned char)(have * 13 + (have >> 10));
    }
    f = fopen(vfile, "wb");
    ASSERT(f != NULL);
    ASSERT_EQ(fwrite(v, 1, VLEN, f), VLEN);
    fclose(f);
    free(v);
    for (i = 0; i < 2; i++) {
        char *set[] = {"p2praft", "kv", "--api", nodes[0].api, "--timeout-ms",
                       "30000", "set", i == 0 ? "big0" : "big1", at, NULL};
        if (run_io(set, NULL, out, err, sizeof(err)) != 0) {
            test__fail(__FILE__, __LINE__, "set: %s", err);
        }
    }
    a = api_client(0);
    b = api_client(0);
    r = page(a, "");
    ASSERT_EQ(r->rv, 0);
    ASSERT(r->len > 24);
    ida = head64(r->data);
    total = head64(r->data + 8);
    ASSERT_EQ(head64(r->data + 16), 0);
    ASSERT(total > 2 * VLEN);
    have = r->len - 24;
    ASSERT(have < total); /* two pages at least */
    whole = malloc(total);
    ASSERT(whole != NULL);
    memcpy(whole, r->data + 24, have);
    p2praft_result_free(r);
    /* hostile cursors, on another connection */
    {
        char bad[12][96];
        unsigned n = 0;
        snprintf(bad[n++], 96, "abc");
        snprintf(bad[n++], 96, ":0");
        snprintf(bad[n++], 96, "%llu:", (unsigned long long)ida);
        snprintf(bad[n++], 96, "-1:0");
        snprintf(bad[n++], 96, "%llu:-1", (unsigned long long)ida);
        snprintf(bad[n++], 96, "%llu: 1", (unsigned long long)ida);
        snprintf(bad[n++], 96, "%llu:0:0", (unsigned long long)ida);
        snprintf(bad[n++], 96, "%llu:0x10", (unsigned long long)ida);
        snprintf(bad[n++], 96, "18446744073709551616:0");
        snprintf(bad[n++], 96, "%llu:99999999999999999999999",
                 (unsigned long long)ida);
        snprintf(bad[n++], 96, "%llu:%llu", (unsigned long long)ida,
                 (unsigned long long)total + 1);
        snprintf(bad[n++], 96, "%llu:0", (unsigned long long)ida + 1);
        for (i = 0; i < n; i++) {
            r = page(b, bad[i]);
            if (r->rv == 0) {
                test__fail(__FILE__, __LINE__, "cursor '%s' answered", bad[i]);
            }
            ASSERT(r->rv != P2PRAFT_ECLOSED && r->rv != P2PRAFT_ETIMEDOUT);
            p2praft_result_free(r);
        }
    }
    /* ...and the honest reader's backup is still there */
    snprintf(cur, sizeof(cur), "%llu:%zu", (unsigned long long)ida, have);
    r = page(a, cur);
    ASSERT_EQ(r->rv, 0);
    ASSERT_EQ(head64(r->data), ida);
    ASSERT_EQ(head64(r->data + 16), have);
    p2praft_result_free(r);
    /* a second save meanwhile: the first reader is told to start again */
    r = page(b, "");
    ASSERT_EQ(r->rv, 0);
    idb = head64(r->data);
    ASSERT(idb != ida);
    p2praft_result_free(r);
    r = page(a, cur);
    ASSERT(r->rv != 0);
    ASSERT(r->len > 0 && memmem(r->data, r->len, "start again", 11) != NULL);
    p2praft_result_free(r);
    /* b reads on to the end: one whole backup that checks */
    r = page(b, "");
    ASSERT_EQ(r->rv, 0);
    idb = head64(r->data);
    ASSERT_EQ(head64(r->data + 8), total);
    have = r->len - 24;
    memcpy(whole, r->data + 24, have);
    p2praft_result_free(r);
    while (have < total) {
        snprintf(cur, sizeof(cur), "%llu:%zu", (unsigned long long)idb, have);
        r = page(b, cur);
        ASSERT_EQ(r->rv, 0);
        ASSERT_EQ(head64(r->data + 16), have);
        ASSERT(r->len - 24 <= total - have);
        memcpy(whole + have, r->data + 24, r->len - 24);
        have += r->len - 24;
        p2praft_result_free(r);
    }
    ASSERT_EQ(p2praft_backup_check(whole, total, NULL, err, sizeof(err)), 0);
    /* read whole: that cursor is gone */
    r = page(b, cur);
    ASSERT(r->rv != 0);
    p2praft_result_free(r);
    free(whole);
    /* two CLI saves to one FILE at once: one whole backup, no temporary */
    for (i = 0; i < 3; i++) {
        pid_t p1 = save_child(0, bak), p2 = save_child(0, bak);
        int s1 = 0, s2 = 0, ok = 0;
        uint8_t *data;
        DIR *d;
        struct dirent *e;
        ASSERT(waitpid(p1, &s1, 0) == p1);
        ASSERT(waitpid(p2, &s2, 0) == p2);
        ASSERT(WIFEXITED(s1) && WIFEXITED(s2));
        ok += WEXITSTATUS(s1) == 0;
        ok += WEXITSTATUS(s2) == 0;
        ASSERT(WEXITSTATUS(s1) == 0 || WEXITSTATUS(s1) == 5);
        ASSERT(WEXITSTATUS(s2) == 0 || WEXITSTATUS(s2) == 5);
        ASSERT(ok >= 1);
        data = (uint8_t *)slurp(bak, &len);
        ASSERT_EQ(p2praft_backup_check(data, len, NULL, err, sizeof(err)), 0);
        free(data);
        d = opendir(base);
        ASSERT(d != NULL);
        while ((e = readdir(d)) != NULL) {
            ASSERT(strstr(e->d_name, ".tmp.") == NULL);
        }
        closedir(d);
    }
    /* a node restarted mid-save: the old cursor is refused */
    r = page(a, "");
    ASSERT_EQ(r->rv, 0);
    ida = head64(r->data);
    snprintf(cur, sizeof(cur), "%llu:%zu", (unsigned long long)ida,
             r->len - 24);
    p2praft_result_free(r);
    p2praft_client_close(a);
    p2praft_client_close(b);
    stop(0);
    start(0, 1, nodes[0].dir, false, NULL);
    t = wait_cluster(0, 1);
    free(t);
    a = api_client(0);
    r = page(a, cur);
    ASSERT(r->rv != 0);
    ASSERT(r->len > 0 && memmem(r->data, r->len, "start again", 11) != NULL);
    p2praft_result_free(r);
    p2praft_client_close(a);
    /* the node killed while a save reads: a whole backup or nothing, and
     * the CLI says "nothing written", not a write's "outcome unknown"; a
     * slow CLI start (valgrind, ASan) can meet the kill before its
     * connection is open: then it says "nothing was sent" */
    {
        char ebuf[300], *e;
        pid_t p;
        int st = 0;
        snprintf(ebuf, sizeof(ebuf), "%s/save.err", base);
        snprintf(bak, sizeof(bak), "%s/killed.bak", base);
        p = fork();
        ASSERT(p >= 0);
        if (p == 0) {
            int fd = open(ebuf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            dup2(fd, 2);
            execl(cli_path(), "p2praft", "snapshot", "save", "--api", nodes[0].api,
                  bak, (char *)NULL);
            _exit(127);
        }
        poll_pause();
        kill(nodes[0].pid, SIGKILL);
        waitpid(nodes[0].pid, NULL, 0);
        nodes[0].pid = 0;
        ASSERT(waitpid(p, &st, 0) == p);
        ASSERT(WIFEXITED(st));
        e = slurp(ebuf, NULL);
        if (WEXITSTATUS(st) == 0) {
            uint8_t *data = (uint8_t *)slurp(bak, &len);
            ASSERT_EQ(p2praft_backup_check(data, len, NULL, err, sizeof(err)),
                      0);
            free(data);
        } else if ((WEXITSTATUS(st) != 4 && WEXITSTATUS(st) != 5) ||
                   (strstr(e, "(nothing written)") == NULL &&
                    strstr(e, "(nothing was sent)") == NULL) ||
                   strstr(e, "unknown") != NULL || access(bak, F_OK) == 0) {
            test__fail(__FILE__, __LINE__, "exit %d: %s", WEXITSTATUS(st), e);
        }
        free(e);
    }
    cleanup();
}

/* ---- HTTP: a plain socket client ----------------------------------------- */

/* One HTTP/1.1 request to 127.0.0.1:port; the status code, and the body
 * into body (NUL-terminated). -1 when nothing came back. */
static int http(int port, const char *method, const char *path, char *body,
                size_t cap)
{
    struct sockaddr_in sa;
    char req[300], resp[65536];
    size_t len = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), code = -1;
    const char *p;
    ASSERT(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    snprintf(req, sizeof(req),
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             method, path);
    ASSERT(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        ssize_t n;
        ASSERT(poll(&pf, 1, (int)scale(10000)) == 1);
        n = read(fd, resp + len, sizeof(resp) - 1 - len);
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    resp[len] = '\0';
    if (sscanf(resp, "HTTP/1.%*d %d", &code) != 1) {
        return -1;
    }
    p = strstr(resp, "\r\n\r\n");
    snprintf(body, cap, "%s", p != NULL ? p + 4 : "");
    return code;
}

/* Send `len` raw bytes to 127.0.0.1:port; the status code of what comes
 * back, -1 when the server closes without an answer. */
static int raw_http(int port, const void *req, size_t len, char *body,
                    size_t cap)
{
    struct sockaddr_in sa;
    char resp[4096];
    size_t got = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), code = -1;
    ASSERT(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    /* the server may answer and close before it read everything */
    (void)send(fd, req, len, MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        ssize_t n;
        ASSERT(poll(&pf, 1, (int)scale(15000)) == 1); /* never hangs */
        n = read(fd, resp + got, sizeof(resp) - 1 - got);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
        if (got == sizeof(resp) - 1) {
            break;
        }
    }
    close(fd);
    resp[got] = '\0';
    snprintf(body, cap, "%s", resp);
    if (sscanf(resp, "HTTP/1.%*d %d", &code) != 1) {
        return -1;
    }
    return code;
}

/* A client that sends half a request and stalls: its socket. */
static int raw_http_stall(int port)
{
    static const char half[] = "GET /metrics HTTP/1.1\r\nHost: 127";
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    ASSERT(write(fd, half, sizeof(half) - 1) == (ssize_t)(sizeof(half) - 1));
    return fd;
}

static int metrics_port(unsigned i)
{
    char *t = slurp(nodes[i].log, NULL), *p = strstr(t, "metrics: http://");
    int port = 0;
    ASSERT(p != NULL);
    p = strchr(p + 16, ':');
    ASSERT(p != NULL);
    port = atoi(p + 1);
    free(t);
    ASSERT(port > 0);
    return port;
}

static unsigned long long metric(const char *text, const char *name)
{
    char pat[200];
    const char *p;
    snprintf(pat, sizeof(pat), "\n%s ", name);
    p = strstr(text, pat);
    if (p == NULL) {
        test__fail(__FILE__, __LINE__, "no %s in the metrics", name);
    }
    return strtoull(p + strlen(pat), NULL, 10);
}

TEST_TIMEOUT(ops, metrics_and_health, 120)
{
    static const char *const extra[] = {"--metrics-listen", "127.0.0.1:0",
                                        NULL};
    char body[65536], out[400], err[600];
    uint64_t end;
    int port, code;
    char *t;

    setup();
    snprintf(out, sizeof(out), "%s/cmd.out", base);
    /* A node of three whose peers never come: no leader. */
    start(0, NN, nodes[0].dir, true, extra);
    port = metrics_port(0);
    code = http(port, "GET", "/healthz", body, sizeof(body));
    ASSERT_EQ(code, 503);
    ASSERT(strstr(body, "no leader") != NULL);
    ASSERT_EQ(http(port, "GET", "/metrics", body, sizeof(body)), 200);
    ASSERT_EQ(metric(body, "p2praft_has_leader"), 0);
    ASSERT_EQ(metric(body, "p2praft_members"), 3);
    ASSERT_EQ(http(port, "GET", "/nope", body, sizeof(body)), 404);
    ASSERT_EQ(http(port, "POST", "/metrics", body, sizeof(body)), 405);
    stop(0);

    /* A one-node cluster: a leader at once, healthy once caught up. */
    harness_rm_rf(nodes[0].dir);
    start(0, 1, nodes[0].dir, true, extra);
    port = metrics_port(0);
    end = harness_now_ms() + scale(10000);
    while ((code = http(port, "GET", "/healthz", body, sizeof(body))) != 200) {
        ASSERT_EQ(code, 503);
        ASSERT(harness_now_ms() < end);
        poll_pause();
    }
    ASSERT(strncmp(body, "ok: leader ", 11) == 0);
    ASSERT(strstr(body, nodes[0].id) != NULL);
    {
        char *set[] = {"p2praft", "kv", "--api", nodes[0].api, "set", "m",
                       "1", NULL};
        char *cmd[] = {"p2praft", "metrics", "--api", nodes[0].api, NULL};
        unsigned long long before;
        ASSERT_EQ(http(port, "GET", "/metrics", body, sizeof(body)), 200);
        before = metric(body, "p2praft_commits_total");
        ASSERT_EQ(metric(body, "p2praft_is_leader"), 1);
        ASSERT_EQ(run_io(set, NULL, out, err, sizeof(err)), 0);
        snprintf(out, sizeof(out), "%s/metrics.out", base);
        ASSERT_EQ(run_io(cmd, NULL, out, err, sizeof(err)), 0);
        t = slurp(out, NULL);
        ASSERT(strncmp(t, "# HELP ", 7) == 0);
        ASSERT_EQ(metric(t, "p2praft_commits_total"), before + 1);
        ASSERT_EQ(metric(t, "p2praft_commit_latency_seconds_count"),
                  before + 1);
        ASSERT(metric(t, "p2praft_applied_index") > 0);
        ASSERT(metric(t, "p2praft_keys") == 1);
        ASSERT(metric(t, "p2praft_elections_total") >= 1);
        ASSERT(strstr(t, "p2praft_commit_latency_seconds_bucket{le=\"+Inf\"}") !=
               NULL);
        free(t);
    }
    /* --cluster on a single node */
    {
        char *cmd[] = {"p2praft", "status", "--api", nodes[0].api,
                       "--cluster", NULL};
        ASSERT_EQ(run_io(cmd, NULL, out, err, sizeof(err)), 0);
        t = slurp(out, NULL);
        ASSERT_EQ(count(t, "member: "), 1);
        ASSERT(strstr(t, "state=leader reachable=yes") != NULL);
        free(t);
    }
    /* Hostile HTTP clients: garbage, a header flood, one that stalls
     * half way. Each gets an error or is dropped; /healthz still answers
     * meanwhile, and the node serves writes. */
    {
        static const char garbage[] = "\x00\xff\x16\x03\x01 GARBAGE\r\n\r\n";
        char *set[] = {"p2praft", "kv", "--api", nodes[0].api, "set", "h",
                       "1", NULL};
        size_t big = 200000;
        char *flood = malloc(big + 100);
        int stall;
        ASSERT(flood != NULL);
        raw_http(port, garbage, sizeof(garbage) - 1, body, sizeof(body));
        snprintf(flood, big + 100, "GET /healthz HTTP/1.1\r\nX: ");
        memset(flood + strlen(flood), 'a', big);
        memcpy(flood + 15 + big, "\r\n\r\n", 5);
        code = raw_http(port, flood, 15 + big + 4, body, sizeof(body));
        ASSERT(code == 431 || code == -1);
        free(flood);
        stall = raw_http_stall(port);
        ASSERT_EQ(http(port, "GET", "/healthz", body, sizeof(body)), 200);
        ASSERT_EQ(run_io(set, NULL, out, err, sizeof(err)), 0);
        close(stall);
    }
    stop(0);
    cleanup();
}

/* ---- the systemd unit ---------------------------------------------------- */

/* contrib/p2praft.service, found upward from the runner. */
static char *unit_path(char *buf, size_t cap)
{
    char dir[4096];
    char *slash;
    snprintf(dir, sizeof(dir), "%s", cli_path());
    while ((slash = strrchr(dir, '/')) != NULL) {
        *slash = '\0';
        snprintf(buf, cap, "%s/contrib/p2praft.service", dir);
        if (access(buf, R_OK) == 0) {
            return buf;
        }
    }
    return NULL;
}

TEST(ops, service_unit)
{
    char unit[4200], help[400], out[400], err[600], tmpunit[400];
    char *u, *exec, *save = NULL, *tok, *h, *copy;
    unsigned flags = 0;
    bool restart = false, nonewprivs = false, protect = false;

    setup();
    ASSERT(unit_path(unit, sizeof(unit)) != NULL);
    u = slurp(unit, NULL);
    restart = strstr(u, "\nRestart=on-failure\n") != NULL;
    nonewprivs = strstr(u, "\nNoNewPrivileges=yes\n") != NULL;
    protect = strstr(u, "\nProtectSystem=strict\n") != NULL;
    ASSERT(restart && nonewprivs && protect);
    /* every flag of ExecStart is one `p2praft node --help` lists */
    {
        char *argv[] = {"p2praft", "node", "--help", NULL};
        snprintf(help, sizeof(help), "%s/node-help.out", base);
        ASSERT_EQ(run_io(argv, NULL, help, err, sizeof(err)), 0);
        h = slurp(help, NULL);
    }
    exec = strstr(u, "\nExecStart=");
    ASSERT(exec != NULL);
    exec += strlen("\nExecStart=");
    copy = strndup(exec, strcspn(exec, "\n"));
    ASSERT(copy != NULL);
    tok = strtok_r(copy, " ", &save);
    ASSERT(tok != NULL && strstr(tok, "/p2praft") != NULL);
    tok = strtok_r(NULL, " ", &save);
    ASSERT(tok != NULL && strcmp(tok, "node") == 0);
    while ((tok = strtok_r(NULL, " ", &save)) != NULL) {
        char want[100];
        if (strncmp(tok, "--", 2) != 0) {
            continue;
        }
        snprintf(want, sizeof(want), "  %s ", tok);
        if (strstr(h, want) == NULL) {
            test__fail(__FILE__, __LINE__,
                       "ExecStart flag %s is not in 'p2praft node --help'",
                       tok);
        }
        flags++;
    }
    ASSERT(flags >= 4);
    ASSERT(strstr(u, "--bootstrap") == NULL ||
           strstr(u, "ExecStart=/usr/local/bin/p2praft node --bootstrap") ==
               NULL);
    free(copy);
    free(h);
    /* systemd's own check, on a copy that points at this build's CLI */
    if (access("/usr/bin/systemd-analyze", X_OK) == 0) {
        char *p = strstr(u, "ExecStart=/usr/local/bin/p2praft");
        FILE *f;
        char *argv[] = {"/usr/bin/systemd-analyze", "verify", tmpunit, NULL};
        int st = 0;
        pid_t pid;
        ASSERT(p != NULL);
        snprintf(tmpunit, sizeof(tmpunit), "%s/p2praft.service", base);
        f = fopen(tmpunit, "w");
        ASSERT(f != NULL);
        fprintf(f, "%.*sExecStart=%s%s", (int)(p - u), u, cli_path(),
                p + strlen("ExecStart=/usr/local/bin/p2praft"));
        ASSERT(fclose(f) == 0);
        snprintf(out, sizeof(out), "%s/verify.out", base);
        pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
            int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            dup2(o, 1);
            dup2(o, 2);
            execv(argv[0], argv);
            _exit(127);
        }
        ASSERT(waitpid(pid, &st, 0) == pid);
        h = slurp(out, NULL);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
            strstr(h, "p2praft.service") != NULL) {
            test__fail(__FILE__, __LINE__, "systemd-analyze verify: %s", h);
        }
        free(h);
    }
    free(u);
    cleanup();
}
