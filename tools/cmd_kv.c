/*
 * p2praft kv: a client of a node's key-value store, over its unix socket
 * or, from anywhere, over libp2p (--node MA --key F), through the public
 * client API (p2praft_client_*).
 *
 * Exit status, one per kind of answer, so that a script can tell "surely
 * not applied" (retry is safe) from "outcome unknown" (it is not):
 *   0 ok
 *   1 not found (get, del) or compare-and-set mismatch
 *   2 usage
 *   3 outcome unknown: the node said so (UNKNOWN), or no answer came after
 *     the request was sent (--timeout-ms expired, connection lost, garbled
 *     answer), or a status this CLI does not know. A write may have been
 *     applied, or may still be.
 *   4 the node cannot be reached (or refused this client): nothing sent
 *   5 failed, surely not applied (FAILED, BAD REQUEST)
 *   6 busy: the node refused the connection or the request before starting
 *     it; not applied
 *   7 not caught up: a plain get or ls on a node that has not caught up
 *     with a leader since it started (retry, or --consistent)
 *
 * Values are bytes: VALUE, EXPECTED and NEW are the argument's text, or
 * with "-" standard input, with "@FILE" the file's bytes (--literal takes
 * them as given). `get --raw` writes the value byte for byte, nothing
 * added. --json prints JSON (one object per line) on stdout: see
 * kvclient.h for bytes that are not UTF-8 text.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kvclient.h"

static void kv_usage(FILE *out)
{
    fprintf(
        out,
        "usage: p2praft kv (--api PATH | --data-dir DIR | --node MA --key F)\n"
        "                  [--timeout-ms N] [--json] COMMAND\n"
        "  get [--consistent] [--raw] KEY   print the value (--raw: byte for "
        "byte,\n"
        "                                   no newline added)\n"
        "  set [--literal] KEY VALUE\n"
        "  del KEY\n"
        "  cas [--literal] KEY EXPECTED NEW set KEY to NEW if it holds "
        "EXPECTED\n"
        "  ls [--prefix P] [--limit N] [--consistent]\n"
        "                                   the keys (--json: and values), "
        "in byte order\n"
        "  watch [--prefix P]               print the changes applied on the "
        "node until\n"
        "                                   SIGINT/SIGTERM: 'INDEX set|cas KEY "
        "VALUE',\n"
        "                                   'INDEX del KEY', 'dropped N: "
        "resync'\n"
        "VALUE, EXPECTED, NEW: the text; '-' reads standard input, '@FILE' "
        "a file\n"
        "(any bytes, up to 4 MiB); --literal takes them as they are.\n"
        "--consistent reads go through a read barrier on the leader; plain "
        "ones are\nlocal. --node MA (ending in /p2p/ID) reaches a node over "
        "libp2p as the\nclient whose key is in F: the node must list its "
        "peer ID (--client).\n"
        "--json: one JSON object per line; a value or key that is not UTF-8 "
        "text\n(or holds a NUL byte) comes as value_base64 / key_base64 "
        "instead.\n"
        "Writes go to any node; they are forwarded to the leader and return "
        "once this\nnode applied them. Exit status:\n"
        "  0 ok                 1 not found, or cas mismatch    2 usage\n"
        "  3 OUTCOME UNKNOWN: the node said so, or no answer came after "
        "the request\n    was sent (--timeout-ms, lost connection): "
        "a write may have been applied\n"
        "  4 the node cannot be reached, or refused this client (nothing "
        "sent)\n"
        "  5 failed, surely not applied     6 busy, not applied: "
        "try again\n"
        "  7 not caught up: the node has not heard from a leader since "
        "it started\n    (try again, or --consistent)\n");
}

/* ---- values -------------------------------------------------------------- */

struct value {
    uint8_t *data;
    size_t len;
    bool owned;
};

