// N-API glue: checks the arguments, calls keepalive_posix.cc / keepalive_win.cc, throws.
//
// Never aborts. Plain N-API, not node-addon-api: node-addon-api without C++ exceptions calls
// napi_fatal_error when it cannot throw (a worker being terminated, an exception already pending), which
// kills the whole process. Here every napi_* status is checked and a call that fails returns nullptr
// (undefined) quietly: the only environments in which throwing fails are ones that are going away.
//
// Never guesses. Every argument is checked before any system call, so nothing is cast onto a descriptor:
//   wrong argument count  TypeError  ERR_MISSING_ARGS (too few) / ERR_TOO_MANY_ARGS (too many)
//   not a number          TypeError  ERR_INVALID_ARG_TYPE (undefined, null, string, BigInt, object, ...)
//   number out of range   RangeError ERR_OUT_OF_RANGE (NaN, Infinity, fractions, below/above the range)
//   bad address string    TypeError  ERR_INVALID_ARG_VALUE (longer than an address can be, or has a NUL)
// Ranges: sock 0 .. 2^31-1 (resolve's fd also -1: no descriptor, find the socket by its addresses);
// onoff 0 or 1; keepalivetime, keepaliveinterval, keepalivecount -1 (KA_UNSET) or 1 .. 2^31-1; usertimeout
// -1 or 0 .. 2^31-1; ports 0 .. 65535 or undefined; addresses a string or undefined. With onoff 0 the
// fields that are not -1 are written after keepalive is off (POSIX: how a listener gets its values back).
//
// System call failures are Errors with code (the libuv name, e.g. EBADF, or ERR_KEEPALIVE_*), errno,
// sysErrno, syscall and applied (bits of what was set before the failure). An option the socket's protocol
// refuses (an MPTCP socket's TCP_USER_TIMEOUT) is ERR_KEEPALIVE_UNSUPPORTED, with the raw errno in sysErrno.
//
// Context-aware: each environment (main thread, every worker) gets its own ka_context, passed to the
// functions as their data and freed by an environment cleanup hook.
#include <node_api.h>

#include <cmath>
#include <stdio.h>
#include <string.h>

#include "keepalive.h"

#define KA_MAX_INT32 2147483647.0
#define KA_ADDRESS_MAX 64

static const char* ka_code(int err) {
  switch (err) {
    case KA_ENOTTCP: return "ERR_KEEPALIVE_NOT_TCP";
    case KA_ENOTFOUND: return "ERR_KEEPALIVE_SOCKET_NOT_FOUND";
    case KA_EUNSUPPORTED: return "ERR_KEEPALIVE_UNSUPPORTED";
    case KA_EUNSUPPORTED_BY_SOCKET: return "ERR_KEEPALIVE_UNSUPPORTED";
    default: return uv_err_name(err);
  }
}

static const char* ka_message(int err) {
  switch (err) {
    case KA_ENOTTCP: return "the socket is not a TCP socket";
    case KA_ENOTFOUND: return "no TCP handle on this event loop matches the socket's addresses";
    case KA_EUNSUPPORTED: return "this platform cannot set the option";
    case KA_EUNSUPPORTED_BY_SOCKET: return "this socket's protocol (MPTCP) does not support the option on this kernel";
    default: return uv_strerror(err);
  }
}

static bool set_string(napi_env env, napi_value object, const char* name, const char* text) {
  napi_value value;
  return napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &value) == napi_ok &&
         napi_set_named_property(env, object, name, value) == napi_ok;
}

static bool set_number(napi_env env, napi_value object, const char* name, double number) {
  napi_value value;
  return napi_create_double(env, number, &value) == napi_ok && napi_set_named_property(env, object, name, value) == napi_ok;
}

// An OS (or KA_*) failure: Error with code, errno, sysErrno, syscall and the applied bits.
static void throw_status(napi_env env, const ka_status* status) {
  char text[256];
  snprintf(text, sizeof(text), "%s: %s, %s", ka_code(status->err), ka_message(status->err), status->syscall);
  napi_value message, code, error;
  if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message) != napi_ok) return;
  if (napi_create_string_utf8(env, ka_code(status->err), NAPI_AUTO_LENGTH, &code) != napi_ok) return;
  if (napi_create_error(env, code, message, &error) != napi_ok) return;
  if (!set_number(env, error, "errno", status->err > -200000 ? status->err : 0)) return;
  if (!set_number(env, error, "sysErrno", status->sys_errno)) return;
  if (!set_string(env, error, "syscall", status->syscall)) return;
  if (!set_number(env, error, "applied", status->applied)) return;
  (void) napi_throw(env, error);  // fails only where the environment is going away: nobody is left to tell
}

