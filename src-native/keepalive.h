#ifndef TCP_KEEPALIVE_KEEPALIVE_H
#define TCP_KEEPALIVE_KEEPALIVE_H

#include <stdint.h>
#include <uv.h>

#define KA_UNSET (-1)

#define KA_ENOTTCP (-200001)
#define KA_ENOTFOUND (-200002)
#define KA_EUNSUPPORTED (-200003)
/* The platform has the option but this socket's protocol refuses it (an MPTCP socket's TCP_USER_TIMEOUT). */
#define KA_EUNSUPPORTED_BY_SOCKET (-200004)

#define KA_APPLIED_USERTIMEOUT (1u << 0)
#define KA_APPLIED_COUNT (1u << 1)
#define KA_APPLIED_INTERVAL (1u << 2)
#define KA_APPLIED_TIME (1u << 3)
#define KA_APPLIED_ONOFF (1u << 4)

typedef int64_t ka_socket;

typedef struct {
  int64_t onoff;
  int64_t keepalivetime;
  int64_t keepaliveinterval;
  int64_t keepalivecount;
  int64_t usertimeout;
} ka_values;

typedef struct {
  int fd;
  const char* local_address;
  int local_port;
  const char* remote_address;
  int remote_port;
} ka_endpoint;

typedef struct {
  int err;
  int sys_errno;
  const char* syscall;
  unsigned applied;
} ka_status;

typedef struct {
  uint64_t walks;
  uint64_t handles_visited;
  uint64_t socket_calls;
} ka_stats;

/* TCP states, normalised (Windows' TCPSTATE order); lib/tcp-info.ts names them. */
enum {
  KA_TCP_CLOSED, KA_TCP_LISTEN, KA_TCP_SYN_SENT, KA_TCP_SYN_RECEIVED, KA_TCP_ESTABLISHED, KA_TCP_FIN_WAIT_1,
  KA_TCP_FIN_WAIT_2, KA_TCP_CLOSE_WAIT, KA_TCP_CLOSING, KA_TCP_LAST_ACK, KA_TCP_TIME_WAIT, KA_TCP_UNKNOWN = -1
};

/* ka_tcp_info.fields, in this order; -1 where the platform does not report the field. */
enum {
  KA_TI_RTT, KA_TI_RTT_VARIANCE, KA_TI_RETRANSMITS, KA_TI_TOTAL_RETRANSMITS, KA_TI_PROBES, KA_TI_UNACKED,
  KA_TI_LAST_DATA_RECEIVED, KA_TI_LAST_DATA_SENT, KA_TI_LAST_ACK_RECEIVED, KA_TI_BYTES_SENT,
  KA_TI_BYTES_RETRANSMITTED, KA_TI_BYTES_ACKED, KA_TCP_INFO_FIELDS
};

#define KA_TCP_RAW_MAX 96

typedef struct {
  const char* name;
  double value;
} ka_field;

typedef struct {
  int state;
  double fields[KA_TCP_INFO_FIELDS]; /* ms (times), segments (counts), bytes */
  ka_field raw[KA_TCP_RAW_MAX];      /* the platform's struct, field by field, as far as the kernel filled it */
  int raw_count;
} ka_tcp_info;

typedef struct ka_context ka_context;

ka_context* ka_context_new(uv_loop_t* loop);
void ka_context_free(ka_context* ctx);
void ka_context_stats(const ka_context* ctx, ka_stats* out);

/* The glue (addon.cc) has checked every argument before these run: sock and endpoint->fd are in
   0 .. 2^31-1 (fd also -1: no descriptor), option values are KA_UNSET or in range, ports 0 .. 65535,
   addresses NUL-terminated. Each returns 0 or a negative libuv error / KA_E* code, with status filled in. */
int ka_resolve(ka_context* ctx, const ka_endpoint* endpoint, ka_socket* out, ka_status* status);
int ka_apply(ka_socket sock, const ka_values* values, ka_status* status);
// ka_apply then ka_read on a new TCP socket of its own, closed again: whether this system takes these values
// at all, and what a socket then holds.
int ka_probe(const ka_values* values, ka_values* out, ka_status* status);
// How many connections wait in a listening socket's accept queue (Linux: TCP_INFO's tcpi_unacked on a
// listener); -1 where the system does not say.
int ka_queued(ka_socket sock, int64_t* out, ka_status* status);
int ka_read(ka_socket sock, ka_values* out, ka_status* status);
/* The kernel's view of the connection: Linux/FreeBSD TCP_INFO, macOS TCP_CONNECTION_INFO, Windows SIO_TCP_INFO. */
int ka_read_tcp_info(ka_socket sock, ka_tcp_info* out, ka_status* status);

#endif
