/*
 * What `p2praft kv` and `p2praft status` share (kvclient.c): the options
 * that say which node to talk to and how, opening the client
 * (p2praft_client_*, the public API), exit statuses, and JSON output
 * (jansson).
 */
#ifndef P2PRAFT_TOOLS_KVCLIENT_H
#define P2PRAFT_TOOLS_KVCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "p2praft.h"

/* Exit statuses (kv): one per kind of answer, so that a script can tell
 * "surely not applied" (retry is safe) from "outcome unknown" (it is not). */
#define EXIT_OK 0
#define EXIT_NOTFOUND 1 /* not found, or compare-and-set mismatch */
#define EXIT_USAGE 2
#define EXIT_UNKNOWN 3     /* outcome unknown */
#define EXIT_UNREACHABLE 4 /* the node cannot be reached: nothing sent */
#define EXIT_FAILED 5      /* failed, surely not applied */
#define EXIT_BUSY 6        /* busy, not applied */
#define EXIT_NOTCAUGHTUP 7

/* The options before the subcommand. */
struct kvcli {
    const char *cmd;           /* "kv" or "status", for messages */
    char api_path[4096];       /* --api, --data-dir */
    const char *node;          /* --node MA */
    const char *key_file;      /* --key F */
    unsigned timeout_ms;       /* --timeout-ms */
    bool json;                 /* --json */
};

/* Parse the common options at argv[1..]: returns the index of the first
 * other argument, or -1 (message printed). */
int kvcli_options(struct kvcli *o, int argc, char **argv);

/* Open the client the options name. 0, or the exit status to return
 * (message printed). */
int kvcli_open(const struct kvcli *o, struct p2praft_client **c);

/* The exit status of a request's result (`write`: SET, DEL, CAS). */
int kvcli_exit(const struct p2praft_result *res);

/* The exit status of a failed request that reads and names no key
 * (metrics, snapshot, state export): no answer is "unreachable" (but a busy
 * node is busy), and neither "unknown" nor "not found" applies: failed. */
int kvcli_read_exit(const struct p2praft_result *res);

/* Print the answer's bytes on stdout as they are (status, metrics, peers
 * text). EXIT_OK, or EXIT_FAILED when stdout failed. */
int kvcli_print_answer(const struct p2praft_result *res);

/* Does -h or --help stand anywhere in argv[1..argc)? */
bool kvcli_help_asked(int argc, char **argv);

/* Print what went wrong with a result on stderr ("p2praft CMD SUB: ..."),
 * and with --json a JSON object on stdout. */
void kvcli_report(const struct kvcli *o, const char *sub, const char *key,
                  const struct p2praft_result *res);

/*
 * JSON for bytes that may not be text: `name` holds a JSON string when the
 * bytes are valid UTF-8 without NUL; otherwise `name`_base64 holds their
 * standard base64 (RFC 4648, with padding). Never both. 0 or -1 (out of
 * memory).
 */
int kvcli_json_bytes(json_t *obj, const char *name, const void *p, size_t len);

/* Print `obj` (taken) as one line on stdout. 0, or -1 when stdout failed. */
int kvcli_json_print(json_t *obj);

#endif
