/*
 * Leveled logging hook. Off by default; P2PRAFT_LOG=<level> in the
 * environment turns it on without code changes. Messages longer than the
 * line buffer are truncated, never split.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p.h"
#include "p2praft.h"
#include "log.h"

static int configured;
static enum lp2p_log_level min_level = LP2P_LOG_OFF;
static lp2p_log_cb sink;
static void *sink_ctx;

static const char *const level_names[] = {"trace", "debug", "info",
                                          "warn", "error", "off"};

int lp2p_log_level_parse(const char *s, enum lp2p_log_level *out)
{
    size_t i;
    if (s == NULL) {
        return LP2P_EINVAL;
    }
    for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum lp2p_log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = LP2P_LOG_WARN;
        return 0;
    }
    return LP2P_EINVAL;
}

static void configure_from_env(void)
{
    enum lp2p_log_level l;
    configured = 1;
    if (lp2p_log_level_parse(getenv("P2PRAFT_LOG"), &l) == 0) {
        min_level = l;
    }
}

void lp2p_log_set(enum lp2p_log_level level, lp2p_log_cb cb, void *ctx)
{
    configured = 1;
    min_level = level;
    sink = cb;
    sink_ctx = ctx;
}

void p2praft_log_set(enum lp2p_log_level level, lp2p_log_cb cb, void *ctx)
{
    lp2p_log_set(level, cb, ctx);
}

enum lp2p_log_level lp2p_log_level(void)
{
    if (!configured) {
        configure_from_env();
    }
    return min_level;
}

int lp2p__log_enabled(enum lp2p_log_level level)
{
    return level != LP2P_LOG_OFF && level >= lp2p_log_level();
}

void lp2p__log(enum lp2p_log_level level, const char *module, const char *fmt,
               ...)
{
    char line[1024];
    va_list ap;
    if (!lp2p__log_enabled(level)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (sink != NULL) {
        sink(sink_ctx, level, module, line);
    } else {
        fprintf(stderr, "%-5s %s: %s\n", level_names[level], module, line);
    }
}
