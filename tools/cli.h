/* The CLI's command table. Add a command: write tools/cmd_<name>.c that
 * defines `const struct cli_command cli_cmd_<name>`, and list it here. */
#ifndef P2PRAFT_TOOLS_CLI_H
#define P2PRAFT_TOOLS_CLI_H

struct cli_command {
    const char *name;
    const char *summary;
    /* argv[0] is the command name. Returns the process exit status. */
    int (*run)(int argc, char **argv);
};

/* X-macro of the commands, in the order `p2praft --help` lists them. */
#define CLI_COMMANDS(X)                                                       \
    X(keygen) X(id) X(host) X(ping) X(interop) X(demo) X(node) X(kv) X(status) \
    X(check) X(snapshot) X(restore) X(state) X(metrics)

#define CLI_DECLARE(name) extern const struct cli_command cli_cmd_##name;
CLI_COMMANDS(CLI_DECLARE)
#undef CLI_DECLARE

#endif