static int read_all(FILE *f, const char *what, struct value *v)
{
    size_t cap = 65536;
    v->data = malloc(cap);
    v->len = 0;
    v->owned = true;
    if (v->data == NULL) {
        fprintf(stderr, "p2praft kv: out of memory\n");
        return -1;
    }
    for (;;) {
        size_t n;
        if (v->len == cap) {
            uint8_t *g;
            if (cap > P2PRAFT_KV_VALUE_MAX) {
                fprintf(stderr,
                        "p2praft kv: the value in %s is over %d bytes\n", what,
                        P2PRAFT_KV_VALUE_MAX);
                return -1;
            }
            g = realloc(v->data, cap * 2);
            if (g == NULL) {
                fprintf(stderr, "p2praft kv: out of memory\n");
                return -1;
            }
            v->data = g;
            cap *= 2;
        }
        n = fread(v->data + v->len, 1, cap - v->len, f);
        v->len += n;
        if (n == 0) {
            break;
        }
    }
    if (ferror(f)) {
        fprintf(stderr, "p2praft kv: cannot read %s: %s\n", what,
                strerror(errno));
        return -1;
    }
    if (v->len > P2PRAFT_KV_VALUE_MAX) {
        fprintf(stderr, "p2praft kv: the value in %s is over %d bytes\n", what,
                P2PRAFT_KV_VALUE_MAX);
        return -1;
    }
    return 0;
}

/* The value an argument names. 0 or -1 (message printed). */
static int get_value(const char *arg, bool literal, bool *stdin_used,
                     struct value *v)
{
    memset(v, 0, sizeof(*v));
    if (!literal && strcmp(arg, "-") == 0) {
        if (*stdin_used) {
            fprintf(stderr, "p2praft kv: only one value can come from "
                            "standard input\n");
            return -1;
        }
        *stdin_used = true;
        return read_all(stdin, "standard input", v);
    }
    if (!literal && arg[0] == '@') {
        FILE *f = fopen(arg + 1, "rb");
        int rv;
        if (f == NULL) {
            fprintf(stderr, "p2praft kv: cannot open %s: %s\n", arg + 1,
                    strerror(errno));
            return -1;
        }
        rv = read_all(f, arg + 1, v);
        fclose(f);
        return rv;
    }
    v->data = (uint8_t *)arg;
    v->len = strlen(arg);
    if (v->len > P2PRAFT_KV_VALUE_MAX) {
        fprintf(stderr, "p2praft kv: a value is at most %d bytes\n",
                P2PRAFT_KV_VALUE_MAX);
        return -1;
    }
    return 0;
}

static void value_free(struct value *v)
{
    if (v->owned) {
        free(v->data);
    }
}

/* ---- subcommand arguments ------------------------------------------------ */

struct subargs {
    const char *pos[3];
    size_t n_pos;
    bool consistent, raw, literal;
    const char *prefix;
    unsigned long limit;
};

/* Parse a subcommand's options and positionals (`--` ends the options).
 * 0 or -1 (usage printed). */
static int sub_args(struct kvcli *o, const char *sub, int argc, char **argv,
                    int a, size_t want, struct subargs *s)
{
    bool opts = true;
    memset(s, 0, sizeof(*s));
    for (; a < argc; a++) {
        const char *x = argv[a];
        if (opts && strcmp(x, "--") == 0) {
            opts = false;
            continue;
        }
        if (opts && strncmp(x, "--", 2) == 0) {
            bool is_get = strcmp(sub, "get") == 0;
            bool is_ls = strcmp(sub, "ls") == 0;
            bool is_watch = strcmp(sub, "watch") == 0;
            bool takes_value = strcmp(sub, "set") == 0 ||
                               strcmp(sub, "cas") == 0;
            if (strcmp(x, "--json") == 0) {
                o->json = true;
            } else if (strcmp(x, "--consistent") == 0 && (is_get || is_ls)) {
                s->consistent = true;
            } else if (strcmp(x, "--raw") == 0 && is_get) {
                s->raw = true;
            } else if (strcmp(x, "--literal") == 0 && takes_value) {
                s->literal = true;
            } else if (strcmp(x, "--prefix") == 0 && (is_ls || is_watch) &&
                       a + 1 < argc) {
                s->prefix = argv[++a];
            } else if (strcmp(x, "--limit") == 0 && is_ls && a + 1 < argc) {
                char *end;
                s->limit = strtoul(argv[++a], &end, 10);
                if (*end != '\0' || s->limit == 0) {
                    fprintf(stderr, "p2praft kv ls: --limit wants a positive "
                                    "number\n");
                    return -1;
                }
            } else {
                fprintf(stderr, "p2praft kv %s: unknown option '%s'\n", sub, x);
                kv_usage(stderr);
                return -1;
            }
            continue;
        }
        if (s->n_pos == want) {
            fprintf(stderr, "p2praft kv %s: too many arguments\n", sub);
            kv_usage(stderr);
            return -1;
        }
        s->pos[s->n_pos++] = x;
    }
    if (s->n_pos != want) {
        fprintf(stderr, "p2praft kv %s: missing arguments\n", sub);
        kv_usage(stderr);
        return -1;
    }
    if (want > 0 && (s->pos[0][0] == '\0' ||
                     strlen(s->pos[0]) > P2PRAFT_KV_KEY_MAX)) {
        fprintf(stderr, "p2praft kv: a key is 1 to %d bytes\n",
                P2PRAFT_KV_KEY_MAX);
        return -1;
    }
    if (s->prefix != NULL && strlen(s->prefix) > P2PRAFT_KV_KEY_MAX) {
        fprintf(stderr, "p2praft kv: a prefix is at most %d bytes\n",
                P2PRAFT_KV_KEY_MAX);
        return -1;
    }
    return 0;
}

