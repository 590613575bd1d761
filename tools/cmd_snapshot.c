/*
 * p2praft snapshot save FILE | now: over a running node's unix socket, or
 * --node MA --key F over libp2p.
 * - save FILE: a backup of the node's state (any node), with its raft
 *   index, term and configuration under a SHA-256, read in pages of up to
 *   4 MiB (the node keeps the backup meanwhile: any size), checked whole,
 *   then written atomically.
 * - now: have the node take a raft snapshot at once (Go's raft.Snapshot());
 *   prints the snapshot's raft index (with --json, {"index": N}).
 * The options may come before or after the subcommand. Exit status 0,
 * 2 (usage), 4 (node unreachable, no answer), 5 (the node answered an
 * error, or FILE could not be written: nothing was written), 6 (busy).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fileio.h"
#include "kvclient.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: p2praft snapshot save (--api PATH | --data-dir DIR | "
            "--node MA --key F)\n"
            "                             [--timeout-ms N] [--json] FILE\n"
            "       p2praft snapshot now  (--api PATH | --data-dir DIR | "
            "--node MA --key F)\n"
            "                             [--timeout-ms N] [--json]\n"
            "save: a backup of the node's state at its applied index, with "
            "the raft term\nand configuration, checksummed (SHA-256), of any "
            "size (read in 4 MiB pages), to\nFILE: written to a temporary "
            "file, synced, then renamed, so FILE is never\npartial; an "
            "existing FILE is replaced only if it is a backup. Any node\n"
            "will do. Restore it with 'p2praft restore'.\n"
            "now: have the node take a raft snapshot now, leader or "
            "follower, whatever its\n--snapshot-threshold, and print the "
            "snapshot's raft index (it covers every\nentry the node had "
            "applied).\n"
            "Exit status 4 when the node cannot be reached or does not "
            "answer, 5 when it\nanswers an error or FILE cannot be written, "
            "6 when it is busy.\n");
}

/* The exit status of a failed call (a snapshot changes no data, so an
 * unknown outcome is a plain failure). */
static int failed(const struct kvcli *o, const char *sub,
                  const struct p2praft_result *res, int rv)
{
    bool save = strcmp(sub, "save") == 0;
    if (res == NULL) {
        fprintf(stderr, "p2praft snapshot %s: %s%s\n", sub,
                p2praft_strerror(rv), save ? " (nothing written)" : "");
        return EXIT_FAILED;
    }
    if (save) {
        /* A backup changes nothing on the node: whatever happened to the
         * request, the one outcome that matters is that FILE was not
         * touched (not a write's "outcome unknown"). */
        const char *msg =
            res->status < 0 ? "no answer from the node (the connection was "
                              "lost, or it timed out)"
            : res->len > 0 && res->data != NULL ? (const char *)res->data
                                                : p2praft_strerror(res->rv);
        fprintf(stderr, "p2praft snapshot save: %s (nothing written)\n",
                msg);
        if (o->json) {
            json_t *j = json_object();
            json_object_set_new(j, "ok", json_false());
            json_object_set_new(j, "error", json_string(msg));
            kvcli_json_print(j);
        }
    } else {
        kvcli_report(o, sub, NULL, res);
    }
    return kvcli_read_exit(res);
}

/* A big-endian u64 of a page head. */
static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* The page answer's head (p2praft.h, SNAPSHOT with a cursor). */
#define PAGE_HEAD 24

/*
 * Read a backup page by page (any size): the cursor "" makes the node
 * keep one backup, "ID:OFFSET" reads on. 0 with the whole backup in
 * *data (malloc'ed) and *len, or an exit status with a line on stderr.
 */
