/*
 * p2praft metrics: a node's metrics in the Prometheus text format, over
 * its unix socket or libp2p (what `node --metrics-listen` serves at
 * /metrics). Exit status 0, 2 (usage), 4 (unreachable), 5 (error), 6
 * (busy).
 */
#include <string.h>

#include "cli.h"
#include "kvclient.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: p2praft metrics (--api PATH | --data-dir DIR | --node MA "
            "--key F)\n"
            "                       [--timeout-ms N]\n"
            "Print the node's metrics in the Prometheus text format: "
            "commits and their\nlatency, indexes, leader changes, elections, "
            "snapshots, connections,\nstreams, refusals, bytes in and out.\n");
}

static int run(int argc, char **argv)
{
    struct kvcli o;
    struct p2praft_request rq;
    struct p2praft_result *res = NULL;
    struct p2praft_client *c = NULL;
    int a, rv, code;

    if (kvcli_help_asked(argc, argv)) {
        usage(stdout);
        return 0;
    }
    memset(&o, 0, sizeof(o));
    o.cmd = "metrics";
    a = kvcli_options(&o, argc, argv);
    if (a < 0 || a != argc || o.json) {
        if (a >= 0) {
            fprintf(stderr, "p2praft metrics: unknown argument '%s'\n",
                    a < argc ? argv[a] : "--json");
        }
        usage(stderr);
        return EXIT_USAGE;
    }
    code = kvcli_open(&o, &c);
    if (code != 0) {
        return code;
    }
    memset(&rq, 0, sizeof(rq));
    rq.op = P2PRAFT_API_METRICS;
    rv = p2praft_client_call(c, &rq, &res);
    if (res == NULL || res->rv != 0) {
        if (res == NULL) {
            fprintf(stderr, "p2praft metrics: %s\n", p2praft_strerror(rv));
            code = EXIT_FAILED;
        } else {
            kvcli_report(&o, "", NULL, res);
            code = kvcli_read_exit(res);
        }
    } else {
        code = kvcli_print_answer(res);
    }
    p2praft_result_free(res);
    p2praft_client_close(c);
    return code;
}

const struct cli_command cli_cmd_metrics = {
    "metrics", "print a node's metrics (Prometheus text format)", run};
