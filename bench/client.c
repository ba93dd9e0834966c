/* Load generator for bench/server.js: keeps IN_FLIGHT connections to 127.0.0.1:port open at once; each one
 * waits for the server to accept and close it (its FIN), then resets (SO_LINGER 0, so no TIME_WAIT), and the
 * next one starts. Stops after `count` connections or `limit_ms`. Prints one JSON line.
 * Written in C so that on a 2-core machine the Node server, not the client, is the bottleneck.
 * Usage: client PORT COUNT LIMIT_MS IN_FLIGHT */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static struct sockaddr_in target;
static int ep;
static long started, finished, errors;
static int first_error;

static void open_one(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    errors++;
    if (!first_error) first_error = errno;
    return;
  }
  started++;
  if (connect(fd, (struct sockaddr*) &target, sizeof(target)) != 0 && errno != EINPROGRESS) {
    errors++;
    if (!first_error) first_error = errno;
    close(fd);
    finished++;
    return;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static void reset_close(int fd) {
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(fd);
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s PORT COUNT LIMIT_MS IN_FLIGHT\n", argv[0]);
    return 2;
  }
  int port = atoi(argv[1]);
  long count = atol(argv[2]);
  double limit_ms = atof(argv[3]);
  int in_flight = atoi(argv[4]);

  memset(&target, 0, sizeof(target));
  target.sin_family = AF_INET;
  target.sin_port = htons((unsigned short) port);
  target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ep = epoll_create1(EPOLL_CLOEXEC);

  double start = now_ms();
  double deadline = start + limit_ms;
  for (int i = 0; i < in_flight && started < count; i++) open_one();

  struct epoll_event events[64];
  while (finished < started) {
    int n = epoll_wait(ep, events, 64, 1000);
    if (n < 0 && errno != EINTR) break;
    double t = now_ms();
    if (t > deadline + 10000) break;
    int more = t < deadline;
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      char buf[64];
      ssize_t got = read(fd, buf, sizeof(buf));
      if (got > 0) continue;
      if (got < 0 && errno == EAGAIN) continue;
      if (got < 0) {
        errors++;
        if (!first_error) first_error = errno;
      }
      epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
      reset_close(fd);
      finished++;
      if (more && started < count) open_one();
    }
  }

  printf("{\"finished\":%ld,\"errors\":%ld,\"ms\":%.3f,\"firstError\":%s%s%s}\n", finished, errors, now_ms() - start,
         first_error ? "\"" : "", first_error ? strerror(first_error) : "null", first_error ? "\"" : "");
  return 0;
}
