/*
 * The metrics module (raft/metrics.h): counting (commits into latency
 * buckets, elections on each turn to candidate) and the Prometheus text
 * rendering, checked line by line: every sample line belongs to a family
 * announced by # HELP and # TYPE, histogram buckets are cumulative and
 * end with +Inf = _count, and _sum is in seconds.
 */
#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p.h"
#include "raft/metrics.h"
#include "oom.h"
#include "test.h"
#include "util/buf.h"

static char *render(const struct p2praft__metrics *m,
                    const struct p2praft__metrics_sample *s)
{
    struct lp2p_buf b;
    char *t;
    lp2p__buf_init(&b);
    ASSERT_OK(p2praft__metrics_render(m, s, &b));
    t = malloc(b.len + 1);
    ASSERT(t != NULL);
    memcpy(t, b.data, b.len);
    t[b.len] = '\0';
    lp2p__buf_free(&b);
    return t;
}

/* The value on the line that starts with `name ` (or `name{...} `). */
static const char *value_of(const char *text, const char *sample)
{
    size_t n = strlen(sample);
    const char *p = text;
    while ((p = strstr(p, sample)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ') {
            return p + n + 1;
        }
        p += n;
    }
    return NULL;
}

static unsigned long long u(const char *text, const char *sample)
{
    const char *v = value_of(text, sample);
    if (v == NULL) {
        test__fail(__FILE__, __LINE__, "no sample %s", sample);
    }
    return strtoull(v, NULL, 10);
}

TEST(metrics, commits_fill_cumulative_buckets)
{
    struct p2praft__metrics m;
    struct p2praft__metrics_sample s;
    char *t;
    memset(&m, 0, sizeof(m));
    memset(&s, 0, sizeof(s));
    p2praft__metrics_commit(&m, true, 300);     /* <= 0.0005 */
    p2praft__metrics_commit(&m, true, 1000);    /* == 0.001: le is <= */
    p2praft__metrics_commit(&m, true, 7000);    /* <= 0.01 */
    p2praft__metrics_commit(&m, true, 9000000); /* over the last: +Inf */
    p2praft__metrics_commit(&m, false, 5);      /* a failure: no latency */
    t = render(&m, &s);
    ASSERT_EQ_U64(u(t, "p2praft_commits_total"), 4);
    ASSERT_EQ_U64(u(t, "p2praft_commit_failures_total"), 1);
    ASSERT_EQ_U64(u(t, "p2praft_commit_latency_seconds_bucket{le=\"0.0005\"}"),
                  1);
    ASSERT_EQ_U64(u(t, "p2praft_commit_latency_seconds_bucket{le=\"0.001\"}"),
                  2);
    ASSERT_EQ_U64(u(t, "p2praft_commit_latency_seconds_bucket{le=\"0.005\"}"),
                  2);
    ASSERT_EQ_U64(u(t, "p2praft_commit_latency_seconds_bucket{le=\"0.01\"}"),
                  3);
    ASSERT_EQ_U64(u(t, "p2praft_commit_latency_seconds_bucket{le=\"5\"}"), 3);
    ASSERT_EQ_U64(u(t, "p2praft_commit_latency_seconds_bucket{le=\"+Inf\"}"),
                  4);
    ASSERT_EQ_U64(u(t, "p2praft_commit_latency_seconds_count"), 4);
    /* 300 + 1000 + 7000 + 9000000 us */
    ASSERT(strncmp(value_of(t, "p2praft_commit_latency_seconds_sum"),
                   "9.0083\n", 7) == 0);
    free(t);
}

TEST(metrics, elections_count_terms_stood_in)
{
    struct p2praft__metrics m;
    memset(&m, 0, sizeof(m));
    p2praft__metrics_state(&m, RAFT_FOLLOWER, 1);
    p2praft__metrics_state(&m, RAFT_CANDIDATE, 2);
    p2praft__metrics_state(&m, RAFT_CANDIDATE, 2); /* the same election */
    p2praft__metrics_state(&m, RAFT_CANDIDATE, 3); /* split vote: again */
    p2praft__metrics_state(&m, RAFT_LEADER, 3);    /* won it */
    p2praft__metrics_state(&m, RAFT_FOLLOWER, 5);  /* someone else's */
    ASSERT_EQ_U64(m.elections, 2);
    /* a one-voter cluster: leader within the turn, never seen candidate */
    p2praft__metrics_state(&m, RAFT_LEADER, 6);
    p2praft__metrics_state(&m, RAFT_LEADER, 6);
    ASSERT_EQ_U64(m.elections, 3);
}

