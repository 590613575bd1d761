/* p2praft keygen [-o FILE]: write a new Ed25519 identity key, print its
 * peer ID. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "testproto.h"

static int run(int argc, char **argv)
{
    const char *path = "p2praft.key";
    struct lp2p_key key;
    struct lp2p_peer_id id;
    struct stat st;
    char text[LP2P_PEER_ID_STRMAX];
    int i, rv;
    for (i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--out") == 0) &&
            i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 ||
                   strcmp(argv[i], "--help") == 0) {
            printf("usage: p2praft keygen [-o FILE]\n"
                   "Write a new Ed25519 identity key to FILE (default "
                   "p2praft.key, mode 0600;\nan existing file is never "
                   "overwritten) and print its peer ID.\n");
            return 0;
        } else {
            fprintf(stderr, "p2praft keygen: unknown argument '%s'\n"
                            "usage: p2praft keygen [-o FILE]\n", argv[i]);
            return 2;
        }
    }
    if (stat(path, &st) == 0) {
        fprintf(stderr, "p2praft keygen: '%s' already exists; not "
                        "overwriting it\n", path);
        return 1;
    }
    rv = lp2p_key_generate(&key);
    if (rv == 0) {
        rv = lp2p_peer_id_from_key(&key, &id);
    }
    if (rv != 0) {
        cli_error("keygen", "cannot generate a key", rv);
        return 1;
    }
    rv = lp2p_key_save(path, &key);
    lp2p_key_wipe(&key);
    if (rv != 0) {
        char what[512];
        snprintf(what, sizeof(what), "cannot write '%s'", path);
        cli_error("keygen", what, rv);
        return 1;
    }
    lp2p_peer_id_to_string(&id, text, sizeof(text));
    printf("%s\n", text);
    return 0;
}

const struct cli_command cli_cmd_keygen = {
    "keygen", "create an identity key file and print its peer ID", run};
