#ifndef TCP_KEEPALIVE_ADDRESS_H
#define TCP_KEEPALIVE_ADDRESS_H

// A socket's address as the lookups by address compare it (on Windows always; on POSIX for runtimes that expose
// no descriptor): IPv4-mapped IPv6 folded to IPv4, a zone index dropped, and a cache key of local and remote.

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#endif
#include <string.h>

#include <string>

#include "keepalive.h"

typedef std::string ka_key;

struct ka_addr {
  unsigned char family;
  unsigned char bytes[16];
  unsigned port;
};

static inline void addr_set_v4(ka_addr* out, const void* bytes, unsigned port) {
  memset(out, 0, sizeof(*out));
  out->family = 4;
  memcpy(out->bytes, bytes, 4);
  out->port = port;
}

static inline void addr_set_v6(ka_addr* out, const struct in6_addr* addr, unsigned port) {
  if (IN6_IS_ADDR_V4MAPPED(addr)) {
    addr_set_v4(out, addr->s6_addr + 12, port);
    return;
  }
  memset(out, 0, sizeof(*out));
  out->family = 6;
  memcpy(out->bytes, addr->s6_addr, 16);
  out->port = port;
}

static inline bool addr_from_sockaddr(const struct sockaddr_storage* storage, ka_addr* out) {
  if (storage->ss_family == AF_INET) {
    const struct sockaddr_in* in = (const struct sockaddr_in*) storage;
    addr_set_v4(out, &in->sin_addr, ntohs(in->sin_port));
    return true;
  }
  if (storage->ss_family == AF_INET6) {
    const struct sockaddr_in6* in6 = (const struct sockaddr_in6*) storage;
    addr_set_v6(out, &in6->sin6_addr, ntohs(in6->sin6_port));
    return true;
  }
  return false;
}

static inline bool addr_from_string(const char* text, int port, ka_addr* out) {
  if (text == nullptr || port < 0 || port > 65535) return false;
  char host[INET6_ADDRSTRLEN + 1];
  size_t len = strcspn(text, "%");
  if (len == 0 || len >= sizeof(host)) return false;
  memcpy(host, text, len);
  host[len] = '\0';
  struct in_addr v4;
  if (inet_pton(AF_INET, host, &v4) == 1) {
    addr_set_v4(out, &v4, (unsigned) port);
    return true;
  }
  struct in6_addr v6;
  if (inet_pton(AF_INET6, host, &v6) == 1) {
    addr_set_v6(out, &v6, (unsigned) port);
    return true;
  }
  return false;
}

static inline bool addr_equal(const ka_addr* a, const ka_addr* b) {
  return a->family == b->family && a->port == b->port && memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

static inline void key_append(ka_key* key, const ka_addr* addr) {
  key->push_back((char) addr->family);
  key->append((const char*) addr->bytes, addr->family == 4 ? 4 : 16);
  key->push_back((char) (addr->port >> 8));
  key->push_back((char) (addr->port & 0xff));
}

static inline ka_key key_of(const ka_addr* local, const ka_addr* remote) {
  ka_key key(remote != nullptr ? "C" : "L");
  key_append(&key, local);
  if (remote != nullptr) key_append(&key, remote);
  return key;
}

// The endpoint's local address, and its remote one unless it is a listener (`*peer` null then); false if
// either does not parse.
static inline bool endpoint_addrs(const ka_endpoint* endpoint, ka_addr* local, ka_addr* remote, const ka_addr** peer) {
  if (!addr_from_string(endpoint->local_address, endpoint->local_port, local)) return false;
  *peer = nullptr;
  if (endpoint->remote_address == nullptr) return true;
  if (!addr_from_string(endpoint->remote_address, endpoint->remote_port, remote)) return false;
  *peer = remote;
  return true;
}

#endif
