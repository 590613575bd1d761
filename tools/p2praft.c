/*
 * p2praft: the command-line tool. Each subcommand lives in its own file
 * (tools/cmd_*.c) and registers in the table below.
 */
#include <stdio.h>
#include <string.h>

#include "p2praft.h"
#include "cli.h"

static const struct cli_command *const commands[] = {
#define CLI_CMD(name) &cli_cmd_##name,
    CLI_COMMANDS(CLI_CMD)
#undef CLI_CMD
    NULL};

static void usage(FILE *out)
{
    size_t i;
    fprintf(out, "usage: p2praft <command> [options]\n\ncommands:\n");
    for (i = 0; commands[i] != NULL; i++) {
        fprintf(out, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    }
    fprintf(out, "  %-10s %s\n", "version", "print the version");
    fprintf(out, "\nRun 'p2praft <command> --help' for a command's options.\n"
                 "P2PRAFT_LOG=trace|debug|info|warn|error turns on logging.\n");
}

int main(int argc, char **argv)
{
    size_t i;
    if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("p2praft %s\n", P2PRAFT_VERSION);
        return 0;
    }
    for (i = 0; commands[i] != NULL; i++) {
        if (strcmp(argv[1], commands[i]->name) == 0) {
            return commands[i]->run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "p2praft: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