static int fetch_pages(const struct kvcli *o, struct p2praft_client *c,
                       uint8_t **data, size_t *len)
{
    struct p2praft_request rq;
    char cursor[64] = "";
    uint8_t *buf = NULL;
    uint64_t id = 0, total = 0, have = 0;
    int code = EXIT_OK;
    memset(&rq, 0, sizeof(rq));
    rq.op = P2PRAFT_API_SNAPSHOT;
    rq.key = cursor;
    for (;;) {
        struct p2praft_result *res = NULL;
        uint64_t pid, ptotal, off;
        size_t chunk;
        int rv = p2praft_client_call(c, &rq, &res);
        if (res == NULL || res->rv != 0) {
            code = failed(o, "save", res, rv);
            p2praft_result_free(res);
            break;
        }
        if (res->len < PAGE_HEAD) {
            fprintf(stderr, "p2praft snapshot save: a page of %zu bytes, "
                            "shorter than its head (nothing written)\n",
                    res->len);
            p2praft_result_free(res);
            code = EXIT_FAILED;
            break;
        }
        pid = get64(res->data);
        ptotal = get64(res->data + 8);
        off = get64(res->data + 16);
        chunk = res->len - PAGE_HEAD;
        if (buf == NULL) {
            id = pid;
            total = ptotal;
            buf = total > 0 && total <= SIZE_MAX ? malloc((size_t)total)
                                                 : NULL;
            if (buf == NULL) {
                fprintf(stderr, "p2praft snapshot save: cannot hold a "
                                "backup of %llu bytes (nothing written)\n",
                        (unsigned long long)total);
                p2praft_result_free(res);
                code = EXIT_FAILED;
                break;
            }
        }
        if (pid != id || ptotal != total || off != have ||
            chunk > total - have || (chunk == 0 && have < total)) {
            fprintf(stderr, "p2praft snapshot save: the node sent page "
                            "%llu:%llu (%zu bytes) of %llu bytes, wanted "
                            "%llu:%llu (nothing written)\n",
                    (unsigned long long)pid, (unsigned long long)off, chunk,
                    (unsigned long long)ptotal, (unsigned long long)id,
                    (unsigned long long)have);
            p2praft_result_free(res);
            code = EXIT_FAILED;
            break;
        }
        memcpy(buf + have, res->data + PAGE_HEAD, chunk);
        have += chunk;
        p2praft_result_free(res);
        if (have == total) {
            *data = buf;
            *len = (size_t)total;
            return EXIT_OK;
        }
        snprintf(cursor, sizeof(cursor), "%llu:%llu",
                 (unsigned long long)id, (unsigned long long)have);
    }
    free(buf);
    return code;
}

/*
 * May `file` be replaced by a backup? Yes when it does not exist, is an
 * empty regular file, or is a backup (an older one). Anything else is
 * refused before the node is asked: a typo must not replace a key file,
 * a node's data, or a device (as root, renaming over /dev/null would
 * replace the device). 0, or -1 with a sentence in err.
 */
static int target_ok(const char *file, char *err, size_t errlen)
{
    uint8_t head[P2PRAFT_BACKUP_MAGIC_LEN];
    struct stat st;
    ssize_t n;
    int fd;
    if (strcmp(file, "-") == 0) {
        snprintf(err, errlen, "a backup is written to a file, not to standard "
                              "output: name one ('./-' for a file named -)");
        return -1;
    }
    if (lstat(file, &st) != 0) {
        return 0; /* absent (or unreachable: the write says why) */
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is a directory", file);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a regular file: not "
                              "replaced", file);
        return -1;
    }
    if (st.st_size == 0) {
        return 0;
    }
    fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    n = fd >= 0 ? read(fd, head, sizeof(head)) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (n != (ssize_t)sizeof(head) ||
        memcmp(head, P2PRAFT_BACKUP_MAGIC, sizeof(head)) != 0) {
        snprintf(err, errlen, "%s exists and is not a p2praft backup: not "
                              "replaced (remove it, or choose another name)",
                 file);
        return -1;
    }
    return 0;
}

/*
 * Is the node in step with a leader (its /healthz)? A backup from a node
 * cut off from the cluster is whole and consistent, but may be far
 * behind: say so. NULL when healthy (or when it cannot tell), else the
 * node's reason (malloc'ed).
 */
static char *out_of_step(struct p2praft_client *c)
{
    struct p2praft_request rq;
    struct p2praft_result *res = NULL;
    char *why = NULL;
    memset(&rq, 0, sizeof(rq));
    rq.op = P2PRAFT_API_HEALTH;
    p2praft_client_call(c, &rq, &res);
    if (res != NULL && res->rv != 0 && res->status >= 0 && res->len > 0) {
        why = strndup((const char *)res->data, res->len);
    }
    p2praft_result_free(res);
    return why;
}

static int save(const struct kvcli *o, const uint8_t *data, size_t len,
                const char *file, const char *behind)
{
    struct p2praft_backup_info info;
    char err[512];
    if (p2praft_backup_check(data, len, &info, err, sizeof(err)) != 0) {
        fprintf(stderr, "p2praft snapshot save: the node sent a backup that "
                        "does not check: %s (nothing written)\n", err);
        return EXIT_FAILED;
    }
    if (target_ok(file, err, sizeof(err)) != 0 ||
        cli_write_atomic(file, data, len, err, sizeof(err)) != 0) {
        fprintf(stderr, "p2praft snapshot save: %s (nothing written)\n", err);
        return EXIT_FAILED;
    }
    if (behind != NULL) {
        fprintf(stderr, "p2praft snapshot save: warning: the node is not in "
                        "step with a leader (%s): this backup, at index "
                        "%llu, may be behind the cluster's\n",
                behind, (unsigned long long)info.index);
    }
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "ok", json_true());
        if (behind != NULL) {
            json_object_set_new(j, "warning", json_string(behind));
        }
        json_object_set_new(j, "file", json_string(file));
        json_object_set_new(j, "index", json_integer((json_int_t)info.index));
        json_object_set_new(j, "term", json_integer((json_int_t)info.term));
        json_object_set_new(j, "keys", json_integer((json_int_t)info.keys));
        json_object_set_new(j, "bytes", json_integer((json_int_t)len));
        json_object_set_new(j, "members",
                            json_integer((json_int_t)info.n_members));
        return kvcli_json_print(j) == 0 ? EXIT_OK : EXIT_FAILED;
    }
    printf("saved %s: index %llu, term %llu, %llu keys, %zu members, "
           "%zu bytes\n",
           file, (unsigned long long)info.index,
           (unsigned long long)info.term, (unsigned long long)info.keys,
           info.n_members, len);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAILED;
}

