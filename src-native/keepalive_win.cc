#include "keepalive.h"
#include "address.h"

#include <winsock2.h>
#include <ws2tcpip.h>
#include <mstcpip.h>

#include <stddef.h>
#include <string.h>

#include <string>
#include <unordered_map>

#ifndef TCP_KEEPIDLE
#define TCP_KEEPIDLE 3
#endif
#ifndef TCP_MAXRT
#define TCP_MAXRT 5
#endif
#ifndef TCP_KEEPCNT
#define TCP_KEEPCNT 16
#endif
#ifndef TCP_KEEPINTVL
#define TCP_KEEPINTVL 17
#endif

struct ka_known {
  SOCKET sock;
  ka_key key;
  bool settled;
  uint64_t generation;
};

struct ka_context {
  uv_loop_t* loop;
  ka_stats stats;
  uint64_t generation;
  std::unordered_map<uv_handle_t*, ka_known> handles;
  std::unordered_map<ka_key, SOCKET> sockets;
};

ka_context* ka_context_new(uv_loop_t* loop) {
  ka_context* ctx = new ka_context;
  ctx->loop = loop;
  ctx->stats = {0, 0, 0};
  ctx->generation = 0;
  return ctx;
}

void ka_context_free(ka_context* ctx) {
  delete ctx;
}

void ka_context_stats(const ka_context* ctx, ka_stats* out) {
  *out = ctx->stats;
}

static int fail(ka_status* status, const char* syscall, int sys_errno) {
  status->err = sys_errno == WSAENOPROTOOPT ? KA_EUNSUPPORTED : uv_translate_sys_error(sys_errno);
  status->sys_errno = sys_errno;
  status->syscall = syscall;
  return status->err;
}

static int fail_code(ka_status* status, const char* syscall, int err) {
  status->err = err;
  status->sys_errno = 0;
  status->syscall = syscall;
  return status->err;
}

static DWORD seconds_up(int64_t ms) {
  return (DWORD) ((ms + 999) / 1000);
}

static int set_dword(SOCKET s, int level, int name, DWORD value) {
  return setsockopt(s, level, name, (const char*) &value, sizeof(value));
}

static int get_dword(SOCKET s, int level, int name, DWORD* value) {
  int len = (int) sizeof(*value);
  *value = 0;
  return getsockopt(s, level, name, (char*) value, &len);
}

static bool local_of(ka_context* ctx, SOCKET s, ka_addr* out) {
  ctx->stats.socket_calls++;
  struct sockaddr_storage storage;
  int len = (int) sizeof(storage);
  return getsockname(s, (struct sockaddr*) &storage, &len) == 0 && addr_from_sockaddr(&storage, out);
}

static bool peer_of(ka_context* ctx, SOCKET s, ka_addr* out) {
  ctx->stats.socket_calls++;
  struct sockaddr_storage storage;
  int len = (int) sizeof(storage);
  return getpeername(s, (struct sockaddr*) &storage, &len) == 0 && addr_from_sockaddr(&storage, out);
}

static bool is_listening(ka_context* ctx, SOCKET s) {
  ctx->stats.socket_calls++;
  DWORD listening = 0;
  return get_dword(s, SOL_SOCKET, SO_ACCEPTCONN, &listening) == 0 && listening != 0;
}

static bool matches(ka_context* ctx, SOCKET s, const ka_addr* local, const ka_addr* remote) {
  ka_addr found;
  if (!local_of(ctx, s, &found) || !addr_equal(&found, local)) return false;
  if (remote == nullptr) return is_listening(ctx, s);
  return peer_of(ctx, s, &found) && addr_equal(&found, remote);
}

static bool describe(ka_context* ctx, SOCKET s, ka_known* known) {
  ka_addr local;
  ka_addr remote;
  known->settled = false;
  if (!local_of(ctx, s, &local)) return false;
  if (peer_of(ctx, s, &remote)) {
    known->key = key_of(&local, &remote);
    known->settled = true;
    return true;
  }
  if (!is_listening(ctx, s)) return false;
  known->key = key_of(&local, nullptr);
  return true;
}

static void forget(ka_context* ctx, const ka_known* known) {
  if (known->key.empty()) return;
  auto found = ctx->sockets.find(known->key);
  if (found != ctx->sockets.end() && found->second == known->sock) ctx->sockets.erase(found);
}

struct ka_walk {
  ka_context* ctx;
  bool full;
};

