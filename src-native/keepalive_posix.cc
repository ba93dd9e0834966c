#include "keepalive.h"
#include "address.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <new>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <unordered_map>
#include <vector>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ > 28)
// Built against a glibc newer than 2.28 (Debian 12 here; the release builds use manylinux_2_28), two symbols
// would make the binary need a newer system than check-prebuilds.js allows: fstat (fstat64@GLIBC_2.33) and
// the std::allocator check of GCC 11+ (std::__throw_bad_array_new_length@GLIBCXX_3.4.29). statx is glibc 2.28.
static int ka_fstat(int fd, struct stat* st) {
  struct statx sx;
  if (statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_INO, &sx) != 0) return -1;
  st->st_mode = sx.stx_mode;
  st->st_ino = sx.stx_ino;
  return 0;
}

#if defined(__GLIBCXX__)
namespace std {
[[noreturn]] void __throw_bad_array_new_length() { __throw_bad_alloc(); }
}
#endif
#else
static int ka_fstat(int fd, struct stat* st) { return fstat(fd, st); }
#endif

#if defined(__APPLE__)
#define KA_OPT_IDLE TCP_KEEPALIVE
#define KA_OPT_IDLE_NAME "setsockopt(TCP_KEEPALIVE)"
#elif defined(TCP_KEEPIDLE)
#define KA_OPT_IDLE TCP_KEEPIDLE
#define KA_OPT_IDLE_NAME "setsockopt(TCP_KEEPIDLE)"
#endif

#if defined(TCP_USER_TIMEOUT)
#define KA_OPT_USER_TIMEOUT TCP_USER_TIMEOUT
#define KA_USER_TIMEOUT_UNIT_MS 1
#define KA_OPT_USER_TIMEOUT_NAME "setsockopt(TCP_USER_TIMEOUT)"
#elif defined(TCP_RXT_CONNDROPTIME)
#define KA_OPT_USER_TIMEOUT TCP_RXT_CONNDROPTIME
#define KA_USER_TIMEOUT_UNIT_MS 1000
#define KA_OPT_USER_TIMEOUT_NAME "setsockopt(TCP_RXT_CONNDROPTIME)"
#endif

// What the last look at a descriptor number found. A connected TCP socket or a listener keeps its addresses
// while it is open, so an incremental scan skips it, and anything that is not a TCP socket; a free number or
// an unconnected socket is looked at again. Cached answers are verified before use, so a number closed and
// reused since costs one fstat per known descriptor (the inode tells), never a wrong descriptor.
enum ka_fd_kind : unsigned char { KA_FD_UNSEEN = 0, KA_FD_SETTLED, KA_FD_OTHER };

struct ka_fd {
  ka_fd_kind kind;
  ino_t ino;
  ka_key key;
};

struct ka_context {
  uv_loop_t* loop;
  ka_stats stats;
  std::vector<ka_fd> fds;
  std::unordered_map<ka_key, int> sockets;
};

ka_context* ka_context_new(uv_loop_t* loop) {
  ka_context* ctx = new (std::nothrow) ka_context;
  if (ctx == nullptr) return nullptr;
  ctx->loop = loop;
  ctx->stats = {0, 0, 0};
  return ctx;
}

void ka_context_free(ka_context* ctx) {
  delete ctx;
}

void ka_context_stats(const ka_context* ctx, ka_stats* out) {
  *out = ctx->stats;
}

static int fail(ka_status* status, const char* syscall, int sys_errno) {
  status->err = uv_translate_sys_error(sys_errno);
  status->sys_errno = sys_errno;
  status->syscall = syscall;
  return status->err;
}

#if defined(__linux__)
#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
// MPTCP sockets (IPPROTO_MPTCP, e.g. under mptcpize) are TCP for our purpose, but the kernel's MPTCP layer
// takes only some TCP-level options: Linux 6.18 sets and reads TCP_KEEPIDLE/INTVL/CNT and SO_KEEPALIVE, but
// not TCP_USER_TIMEOUT (setsockopt ENOPROTOOPT, getsockopt EOPNOTSUPP); older kernels take fewer. Only
// asked after such a failure, so plain TCP pays nothing for it.
static bool is_mptcp(int fd) {
  int protocol = 0;
  socklen_t len = sizeof(protocol);
  return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 && protocol == IPPROTO_MPTCP;
}
#else
static bool is_mptcp(int) {
  return false;
}
#endif

