/* Support for libFuzzer builds of the targets (make fuzz). */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

void test__fuzz_register(struct fuzz_target *t)
{
    (void)t;
}

void fuzz__check_failed(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", file, line, what);
    abort();
}