static void visit(uv_handle_t* handle, void* arg) {
  ka_walk* walk = (ka_walk*) arg;
  ka_context* ctx = walk->ctx;
  ctx->stats.handles_visited++;
  if (uv_handle_get_type(handle) != UV_TCP || uv_is_closing(handle)) return;

  uv_os_fd_t fd;
  if (uv_fileno(handle, &fd) != 0) return;
  SOCKET s = (SOCKET) fd;

  auto seen = ctx->handles.find(handle);
  if (seen != ctx->handles.end()) {
    ka_known* known = &seen->second;
    if (known->sock == s && known->settled && !walk->full) {
      known->generation = ctx->generation;
      return;
    }
    forget(ctx, known);
  }

  ka_known known;
  known.sock = s;
  known.generation = ctx->generation;
  if (describe(ctx, s, &known)) ctx->sockets[known.key] = s;
  ctx->handles[handle] = known;
}

static void walk_loop(ka_context* ctx, bool full) {
  ka_walk walk = {ctx, full};
  ctx->stats.walks++;
  ctx->generation++;
  uv_walk(ctx->loop, visit, &walk);

  for (auto it = ctx->handles.begin(); it != ctx->handles.end();) {
    if (it->second.generation == ctx->generation) {
      ++it;
      continue;
    }
    forget(ctx, &it->second);
    it = ctx->handles.erase(it);
  }
}

static bool lookup(ka_context* ctx, const ka_key& key, const ka_addr* local, const ka_addr* remote, SOCKET* out) {
  auto found = ctx->sockets.find(key);
  if (found == ctx->sockets.end() || !matches(ctx, found->second, local, remote)) return false;
  *out = found->second;
  return true;
}

int ka_resolve(ka_context* ctx, const ka_endpoint* endpoint, ka_socket* out, ka_status* status) {
  ka_addr local;
  ka_addr remote;
  const ka_addr* peer;
  if (!endpoint_addrs(endpoint, &local, &remote, &peer)) return fail_code(status, "inet_pton", UV_EINVAL);
  ka_key key = key_of(&local, peer);
  SOCKET s = INVALID_SOCKET;
  if (!lookup(ctx, key, &local, peer, &s)) {
    walk_loop(ctx, false);
    if (!lookup(ctx, key, &local, peer, &s)) {
      walk_loop(ctx, true);
      if (!lookup(ctx, key, &local, peer, &s)) return fail_code(status, "uv_walk", KA_ENOTFOUND);
    }
  }

  *out = (ka_socket) s;
  return 0;
}

static int current_seconds(SOCKET s, int name, const char* syscall, ULONG* ms, ka_status* status) {
  DWORD value = 0;
  if (get_dword(s, IPPROTO_TCP, name, &value) != 0) return fail(status, syscall, WSAGetLastError());
  *ms = value * 1000;
  return 0;
}

static int set_count(SOCKET s, int64_t count) {
  return set_dword(s, IPPROTO_TCP, TCP_KEEPCNT, (DWORD) count);
}

