/*
 * p2praft state export | import: the whole store as JSON, as
 * ipfs-cluster's `state export/import` offers.
 *
 * export: every key and value, read page by page (LS, consistent: each
 * page through a read barrier on the leader), on stdout as
 *   {"format":"p2praft-state/1","index":N,"entries":[
 *   {"key":"k","value":"v"},
 *   {"key":"b","value_base64":"AAE="}
 *   ]}
 * one entry per line; a key or value that is not UTF-8 (or holds a NUL)
 * comes as KEY_base64 (standard base64), as `kv --json` writes it. The
 * pages are read one after the other: under concurrent writes the export
 * is not one point in time (`snapshot save` is).
 * import FILE|-: checks the whole document first (nothing is written when
 * any entry is bad), then sets every key through the node (writes go to
 * the leader), at most IMPORT_INFLIGHT at a time. Keys not in the file are
 * left alone.
 * Exit status as `kv`: 0; 2 usage; 3 some write's outcome is unknown; 4
 * unreachable; 5 failed (not applied); 6 busy.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cli.h"
#include "fileio.h"
#include "kvclient.h"

#define IMPORT_INFLIGHT 32

/* The document's format, written by export and required by import. */
#define STATE_FORMAT "p2praft-state/1"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: p2praft state export (--api PATH | --data-dir DIR | "
            "--node MA --key F)\n"
            "                            [--timeout-ms N]\n"
            "       p2praft state import (--api PATH | --data-dir DIR | "
            "--node MA --key F)\n"
            "                            [--timeout-ms N] FILE|-\n"
            "export: every key and value as one JSON document on stdout "
            "(non-UTF-8 bytes\nas KEY_base64). import: set every entry of "
            "such a document (checked whole\nfirst) through the leader; "
            "other keys are left alone. Exit status as 'kv'.\n");
}

/* ---- export -------------------------------------------------------------- */

static int entry_line(const struct p2praft_kv *e, bool first)
{
    json_t *j = json_object();
    char *s;
    int rv;
    if (j == NULL || kvcli_json_bytes(j, "key", e->key, strlen(e->key)) != 0 ||
        kvcli_json_bytes(j, "value", e->value, e->len) != 0) {
        json_decref(j);
        return -1;
    }
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s == NULL) {
        return -1;
    }
    rv = printf("%s%s", first ? "\n" : ",\n", s) < 0 ? -1 : 0;
    free(s);
    return rv;
}

static int do_export(struct kvcli *o, struct p2praft_client *c)
{
    struct p2praft_request rq;
    struct p2praft_result *res = NULL;
    char *after = NULL;
    bool first = true, any = false;
    uint64_t n = 0;
    int code = EXIT_OK;
    for (;;) {
        size_t i;
        memset(&rq, 0, sizeof(rq));
        rq.op = P2PRAFT_API_LS;
        rq.consistent = true;
        rq.after = after;
        p2praft_client_call(c, &rq, &res);
        if (res == NULL || res->rv != 0) {
            if (res == NULL) {
                fprintf(stderr, "p2praft state export: out of memory\n");
                code = EXIT_FAILED;
            } else {
                kvcli_report(o, "export", NULL, res);
                code = kvcli_read_exit(res);
            }
            break;
        }
        if (first) {
            printf("{\"format\":\"" STATE_FORMAT "\",\"index\":%llu,"
                   "\"entries\":[",
                   (unsigned long long)res->index);
        }
        for (i = 0; i < res->n_entries; i++) {
            if (entry_line(&res->entries[i], !any) != 0) {
                code = EXIT_FAILED;
                break;
            }
            any = true;
            n++;
        }
        first = false; /* the head is out */
        free(after);
        after = NULL;
        if (code != EXIT_OK || !res->more || res->n_entries == 0) {
            break;
        }
        after = strdup(res->entries[res->n_entries - 1].key);
        p2praft_result_free(res);
        res = NULL;
        if (after == NULL) {
            code = EXIT_FAILED;
            break;
        }
    }
    p2praft_result_free(res);
    free(after);
    if (code == EXIT_OK) {
        if (printf("\n]}\n") < 0 || fflush(stdout) != 0) {
            code = EXIT_FAILED;
        } else {
            fprintf(stderr, "exported %llu keys\n", (unsigned long long)n);
        }
    }
    return code;
}