static bool not_supported(int sys_errno) {
  return sys_errno == EOPNOTSUPP || sys_errno == ENOPROTOOPT;
}

// A failed setsockopt: an option the socket's protocol cannot take is KA_EUNSUPPORTED_BY_SOCKET, anything
// else the OS error.
static int fail_set(int fd, ka_status* status, const char* syscall, int sys_errno) {
  if (not_supported(sys_errno) && is_mptcp(fd)) {
    status->err = KA_EUNSUPPORTED_BY_SOCKET;
    status->sys_errno = sys_errno;
    status->syscall = syscall;
    return status->err;
  }
  return fail(status, syscall, sys_errno);
}

static inline int unsupported(ka_status* status, const char* syscall) {
  status->err = KA_EUNSUPPORTED;
  status->sys_errno = 0;
  status->syscall = syscall;
  return status->err;
}

static int seconds_up(int64_t ms) {
  return (int) (((int64_t) ms + 999) / 1000);
}

static int set_int(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof(value));
}

static int get_int(int fd, int level, int name, int* value) {
  socklen_t len = sizeof(*value);
  return getsockopt(fd, level, name, value, &len);
}

// 0 with *out filled, or the errno of getsockname (EBADF: a free number, ENOTSOCK: not a socket).
static int local_of(ka_context* ctx, int fd, ka_addr* out) {
  ctx->stats.socket_calls++;
  struct sockaddr_storage storage;
  socklen_t len = sizeof(storage);
  if (getsockname(fd, (struct sockaddr*) &storage, &len) != 0) return errno;
  return addr_from_sockaddr(&storage, out) ? 0 : EAFNOSUPPORT;
}

static bool peer_of(ka_context* ctx, int fd, ka_addr* out) {
  ctx->stats.socket_calls++;
  struct sockaddr_storage storage;
  socklen_t len = sizeof(storage);
  return getpeername(fd, (struct sockaddr*) &storage, &len) == 0 && addr_from_sockaddr(&storage, out);
}

static bool is_listening(ka_context* ctx, int fd) {
  ctx->stats.socket_calls++;
  int listening = 0;
  return get_int(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening) == 0 && listening != 0;
}

static bool is_stream(ka_context* ctx, int fd) {
  ctx->stats.socket_calls++;
  int type = 0;
  return get_int(fd, SOL_SOCKET, SO_TYPE, &type) == 0 && type == SOCK_STREAM;
}

static bool matches(ka_context* ctx, int fd, const ka_addr* local, const ka_addr* remote) {
  ka_addr found;
  if (local_of(ctx, fd, &found) != 0 || !addr_equal(&found, local)) return false;
  if (remote == nullptr) return is_listening(ctx, fd);
  return peer_of(ctx, fd, &found) && addr_equal(&found, remote);
}

static void forget(ka_context* ctx, int fd) {
  ka_fd* known = &ctx->fds[fd];
  if (!known->key.empty()) {
    auto found = ctx->sockets.find(known->key);
    if (found != ctx->sockets.end() && found->second == fd) ctx->sockets.erase(found);
    known->key.clear();
  }
  known->kind = KA_FD_UNSEEN;
}

// Looks at one descriptor number; false when it is free.
static bool describe(ka_context* ctx, int fd) {
  if ((size_t) fd >= ctx->fds.size()) ctx->fds.resize((size_t) fd + 64);
  ctx->stats.handles_visited++;
  forget(ctx, fd);
  ka_fd* known = &ctx->fds[fd];
  ctx->stats.socket_calls++;
  struct stat st;
  if (ka_fstat(fd, &st) != 0) return errno != EBADF;
  known->ino = st.st_ino;
  if (!S_ISSOCK(st.st_mode)) {
    known->kind = KA_FD_OTHER;
    return true;
  }
  ka_addr local;
  int err = local_of(ctx, fd, &local);
  if (err == EBADF) return false;
  if (err != 0 || !is_stream(ctx, fd)) {
    known->kind = err == ENOTSOCK || err == EAFNOSUPPORT || err == 0 ? KA_FD_OTHER : KA_FD_UNSEEN;
    return true;
  }
  ka_addr remote;
  if (peer_of(ctx, fd, &remote)) {
    known->key = key_of(&local, &remote);
  } else if (is_listening(ctx, fd)) {
    known->key = key_of(&local, nullptr);
  } else {
    return true;
  }
  known->kind = KA_FD_SETTLED;
  ctx->sockets[known->key] = fd;
  return true;
}

