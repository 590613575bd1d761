/*
 * p2praft snapshot save FILE: a backup of a running node's state (any
 * node: its unix socket, or --node MA --key F over libp2p), with its raft
 * index, term and configuration under a SHA-256, written atomically. The
 * backup is checked whole before it is written. Exit status 0, 2 (usage),
 * 4 (node unreachable), 5 (the node answered an error, or the file could
 * not be written: nothing was written), 6 (busy).
 */
#include <string.h>

#include "cli.h"
#include "fileio.h"
#include "kvclient.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: p2praft snapshot save (--api PATH | --data-dir DIR | "
            "--node MA --key F)\n"
            "                             [--timeout-ms N] [--json] FILE\n"
            "Save a backup of the node's state at its applied index, with "
            "the raft term\nand configuration, checksummed (SHA-256), to "
            "FILE: written to a temporary\nfile, synced, then renamed, so "
            "FILE is never partial. Any node will do.\nRestore it with "
            "'p2praft restore'. Exit status 4 when the node cannot be\n"
            "reached, 5 when it answers an error or FILE cannot be "
            "written, 6 when busy.\n");
}

static int run(int argc, char **argv)
{
    struct kvcli o;
    struct p2praft_request rq;
    struct p2praft_result *res = NULL;
    struct p2praft_client *c = NULL;
    struct p2praft_backup_info info;
    char err[512];
    int a, rv, code;

    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 ||
                      strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "save") != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    memset(&o, 0, sizeof(o));
    o.cmd = "snapshot save";
    a = kvcli_options(&o, argc - 1, argv + 1);
    if (a < 0 || a + 1 != argc - 1) {
        if (a >= 0) {
            fprintf(stderr, "p2praft snapshot save: give one FILE after the "
                            "options\n");
        }
        usage(stderr);
        return EXIT_USAGE;
    }
    code = kvcli_open(&o, &c);
    if (code != 0) {
        return code;
    }
    memset(&rq, 0, sizeof(rq));
    rq.op = P2PRAFT_API_SNAPSHOT;
    rv = p2praft_client_call(c, &rq, &res);
    if (res == NULL || res->rv != 0) {
        if (res == NULL) {
            fprintf(stderr, "p2praft snapshot save: %s\n",
                    p2praft_strerror(rv));
            code = EXIT_FAILED;
        } else {
            kvcli_report(&o, "", NULL, res);
            code = res->status < 0 && res->rv != P2PRAFT_ELIMIT
                       ? EXIT_UNREACHABLE
                       : kvcli_exit(res);
            if (code == EXIT_UNKNOWN || code == EXIT_NOTFOUND) {
                code = EXIT_FAILED;
            }
        }
        goto out;
    }
    if (p2praft_backup_check(res->data, res->len, &info, err, sizeof(err)) !=
        0) {
        fprintf(stderr, "p2praft snapshot save: the node sent a backup that "
                        "does not check: %s (nothing written)\n", err);
        code = EXIT_FAILED;
        goto out;
    }
    if (cli_write_atomic(argv[argc - 1], res->data, res->len, err,
                         sizeof(err)) != 0) {
        fprintf(stderr, "p2praft snapshot save: %s (nothing written)\n", err);
        code = EXIT_FAILED;
        goto out;
    }
    if (o.json) {
        json_t *j = json_object();
        json_object_set_new(j, "ok", json_true());
        json_object_set_new(j, "file", json_string(argv[argc - 1]));
        json_object_set_new(j, "index", json_integer((json_int_t)info.index));
        json_object_set_new(j, "term", json_integer((json_int_t)info.term));
        json_object_set_new(j, "keys", json_integer((json_int_t)info.keys));
        json_object_set_new(j, "bytes", json_integer((json_int_t)res->len));
        json_object_set_new(j, "members",
                            json_integer((json_int_t)info.n_members));
        code = kvcli_json_print(j) == 0 ? EXIT_OK : EXIT_FAILED;
    } else {
        printf("saved %s: index %llu, term %llu, %llu keys, %zu members, "
               "%zu bytes\n",
               argv[argc - 1], (unsigned long long)info.index,
               (unsigned long long)info.term, (unsigned long long)info.keys,
               info.n_members, res->len);
        code = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAILED;
    }
out:
    p2praft_result_free(res);
    p2praft_client_close(c);
    return code;
}

const struct cli_command cli_cmd_snapshot = {
    "snapshot", "snapshot save FILE: back up a running node's state", run};