/* ---- get, set, del, cas -------------------------------------------------- */

static int run_one(struct kvcli *o, const char *sub, int argc, char **argv,
                   int a)
{
    struct p2praft_request rq;
    struct p2praft_result *res = NULL;
    struct p2praft_client *c = NULL;
    struct value v1 = {0}, v2 = {0};
    struct subargs s;
    bool stdin_used = false;
    size_t want;
    int rv, code;

    memset(&rq, 0, sizeof(rq));
    if (strcmp(sub, "get") == 0) {
        rq.op = P2PRAFT_API_GET;
        want = 1;
    } else if (strcmp(sub, "set") == 0) {
        rq.op = P2PRAFT_API_SET;
        want = 2;
    } else if (strcmp(sub, "del") == 0) {
        rq.op = P2PRAFT_API_DEL;
        want = 1;
    } else {
        rq.op = P2PRAFT_API_CAS;
        want = 3;
    }
    if (sub_args(o, sub, argc, argv, a, want, &s) != 0) {
        return EXIT_USAGE;
    }
    rq.key = s.pos[0];
    rq.consistent = s.consistent;
    if (rq.op == P2PRAFT_API_SET) {
        if (get_value(s.pos[1], s.literal, &stdin_used, &v1) != 0) {
            code = EXIT_USAGE;
            goto out;
        }
        rq.value = v1.data;
        rq.len = v1.len;
    } else if (rq.op == P2PRAFT_API_CAS) { /* KEY EXPECTED NEW */
        if (get_value(s.pos[1], s.literal, &stdin_used, &v1) != 0 ||
            get_value(s.pos[2], s.literal, &stdin_used, &v2) != 0) {
            code = EXIT_USAGE;
            goto out;
        }
        rq.expected = v1.data;
        rq.expected_len = v1.len;
        rq.value = v2.data;
        rq.len = v2.len;
    }
    code = kvcli_open(o, &c);
    if (code != 0) {
        goto out;
    }
    rv = p2praft_client_call(c, &rq, &res);
    if (res == NULL) {
        fprintf(stderr, "p2praft kv %s: %s\n", sub, p2praft_strerror(rv));
        code = p2praft_outcome_unknown(rv) || rv == P2PRAFT_ENOMEM
                   ? EXIT_UNKNOWN
                   : EXIT_FAILED;
        goto out;
    }
    code = kvcli_exit(res);
    if (code != EXIT_OK) {
        kvcli_report(o, sub, rq.key, res);
        goto out;
    }
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "ok", json_true());
        kvcli_json_bytes(j, "key", rq.key, strlen(rq.key));
        if (rq.op == P2PRAFT_API_GET) {
            kvcli_json_bytes(j, "value", res->data, res->len);
        }
        json_object_set_new(j, "index", json_integer((json_int_t)res->index));
        if (kvcli_json_print(j) != 0) {
            code = EXIT_FAILED;
        }
    } else if (rq.op == P2PRAFT_API_GET) {
        if (fwrite(res->data, 1, res->len, stdout) != res->len ||
            (!s.raw && fputc('\n', stdout) == EOF) || fflush(stdout) != 0) {
            fprintf(stderr, "p2praft kv get: cannot write the value: %s\n",
                    strerror(errno));
            code = EXIT_FAILED;
        }
    } else {
        printf("ok\n");
    }
out:
    p2praft_result_free(res);
    p2praft_client_close(c);
    value_free(&v1);
    value_free(&v2);
    return code;
}

/* ---- ls ----------------------------------------------------------------- */