// SIO_KEEPALIVE_VALS documents the probe count as fixed at 10, so the count is set after it. It is also set
// before it, so that a Windows without TCP_KEEPCNT (before 10 1703) fails before keepalive is switched on.
int ka_apply(ka_socket sock, const ka_values* v, ka_status* status) {
  SOCKET s = (SOCKET) sock;
  struct tcp_keepalive vals = {};
  status->applied = 0;

  if (v->onoff) {
    if (v->usertimeout != KA_UNSET) {
      if (set_dword(s, IPPROTO_TCP, TCP_MAXRT, seconds_up(v->usertimeout)) != 0) return fail(status, "setsockopt(TCP_MAXRT)", WSAGetLastError());
      status->applied |= KA_APPLIED_USERTIMEOUT;
    }

    if (v->keepalivecount != KA_UNSET) {
      if (set_count(s, v->keepalivecount) != 0) return fail(status, "setsockopt(TCP_KEEPCNT)", WSAGetLastError());
      status->applied |= KA_APPLIED_COUNT;
    }

    vals.onoff = 1;
    vals.keepalivetime = (ULONG) v->keepalivetime;
    vals.keepaliveinterval = (ULONG) v->keepaliveinterval;
    if (v->keepalivetime == KA_UNSET && current_seconds(s, TCP_KEEPIDLE, "getsockopt(TCP_KEEPIDLE)", &vals.keepalivetime, status) != 0) return status->err;
    if (v->keepaliveinterval == KA_UNSET && current_seconds(s, TCP_KEEPINTVL, "getsockopt(TCP_KEEPINTVL)", &vals.keepaliveinterval, status) != 0) return status->err;
  }

  if (set_dword(s, SOL_SOCKET, SO_KEEPALIVE, v->onoff ? 1 : 0) != 0) return fail(status, "setsockopt(SO_KEEPALIVE)", WSAGetLastError());
  status->applied |= KA_APPLIED_ONOFF;

  if (v->onoff) {
    DWORD returned = 0;
    if (WSAIoctl(s, SIO_KEEPALIVE_VALS, &vals, sizeof(vals), nullptr, 0, &returned, nullptr, nullptr) != 0) return fail(status, "WSAIoctl(SIO_KEEPALIVE_VALS)", WSAGetLastError());
    status->applied |= KA_APPLIED_TIME | KA_APPLIED_INTERVAL;

    if (v->keepalivecount != KA_UNSET && set_count(s, v->keepalivecount) != 0) return fail(status, "setsockopt(TCP_KEEPCNT)", WSAGetLastError());
    return 0;
  }

  // Keepalive off: SIO_KEEPALIVE_VALS would ignore the times, so the fields given are written one by one
  // (TCP_KEEPIDLE/TCP_KEEPINTVL in seconds, Windows 10 1709+), as POSIX does; a system without one keeps its own.
  const struct { int64_t value; int name; int64_t unit; const char* syscall; unsigned bit; } off[] = {
    {v->keepalivetime, TCP_KEEPIDLE, 1000, "setsockopt(TCP_KEEPIDLE)", KA_APPLIED_TIME},
    {v->keepaliveinterval, TCP_KEEPINTVL, 1000, "setsockopt(TCP_KEEPINTVL)", KA_APPLIED_INTERVAL},
    {v->keepalivecount, TCP_KEEPCNT, 1, "setsockopt(TCP_KEEPCNT)", KA_APPLIED_COUNT},
    {v->usertimeout, TCP_MAXRT, 1000, "setsockopt(TCP_MAXRT)", KA_APPLIED_USERTIMEOUT},
  };
  for (const auto& field : off) {
    if (field.value == KA_UNSET) continue;
    DWORD value = field.unit == 1 ? (DWORD) field.value : seconds_up(field.value);
    if (set_dword(s, IPPROTO_TCP, field.name, value) != 0) {
      int sys_errno = WSAGetLastError();
      if (sys_errno == WSAENOPROTOOPT || sys_errno == WSAEINVAL) continue;
      return fail(status, field.syscall, sys_errno);
    }
    status->applied |= field.bit;
  }
  return 0;
}

int ka_probe(const ka_values* v, ka_values* out, ka_status* status) {
  SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  if (s == INVALID_SOCKET) {
    int sys_errno = WSAGetLastError();
    status->applied = 0;
    return fail(status, "socket", sys_errno);
  }
  int err = ka_apply((ka_socket) s, v, status);
  if (err == 0) err = ka_read((ka_socket) s, out, status);
  closesocket(s);
  return err;
}

int ka_queued(ka_socket sock, int64_t* out, ka_status* status) {
  (void) sock;
  (void) status;
  *out = -1;
  return 0;
}

static int read_optional(SOCKET s, int name, const char* syscall, int64_t unit, int64_t* out, ka_status* status) {
  DWORD value = 0;
  if (get_dword(s, IPPROTO_TCP, name, &value) == 0) {
    *out = (int) value < 0 ? KA_UNSET : (int64_t) value * unit;
    return 0;
  }
  int sys_errno = WSAGetLastError();
  if (sys_errno != WSAENOPROTOOPT) return fail(status, syscall, sys_errno);
  *out = KA_UNSET;
  return 0;
}

int ka_read(ka_socket sock, ka_values* out, ka_status* status) {
  SOCKET s = (SOCKET) sock;
  DWORD value = 0;

  if (get_dword(s, SOL_SOCKET, SO_KEEPALIVE, &value) != 0) return fail(status, "getsockopt(SO_KEEPALIVE)", WSAGetLastError());
  out->onoff = value ? 1 : 0;

  if (get_dword(s, IPPROTO_TCP, TCP_KEEPIDLE, &value) != 0) return fail(status, "getsockopt(TCP_KEEPIDLE)", WSAGetLastError());
  out->keepalivetime = (int64_t) value * 1000;

  if (get_dword(s, IPPROTO_TCP, TCP_KEEPINTVL, &value) != 0) return fail(status, "getsockopt(TCP_KEEPINTVL)", WSAGetLastError());
  out->keepaliveinterval = (int64_t) value * 1000;

  if (read_optional(s, TCP_KEEPCNT, "getsockopt(TCP_KEEPCNT)", 1, &out->keepalivecount, status) != 0) return status->err;
  if (read_optional(s, TCP_MAXRT, "getsockopt(TCP_MAXRT)", 1000, &out->usertimeout, status) != 0) return status->err;

  return 0;
}

