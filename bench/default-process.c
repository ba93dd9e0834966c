/* Section 7's native half (bench/default-process.js compiles it with cc into bench/.scratch):
 *
 *   default-process serve
 *     The server the client processes connect to, in a process of its own: listens on 127.0.0.1 (port
 *     printed on stdout), accepts every connection, waits for the client's FIN and closes with a reset
 *     (SO_LINGER 0), so neither end is left in TIME_WAIT and the ephemeral ports never run out. Exits when
 *     its stdin closes (the bench is gone). Its CPU time is not what is measured.
 *
 *   default-process connect PORT COUNT WARMUP plain|five
 *     The same client loop as the Node client processes, in C: COUNT connections one after another, each
 *     closed as soon as it is connected, after WARMUP unmeasured ones. With "five", each connection first
 *     gets the five setsockopt calls setDefaultKeepalive makes on Linux, in the addon's order and with the
 *     bench's values (TCP_USER_TIMEOUT, TCP_KEEPCNT, TCP_KEEPINTVL, TCP_KEEPIDLE, SO_KEEPALIVE). Prints one
 *     JSON line: the process's CPU time per connection (getrusage) and, with "five", the time the five calls
 *     took per connection (CLOCK_MONOTONIC around them).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static double cpu_us(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_usec;
}

static int set_int(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof(value));
}

static void reset_close(int fd) {
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(fd);
}

static int serve(void) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (lfd < 0 || bind(lfd, (struct sockaddr*) &addr, sizeof(addr)) != 0 || listen(lfd, 4096) != 0 ||
      getsockname(lfd, (struct sockaddr*) &addr, &len) != 0) {
    perror("serve");
    return 1;
  }
  printf("%d\n", ntohs(addr.sin_port));
  fflush(stdout);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  ev.data.fd = 0;
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);

  struct epoll_event events[64];
  for (;;) {
    int n = epoll_wait(ep, events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      char buf[256];
      if (fd == 0) {
        if (read(0, buf, sizeof(buf)) <= 0) return 0;
      } else if (fd == lfd) {
        int c;
        while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
      } else {
        ssize_t got = read(fd, buf, sizeof(buf));
        if (got > 0 || (got < 0 && errno == EAGAIN)) continue;
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        reset_close(fd);
      }
    }
  }
}

static int connect_loop(int port, long count, long warmup, int five) {
  struct sockaddr_in target;
  memset(&target, 0, sizeof(target));
  target.sin_family = AF_INET;
  target.sin_port = htons((unsigned short) port);
  target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

  long errors = 0;
  double five_ns = 0, cpu_before = 0;
  for (long i = 0; i < warmup + count; i++) {
    if (i == warmup) {
      five_ns = 0;
      cpu_before = cpu_us();
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr*) &target, sizeof(target)) != 0) {
      errors++;
      if (fd >= 0) close(fd);
      continue;
    }
    if (five) {
      double t = now_ns();
      int failed = set_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, 90000) | set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, 5) |
                   set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, 10) | set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, 60) |
                   set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
      five_ns += now_ns() - t;
      if (failed) errors++;
    }
    close(fd);
  }
  double cpu = cpu_us() - cpu_before;
  printf("{\"count\":%ld,\"errors\":%ld,\"cpuUsPerConn\":%.4f,\"setsockoptUsPerConn\":%.4f}\n", count, errors, cpu / count,
         five ? five_ns / 1e3 / count : 0.0);
  return errors ? 1 : 0;
}

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "serve") == 0) return serve();
  if (argc == 6 && strcmp(argv[1], "connect") == 0)
    return connect_loop(atoi(argv[2]), atol(argv[3]), atol(argv[4]), strcmp(argv[5], "five") == 0);
  fprintf(stderr, "usage: %s serve | connect PORT COUNT WARMUP plain|five\n", argv[0]);
  return 2;
}