static bool same_inode(ka_context* ctx, int fd) {
  ctx->stats.socket_calls++;
  struct stat st;
  return ka_fstat(fd, &st) == 0 && st.st_ino == ctx->fds[fd].ino;
}

static bool list_fds(std::vector<int>* out) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) dir = opendir("/dev/fd");
  if (dir == nullptr) return false;
  int own = dirfd(dir);
  while (struct dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long fd = strtol(entry->d_name, &end, 10);
    if (end != entry->d_name && *end == '\0' && fd >= 0 && fd < (1L << 30) && fd != own) out->push_back((int) fd);
  }
  closedir(dir);
  return true;
}

// New descriptors take the lowest free number: an incremental scan looks again at every number not known to
// hold a settled socket (unconnected sockets; files, pipes and the like by one fstat, as they come and go) and
// at the first KA_FREE_RUN numbers of each run of free ones, up to the highest known and KA_FREE_RUN past it.
// A descriptor far past the highest known (dup2 to a high number) is found only by the full scan.
// It makes no system call for a known connection or listener, so finding a new socket costs about the same with
// 20 or 2000 connections open. A full scan lists the table.
#define KA_FREE_RUN 4

static void scan(ka_context* ctx, bool full) {
  ctx->stats.walks++;
  std::vector<int> listed;
  if (full && list_fds(&listed)) {
    std::vector<bool> open(ctx->fds.size(), false);
    for (int fd : listed) {
      describe(ctx, fd);
      if ((size_t) fd < open.size()) open[fd] = true;
    }
    for (size_t fd = 0; fd < open.size(); fd++) {
      if (!open[fd] && ctx->fds[fd].kind != KA_FD_UNSEEN) forget(ctx, (int) fd);
    }
    return;
  }
  int free_run = 0;
  for (int fd = 0;; fd++) {
    if (free_run >= KA_FREE_RUN) {
      // New descriptors fill a run of free numbers from its bottom: skip the rest of the run.
      size_t next = (size_t) fd;
      while (next < ctx->fds.size() && ctx->fds[next].kind == KA_FD_UNSEEN) next++;
      if (next >= ctx->fds.size()) break;
      fd = (int) next;
      free_run = 0;
    }
    bool known = !full && (size_t) fd < ctx->fds.size();
    if ((known && ctx->fds[fd].kind == KA_FD_SETTLED) || (known && ctx->fds[fd].kind == KA_FD_OTHER && same_inode(ctx, fd)) || describe(ctx, fd)) {
      free_run = 0;
    } else {
      free_run++;
    }
  }
}

// One fstat per known descriptor: a number whose inode changed (closed and taken again) or that is free now is
// looked at again.
static void recheck(ka_context* ctx) {
  ctx->stats.walks++;
  for (size_t fd = 0; fd < ctx->fds.size(); fd++) {
    if (ctx->fds[fd].kind != KA_FD_UNSEEN && !same_inode(ctx, (int) fd)) describe(ctx, (int) fd);
  }
}

static bool lookup(ka_context* ctx, const ka_key& key, const ka_addr* local, const ka_addr* remote, int* out) {
  auto found = ctx->sockets.find(key);
  if (found == ctx->sockets.end()) return false;
  if (!matches(ctx, found->second, local, remote)) {
    forget(ctx, found->second);
    return false;
  }
  *out = found->second;
  return true;
}

static int fail_code(ka_status* status, const char* syscall, int err) {
  status->err = err;
  status->sys_errno = 0;
  status->syscall = syscall;
  return status->err;
}

// A runtime that exposes no descriptor (Deno; Bun's HTTP server): the descriptor whose getsockname and
// getpeername (or SO_ACCEPTCONN, for a listener) match the addresses, found in this process's descriptor
// table, cached by addresses, and verified on every use.
static int resolve_by_address(ka_context* ctx, const ka_endpoint* endpoint, ka_socket* out, ka_status* status) {
  ka_addr local;
  ka_addr remote;
  const ka_addr* peer;
  if (!endpoint_addrs(endpoint, &local, &remote, &peer)) return fail_code(status, "inet_pton", UV_EINVAL);
  ka_key key = key_of(&local, peer);
  int fd = -1;
  if (!lookup(ctx, key, &local, peer, &fd)) {
    scan(ctx, false);
    if (!lookup(ctx, key, &local, peer, &fd)) {
      recheck(ctx);
      if (!lookup(ctx, key, &local, peer, &fd)) {
        scan(ctx, true);
        if (!lookup(ctx, key, &local, peer, &fd)) return fail_code(status, "getsockname", KA_ENOTFOUND);
      }
    }
  }
  *out = fd;
  return 0;
}

