/*
 * p2praft status: a node's status, over its unix socket or libp2p, as its
 * "key: value" lines or (--json) one JSON object: numbers as numbers,
 * yes/no as booleans, "none" as null, and the repeated keys "member" and
 * "listen" as arrays (a member as {"peer_id", "role", "self"}).
 * Exit status 0, 2 (usage), 4 (no answer: not reachable, refused, or lost)
 * or 5 (the node answered an error), 6 (busy).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kvclient.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: p2praft status (--api PATH | --data-dir DIR | --node MA "
            "--key F)\n"
            "                      [--timeout-ms N] [--json] [--cluster]\n"
            "Print the node's peer ID, role, leader, term, commit and applied "
            "index,\nmembers, connections and counters, as 'key: value' lines "
            "(--json: one JSON\nobject). --node MA reaches the node over "
            "libp2p as the client whose key is\nin F (the node lists its peer "
            "ID with --client). Exit status 4 when the node\ncannot be "
            "reached or does not answer, 5 when it answers an error, 6 when "
            "it\nis busy.\n");
}

static bool all_digits(const char *s)
{
    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!isdigit((unsigned char)*s)) {
            return false;
        }
    }
    return true;
}

/* "ID role" or "ID role (self)" */
static json_t *member_json(const char *v)
{
    json_t *m = json_object();
    const char *sp = strchr(v, ' ');
    if (sp == NULL) {
        json_object_set_new(m, "peer_id", json_string(v));
        return m;
    }
    json_object_set_new(m, "peer_id", json_stringn(v, (size_t)(sp - v)));
    v = sp + 1;
    sp = strchr(v, ' ');
    json_object_set_new(m, "role",
                        sp != NULL ? json_stringn(v, (size_t)(sp - v))
                                   : json_string(v));
    json_object_set_new(m, "self",
                        json_boolean(sp != NULL &&
                                     strcmp(sp + 1, "(self)") == 0));
    return m;
}

/* The status text (NUL-terminated, modified) as a JSON object. */
static json_t *status_json(char *text)
{
    json_t *o = json_object();
    char *line, *save = NULL;
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *sep = strstr(line, ": ");
        const char *k, *v;
        json_t *val;
        if (sep == NULL) {
            continue;
        }
        *sep = '\0';
        k = line;
        v = sep + 2;
        if (strcmp(k, "member") == 0 || strcmp(k, "listen") == 0) {
            json_t *arr = json_object_get(o, k);
            if (arr == NULL) {
                arr = json_array();
                json_object_set_new(o, k, arr);
            }
            json_array_append_new(arr, k[0] == 'm' ? member_json(v)
                                                   : json_string(v));
            continue;
        }
        if (all_digits(v)) {
            val = json_integer((json_int_t)strtoull(v, NULL, 10));
        } else if (strcmp(v, "yes") == 0 || strcmp(v, "no") == 0) {
            val = json_boolean(v[0] == 'y');
        } else if (strcmp(v, "none") == 0) {
            val = json_null();
        } else {
            val = json_string(v);
        }
        json_object_set_new(o, k, val);
    }
    return o;
}

/* A scalar of a status line as JSON: numbers, yes/no, none. */
static json_t *scalar(const char *v)
{
    if (all_digits(v)) {
        return json_integer((json_int_t)strtoull(v, NULL, 10));
    }
    if (strcmp(v, "yes") == 0 || strcmp(v, "no") == 0) {
        return json_boolean(v[0] == 'y');
    }
    if (strcmp(v, "none") == 0) {
        return json_null();
    }
    return json_string(v);
}

/* The CLUSTER text (modified) as JSON: the head lines as fields, each
 * "member: ID k=v..." line as an object in "members". */
static json_t *cluster_json(char *text)
{
    json_t *o = json_object(), *arr = json_array();
    char *line, *save = NULL;
    json_object_set_new(o, "members", arr);
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *sep = strstr(line, ": "), *tok, *save2 = NULL;
        if (sep == NULL) {
            continue;
        }
        *sep = '\0';
        if (strcmp(line, "member") != 0) {
            json_object_set_new(o, line, scalar(sep + 2));
            continue;
        }
        {
            json_t *m = json_object();
            tok = strtok_r(sep + 2, " ", &save2);
            json_object_set_new(m, "peer_id", json_string(tok));
            while ((tok = strtok_r(NULL, " ", &save2)) != NULL) {
                char *eq = strchr(tok, '=');
                if (eq != NULL) {
                    *eq = '\0';
                    json_object_set_new(m, tok, scalar(eq + 1));
                }
            }
            json_array_append_new(arr, m);
        }
    }
    return o;
}

static int run(int argc, char **argv)
{
    bool cluster = false;
    struct kvcli o;
    struct p2praft_request rq;
    struct p2praft_result *res = NULL;
    struct p2praft_client *c = NULL;
    int a, rv, code;

    if (kvcli_help_asked(argc, argv)) {
        usage(stdout);
        return 0;
    }
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--cluster") == 0) {
            cluster = true;
            memmove(&argv[a], &argv[a + 1], (size_t)(argc - a) * sizeof(*argv));
            argc--;
            a--;
        }
    }
    memset(&o, 0, sizeof(o));
    o.cmd = "status";
    a = kvcli_options(&o, argc, argv);
    if (a < 0 || a != argc) {
        if (a >= 0) {
            fprintf(stderr, "p2praft status: unknown argument '%s'\n",
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
    rq.op = cluster ? P2PRAFT_API_CLUSTER : P2PRAFT_API_STATUS;
    rv = p2praft_client_call(c, &rq, &res);
    if (res == NULL || res->rv != 0) {
        if (res == NULL) {
            fprintf(stderr, "p2praft status: %s\n", p2praft_strerror(rv));
            code = EXIT_FAILED;
        } else {
            kvcli_report(&o, "", NULL, res);
            /* No answer is "unreachable" for a read. */
            code = res->status < 0 && res->rv != P2PRAFT_ELIMIT
                       ? EXIT_UNREACHABLE
                       : kvcli_exit(res);
            if (code == EXIT_UNKNOWN) {
                code = EXIT_FAILED;
            }
        }
    } else if (o.json) {
        code = kvcli_json_print(cluster ? cluster_json((char *)res->data)
                                        : status_json((char *)res->data)) == 0
                   ? EXIT_OK
                   : EXIT_FAILED;
    } else {
        code = kvcli_print_answer(res);
    }
    p2praft_result_free(res);
    p2praft_client_close(c);
    return code;
}

const struct cli_command cli_cmd_status = {
    "status",
    "print a node's raft status, or (--cluster) every member's (socket or libp2p)",
    run};
