#!/usr/bin/env bash
# The whole pipeline on a live single-node SLURM, through workflow profiles and
# Snakemake's SLURM executor plugin: `make test-slurm`.
#
# Installs the Debian packages if missing (root), starts munged, slurmctld and slurmd with
# a minimal config in a temporary folder, runs tests/slurm/tiny.yaml through
# tests/slurm/profile, checks that every job ran as a SLURM job (its job id in the run's
# log and its SLURM log file) and that the tables exist, then stops the daemons by PID.
# Where the daemons cannot be had (not root, no packages, no node coming up) it prints
# a line starting "SKIP:" and exits 0; a failing pipeline exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
PY=${PYTHON:-$REPO/.venv/bin/python}
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")  # absolute, the venv's link kept
skip() { echo "SKIP: live-SLURM test: $*"; exit 0; }

[ "$(id -u)" = 0 ] || skip "needs root to install and start SLURM"
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    echo "installing slurmctld slurmd slurm-client munge (Debian packages)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null; } \
        || skip "could not install the SLURM packages"
fi
"$PY" -c "import snakemake_executor_plugin_slurm" 2>/dev/null \
    || skip "snakemake-executor-plugin-slurm missing (pip install -e '.[test]')"

TMP=$(mktemp -d /tmp/dfnas-slurm.XXXXXX)
chmod 755 "$TMP"
PIDS=()
stop() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop EXIT

# munge at its standard socket (slurmd reads it before it has a config: configless mode
# below), with a key of its own in the temporary folder, run as user munge; a munged
# already answering there is used as it is
SOCKET=/run/munge/munge.socket.2
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    mkdir -p "$TMP/munge-key" /run/munge
    dd if=/dev/urandom of="$TMP/munge-key/munge.key" bs=1 count=1024 status=none
    chown -R munge:munge "$TMP/munge-key" /run/munge
    chmod 700 "$TMP/munge-key" && chmod 400 "$TMP/munge-key/munge.key" && chmod 755 /run/munge
    runuser -u munge -- munged --foreground --key-file "$TMP/munge-key/munge.key" \
        --pid-file "$TMP/munged.pid" --log-file "$TMP/munged.log" \
        --seed-file "$TMP/munged.seed" 2>"$TMP/munged.out" &
    PIDS+=($!)
    for _ in $(seq 20); do [ -S "$SOCKET" ] && break; sleep 0.5; done
    [ -S "$SOCKET" ] || { cat "$TMP/munged.out"; skip "munged did not start (above)"; }
fi

HOST=$(hostname -s)
MEM=$(awk '/MemTotal/ {print int($2 / 1024) - 1024}' /proc/meminfo)
mkdir -p "$TMP/state" "$TMP/spool"
cat > "$TMP/slurm.conf" <<EOF
ClusterName=dfnastest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$TMP/state
SlurmdSpoolDir=$TMP/spool
SlurmctldPidFile=$TMP/slurmctld.pid
SlurmdPidFile=$TMP/slurmd.pid
SlurmctldLogFile=$TMP/slurmctld.log
SlurmdLogFile=$TMP/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MinJobAge=600
# configless: slurmd fetches this file from slurmctld and hands it to the jobs' srun
SlurmctldParameters=enable_configless
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$TMP/slurm.conf
slurmctld -D -f "$SLURM_CONF" >"$TMP/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D --conf-server 127.0.0.1:16817 >"$TMP/slurmd.out" 2>&1 &
PIDS+=($!)
node_state() { timeout 5 sinfo -h -o %T 2>/dev/null || true; }
for _ in $(seq 30); do
    node_state | grep -qx idle && break
    sleep 1
done
if ! node_state | grep -qx idle; then
    tail -5 "$TMP"/slurmctld.log "$TMP"/slurmd.log 2>/dev/null || true
    tail -5 "$TMP"/slurmctld.out "$TMP"/slurmd.out 2>/dev/null || true
    skip "the single-node SLURM did not come up (logs above)"
fi
echo "SLURM up: $(sinfo -h -o '%P %D node, %c CPUs, %m MB, %T')"

# the pipeline, in a work folder of its own, every job submitted with sbatch
WORK=$TMP/work
mkdir -p "$WORK"
cp -r Snakefile workflow envs "$WORK"/
cp tests/slurm/tiny.yaml "$WORK"/
( while sleep 2; do squeue -h -o '%i %k %T %M' 2>/dev/null; done ) >"$TMP/squeue.log" &
PIDS+=($!)
START=$(date +%s)
status=0
( cd "$WORK" && PYTHONPATH="$REPO/src" PATH="$(dirname "$PY"):$PATH" "$PY" -m snakemake \
    --profile "$REPO/tests/slurm/profile" --configfile tiny.yaml ) >"$TMP/snakemake.log" 2>&1 \
    || status=$?
echo "pipeline through SLURM: exit $status in $(( $(date +%s) - START )) s"
if [ "$status" != 0 ]; then
    tail -40 "$TMP/snakemake.log"
    echo "logs kept in $TMP"
    exit "$status"
fi

jobs=$(grep -c "has been submitted with SLURM jobid" "$TMP/snakemake.log" || true)
expected=$(grep -oP '^total\s+\K\d+' "$TMP/snakemake.log" | head -1)
# `all` and the tables and figures are local rules: every other job goes to SLURM
local=$(grep -c "^localrule " "$TMP/snakemake.log" || true)
echo "SLURM jobs: $jobs of $expected jobs ($((expected - local)) not counting $local local ones)"
[ "$local" -ge 3 ] || { echo "FAIL: the tables and figures did not run locally"; exit 1; }
[ "$jobs" -ge 4 ] && [ "$jobs" -eq $((expected - local)) ] \
    || { echo "FAIL: not every job ran under SLURM"; exit 1; }
for id in $(grep -oP 'SLURM jobid \K\d+' "$TMP/snakemake.log"); do
    find "$WORK/.snakemake/slurm_logs" -name "$id.log" | grep -q . \
        || { echo "FAIL: no SLURM log for job $id"; exit 1; }
done
for f in comparison.csv comparison.md comparison.tex; do
    [ -s "$WORK/results/slurm_tiny/tables/$f" ] || { echo "FAIL: no table $f"; exit 1; }
done
echo "squeue while it ran (job id, rule and wildcards, state, time):"
sort -un "$TMP/squeue.log" | awk '!seen[$1]++' | head -20
echo "live-SLURM test passed: $jobs jobs ran as SLURM jobs; tables in results/slurm_tiny/tables"
stop
trap - EXIT
rm -rf "$TMP"
