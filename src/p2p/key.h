/* Internal parts of the key and peer ID code (key.c, peerid.c). */
#ifndef LP2P_P2P_KEY_H
#define LP2P_P2P_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "lp2p.h"

/* libp2p KeyType enum values. */
enum { LP2P_KEYTYPE_RSA = 0, LP2P_KEYTYPE_ED25519 = 1,
       LP2P_KEYTYPE_SECP256K1 = 2, LP2P_KEYTYPE_ECDSA = 3 };

/* Multihash codes and the CID codec of libp2p keys. */
#define LP2P_MH_IDENTITY 0x00
#define LP2P_MH_SHA2_256 0x12
#define LP2P_CID_LIBP2P_KEY 0x72

/* PublicKey protobuf of an Ed25519 key: 08 01 12 20 || pub (36 bytes). */
void lp2p__pubkey_pb_encode(const uint8_t pub[32], uint8_t out[36]);

/* Decode a PublicKey protobuf; only Ed25519 is supported (others:
 * LP2P_EUNSUPPORTED, malformed: LP2P_EBADKEY). Unknown fields skipped. */
int lp2p__pubkey_pb_decode(const uint8_t *pb, size_t len, uint8_t pub[32]);

/*
 * lp2p_peer_id_parse() on `len` characters of `s` (no NUL needed), with a
 * sentence saying what is wrong written to `err` (capacity `errcap`; `err`
 * may be NULL). Same return codes.
 */
int lp2p__peer_id_parse(struct lp2p_peer_id *id, const char *s, size_t len,
                        char *err, size_t errcap);

/* lp2p_peer_id_from_bytes() with the reason written to `err` (may be NULL). */
int lp2p__peer_id_from_bytes(struct lp2p_peer_id *id, const uint8_t *mh,
                             size_t len, char *err, size_t errcap);

#endif
