#!/usr/bin/env bash
# Runs a single-machine control plane in the foreground: etcd (unless STORAGE=embedded), the
# kube-apiserver, and every other component binary the build produced (kube-controller-manager,
# kube-scheduler, kubelet, kube-proxy). Prints the KUBECONFIG to use; Ctrl-C or SIGTERM stops
# everything it started, by PID.
#
# Knobs (environment):
#   LOCAL_UP_DIR      state, certs, kubeconfig and logs   (default: _output/local-up)
#   API_SECURE_PORT   kube-apiserver HTTPS port            (default: 6443)
#   STORAGE           etcd | embedded                      (default: etcd)
#   BUILD             release | debug | none               (default: release; none = use binaries as they are)
#   KUBE_BIN_DIR      take binaries from here instead of the cargo target dir
#   PRESERVE_DATA     true keeps etcd / embedded data from the previous run (default: false)
#   SERVICE_CLUSTER_IP_RANGE                               (default: 10.0.0.0/24)
#   KUBE_COMPONENTS   other components to start if built   (default: kube-controller-manager kube-scheduler kubelet kube-proxy)
#   SCHEDULER_PORT, CONTROLLER_MANAGER_PORT  their HTTPS health/metrics ports (default: free ports)
#   <COMPONENT>_EXTRA_ARGS, e.g. KUBE_APISERVER_EXTRA_ARGS="--v=4", KUBELET_EXTRA_ARGS=...
#   CONTAINER_RUNTIME_ENDPOINT for the kubelet             (default: unix:///run/containerd/containerd.sock)
#
# Two copies run side by side when given different LOCAL_UP_DIR and API_SECURE_PORT.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL_UP_DIR=${LOCAL_UP_DIR:-$ROOT/_output/local-up}
API_SECURE_PORT=${API_SECURE_PORT:-6443}
API_HOST=127.0.0.1
STORAGE=${STORAGE:-etcd}
BUILD=${BUILD:-release}
PRESERVE_DATA=${PRESERVE_DATA:-false}
SERVICE_CLUSTER_IP_RANGE=${SERVICE_CLUSTER_IP_RANGE:-10.0.0.0/24}
KUBE_COMPONENTS=${KUBE_COMPONENTS:-kube-controller-manager kube-scheduler kubelet kube-proxy}
CONTAINER_RUNTIME_ENDPOINT=${CONTAINER_RUNTIME_ENDPOINT:-unix:///run/containerd/containerd.sock}
KUBECTL=${KUBECTL:-$(command -v kubectl || echo kubectl)}

LOG_DIR=$LOCAL_UP_DIR/logs
CERT_DIR=$LOCAL_UP_DIR/certs
KUBECONFIG_FILE=$LOCAL_UP_DIR/admin.kubeconfig
TOKEN_FILE=$LOCAL_UP_DIR/tokens.csv

PIDS=()
NAMES=()

log() { printf '[local-up %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

case $STORAGE in etcd | embedded) ;; *) die "STORAGE must be etcd or embedded, not '$STORAGE'" ;; esac
case $BUILD in release | debug | none) ;; *) die "BUILD must be release, debug or none, not '$BUILD'" ;; esac

# --- prerequisites -------------------------------------------------------------------------

# Install Debian packages for missing commands (apt-get update only when needed).
ensure_packages() {
  local -A pkg_for=([curl]=curl [protoc]=protobuf-compiler [flock]=util-linux)
  if [[ $STORAGE == etcd ]]; then
    pkg_for[etcd]=etcd-server
    pkg_for[etcdctl]=etcd-client
  fi
  local missing=() cmd
  for cmd in "${!pkg_for[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg_for[$cmd]}")
  done
  # protoc's well-known types (google/protobuf/*.proto), which etcd-client's build needs
  [[ -f /usr/include/google/protobuf/descriptor.proto ]] || missing+=(libprotobuf-dev)
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq >/dev/null
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
  if [[ -n ${KUBE_BIN_DIR:-} ]]; then
    BIN_DIR=$KUBE_BIN_DIR
    return
  fi
  local target=${CARGO_TARGET_DIR:-$ROOT/target}
  case $BUILD in
    release)
      log "cargo build --release (BUILD=debug for a faster, unoptimised build)"
      (cd "$ROOT" && cargo build --release --bins)
      BIN_DIR=$target/release
      ;;
    debug)
      log "cargo build (debug)"
      (cd "$ROOT" && cargo build --bins)
      BIN_DIR=$target/debug
      ;;
    none)
      BIN_DIR=$target/release
      [[ -x $BIN_DIR/kube-apiserver ]] || BIN_DIR=$target/debug
      ;;
  esac
  [[ -x $BIN_DIR/kube-apiserver ]] || die "no kube-apiserver in $BIN_DIR"
}

