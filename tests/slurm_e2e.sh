#!/usr/bin/env bash
# End-to-end test on a real single-node Slurm cluster, started here from
# Debian's packages (munge, slurmctld, slurmd; no cgroups, no systemd, all
# state in a temporary folder, a fake "gpu" GRES of 2 so --gres=gpu:1 works
# without GPUs).
#
#   tests/slurm_e2e.sh BUILD_DIR
#
# deploy/slurm/launch.sh submits autoq-server.sbatch (on 127.0.0.1, a free
# port) and an array of 2 autoq-workers.sbatch tasks (--device cpu: this
# machine has no GPU) that depends on it. Then a small job is submitted with
# `autoq submit`, followed with `autoq watch` and checked with `autoq
# results`; squeue must have shown both array tasks running and the server log
# both workers joining. Finally both Slurm jobs get SIGTERM (scancel --batch
# --signal=TERM) and must end COMPLETED with exit code 0.
#
# Exit 77 (CTest's SKIP_RETURN_CODE) only when Slurm cannot start here: the
# packages are missing (scripts/install_deps.sh installs slurm-wlm and munge)
# or a daemon does not come up; the reason is printed.
# AUTOQ_SLURM_E2E_KEEP=1 keeps the temporary folder.
set -uo pipefail

SKIP=77
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
bin="$(cd "$1" && pwd)" || exit 2
here="${BASH_SOURCE[0]%/*}"
[ "$here" = "${BASH_SOURCE[0]}" ] && here=.
src="$(cd "$here/.." && pwd)"
t0=$SECONDS

say() { echo "[slurm_e2e $((SECONDS - t0))s] $*"; }

# --- prerequisites -----------------------------------------------------------
missing=()
for p in munged munge slurmctld slurmd sbatch squeue sinfo scontrol scancel; do
  command -v "$p" >/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "SKIP: Slurm cannot start: ${missing[*]} not installed (Debian: apt-get install slurm-wlm munge; scripts/install_deps.sh)"
  exit $SKIP
fi
server_bin="$bin/server/autoq-server"
worker_bin="$bin/evaluator/autoq-worker"
client_bin="$bin/client/autoq"
model="$bin/fixtures/builtin_fashion_mnist.pt"
for f in "$server_bin" "$worker_bin" "$client_bin"; do
  [ -x "$f" ] || { echo "FAIL: $f is not built"; exit 1; }
done
[ -f "$model" ] || { echo "FAIL: $model is missing (the CTest fixture 'baseline' trains it)"; exit 1; }
[ -d /usr/share/datasets/fashion-mnist ] ||
  { echo "FAIL: /usr/share/datasets/fashion-mnist is missing (dataset-fashion-mnist)"; exit 1; }

tmp="$(mktemp -d /tmp/autoq-slurm-e2e.XXXXXX)"
chmod 755 "$tmp"
user="$(id -un)"
host="$(hostname -s 2>/dev/null || hostname)"
export SLURM_CONF="$tmp/etc/slurm.conf"
mkdir -p "$tmp/etc" "$tmp/munge" "$tmp/ctld" "$tmp/spool" "$tmp/log" "$tmp/autoq"
chmod 700 "$tmp/munge"

munged_pid=""
ctld_pid=""
slurmd_pid=""
jobs_to_cancel=()
ok=0

# Every process this test started, children of the daemons included.
descendants() {
  local p
  for p in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$p"
    descendants "$p"
  done
}

stop_pids() {  # PID... : TERM, then KILL whatever is left after 5 s
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null
  local i
  for i in $(seq 50); do
    local alive=0 p
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null
}

