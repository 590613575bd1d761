/* What `p2praft kv` and `p2praft status` share (see kvclient.h). */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "kvclient.h"
#include "testproto.h"

int kvcli_options(struct kvcli *o, int argc, char **argv)
{
    int a;
    o->api_path[0] = '\0';
    o->node = NULL;
    o->key_file = NULL;
    o->timeout_ms = 10000;
    o->json = false;
    for (a = 1; a < argc; a++) {
        const char *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (strcmp(argv[a], "--json") == 0) {
            o->json = true;
            continue;
        }
        if (v == NULL || strncmp(argv[a], "--", 2) != 0) {
            break;
        }
        if (strcmp(argv[a], "--api") == 0) {
            snprintf(o->api_path, sizeof(o->api_path), "%s", v);
        } else if (strcmp(argv[a], "--data-dir") == 0) {
            snprintf(o->api_path, sizeof(o->api_path), "%s/api.sock", v);
        } else if (strcmp(argv[a], "--node") == 0) {
            o->node = v;
        } else if (strcmp(argv[a], "--key") == 0 || strcmp(argv[a], "-k") == 0) {
            o->key_file = v;
        } else if (strcmp(argv[a], "--timeout-ms") == 0) {
            char *end;
            unsigned long t = strtoul(v, &end, 10);
            if (*end != '\0' || t == 0 || t > 3600000) {
                fprintf(stderr, "p2praft %s: bad --timeout-ms\n", o->cmd);
                return -1;
            }
            o->timeout_ms = (unsigned)t;
        } else {
            break;
        }
        a++;
    }
    if ((o->api_path[0] != '\0') == (o->node != NULL)) {
        fprintf(stderr,
                "p2praft %s: say which node: --api PATH or --data-dir DIR "
                "(its unix socket), or --node MA --key FILE (libp2p)\n",
                o->cmd);
        return -1;
    }
    if (o->node != NULL && o->key_file == NULL) {
        fprintf(stderr,
                "p2praft %s: --node needs --key FILE: the client's identity, "
                "whose peer ID the node lists (--client)\n",
                o->cmd);
        return -1;
    }
    return a;
}

int kvcli_open(const struct kvcli *o, struct p2praft_client **c)
{
    struct p2praft_client_config cfg;
    struct lp2p_key key;
    char err[400];
    int rv;
    p2praft_client_config_init(&cfg);
    cfg.timeout_ms = o->timeout_ms;
    if (o->node != NULL) {
        if (cli_load_key(o->key_file, &key) != 0) {
            return EXIT_USAGE;
        }
        cfg.node = o->node;
        cfg.key = &key;
    } else {
        cfg.api_path = o->api_path;
    }
    rv = p2praft_client_open(c, &cfg, err, sizeof(err));
    if (o->node != NULL) {
        lp2p_key_wipe(&key);
    }
    if (rv == 0) {
        return 0;
    }
    fprintf(stderr, "p2praft %s: %s (nothing was sent)\n", o->cmd,
            err[0] != '\0' ? err : p2praft_strerror(rv));
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "ok", json_false());
        json_object_set_new(j, "status", json_string(rv == P2PRAFT_ELIMIT
                                                         ? "busy"
                                                         : "unreachable"));
        json_object_set_new(j, "error", json_string(err));
        json_object_set_new(j, "outcome_unknown", json_false());
        kvcli_json_print(j);
    }
    return rv == P2PRAFT_ELIMIT ? EXIT_BUSY : EXIT_UNREACHABLE;
}

int kvcli_exit(const struct p2praft_result *res)
{
    switch (res->rv) {
    case 0:
        return EXIT_OK;
    case P2PRAFT_ENOTFOUND:
    case P2PRAFT_EMISMATCH:
        return EXIT_NOTFOUND;
    case P2PRAFT_ECLOSED:
    case P2PRAFT_ECANCELED:
        return EXIT_UNREACHABLE;
    case P2PRAFT_ELIMIT:
        return EXIT_BUSY;
    case P2PRAFT_ENOTCAUGHTUP:
        return EXIT_NOTCAUGHTUP;
    default:
        /* Decide on the code: anything that may have been applied is 3. */
        return res->outcome_unknown ? EXIT_UNKNOWN : EXIT_FAILED;
    }
}

