/* raftlog's C hot path: the single header that is also the cffi cdef.
 * Preprocessor lines are stripped before cffi reads this file, so keep every
 * declaration on plain C lines: no macros inside declarations, plain enums and
 * structs only. Multi-byte values inside record batches are big-endian (Kafka);
 * index entries are little-endian (ours). */
#ifndef RAFTLOG_NATIVE_H
#define RAFTLOG_NATIVE_H
#include <stddef.h>
#include <stdint.h>

/* ---- CRC32C (Castagnoli), crc32c.c ---------------------------------------- */

/* CRC32C of len bytes, continuing from crc (0 to start). Uses SSE4.2 with three
 * interleaved streams when the CPU has it, else the portable slicing-by-8 path. */
uint32_t rl_crc32c(uint32_t crc, const uint8_t *data, size_t len);

/* The portable path alone, whatever the CPU supports (the tests' second oracle). */
uint32_t rl_crc32c_portable(uint32_t crc, const uint8_t *data, size_t len);

/* 1 while rl_crc32c uses the hardware instructions, else 0. */
int rl_crc32c_hardware_active(void);

/* Force (1) or stop forcing (0) the portable path in rl_crc32c; returns the
 * previous setting. For tests and benchmarks only; not thread-safe by design. */
int rl_crc32c_force_portable(int force);

/* ---- Record batch v2 header, batch.c -------------------------------------- */

/* One precise code per kind of corruption. RL_OK is 0; every error is > 0. */
typedef enum {
    RL_OK = 0,
    RL_ERR_HEADER_TRUNCATED = 1,
    RL_ERR_BATCH_LENGTH_TOO_SMALL = 2,
    RL_ERR_BATCH_LENGTH_TOO_LARGE = 3,
    RL_ERR_BATCH_TRUNCATED = 4,
    RL_ERR_BAD_MAGIC = 5,
    RL_ERR_BAD_CRC = 6,
    RL_ERR_NEGATIVE_BASE_OFFSET = 7,
    RL_ERR_NEGATIVE_LAST_OFFSET_DELTA = 8,
    RL_ERR_RECORDS_COUNT_NOT_POSITIVE = 9,
    RL_ERR_RECORDS_COUNT_MISMATCH = 10,
    RL_ERR_OFFSET_OVERFLOW = 11,
    RL_ERR_BAD_TIMESTAMP = 12,
    RL_ERR_BAD_PRODUCER_FIELDS = 13,
    RL_ERR_BAD_COMPRESSION = 14,
    RL_ERR_NEGATIVE_LEADER_EPOCH = 15,
    RL_ERR_OFFSET_NOT_CONTIGUOUS = 16,
    RL_ERR_LEADER_EPOCH_DECREASED = 17,
    RL_ERR_IO = 18,
    RL_ERR_NOT_FOUND = 19,
    RL_ERR_INDEX_CORRUPT = 20,
    RL_ERR_BAD_ARGUMENT = 21,
    RL_ERROR_CODE_END = 22
} rl_error;

/* Byte sizes and positions fixed by the Kafka record batch v2 format. */
enum {
    RL_BATCH_HEADER_BYTES = 61,
    RL_BATCH_LENGTH_MIN = 49,
    RL_BATCH_LOG_OVERHEAD_BYTES = 12,
    RL_BATCH_CRC_START = 21,
    RL_BATCH_MAGIC_V2 = 2
};

typedef struct {
    int64_t base_offset;
    int32_t batch_length;
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t records_count;
} rl_batch_header;

/* Decode the 61 header bytes without validating anything but their presence. */
int rl_batch_header_parse(const uint8_t *buffer, size_t len, rl_batch_header *out);

/* Validate the one batch at the start of buffer: sizes (batch_bytes_max is the
 * whole batch, log overhead included), magic, CRC, then field semantics. On
 * RL_OK, *out holds the header. A buffer longer than the batch is fine. */
int rl_batch_validate(const uint8_t *buffer, size_t len, size_t batch_bytes_max, rl_batch_header *out);

/* rl_batch_validate for a batch already in a log: the records count may be below
 * lastOffsetDelta + 1, down to 0, because compaction thins batches but keeps their
 * offset range. Recovery scans use this rule; produce payloads use the strict one. */
int rl_batch_validate_stored(const uint8_t *buffer, size_t len, size_t batch_bytes_max, rl_batch_header *out);

/* Write baseOffset and partitionLeaderEpoch in place. Both lie outside the
 * CRC-covered region, so the CRC stays valid. Checks size and magic first. */