/* ---- import -------------------------------------------------------------- */

struct item {
    char *key;
    uint8_t *val;
    size_t len;
};

/* Standard base64 with padding, strictly: 0 or -1. */
static int b64_decode(const char *s, uint8_t **out, size_t *len)
{
    size_t n = strlen(s), pad = 0;
    int k;
    if (n % 4 != 0) {
        return -1;
    }
    *out = malloc(n / 4 * 3 + 1);
    if (*out == NULL) {
        return -1;
    }
    if (n == 0) {
        *len = 0;
        return 0;
    }
    k = EVP_DecodeBlock(*out, (const unsigned char *)s, (int)n);
    if (k < 0) {
        free(*out);
        *out = NULL;
        return -1;
    }
    pad = (s[n - 1] == '=') + (s[n - 2] == '=');
    *len = (size_t)k - pad;
    return 0;
}

/* Text or NAME_base64 from entry `e` into bytes (malloc'ed, NUL after). */
static int field(json_t *e, const char *name, uint8_t **out, size_t *len,
                 char *err, size_t errlen)
{
    char b64name[32];
    json_t *t = json_object_get(e, name), *b;
    snprintf(b64name, sizeof(b64name), "%s_base64", name);
    b = json_object_get(e, b64name);
    if ((t != NULL) == (b != NULL)) {
        snprintf(err, errlen, "needs exactly one of \"%s\" and \"%s\"", name,
                 b64name);
        return -1;
    }
    if (t != NULL) {
        if (!json_is_string(t)) {
            snprintf(err, errlen, "\"%s\" is not a string", name);
            return -1;
        }
        *len = json_string_length(t);
        *out = malloc(*len + 1);
        if (*out == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        memcpy(*out, json_string_value(t), *len);
        (*out)[*len] = '\0';
        return 0;
    }
    if (!json_is_string(b) || b64_decode(json_string_value(b), out, len) != 0) {
        snprintf(err, errlen, "\"%s\" is not standard base64", b64name);
        return -1;
    }
    (*out)[*len] = '\0';
    return 0;
}

/* Items by key, then by their place in the document. */
static int by_key_then_place(const void *a, const void *b)
{
    const struct item *x = *(const struct item *const *)a;
    const struct item *y = *(const struct item *const *)b;
    int c = strcmp(x->key, y->key);
    return c != 0 ? c : (x < y ? -1 : x > y);
}

static int parse_doc(const uint8_t *data, size_t len, struct item **items,
                     size_t *n, char *err, size_t errlen)
{
    json_error_t je;
    json_t *doc = json_loadb((const char *)data, len, 0, &je), *arr, *e;
    json_t *fmt, *v;
    const char *name;
    struct item **by_key;
    size_t i;
    if (doc == NULL) {
        snprintf(err, errlen, "not JSON: %s (line %d)", je.text, je.line);
        return -1;
    }
    fmt = json_object_get(doc, "format");
    if (fmt == NULL) {
        snprintf(err, errlen, "no \"format\":\"%s\" (is it the output of "
                              "'p2praft state export'?)", STATE_FORMAT);
        json_decref(doc);
        return -1;
    }
    if (!json_is_string(fmt) ||
        strcmp(json_string_value(fmt), STATE_FORMAT) != 0) {
        char *f = json_dumps(fmt, JSON_ENCODE_ANY);
        snprintf(err, errlen, "format %.60s is not \"%s\"",
                 f != NULL ? f : "?", STATE_FORMAT);
        free(f);
        json_decref(doc);
        return -1;
    }
    arr = json_object_get(doc, "entries");
    if (!json_is_array(arr)) {
        snprintf(err, errlen, "no \"entries\" array (is it the output of "
                              "'p2praft state export'?)");
        json_decref(doc);
        return -1;
    }
    *n = json_array_size(arr);
    *items = calloc(*n > 0 ? *n : 1, sizeof(**items));
    if (*items == NULL) {
        snprintf(err, errlen, "out of memory");
        json_decref(doc);
        return -1;
    }
    json_array_foreach(arr, i, e) {
        struct item *it = &(*items)[i];
        size_t klen = 0;
        char why[160];
        if (json_is_object(e)) {
            json_object_foreach(e, name, v) {
                if (strcmp(name, "key") != 0 &&
                    strcmp(name, "key_base64") != 0 &&
                    strcmp(name, "value") != 0 &&
                    strcmp(name, "value_base64") != 0) {
                    snprintf(err, errlen, "entry %zu: unknown field "
                                          "\"%.60s\"", i + 1, name);
                    json_decref(doc);
                    return -1;
                }
            }
        }
        if (!json_is_object(e) ||
            field(e, "key", (uint8_t **)&it->key, &klen, why,
                  sizeof(why)) != 0 ||
            field(e, "value", &it->val, &it->len, why, sizeof(why)) != 0) {
            if (!json_is_object(e)) {
                snprintf(why, sizeof(why), "not an object");
            }
            snprintf(err, errlen, "entry %zu: %s", i + 1, why);
            json_decref(doc);
            return -1;
        }
        if (klen == 0 || klen > P2PRAFT_KV_KEY_MAX ||
            memchr(it->key, '\0', klen) != NULL) {
            snprintf(err, errlen, "entry %zu: a key is 1 to %d bytes "
                                  "without NUL", i + 1, P2PRAFT_KV_KEY_MAX);
            json_decref(doc);
            return -1;
        }
        if (it->len > P2PRAFT_KV_VALUE_MAX) {
            snprintf(err, errlen, "entry %zu: value over %d bytes", i + 1,
                     P2PRAFT_KV_VALUE_MAX);
            json_decref(doc);
            return -1;
        }
    }
    json_decref(doc);
    /* A key twice: which value was meant? (export never writes that) */
    by_key = malloc((*n > 0 ? *n : 1) * sizeof(*by_key));
    if (by_key == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < *n; i++) {
        by_key[i] = &(*items)[i];
    }
    qsort(by_key, *n, sizeof(*by_key), by_key_then_place);
    for (i = 1; i < *n; i++) {
        if (strcmp(by_key[i - 1]->key, by_key[i]->key) == 0) {
            snprintf(err, errlen, "entry %zu: key '%.80s' is also entry "
                                  "%zu's",
                     (size_t)(by_key[i] - *items) + 1, by_key[i]->key,
                     (size_t)(by_key[i - 1] - *items) + 1);
            free(by_key);
            return -1;
        }
    }
    free(by_key);
    return 0;
}

struct importer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned inflight;
    uint64_t ok, failed, last_index;
    int worst;                 /* exit status of the worst result */
    char first_msg[400];  /* the worst result's message */
};