#ifndef SIO_TCP_INFO
#define SIO_TCP_INFO _WSAIORW(IOC_VENDOR, 39)
#endif

// TCP_INFO_v0 (Windows 10 1703) and the fields TCP_INFO_v1 (1709) adds, as mstcpip.h declares them: spelled
// out here because SDKs declare them only when built for NTDDI_VERSION >= those releases.
struct ka_win_tcp_info {
  INT State;
  ULONG Mss;
  ULONG64 ConnectionTimeMs;
  BOOLEAN TimestampsEnabled;
  ULONG RttUs, MinRttUs, BytesInFlight, Cwnd, SndWnd, RcvWnd, RcvBuf;
  ULONG64 BytesOut, BytesIn;
  ULONG BytesReordered, BytesRetrans, FastRetrans, DupAcksIn, TimeoutEpisodes;
  UCHAR SynRetrans;
  ULONG SndLimTransRwin, SndLimTimeRwin;
  ULONG64 SndLimBytesRwin;
  ULONG SndLimTransCwnd, SndLimTimeCwnd;
  ULONG64 SndLimBytesCwnd;
  ULONG SndLimTransSnd, SndLimTimeSnd;
  ULONG64 SndLimBytesSnd;
};

static const DWORD ka_win_tcp_info_v0_size = offsetof(ka_win_tcp_info, SndLimTransRwin);

static void add_raw(ka_tcp_info* out, const char* name, double value) {
  if (out->raw_count < KA_TCP_RAW_MAX) out->raw[out->raw_count++] = {name, value};
}

// SIO_TCP_INFO v1, else v0; a Windows with neither (before 10 1703, or Wine) is ERR_KEEPALIVE_UNSUPPORTED.
int ka_read_tcp_info(ka_socket sock, ka_tcp_info* out, ka_status* status) {
  SOCKET s = (SOCKET) sock;
  ka_win_tcp_info t;
  memset(&t, 0, sizeof(t));
  out->state = KA_TCP_UNKNOWN;
  for (double& field : out->fields) field = -1;
  out->raw_count = 0;
  DWORD version = 1, returned = 0;
  if (WSAIoctl(s, SIO_TCP_INFO, &version, sizeof(version), &t, sizeof(t), &returned, nullptr, nullptr) != 0) {
    version = 0;
    if (WSAIoctl(s, SIO_TCP_INFO, &version, sizeof(version), &t, ka_win_tcp_info_v0_size, &returned, nullptr, nullptr) != 0) {
      int sys_errno = WSAGetLastError();
      if (sys_errno != WSAEOPNOTSUPP && sys_errno != WSAEINVAL) return fail(status, "WSAIoctl(SIO_TCP_INFO)", sys_errno);
      status->err = KA_EUNSUPPORTED;
      status->sys_errno = sys_errno;
      status->syscall = "WSAIoctl(SIO_TCP_INFO)";
      return status->err;
    }
  }
#define KA_RAW(field) add_raw(out, #field, (double) t.field);
  KA_RAW(State) KA_RAW(Mss) KA_RAW(ConnectionTimeMs) KA_RAW(TimestampsEnabled) KA_RAW(RttUs) KA_RAW(MinRttUs) KA_RAW(BytesInFlight)
  KA_RAW(Cwnd) KA_RAW(SndWnd) KA_RAW(RcvWnd) KA_RAW(RcvBuf) KA_RAW(BytesOut) KA_RAW(BytesIn) KA_RAW(BytesReordered) KA_RAW(BytesRetrans)
  KA_RAW(FastRetrans) KA_RAW(DupAcksIn) KA_RAW(TimeoutEpisodes) KA_RAW(SynRetrans)
  if (version == 1) {
    KA_RAW(SndLimTransRwin) KA_RAW(SndLimTimeRwin) KA_RAW(SndLimBytesRwin) KA_RAW(SndLimTransCwnd) KA_RAW(SndLimTimeCwnd)
    KA_RAW(SndLimBytesCwnd) KA_RAW(SndLimTransSnd) KA_RAW(SndLimTimeSnd) KA_RAW(SndLimBytesSnd)
  }
#undef KA_RAW
  out->state = t.State >= KA_TCP_CLOSED && t.State <= KA_TCP_TIME_WAIT ? t.State : KA_TCP_UNKNOWN;
  out->fields[KA_TI_RTT] = t.RttUs / 1000.0;
  out->fields[KA_TI_BYTES_SENT] = (double) t.BytesOut;
  out->fields[KA_TI_BYTES_RETRANSMITTED] = t.BytesRetrans;
  return 0;
}