int rl_batch_stamp(uint8_t *buffer, size_t len, int64_t base_offset, int32_t partition_leader_epoch);

/* The first RL_STAMP_HEAD_BYTES bytes of the batch in `buffer` as rl_batch_stamp would
 * leave them, written to `head`; `buffer` is only read, with the same checks. The rest of
 * a stamped batch is the rest of `buffer`, so a stamped copy costs one pass. */
#define RL_STAMP_HEAD_BYTES 17
int rl_batch_stamped_head(const uint8_t *buffer, size_t len, int64_t base_offset,
                          int32_t partition_leader_epoch, uint8_t *head);

/* What a walk over concatenated batches found. error is RL_OK or the first
 * failure; error_position is the byte position of the failing batch; the other
 * fields describe the valid prefix [0, valid_bytes). */
typedef struct {
    int32_t error;
    uint64_t error_position;
    uint64_t valid_bytes;
    uint64_t batch_count;
    uint64_t records_count;
    int64_t first_offset;
    int64_t last_offset;
    int64_t next_offset;
    int32_t first_leader_epoch;
    int32_t last_leader_epoch;
    uint64_t last_batch_position;
    int64_t max_timestamp;
    int64_t offset_of_max_timestamp;
} rl_scan_result;

/* Validate every batch of a produce payload (concatenated batches, offsets not
 * yet assigned). The batches must consume the buffer exactly. Returns error. */
int rl_batches_validate(const uint8_t *buffer, size_t len, size_t batch_bytes_max, rl_scan_result *out);

/* ---- Segment files and indexes, segment.c --------------------------------- */

/* Write all len bytes at position (pwrite loop, retries EINTR and short
 * writes). Returns 0 or -errno. The GIL is released while it runs. */
int rl_write_all(int fd, const uint8_t *buffer, size_t len, uint64_t position);

/* Read exactly len bytes at position. Returns 0, -errno, or 1 on end of file. */
int rl_read_exact(int fd, uint8_t *buffer, size_t len, uint64_t position);

/* Recovery scan of stored batches: validates every batch (CRC, header) and
 * that offsets are contiguous from expected_base_offset (or from the first
 * batch when expected_base_offset < 0) and leader epochs never decrease and are
 * never negative. Stops at the first bad or torn batch. */
int rl_log_scan(const uint8_t *buffer, size_t len, int64_t expected_base_offset, size_t batch_bytes_max, rl_scan_result *out);

/* Sparse index being built while scanning a segment. The rule, shared with the
 * Python append path: a batch gets an entry in both indexes when at least
 * interval_bytes of data lie between the previous indexed batch's start and
 * this batch's start (bytes_since_entry), and the first batch always gets one
 * (start with bytes_since_entry = interval_bytes). The time index entry holds
 * the running max timestamp including that batch. offset_index and time_index
 * hold capacity entries each; entry_count says how many are filled. */
typedef struct {
    int64_t segment_base_offset;
    uint64_t next_relative_entry;
    uint64_t interval_bytes;
    uint64_t bytes_since_entry;
    int64_t running_max_timestamp;
    uint8_t *offset_index;
    uint8_t *time_index;
    uint64_t capacity;
    uint64_t entry_count;
} rl_index_state;

/* The same scan over a file descriptor from position start to end, reading
 * chunk_bytes at a time (chunk_bytes >= batch_bytes_max; chunk is caller
 * memory). Here every position in *out is a file position: valid_bytes is where
 * the valid prefix ends, which is where a torn or corrupt tail is cut. When
 * index is not NULL, every valid batch also goes through the index rule above
 * (RL_ERR_BAD_ARGUMENT if capacity runs out or a relative value overflows). */
int rl_file_scan(int fd, uint64_t start, uint64_t end, int64_t expected_base_offset, size_t batch_bytes_max, uint8_t *chunk, size_t chunk_bytes, rl_index_state *index, rl_scan_result *out);

/* Sparse offset index: 12-byte entries (relative offset u32, relative entry
 * u32, file position u32), little-endian, strictly increasing in all three. */
enum {
    RL_OFFSET_INDEX_ENTRY_BYTES = 12,
    RL_TIME_INDEX_ENTRY_BYTES = 16
};

typedef enum {
    RL_KEY_OFFSET = 0,
    RL_KEY_ENTRY = 1,
    RL_KEY_TIMESTAMP = 2
} rl_key_kind;

/* Encode one offset index entry into out (12 bytes). */
void rl_offset_index_encode(uint8_t *out, uint32_t relative_offset, uint32_t relative_entry, uint32_t position);

