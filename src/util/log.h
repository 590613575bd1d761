/* Internal logging macros over the lp2p_log_set() hook. */
#ifndef LP2P_UTIL_LOG_H
#define LP2P_UTIL_LOG_H

#include "lp2p.h"

/* Cheap level check so that disabled logging costs one comparison. */
int lp2p__log_enabled(enum lp2p_log_level level);

/* printf-style; `module` is a short static name such as "yamux". */
void lp2p__log(enum lp2p_log_level level, const char *module, const char *fmt,
               ...) __attribute__((format(printf, 3, 4)));

#define LP2P_LOG(level, module, ...)                                          \
    do {                                                                      \
        if (lp2p__log_enabled(level)) {                                       \
            lp2p__log(level, module, __VA_ARGS__);                            \
        }                                                                     \
    } while (0)

#define LOG_TRACE(m, ...) LP2P_LOG(LP2P_LOG_TRACE, m, __VA_ARGS__)
#define LOG_DEBUG(m, ...) LP2P_LOG(LP2P_LOG_DEBUG, m, __VA_ARGS__)
#define LOG_INFO(m, ...) LP2P_LOG(LP2P_LOG_INFO, m, __VA_ARGS__)
#define LOG_WARN(m, ...) LP2P_LOG(LP2P_LOG_WARN, m, __VA_ARGS__)
#define LOG_ERROR(m, ...) LP2P_LOG(LP2P_LOG_ERROR, m, __VA_ARGS__)

#endif
