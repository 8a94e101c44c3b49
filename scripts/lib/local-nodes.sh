# Sourced by the scripts that need a throwaway three-validator testnet on loopback
# (schemathesis.sh, promtool.sh, console.sh), from the repository root: the shared
# preamble (a tool venv, the binary, a temporary folder removed on exit together with
# every process started for it) and the testnet itself.
local_nodes_root=$PWD

# use_venv VENV PACKAGE VERSION: makes VENV (python3 -m venv) hold PACKAGE==VERSION,
# installing it with pip when it does not.
use_venv() {
  local venv=$1 package=$2 version=$3
  if ! "$venv/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version(sys.argv[1]) != sys.argv[2])' \
    "$package" "$version" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "$package==$version"
  fi
}

# use_binary: sets bin to $SEISAN_BIN, else to target/debug/seisan, built first
# (without the test hooks).
use_binary() {
  bin=${SEISAN_BIN:-$local_nodes_root/target/debug/seisan}
  if [ -z "${SEISAN_BIN:-}" ]; then
    cargo build --quiet -p seisan-node
  fi
}

# make_temp_dir NAME: sets dir to a new temporary folder (seisan-NAME.XXXXXX) and pids
# to (). On exit every pid in pids is killed, the anvil started in DIR/anvil (if any)
# is stopped, and the folder is removed.
make_temp_dir() {
  dir=$(mktemp -d -t "seisan-$1.XXXXXX")
  pids=()
  trap cleanup_temp_dir EXIT
}

cleanup_temp_dir() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -d "$dir/anvil" ]; then "$local_nodes_root/scripts/anvil.sh" stop "$dir/anvil" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$dir"
}

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Sets p2p_base: a port with the two after it free too (the genesis's libp2p ports).
pick_p2p_base() {
  p2p_base=$(python3 -c '
import socket
for _ in range(200):
    s=socket.socket(); s.bind(("127.0.0.1",0)); base=s.getsockname()[1]; s.close()
    if base > 65000: continue
    try:
        socks=[socket.socket() for _ in range(3)]
        for i,t in enumerate(socks): t.bind(("127.0.0.1",base+i))
        for t in socks: t.close()
        print(base); break
    except OSError: pass
')
}

# start_local_anvil BIN DIR: the public chain, anvil (scripts/anvil.sh), on a free
# port with its state in DIR/anvil; sets eth_rpc, and hot_address and cold_address:
# fresh custody keys (DIR/hot-wallet.key, DIR/cold-wallet.key) holding only gas.
start_local_anvil() {
  local bin=$1 dir=$2 address
  ANVIL_PORT=$(free_port)
  export ANVIL_PORT
  eth_rpc=http://127.0.0.1:$ANVIL_PORT
  "$local_nodes_root/scripts/anvil.sh" start "$dir/anvil"
  mkdir -p "$dir/keys"
  hot_address=$("$bin" custody keygen --out "$dir/hot-wallet.key")
  cold_address=$("$bin" custody keygen --out "$dir/cold-wallet.key")
  for address in "$hot_address" "$cold_address"; do
    curl -fsS -X POST -H 'content-type: application/json' \
      --data "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"anvil_setBalance\",\"params\":[\"$address\",\"0x2386f26fc10000\"]}" \
      "$eth_rpc" >/dev/null
  done
}

# write_local_genesis BIN DIR [FLAGS...]: writes a testnet genesis and the dev keys into
# DIR (libp2p from $p2p_base, see pick_p2p_base; FLAGS go to `genesis testnet`). With
# local_tls=1 also the testnet CA and the nodes' certificates, DIR/tls (`--tls`).
write_local_genesis() {
  local bin=$1 dir=$2
  shift 2
  local tls_flag=()
  if [ "${local_tls:-0}" = 1 ]; then tls_flag=(--tls); fi
  "$bin" genesis testnet --out "$dir" --p2p-base-port "$p2p_base" "${tls_flag[@]}" "$@" >/dev/null
}

# launch_local_nodes BIN DIR [FLAGS...]: starts the three validators of DIR/genesis.json
# with HTTP on free ports (appended to http_ports, their pids to pids); FLAGS go to the
# first node only, the array local_node_flags (if set) to every node. With local_tls=1
# the nodes serve HTTPS only, with the certificates of DIR/tls; scheme is then https,
# else http.
launch_local_nodes() {
  local bin=$1 dir=$2
  shift 2
  local first=("$@") extra member port index=0 tls=()
  local every=("${local_node_flags[@]+"${local_node_flags[@]}"}")
  scheme=http
  if [ "${local_tls:-0}" = 1 ]; then scheme=https; fi
  http_ports=()
  for member in clearing-house exchange-a exchange-b; do
    port=$(free_port)
    http_ports+=("$port")
    extra=()
    if [ "$index" -eq 0 ]; then extra=("${first[@]}"); fi
    tls=()
    if [ "$scheme" = https ]; then tls=(--tls-cert "$dir/tls/$member.pem" --tls-key "$dir/tls/$member.key"); fi
    "$bin" node "${extra[@]}" "${every[@]}" "${tls[@]}" --genesis "$dir/genesis.json" --key "$dir/keys/$member.key" \
      --data "$dir/data/$member" --http "127.0.0.1:$port" >"$dir/$member.log" 2>&1 &
    pids+=($!)
    index=$((index + 1))
  done
}

# start_local_nodes BIN DIR [FLAGS...]: write_local_genesis, then launch_local_nodes
# (FLAGS to the first node only).
start_local_nodes() {
  write_local_genesis "$1" "$2"
  launch_local_nodes "$@"
}
