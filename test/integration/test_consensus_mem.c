/* The seed's test suite (test_consensus.c) over p2praft's raft I/O on
 * libp2p, with the memory store: suites consensus_mem, actor_mem,
 * example_mem. */
#define CONSENSUS_STORE P2PRAFT_STORE_MEM
#define SUITE_CONSENSUS consensus_mem
#define SUITE_ACTOR actor_mem
#define SUITE_EXAMPLE example_mem
#include "test_consensus.c"
