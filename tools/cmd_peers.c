/*
 * p2praft peers: the cluster's members, and changes to them, sent to any
 * node (its unix socket, or --node MA --key F over libp2p) and carried out
 * by the leader (p2praft.h, the membership block).
 *
 * Exit status, as `kv`: 0 ok, 2 usage, 3 OUTCOME UNKNOWN (a change was
 * submitted and its commit not seen: run `peers ls` before trying again),
 * 4 the node cannot be reached, 5 refused or failed, surely not changed
 * (a bad address, already or not a member, no leader in time), 6 busy.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kvclient.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: p2praft peers (--api PATH | --data-dir DIR | --node MA "
            "--key F)\n"
            "                     [--timeout-ms N] [--json] COMMAND\n"
            "  ls                  the members as the leader sees them: "
            "PEERID ROLE\n"
            "                      STATE MATCH ADDRESS (role voter, standby "
            "or spare)\n"
            "  add MA              add the member at MA (ending in "
            "/p2p/<id>), then start\n"
            "                      it with an empty --data-dir and --join: "
            "it catches up\n"
            "                      as a standby and becomes a voter\n"
            "  rm PEERID           remove a member for good (the leader "
            "hands over first)\n"
            "  transfer [PEERID]   move leadership (to PEERID, or to any "
            "voter)\n"
            "Sent to any node; carried out by the leader. Exit status: 0 ok, "
            "2 usage,\n"
            "3 OUTCOME UNKNOWN (submitted, commit not seen: check 'peers "
            "ls'),\n"
            "4 the node cannot be reached, 5 refused or failed: not changed, "
            "6 busy.\n");
}

/* "PEERID ROLE STATE MATCH ADDRESS" lines as a JSON array. */
static json_t *peers_json(char *text)
{
    json_t *arr = json_array();
    char *line, *save = NULL;
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[5], *s2 = NULL;
        json_t *m;
        int k = 0;
        for (f[k] = strtok_r(line, " ", &s2); f[k] != NULL && k < 4;
             f[k] = strtok_r(NULL, " ", &s2)) {
            k++;
        }
        if (k < 4) {
            continue;
        }
        m = json_object();
        json_object_set_new(m, "peer_id", json_string(f[0]));
        json_object_set_new(m, "role", json_string(f[1]));
        json_object_set_new(m, "leader",
                            json_boolean(strcmp(f[2], "leader") == 0));
        json_object_set_new(m, "match_index",
                            json_integer((json_int_t)strtoull(f[3], NULL,
                                                              10)));
        json_object_set_new(m, "address",
                            f[4] == NULL || strcmp(f[4], "-") == 0
                                ? json_null()
                                : json_string(f[4]));
        json_array_append_new(arr, m);
    }
    return arr;
}

static int run(int argc, char **argv)
{
    struct kvcli o;
    struct p2praft_request rq;
    struct p2praft_result *res = NULL;
    struct p2praft_client *c = NULL;
    const char *sub, *arg = NULL;
    int a, rv, code;

    if (kvcli_help_asked(argc, argv)) {
        usage(stdout);
        return 0;
    }
    memset(&o, 0, sizeof(o));
    o.cmd = "peers";
    a = kvcli_options(&o, argc, argv);
    if (a < 0 || a >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    sub = argv[a++];
    memset(&rq, 0, sizeof(rq));
    if (strcmp(sub, "ls") == 0 && a == argc) {
        rq.op = P2PRAFT_API_PEERS;
    } else if (strcmp(sub, "add") == 0 && a + 1 == argc) {
        rq.op = P2PRAFT_API_PEER_ADD;
        arg = argv[a];
    } else if (strcmp(sub, "rm") == 0 && a + 1 == argc) {
        rq.op = P2PRAFT_API_PEER_RM;
        arg = argv[a];
    } else if (strcmp(sub, "transfer") == 0 && a + 1 >= argc) {
        rq.op = P2PRAFT_API_TRANSFER;
        arg = a < argc ? argv[a] : "";
    } else {
        fprintf(stderr, "p2praft peers: unknown command or wrong arguments: "
                        "'%s'\n", sub);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (rq.op == P2PRAFT_API_PEER_ADD && strstr(arg, "/p2p/") == NULL) {
        fprintf(stderr, "p2praft peers add: '%s' does not end in /p2p/<peer "
                        "id>: not added\n", arg);
        return EXIT_FAILED;
    }
    rq.key = arg;
    code = kvcli_open(&o, &c);
    if (code != 0) {
        return code;
    }
    rv = p2praft_client_call(c, &rq, &res);
    if (res == NULL) {
        fprintf(stderr, "p2praft peers %s: %s (not sent)\n", sub,
                p2praft_strerror(rv));
        code = rv == P2PRAFT_EINVAL ? EXIT_USAGE : EXIT_UNREACHABLE;
    } else if (res->rv != 0) {
        kvcli_report(&o, sub, arg, res);
        code = kvcli_exit(res);
        if (rq.op == P2PRAFT_API_PEERS && code == EXIT_UNKNOWN) {
            code = EXIT_FAILED; /* a read: nothing changed either way */
        }
    } else if (rq.op == P2PRAFT_API_PEERS) {
        code = !o.json ? kvcli_print_answer(res)
               : kvcli_json_print(peers_json((char *)res->data)) == 0
                   ? EXIT_OK
                   : EXIT_FAILED;
    } else {
        const char *what = rq.op == P2PRAFT_API_PEER_ADD  ? "added"
                           : rq.op == P2PRAFT_API_PEER_RM ? "removed"
                                                          : "leader";
        if (o.json) {
            json_t *j = json_object();
            json_object_set_new(j, "ok", json_true());
            json_object_set_new(j, "op", json_string(sub));
            json_object_set_new(j, rq.op == P2PRAFT_API_TRANSFER ? "leader"
                                                                 : "peer_id",
                                json_string((const char *)res->data));
            json_object_set_new(j, "index", json_integer((json_int_t)res->index));
            code = kvcli_json_print(j) == 0 ? EXIT_OK : EXIT_FAILED;
        } else {
            printf("%s %s%s\n", what, (const char *)res->data,
                   rq.op == P2PRAFT_API_PEER_ADD
                       ? " (standby until it has caught up, then voter: "
                         "start it with --join)"
                       : "");
            code = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAILED;
        }
    }
    p2praft_result_free(res);
    p2praft_client_close(c);
    return code;
}

const struct cli_command cli_cmd_peers = {
    "peers", "list, add or remove members, move leadership", run};
