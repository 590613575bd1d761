/* Fuzz the raft message codec (src/raft/rpc.c). The first byte picks the
 * chunk size, the rest is a raft stream. Every decoded message must hold
 * what libraft relies on, re-encode to the very bytes it came from, and be
 * freed; errors stop the stream. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "raft/rpc.h"

static void check(const struct raft_message *m, const uint8_t *frame,
                  size_t frame_len)
{
    size_t hlen, off;
    uint8_t *h;
    unsigned i;
    FUZZ_CHECK(m->server_id == 0 && m->server_address == NULL);
    if (m->type == RAFT_APPEND_ENTRIES) {
        const struct raft_append_entries *a = &m->append_entries;
        FUZZ_CHECK((a->prev_log_index == 0) == (a->prev_log_term == 0));
        FUZZ_CHECK((a->n_entries == 0) == (a->entries == NULL));
        for (i = 0; i < a->n_entries; i++) {
            FUZZ_CHECK(a->entries[i].term != 0);
            FUZZ_CHECK(a->entries[i].batch != NULL &&
                       a->entries[i].batch == a->entries[0].batch);
        }
    } else if (m->type == RAFT_INSTALL_SNAPSHOT) {
        FUZZ_CHECK(m->install_snapshot.last_index != 0);
        FUZZ_CHECK(m->install_snapshot.last_term != 0);
        FUZZ_CHECK(m->install_snapshot.conf.n > 0);
    }
    /* Round trip: header and payload are the bytes we read. */
    FUZZ_CHECK(p2praft__rpc_header_len(m, &hlen) == 0);
    FUZZ_CHECK(hlen + p2praft__rpc_payload_len(m) == frame_len);
    h = malloc(hlen);
    FUZZ_CHECK(h != NULL);
    p2praft__rpc_header_write(m, h);
    FUZZ_CHECK(memcmp(h, frame, hlen) == 0);
    free(h);
    off = hlen;
    if (m->type == RAFT_APPEND_ENTRIES) {
        for (i = 0; i < m->append_entries.n_entries; i++) {
            const struct raft_buffer *b = &m->append_entries.entries[i].buf;
            FUZZ_CHECK(b->len == 0 || memcmp(b->base, frame + off, b->len) == 0);
            off += b->len;
        }
    } else if (m->type == RAFT_INSTALL_SNAPSHOT &&
               m->install_snapshot.data.len > 0) {
        FUZZ_CHECK(memcmp(m->install_snapshot.data.base, frame + off,
                          m->install_snapshot.data.len) == 0);
    }
}

FUZZ_TARGET(raft_rpc)
{
    struct p2praft__rpc_dec d;
    struct raft_message m;
    size_t chunk, off = 1, start = 1, used;
    int rv;
    if (size < 1) {
        return 0;
    }
    chunk = (size_t)data[0] % 17 + 1;
    p2praft__rpc_dec_init(&d, 1u << 20);
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk;
        rv = p2praft__rpc_dec_feed(&d, data + off, n, &used, &m);
        FUZZ_CHECK(used <= n);
        off += used;
        if (rv < 0) {
            break;
        }
        if (rv == 1) {
            check(&m, data + start, off - start);
            p2praft__rpc_message_release(&m);
            start = off;
        } else {
            FUZZ_CHECK(used == n);
        }
    }
    p2praft__rpc_dec_close(&d);
    return 0;
}