static int rank(int code)
{
    /* which failure to report: unknown outcome first */
    switch (code) {
    case EXIT_UNKNOWN:
        return 5;
    case EXIT_FAILED:
        return 4;
    case EXIT_UNREACHABLE:
        return 3;
    case EXIT_BUSY:
        return 2;
    default:
        return code == EXIT_OK ? 0 : 1;
    }
}

static void on_set(void *ctx, const struct p2praft_result *res)
{
    struct importer *im = ctx;
    pthread_mutex_lock(&im->mu);
    if (res->rv == 0) {
        im->ok++;
        if (res->index > im->last_index) {
            im->last_index = res->index;
        }
    } else {
        int code = kvcli_exit(res);
        im->failed++;
        if (rank(code) > rank(im->worst)) {
            im->worst = code;
            snprintf(im->first_msg, sizeof(im->first_msg), "%s",
                     res->data != NULL ? (const char *)res->data : "");
        }
    }
    im->inflight--;
    pthread_cond_signal(&im->cv);
    pthread_mutex_unlock(&im->mu);
}

static int do_import(struct kvcli *o, struct p2praft_client *c,
                     const char *file)
{
    struct importer im;
    struct item *items = NULL;
    uint8_t *data = NULL;
    size_t len = 0, n = 0, i;
    char err[600];
    int code = EXIT_OK;

    if (cli_read_file(file, &data, &len, err, sizeof(err)) != 0) {
        fprintf(stderr, "p2praft state import: %s\n", err);
        return EXIT_FAILED;
    }
    if (parse_doc(data, len, &items, &n, err, sizeof(err)) != 0) {
        fprintf(stderr, "p2praft state import: %s: %s (nothing written)\n",
                file, err);
        code = EXIT_FAILED;
        goto out;
    }
    memset(&im, 0, sizeof(im));
    pthread_mutex_init(&im.mu, NULL);
    pthread_cond_init(&im.cv, NULL);
    for (i = 0; i < n; i++) {
        struct p2praft_request rq;
        int rv;
        pthread_mutex_lock(&im.mu);
        while (im.inflight >= IMPORT_INFLIGHT) {
            pthread_cond_wait(&im.cv, &im.mu);
        }
        im.inflight++;
        pthread_mutex_unlock(&im.mu);
        memset(&rq, 0, sizeof(rq));
        rq.op = P2PRAFT_API_SET;
        rq.key = items[i].key;
        rq.value = items[i].val;
        rq.len = items[i].len;
        rv = p2praft_client_send(c, &rq, on_set, &im, NULL);
        if (rv != 0) {
            pthread_mutex_lock(&im.mu);
            im.inflight--;
            im.failed += n - i;
            if (rank(EXIT_UNREACHABLE) > rank(im.worst)) {
                im.worst = EXIT_UNREACHABLE;
                snprintf(im.first_msg, sizeof(im.first_msg),
                         "cannot send: %s", p2praft_strerror(rv));
            }
            pthread_mutex_unlock(&im.mu);
            break;
        }
    }
    pthread_mutex_lock(&im.mu);
    while (im.inflight > 0) {
        pthread_cond_wait(&im.cv, &im.mu);
    }
    pthread_mutex_unlock(&im.mu);
    code = im.worst;
    if (im.failed > 0) {
        fprintf(stderr,
                "p2praft state import: %llu of %zu keys not imported: %s%s\n",
                (unsigned long long)im.failed, n,
                im.first_msg[0] != '\0' ? im.first_msg : "failed",
                code == EXIT_UNKNOWN ? " (some outcomes are unknown: read "
                                       "before retrying)"
                                     : "");
    }
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "ok", json_boolean(im.failed == 0));
        json_object_set_new(j, "imported", json_integer((json_int_t)im.ok));
        json_object_set_new(j, "failed", json_integer((json_int_t)im.failed));
        json_object_set_new(j, "index",
                            json_integer((json_int_t)im.last_index));
        kvcli_json_print(j);
    } else {
        printf("imported %llu keys (index %llu)\n", (unsigned long long)im.ok,
               (unsigned long long)im.last_index);
        fflush(stdout);
    }
    pthread_cond_destroy(&im.cv);
    pthread_mutex_destroy(&im.mu);
