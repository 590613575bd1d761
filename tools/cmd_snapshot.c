/*
 * p2praft snapshot now: have a node take a raft snapshot at once (Go's
 * raft.Snapshot()), over its unix socket or libp2p. Prints the snapshot's
 * raft index (with --json, {"index": N}).
 * Exit status 0, 2 (usage), 4 (no answer: not reachable, refused, or lost),
 * 5 (the node answered an error), 6 (busy).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kvclient.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: p2praft snapshot now (--api PATH | --data-dir DIR | "
            "--node MA --key F)\n"
            "                            [--timeout-ms N] [--json]\n"
            "Have the node take a raft snapshot now, leader or follower, "
            "whatever its\n--snapshot-threshold, and print the snapshot's "
            "raft index (it covers every\nentry the node had applied). Exit "
            "status 4 when the node cannot be reached\nor does not answer, "
            "5 when it answers an error, 6 when it is busy.\n");
}

static int run(int argc, char **argv)
{
    struct kvcli o;
    struct p2praft_request rq;
    struct p2praft_result *res = NULL;
    struct p2praft_client *c = NULL;
    int a, rv, code;

    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "-h") == 0 || strcmp(argv[a], "--help") == 0) {
            usage(stdout);
            return 0;
        }
    }
    memset(&o, 0, sizeof(o));
    o.cmd = "snapshot";
    a = kvcli_options(&o, argc, argv);
    if (a < 0 || a >= argc || strcmp(argv[a], "now") != 0 || a + 1 != argc) {
        if (a >= 0 && a < argc) {
            fprintf(stderr, "p2praft snapshot: unknown argument '%s'\n",
                    argv[a]);
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
    if (res == NULL) {
        fprintf(stderr, "p2praft snapshot now: %s\n", p2praft_strerror(rv));
        code = EXIT_FAILED;
    } else if (res->rv != 0) {
        kvcli_report(&o, "now", NULL, res);
        code = res->status < 0 && res->rv != P2PRAFT_ELIMIT
                   ? EXIT_UNREACHABLE
                   : kvcli_exit(res);
        if (code == EXIT_UNKNOWN) {
            code = EXIT_FAILED; /* a snapshot changes no data */
        }
    } else if (o.json) {
        json_t *obj = json_object();
        json_object_set_new(obj, "index", json_integer((json_int_t)res->index));
        code = kvcli_json_print(obj) == 0 ? EXIT_OK : EXIT_FAILED;
    } else {
        printf("snapshot at index %" PRIu64 "\n", res->index);
        code = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAILED;
    }
    p2praft_result_free(res);
    p2praft_client_close(c);
    return code;
}

const struct cli_command cli_cmd_snapshot = {
    "snapshot", "take a raft snapshot on a node now (snapshot now)", run};
