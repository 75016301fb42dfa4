/*
 * clients.c: `lzn-bench clients`: N concurrent streaming clients against a
 * running lzn-server, in C, so that the clients are not what limits the
 * measurement (bench/serve.py's Python threads parsed ~15,000 events a
 * second at most, about what one tiny-model stream makes alone).
 *
 *   lzn-bench clients --port P --clients N < bodies
 *
 * Reads one JSON request body per line from stdin (serve.py writes them:
 * streaming completions), sends body i from client thread i % N over its
 * own connection (POST /v1/completions, Connection: close), and reads the
 * server-sent events as they arrive. Prints one JSON line per request,
 * {"i": i, "t0": s, "arrivals": [s, ...], "tokens": n}: when it was sent,
 * when each event carrying new tokens arrived, and the completion tokens
 * the final chunk's usage counts; then {"wall": s}. Times are seconds on
 * one monotonic clock; serve.py turns them into the same statistics as
 * its own clients'.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

#define CLIENTS_MAX 256

typedef struct request {
  char *body;
  double t0;
  double *arrivals;
  size_t n_arrivals, cap;
  long tokens;
  int failed;
} request;

typedef struct shared {
  int port, n_clients;
  request *reqs;
  size_t n_reqs;
} shared;

static void note_arrival(request *r, double t) {
  if (r->n_arrivals == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 64;
    r->arrivals = realloc(r->arrivals, r->cap * sizeof(double));
    if (r->arrivals == NULL) bench_fail("out of memory");
  }
  r->arrivals[r->n_arrivals++] = t;
}

/* The events complete in buf[0, *len): each one's tokens noted, the bytes
 * of a partial last event kept at the start. */
static void take_events(request *r, char *buf, size_t *len, double now) {
  char *start = buf, *end;
  while ((end = memmem(start, (size_t)(buf + *len - start), "\n\n", 2)) != NULL) {
    *end = '\0';
    if (strstr(start, "\"finish_reason\":null") && strstr(start, "\"tokens\":[")) note_arrival(r, now);
    const char *usage = strstr(start, "\"completion_tokens\":");
    if (usage) r->tokens = strtol(usage + strlen("\"completion_tokens\":"), NULL, 10);
    start = end + 2;
  }
  *len = (size_t)(buf + *len - start);
  memmove(buf, start, *len);
}

static void run_request(int port, request *r) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    r->failed = 1;
    if (fd >= 0) close(fd);
    return;
  }
  char head[256];
  const size_t body_len = strlen(r->body);
  const int head_len = snprintf(head, sizeof head,
                                "POST /v1/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                                "Connection: close\r\nContent-Length: %zu\r\n\r\n",
                                body_len);
  r->t0 = bench_now();
  if (write(fd, head, (size_t)head_len) != head_len || write(fd, r->body, body_len) != (ssize_t)body_len) {
    r->failed = 1;
    close(fd);
    return;
  }
  static const size_t cap = 1 << 16;
  char *buf = malloc(cap + 1);
  if (buf == NULL) bench_fail("out of memory");
  size_t len = 0;
  for (;;) {
    const ssize_t got = read(fd, buf + len, cap - len);
    if (got <= 0) break;
    len += (size_t)got;
    buf[len] = '\0';
    take_events(r, buf, &len, bench_now());
    if (len == cap) len = 0; /* an event longer than the buffer: not one of ours */
  }
  free(buf);
  close(fd);
}

static void *client(void *arg) {
  const shared *s = ((void **)arg)[0];
  const size_t k = (size_t)(uintptr_t)((void **)arg)[1];
  for (size_t i = k; i < s->n_reqs; i += (size_t)s->n_clients) run_request(s->port, &s->reqs[i]);
  return NULL;
}

static void usage(FILE *out) {
  fprintf(out, "usage: lzn-bench clients --port P --clients N < bodies   (one JSON request body per line)\n");
}

int bench_clients_main(int argc, char **argv);
int bench_clients_main(int argc, char **argv) {
  shared s = {.port = 0, .n_clients = 1};
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      s.port = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc) {
      s.n_clients = atoi(argv[++i]);
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (s.port <= 0 || s.port > 65535 || s.n_clients < 1 || s.n_clients > CLIENTS_MAX) {
    usage(stderr);
    return 2;
  }
  size_t cap = 0;
  char *line = NULL;
  size_t line_cap = 0;
  ssize_t n;
  while ((n = getline(&line, &line_cap, stdin)) > 0) {
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    if (n == 0) continue;
    if (s.n_reqs == cap) {
      cap = cap ? 2 * cap : 64;
      s.reqs = realloc(s.reqs, cap * sizeof(request));
      if (s.reqs == NULL) bench_fail("out of memory");
    }
    s.reqs[s.n_reqs++] = (request){.body = strdup(line)};
  }
  free(line);
  pthread_t threads[CLIENTS_MAX];
  void *args[CLIENTS_MAX][2];
  const double t0 = bench_now();
  for (int k = 0; k < s.n_clients; k++) {
    args[k][0] = &s, args[k][1] = (void *)(uintptr_t)k;
    if (pthread_create(&threads[k], NULL, client, args[k]) != 0) bench_fail("pthread_create failed");
  }
  for (int k = 0; k < s.n_clients; k++) pthread_join(threads[k], NULL);
  const double wall = bench_now() - t0;
  int failed = 0;
  for (size_t i = 0; i < s.n_reqs; i++) {
    const request *r = &s.reqs[i];
    failed |= r->failed;
    printf("{\"i\": %zu, \"t0\": %.9f, \"tokens\": %ld, \"failed\": %d, \"arrivals\": [", i, r->t0, r->tokens,
           r->failed);
    for (size_t a = 0; a < r->n_arrivals; a++) printf("%s%.9f", a ? ", " : "", r->arrivals[a]);
    printf("]}\n");
    free(r->body), free(r->arrivals);
  }
  printf("{\"wall\": %.9f}\n", wall);
  free(s.reqs);
  return failed ? 1 : 0;
}