out:
    for (i = 0; items != NULL && i < n; i++) {
        free(items[i].key);
        free(items[i].val);
    }
    free(items);
    free(data);
    return code;
}

static int run(int argc, char **argv)
{
    struct kvcli o;
    struct p2praft_client *c = NULL;
    const char *sub;
    int a, code;

    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 ||
                      strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc < 2 ||
        (strcmp(argv[1], "export") != 0 && strcmp(argv[1], "import") != 0)) {
        usage(stderr);
        return EXIT_USAGE;
    }
    sub = argv[1];
    memset(&o, 0, sizeof(o));
    o.cmd = "state";
    a = kvcli_options(&o, argc - 1, argv + 1);
    if (a < 0 || (sub[0] == 'e' ? a != argc - 1 : a + 1 != argc - 1)) {
        if (a >= 0) {
            fprintf(stderr, "p2praft state %s: %s\n", sub,
                    sub[0] == 'e' ? "no arguments after the options"
                                  : "give one FILE (or -) after the options");
        }
        usage(stderr);
        return EXIT_USAGE;
    }
    code = kvcli_open(&o, &c);
    if (code != 0) {
        return code;
    }
    code = sub[0] == 'e' ? do_export(&o, c) : do_import(&o, c, argv[argc - 1]);
    p2praft_client_close(c);
    return code;
}

const struct cli_command cli_cmd_state = {
    "state", "state export | import: the whole store as JSON", run};