/* Every line: a comment (# HELP name text / # TYPE name kind, HELP
 * before TYPE, once per family) or a sample of the family announced last,
 * with a value; names and labels in the format's grammar. */
TEST(metrics, exposition_is_well_formed)
{
    struct p2praft__metrics m;
    struct p2praft__metrics_sample s;
    char *t, *line, *save = NULL, family[128] = "", type[32] = "";
    unsigned families = 0, samples = 0;
    memset(&m, 0, sizeof(m));
    memset(&s, 0, sizeof(s));
    s.term = 7;
    s.applied_index = 42;
    s.is_leader = true;
    s.bytes_in = 1234567890123ull;
    s.refused_raft = 3;
    s.snapshot_bytes_last = 99;
    m.leader_changes = 2;
    t = render(&m, &s);
    ASSERT(t[strlen(t) - 1] == '\n');
    ASSERT_EQ_U64(u(t, "p2praft_term"), 7);
    ASSERT_EQ_U64(u(t, "p2praft_applied_index"), 42);
    ASSERT_EQ_U64(u(t, "p2praft_is_leader"), 1);
    ASSERT_EQ_U64(u(t, "p2praft_has_leader"), 0);
    ASSERT_EQ_U64(u(t, "p2praft_received_bytes_total"), 1234567890123ull);
    ASSERT_EQ_U64(u(t, "p2praft_refused_total{protocol=\"raft\"}"), 3);
    ASSERT_EQ_U64(u(t, "p2praft_snapshot_last_bytes"), 99);
    ASSERT_EQ_U64(u(t, "p2praft_leader_changes_total"), 2);
    for (line = strtok_r(t, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char name[128], kind[32];
        size_t n;
        if (strncmp(line, "# HELP ", 7) == 0) {
            ASSERT(sscanf(line + 7, "%127s", name) == 1);
            ASSERT(strcmp(name, family) != 0); /* once per family */
            snprintf(family, sizeof(family), "%s", name);
            type[0] = '\0';
            families++;
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            ASSERT(sscanf(line + 7, "%127s %31s", name, kind) == 2);
            ASSERT_STR_EQ(name, family);
            ASSERT(strcmp(kind, "counter") == 0 ||
                   strcmp(kind, "gauge") == 0 ||
                   strcmp(kind, "histogram") == 0);
            snprintf(type, sizeof(type), "%s", kind);
            continue;
        }
        ASSERT(line[0] != '#');
        ASSERT(type[0] != '\0'); /* announced */
        n = strlen(family);
        ASSERT(strncmp(line, family, n) == 0);
        if (strcmp(type, "histogram") == 0) {
            ASSERT(strncmp(line + n, "_bucket{le=\"", 12) == 0 ||
                   strncmp(line + n, "_sum ", 5) == 0 ||
                   strncmp(line + n, "_count ", 7) == 0);
        } else {
            ASSERT(line[n] == ' ' || line[n] == '{');
        }
        if (strcmp(type, "counter") == 0) {
            ASSERT(strstr(family, "_total") != NULL);
        }
        ASSERT(strchr(line, ' ') != NULL && strchr(line, ' ')[1] != '\0');
        samples++;
    }
    ASSERT(families >= 30);
    ASSERT(samples >= families);
    free(t);
}

/* Rendering under every allocation failure: an error and nothing
 * leaked, never a crash. */
static int render_body(void *ctx)
{
    struct p2praft__metrics m;
    struct p2praft__metrics_sample s;
    struct lp2p_buf b;
    int rv;
    (void)ctx;
    memset(&m, 0, sizeof(m));
    memset(&s, 0, sizeof(s));
    lp2p__buf_init(&b);
    rv = p2praft__metrics_render(&m, &s, &b);
    lp2p__buf_free(&b);
    return rv;
}

TEST(metrics, render_out_of_memory)
{
    ASSERT(test__oom_sweep(render_body, NULL) > 0);
}