static int run_ls(struct kvcli *o, int argc, char **argv, int a)
{
    struct p2praft_request rq;
    struct p2praft_client *c = NULL;
    struct subargs s;
    char *after = NULL;
    unsigned long printed = 0;
    int code;

    if (sub_args(o, "ls", argc, argv, a, 0, &s) != 0) {
        return EXIT_USAGE;
    }
    code = kvcli_open(o, &c);
    if (code != 0) {
        return code;
    }
    memset(&rq, 0, sizeof(rq));
    rq.op = P2PRAFT_API_LS;
    rq.key = s.prefix;
    rq.consistent = s.consistent;
    rq.keys_only = !o->json;
    for (;;) {
        struct p2praft_result *res = NULL;
        size_t i;
        int rv;
        rq.after = after;
        rq.limit = s.limit > 0 && s.limit - printed < UINT32_MAX
                       ? (uint32_t)(s.limit - printed)
                       : 0;
        rv = p2praft_client_call(c, &rq, &res);
        if (res == NULL) {
            fprintf(stderr, "p2praft kv ls: %s\n", p2praft_strerror(rv));
            code = EXIT_FAILED;
            break;
        }
        code = kvcli_exit(res);
        if (code != EXIT_OK) {
            kvcli_report(o, "ls", s.prefix, res);
            p2praft_result_free(res);
            break;
        }
        for (i = 0; i < res->n_entries; i++) {
            const struct p2praft_kv *e = &res->entries[i];
            int wrv;
            if (o->json) {
                json_t *j = json_object();
                kvcli_json_bytes(j, "key", e->key, strlen(e->key));
                kvcli_json_bytes(j, "value", e->value, e->len);
                wrv = kvcli_json_print(j);
            } else {
                wrv = printf("%s\n", e->key) < 0 ? -1 : 0;
            }
            if (wrv != 0) {
                code = EXIT_FAILED;
                break;
            }
            printed++;
        }
        free(after);
        after = NULL;
        if (code == EXIT_OK && res->more && res->n_entries > 0 &&
            (s.limit == 0 || printed < s.limit)) {
            after = strdup(res->entries[res->n_entries - 1].key);
            if (after == NULL) {
                code = EXIT_FAILED;
            }
        }
        p2praft_result_free(res);
        if (after == NULL) {
            break;
        }
        /* Later pages: the first one's barrier already caught us up. */
        rq.consistent = false;
    }
    free(after);
    if (fflush(stdout) != 0) {
        code = EXIT_FAILED;
    }
    p2praft_client_close(c);
    return code;
}

/* ---- watch -------------------------------------------------------------- */

struct watch_state {
    struct kvcli *o;
    pthread_t main;
    pthread_mutex_t mu;
    bool ended;
    int code;
};

static void watch_end(struct watch_state *w, int code)
{
    pthread_mutex_lock(&w->mu);
    if (!w->ended) {
        w->ended = true;
        w->code = code;
        pthread_kill(w->main, SIGUSR1); /* wakes sigwait() in run_watch */
    }
    pthread_mutex_unlock(&w->mu);
}

static const char *kind_name(enum p2praft_watch_kind k)
{
    switch (k) {
    case P2PRAFT_WATCH_SET:
        return "set";
    case P2PRAFT_WATCH_CAS:
        return "cas";
    case P2PRAFT_WATCH_DEL:
        return "del";
    case P2PRAFT_WATCH_STARTED:
        return "started";
    case P2PRAFT_WATCH_DROPPED:
        return "dropped";
    default:
        return "end";
    }
}

