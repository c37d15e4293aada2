#!/usr/bin/env bash
# Starts AutoQ on a Slurm cluster: the server job first, then a job array of
# workers (one per GPU) that starts once the server job runs.
#
#   deploy/slurm/launch.sh            server + workers
#   deploy/slurm/launch.sh server     the server alone
#   deploy/slurm/launch.sh workers    more workers for the server that runs
#                                     (AUTOQ_SERVER_JOB=ID: depend on that job)
#
# Environment (defaults in brackets):
#   AUTOQ_BIN_DIR         autoq-server / autoq-worker / autoq: an install's
#                         bin/ or a build tree [this checkout's build/ if
#                         built, else $PATH]
#   AUTOQ_STATE_DIR       shared, persistent folder: database, tokens, address
#                         file, logs [$HOME/autoq-state]
#   AUTOQ_WORKERS         array tasks, one GPU each [2]
#   AUTOQ_PARTITION       partition of both jobs [the cluster's default]
#   AUTOQ_SERVER_PARTITION, AUTOQ_WORKER_PARTITION   per job [AUTOQ_PARTITION]
#   AUTOQ_GRES            per worker [gpu:1]; "none": no --gres
#   AUTOQ_DEVICE          worker device [cuda:0]
#   AUTOQ_SERVER_CPUS     [2]      AUTOQ_WORKER_CPUS  [4]
#   AUTOQ_SERVER_MEM, AUTOQ_WORKER_MEM   --mem of each job [the cluster's default]
#   AUTOQ_SERVER_TIME, AUTOQ_WORKER_TIME --time of each job [AUTOQ_TIME, else
#                                        the partition's default]
#   AUTOQ_ACCOUNT         --account
#   AUTOQ_PORT            server port [50051]; 0: any free port
#   AUTOQ_SBATCH_ARGS     more sbatch flags for both jobs
#   AUTOQ_SERVER_SBATCH_ARGS, AUTOQ_WORKER_SBATCH_ARGS   for one of them
#   AUTOQ_SERVER_ARGS, AUTOQ_WORKER_ARGS   more flags of the programs
#   and the variables the two .sbatch files read (see their headers).
#
# Tokens: when $AUTOQ_STATE_DIR/tokens/ has none, this creates one client and
# one worker token there (mode 600); add lines to client-tokens for more users.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
what="${1:-all}"
case "$what" in
  all|server|workers) ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "launch.sh: unknown argument '$what' (all, server or workers)" >&2; exit 2 ;;
esac

die() { echo "launch.sh: error: $*" >&2; exit 1; }
command -v sbatch >/dev/null || die "sbatch not found: run this on a Slurm login node"

if [ -z "${AUTOQ_BIN_DIR:-}" ] && [ -x "$repo/build/server/autoq-server" ]; then
  AUTOQ_BIN_DIR="$repo/build"
fi
export AUTOQ_BIN_DIR="${AUTOQ_BIN_DIR:-}"
export AUTOQ_STATE_DIR="${AUTOQ_STATE_DIR:-$HOME/autoq-state}"
export AUTOQ_ADDR_FILE="${AUTOQ_ADDR_FILE:-$AUTOQ_STATE_DIR/server.addr}"
export AUTOQ_CLIENT_TOKENS="${AUTOQ_CLIENT_TOKENS:-$AUTOQ_STATE_DIR/tokens/client-tokens}"
export AUTOQ_WORKER_TOKENS="${AUTOQ_WORKER_TOKENS:-$AUTOQ_STATE_DIR/tokens/worker-tokens}"
export AUTOQ_WORKER_TOKEN_FILE="${AUTOQ_WORKER_TOKEN_FILE:-$AUTOQ_STATE_DIR/tokens/worker.token}"
export AUTOQ_DEVICE="${AUTOQ_DEVICE:-cuda:0}"
client_token_file="$AUTOQ_STATE_DIR/tokens/client.token"
workers="${AUTOQ_WORKERS:-2}"
gres="${AUTOQ_GRES:-gpu:1}"
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || die "AUTOQ_WORKERS must be a positive number, not '$workers'"

mkdir -p "$AUTOQ_STATE_DIR/logs" "$AUTOQ_STATE_DIR/tokens"
chmod 700 "$AUTOQ_STATE_DIR/tokens"

