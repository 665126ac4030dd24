/* The C library's allocator settings for a node process. See raftlog_native.h. */
#include <stdint.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "raftlog_native.h"

int rl_tune_allocator(int64_t mmap_threshold, int64_t trim_threshold) {
#ifdef __GLIBC__
    if (mmap_threshold <= 0 || mmap_threshold > INT32_MAX) return -1;
    if (trim_threshold <= 0 || trim_threshold > INT32_MAX) return -1;
    if (mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold) != 1) return -1;
    if (mallopt(M_TRIM_THRESHOLD, (int)trim_threshold) != 1) return -1;
    return 1;
#else
    (void)mmap_threshold;
    (void)trim_threshold;
    return 0;
#endif
}
