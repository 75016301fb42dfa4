/*
 * http.c: lzn-server's HTTP side on libmicrohttpd: one thread per
 * connection (a handler may block while its request is generated, and
 * poll the socket meanwhile to notice a client that left), bodies
 * collected up to --max-body, the API key checked, routes' replies sent
 * as they are or streamed as server-sent events (chunked); the connection
 * threads run at --http-nice, below the decode thread.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "server.h"

const int srv_counted_codes[SRV_N_CODES] = {200, 400, 401, 404, 405, 413, 500, 501, 503, 0};

/* One request's state, kept across libmicrohttpd's calls to the handler. */
struct srv_conn {
  struct MHD_Connection *connection;
  char *body;
  size_t len, cap;
  int too_big;
};

/* Set on a connection's thread (one thread per connection) once its client
 * is known to have left: libmicrohttpd then logs the close that follows as
 * an "application error", which it is not, so log_mhd drops what this
 * thread logs from there on (a client that hangs up mid-stream is routine;
 * a soak of aborted streams wrote a line each). */
static _Thread_local int client_left;

static int conn_gone(srv_conn *conn) {
  const union MHD_ConnectionInfo *info =
      MHD_get_connection_info(conn->connection, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (!info) return 1;
  /* The client's FIN or RST: readable with nothing to read, or a hang-up. */
  struct pollfd p = {info->connect_fd, POLLIN | POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return 0;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return 1;
  char c;
  return recv(info->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

int srv_conn_gone(srv_conn *conn) {
  const int gone = conn_gone(conn);
  if (gone) client_left = 1;
  return gone;
}

static void count_status(srv_app *app, int status) {
  int i = 0;
  while (i < SRV_N_CODES - 1 && srv_counted_codes[i] != status) i++;
  atomic_fetch_add(&app->http_requests[i], 1);
}

/* Compares in time that depends on the lengths only, not on where the
 * strings first differ (an attacker timing the 401s learns nothing). */
static int same_secret(const char *given, const char *expected) {
  const size_t n = strlen(given), m = strlen(expected);
  unsigned char diff = n != m;
  for (size_t i = 0; i < m; i++) diff |= (unsigned char)expected[i] ^ (unsigned char)(i < n ? given[i] : 0);
  return diff == 0;
}

static int authorised(const srv_app *app, struct MHD_Connection *connection) {
  if (!app->opt.api_key) return 1;
  const char *h = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  if (!h || strncmp(h, "Bearer ", 7) != 0) return 0;
  return same_secret(h + 7, app->opt.api_key);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  const ssize_t n = srv_stream_read(cls, buf, max);
  if (n > 0) return n;
  return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls) { srv_stream_free(cls); }

static enum MHD_Result send_reply(srv_app *app, struct MHD_Connection *connection, srv_reply *reply) {
  struct MHD_Response *response;
  if (reply->stream) {
    response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, reply->stream,
                                                 stream_free);
    if (!response) srv_stream_free(reply->stream);
    else MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
  } else {
    response = MHD_create_response_from_buffer(reply->len, reply->body, MHD_RESPMEM_MUST_FREE);
    if (!response) free(reply->body);
  }
  if (!response) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, reply->content_type);
  if (reply->header_name) MHD_add_response_header(response, reply->header_name, reply->header_value);
  count_status(app, reply->status);
  const enum MHD_Result ok = MHD_queue_response(connection, (unsigned)reply->status, response);
  MHD_destroy_response(response);
  return ok;
}

/* Lowers the calling connection thread's priority to --http-nice, once per
 * thread (Linux: a thread's own nice value). On two cores shared with 16
 * streaming clients, the connection threads' system calls (a wake, a
 * select, a send per event) took the decode thread's core often enough to
 * make its steps 1.5x as long as alone; at nice 19 the decode loop runs
 * first, the threads take the time it leaves and send what has piled up
 * (several tokens an event), and tiny-llama with 16 clients went from
 * 21.8-24.1k to 30.6-32.8k tokens/s (bench/RESULTS.md, 2026-12-07). A
 * failure leaves the priority as it was: it is a matter of speed only. */
static void lower_thread_priority(const srv_app *app) {
  static _Thread_local int done;
  if (done || app->opt.http_nice <= 0) return;
  done = 1;
  (void)setpriority(PRIO_PROCESS, (id_t)gettid(), app->opt.http_nice);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *connection, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls) {
  (void)version;
  srv_app *app = cls;
  srv_conn *conn = *con_cls;
  lower_thread_priority(app);
  if (!conn) { /* the headers are in: decide what can be decided before the body */
    if (!(conn = calloc(1, sizeof *conn))) return MHD_NO;
    conn->connection = connection;
    *con_cls = conn;
    atomic_fetch_add(&app->in_flight, 1);
    const char *length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length && strtoull(length, NULL, 10) > app->opt.max_body) conn->too_big = 1;
    else return MHD_YES;
  }
  if (*upload_data_size > 0) { /* a piece of the body */
    if (!conn->too_big && conn->len + *upload_data_size > app->opt.max_body) conn->too_big = 1;
    if (!conn->too_big) {
      if (conn->len + *upload_data_size + 1 > conn->cap) {
        size_t cap = conn->cap ? conn->cap : 4096;
        while (cap < conn->len + *upload_data_size + 1) cap *= 2;
        char *grown = realloc(conn->body, cap);
        if (!grown) return MHD_NO;
        conn->body = grown, conn->cap = cap;
      }
      memcpy(conn->body + conn->len, upload_data, *upload_data_size);
      conn->len += *upload_data_size;
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  srv_reply reply;
  memset(&reply, 0, sizeof reply);
  if (conn->too_big) {
    srv_reply_error(&reply, 413, "invalid_request_error", "the body is larger than --max-body (%zu bytes)",
                    app->opt.max_body);
  } else if (strcmp(url, "/health") != 0 && !authorised(app, connection)) {
    srv_reply_error(&reply, 401, "authentication_error", "a missing or wrong API key: send the header "
                    "'Authorization: Bearer KEY'");
  } else {
    const srv_http_request req = {
        method, url, MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "action"),
        conn->body ? conn->body : "", conn->len, conn};
    if (conn->body) conn->body[conn->len] = '\0';
    srv_route(app, &req, &reply);
  }
  if (!reply.body && !reply.stream) return MHD_NO; /* the client left, or no memory */
  return send_reply(app, connection, &reply);
}

static void completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                      enum MHD_RequestTerminationCode code) {
  (void)connection, (void)code;
  srv_app *app = cls;
  srv_conn *conn = *con_cls;
  if (conn) free(conn->body), free(conn), atomic_fetch_sub(&app->in_flight, 1);
  *con_cls = NULL;
}

static void log_mhd(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  if (client_left) return;
  fputs("lzn-server: libmicrohttpd: ", stderr);
  vfprintf(stderr, fmt, ap);
}

struct MHD_Daemon *srv_http_start(srv_app *app, char error[256]) {
  struct sockaddr_storage addr;
  memset(&addr, 0, sizeof addr);
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                   MHD_USE_ERROR_LOG;
  struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
  if (inet_pton(AF_INET, app->opt.host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET, v4->sin_port = htons((uint16_t)app->opt.port);
  } else if (inet_pton(AF_INET6, app->opt.host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6, v6->sin6_port = htons((uint16_t)app->opt.port);
    flags |= MHD_USE_IPv6;
  } else {
    snprintf(error, 256, "--host %s is not an IPv4 or IPv6 address", app->opt.host);
    return NULL;
  }
  struct MHD_Daemon *d = MHD_start_daemon(
      flags, (uint16_t)app->opt.port, NULL, NULL, handle, app,
      MHD_OPTION_EXTERNAL_LOGGER, log_mhd, app,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)app->opt.timeout_s,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)app->opt.max_connections,
      MHD_OPTION_NOTIFY_COMPLETED, completed, app,
      MHD_OPTION_END);
  if (!d) snprintf(error, 256, "cannot listen on %s:%d (in use, or not an address of this machine)",
                   app->opt.host, app->opt.port);
  return d;
}

int srv_http_port(struct MHD_Daemon *daemon) {
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
  return info ? info->port : -1;
}

void srv_http_quiesce(struct MHD_Daemon *daemon) {
  const MHD_socket fd = MHD_quiesce_daemon(daemon);
  if (fd != MHD_INVALID_SOCKET) close(fd);
}

void srv_http_stop(struct MHD_Daemon *daemon) {
  if (daemon) MHD_stop_daemon(daemon);
}
