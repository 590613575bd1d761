/* util/log.c: levels, the sink hook, level names. */
#include <stdio.h>
#include <string.h>

#include "lp2p.h"
#include "test.h"
#include "util/log.h"

struct log_capture {
    int calls;
    enum lp2p_log_level level;
    char module[32];
    char msg[128];
};

static void capture_cb(void *ctx, enum lp2p_log_level level,
                       const char *module, const char *msg)
{
    struct log_capture *c = ctx;
    c->calls++;
    c->level = level;
    snprintf(c->module, sizeof(c->module), "%s", module);
    snprintf(c->msg, sizeof(c->msg), "%s", msg);
}

TEST(log, levels_and_sink)
{
    struct log_capture c;
    enum lp2p_log_level l;
    memset(&c, 0, sizeof(c));
    lp2p_log_set(LP2P_LOG_WARN, capture_cb, &c);
    LOG_INFO("test", "hidden %d", 1);
    ASSERT_EQ(c.calls, 0);
    LOG_ERROR("test", "shown %d", 42);
    ASSERT_EQ(c.calls, 1);
    ASSERT_EQ(c.level, LP2P_LOG_ERROR);
    ASSERT_STR_EQ(c.module, "test");
    ASSERT_STR_EQ(c.msg, "shown 42");
    lp2p_log_set(LP2P_LOG_OFF, NULL, NULL);
    LOG_ERROR("test", "off");
    ASSERT_EQ(c.calls, 1);
    ASSERT_OK(lp2p_log_level_parse("debug", &l));
    ASSERT_EQ(l, LP2P_LOG_DEBUG);
    ASSERT_ERR(lp2p_log_level_parse("loud", &l), LP2P_EINVAL);
}