/* Index of the last entry whose key (RL_KEY_OFFSET: relative offset,
 * RL_KEY_ENTRY: relative entry) is <= target, or -1 if none (or empty). */
int64_t rl_offset_index_lookup(const uint8_t *index, size_t entry_count, int key_kind, uint32_t target);

/* Decode entry i of an offset index. */
void rl_offset_index_entry(const uint8_t *index, size_t i, uint32_t *relative_offset, uint32_t *relative_entry, uint32_t *position);

/* Check an offset index read back from disk: strictly increasing keys and
 * positions below data_bytes. Returns RL_OK or RL_ERR_INDEX_CORRUPT. */
int rl_offset_index_check(const uint8_t *index, size_t entry_count, uint64_t data_bytes);

/* Time index: 16-byte entries (running max timestamp i64, relative offset u32,
 * file position u32), little-endian; timestamps non-decreasing. */
void rl_time_index_encode(uint8_t *out, int64_t timestamp, uint32_t relative_offset, uint32_t position);

/* Index of the last entry whose timestamp is < target, or -1. Every batch up to
 * that entry's offset has max timestamp < target, so a search starts there. */
int64_t rl_time_index_lookup(const uint8_t *index, size_t entry_count, int64_t target);

void rl_time_index_entry(const uint8_t *index, size_t i, int64_t *timestamp, uint32_t *relative_offset, uint32_t *position);

int rl_time_index_check(const uint8_t *index, size_t entry_count, uint64_t data_bytes);

/* Where a batch was found in a data file. */
typedef struct {
    uint64_t position;
    uint64_t entry_index;
    int64_t base_offset;
    int64_t last_offset;
    int64_t max_timestamp;
    int32_t partition_leader_epoch;
    uint32_t size_bytes;
} rl_batch_location;

/* Walk batch headers of an already validated data file, from a known batch at
 * position with entry number entry_index, up to end, until the batch that holds
 * target: RL_KEY_OFFSET (base <= target <= last), RL_KEY_ENTRY (entry ==
 * target) or RL_KEY_TIMESTAMP (first batch with max timestamp >= target).
 * Returns RL_OK, RL_ERR_NOT_FOUND, or an error for a malformed header / I/O. */
int rl_file_find_batch(int fd, uint64_t position, uint64_t end, uint64_t entry_index, int key_kind, int64_t target, rl_batch_location *out);

/* ---- Durability off the event loop, sync.c -------------------------------- */

/* One job: fdatasync log_fd; then, if journal_fd >= 0, append the journal_len
 * bytes of journal to it (the test-only power-loss journal); then, if mark_fd
 * >= 0, write the mark_len bytes of mark at mark_position and fdatasync it. The
 * first failing step stops the job: result is 0 or -errno, failed_step 0 or the
 * step (1 log fdatasync, 2 journal write, 3 mark write, 4 mark fdatasync). If
 * every step succeeded and drop_len > 0, the log's pages in [drop_offset,
 * drop_offset + drop_len), clean now, are dropped from the page cache
 * (POSIX_FADV_DONTNEED; advisory, its outcome is not reported). Once over, 1 is
 * added to the eventfd done_fd. The job and its buffers must stay valid until
 * then. */
typedef struct {
    int32_t log_fd;
    int32_t journal_fd;
    const uint8_t *journal;
    uint64_t journal_len;
    int32_t mark_fd;
    const uint8_t *mark;
    uint64_t mark_len;
    uint64_t mark_position;
    uint64_t drop_offset;
    uint64_t drop_len;
    int32_t done_fd;
    int32_t result;
    int32_t failed_step;
} rl_sync_job;

enum { RL_SYNC_THREADS_MAX = 16 };

/* Queue a job for the sync threads, which run without the GIL (started on
 * demand, at most RL_SYNC_THREADS_MAX). Returns 0, or -errno when nothing will
 * run (-EAGAIN: the queue is full). */
int rl_sync_submit(rl_sync_job *job);

/* How many sync threads this process has started. */
int rl_sync_threads(void);

/* Keep blocks of up to `mmap_threshold` bytes in the heap rather than in mappings of
 * their own, and up to `trim_threshold` free bytes at the heap's top. Returns 1 if
 * applied, 0 where the C library has no such settings (it is not glibc), -1 if it
 * refused them. See raftlog/allocator.py for why. */
int rl_tune_allocator(int64_t mmap_threshold, int64_t trim_threshold);

#endif