dump_logs() {
  local f
  for f in "$tmp"/log/*.log "$tmp"/autoq/logs/*; do
    [ -f "$f" ] || continue
    echo "----- $f (last 40 lines)"
    tail -n 40 "$f"
  done
}

cleanup() {
  trap - EXIT INT TERM
  if [ ${#jobs_to_cancel[@]} -gt 0 ] && [ -n "$ctld_pid" ]; then
    scancel "${jobs_to_cancel[@]}" 2>/dev/null
    for _ in $(seq 50); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  local rest=()
  [ -n "$slurmd_pid" ] && rest+=($(descendants "$slurmd_pid") "$slurmd_pid")
  [ -n "$ctld_pid" ] && rest+=("$ctld_pid")
  stop_pids "${rest[@]}"
  if [ -n "$munged_pid" ]; then stop_pids "$munged_pid"; fi
  if [ $ok = 1 ] && [ -z "${AUTOQ_SLURM_E2E_KEEP:-}" ]; then
    rm -rf "$tmp"
  else
    echo "[slurm_e2e] files kept in $tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*"; dump_logs; exit 1; }
skip() { echo "SKIP: Slurm cannot start here: $*"; dump_logs; exit $SKIP; }

wait_for() {  # SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.5
  done
  say "$what"
}

free_ports() {  # N free TCP ports on 127.0.0.1
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# --- munge ---------------------------------------------------------------------
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$tmp/munge/munge.key"
munge_sock="$tmp/munge/munge.socket"
munged --foreground --force --key-file="$tmp/munge/munge.key" --socket="$munge_sock" \
  --pid-file="$tmp/munge/munged.pid" --seed-file="$tmp/munge/munged.seed" \
  --log-file="$tmp/log/munged.log" >"$tmp/log/munged.out" 2>&1 &
munged_pid=$!
wait_for 10 "munged up" test -S "$munge_sock" ||
  skip "munged did not start: $(cat "$tmp/log/munged.out" "$tmp/log/munged.log" 2>/dev/null)"
munge -n -S "$munge_sock" | unmunge -S "$munge_sock" >/dev/null 2>"$tmp/log/unmunge.err" ||
  skip "munge cannot encode/decode a credential: $(cat "$tmp/log/unmunge.err")"

# --- slurm.conf: one node on localhost ---------------------------------------------
read -r ctld_port slurmd_port autoq_port <<<"$(free_ports 3)"
cat >"$SLURM_CONF" <<EOF
# One-node test cluster of tests/slurm_e2e.sh (no cgroups, no systemd).
ClusterName=autoqe2e
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$munge_sock
StateSaveLocation=$tmp/ctld
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# The node may promise more CPUs than there are: the server and two 1-CPU
# workers must run at once on a 2-core machine.
SlurmdParameters=config_overrides
ReturnToService=2
GresTypes=gpu
KillWait=10
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=4 Gres=gpu:2 State=UNKNOWN
PartitionName=autoq Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
# Two fake GPUs: Slurm drops a GPU without a device file; no cgroup uses them.
echo "NodeName=$host Name=gpu File=/dev/null,/dev/zero" >"$tmp/etc/gres.conf"

# --- slurmctld and slurmd ---------------------------------------------------------
slurmctld -D -i -f "$SLURM_CONF" >"$tmp/log/slurmctld.out" 2>&1 &
ctld_pid=$!
wait_for 20 "slurmctld up" scontrol ping >/dev/null 2>&1 ||
  { kill -0 "$ctld_pid" 2>/dev/null || ctld_pid=""
    skip "slurmctld does not answer: $(tail -n 20 "$tmp/log/slurmctld.out")"; }
slurmd -D -f "$SLURM_CONF" >"$tmp/log/slurmd.out" 2>&1 &
slurmd_pid=$!
node_idle() {
  kill -0 "$slurmd_pid" 2>/dev/null || return 2
  [ "$(sinfo -h -n "$host" -o %T 2>/dev/null)" = idle ]
}
wait_for 30 "node $host idle" node_idle
case $? in
  0) ;;
  2) slurmd_pid=""; skip "slurmd exited: $(tail -n 20 "$tmp/log/slurmd.out")" ;;
  *) fail "node $host is not idle after 30 s: $(sinfo -N -o '%N %T %G %E' 2>&1)" ;;
esac
sinfo -N -o '%N %T %C %G'

# --- AutoQ through deploy/slurm/launch.sh ---------------------------------------
export AUTOQ_BIN_DIR="$bin"
export AUTOQ_STATE_DIR="$tmp/autoq"
export AUTOQ_WORKERS=2
export AUTOQ_PARTITION=autoq
export AUTOQ_GRES=gpu:1
export AUTOQ_DEVICE=cpu  # no GPU here; on a GPU node: cuda:0
export AUTOQ_PORT="$autoq_port"
export AUTOQ_LISTEN_HOST=127.0.0.1
export AUTOQ_ADVERTISE_HOST=127.0.0.1
export AUTOQ_SERVER_CPUS=1
export AUTOQ_WORKER_CPUS=1
export AUTOQ_CACHE_DIR="$tmp/autoq/model-cache"
export AUTOQ_SBATCH_ARGS="--time=10"
"$src/deploy/slurm/launch.sh" >"$tmp/log/launch.out" 2>&1 ||
  fail "launch.sh failed: $(cat "$tmp/log/launch.out")"
cat "$tmp/log/launch.out"
server_job=$(sed -n 's/^launch.sh: server job \([0-9][0-9]*\).*/\1/p' "$tmp/log/launch.out")
worker_job=$(sed -n 's/^launch.sh: worker job array \([0-9][0-9]*\).*/\1/p' "$tmp/log/launch.out")
[ -n "$server_job" ] && [ -n "$worker_job" ] || fail "no job ids in the output of launch.sh"
jobs_to_cancel=("$worker_job" "$server_job")
addr_file="$tmp/autoq/server.addr"
client_token="$tmp/autoq/tokens/client.token"
server_log="$tmp/autoq/logs/autoq-server-$server_job.log"

wait_for 60 "server job $server_job wrote its address" test -s "$addr_file" ||
  fail "the server job wrote no address: $(squeue 2>&1; scontrol show job "$server_job" 2>&1 | grep -E 'JobState|Reason')"
addr="$(cat "$addr_file")"
say "server address: $addr"
[ "$addr" = "127.0.0.1:$autoq_port" ] || fail "address file holds '$addr', expected 127.0.0.1:$autoq_port"

# squeue must show both array tasks running, each with one (fake) GPU.
two_running() {
  squeue -h -j "$worker_job" -t RUNNING -o '%i %T %b' >"$tmp/log/squeue.txt" 2>&1
  [ "$(grep -c RUNNING "$tmp/log/squeue.txt")" = 2 ]
}
wait_for 60 "both worker tasks running" two_running ||
  fail "squeue does not show 2 running worker tasks: $(squeue 2>&1)"
[ "$(grep -c 'gpu:1' "$tmp/log/squeue.txt")" = 2 ] ||
  fail "the worker tasks do not hold one GPU each: $(cat "$tmp/log/squeue.txt")"
squeue -o '%.12i %.14j %.9T %.6C %.12b %R' | tee "$tmp/log/squeue_running.txt"
grep -q "${worker_job}_0 " "$tmp/log/squeue_running.txt" &&
  grep -q "${worker_job}_1 " "$tmp/log/squeue_running.txt" ||
  fail "squeue does not list array tasks ${worker_job}_0 and ${worker_job}_1"

two_joined() { [ "$(grep -c ') joined$' "$server_log" 2>/dev/null)" -ge 2 ]; }
wait_for 60 "both workers joined the server" two_joined ||
  fail "the server log does not show 2 workers joining"
grep ') joined$' "$server_log"
for i in 0 1; do
  grep -q "$host-${worker_job}_$i, cpu) joined" "$server_log" ||
    fail "worker ${worker_job}_$i did not join under its name"
done

# --- a small job ----------------------------------------------------------------------
cat >"$tmp/job.json" <<EOF
{
  "name": "slurm-e2e",
  "model": {"path": "$model"},
  "dataset": {"spec": "fashion-mnist", "val_size": 1000, "val_subset": 200,
              "test_subset": 500, "seed": 1},
  "scheme": {"granularity": "per-channel"},
  "search": {"population": 8, "generations": 1, "seed": 3,
             "min_bits": 3, "max_bits": 8,
             "qat": {"epochs": 1, "train_subset": 256}},
  "final_front": {"recipe": {"epochs": 1, "act_quant_delay": 0,
                             "bn_freeze_epoch": -1, "train_subset": 256},
                  "compare_uniform": false}
}
EOF
export AUTOQ_SERVER="$addr"
export AUTOQ_TOKEN_FILE="$client_token"
job=$("$client_bin" submit "$tmp/job.json" 2>"$tmp/log/submit.err") ||
  fail "autoq submit failed: $(cat "$tmp/log/submit.err")"
say "submitted AutoQ job $job"
timeout 150 "$client_bin" watch "$job" >"$tmp/log/watch.out" 2>&1
rc=$?
tail -n 25 "$tmp/log/watch.out"
[ $rc = 124 ] && fail "autoq watch $job did not end within 150 s"
[ $rc = 0 ] || fail "autoq watch $job exited with $rc"
"$client_bin" results "$job" >"$tmp/log/results.out" 2>&1 ||
  fail "autoq results $job: $(cat "$tmp/log/results.out")"
cat "$tmp/log/results.out"
"$client_bin" results "$job" --json >"$tmp/log/results.json" 2>&1 ||
  fail "autoq results $job --json: $(cat "$tmp/log/results.json")"
python3 - "$tmp/log/results.json" <<'EOF' || fail "the results hold no final front"
import json, sys
r = json.load(open(sys.argv[1]))
state = r["status"]["state"]
front = (r.get("finalFront") or r.get("final_front") or {}).get("front", [])
print(f"results: {state}, {len(front)} front points")
assert state == "JOB_FINISHED", state
assert len(front) >= 1
for p in front:
    assert p.get("sizeBytes", p.get("size_bytes", 0)) and p.get("wbits"), p
EOF
"$client_bin" list >"$tmp/log/list.out" 2>&1 || fail "autoq list: $(cat "$tmp/log/list.out")"
grep -q "$job" "$tmp/log/list.out" || fail "autoq list does not show $job"

# --- SIGTERM through Slurm: workers leave, the server stores and exits 0 --------------
state_of() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | sort -u | tr '\n' ' '; }
gone() { [ -z "$(squeue -h -j "$1" -o %i 2>/dev/null)" ]; }
scancel --batch --signal=TERM "$worker_job" || fail "scancel of the workers failed"
wait_for 60 "worker tasks ended" gone "$worker_job" || fail "the workers did not leave on SIGTERM"
[ "$(state_of "$worker_job")" = "COMPLETED " ] ||
  fail "worker tasks ended $(state_of "$worker_job"), not COMPLETED: $(scontrol show job "$worker_job" | grep -E 'JobId|ExitCode')"