enum error_kind { TYPE_ERROR, RANGE_ERROR };

static void throw_argument(napi_env env, error_kind kind, const char* code, const char* text) {
  napi_value message, code_value, error;
  if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message) != napi_ok) return;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value) != napi_ok) return;
  napi_status made = kind == TYPE_ERROR ? napi_create_type_error(env, code_value, message, &error)
                                        : napi_create_range_error(env, code_value, message, &error);
  if (made != napi_ok) return;
  (void) napi_throw(env, error);
}

static const char* type_name(napi_env env, napi_value value) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return "unknown";
  switch (type) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "type boolean";
    case napi_number: return "type number";
    case napi_string: return "type string";
    case napi_symbol: return "type symbol";
    case napi_object: return "an object";
    case napi_function: return "a function";
    case napi_external: return "an external";
    case napi_bigint: return "type bigint";
  }
  return "unknown";
}

static void throw_count(napi_env env, const char* fn, size_t expected, size_t got) {
  char text[160];
  snprintf(text, sizeof(text), "binding.%s takes %u argument%s, received %u", fn, (unsigned) expected, expected == 1 ? "" : "s", (unsigned) got);
  throw_argument(env, TYPE_ERROR, got < expected ? "ERR_MISSING_ARGS" : "ERR_TOO_MANY_ARGS", text);
}

// A number that is an integer in [min, max], or exactly `sentinel` (pass min to have none). Throws and
// returns false otherwise. Comparisons are false for NaN, and the cast happens only after the range check.
static bool integer_arg(napi_env env, napi_value value, const char* fn, const char* name, double sentinel, double min, double max, int64_t* out) {
  double d;
  if (napi_get_value_double(env, value, &d) != napi_ok) {
    char text[200];
    snprintf(text, sizeof(text), "The \"%s\" argument of binding.%s must be of type number. Received %s", name, fn, type_name(env, value));
    throw_argument(env, TYPE_ERROR, "ERR_INVALID_ARG_TYPE", text);
    return false;
  }
  if ((d == sentinel || (d >= min && d <= max)) && d == (double) (int64_t) d) {
    *out = (int64_t) d;
    return true;
  }
  char received[32];
  if (std::isnan(d)) snprintf(received, sizeof(received), "NaN");
  else if (std::isinf(d)) snprintf(received, sizeof(received), "%sInfinity", d < 0 ? "-" : "");
  else snprintf(received, sizeof(received), "%.17g", d);
  char text[240];
  snprintf(text, sizeof(text), "The value of \"%s\" (binding.%s) is out of range. It must be an integer >= %.0f and <= %.0f%s. Received %s",
           name, fn, min, max, sentinel < min ? " (or -1)" : "", received);
  throw_argument(env, RANGE_ERROR, "ERR_OUT_OF_RANGE", text);
  return false;
}

// A string of at most KA_ADDRESS_MAX - 1 bytes without NUL, or undefined (*present = false).
static bool address_arg(napi_env env, napi_value value, const char* name, char* buffer, bool* present) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return false;
  if (type == napi_undefined) {
    *present = false;
    return true;
  }
  char text[200];
  if (type != napi_string) {
    snprintf(text, sizeof(text), "The \"%s\" argument of binding.resolve must be of type string or undefined. Received %s", name, type_name(env, value));
    throw_argument(env, TYPE_ERROR, "ERR_INVALID_ARG_TYPE", text);
    return false;
  }
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, nullptr, 0, &length) != napi_ok) return false;
  size_t copied = 0;
  if (length >= KA_ADDRESS_MAX || napi_get_value_string_utf8(env, value, buffer, KA_ADDRESS_MAX, &copied) != napi_ok || copied != length ||
      strlen(buffer) != length) {
    snprintf(text, sizeof(text), "The argument \"%s\" of binding.resolve is not an IP address (at most %d bytes, no NUL)", name, KA_ADDRESS_MAX - 1);
    throw_argument(env, TYPE_ERROR, "ERR_INVALID_ARG_VALUE", text);
    return false;
  }
  *present = true;
  return true;
}