# --- processes ---------------------------------------------------------------------------

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    return
  fi
  local p _
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 30000))
    port_in_use "$p" || { echo "$p"; return; }
  done
  return 1
}

# start NAME CMD ARGS... : run in the background, log to $LOG_DIR/NAME.log, remember the PID.
start() {
  local name=$1
  shift
  log "starting $name (log: $LOG_DIR/$name.log)"
  printf '=== %s %s\n' "$(date -Is)" "$*" >>"$LOG_DIR/$name.log"
  "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  PIDS+=($!)
  NAMES+=("$name")
}

pid_of() {
  local i
  for i in "${!NAMES[@]}"; do
    if [[ ${NAMES[$i]} == "$1" ]]; then
      echo "${PIDS[$i]}"
      return 0
    fi
  done
  return 0
}

alive() { kill -0 "$1" 2>/dev/null; }

# Stop everything this script started, newest first: SIGTERM, grace period, SIGKILL.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local i pid
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[$i]}
    alive "$pid" || continue
    log "stopping ${NAMES[$i]} (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      log "${NAMES[$i]} ignored SIGTERM; killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  exit "$rc"
}

# wait_for NAME SECONDS CMD...: poll CMD until it succeeds; fail if NAME's process exits.
wait_for() {
  local name=$1 secs=$2
  shift 2
  local pid deadline=$((SECONDS + secs))
  pid=$(pid_of "$name")
  until "$@" >/dev/null 2>&1; do
    alive "$pid" || { tail -n 30 "$LOG_DIR/$name.log" >&2; die "$name exited; see $LOG_DIR/$name.log"; }
    ((SECONDS < deadline)) || { tail -n 30 "$LOG_DIR/$name.log" >&2; die "$name not ready after ${secs}s"; }
    sleep 0.2
  done
}

start_etcd() {
  local etcd_dir=$LOCAL_UP_DIR/etcd ports_file=$LOCAL_UP_DIR/etcd.ports attempt
  ETCD_CLIENT_PORT="" ETCD_PEER_PORT=""
  # A preserved member keeps its ports when they are still free.
  if [[ $PRESERVE_DATA == true && -f $ports_file ]]; then
    read -r ETCD_CLIENT_PORT ETCD_PEER_PORT <"$ports_file" || true
    if port_in_use "$ETCD_CLIENT_PORT" || port_in_use "$ETCD_PEER_PORT"; then
      log "saved etcd ports are taken; starting etcd with fresh data"
      rm -rf "$etcd_dir"
      ETCD_CLIENT_PORT="" ETCD_PEER_PORT=""
    fi
  fi
  for attempt in 1 2 3; do
    if [[ -z $ETCD_CLIENT_PORT || $attempt -gt 1 ]]; then
      rm -rf "$etcd_dir"
      ETCD_CLIENT_PORT=$(free_port)
      ETCD_PEER_PORT=$(free_port)
      [[ $ETCD_PEER_PORT != "$ETCD_CLIENT_PORT" ]] || ETCD_PEER_PORT=$(free_port)
    fi
    echo "$ETCD_CLIENT_PORT $ETCD_PEER_PORT" >"$ports_file"
    local client=http://127.0.0.1:$ETCD_CLIENT_PORT peer=http://127.0.0.1:$ETCD_PEER_PORT
    start etcd etcd --name=local-up --data-dir="$etcd_dir" \
      --listen-client-urls="$client" --advertise-client-urls="$client" \
      --listen-peer-urls="$peer" --initial-advertise-peer-urls="$peer" \
      --initial-cluster="local-up=$peer" --initial-cluster-state=new \
      --logger=zap --log-outputs=stderr ${ETCD_EXTRA_ARGS:-}
    local pid deadline=$((SECONDS + 30))
    pid=$(pid_of etcd)
    while alive "$pid" && ((SECONDS < deadline)); do
      if curl -fsS "$client/health" 2>/dev/null | grep -q '"health":"true"'; then
        ETCD_URL=$client
        log "etcd ready at $client"
        return
      fi
      sleep 0.2
    done
    if ! alive "$pid" && tail -n 20 "$LOG_DIR/etcd.log" | grep -q 'address already in use'; then
      log "etcd port collision; retrying with other ports"
      PIDS=("${PIDS[@]:0:${#PIDS[@]}-1}")
      NAMES=("${NAMES[@]:0:${#NAMES[@]}-1}")
      continue
    fi
    tail -n 30 "$LOG_DIR/etcd.log" >&2
    die "etcd did not become healthy; see $LOG_DIR/etcd.log"
  done
  die "etcd could not get free ports"
}

