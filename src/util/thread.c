/* Library threads with SIGPIPE blocked (see thread.h). */
#include <signal.h>

#include "util/thread.h"

int lp2p__thread_create(pthread_t *thread, void *(*fn)(void *), void *arg)
{
    sigset_t pipe_set, old_set;
    int rv;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    rv = pthread_create(thread, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old_set, NULL);
    return rv;
}