new_token() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
(
  umask 077
  if [ ! -e "$AUTOQ_CLIENT_TOKENS" ]; then
    t=$(new_token)
    echo "# NAME TOKEN: one line per user (autoq --token-file holds the token)" >"$AUTOQ_CLIENT_TOKENS"
    echo "${USER:-user} $t" >>"$AUTOQ_CLIENT_TOKENS"
    [ -e "$client_token_file" ] || echo "$t" >"$client_token_file"
    echo "launch.sh: created a client token in $client_token_file"
  fi
  if [ ! -e "$AUTOQ_WORKER_TOKENS" ]; then
    t=$(new_token)
    echo "# NAME TOKEN: tokens autoq-worker may use" >"$AUTOQ_WORKER_TOKENS"
    echo "workers $t" >>"$AUTOQ_WORKER_TOKENS"
    [ -e "$AUTOQ_WORKER_TOKEN_FILE" ] || echo "$t" >"$AUTOQ_WORKER_TOKEN_FILE"
    echo "launch.sh: created a worker token in $AUTOQ_WORKER_TOKEN_FILE"
  fi
)
[ -r "$AUTOQ_WORKER_TOKEN_FILE" ] || die "worker token file $AUTOQ_WORKER_TOKEN_FILE is missing"

common=(--parsable --export=ALL)
[ -n "${AUTOQ_ACCOUNT:-}" ] && common+=(--account "$AUTOQ_ACCOUNT")
# shellcheck disable=SC2206  # extra flags are split on spaces on purpose
common+=(${AUTOQ_SBATCH_ARGS:-})

server_job="${AUTOQ_SERVER_JOB:-}"
if [ "$what" != workers ]; then
  # The server job writes the address file anew once it listens.
  rm -f "$AUTOQ_ADDR_FILE"
  s=("${common[@]}" --job-name autoq-server --cpus-per-task "${AUTOQ_SERVER_CPUS:-2}"
     --output "$AUTOQ_STATE_DIR/logs/autoq-server-%j.out")
  p="${AUTOQ_SERVER_PARTITION:-${AUTOQ_PARTITION:-}}"
  [ -n "$p" ] && s+=(--partition "$p")
  t="${AUTOQ_SERVER_TIME:-${AUTOQ_TIME:-}}"
  [ -n "$t" ] && s+=(--time "$t")
  [ -n "${AUTOQ_SERVER_MEM:-}" ] && s+=(--mem "$AUTOQ_SERVER_MEM")
  # shellcheck disable=SC2206
  s+=(${AUTOQ_SERVER_SBATCH_ARGS:-})
  server_job=$(sbatch "${s[@]}" "$here/autoq-server.sbatch") || die "sbatch of the server failed"
  server_job="${server_job%%;*}"
  echo "launch.sh: server job $server_job"
fi

if [ "$what" != server ]; then
  w=("${common[@]}" --job-name autoq-worker --array "0-$((workers - 1))"
     --cpus-per-task "${AUTOQ_WORKER_CPUS:-4}"
     --output "$AUTOQ_STATE_DIR/logs/autoq-worker-%A_%a.out")
  if [ "$gres" = none ]; then
    w+=(--gres=none)
  else
    w+=(--gres "$gres")
  fi
  p="${AUTOQ_WORKER_PARTITION:-${AUTOQ_PARTITION:-}}"
  [ -n "$p" ] && w+=(--partition "$p")
  t="${AUTOQ_WORKER_TIME:-${AUTOQ_TIME:-}}"
  [ -n "$t" ] && w+=(--time "$t")
  [ -n "${AUTOQ_WORKER_MEM:-}" ] && w+=(--mem "$AUTOQ_WORKER_MEM")
  [ -n "$server_job" ] && w+=(--dependency "after:$server_job")
  # shellcheck disable=SC2206
  w+=(${AUTOQ_WORKER_SBATCH_ARGS:-})
  worker_job=$(sbatch "${w[@]}" "$here/autoq-workers.sbatch") || die "sbatch of the workers failed"
  worker_job="${worker_job%%;*}"
  echo "launch.sh: worker job array $worker_job (${workers} tasks, --gres $gres, --device $AUTOQ_DEVICE)"
fi

cat <<EOF
launch.sh: logs in $AUTOQ_STATE_DIR/logs; once the server runs:
  export AUTOQ_SERVER=\$(cat $AUTOQ_ADDR_FILE)
  export AUTOQ_TOKEN_FILE=$client_token_file
  autoq submit configs/smoke.json --watch
stop: scancel ${worker_job:-WORKER_JOB} ${server_job:-SERVER_JOB}   (the server stores everything and exits)
EOF
