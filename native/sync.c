/* Durability off the event loop: fdatasync jobs run by C threads that never take
 * the GIL, each signalling an eventfd when it is over. See raftlog_native.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "raftlog_native.h"

#define QUEUE_CAPACITY 4096

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wanted = PTHREAD_COND_INITIALIZER;
static rl_sync_job *queue[QUEUE_CAPACITY];
static size_t head, count;
static int threads, idle;
static pthread_once_t fork_hook_once = PTHREAD_ONCE_INIT;

static int retry_fdatasync(int fd) {
    while (fdatasync(fd) != 0) {
        if (errno != EINTR) return -errno;
    }
    return 0;
}

static int write_all_at(int fd, const uint8_t *data, size_t len, uint64_t position, int append) {
    while (len > 0) {
        ssize_t n = append ? write(fd, data, len) : pwrite(fd, data, len, (off_t)position);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        data += n;
        len -= (size_t)n;
        position += (uint64_t)n;
    }
    return 0;
}

static void run_job(rl_sync_job *job) {
    int result = retry_fdatasync(job->log_fd);
    int step = result ? 1 : 0;
    if (!result && job->journal_fd >= 0) {
        result = write_all_at(job->journal_fd, job->journal, job->journal_len, 0, 1);
        step = result ? 2 : 0;
    }
    if (!result && job->mark_fd >= 0) {
        result = write_all_at(job->mark_fd, job->mark, job->mark_len, job->mark_position, 0);
        step = result ? 3 : 0;
        if (!result) {
            result = retry_fdatasync(job->mark_fd);
            step = result ? 4 : 0;
        }
    }
    if (!result && job->drop_len > 0) {
        /* Before the signal: the caller closes log_fd once it is woken. */
        (void)posix_fadvise(job->log_fd, (off_t)job->drop_offset, (off_t)job->drop_len,
                            POSIX_FADV_DONTNEED);
    }
    job->result = result;
    job->failed_step = step;
    uint64_t one = 1;
    /* An eventfd write of 8 bytes cannot be short; EINTR is retried. */
    while (write(job->done_fd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

static void *worker(void *unused) {
    (void)unused;
    pthread_setname_np(pthread_self(), "raftlog-sync"); /* for top -H, and the tests */
    pthread_mutex_lock(&lock);
    for (;;) {
        while (count == 0) {
            idle++;
            pthread_cond_wait(&wanted, &lock);
            idle--;
        }
        rl_sync_job *job = queue[head];
        head = (head + 1) % QUEUE_CAPACITY;
        count--;
        pthread_mutex_unlock(&lock);
        run_job(job);
        pthread_mutex_lock(&lock);
    }
    return NULL;
}

/* A forked child has none of the parent's threads: it starts an empty pool. */
static void reset_in_child(void) {
    pthread_mutex_init(&lock, NULL);
    pthread_cond_init(&wanted, NULL);
    head = count = 0;
    threads = idle = 0;
}

static void install_fork_hook(void) { pthread_atfork(NULL, NULL, reset_in_child); }

int rl_sync_submit(rl_sync_job *job) {
    pthread_once(&fork_hook_once, install_fork_hook);
    pthread_mutex_lock(&lock);
    if (count == QUEUE_CAPACITY) {
        pthread_mutex_unlock(&lock);
        return -EAGAIN;
    }
    if (idle == 0 && threads < RL_SYNC_THREADS_MAX) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attributes, 64 * 1024);
        /* Signals stay with Python's threads: the new one starts with all blocked. */
        sigset_t all, previous;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &previous);
        int error = pthread_create(&thread, &attributes, worker, NULL);
        pthread_sigmask(SIG_SETMASK, &previous, NULL);
        pthread_attr_destroy(&attributes);
        if (error == 0) {
            threads++;
        } else if (threads == 0) {
            pthread_mutex_unlock(&lock);
            return -error;
        }
    }
    queue[(head + count) % QUEUE_CAPACITY] = job;
    count++;
    pthread_cond_signal(&wanted);
    pthread_mutex_unlock(&lock);
    return 0;
}

int rl_sync_threads(void) {
    pthread_mutex_lock(&lock);
    int result = threads;
    pthread_mutex_unlock(&lock);
    return result;
}