int ka_resolve(ka_context* ctx, const ka_endpoint* endpoint, ka_socket* out, ka_status* status) {
  int fd = endpoint->fd;
  if (fd < 0 && endpoint->local_address != nullptr) return resolve_by_address(ctx, endpoint, out, status);
  ctx->stats.socket_calls += 2;
  if (fd < 0) return fail(status, "fstat", EBADF);

  int type = 0;
  if (get_int(fd, SOL_SOCKET, SO_TYPE, &type) != 0) return fail(status, "getsockopt(SO_TYPE)", errno);

  struct sockaddr_storage addr;
  socklen_t len = sizeof(addr);
  if (getsockname(fd, (struct sockaddr*) &addr, &len) != 0) return fail(status, "getsockname", errno);

  if (type != SOCK_STREAM || (addr.ss_family != AF_INET && addr.ss_family != AF_INET6)) {
    status->err = KA_ENOTTCP;
    status->sys_errno = 0;
    status->syscall = "getsockname";
    return status->err;
  }

  *out = fd;
  return 0;
}

// Options go in this order so that, on an MPTCP socket, the one no kernel takes (TCP_USER_TIMEOUT) fails
// first and the keepalive trio, which kernels added together, fails before any of them is set: a call that
// fails with KA_EUNSUPPORTED_BY_SOCKET has then changed nothing. `applied` reports what was set regardless.
// With onoff 0, SO_KEEPALIVE goes off first and the fields given (none, from the public API; a listening
// socket's earlier values, when the process-wide default hands it back) are written after it, so keepalive
// is never on with a mix of old and new timing.
int ka_apply(ka_socket sock, const ka_values* v, ka_status* status) {
  int fd = (int) sock;
  status->applied = 0;

  if (!v->onoff) {
    if (set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 0) != 0) return fail_set(fd, status, "setsockopt(SO_KEEPALIVE)", errno);
    status->applied |= KA_APPLIED_ONOFF;
  }

  {
    if (v->usertimeout != KA_UNSET) {
#if defined(KA_OPT_USER_TIMEOUT)
      int value = KA_USER_TIMEOUT_UNIT_MS == 1 ? (int) v->usertimeout : seconds_up(v->usertimeout);
      if (set_int(fd, IPPROTO_TCP, KA_OPT_USER_TIMEOUT, value) != 0) return fail_set(fd, status, KA_OPT_USER_TIMEOUT_NAME, errno);
      status->applied |= KA_APPLIED_USERTIMEOUT;
#else
      return unsupported(status, "setsockopt(usertimeout)");
#endif
    }

    if (v->keepalivecount != KA_UNSET) {
#if defined(TCP_KEEPCNT)
      if (set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, (int) v->keepalivecount) != 0) return fail_set(fd, status, "setsockopt(TCP_KEEPCNT)", errno);
      status->applied |= KA_APPLIED_COUNT;
#else
      return unsupported(status, "setsockopt(TCP_KEEPCNT)");
#endif
    }

    if (v->keepaliveinterval != KA_UNSET) {
#if defined(TCP_KEEPINTVL)
      if (set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, seconds_up(v->keepaliveinterval)) != 0) return fail_set(fd, status, "setsockopt(TCP_KEEPINTVL)", errno);
      status->applied |= KA_APPLIED_INTERVAL;
#else
      return unsupported(status, "setsockopt(TCP_KEEPINTVL)");
#endif
    }

    if (v->keepalivetime != KA_UNSET) {
#if defined(KA_OPT_IDLE)
      if (set_int(fd, IPPROTO_TCP, KA_OPT_IDLE, seconds_up(v->keepalivetime)) != 0) return fail_set(fd, status, KA_OPT_IDLE_NAME, errno);
      status->applied |= KA_APPLIED_TIME;
#else
      return unsupported(status, "setsockopt(TCP_KEEPIDLE)");
#endif
    }
  }

  if (v->onoff) {
    if (set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1) != 0) return fail_set(fd, status, "setsockopt(SO_KEEPALIVE)", errno);
    status->applied |= KA_APPLIED_ONOFF;
  }
  return 0;
}

int ka_probe(const ka_values* v, ka_values* out, ka_status* status) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    int sys_errno = errno;
    status->applied = 0;
    return fail(status, "socket", sys_errno);
  }
  int err = ka_apply((ka_socket) fd, v, status);
  if (err == 0) err = ka_read((ka_socket) fd, out, status);
  close(fd);
  return err;
}

