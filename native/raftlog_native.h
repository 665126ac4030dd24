/* raftlog's C hot path: the single header that is also the cffi cdef.
 * Preprocessor lines are stripped before cffi reads this file, so keep every
 * declaration on plain C lines. */
#ifndef RAFTLOG_NATIVE_H
#define RAFTLOG_NATIVE_H
#include <stddef.h>
#include <stdint.h>

/* CRC32C (Castagnoli) of len bytes, continuing from crc (0 to start). */
uint32_t rl_crc32c(uint32_t crc, const uint8_t *data, size_t len);

#endif
