#!/usr/bin/env bash
# Real servers for test/drivers.test.ts: PostgreSQL 15, Redis 7 and MariaDB 10.11 from Debian 12. The tests
# start their own instances (own data directories, inside a private network namespace), so any instance the
# packages start as a service is stopped and kept from starting again: it must not hold the ports or the CPU.
set -euo pipefail

need=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v mariadbd >/dev/null 2>&1 && command -v mariadb-install-db >/dev/null 2>&1 || need+=(mariadb-server)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)

if [ ${#need[@]} -gt 0 ]; then
  # policy-rc.d 101: the packages' postinst scripts must not start their services.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null
  [ "$created_policy" = 1 ] && rm -f "$policy"
fi

# Stop and disable whatever the packages run as services (systemd or SysV init), if anything runs.
for service in postgresql redis-server mariadb; do
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now "$service" >/dev/null 2>&1 || true
  elif [ -x "/etc/init.d/$service" ]; then
    "/etc/init.d/$service" stop >/dev/null 2>&1 || true
  fi
done
if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters -h 2>/dev/null | while read -r version cluster _; do pg_ctlcluster "$version" "$cluster" stop >/dev/null 2>&1 || true; done
fi

for binary in postgres redis-server mariadbd; do
  if pgrep -x "$binary" >/dev/null; then
    echo "30-servers.sh: a $binary is still running (pids $(pgrep -x "$binary" | tr '\n' ' ')); the driver suite starts its own" >&2
    exit 1
  fi
done

/usr/lib/postgresql/15/bin/postgres --version
redis-server --version
mariadbd --version