# Both array tasks did part of the job, and left without abandoning anything.
for i in 0 1; do
  out="$tmp/autoq/logs/autoq-worker-${worker_job}_$i.out"
  line=$(grep -E 'leaving: [0-9]+ completed' "$out" | tail -n 1)
  say "worker ${worker_job}_$i: ${line#*: }"
  [[ "$line" =~ leaving:\ ([0-9]+)\ completed.*\ 0\ abandoned ]] && [ "${BASH_REMATCH[1]}" -ge 1 ] ||
    fail "worker ${worker_job}_$i did not complete a task and leave cleanly: $(tail -n 5 "$out")"
done
wait_for 15 "server saw both workers leave" \
  test "$(grep -c ') left: ' "$server_log" 2>/dev/null)" -ge 2 ||
  say "note: the server log has no 'left' lines for both workers"
scancel --batch --signal=TERM "$server_job" || fail "scancel of the server failed"
wait_for 60 "server job ended" gone "$server_job" || fail "the server did not stop on SIGTERM"
scontrol show job "$server_job" | grep -E 'JobState|ExitCode' | sed 's/^ */  /'
[ "$(state_of "$server_job")" = "COMPLETED " ] ||
  fail "the server job ended $(state_of "$server_job"), not COMPLETED"
grep -q 'ExitCode=0:0' <<<"$(scontrol show job "$server_job")" || fail "the server job did not exit 0"
grep -q '^autoq-server: stopped' "$server_log" || fail "the server log has no 'stopped' line"
[ ! -e "$addr_file" ] || fail "the server job left its address file behind"
jobs_to_cancel=()

ok=1
say "PASS: 2 Slurm array workers ran AutoQ job $job to its final front; SIGTERM ended both jobs cleanly"