int ka_queued(ka_socket sock, int64_t* out, ka_status* status) {
#if defined(__linux__)
  struct tcp_info info;
  socklen_t len = sizeof(info);
  memset(&info, 0, sizeof(info));
  if (getsockopt((int) sock, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return fail(status, "getsockopt(TCP_INFO)", errno);
  *out = info.tcpi_state == 10 /* TCP_LISTEN */ ? (int64_t) info.tcpi_unacked : -1;
#else
  (void) sock;
  (void) status;
  *out = -1;
#endif
  return 0;
}

// A value the socket cannot report (an MPTCP socket's TCP_USER_TIMEOUT) is KA_UNSET; other failures are errors.
static int read_option(int fd, int level, int name, const char* syscall, int* mptcp, int* value, ka_status* status) {
  if (get_int(fd, level, name, value) == 0) return 1;
  int sys_errno = errno;
  if (not_supported(sys_errno)) {
    if (*mptcp < 0) *mptcp = is_mptcp(fd) ? 1 : 0;
    if (*mptcp) return 0;
  }
  return fail(status, syscall, sys_errno);
}

int ka_read(ka_socket sock, ka_values* out, ka_status* status) {
  int fd = (int) sock;
  int value = 0;
  int mptcp = -1;
  int got;

  if (get_int(fd, SOL_SOCKET, SO_KEEPALIVE, &value) != 0) return fail(status, "getsockopt(SO_KEEPALIVE)", errno);
  out->onoff = value ? 1 : 0;

#if defined(KA_OPT_IDLE)
  if ((got = read_option(fd, IPPROTO_TCP, KA_OPT_IDLE, "getsockopt(TCP_KEEPIDLE)", &mptcp, &value, status)) < 0) return status->err;
  out->keepalivetime = got ? (int64_t) value * 1000 : KA_UNSET;
#else
  out->keepalivetime = KA_UNSET;
#endif

#if defined(TCP_KEEPINTVL)
  if ((got = read_option(fd, IPPROTO_TCP, TCP_KEEPINTVL, "getsockopt(TCP_KEEPINTVL)", &mptcp, &value, status)) < 0) return status->err;
  out->keepaliveinterval = got ? (int64_t) value * 1000 : KA_UNSET;
#else
  out->keepaliveinterval = KA_UNSET;
#endif

#if defined(TCP_KEEPCNT)
  if ((got = read_option(fd, IPPROTO_TCP, TCP_KEEPCNT, "getsockopt(TCP_KEEPCNT)", &mptcp, &value, status)) < 0) return status->err;
  out->keepalivecount = got ? value : KA_UNSET;
#else
  out->keepalivecount = KA_UNSET;
#endif

#if defined(KA_OPT_USER_TIMEOUT)
  if ((got = read_option(fd, IPPROTO_TCP, KA_OPT_USER_TIMEOUT, "getsockopt(usertimeout)", &mptcp, &value, status)) < 0) return status->err;
  out->usertimeout = got ? (int64_t) (unsigned) value * KA_USER_TIMEOUT_UNIT_MS : KA_UNSET;
#else
  out->usertimeout = KA_UNSET;
#endif

  return 0;
}

static void add_raw(ka_tcp_info* out, const char* name, double value) {
  if (out->raw_count < KA_TCP_RAW_MAX) out->raw[out->raw_count++] = {name, value};
}

static void clear_tcp_info(ka_tcp_info* out) {
  out->state = KA_TCP_UNKNOWN;
  for (double& field : out->fields) field = -1;
  out->raw_count = 0;
}

#if defined(__APPLE__) || defined(__FreeBSD__)
// FreeBSD's and macOS' TCPS_* numbering: CLOSED, LISTEN, SYN_SENT, SYN_RECEIVED, ESTABLISHED, CLOSE_WAIT,
// FIN_WAIT_1, CLOSING, LAST_ACK, FIN_WAIT_2, TIME_WAIT.
static const int ka_bsd_states[] = {KA_TCP_CLOSED, KA_TCP_LISTEN, KA_TCP_SYN_SENT, KA_TCP_SYN_RECEIVED, KA_TCP_ESTABLISHED, KA_TCP_CLOSE_WAIT,
                                    KA_TCP_FIN_WAIT_1, KA_TCP_CLOSING, KA_TCP_LAST_ACK, KA_TCP_FIN_WAIT_2, KA_TCP_TIME_WAIT};
#endif

#if defined(__linux__)
// The kernel's struct tcp_info (include/uapi/linux/tcp.h, up to Linux 6.7), not glibc's or musl's older copy:
// the kernel fills as much as both it and the caller know and says how much, so a field beyond that length
// was not reported by this kernel and stays undefined.
struct ka_linux_tcp_info {
  uint8_t tcpi_state, tcpi_ca_state, tcpi_retransmits, tcpi_probes, tcpi_backoff, tcpi_options, tcpi_wscale, tcpi_flags;
  uint32_t tcpi_rto, tcpi_ato, tcpi_snd_mss, tcpi_rcv_mss;
  uint32_t tcpi_unacked, tcpi_sacked, tcpi_lost, tcpi_retrans, tcpi_fackets;
  uint32_t tcpi_last_data_sent, tcpi_last_ack_sent, tcpi_last_data_recv, tcpi_last_ack_recv;
  uint32_t tcpi_pmtu, tcpi_rcv_ssthresh, tcpi_rtt, tcpi_rttvar, tcpi_snd_ssthresh, tcpi_snd_cwnd, tcpi_advmss, tcpi_reordering;
  uint32_t tcpi_rcv_rtt, tcpi_rcv_space, tcpi_total_retrans;
  uint64_t tcpi_pacing_rate, tcpi_max_pacing_rate, tcpi_bytes_acked, tcpi_bytes_received;
  uint32_t tcpi_segs_out, tcpi_segs_in, tcpi_notsent_bytes, tcpi_min_rtt, tcpi_data_segs_in, tcpi_data_segs_out;
  uint64_t tcpi_delivery_rate, tcpi_busy_time, tcpi_rwnd_limited, tcpi_sndbuf_limited;
  uint32_t tcpi_delivered, tcpi_delivered_ce;
  uint64_t tcpi_bytes_sent, tcpi_bytes_retrans;
  uint32_t tcpi_dsack_dups, tcpi_reord_seen, tcpi_rcv_ooopack, tcpi_snd_wnd, tcpi_rcv_wnd, tcpi_rehash;
  uint16_t tcpi_total_rto, tcpi_total_rto_recoveries;
  uint32_t tcpi_total_rto_time;
};

// Linux numbers its states from TCP_ESTABLISHED = 1 to TCP_CLOSING = 11, then TCP_NEW_SYN_RECV.
static const int ka_linux_states[] = {KA_TCP_UNKNOWN, KA_TCP_ESTABLISHED, KA_TCP_SYN_SENT, KA_TCP_SYN_RECEIVED, KA_TCP_FIN_WAIT_1,
                                      KA_TCP_FIN_WAIT_2, KA_TCP_TIME_WAIT, KA_TCP_CLOSED, KA_TCP_CLOSE_WAIT, KA_TCP_LAST_ACK,
                                      KA_TCP_LISTEN, KA_TCP_CLOSING, KA_TCP_SYN_RECEIVED};

int ka_read_tcp_info(ka_socket sock, ka_tcp_info* out, ka_status* status) {
  ka_linux_tcp_info t;
  socklen_t len = sizeof(t);
  memset(&t, 0, sizeof(t));
  clear_tcp_info(out);
  if (getsockopt((int) sock, IPPROTO_TCP, TCP_INFO, &t, &len) != 0) {
    if (not_supported(errno)) return unsupported(status, "getsockopt(TCP_INFO)");
    return fail(status, "getsockopt(TCP_INFO)", errno);
  }
#define KA_HAS(field) (offsetof(ka_linux_tcp_info, field) + sizeof(t.field) <= len)
#define KA_RAW(field) \
  if (KA_HAS(field)) add_raw(out, #field, (double) t.field);
  if (len < offsetof(ka_linux_tcp_info, tcpi_rto)) return unsupported(status, "getsockopt(TCP_INFO)");
  out->state = t.tcpi_state < sizeof(ka_linux_states) / sizeof(ka_linux_states[0]) ? ka_linux_states[t.tcpi_state] : KA_TCP_UNKNOWN;
  KA_RAW(tcpi_state) KA_RAW(tcpi_ca_state) KA_RAW(tcpi_retransmits) KA_RAW(tcpi_probes) KA_RAW(tcpi_backoff) KA_RAW(tcpi_options)
  add_raw(out, "tcpi_snd_wscale", t.tcpi_wscale & 15);
  add_raw(out, "tcpi_rcv_wscale", t.tcpi_wscale >> 4);
  KA_RAW(tcpi_rto) KA_RAW(tcpi_ato) KA_RAW(tcpi_snd_mss) KA_RAW(tcpi_rcv_mss)
  KA_RAW(tcpi_unacked) KA_RAW(tcpi_sacked) KA_RAW(tcpi_lost) KA_RAW(tcpi_retrans) KA_RAW(tcpi_fackets)
  KA_RAW(tcpi_last_data_sent) KA_RAW(tcpi_last_ack_sent) KA_RAW(tcpi_last_data_recv) KA_RAW(tcpi_last_ack_recv)
  KA_RAW(tcpi_pmtu) KA_RAW(tcpi_rcv_ssthresh) KA_RAW(tcpi_rtt) KA_RAW(tcpi_rttvar) KA_RAW(tcpi_snd_ssthresh) KA_RAW(tcpi_snd_cwnd)
  KA_RAW(tcpi_advmss) KA_RAW(tcpi_reordering) KA_RAW(tcpi_rcv_rtt) KA_RAW(tcpi_rcv_space) KA_RAW(tcpi_total_retrans)
  KA_RAW(tcpi_pacing_rate) KA_RAW(tcpi_max_pacing_rate) KA_RAW(tcpi_bytes_acked) KA_RAW(tcpi_bytes_received)
  KA_RAW(tcpi_segs_out) KA_RAW(tcpi_segs_in) KA_RAW(tcpi_notsent_bytes) KA_RAW(tcpi_min_rtt) KA_RAW(tcpi_data_segs_in)
  KA_RAW(tcpi_data_segs_out) KA_RAW(tcpi_delivery_rate) KA_RAW(tcpi_busy_time) KA_RAW(tcpi_rwnd_limited) KA_RAW(tcpi_sndbuf_limited)
  KA_RAW(tcpi_delivered) KA_RAW(tcpi_delivered_ce) KA_RAW(tcpi_bytes_sent) KA_RAW(tcpi_bytes_retrans) KA_RAW(tcpi_dsack_dups)
  KA_RAW(tcpi_reord_seen) KA_RAW(tcpi_rcv_ooopack) KA_RAW(tcpi_snd_wnd) KA_RAW(tcpi_rcv_wnd) KA_RAW(tcpi_rehash)
  KA_RAW(tcpi_total_rto) KA_RAW(tcpi_total_rto_recoveries) KA_RAW(tcpi_total_rto_time)
  double* f = out->fields;
  if (KA_HAS(tcpi_rttvar)) {
    f[KA_TI_RTT] = t.tcpi_rtt / 1000.0;
    f[KA_TI_RTT_VARIANCE] = t.tcpi_rttvar / 1000.0;
  }
  f[KA_TI_RETRANSMITS] = t.tcpi_retransmits;
  f[KA_TI_PROBES] = t.tcpi_probes;
  f[KA_TI_UNACKED] = t.tcpi_unacked;
  if (KA_HAS(tcpi_last_ack_recv)) {
    f[KA_TI_LAST_DATA_SENT] = t.tcpi_last_data_sent;
    f[KA_TI_LAST_DATA_RECEIVED] = t.tcpi_last_data_recv;
    f[KA_TI_LAST_ACK_RECEIVED] = t.tcpi_last_ack_recv;
  }
  if (KA_HAS(tcpi_total_retrans)) f[KA_TI_TOTAL_RETRANSMITS] = t.tcpi_total_retrans;
  if (KA_HAS(tcpi_bytes_acked)) f[KA_TI_BYTES_ACKED] = (double) t.tcpi_bytes_acked;
  if (KA_HAS(tcpi_bytes_retrans)) {
    f[KA_TI_BYTES_SENT] = (double) t.tcpi_bytes_sent;
    f[KA_TI_BYTES_RETRANSMITTED] = (double) t.tcpi_bytes_retrans;
  }
#undef KA_RAW
#undef KA_HAS
  return 0;
}
#elif defined(__APPLE__)
int ka_read_tcp_info(ka_socket sock, ka_tcp_info* out, ka_status* status) {
  struct tcp_connection_info t;
  socklen_t len = sizeof(t);
  memset(&t, 0, sizeof(t));
  clear_tcp_info(out);
  if (getsockopt((int) sock, IPPROTO_TCP, TCP_CONNECTION_INFO, &t, &len) != 0) {
    if (not_supported(errno)) return unsupported(status, "getsockopt(TCP_CONNECTION_INFO)");
    return fail(status, "getsockopt(TCP_CONNECTION_INFO)", errno);
  }
#define KA_RAW(field) add_raw(out, #field, (double) t.field);
  KA_RAW(tcpi_state) KA_RAW(tcpi_snd_wscale) KA_RAW(tcpi_rcv_wscale) KA_RAW(tcpi_options) KA_RAW(tcpi_flags) KA_RAW(tcpi_rto)
  KA_RAW(tcpi_maxseg) KA_RAW(tcpi_snd_ssthresh) KA_RAW(tcpi_snd_cwnd) KA_RAW(tcpi_snd_wnd) KA_RAW(tcpi_snd_sbbytes) KA_RAW(tcpi_rcv_wnd)
  KA_RAW(tcpi_rttcur) KA_RAW(tcpi_srtt) KA_RAW(tcpi_rttvar) KA_RAW(tcpi_txpackets) KA_RAW(tcpi_txbytes) KA_RAW(tcpi_txretransmitbytes)
  KA_RAW(tcpi_rxpackets) KA_RAW(tcpi_rxbytes) KA_RAW(tcpi_rxoutoforderbytes) KA_RAW(tcpi_txretransmitpackets)
#undef KA_RAW
  out->state = t.tcpi_state < 11 ? ka_bsd_states[t.tcpi_state] : KA_TCP_UNKNOWN;
  out->fields[KA_TI_RTT] = t.tcpi_srtt;
  out->fields[KA_TI_RTT_VARIANCE] = t.tcpi_rttvar;
  out->fields[KA_TI_TOTAL_RETRANSMITS] = (double) t.tcpi_txretransmitpackets;
  out->fields[KA_TI_BYTES_SENT] = (double) t.tcpi_txbytes;
  out->fields[KA_TI_BYTES_RETRANSMITTED] = (double) t.tcpi_txretransmitbytes;
  return 0;
}
#elif defined(__FreeBSD__)
int ka_read_tcp_info(ka_socket sock, ka_tcp_info* out, ka_status* status) {
  struct tcp_info t;
  socklen_t len = sizeof(t);
  memset(&t, 0, sizeof(t));
  clear_tcp_info(out);
  if (getsockopt((int) sock, IPPROTO_TCP, TCP_INFO, &t, &len) != 0) {
    if (not_supported(errno)) return unsupported(status, "getsockopt(TCP_INFO)");
    return fail(status, "getsockopt(TCP_INFO)", errno);
  }
  // Only the fields FreeBSD fills (those named tcpi___* stay 0); its times are in microseconds.
#define KA_RAW(field) add_raw(out, #field, (double) t.field);
  KA_RAW(tcpi_state) KA_RAW(tcpi_options) KA_RAW(tcpi_snd_wscale) KA_RAW(tcpi_rcv_wscale) KA_RAW(tcpi_rto) KA_RAW(tcpi_last_data_recv)
  KA_RAW(tcpi_rtt) KA_RAW(tcpi_rttvar) KA_RAW(tcpi_snd_ssthresh) KA_RAW(tcpi_snd_cwnd) KA_RAW(tcpi_rcv_space) KA_RAW(tcpi_rcv_nxt)
  KA_RAW(tcpi_snd_wnd) KA_RAW(tcpi_snd_nxt) KA_RAW(tcpi_snd_mss) KA_RAW(tcpi_rcv_mss) KA_RAW(tcpi_snd_rexmitpack)
  KA_RAW(tcpi_rcv_ooopack) KA_RAW(tcpi_snd_zerowin)
#undef KA_RAW
  out->state = t.tcpi_state < 11 ? ka_bsd_states[t.tcpi_state] : KA_TCP_UNKNOWN;
  out->fields[KA_TI_RTT] = t.tcpi_rtt / 1000.0;
  out->fields[KA_TI_RTT_VARIANCE] = t.tcpi_rttvar / 1000.0;
  out->fields[KA_TI_TOTAL_RETRANSMITS] = t.tcpi_snd_rexmitpack;
  out->fields[KA_TI_LAST_DATA_RECEIVED] = t.tcpi_last_data_recv / 1000.0;
  return 0;
}
#else
int ka_read_tcp_info(ka_socket, ka_tcp_info* out, ka_status* status) {
  clear_tcp_info(out);
  return unsupported(status, "getsockopt(TCP_INFO)");
}
#endif
