/*
 * Contact records (raft/contact.h), what `status --cluster` reports: the
 * last message time of each peer, and its match index from successful
 * AppendEntries results, kept within one term.
 */
#include <raft.h>
#include <string.h>

#include "raft/contact.h"
#include "test.h"

static struct raft_message result(raft_id from, raft_index last,
                                  raft_index rejected)
{
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_APPEND_ENTRIES_RESULT;
    m.server_id = from;
    m.append_entries_result.last_log_index = last;
    m.append_entries_result.rejected = rejected;
    return m;
}

TEST(contact, match_and_last_contact)
{
    struct p2praft__contacts t;
    struct raft_message m;
    const struct p2praft__contact *c;
    raft_id id;
    memset(&t, 0, sizeof(t));
    ASSERT(p2praft__contacts_get(&t, 7) == NULL);

    m = result(7, 10, 0);
    p2praft__contacts_observe(&t, &m, 1000, 3);
    c = p2praft__contacts_get(&t, 7);
    ASSERT(c != NULL);
    ASSERT_EQ_U64(c->match, 10);
    ASSERT_EQ_U64(c->last_ms, 1000);

    /* a rejection moves the contact time, not the match */
    m = result(7, 4, 11);
    p2praft__contacts_observe(&t, &m, 1100, 3);
    ASSERT_EQ_U64(c->match, 10);
    ASSERT_EQ_U64(c->last_ms, 1100);
    /* a late, older answer does not lower it within the term */
    m = result(7, 8, 0);
    p2praft__contacts_observe(&t, &m, 1200, 3);
    ASSERT_EQ_U64(c->match, 10);
    /* a new term starts over */
    m = result(7, 6, 0);
    p2praft__contacts_observe(&t, &m, 1300, 4);
    ASSERT_EQ_U64(c->match, 6);
    ASSERT_EQ_U64(c->match_term, 4);
    /* any other message is contact only */
    memset(&m, 0, sizeof(m));
    m.type = RAFT_REQUEST_VOTE;
    m.server_id = 7;
    p2praft__contacts_observe(&t, &m, 1400, 4);
    ASSERT_EQ_U64(c->last_ms, 1400);
    ASSERT_EQ_U64(c->match, 6);

    /* many peers: the table grows, each keeps its own */
    for (id = 100; id < 140; id++) {
        m = result(id, id, 0);
        p2praft__contacts_observe(&t, &m, id, 4);
    }
    for (id = 100; id < 140; id++) {
        c = p2praft__contacts_get(&t, id);
        ASSERT(c != NULL);
        ASSERT_EQ_U64(c->match, id);
    }
    ASSERT_EQ_U64(p2praft__contacts_get(&t, 7)->match, 6);
    p2praft__contacts_free(&t);
    ASSERT(t.v == NULL && t.n == 0);
}
