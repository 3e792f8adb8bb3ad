# Sourced by tests/slurm/run.sh and fault.sh: a live single-node SLURM in a temporary
# folder, stopped by PID when the sourcing script exits.
#
# Installs the Debian packages if missing (root), starts munged, slurmctld and slurmd with
# a minimal config in $TMP, and waits for the node. Where the daemons cannot be had (not
# root, no packages, no node coming up) it calls the sourcing script's `skip`, which prints
# a line starting "SKIP:" and exits 0. Sourced from the repository's root; sets REPO, PY
# (the python that runs Snakemake: $PYTHON, or the venv's), TMP, PIDS, SLURM_CONF and the
# `stop` trap.
REPO=$PWD
PY=${PYTHON:-$REPO/.venv/bin/python}
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")  # absolute, the venv's link kept
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

