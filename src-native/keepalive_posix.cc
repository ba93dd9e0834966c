#include "keepalive.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

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

struct ka_context {
  uv_loop_t* loop;
  ka_stats stats;
};

ka_context* ka_context_new(uv_loop_t* loop) {
  ka_context* ctx = new ka_context;
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

int ka_resolve(ka_context* ctx, const ka_endpoint* endpoint, ka_socket* out, ka_status* status) {
  int fd = endpoint->fd;
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

int ka_apply(ka_socket sock, const ka_values* v, ka_status* status) {
  int fd = (int) sock;
  status->applied = 0;

  if (v->onoff) {
    if (v->usertimeout != KA_UNSET) {
#if defined(KA_OPT_USER_TIMEOUT)
      int value = KA_USER_TIMEOUT_UNIT_MS == 1 ? (int) v->usertimeout : seconds_up(v->usertimeout);
      if (set_int(fd, IPPROTO_TCP, KA_OPT_USER_TIMEOUT, value) != 0) return fail(status, KA_OPT_USER_TIMEOUT_NAME, errno);
      status->applied |= KA_APPLIED_USERTIMEOUT;
#else
      return unsupported(status, "setsockopt(usertimeout)");
#endif
    }

    if (v->keepalivecount != KA_UNSET) {
#if defined(TCP_KEEPCNT)
      if (set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, (int) v->keepalivecount) != 0) return fail(status, "setsockopt(TCP_KEEPCNT)", errno);
      status->applied |= KA_APPLIED_COUNT;
#else
      return unsupported(status, "setsockopt(TCP_KEEPCNT)");
#endif
    }

    if (v->keepaliveinterval != KA_UNSET) {
#if defined(TCP_KEEPINTVL)
      if (set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, seconds_up(v->keepaliveinterval)) != 0) return fail(status, "setsockopt(TCP_KEEPINTVL)", errno);
      status->applied |= KA_APPLIED_INTERVAL;
#else
      return unsupported(status, "setsockopt(TCP_KEEPINTVL)");
#endif
    }

    if (v->keepalivetime != KA_UNSET) {
#if defined(KA_OPT_IDLE)
      if (set_int(fd, IPPROTO_TCP, KA_OPT_IDLE, seconds_up(v->keepalivetime)) != 0) return fail(status, KA_OPT_IDLE_NAME, errno);
      status->applied |= KA_APPLIED_TIME;
#else
      return unsupported(status, "setsockopt(TCP_KEEPIDLE)");
#endif
    }
  }

  if (set_int(fd, SOL_SOCKET, SO_KEEPALIVE, v->onoff ? 1 : 0) != 0) return fail(status, "setsockopt(SO_KEEPALIVE)", errno);
  status->applied |= KA_APPLIED_ONOFF;
  return 0;
}

int ka_read(ka_socket sock, ka_values* out, ka_status* status) {
  int fd = (int) sock;
  int value = 0;

  if (get_int(fd, SOL_SOCKET, SO_KEEPALIVE, &value) != 0) return fail(status, "getsockopt(SO_KEEPALIVE)", errno);
  out->onoff = value ? 1 : 0;

#if defined(KA_OPT_IDLE)
  if (get_int(fd, IPPROTO_TCP, KA_OPT_IDLE, &value) != 0) return fail(status, "getsockopt(TCP_KEEPIDLE)", errno);
  out->keepalivetime = (int64_t) value * 1000;
#else
  out->keepalivetime = KA_UNSET;
#endif

#if defined(TCP_KEEPINTVL)
  if (get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, &value) != 0) return fail(status, "getsockopt(TCP_KEEPINTVL)", errno);
  out->keepaliveinterval = (int64_t) value * 1000;
#else
  out->keepaliveinterval = KA_UNSET;
#endif

#if defined(TCP_KEEPCNT)
  if (get_int(fd, IPPROTO_TCP, TCP_KEEPCNT, &value) != 0) return fail(status, "getsockopt(TCP_KEEPCNT)", errno);
  out->keepalivecount = value;
#else
  out->keepalivecount = KA_UNSET;
#endif

#if defined(KA_OPT_USER_TIMEOUT)
  if (get_int(fd, IPPROTO_TCP, KA_OPT_USER_TIMEOUT, &value) != 0) return fail(status, "getsockopt(usertimeout)", errno);
  out->usertimeout = (int64_t) (unsigned) value * KA_USER_TIMEOUT_UNIT_MS;
#else
  out->usertimeout = KA_UNSET;
#endif

  return 0;
}
