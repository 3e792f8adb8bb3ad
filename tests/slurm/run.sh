#!/usr/bin/env bash
# The whole pipeline on a live single-node SLURM, through workflow profiles and
# Snakemake's SLURM executor plugin: `make test-slurm`.
#
# Starts a single-node SLURM (tests/slurm/cluster.sh: Debian packages if missing, munged,
# slurmctld and slurmd in a temporary folder), runs tests/slurm/tiny.yaml through
# tests/slurm/profile, checks that every job ran as a SLURM job (its job id in the run's
# log and its SLURM log file) and that the tables exist, then stops the daemons by PID.
# Where the daemons cannot be had (not root, no packages, no node coming up) it prints
# a line starting "SKIP:" and exits 0; a failing pipeline exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/../.."
skip() { echo "SKIP: live-SLURM test: $*"; exit 0; }

# shellcheck source=tests/slurm/cluster.sh
source tests/slurm/cluster.sh  # sets REPO and PY too

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
