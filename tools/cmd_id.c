/* p2praft id [-k FILE]: print the peer ID of a key file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "testproto.h"

static int run(int argc, char **argv)
{
    const char *path = "p2praft.key";
    struct lp2p_key key;
    struct lp2p_peer_id id;
    char text[LP2P_PEER_ID_STRMAX];
    int i;
    for (i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-k") == 0 || strcmp(argv[i], "--key") == 0) &&
            i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 ||
                   strcmp(argv[i], "--help") == 0) {
            printf("usage: p2praft id [-k FILE]\n"
                   "Print the peer ID of the key in FILE (default "
                   "p2praft.key).\n");
            return 0;
        } else {
            fprintf(stderr, "p2praft id: unknown argument '%s'\n"
                            "usage: p2praft id [-k FILE]\n", argv[i]);
            return 2;
        }
    }
    if (cli_load_key(path, &key) != 0) {
        return 1;
    }
    lp2p_peer_id_from_key(&key, &id);
    lp2p_key_wipe(&key);
    lp2p_peer_id_to_string(&id, text, sizeof(text));
    printf("%s\n", text);
    return 0;
}

const struct cli_command cli_cmd_id = {"id", "print the peer ID of a key file",
                                       run};