start_apiserver() {
  local storage_args
  if [[ $STORAGE == etcd ]]; then
    storage_args=(--storage-backend=etcd3 --etcd-servers="$ETCD_URL" --etcd-prefix=/registry)
  else
    storage_args=(--storage-backend=embedded --data-dir="$LOCAL_UP_DIR/data")
  fi
  start kube-apiserver "$BIN_DIR/kube-apiserver" "${storage_args[@]}" \
    --bind-address="$API_HOST" --advertise-address="$API_HOST" --secure-port="$API_SECURE_PORT" \
    --cert-dir="$CERT_DIR" --token-auth-file="$TOKEN_FILE" \
    --service-cluster-ip-range="$SERVICE_CLUSTER_IP_RANGE" ${KUBE_APISERVER_EXTRA_ARGS:-}
  wait_for kube-apiserver 120 curl -kfsS "https://$API_HOST:$API_SECURE_PORT/readyz"
  log "kube-apiserver ready at https://$API_HOST:$API_SECURE_PORT"
}

write_kubeconfig() {
  local ca=$CERT_DIR/ca.crt
  [[ -f $ca ]] || ca=$CERT_DIR/apiserver.crt
  [[ -f $ca ]] || die "kube-apiserver wrote no certificate into $CERT_DIR"
  if ! curl -fsS --cacert "$ca" "https://$API_HOST:$API_SECURE_PORT/readyz" >/dev/null 2>&1; then
    log "WARNING: the serving certificate does not verify against $ca"
  fi
  umask 077
  cat >"$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local-up
  cluster:
    server: https://$API_HOST:$API_SECURE_PORT
    certificate-authority: $ca
users:
- name: admin
  user:
    token: $ADMIN_TOKEN
contexts:
- name: local-up
  context:
    cluster: local-up
    user: admin
    namespace: default
current-context: local-up
EOF
  umask 022
}

# --- other components: one hook each, started only when the binary exists --------------------
# They all use the admin kubeconfig for now; per-component identities come with RBAC.

start_kube_controller_manager() {
  local port=${CONTROLLER_MANAGER_PORT:-$(free_port)}
  start kube-controller-manager "$1" --kubeconfig="$KUBECONFIG_FILE" \
    --service-cluster-ip-range="$SERVICE_CLUSTER_IP_RANGE" --root-ca-file="$(ca_file)" \
    --bind-address=127.0.0.1 --secure-port="$port" ${KUBE_CONTROLLER_MANAGER_EXTRA_ARGS:-}
  log "kube-controller-manager health and metrics: https://127.0.0.1:$port/healthz /metrics (self-signed)"
}

