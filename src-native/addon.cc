// Node-API glue (node-addon-api): checks the arguments, calls keepalive_posix.cc / keepalive_win.cc, throws.
//
// Never aborts. Built without C++ exceptions, node-addon-api would call napi_fatal_error where it cannot
// throw (a worker being terminated); NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS drops such an exception
// instead. That mode still aborts when asked to throw over an exception already pending, so every throw here
// goes through raise(), which throws only when none is: the environments in which throwing fails are going away.
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
// Context-aware: each environment (main thread, every worker) gets its own ka_context as its instance data,
// freed with the environment.
#define NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#include <napi.h>

#include <cmath>
#include <stdio.h>
#include <string>

#include "keepalive.h"

namespace {

constexpr double kMaxInt32 = 2147483647.0;
constexpr size_t kAddressMax = 64;

void raise(const Napi::Error& error) {
  if (!error.IsEmpty() && !error.Env().IsExceptionPending()) error.ThrowAsJavaScriptException();
}

template <typename E>
bool fail(Napi::Env env, const char* code, const char* message) {
  E error = E::New(env, message);
  if (!error.IsEmpty() && error.Set("code", code)) raise(error);
  return false;
}

const char* ka_code(int err) {
  switch (err) {
    case KA_ENOTTCP: return "ERR_KEEPALIVE_NOT_TCP";
    case KA_ENOTFOUND: return "ERR_KEEPALIVE_SOCKET_NOT_FOUND";
    case KA_EUNSUPPORTED: return "ERR_KEEPALIVE_UNSUPPORTED";
    case KA_EUNSUPPORTED_BY_SOCKET: return "ERR_KEEPALIVE_UNSUPPORTED";
    default: return uv_err_name(err);
  }
}

const char* ka_message(int err) {
  switch (err) {
    case KA_ENOTTCP: return "the socket is not a TCP socket";
    case KA_ENOTFOUND: return "no TCP handle on this event loop matches the socket's addresses";
    case KA_EUNSUPPORTED: return "this platform does not support the option";
    case KA_EUNSUPPORTED_BY_SOCKET: return "this socket's protocol (MPTCP) does not support the option on this kernel";
    default: return uv_strerror(err);
  }
}

// An OS (or KA_*) failure: Error with code, errno, sysErrno, syscall and the applied bits.
Napi::Value fail_status(Napi::Env env, const ka_status& status) {
  char text[256];
  snprintf(text, sizeof(text), "%s: %s, %s", ka_code(status.err), ka_message(status.err), status.syscall);
  Napi::Error error = Napi::Error::New(env, text);
  if (!error.IsEmpty() && error.Set("code", ka_code(status.err)) && error.Set("errno", (double) (status.err > -200000 ? status.err : 0)) &&
      error.Set("sysErrno", (double) status.sys_errno) && error.Set("syscall", status.syscall) && error.Set("applied", (double) status.applied)) {
    raise(error);
  }
  return {};
}

const char* type_name(const Napi::Value& value) {
  switch (value.Type()) {
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

// Exactly `expected` arguments; else throws and returns false.
bool exact_args(const Napi::CallbackInfo& info, const char* fn, size_t expected) {
  size_t got = info.Length();
  if (got == expected) return true;
  char text[160];
  snprintf(text, sizeof(text), "binding.%s takes %u argument%s, received %u", fn, (unsigned) expected, expected == 1 ? "" : "s", (unsigned) got);
  return fail<Napi::TypeError>(info.Env(), got < expected ? "ERR_MISSING_ARGS" : "ERR_TOO_MANY_ARGS", text);
}

// A number that is an integer in [min, max], or exactly `sentinel` (pass min to have none). Throws and
// returns false otherwise. Comparisons are false for NaN, and the cast happens only after the range check.
bool integer_arg(const Napi::Value& value, const char* fn, const char* name, double sentinel, double min, double max, int64_t* out) {
  char text[240];
  if (!value.IsNumber()) {
    snprintf(text, sizeof(text), "The \"%s\" argument of binding.%s must be of type number. Received %s", name, fn, type_name(value));
    return fail<Napi::TypeError>(value.Env(), "ERR_INVALID_ARG_TYPE", text);
  }
  double d = value.As<Napi::Number>().DoubleValue();
  if ((d == sentinel || (d >= min && d <= max)) && d == (double) (int64_t) d) {
    *out = (int64_t) d;
    return true;
  }
  char received[32];
  if (std::isnan(d)) snprintf(received, sizeof(received), "NaN");
  else if (std::isinf(d)) snprintf(received, sizeof(received), "%sInfinity", d < 0 ? "-" : "");
  else snprintf(received, sizeof(received), "%.17g", d);
  snprintf(text, sizeof(text), "The value of \"%s\" (binding.%s) is out of range. It must be an integer >= %.0f and <= %.0f%s. Received %s",
           name, fn, min, max, sentinel < min ? " (or -1)" : "", received);
  return fail<Napi::RangeError>(value.Env(), "ERR_OUT_OF_RANGE", text);
}

// A string of at most kAddressMax - 1 bytes without NUL (*out points into *text), or undefined (*out = nullptr).
bool address_arg(const Napi::Value& value, const char* name, std::string* text, const char** out) {
  *out = nullptr;
  if (value.IsUndefined()) return true;
  char message[200];
  if (!value.IsString()) {
    snprintf(message, sizeof(message), "The \"%s\" argument of binding.resolve must be of type string or undefined. Received %s", name, type_name(value));
    return fail<Napi::TypeError>(value.Env(), "ERR_INVALID_ARG_TYPE", message);
  }
  *text = value.As<Napi::String>().Utf8Value();
  if (text->size() < kAddressMax && text->find('\0') == std::string::npos) {
    *out = text->c_str();
    return true;
  }
  snprintf(message, sizeof(message), "The argument \"%s\" of binding.resolve is not an IP address (at most %d bytes, no NUL)", name, (int) kAddressMax - 1);
  return fail<Napi::TypeError>(value.Env(), "ERR_INVALID_ARG_VALUE", message);
}

bool port_arg(const Napi::Value& value, const char* name, int* out) {
  int64_t port = 0;
  if (!value.IsUndefined() && !integer_arg(value, "resolve", name, 0, 0, 65535, &port)) return false;
  *out = (int) port;
  return true;
}

// onoff, keepalivetime, keepaliveinterval, keepalivecount, usertimeout from info[first .. first + 4].
bool values_args(const Napi::CallbackInfo& info, size_t first, const char* fn, ka_values* v) {
  return integer_arg(info[first], fn, "onoff", 0, 0, 1, &v->onoff) &&
         integer_arg(info[first + 1], fn, "keepalivetime", KA_UNSET, 1, kMaxInt32, &v->keepalivetime) &&
         integer_arg(info[first + 2], fn, "keepaliveinterval", KA_UNSET, 1, kMaxInt32, &v->keepaliveinterval) &&
         integer_arg(info[first + 3], fn, "keepalivecount", KA_UNSET, 1, kMaxInt32, &v->keepalivecount) &&
         integer_arg(info[first + 4], fn, "usertimeout", KA_UNSET, 0, kMaxInt32, &v->usertimeout);
}

// The one argument of read(sock), queued(sock) and tcpInfo(sock).
bool sock_only_arg(const Napi::CallbackInfo& info, const char* fn, int64_t* sock) {
  return exact_args(info, fn, 1) && integer_arg(info[0], fn, "sock", 0, 0, kMaxInt32, sock);
}

Napi::Value numbers(Napi::Env env, std::initializer_list<double> fields) {
  Napi::Array out = Napi::Array::New(env, fields.size());
  uint32_t i = 0;
  for (double field : fields) {
    if (out.IsEmpty() || !out.Set(i++, field)) return {};
  }
  return out;
}

Napi::Value values_array(Napi::Env env, const ka_values& v) {
  return numbers(env, {(double) v.onoff, (double) v.keepalivetime, (double) v.keepaliveinterval, (double) v.keepalivecount, (double) v.usertimeout});
}

// The per-call hot path: the arguments, the system calls.
Napi::Value Apply(const Napi::CallbackInfo& info) {
  int64_t sock;
  ka_values v;
  if (!exact_args(info, "apply", 6) || !integer_arg(info[0], "apply", "sock", 0, 0, kMaxInt32, &sock) || !values_args(info, 1, "apply", &v)) return {};
  ka_status status = {0, 0, "", 0};
  if (ka_apply((ka_socket) sock, &v, &status) != 0) fail_status(info.Env(), status);
  return {};
}

// probe(onoff, keepalivetime, keepaliveinterval, keepalivecount, usertimeout): applies the values to a new TCP
// socket of its own, reads it back (as read() does) and closes it, so that a server can refuse, at the call,
// options the system cannot take (Windows before 10 1703 has no TCP_KEEPCNT; Wine has no TCP_MAXRT) instead of
// failing on every connection; with onoff 0 and no fields, what a new socket holds (the system's defaults).
Napi::Value Probe(const Napi::CallbackInfo& info) {
  ka_values v;
  if (!exact_args(info, "probe", 5) || !values_args(info, 0, "probe", &v)) return {};
  ka_values values;
  ka_status status = {0, 0, "", 0};
  if (ka_probe(&v, &values, &status) != 0) return fail_status(info.Env(), status);
  return values_array(info.Env(), values);
}

// queued(sock): how many connections wait in a listening socket's accept queue, -1 where unknown.
Napi::Value Queued(const Napi::CallbackInfo& info) {
  int64_t sock;
  if (!sock_only_arg(info, "queued", &sock)) return {};
  int64_t queued = -1;
  ka_status status = {0, 0, "", 0};
  if (ka_queued((ka_socket) sock, &queued, &status) != 0) return fail_status(info.Env(), status);
  return Napi::Number::New(info.Env(), (double) queued);
}

Napi::Value Read(const Napi::CallbackInfo& info) {
  int64_t sock;
  if (!sock_only_arg(info, "read", &sock)) return {};
  ka_values values;
  ka_status status = {0, 0, "", 0};
  if (ka_read((ka_socket) sock, &values, &status) != 0) return fail_status(info.Env(), status);
  return values_array(info.Env(), values);
}

// tcpInfo(sock): [state, the KA_TCP_INFO_FIELDS numbers (-1: not reported), raw: { field: number }].
Napi::Value TcpInfo(const Napi::CallbackInfo& info) {
  int64_t sock;
  if (!sock_only_arg(info, "tcpInfo", &sock)) return {};
  ka_tcp_info tcp;
  ka_status status = {0, 0, "", 0};
  if (ka_read_tcp_info((ka_socket) sock, &tcp, &status) != 0) return fail_status(info.Env(), status);
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env, KA_TCP_INFO_FIELDS + 2);
  Napi::Object raw = Napi::Object::New(env);
  if (out.IsEmpty() || raw.IsEmpty() || !out.Set(0u, (double) tcp.state)) return {};
  for (uint32_t i = 0; i < KA_TCP_INFO_FIELDS; i++) {
    if (!out.Set(i + 1, tcp.fields[i])) return {};
  }
  for (int i = 0; i < tcp.raw_count; i++) {
    if (!raw.Set(tcp.raw[i].name, tcp.raw[i].value)) return {};
  }
  if (!out.Set(KA_TCP_INFO_FIELDS + 1, raw)) return {};
  return out;
}

Napi::Value Resolve(const Napi::CallbackInfo& info) {
  int64_t fd;
  std::string local, remote;
  ka_endpoint endpoint;
  if (!exact_args(info, "resolve", 5) || !integer_arg(info[0], "resolve", "fd", -1, 0, kMaxInt32, &fd) ||
      !address_arg(info[1], "localAddress", &local, &endpoint.local_address) || !port_arg(info[2], "localPort", &endpoint.local_port) ||
      !address_arg(info[3], "remoteAddress", &remote, &endpoint.remote_address) || !port_arg(info[4], "remotePort", &endpoint.remote_port)) {
    return {};
  }
  endpoint.fd = (int) fd;
  ka_socket sock = -1;
  ka_status status = {0, 0, "", 0};
  if (ka_resolve(info.Env().GetInstanceData<ka_context>(), &endpoint, &sock, &status) != 0) return fail_status(info.Env(), status);
  return Napi::Number::New(info.Env(), (double) sock);
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  ka_stats stats;
  ka_context_stats(info.Env().GetInstanceData<ka_context>(), &stats);
  return numbers(info.Env(), {(double) stats.walks, (double) stats.handles_visited, (double) stats.socket_calls});
}

void free_context(Napi::Env, ka_context* ctx) {
  ka_context_free(ctx);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  uv_loop_t* loop = nullptr;
  ka_context* ctx = napi_get_uv_event_loop(env, &loop) == napi_ok && loop != nullptr ? ka_context_new(loop) : nullptr;
  if (ctx == nullptr) {
    raise(Napi::Error::New(env, "tcp-keepalive: the native addon could not initialise (no event loop, or out of memory)"));
    return {};
  }
  env.SetInstanceData<ka_context, free_context>(ctx);
  const auto method = [env](const char* name, Napi::Function fn) { return Napi::PropertyDescriptor::Value(name, fn, napi_default_method); };
  exports.DefineProperties({
      method("apply", Napi::Function::New<Apply>(env, "apply")),
      method("probe", Napi::Function::New<Probe>(env, "probe")),
      method("queued", Napi::Function::New<Queued>(env, "queued")),
      method("read", Napi::Function::New<Read>(env, "read")),
      method("resolve", Napi::Function::New<Resolve>(env, "resolve")),
      method("stats", Napi::Function::New<Stats>(env, "stats")),
      method("tcpInfo", Napi::Function::New<TcpInfo>(env, "tcpInfo")),
  });
  return exports;
}

}  // namespace

NODE_API_MODULE(NODE_GYP_MODULE_NAME, Init)
