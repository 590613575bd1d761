/*
 * The library's own threads (a node's loop, a client's loop) write to
 * sockets with libuv, which does not use MSG_NOSIGNAL: a peer that went
 * away would raise SIGPIPE, whose default action kills the whole process.
 * The library does not touch the process's signal handling; the threads it
 * creates start with SIGPIPE blocked instead (a blocked SIGPIPE stays
 * pending on that thread, harmless, and the write fails with EPIPE).
 */
#ifndef LP2P_UTIL_THREAD_H
#define LP2P_UTIL_THREAD_H

#include <pthread.h>

/* pthread_create() with default attributes, the new thread starting with
 * SIGPIPE blocked; the caller's signal mask is left as it was. Returns
 * pthread_create()'s result (0 or an errno value). */
int lp2p__thread_create(pthread_t *thread, void *(*fn)(void *), void *arg);

#endif
