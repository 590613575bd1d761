/*
 * A small protobuf reader and writer, enough for libp2p's messages
 * (PublicKey, PrivateKey, NoiseHandshakePayload, Identify).
 *
 * The reader walks fields one at a time and hands every field, known or
 * not, to the caller, who ignores the numbers it does not know: that is how
 * unknown fields of wire types 0 (varint), 1 (fixed64), 2 (length-delimited)
 * and 5 (fixed32) are skipped. Groups (3, 4), truncated fields, varints over
 * 10 bytes, and field number 0 are errors.
 *
 * The writer emits fields in the order the caller writes them, with minimal
 * varints: write in field-number order for deterministic output.
 */
#ifndef LP2P_P2P_PB_H
#define LP2P_P2P_PB_H

#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"

enum {
    LP2P_PB_VARINT = 0,
    LP2P_PB_FIXED64 = 1,
    LP2P_PB_LEN = 2,
    LP2P_PB_FIXED32 = 5
};

struct lp2p_pb_reader {
    const uint8_t *p;
    const uint8_t *end;
};

struct lp2p_pb_field {
    uint32_t num;
    int wire;
    uint64_t u64;        /* value of VARINT, FIXED64 and FIXED32 fields */
    const uint8_t *data; /* LEN fields: borrowed from the input */
    size_t len;
};

void lp2p__pb_reader_init(struct lp2p_pb_reader *r, const uint8_t *data,
                          size_t len);

/* Read the next field into `f`. Returns 1 when a field was read, 0 at the
 * end of input, LP2P_ETRUNCATED, LP2P_EMALFORMED or LP2P_EUNSUPPORTED. */
int lp2p__pb_next(struct lp2p_pb_reader *r, struct lp2p_pb_field *f);

/* Protobuf varint (up to 10 bytes, any value). Returns bytes consumed,
 * LP2P_ETRUNCATED or LP2P_EMALFORMED (over 10 bytes). */
int lp2p__pb_varint(const uint8_t *in, size_t len, uint64_t *v);

int lp2p__pb_put_varint(struct lp2p_buf *b, uint32_t num, uint64_t v);
int lp2p__pb_put_bytes(struct lp2p_buf *b, uint32_t num, const void *p,
                       size_t len);
int lp2p__pb_put_string(struct lp2p_buf *b, uint32_t num, const char *s);

#endif
