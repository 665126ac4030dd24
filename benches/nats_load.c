/*
 * JetStream load generator on the NATS C client (libnats), compiled at bench time by
 * benches/nats_peer.py: `gcc -O2 nats_load.c -lnats`. It exists because the Python client
 * (nats-py) reaches about a third of the C client's rate, so a Python harness would measure
 * the client rather than the server (see /work/shared/design/peers.md).
 *
 *   nats_load MODE --servers NAME=URL,NAME=URL... --stream S [options]
 *
 * MODE is one of
 *   create   add the stream (file storage, --replicas R, subject S.data), wait for its leader
 *   publish  --count N records of --size bytes with js_PublishAsync, at most --inflight
 *            unacknowledged; latency of each from its publish call to its ack
 *   single   --count N records with js_Publish: one at a time, each waits for its ack
 *   consume  read --count records back from the start with a pull consumer (AckNone, like a
 *            Kafka consumer that commits nothing), --batch records per fetch
 *
 * Every mode first asks any server for the stream info, then connects to the stream
 * leader's URL (the NAME the leader reports is looked up in --servers), as a Kafka client
 * would connect to the partition leader. Prints exactly one JSON line on stdout; exits
 * non-zero with a message on stderr when something fails.
 */
#include <nats/nats.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SERVERS 8

static const char *names[MAX_SERVERS];
static const char *urls[MAX_SERVERS];
static int server_count;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, natsStatus s, jsErrCode jerr)
{
    fprintf(stderr, "nats_load: %s: %s (status %d, jetstream error %d)\n", what,
            natsStatus_GetText(s), (int)s, (int)jerr);
    nats_PrintLastErrorStack(stderr);
    exit(2);
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *sorted, long n, double fraction)
{
    long i;
    if (n <= 0)
        return 0.0;
    i = (long)(fraction * (double)n);
    if (i >= n)
        i = n - 1;
    return sorted[i];
}

static void parse_servers(char *spec)
{
    char *token, *save = NULL;
    for (token = strtok_r(spec, ",", &save); token != NULL && server_count < MAX_SERVERS;
         token = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(token, '=');
        if (eq == NULL) {
            fprintf(stderr, "nats_load: --servers wants NAME=URL, got %s\n", token);
            exit(2);
        }
        *eq = '\0';
        names[server_count] = token;
        urls[server_count] = eq + 1;
        server_count++;
    }
}

static natsConnection *connect_to(const char *url)
{
    natsConnection *nc = NULL;
    natsOptions *opts = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, url);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(opts, 5000);
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, opts);
    if (s != NATS_OK)
        die("connect", s, 0);
    natsOptions_Destroy(opts);
    return nc;
}

static jsCtx *jetstream(natsConnection *nc, jsOptions *jo)
{
    jsCtx *js = NULL;
    natsStatus s = natsConnection_JetStream(&js, nc, jo);
    if (s != NATS_OK)
        die("jetstream context", s, 0);
    return js;
}

/* Stream info from whichever server answers; retried while the cluster elects leaders. */
static jsStreamInfo *stream_info(jsCtx *js, const char *stream, double timeout_s)
{
    double deadline = now_s() + timeout_s;
    for (;;) {
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
        if (s == NATS_OK && si != NULL
            && (si->Cluster == NULL || si->Cluster->Leader == NULL
                || si->Cluster->Leader[0] != '\0'))
            return si;
        if (si != NULL)
            jsStreamInfo_Destroy(si);
        if (now_s() > deadline)
            die("stream info", s, jerr);
        usleep(50 * 1000);
    }
}

static const char *leader_url(jsStreamInfo *si, const char **leader_name)
{
    int i;
    *leader_name = (si->Cluster != NULL && si->Cluster->Leader != NULL) ? si->Cluster->Leader : "";
    for (i = 0; i < server_count; i++)
        if (strcmp(names[i], *leader_name) == 0)
            return urls[i];
    /* A single server without a cluster reports no leader: it is the leader. */
    return urls[0];
}

