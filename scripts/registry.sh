# registry.sh: sourced by scripts that need a real registry of their own.
#   start_registry DIR   runs the CNCF distribution registry (Debian's
#                        docker-registry) on a free loopback port, storing in
#                        DIR/registry; sets REG_PORT and REG_PID, returns once
#                        /v2/ answers (non-zero if it never does).
#   stop_registry        kills it (safe to call twice, and from an EXIT trap).
start_registry() {
  local dir=$1
  REG_PORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  mkdir -p "$dir"
  cat > "$dir/registry.yml" <<YML
version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: $dir/registry }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$REG_PORT }
YML
  docker-registry serve "$dir/registry.yml" > "$dir/registry.log" 2>&1 &
  REG_PID=$!
  local _
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$REG_PORT/v2/" >/dev/null && return 0
    sleep 0.1
  done
  echo "registry did not start on 127.0.0.1:$REG_PORT (log: $dir/registry.log)" >&2
  return 1
}

stop_registry() {
  [[ -n "${REG_PID:-}" ]] && kill "$REG_PID" 2>/dev/null
  REG_PID=
  return 0
}
