/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * Hardware path: the SSE4.2 crc32 instruction has a latency of about three
 * cycles but a throughput of one per cycle, so one dependency chain leaves two
 * thirds of the unit idle. We run three independent chains over three adjacent
 * blocks and then fold them together: the CRC register is linear over GF(2), so
 * crc(A || B) = shift(crc(A), |B|) ^ crc0(B), where shift multiplies by x^(8|B|)
 * modulo the polynomial. For the two fixed block sizes used here that shift is
 * precomputed as four 256-entry tables, one per byte of the register.
 *
 * Portable path: slicing-by-8 tables.
 *
 * All tables are built once by a constructor before any Python code can call
 * in, so the lookups need no locking. */
#include <string.h>

#include "raftlog_native.h"

#define POLY 0x82F63B78u
#define LONG_BLOCK 8192
#define SHORT_BLOCK 256

static uint32_t slice_table[8][256];
static uint32_t shift_long[4][256];
static uint32_t shift_short[4][256];
static int hardware_available = 0;
static int portable_forced = 0;

/* a(x) * b(x) modulo P, in the reflected bit order (bit 31 is x^0). */
static uint32_t multiply_mod_poly(uint32_t a, uint32_t b) {
    uint32_t product = 0;
    for (int bit = 31; bit >= 0; bit--) {
        if (a & (1u << bit)) product ^= b;
        b = (b & 1) ? (b >> 1) ^ POLY : b >> 1;
    }
    return product;
}

/* x^(8 * byte_count) modulo P, by square and multiply. */
static uint32_t x_pow_bytes(uint64_t byte_count) {
    uint64_t exponent = byte_count * 8;
    uint32_t result = 1u << 31; /* x^0 */
    uint32_t square = 1u << 30; /* x^1 */
    while (exponent) {
        if (exponent & 1) result = multiply_mod_poly(square, result);
        square = multiply_mod_poly(square, square);
        exponent >>= 1;
    }
    return result;
}

static void build_shift_table(uint32_t table[4][256], uint64_t byte_count) {
    uint32_t factor = x_pow_bytes(byte_count);
    for (int byte = 0; byte < 4; byte++)
        for (uint32_t value = 0; value < 256; value++)
            table[byte][value] = multiply_mod_poly(factor, value << (8 * byte));
}

static inline uint32_t shift(const uint32_t table[4][256], uint32_t crc) {
    return table[0][crc & 0xFF] ^ table[1][(crc >> 8) & 0xFF] ^ table[2][(crc >> 16) & 0xFF] ^
           table[3][crc >> 24];
}

__attribute__((constructor)) static void crc32c_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        slice_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int s = 1; s < 8; s++)
            slice_table[s][i] = (slice_table[s - 1][i] >> 8) ^ slice_table[0][slice_table[s - 1][i] & 0xFF];
    build_shift_table(shift_long, LONG_BLOCK);
    build_shift_table(shift_short, SHORT_BLOCK);
#if defined(__x86_64__)
    __builtin_cpu_init();
    hardware_available = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
}

static inline uint64_t load_le64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* Raw register update, no pre/post inversion. */
static uint32_t portable_update(uint32_t crc, const uint8_t *data, size_t len) {
    while (len && ((uintptr_t)data & 7)) {
        crc = slice_table[0][(crc ^ *data++) & 0xFF] ^ (crc >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t word = load_le64(data) ^ crc;
        crc = slice_table[7][word & 0xFF] ^ slice_table[6][(word >> 8) & 0xFF] ^
              slice_table[5][(word >> 16) & 0xFF] ^ slice_table[4][(word >> 24) & 0xFF] ^
              slice_table[3][(word >> 32) & 0xFF] ^ slice_table[2][(word >> 40) & 0xFF] ^
              slice_table[1][(word >> 48) & 0xFF] ^ slice_table[0][word >> 56];
        data += 8;
        len -= 8;
    }
    while (len--) crc = slice_table[0][(crc ^ *data++) & 0xFF] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

/* Three chains over three adjacent blocks of block_bytes each, folded. */
__attribute__((target("sse4.2"))) static inline uint64_t three_way(
    uint64_t crc, const uint8_t *data, size_t block_bytes, const uint32_t table[4][256]) {
    uint64_t crc1 = 0, crc2 = 0;
    const uint8_t *end = data + block_bytes;
    do {
        uint64_t w0, w1, w2;
        memcpy(&w0, data, 8);
        memcpy(&w1, data + block_bytes, 8);
        memcpy(&w2, data + 2 * block_bytes, 8);
        crc = _mm_crc32_u64(crc, w0);
        crc1 = _mm_crc32_u64(crc1, w1);
        crc2 = _mm_crc32_u64(crc2, w2);
        data += 8;
    } while (data < end);
    crc = shift(table, (uint32_t)crc) ^ crc1;
    crc = shift(table, (uint32_t)crc) ^ crc2;
    return crc;
}

__attribute__((target("sse4.2"))) static uint32_t hardware_update(
    uint32_t crc32, const uint8_t *data, size_t len) {
    uint64_t crc = crc32;
    while (len && ((uintptr_t)data & 7)) {
        crc = _mm_crc32_u8((uint32_t)crc, *data++);
        len--;
    }
    while (len >= 3 * LONG_BLOCK) {
        crc = three_way(crc, data, LONG_BLOCK, shift_long);
        data += 3 * LONG_BLOCK;
        len -= 3 * LONG_BLOCK;
    }
    while (len >= 3 * SHORT_BLOCK) {
        crc = three_way(crc, data, SHORT_BLOCK, shift_short);
        data += 3 * SHORT_BLOCK;
        len -= 3 * SHORT_BLOCK;
    }
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, data, 8);
        crc = _mm_crc32_u64(crc, word);
        data += 8;
        len -= 8;
    }
    while (len--) crc = _mm_crc32_u8((uint32_t)crc, *data++);
    return (uint32_t)crc;
}
#endif

uint32_t rl_crc32c_portable(uint32_t crc, const uint8_t *data, size_t len) {
    return ~portable_update(~crc, data, len);
}

uint32_t rl_crc32c(uint32_t crc, const uint8_t *data, size_t len) {
#if defined(__x86_64__)
    if (hardware_available && !portable_forced) return ~hardware_update(~crc, data, len);
#endif
    return ~portable_update(~crc, data, len);
}

int rl_crc32c_hardware_active(void) { return hardware_available && !portable_forced; }

int rl_crc32c_force_portable(int force) {
    int previous = portable_forced;
    portable_forced = force ? 1 : 0;
    return previous;
}