# Health/metrics on loopback and a free port (unless SCHEDULER_PORT is set), so two clusters
# can run side by side; the Lease kube-system/kube-scheduler makes extra replicas standbys.
start_kube_scheduler() {
  local port=${SCHEDULER_PORT:-$(free_port)}
  start kube-scheduler "$1" --kubeconfig="$KUBECONFIG_FILE" --bind-address=127.0.0.1 \
    --secure-port="$port" ${KUBE_SCHEDULER_EXTRA_ARGS:-}
  log "kube-scheduler health and metrics: https://127.0.0.1:$port/healthz /metrics (self-signed)"
}

start_kubelet() {
  mkdir -p "$LOCAL_UP_DIR/kubelet"
  start kubelet "$1" --kubeconfig="$KUBECONFIG_FILE" --hostname-override="$(hostname)" \
    --root-dir="$LOCAL_UP_DIR/kubelet" --container-runtime-endpoint="$CONTAINER_RUNTIME_ENDPOINT" \
    ${KUBELET_EXTRA_ARGS:-}
}

start_kube_proxy() {
  start kube-proxy "$1" --kubeconfig="$KUBECONFIG_FILE" --hostname-override="$(hostname)" \
    --proxy-mode=nftables --cluster-cidr="${CLUSTER_CIDR:-10.244.0.0/16}" ${KUBE_PROXY_EXTRA_ARGS:-}
}

ca_file() { if [[ -f $CERT_DIR/ca.crt ]]; then echo "$CERT_DIR/ca.crt"; else echo "$CERT_DIR/apiserver.crt"; fi; }

start_components() {
  local comp hook
  for comp in $KUBE_COMPONENTS; do
    if [[ ! -x $BIN_DIR/$comp ]]; then
      log "$comp not built; skipping"
      continue
    fi
    hook=start_${comp//-/_}
    if declare -F "$hook" >/dev/null; then
      "$hook" "$BIN_DIR/$comp"
    else
      start "$comp" "$BIN_DIR/$comp" --kubeconfig="$KUBECONFIG_FILE"
    fi
  done
}

# --- main --------------------------------------------------------------------------------

ensure_packages
build

mkdir -p "$LOCAL_UP_DIR" "$LOG_DIR" "$CERT_DIR"
LOCAL_UP_DIR=$(cd "$LOCAL_UP_DIR" && pwd)
LOG_DIR=$LOCAL_UP_DIR/logs CERT_DIR=$LOCAL_UP_DIR/certs
KUBECONFIG_FILE=$LOCAL_UP_DIR/admin.kubeconfig TOKEN_FILE=$LOCAL_UP_DIR/tokens.csv

# One cluster per directory.
exec 9>"$LOCAL_UP_DIR/.lock"
flock -n 9 || die "another local-up-cluster.sh is using $LOCAL_UP_DIR (set LOCAL_UP_DIR)"
port_in_use "$API_SECURE_PORT" && die "port $API_SECURE_PORT is in use (set API_SECURE_PORT)"

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ $PRESERVE_DATA != true ]]; then
  rm -rf "$LOCAL_UP_DIR/etcd" "$LOCAL_UP_DIR/data"
fi
mkdir -p "$LOCAL_UP_DIR/data"

ADMIN_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077 && printf '%s,admin,admin,"system:masters"\n' "$ADMIN_TOKEN" >"$TOKEN_FILE")

[[ $STORAGE == etcd ]] && start_etcd
start_apiserver
write_kubeconfig
start_components

cat <<EOF

Local cluster is running (storage: $STORAGE; logs in $LOG_DIR).
To use it:

  export KUBECONFIG=$KUBECONFIG_FILE
  $KUBECTL get namespaces
  $KUBECTL create configmap hello --from-literal=greeting=hi

Press Ctrl-C to stop.
EOF

# Stay in the foreground; stop everything if etcd or the apiserver dies.
while true; do
  for name in etcd kube-apiserver; do
    pid=$(pid_of "$name")
    if [[ -n $pid ]] && ! alive "$pid"; then
      tail -n 20 "$LOG_DIR/$name.log" >&2
      die "$name exited; stopping the cluster"
    fi
  done
  sleep 1 &
  wait $! || true
done
