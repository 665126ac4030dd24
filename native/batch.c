/* Kafka record batch v2 header: decode, validate, stamp, walk.
 *
 * Check order is part of the contract, because it makes each error code
 * precise: presence of the header, magic, batch length bounds, presence of the
 * whole batch, CRC, and only then the meaning of CRC-covered fields (a field
 * whose bits were flipped in storage is reported as a CRC failure, not as a
 * nonsense value). baseOffset and partitionLeaderEpoch are outside the CRC and
 * are checked on their own. */
#include "raftlog_native.h"

#include <string.h>

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static inline uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t be64(const uint8_t *p) { return ((uint64_t)be32(p) << 32) | be32(p + 4); }

static inline void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void put_be64(uint8_t *p, uint64_t v) {
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

int rl_batch_header_parse(const uint8_t *buffer, size_t len, rl_batch_header *out) {
    if (len < RL_BATCH_HEADER_BYTES) return RL_ERR_HEADER_TRUNCATED;
    out->base_offset = (int64_t)be64(buffer + 0);
    out->batch_length = (int32_t)be32(buffer + 8);
    out->partition_leader_epoch = (int32_t)be32(buffer + 12);
    out->magic = (int8_t)buffer[16];
    out->crc = be32(buffer + 17);
    out->attributes = (int16_t)be16(buffer + 21);
    out->last_offset_delta = (int32_t)be32(buffer + 23);
    out->base_timestamp = (int64_t)be64(buffer + 27);
    out->max_timestamp = (int64_t)be64(buffer + 35);
    out->producer_id = (int64_t)be64(buffer + 43);
    out->producer_epoch = (int16_t)be16(buffer + 51);
    out->base_sequence = (int32_t)be32(buffer + 53);
    out->records_count = (int32_t)be32(buffer + 57);
    return RL_OK;
}

/* Size checks shared by validate and stamp: header present, magic, length. */
static int check_frame(const rl_batch_header *h, size_t len, size_t batch_bytes_max) {
    if (h->magic != RL_BATCH_MAGIC_V2) return RL_ERR_BAD_MAGIC;
    if (h->batch_length < RL_BATCH_LENGTH_MIN) return RL_ERR_BATCH_LENGTH_TOO_SMALL;
    uint64_t total = (uint64_t)h->batch_length + RL_BATCH_LOG_OVERHEAD_BYTES;
    if (total > batch_bytes_max) return RL_ERR_BATCH_LENGTH_TOO_LARGE;
    if (total > len) return RL_ERR_BATCH_TRUNCATED;
    return RL_OK;
}

/* Semantics of the CRC-covered fields, after the CRC matched. A producer's batch
 * holds exactly lastOffsetDelta + 1 records; a stored batch may hold fewer, down to
 * none, once compaction has removed records (Kafka's cleaner keeps the header, and
 * so the offset range, of a batch it empties or thins). */
static int check_fields(const rl_batch_header *h, int stored) {
    if (h->last_offset_delta < 0) return RL_ERR_NEGATIVE_LAST_OFFSET_DELTA;
    if (stored) {
        if (h->records_count < 0) return RL_ERR_RECORDS_COUNT_NOT_POSITIVE;
        if ((int64_t)h->records_count > (int64_t)h->last_offset_delta + 1)
            return RL_ERR_RECORDS_COUNT_MISMATCH;
    } else {
        if (h->records_count <= 0) return RL_ERR_RECORDS_COUNT_NOT_POSITIVE;
        if ((int64_t)h->records_count != (int64_t)h->last_offset_delta + 1)
            return RL_ERR_RECORDS_COUNT_MISMATCH;
    }
    if (h->base_offset > INT64_MAX - h->last_offset_delta) return RL_ERR_OFFSET_OVERFLOW;
    if (h->base_timestamp < -1 || h->max_timestamp < -1) return RL_ERR_BAD_TIMESTAMP;
    if (h->producer_id < -1 || h->producer_epoch < -1 || h->base_sequence < -1)
        return RL_ERR_BAD_PRODUCER_FIELDS;
    if ((h->attributes & 0x7) > 4) return RL_ERR_BAD_COMPRESSION;
    return RL_OK;
}

static int validate(const uint8_t *buffer, size_t len, size_t batch_bytes_max,
                    rl_batch_header *out, int stored) {
    int error = rl_batch_header_parse(buffer, len, out);
    if (error) return error;
    error = check_frame(out, len, batch_bytes_max);
    if (error) return error;
    size_t covered = (size_t)out->batch_length + RL_BATCH_LOG_OVERHEAD_BYTES - RL_BATCH_CRC_START;
    if (rl_crc32c(0, buffer + RL_BATCH_CRC_START, covered) != out->crc) return RL_ERR_BAD_CRC;
    if (out->base_offset < 0) return RL_ERR_NEGATIVE_BASE_OFFSET;
    return check_fields(out, stored);
}

int rl_batch_validate(const uint8_t *buffer, size_t len, size_t batch_bytes_max,
                      rl_batch_header *out) {
    return validate(buffer, len, batch_bytes_max, out, 0);
}

int rl_batch_validate_stored(const uint8_t *buffer, size_t len, size_t batch_bytes_max,
                             rl_batch_header *out) {
    return validate(buffer, len, batch_bytes_max, out, 1);
}

static int check_stamp(const uint8_t *buffer, size_t len, int64_t base_offset,
                       int32_t partition_leader_epoch) {
    rl_batch_header h;
    int error = rl_batch_header_parse(buffer, len, &h);
    if (error) return error;
    error = check_frame(&h, len, SIZE_MAX);
    if (error) return error;
    if (base_offset < 0) return RL_ERR_NEGATIVE_BASE_OFFSET;
    if (partition_leader_epoch < 0) return RL_ERR_NEGATIVE_LEADER_EPOCH;
    if (h.last_offset_delta >= 0 && base_offset > INT64_MAX - h.last_offset_delta)
        return RL_ERR_OFFSET_OVERFLOW;
    return RL_OK;
}

int rl_batch_stamp(uint8_t *buffer, size_t len, int64_t base_offset,
                   int32_t partition_leader_epoch) {
    int error = check_stamp(buffer, len, base_offset, partition_leader_epoch);
    if (error) return error;
    put_be64(buffer + 0, (uint64_t)base_offset);
    put_be32(buffer + 12, (uint32_t)partition_leader_epoch);
    return RL_OK;
}

int rl_batch_stamped_head(const uint8_t *buffer, size_t len, int64_t base_offset,
                          int32_t partition_leader_epoch, uint8_t *head) {
    int error = check_stamp(buffer, len, base_offset, partition_leader_epoch);
    if (error) return error;
    memcpy(head, buffer, RL_STAMP_HEAD_BYTES);
    put_be64(head + 0, (uint64_t)base_offset);
    put_be32(head + 12, (uint32_t)partition_leader_epoch);
    return RL_OK;
}

static void scan_start(rl_scan_result *out) {
    out->error = RL_OK;
    out->error_position = 0;
    out->valid_bytes = 0;
    out->batch_count = 0;
    out->records_count = 0;
    out->first_offset = -1;
    out->last_offset = -1;
    out->next_offset = -1;
    out->first_leader_epoch = -1;
    out->last_leader_epoch = -1;
    out->last_batch_position = 0;
    out->max_timestamp = -1;
    out->offset_of_max_timestamp = -1;
}

static void scan_accept(rl_scan_result *out, const rl_batch_header *h, uint64_t position) {
    int64_t last = h->base_offset + h->last_offset_delta;
    if (out->batch_count == 0) {
        out->first_offset = h->base_offset;
        out->first_leader_epoch = h->partition_leader_epoch;
    }
    out->batch_count++;
    out->records_count += (uint64_t)h->records_count;
    out->last_offset = last;
    out->next_offset = last + 1;
    out->last_leader_epoch = h->partition_leader_epoch;
    out->last_batch_position = position;
    if (h->max_timestamp > out->max_timestamp) {
        out->max_timestamp = h->max_timestamp;
        out->offset_of_max_timestamp = last;
    }
    out->valid_bytes = position + (uint64_t)h->batch_length + RL_BATCH_LOG_OVERHEAD_BYTES;
}

int rl_batches_validate(const uint8_t *buffer, size_t len, size_t batch_bytes_max,
                        rl_scan_result *out) {
    scan_start(out);
    if (len == 0) {
        out->error = RL_ERR_HEADER_TRUNCATED;
        return out->error;
    }
    uint64_t position = 0;
    while (position < len) {
        rl_batch_header h;
        int error = rl_batch_validate(buffer + position, len - position, batch_bytes_max, &h);
        if (error) {
            out->error = error;
            out->error_position = position;
            return error;
        }
        scan_accept(out, &h, position);
        position = out->valid_bytes;
    }
    return RL_OK;
}

/* Apply the index rule to one valid batch at file position `position`. */
static int index_accept(rl_index_state *index, const rl_batch_header *h, uint64_t position) {
    int64_t relative_offset = h->base_offset - index->segment_base_offset;
    if (h->max_timestamp > index->running_max_timestamp)
        index->running_max_timestamp = h->max_timestamp;
    if (index->bytes_since_entry >= index->interval_bytes) {
        if (index->entry_count >= index->capacity) return RL_ERR_BAD_ARGUMENT;
        if (relative_offset < 0 || relative_offset > UINT32_MAX) return RL_ERR_BAD_ARGUMENT;
        if (index->next_relative_entry > UINT32_MAX || position > UINT32_MAX)
            return RL_ERR_BAD_ARGUMENT;
        rl_offset_index_encode(index->offset_index + index->entry_count * RL_OFFSET_INDEX_ENTRY_BYTES,
                               (uint32_t)relative_offset, (uint32_t)index->next_relative_entry,
                               (uint32_t)position);
        rl_time_index_encode(index->time_index + index->entry_count * RL_TIME_INDEX_ENTRY_BYTES,
                             index->running_max_timestamp, (uint32_t)relative_offset,
                             (uint32_t)position);
        index->entry_count++;
        index->bytes_since_entry = 0;
    }
    index->bytes_since_entry += (uint64_t)h->batch_length + RL_BATCH_LOG_OVERHEAD_BYTES;
    index->next_relative_entry++;
    return RL_OK;
}

static int log_scan(const uint8_t *buffer, size_t len, int64_t expected_base_offset,
                    int32_t leader_epoch_floor, size_t batch_bytes_max, rl_index_state *index,
                    uint64_t file_position, rl_scan_result *out) {
    scan_start(out);
    uint64_t position = 0;
    int64_t expected = expected_base_offset;
    int32_t epoch_floor = leader_epoch_floor;
    while (position < len) {
        rl_batch_header h;
        int error = rl_batch_validate_stored(buffer + position, len - position, batch_bytes_max, &h);
        if (!error && expected >= 0 && h.base_offset != expected)
            error = RL_ERR_OFFSET_NOT_CONTIGUOUS;
        if (!error && h.partition_leader_epoch < 0) error = RL_ERR_NEGATIVE_LEADER_EPOCH;
        if (!error && h.partition_leader_epoch < epoch_floor) error = RL_ERR_LEADER_EPOCH_DECREASED;
        if (!error && index) error = index_accept(index, &h, file_position + position);
        if (error) {
            out->error = error;
            out->error_position = position;
            return error;
        }
        scan_accept(out, &h, position);
        expected = out->next_offset;
        epoch_floor = h.partition_leader_epoch;
        position = out->valid_bytes;
    }
    return RL_OK;
}

int rl_log_scan(const uint8_t *buffer, size_t len, int64_t expected_base_offset,
                size_t batch_bytes_max, rl_scan_result *out) {
    return log_scan(buffer, len, expected_base_offset, 0, batch_bytes_max, NULL, 0, out);
}

/* Fold the scan of one chunk (positions relative to chunk_position) into the
 * running result of the whole file (positions are file positions). */
static void scan_merge(rl_scan_result *total, const rl_scan_result *part, uint64_t chunk_position) {
    if (part->batch_count == 0) return;
    if (total->batch_count == 0) {
        total->first_offset = part->first_offset;
        total->first_leader_epoch = part->first_leader_epoch;
    }
    total->batch_count += part->batch_count;
    total->records_count += part->records_count;
    total->last_offset = part->last_offset;
    total->next_offset = part->next_offset;
    total->last_leader_epoch = part->last_leader_epoch;
    total->last_batch_position = chunk_position + part->last_batch_position;
    if (part->max_timestamp > total->max_timestamp) {
        total->max_timestamp = part->max_timestamp;
        total->offset_of_max_timestamp = part->offset_of_max_timestamp;
    }
    total->valid_bytes = chunk_position + part->valid_bytes;
}

int rl_file_scan(int fd, uint64_t start, uint64_t end, int64_t expected_base_offset,
                 size_t batch_bytes_max, uint8_t *chunk, size_t chunk_bytes,
                 rl_index_state *index, rl_scan_result *out) {
    scan_start(out);
    out->valid_bytes = start;
    out->last_batch_position = start;
    if (chunk_bytes < batch_bytes_max || chunk_bytes < RL_BATCH_HEADER_BYTES || end < start) {
        out->error = RL_ERR_BAD_ARGUMENT;
        out->error_position = start;
        return out->error;
    }
    uint64_t position = start;
    int64_t expected = expected_base_offset;
    int32_t epoch_floor = 0;
    while (position < end) {
        uint64_t remaining = end - position;
        size_t want = remaining < chunk_bytes ? (size_t)remaining : chunk_bytes;
        int read_error = rl_read_exact(fd, chunk, want, position);
        if (read_error) {
            out->error = RL_ERR_IO;
            out->error_position = position;
            return out->error;
        }
        rl_scan_result part;
        int error = log_scan(chunk, want, expected, epoch_floor, batch_bytes_max, index, position,
                             &part);
        scan_merge(out, &part, position);
        if (part.batch_count) {
            expected = part.next_offset;
            epoch_floor = part.last_leader_epoch;
        }
        int cut_by_chunk = (error == RL_ERR_HEADER_TRUNCATED || error == RL_ERR_BATCH_TRUNCATED) &&
                           want < remaining && part.valid_bytes > 0;
        if (error && !cut_by_chunk) {
            out->error = error;
            out->error_position = position + part.error_position;
            return error;
        }
        position += part.valid_bytes;
    }
    return RL_OK;
}