int kvcli_read_exit(const struct p2praft_result *res)
{
    int code = res->status < 0 && res->rv != P2PRAFT_ELIMIT ? EXIT_UNREACHABLE
                                                            : kvcli_exit(res);
    return code == EXIT_UNKNOWN || code == EXIT_NOTFOUND ? EXIT_FAILED : code;
}

int kvcli_print_answer(const struct p2praft_result *res)
{
    return fwrite(res->data, 1, res->len, stdout) == res->len &&
                   fflush(stdout) == 0
               ? EXIT_OK
               : EXIT_FAILED;
}

bool kvcli_help_asked(int argc, char **argv)
{
    int a;
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "-h") == 0 || strcmp(argv[a], "--help") == 0) {
            return true;
        }
    }
    return false;
}

static const char *status_name(const struct p2praft_result *res)
{
    static const char *const names[] = {
        "ok",         "not found", "mismatch", "failed",       "bad request",
        "not leader", "unknown",   "busy",     "not caught up"};
    if (res->status >= 0 &&
        (size_t)res->status < sizeof(names) / sizeof(names[0])) {
        return names[res->status];
    }
    if (res->status >= 0) {
        return "unknown status";
    }
    switch (res->rv) {
    case P2PRAFT_ECLOSED:
    case P2PRAFT_ECANCELED:
        return "not sent";
    case P2PRAFT_ELIMIT:
        return "busy";
    default:
        return res->outcome_unknown ? "unknown" : "failed";
    }
}

void kvcli_report(const struct kvcli *o, const char *sub, const char *key,
                  const struct p2praft_result *res)
{
    const char *msg = (const char *)res->data;
    int code = kvcli_exit(res);
    if (res->rv == P2PRAFT_ENOTFOUND) {
        fprintf(stderr, "p2praft %s%s%s: %s: not found\n", o->cmd,
                sub[0] != '\0' ? " " : "", sub, key != NULL ? key : "");
    } else if (res->rv == P2PRAFT_EMISMATCH) {
        fprintf(stderr,
                "p2praft %s%s%s: %s: the value differs (or the key is "
                "absent): not changed\n",
                o->cmd, sub[0] != '\0' ? " " : "", sub,
                key != NULL ? key : "");
    } else {
        fprintf(stderr, "p2praft %s%s%s: %s%s%s\n", o->cmd,
                sub[0] != '\0' ? " " : "", sub,
                res->status == P2PRAFT_API_BADREQ ? "bad request: " : "",
                msg != NULL && msg[0] != '\0' ? msg : p2praft_strerror(res->rv),
                code == EXIT_FAILED || code == EXIT_BUSY ||
                        code == EXIT_UNREACHABLE
                    ? " (not applied)"
                    : "");
    }
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "ok", json_false());
        json_object_set_new(j, "status", json_string(status_name(res)));
        if (msg != NULL && msg[0] != '\0') {
            json_object_set_new(j, "error", json_stringn(msg, res->len));
        }
        json_object_set_new(j, "outcome_unknown",
                            json_boolean(code == EXIT_UNKNOWN));
        if (key != NULL) {
            kvcli_json_bytes(j, "key", key, strlen(key));
        }
        kvcli_json_print(j);
    }
}

int kvcli_json_bytes(json_t *obj, const char *name, const void *p, size_t len)
{
    json_t *s = NULL;
    char field[64];
    if (memchr(p, '\0', len) == NULL) {
        s = json_stringn(p, len); /* NULL when not valid UTF-8 */
    }
    if (s != NULL) {
        return json_object_set_new(obj, name, s);
    }
    {
        size_t blen = 4 * ((len + 2) / 3) + 1;
        unsigned char *b = malloc(blen);
        int rv;
        if (b == NULL) {
            return -1;
        }
        EVP_EncodeBlock(b, p, (int)len);
        snprintf(field, sizeof(field), "%s_base64", name);
        rv = json_object_set_new(obj, field, json_string((char *)b));
        free(b);
        return rv;
    }
}

int kvcli_json_print(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT);
    int rv = -1;
    json_decref(obj);
    if (s != NULL) {
        rv = fputs(s, stdout) >= 0 && fputc('\n', stdout) != EOF &&
                     fflush(stdout) == 0
                 ? 0
                 : -1;
        free(s);
    }
    return rv;
}