static bool port_arg(napi_env env, napi_value value, const char* name, int* out) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return false;
  if (type == napi_undefined) {
    *out = 0;
    return true;
  }
  int64_t port;
  if (!integer_arg(env, value, "resolve", name, 0, 0, 65535, &port)) return false;
  *out = (int) port;
  return true;
}

static napi_value values_array(napi_env env, const ka_values* v);

// Exactly `expected` arguments into argv (room for expected + 1, to tell too many); else throws, returns false.
static inline bool exact_args(napi_env env, napi_callback_info info, const char* fn, size_t expected, napi_value* argv) {
  size_t argc = expected + 1;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return false;
  if (argc != expected) {
    throw_count(env, fn, expected, argc);
    return false;
  }
  return true;
}

// onoff, keepalivetime, keepaliveinterval, keepalivecount, usertimeout from argv[0..4].
static bool values_args(napi_env env, napi_value* argv, const char* fn, ka_values* v) {
  return integer_arg(env, argv[0], fn, "onoff", 0, 0, 1, &v->onoff) &&
         integer_arg(env, argv[1], fn, "keepalivetime", KA_UNSET, 1, KA_MAX_INT32, &v->keepalivetime) &&
         integer_arg(env, argv[2], fn, "keepaliveinterval", KA_UNSET, 1, KA_MAX_INT32, &v->keepaliveinterval) &&
         integer_arg(env, argv[3], fn, "keepalivecount", KA_UNSET, 1, KA_MAX_INT32, &v->keepalivecount) &&
         integer_arg(env, argv[4], fn, "usertimeout", KA_UNSET, 0, KA_MAX_INT32, &v->usertimeout);
}

// The per-call hot path: one napi_get_cb_info, six napi_get_value_double, the system calls.
static napi_value Apply(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!exact_args(env, info, "apply", 6, argv)) return nullptr;
  int64_t sock;
  ka_values v;
  if (!integer_arg(env, argv[0], "apply", "sock", 0, 0, KA_MAX_INT32, &sock)) return nullptr;
  if (!values_args(env, argv + 1, "apply", &v)) return nullptr;

  ka_status status = {0, 0, "", 0};
  if (ka_apply((ka_socket) sock, &v, &status) != 0) throw_status(env, &status);
  return nullptr;
}

// probe(onoff, keepalivetime, keepaliveinterval, keepalivecount, usertimeout): applies the values to a new TCP
// socket of its own, reads it back (as read() does) and closes it, so that a server can refuse, at the call,
// options the system cannot take (Windows before 10 1703 has no TCP_KEEPCNT; Wine has no TCP_MAXRT) instead of
// failing on every connection; with onoff 0 and no fields, what a new socket holds (the system's defaults).
static napi_value Probe(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!exact_args(env, info, "probe", 5, argv)) return nullptr;
  ka_values v;
  if (!values_args(env, argv, "probe", &v)) return nullptr;

  ka_values values;
  ka_status status = {0, 0, "", 0};
  if (ka_probe(&v, &values, &status) != 0) {
    throw_status(env, &status);
    return nullptr;
  }
  return values_array(env, &values);
}

// The one argument of read(sock) and queued(sock).
static bool sock_only_arg(napi_env env, napi_callback_info info, const char* fn, int64_t* sock) {
  napi_value argv[2];
  if (!exact_args(env, info, fn, 1, argv)) return false;
  return integer_arg(env, argv[0], fn, "sock", 0, 0, KA_MAX_INT32, sock);
}

// queued(sock): how many connections wait in a listening socket's accept queue, -1 where unknown.
static napi_value Queued(napi_env env, napi_callback_info info) {
  int64_t sock;
  if (!sock_only_arg(env, info, "queued", &sock)) return nullptr;
  int64_t queued = -1;
  ka_status status = {0, 0, "", 0};
  if (ka_queued((ka_socket) sock, &queued, &status) != 0) {
    throw_status(env, &status);
    return nullptr;
  }
  napi_value out;
  if (napi_create_double(env, (double) queued, &out) != napi_ok) return nullptr;
  return out;
}

static napi_value Read(napi_env env, napi_callback_info info) {
  int64_t sock;
  if (!sock_only_arg(env, info, "read", &sock)) return nullptr;

  ka_values values;
  ka_status status = {0, 0, "", 0};
  if (ka_read((ka_socket) sock, &values, &status) != 0) {
    throw_status(env, &status);
    return nullptr;
  }
  return values_array(env, &values);
}

