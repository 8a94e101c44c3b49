# Sourced by scripts that need a throwaway three-validator testnet on loopback
# (schemathesis.sh, promtool.sh). The caller owns `pids` (and kills them on exit).

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

# start_local_nodes BIN DIR [FLAGS...]: writes a testnet genesis into DIR (libp2p from
# $p2p_base, see pick_p2p_base) and starts its three validators with HTTP on free
# ports (appended to http_ports, their pids to pids); FLAGS go to the first node only.
# With local_tls=1 the nodes serve HTTPS only, with certificates from the testnet CA
# DIR/tls/ca.pem (`genesis testnet --tls`); scheme is then https, else http.
start_local_nodes() {
  local bin=$1 dir=$2
  shift 2
  local first=("$@") extra member port index=0 tls_flag=() tls=()
  scheme=http
  if [ "${local_tls:-0}" = 1 ]; then tls_flag=(--tls); scheme=https; fi
  "$bin" genesis testnet --out "$dir" --p2p-base-port "$p2p_base" "${tls_flag[@]}" >/dev/null
  http_ports=()
  for member in clearing-house exchange-a exchange-b; do
    port=$(free_port)
    http_ports+=("$port")
    extra=()
    if [ "$index" -eq 0 ]; then extra=("${first[@]}"); fi
    tls=()
    if [ "$scheme" = https ]; then tls=(--tls-cert "$dir/tls/$member.pem" --tls-key "$dir/tls/$member.key"); fi
    "$bin" node "${extra[@]}" "${tls[@]}" --genesis "$dir/genesis.json" --key "$dir/keys/$member.key" \
      --data "$dir/data/$member" --http "127.0.0.1:$port" >"$dir/$member.log" 2>&1 &
    pids+=($!)
    index=$((index + 1))
  done
}
