/* Segment files and their sparse indexes.
 *
 * The data file holds whole record batches back to back. The offset index and
 * the time index are sparse: one entry every index interval of bytes, so a
 * lookup is a binary search followed by a short walk over batch headers, which
 * is bounded by the interval. Index entries are little-endian fixed-size
 * records so that an index file is a plain array that can be searched in place. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "raftlog_native.h"

static inline uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32); }

static inline void put_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void put_le64(uint8_t *p, uint64_t v) {
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

int rl_write_all(int fd, const uint8_t *buffer, size_t len, uint64_t position) {
    while (len > 0) {
        ssize_t written = pwrite(fd, buffer, len, (off_t)position);
        if (written < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (written == 0) return -EIO;
        buffer += written;
        len -= (size_t)written;
        position += (uint64_t)written;
    }
    return 0;
}

int rl_read_exact(int fd, uint8_t *buffer, size_t len, uint64_t position) {
    while (len > 0) {
        ssize_t got = pread(fd, buffer, len, (off_t)position);
        if (got < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (got == 0) return 1;
        buffer += got;
        len -= (size_t)got;
        position += (uint64_t)got;
    }
    return 0;
}

void rl_offset_index_encode(uint8_t *out, uint32_t relative_offset, uint32_t relative_entry,
                            uint32_t position) {
    put_le32(out, relative_offset);
    put_le32(out + 4, relative_entry);
    put_le32(out + 8, position);
}

void rl_offset_index_entry(const uint8_t *index, size_t i, uint32_t *relative_offset,
                           uint32_t *relative_entry, uint32_t *position) {
    const uint8_t *p = index + i * RL_OFFSET_INDEX_ENTRY_BYTES;
    *relative_offset = le32(p);
    *relative_entry = le32(p + 4);
    *position = le32(p + 8);
}

int64_t rl_offset_index_lookup(const uint8_t *index, size_t entry_count, int key_kind,
                               uint32_t target) {
    size_t field = key_kind == RL_KEY_ENTRY ? 4 : 0;
    size_t low = 0, high = entry_count; /* answer is low - 1 */
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        uint32_t key = le32(index + middle * RL_OFFSET_INDEX_ENTRY_BYTES + field);
        if (key <= target)
            low = middle + 1;
        else
            high = middle;
    }
    return (int64_t)low - 1;
}

int rl_offset_index_check(const uint8_t *index, size_t entry_count, uint64_t data_bytes) {
    for (size_t i = 0; i < entry_count; i++) {
        uint32_t offset, entry, position;
        rl_offset_index_entry(index, i, &offset, &entry, &position);
        if ((uint64_t)position >= data_bytes) return RL_ERR_INDEX_CORRUPT;
        if (i > 0) {
            uint32_t previous_offset, previous_entry, previous_position;
            rl_offset_index_entry(index, i - 1, &previous_offset, &previous_entry, &previous_position);
            if (offset <= previous_offset || entry <= previous_entry || position <= previous_position)
                return RL_ERR_INDEX_CORRUPT;
        }
    }
    return RL_OK;
}

void rl_time_index_encode(uint8_t *out, int64_t timestamp, uint32_t relative_offset,
                          uint32_t position) {
    put_le64(out, (uint64_t)timestamp);
    put_le32(out + 8, relative_offset);
    put_le32(out + 12, position);
}

void rl_time_index_entry(const uint8_t *index, size_t i, int64_t *timestamp,
                         uint32_t *relative_offset, uint32_t *position) {
    const uint8_t *p = index + i * RL_TIME_INDEX_ENTRY_BYTES;
    *timestamp = (int64_t)le64(p);
    *relative_offset = le32(p + 8);
    *position = le32(p + 12);
}

int64_t rl_time_index_lookup(const uint8_t *index, size_t entry_count, int64_t target) {
    size_t low = 0, high = entry_count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        int64_t key = (int64_t)le64(index + middle * RL_TIME_INDEX_ENTRY_BYTES);
        if (key < target)
            low = middle + 1;
        else
            high = middle;
    }
    return (int64_t)low - 1;
}

int rl_time_index_check(const uint8_t *index, size_t entry_count, uint64_t data_bytes) {
    for (size_t i = 0; i < entry_count; i++) {
        int64_t timestamp;
        uint32_t offset, position;
        rl_time_index_entry(index, i, &timestamp, &offset, &position);
        if ((uint64_t)position >= data_bytes) return RL_ERR_INDEX_CORRUPT;
        if (i > 0) {
            int64_t previous_timestamp;
            uint32_t previous_offset, previous_position;
            rl_time_index_entry(index, i - 1, &previous_timestamp, &previous_offset, &previous_position);
            if (timestamp < previous_timestamp || offset <= previous_offset ||
                position <= previous_position)
                return RL_ERR_INDEX_CORRUPT;
        }
    }
    return RL_OK;
}

static int matches(int key_kind, int64_t target, const rl_batch_header *h, int64_t last,
                   uint64_t entry_index) {
    switch (key_kind) {
        case RL_KEY_OFFSET: return h->base_offset <= target && target <= last;
        case RL_KEY_ENTRY: return entry_index == (uint64_t)target;
        default: return h->max_timestamp >= target;
    }
}

/* True once the walk has gone past where target could be. */
static int passed(int key_kind, int64_t target, const rl_batch_header *h, uint64_t entry_index) {
    switch (key_kind) {
        case RL_KEY_OFFSET: return h->base_offset > target;
        case RL_KEY_ENTRY: return entry_index > (uint64_t)target;
        default: return 0;
    }
}

int rl_file_find_batch(int fd, uint64_t position, uint64_t end, uint64_t entry_index,
                       int key_kind, int64_t target, rl_batch_location *out) {
    if (key_kind != RL_KEY_OFFSET && key_kind != RL_KEY_ENTRY && key_kind != RL_KEY_TIMESTAMP)
        return RL_ERR_BAD_ARGUMENT;
    uint8_t header_bytes[RL_BATCH_HEADER_BYTES];
    while (position < end) {
        if (end - position < RL_BATCH_HEADER_BYTES) return RL_ERR_HEADER_TRUNCATED;
        int read_error = rl_read_exact(fd, header_bytes, RL_BATCH_HEADER_BYTES, position);
        if (read_error) return read_error > 0 ? RL_ERR_HEADER_TRUNCATED : RL_ERR_IO;
        rl_batch_header h;
        rl_batch_header_parse(header_bytes, RL_BATCH_HEADER_BYTES, &h);
        if (h.magic != RL_BATCH_MAGIC_V2) return RL_ERR_BAD_MAGIC;
        if (h.batch_length < RL_BATCH_LENGTH_MIN) return RL_ERR_BATCH_LENGTH_TOO_SMALL;
        uint64_t size = (uint64_t)h.batch_length + RL_BATCH_LOG_OVERHEAD_BYTES;
        if (size > end - position) return RL_ERR_BATCH_TRUNCATED;
        int64_t last = h.base_offset + h.last_offset_delta;
        if (passed(key_kind, target, &h, entry_index)) return RL_ERR_NOT_FOUND;
        if (matches(key_kind, target, &h, last, entry_index)) {
            out->position = position;
            out->entry_index = entry_index;
            out->base_offset = h.base_offset;
            out->last_offset = last;
            out->max_timestamp = h.max_timestamp;
            out->partition_leader_epoch = h.partition_leader_epoch;
            out->size_bytes = (uint32_t)size;
            return RL_OK;
        }
        position += size;
        entry_index++;
    }
    return RL_ERR_NOT_FOUND;
}