static void create_stream(jsCtx *js, const char *stream, int replicas)
{
    char subject[256];
    const char *subjects[1];
    jsStreamConfig cfg;
    double deadline = now_s() + 30.0;
    snprintf(subject, sizeof subject, "%s.data", stream);
    subjects[0] = subject;
    jsStreamConfig_Init(&cfg);
    cfg.Name = stream;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = replicas;
    for (;;) {
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_AddStream(&si, js, &cfg, NULL, &jerr);
        if (s == NATS_OK) {
            jsStreamInfo_Destroy(si);
            return;
        }
        /* Until the meta group has a leader, JetStream API requests fail or time out. */
        if (now_s() > deadline)
            die("add stream", s, jerr);
        usleep(100 * 1000);
    }
}

/* ---- publish: js_PublishAsync with a bounded number in flight ---- */

static double *sent_at;
static double *latency;
static uint64_t first_sequence;
static long publish_count;
static long acked;
static long failed;

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    double t = now_s();
    (void)js;
    (void)closure;
    if (pa != NULL && pae == NULL) {
        /* One publisher on a fresh stream: sequences follow publish order. */
        long index = (long)(pa->Sequence - first_sequence);
        long slot = __atomic_fetch_add(&acked, 1, __ATOMIC_RELAXED);
        if (index >= 0 && index < publish_count)
            latency[slot] = t - sent_at[index];
    } else {
        __atomic_fetch_add(&failed, 1, __ATOMIC_RELAXED);
    }
    natsMsg_Destroy(msg);
}

static void publish(jsCtx *js, const char *subject, long count, int size, double timeout_s)
{
    char *payload = malloc((size_t)size);
    jsPubOptions po;
    long i;
    double started, elapsed, sum = 0;
    natsStatus s;
    memset(payload, 'x', (size_t)size);
    sent_at = calloc((size_t)count, sizeof(double));
    latency = calloc((size_t)count, sizeof(double));
    publish_count = count;
    started = now_s();
    for (i = 0; i < count; i++) {
        sent_at[i] = now_s();
        s = js_PublishAsync(js, subject, payload, size, NULL);
        if (s != NATS_OK)
            die("publish async", s, 0);
    }
    jsPubOptions_Init(&po);
    po.MaxWait = (int64_t)(timeout_s * 1000);
    s = js_PublishAsyncComplete(js, &po);
    if (s != NATS_OK)
        die("publish async complete", s, 0);
    elapsed = now_s() - started;
    {
        long n = __atomic_load_n(&acked, __ATOMIC_SEQ_CST);
        for (i = 0; i < n; i++)
            sum += latency[i];
        qsort(latency, (size_t)n, sizeof(double), compare_doubles);
        printf("{\"records\": %ld, \"failures\": %ld, \"seconds\": %.6f, "
               "\"records_per_s\": %.1f, \"mb_per_s\": %.3f, \"p50_ms\": %.4f, "
               "\"p99_ms\": %.4f, \"mean_ms\": %.4f",
               n, __atomic_load_n(&failed, __ATOMIC_SEQ_CST), elapsed, (double)n / elapsed,
               (double)n * size / elapsed / 1e6, percentile(latency, n, 0.50) * 1000,
               percentile(latency, n, 0.99) * 1000, n ? sum / (double)n * 1000 : 0.0);
    }
    free(payload);
}

static void single(jsCtx *js, const char *subject, long count, int size)
{
    char *payload = malloc((size_t)size);
    double *samples = calloc((size_t)count, sizeof(double));
    long i;
    memset(payload, 'x', (size_t)size);
    for (i = 0; i < count; i++) {
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        double t = now_s();
        natsStatus s = js_Publish(&pa, js, subject, payload, size, NULL, &jerr);
        if (s != NATS_OK)
            die("publish", s, jerr);
        samples[i] = now_s() - t;
        jsPubAck_Destroy(pa);
    }
    qsort(samples, (size_t)count, sizeof(double), compare_doubles);
    printf("{\"records\": %ld, \"p50_ms\": %.4f, \"p99_ms\": %.4f", count,
           percentile(samples, count, 0.50) * 1000, percentile(samples, count, 0.99) * 1000);
    free(samples);
    free(payload);
}

