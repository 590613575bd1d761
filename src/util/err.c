/* The one error table, shared by lp2p_strerror() and p2praft_strerror(). */
#include <stdarg.h>
#include <stdio.h>

#include "lp2p.h"
#include "p2praft.h"
#include "err.h"

const char *lp2p_strerror(int rv)
{
    switch (rv) {
    case 0:
        return "success";
#define X(name, code, msg)                                                    \
    case code:                                                                \
        return msg;
        LP2P_ERRNO_MAP(X)
#undef X
    default:
        return "unknown error";
    }
}

const char *lp2p_errname(int rv)
{
    switch (rv) {
    case 0:
        return "LP2P_OK";
#define X(name, code, msg)                                                    \
    case code:                                                                \
        return "LP2P_E" #name;
        LP2P_ERRNO_MAP(X)
#undef X
    default:
        return "UNKNOWN";
    }
}

const char *p2praft_strerror(int rv)
{
    return lp2p_strerror(rv);
}

void lp2p__errmsg_set(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || cap == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

bool p2praft_outcome_unknown(int rv)
{
    return rv == LP2P_EUNKNOWN || rv == LP2P_ETIMEDOUT ||
           rv == LP2P_ESHUTDOWN;
}
