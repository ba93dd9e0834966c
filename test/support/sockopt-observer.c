/* Reads another process's socket options through a duplicate of its descriptor (pidfd_getfd, needs
   CAP_SYS_PTRACE), so tests check what the kernel holds without going through the code under test. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

static int get(int fd, int level, int name) {
  int value = -1;
  socklen_t len = sizeof(value);
  if (getsockopt(fd, level, name, &value, &len) != 0) return -1;
  return value;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s PID FD\n", argv[0]);
    return 2;
  }
  int pidfd = (int) syscall(SYS_pidfd_open, atoi(argv[1]), 0);
  if (pidfd < 0) {
    perror("pidfd_open");
    return 1;
  }
  int fd = (int) syscall(SYS_pidfd_getfd, pidfd, atoi(argv[2]), 0);
  if (fd < 0) {
    perror("pidfd_getfd");
    return 1;
  }
  printf("{\"so_keepalive\":%d,\"tcp_keepidle\":%d,\"tcp_keepintvl\":%d,\"tcp_keepcnt\":%d,\"tcp_user_timeout\":%d}\n",
         get(fd, SOL_SOCKET, SO_KEEPALIVE), get(fd, IPPROTO_TCP, TCP_KEEPIDLE), get(fd, IPPROTO_TCP, TCP_KEEPINTVL),
         get(fd, IPPROTO_TCP, TCP_KEEPCNT), get(fd, IPPROTO_TCP, TCP_USER_TIMEOUT));
  return 0;
}