static napi_value values_array(napi_env env, const ka_values* v) {
  const ka_values& values = *v;
  const int64_t fields[5] = {values.onoff, values.keepalivetime, values.keepaliveinterval, values.keepalivecount, values.usertimeout};
  napi_value out;
  if (napi_create_array_with_length(env, 5, &out) != napi_ok) return nullptr;
  for (uint32_t i = 0; i < 5; i++) {
    napi_value field;
    if (napi_create_double(env, (double) fields[i], &field) != napi_ok || napi_set_element(env, out, i, field) != napi_ok) return nullptr;
  }
  return out;
}

static napi_value Resolve(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  void* data = nullptr;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, &data) != napi_ok) return nullptr;
  if (argc != 5) {
    throw_count(env, "resolve", 5, argc);
    return nullptr;
  }
  int64_t fd;
  char local[KA_ADDRESS_MAX];
  char remote[KA_ADDRESS_MAX];
  bool has_local = false;
  bool has_remote = false;
  ka_endpoint endpoint;
  if (!integer_arg(env, argv[0], "resolve", "fd", -1, 0, KA_MAX_INT32, &fd)) return nullptr;
  if (!address_arg(env, argv[1], "localAddress", local, &has_local)) return nullptr;
  if (!port_arg(env, argv[2], "localPort", &endpoint.local_port)) return nullptr;
  if (!address_arg(env, argv[3], "remoteAddress", remote, &has_remote)) return nullptr;
  if (!port_arg(env, argv[4], "remotePort", &endpoint.remote_port)) return nullptr;
  endpoint.fd = (int) fd;
  endpoint.local_address = has_local ? local : nullptr;
  endpoint.remote_address = has_remote ? remote : nullptr;

  ka_socket sock = -1;
  ka_status status = {0, 0, "", 0};
  if (ka_resolve((ka_context*) data, &endpoint, &sock, &status) != 0) {
    throw_status(env, &status);
    return nullptr;
  }
  napi_value out;
  if (napi_create_double(env, (double) sock, &out) != napi_ok) return nullptr;
  return out;
}

static napi_value Stats(napi_env env, napi_callback_info info) {
  void* data = nullptr;
  if (napi_get_cb_info(env, info, nullptr, nullptr, nullptr, &data) != napi_ok) return nullptr;
  ka_stats stats;
  ka_context_stats((const ka_context*) data, &stats);
  const uint64_t fields[3] = {stats.walks, stats.handles_visited, stats.socket_calls};
  napi_value out;
  if (napi_create_array_with_length(env, 3, &out) != napi_ok) return nullptr;
  for (uint32_t i = 0; i < 3; i++) {
    napi_value field;
    if (napi_create_double(env, (double) fields[i], &field) != napi_ok || napi_set_element(env, out, i, field) != napi_ok) return nullptr;
  }
  return out;
}

static void free_context(void* ctx) {
  ka_context_free((ka_context*) ctx);
}

static napi_value init_failed(napi_env env, const char* what) {
  char text[160];
  snprintf(text, sizeof(text), "tcp-keepalive: the native addon could not initialise (%s)", what);
  napi_value message, error;
  if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message) == napi_ok && napi_create_error(env, nullptr, message, &error) == napi_ok) {
    (void) napi_throw(env, error);
  }
  return nullptr;
}

NAPI_MODULE_INIT() {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return init_failed(env, "napi_get_uv_event_loop");
  ka_context* ctx = ka_context_new(loop);
  if (ctx == nullptr) return init_failed(env, "out of memory");
  if (napi_add_env_cleanup_hook(env, free_context, ctx) != napi_ok) {
    ka_context_free(ctx);
    return init_failed(env, "napi_add_env_cleanup_hook");
  }
  const napi_property_attributes attributes = napi_default_method;
  const napi_property_descriptor functions[] = {
      {"apply", nullptr, Apply, nullptr, nullptr, nullptr, attributes, ctx},
      {"probe", nullptr, Probe, nullptr, nullptr, nullptr, attributes, ctx},
      {"queued", nullptr, Queued, nullptr, nullptr, nullptr, attributes, ctx},
      {"read", nullptr, Read, nullptr, nullptr, nullptr, attributes, ctx},
      {"resolve", nullptr, Resolve, nullptr, nullptr, nullptr, attributes, ctx},
      {"stats", nullptr, Stats, nullptr, nullptr, nullptr, attributes, ctx},
  };
  if (napi_define_properties(env, exports, sizeof(functions) / sizeof(functions[0]), functions) != napi_ok) return nullptr;
  return exports;
}