/* On the client's thread: print one event. */
static void on_event(void *ctx, const struct p2praft_watch_event *ev)
{
    struct watch_state *w = ctx;
    int rv = 0;
    if (ev->kind == P2PRAFT_WATCH_END) {
        const struct p2praft_result *r = ev->end;
        if (r->rv != 0 && r->rv != P2PRAFT_ECANCELED) {
            kvcli_report(w->o, "watch", NULL, r);
        }
        watch_end(w, r->rv == 0 || r->rv == P2PRAFT_ECANCELED
                         ? EXIT_OK
                         : kvcli_exit(r) == EXIT_UNKNOWN ? EXIT_UNREACHABLE
                                                         : kvcli_exit(r));
        return;
    }
    if (w->o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "event", json_string(kind_name(ev->kind)));
        json_object_set_new(j, "index", json_integer((json_int_t)ev->index));
        if (ev->key != NULL) {
            kvcli_json_bytes(j, "key", ev->key, strlen(ev->key));
        }
        if (ev->kind == P2PRAFT_WATCH_SET || ev->kind == P2PRAFT_WATCH_CAS) {
            kvcli_json_bytes(j, "value", ev->value, ev->len);
        }
        if (ev->kind == P2PRAFT_WATCH_DROPPED) {
            json_object_set_new(j, "count",
                                ev->dropped > 0
                                    ? json_integer((json_int_t)ev->dropped)
                                    : json_null());
            json_object_set_new(j, "resync", json_true());
        }
        rv = kvcli_json_print(j);
    } else if (ev->kind == P2PRAFT_WATCH_STARTED) {
        fprintf(stderr, "p2praft kv watch: watching from index %llu\n",
                (unsigned long long)ev->index);
    } else if (ev->kind == P2PRAFT_WATCH_DROPPED) {
        if (ev->dropped > 0) {
            rv = printf("dropped %llu: resync\n",
                        (unsigned long long)ev->dropped);
        } else {
            rv = printf("dropped unknown: resync\n");
        }
        rv = rv < 0 || fflush(stdout) != 0 ? -1 : 0;
    } else {
        rv = printf("%llu %s %s", (unsigned long long)ev->index,
                    kind_name(ev->kind), ev->key);
        if (rv >= 0 && ev->kind != P2PRAFT_WATCH_DEL) {
            rv = fputc(' ', stdout) == EOF ||
                         fwrite(ev->value, 1, ev->len, stdout) != ev->len
                     ? -1
                     : 0;
        }
        rv = rv < 0 || fputc('\n', stdout) == EOF || fflush(stdout) != 0 ? -1
                                                                         : 0;
    }
    if (rv != 0) {
        watch_end(w, EXIT_OK); /* nobody reads stdout any more */
    }
}

static int run_watch(struct kvcli *o, int argc, char **argv, int a)
{
    struct watch_state w;
    struct p2praft_client *c = NULL;
    struct subargs s;
    sigset_t set;
    uint32_t id = 0;
    int code, sig = 0, rv;

    if (sub_args(o, "watch", argc, argv, a, 0, &s) != 0) {
        return EXIT_USAGE;
    }
    /* The client's thread inherits the mask: only sigwait() sees these. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    memset(&w, 0, sizeof(w));
    w.o = o;
    w.main = pthread_self();
    pthread_mutex_init(&w.mu, NULL);
    code = kvcli_open(o, &c);
    if (code != 0) {
        pthread_mutex_destroy(&w.mu);
        return code;
    }
    rv = p2praft_client_watch(c, s.prefix, on_event, &w, &id);
    if (rv != 0) {
        fprintf(stderr, "p2praft kv watch: %s\n", p2praft_strerror(rv));
        p2praft_client_close(c);
        pthread_mutex_destroy(&w.mu);
        return rv == P2PRAFT_ECLOSED ? EXIT_UNREACHABLE : EXIT_FAILED;
    }
    sigwait(&set, &sig);
    /* SIGINT/SIGTERM, or the watch ended (SIGUSR1). */
    p2praft_client_close(c); /* ends the watch: its END runs first */
    pthread_mutex_lock(&w.mu);
    code = sig == SIGUSR1 ? w.code : EXIT_OK;
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    return code;
}

/* ---- entry --------------------------------------------------------------- */

static int run_kv(int argc, char **argv)
{
    struct kvcli o;
    const char *sub;
    int a;

    if (kvcli_help_asked(argc, argv)) {
        kv_usage(stdout);
        return 0;
    }
    memset(&o, 0, sizeof(o));
    o.cmd = "kv";
    a = kvcli_options(&o, argc, argv);
    if (a < 0 || a >= argc) {
        if (a >= argc) {
            fprintf(stderr, "p2praft kv: which command?\n");
        }
        kv_usage(stderr);
        return EXIT_USAGE;
    }
    sub = argv[a++];
    if (strcmp(sub, "get") == 0 || strcmp(sub, "set") == 0 ||
        strcmp(sub, "del") == 0 || strcmp(sub, "cas") == 0) {
        return run_one(&o, sub, argc, argv, a);
    }
    if (strcmp(sub, "ls") == 0) {
        return run_ls(&o, argc, argv, a);
    }
    if (strcmp(sub, "watch") == 0) {
        return run_watch(&o, argc, argv, a);
    }
    fprintf(stderr, "p2praft kv: unknown command '%s'\n", sub);
    kv_usage(stderr);
    return EXIT_USAGE;
}

const struct cli_command cli_cmd_kv = {
    "kv",
    "get, set, del, cas, ls or watch keys of a node (unix socket or libp2p)",
    run_kv};