static void consume(jsCtx *js, const char *stream, const char *subject, long count, int batch,
                    double timeout_s)
{
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    long received = 0;
    double bytes = 0, started, elapsed, deadline;
    natsStatus s;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Config.AckPolicy = js_AckNone;
    so.Config.DeliverPolicy = js_DeliverAll;
    /* Creating a consumer on an R3 stream is a round of the meta group's Raft and the
       consumer's own; on a loaded machine it can outlast one request, so try again. */
    deadline = now_s() + 30.0;
    while ((s = js_PullSubscribe(&sub, js, subject, NULL, NULL, &so, &jerr)) != NATS_OK) {
        if (now_s() > deadline)
            die("pull subscribe", s, jerr);
        usleep(100 * 1000);
    }
    started = now_s();
    deadline = started + timeout_s;
    while (received < count && now_s() < deadline) {
        natsMsgList list = {0};
        int i;
        /* Never ask for more than remain, so the last fetch cannot wait for absent ones. */
        int want = (count - received < batch) ? (int)(count - received) : batch;
        s = natsSubscription_Fetch(&list, sub, want, 5000, &jerr);
        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK)
            die("fetch", s, jerr);
        for (i = 0; i < list.Count; i++)
            bytes += natsMsg_GetDataLength(list.Msgs[i]);
        received += list.Count;
        natsMsgList_Destroy(&list);
    }
    elapsed = now_s() - started;
    printf("{\"records\": %ld, \"seconds\": %.6f, \"records_per_s\": %.1f, \"mb_per_s\": %.3f",
           received, elapsed, (double)received / elapsed, bytes / elapsed / 1e6);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
}

int main(int argc, char **argv)
{
    const char *mode, *stream = "BENCH", *leader_name;
    char *servers = NULL;
    char subject[256];
    long count = 1000;
    int size = 1024, inflight = 256, batch = 1000, replicas = 1, i;
    double timeout_s = 120.0;
    natsConnection *nc;
    jsCtx *js;
    jsOptions jo;
    jsStreamInfo *si;

    if (argc < 2) {
        fprintf(stderr, "usage: nats_load create|publish|single|consume --servers N=URL,... "
                        "[--stream S] [--count N] [--size B] [--inflight N] [--batch N] "
                        "[--replicas R] [--timeout S]\n");
        return 2;
    }
    mode = argv[1];
    for (i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--servers"))
            servers = argv[i + 1];
        else if (!strcmp(k, "--stream"))
            stream = v;
        else if (!strcmp(k, "--count"))
            count = atol(v);
        else if (!strcmp(k, "--size"))
            size = atoi(v);
        else if (!strcmp(k, "--inflight"))
            inflight = atoi(v);
        else if (!strcmp(k, "--batch"))
            batch = atoi(v);
        else if (!strcmp(k, "--replicas"))
            replicas = atoi(v);
        else if (!strcmp(k, "--timeout"))
            timeout_s = atof(v);
        else {
            fprintf(stderr, "nats_load: unknown option %s\n", k);
            return 2;
        }
    }
    if (servers == NULL) {
        fprintf(stderr, "nats_load: --servers is required\n");
        return 2;
    }
    parse_servers(servers);
    snprintf(subject, sizeof subject, "%s.data", stream);

    /* Any server answers JetStream API requests; ask the first for the stream's leader. */
    nc = connect_to(urls[0]);
    js = jetstream(nc, NULL);
    if (!strcmp(mode, "create"))
        create_stream(js, stream, replicas);
    si = stream_info(js, stream, 30.0);
    {
        const char *url = leader_url(si, &leader_name);
        char *leader = strdup(leader_name);
        first_sequence = si->State.LastSeq + 1;
        jsStreamInfo_Destroy(si);
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        if (!strcmp(mode, "create")) {
            printf("{\"leader\": \"%s\", \"leader_url\": \"%s\"}\n", leader, url);
            free(leader);
            return 0;
        }
        nc = connect_to(url);
        jsOptions_Init(&jo);
        jo.Wait = 10000;
        jo.PublishAsync.MaxPending = inflight;
        jo.PublishAsync.AckHandler = on_ack;
        jo.PublishAsync.StallWait = (int64_t)(timeout_s * 1000);
        js = jetstream(nc, &jo);
        if (!strcmp(mode, "publish"))
            publish(js, subject, count, size, timeout_s);
        else if (!strcmp(mode, "single"))
            single(js, subject, count, size);
        else if (!strcmp(mode, "consume"))
            consume(js, stream, subject, count, batch, timeout_s);
        else {
            fprintf(stderr, "nats_load: unknown mode %s\n", mode);
            return 2;
        }
        printf(", \"leader\": \"%s\", \"connected_to\": \"%s\"}\n", leader, url);
        free(leader);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    return 0;
}
