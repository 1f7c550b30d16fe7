# scripts/lib/pg.sh: helpers to run throwaway PostgreSQL 15 instances.
#
# Sourced by scripts/check, scripts/demo, the test suites and bench/.  Every
# instance lives in its own `mktemp -d` directory owned by the user that runs
# PostgreSQL (postgres when we are root, since initdb refuses root), listens
# on a probed free loopback port and keeps its socket in that directory.
#
#   vx_pg_tmp_install DIR   copy PostgreSQL's tree into DIR and install the
#                           extension there (DESTDIR); sets VX_PGBIN
#   vx_pg_start NAME        initdb + start an instance; sets VX_<NAME>_PORT,
#                           VX_<NAME>_DIR (socket dir, data in $dir/data)
#   vx_pg_stop NAME [MODE]  stop it (fast by default)
#   vx_runas CMD...         run CMD as the PostgreSQL OS user

VX_PG_CONFIG=${PG_CONFIG:-pg_config}

if [ "$(id -u)" -eq 0 ]; then
  VX_PGUSER_OS=postgres
  # from /, when postgres cannot enter the caller's directory (a clone under
  # /root), so that runuser prints no warning into captured output
  vx_runas() {
    if [ -r "$PWD" ] && runuser -u postgres -- test -x "$PWD" 2>/dev/null; then
      runuser -u postgres -- "$@"
    else
      (cd / && runuser -u postgres -- "$@")
    fi
  }
else
  VX_PGUSER_OS=$(id -un)
  vx_runas() { "$@"; }
fi
export VX_PGUSER_OS

# Print a TCP port on 127.0.0.1 that nothing listens on.
vx_free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      # also avoid ports another of our instances reserved but has not opened
      if mkdir "/tmp/.vx-port-$p" 2>/dev/null; then
        echo "$p"
        return 0
      fi
    fi
  done
  echo "vx_free_port: no free port found" >&2
  return 1
}

# Make a directory owned by the PostgreSQL OS user.
vx_mkdir_pg() {
  local d
  d=$(mktemp -d "${TMPDIR:-/tmp}/vectron.XXXXXX")
  chmod 755 "$d"
  [ "$(id -u)" -eq 0 ] && chown "$VX_PGUSER_OS" "$d"
  echo "$d"
}

# Copy the PostgreSQL installation into $1 and install the extension there,
# so tests never touch (or depend on) the system's extension directory.
# PostgreSQL finds share/ and lib/ relative to its own binary, so a copied
# tree with our files in it behaves like a real installation.
vx_pg_tmp_install() {
  local dest=$1 bindir sharedir pkglibdir
  bindir=$($VX_PG_CONFIG --bindir)
  sharedir=$($VX_PG_CONFIG --sharedir)
  pkglibdir=$($VX_PG_CONFIG --pkglibdir)
  mkdir -p "$dest$bindir" "$dest$sharedir" "$dest$pkglibdir"
  cp -a "$bindir/." "$dest$bindir/"
  cp -a "$sharedir/." "$dest$sharedir/"
  cp -a "$pkglibdir/." "$dest$pkglibdir/"
  make -s -C "$VX_ROOT" install DESTDIR="$dest" >"$dest/install.log" 2>&1 || { cat "$dest/install.log" >&2; return 1; }
  chmod -R a+rX "$dest"
  export VX_PGBIN="$dest$bindir"
}

# vx_pg_start NAME [postgresql.conf lines...]
vx_pg_start() {
  local name=$1; shift
  local dir port uname
  uname=$(echo "$name" | tr '[:lower:]-' '[:upper:]_')
  dir=$(vx_mkdir_pg)
  port=$(vx_free_port)
  vx_runas "$VX_PGBIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync \
    -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
  {
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$dir'"
    echo "fsync = ${VX_PG_FSYNC:-off}"
    echo "shared_buffers = 256MB"
    echo "max_connections = 100"
    echo "log_min_messages = warning"
    for l in "$@"; do echo "$l"; done
  } >>"$dir/data/postgresql.conf"
  vx_runas "$VX_PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
    || { cat "$dir/server.log" >&2; return 1; }
  eval "export VX_${uname}_DIR='$dir' VX_${uname}_PORT='$port'"
}

# vx_pg_stop NAME [fast|immediate]
vx_pg_stop() {
  local name=$1 mode=${2:-fast} uname dir port
  uname=$(echo "$name" | tr '[:lower:]-' '[:upper:]_')
  eval "dir=\${VX_${uname}_DIR:-}; port=\${VX_${uname}_PORT:-}"
  [ -n "$dir" ] || return 0
  vx_runas "$VX_PGBIN/pg_ctl" -D "$dir/data" -m "$mode" -w stop >/dev/null 2>&1 || true
  rm -rf "$dir" "/tmp/.vx-port-$port"
}