static int now(const struct kvcli *o, const struct p2praft_result *res)
{
    if (o->json) {
        json_t *obj = json_object();
        json_object_set_new(obj, "index", json_integer((json_int_t)res->index));
        return kvcli_json_print(obj) == 0 ? EXIT_OK : EXIT_FAILED;
    }
    printf("snapshot at index %" PRIu64 "\n", res->index);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAILED;
}

/* The index of the subcommand: the first argument that is neither an
 * option nor an option's value; argc when there is none. */
static int find_sub(int argc, char **argv)
{
    int a;
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--json") == 0) {
            continue;
        }
        if (strncmp(argv[a], "--", 2) == 0 || strcmp(argv[a], "-k") == 0) {
            a++; /* its value */
            continue;
        }
        break;
    }
    return a;
}

static int run(int argc, char **argv)
{
    struct kvcli o;
    struct p2praft_request rq;
    struct p2praft_result *res = NULL;
    struct p2praft_client *c = NULL;
    const char *sub, *file = NULL;
    char **rest;
    int a, k, n = 0, rv, code;

    if (kvcli_help_asked(argc, argv)) {
        usage(stdout);
        return 0;
    }
    k = find_sub(argc, argv);
    if (k >= argc || (strcmp(argv[k], "save") != 0 &&
                      strcmp(argv[k], "now") != 0)) {
        if (k < argc) {
            fprintf(stderr, "p2praft snapshot: unknown argument '%s'\n",
                    argv[k]);
        }
        usage(stderr);
        return EXIT_USAGE;
    }
    sub = argv[k];
    /* The options without the subcommand, so they may stand on both
     * sides of it. */
    rest = calloc((size_t)argc, sizeof(*rest));
    if (rest == NULL) {
        fprintf(stderr, "p2praft snapshot: out of memory\n");
        return EXIT_FAILED;
    }
    for (a = 0; a < argc; a++) {
        if (a != k) {
            rest[n++] = argv[a];
        }
    }
    memset(&o, 0, sizeof(o));
    o.cmd = "snapshot";
    a = kvcli_options(&o, n, rest);
    if (a >= 0 && strcmp(sub, "save") == 0 && a + 1 == n) {
        file = rest[a];
        a = n;
    }
    if (a < 0 || a != n) {
        if (a >= 0) {
            fprintf(stderr, "p2praft snapshot %s: %s\n", sub,
                    strcmp(sub, "save") == 0
                        ? "give one FILE after the options"
                        : "no argument after 'now'");
        }
        free(rest);
        usage(stderr);
        return EXIT_USAGE;
    }
    free(rest);
    if (file != NULL) {
        char err[512];
        if (target_ok(file, err, sizeof(err)) != 0) {
            fprintf(stderr, "p2praft snapshot save: %s (nothing written)\n",
                    err);
            return EXIT_FAILED;
        }
    }
    code = kvcli_open(&o, &c);
    if (code != 0) {
        return code;
    }
    if (file != NULL) {
        uint8_t *data = NULL;
        size_t len = 0;
        code = fetch_pages(&o, c, &data, &len);
        if (code == EXIT_OK) {
            char *behind = out_of_step(c);
            code = save(&o, data, len, file, behind);
            free(behind);
        }
        free(data);
        p2praft_client_close(c);
        return code;
    }
    memset(&rq, 0, sizeof(rq));
    rq.op = P2PRAFT_API_SNAPSHOT_NOW;
    rv = p2praft_client_call(c, &rq, &res);
    if (res == NULL || res->rv != 0) {
        code = failed(&o, sub, res, rv);
    } else {
        code = now(&o, res);
    }
    p2praft_result_free(res);
    p2praft_client_close(c);
    return code;
}

const struct cli_command cli_cmd_snapshot = {
    "snapshot", "snapshot save FILE: back up a node; snapshot now: take one",
    run};
