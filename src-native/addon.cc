#include <napi.h>

#include <string>

#include "keepalive.h"

static const char* ka_code(int err) {
  switch (err) {
    case KA_ENOTTCP: return "ERR_KEEPALIVE_NOT_TCP";
    case KA_ENOTFOUND: return "ERR_KEEPALIVE_SOCKET_NOT_FOUND";
    case KA_EUNSUPPORTED: return "ERR_KEEPALIVE_UNSUPPORTED";
    default: return uv_err_name(err);
  }
}

static const char* ka_message(int err) {
  switch (err) {
    case KA_ENOTTCP: return "the socket is not a TCP socket";
    case KA_ENOTFOUND: return "no TCP handle on this event loop matches the socket's addresses";
    case KA_EUNSUPPORTED: return "this platform cannot set the option";
    default: return uv_strerror(err);
  }
}

static void throw_status(Napi::Env env, const ka_status& status) {
  std::string message = std::string(ka_code(status.err)) + ": " + ka_message(status.err) + ", " + status.syscall;
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, ka_code(status.err)));
  error.Set("errno", Napi::Number::New(env, status.err > -200000 ? status.err : 0));
  error.Set("sysErrno", Napi::Number::New(env, status.sys_errno));
  error.Set("syscall", Napi::String::New(env, status.syscall));
  error.Set("applied", Napi::Number::New(env, status.applied));
  error.ThrowAsJavaScriptException();
}

static int64_t int_arg(const Napi::CallbackInfo& info, size_t i) {
  return info[i].As<Napi::Number>().Int64Value();
}

// apply is the per-call hot path: a plain N-API callback, without node-addon-api's CallbackInfo and
// instance-method wrappers around it.
static napi_value ApplyFast(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 6;
  napi_value argv[6];
  int64_t arg[6] = {-1, KA_UNSET, KA_UNSET, KA_UNSET, KA_UNSET, KA_UNSET};
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  for (size_t i = 0; i < argc && i < 6; i++) napi_get_value_int64(env, argv[i], &arg[i]);

  ka_values values;
  values.onoff = arg[1];
  values.keepalivetime = arg[2];
  values.keepaliveinterval = arg[3];
  values.keepalivecount = arg[4];
  values.usertimeout = arg[5];

  ka_status status = {0, 0, "", 0};
  if (ka_apply((ka_socket) arg[0], &values, &status) != 0) throw_status(Napi::Env(env), status);
  return nullptr;
}

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports) {
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    ctx_ = ka_context_new(loop);
    DefineAddon(exports, {
      InstanceMethod("resolve", &Addon::Resolve),
      InstanceMethod("read", &Addon::Read),
      InstanceMethod("stats", &Addon::Stats),
    });
    napi_property_descriptor apply = {"apply", nullptr, ApplyFast, nullptr, nullptr, nullptr, napi_default, nullptr};
    napi_define_properties(env, exports, 1, &apply);
  }

  ~Addon() {
    ka_context_free(ctx_);
  }

 private:
  Napi::Value Resolve(const Napi::CallbackInfo& info) {
    std::string local = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : std::string();
    std::string remote = info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : std::string();
    ka_endpoint endpoint;
    endpoint.fd = (int) int_arg(info, 0);
    endpoint.local_address = info[1].IsString() ? local.c_str() : nullptr;
    endpoint.local_port = info[2].IsNumber() ? (int) int_arg(info, 2) : 0;
    endpoint.remote_address = info[3].IsString() ? remote.c_str() : nullptr;
    endpoint.remote_port = info[4].IsNumber() ? (int) int_arg(info, 4) : 0;

    ka_socket sock = -1;
    ka_status status = {0, 0, "", 0};
    if (ka_resolve(ctx_, &endpoint, &sock, &status) != 0) {
      throw_status(info.Env(), status);
      return info.Env().Undefined();
    }
    return Napi::Number::New(info.Env(), (double) sock);
  }

  Napi::Value Read(const Napi::CallbackInfo& info) {
    ka_values values;
    ka_status status = {0, 0, "", 0};
    if (ka_read((ka_socket) int_arg(info, 0), &values, &status) != 0) {
      throw_status(info.Env(), status);
      return info.Env().Undefined();
    }
    Napi::Array out = Napi::Array::New(info.Env(), 5);
    out.Set(0u, Napi::Number::New(info.Env(), (double) values.onoff));
    out.Set(1u, Napi::Number::New(info.Env(), (double) values.keepalivetime));
    out.Set(2u, Napi::Number::New(info.Env(), (double) values.keepaliveinterval));
    out.Set(3u, Napi::Number::New(info.Env(), (double) values.keepalivecount));
    out.Set(4u, Napi::Number::New(info.Env(), (double) values.usertimeout));
    return out;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    ka_stats stats;
    ka_context_stats(ctx_, &stats);
    Napi::Array out = Napi::Array::New(info.Env(), 3);
    out.Set(0u, Napi::Number::New(info.Env(), (double) stats.walks));
    out.Set(1u, Napi::Number::New(info.Env(), (double) stats.handles_visited));
    out.Set(2u, Napi::Number::New(info.Env(), (double) stats.socket_calls));
    return out;
  }

  ka_context* ctx_;
};

NODE_API_ADDON(Addon)
