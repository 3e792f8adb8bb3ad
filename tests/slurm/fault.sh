#!/usr/bin/env bash
# A training job killed under SLURM resumes from its checkpoint when Snakemake retries it,
# and ends bit for bit where an uninterrupted run ends: `make test-slurm`.
#
# On the single-node SLURM of tests/slurm/cluster.sh, tests/slurm/fault.yaml runs through
# tests/slurm/profile with `--retries 1` (workflow/profiles/slurm sets `retries: 1`). Once
# each run has written its first checkpoint, one job is cancelled by the scheduler
# (`scancel`: what a time limit or a preemption does) and the other's training process is
# killed on the node (`kill -9`: what a node fault does to the job's step). The workflow
# must finish by itself, each retried job's log must say it resumed, and both runs must
# equal the same config run without SLURM and uninterrupted (scripts/compare_experiments.py:
# tensors, history and metrics but the clocks). SKIP where SLURM cannot be had.
set -euo pipefail
cd "$(dirname "$0")/../.."
skip() { echo "SKIP: live-SLURM fault test: $*"; exit 0; }
fail() { echo "FAIL: $*"; tail -30 "$TMP/snakemake.log"; echo "logs kept in $TMP"; exit 1; }

# shellcheck source=tests/slurm/cluster.sh
source tests/slurm/cluster.sh  # sets REPO and PY too

smk() {  # snakemake in a work folder of its own: smk FOLDER ARGS...
    local dir=$1
    shift
    mkdir -p "$dir"
    cp -r Snakefile workflow envs tests/slurm/fault.yaml "$dir"/
    (cd "$dir" && PYTHONPATH="$REPO/src" PATH="$(dirname "$PY"):$PATH" "$PY" -m snakemake \
        --configfile fault.yaml "$@")
}

WORK=$TMP/work
RUNS=$WORK/results/slurm_fault/runs/digits/iid
START=$(date +%s)
smk "$WORK" --profile "$REPO/tests/slurm/profile" --retries 1 >"$TMP/snakemake.log" 2>&1 &
SMK=$!
PIDS+=("$SMK")

# each run's first checkpoint, then its fault
for run in cancelled killed; do
    for _ in $(seq 600); do
        [ -e "$RUNS/$run/seed0/checkpoint.pt" ] && break
        kill -0 "$SMK" 2>/dev/null || fail "the workflow ended before $run's first checkpoint"
        sleep 0.2
    done
    [ -e "$RUNS/$run/seed0/checkpoint.pt" ] || fail "no checkpoint of $run in 120 s"
done
job=$(squeue -h -o '%i %k' | awk '/cancelled/ {print $1}' | head -1)
[ -n "$job" ] || fail "no SLURM job of run 'cancelled' in squeue"
scancel "$job"
echo "cancelled SLURM job $job (run 'cancelled') after its first checkpoint"
pkill -9 -f -- "--name killed " || fail "no training process of run 'killed' to kill"
echo "killed the training process of run 'killed' on the node (kill -9)"

status=0
wait "$SMK" || status=$?
echo "workflow through SLURM with two faults: exit $status in $(( $(date +%s) - START )) s"
[ "$status" = 0 ] || fail "the workflow did not finish by itself after the faults"
for run in cancelled killed; do
    log=$WORK/results/slurm_fault/logs/digits/iid/$run/seed0.train.log
    grep -q "resuming after round" "$log" || fail "the retried job of $run did not resume ($log)"
    echo "$run: $(grep -m1 "resuming after round" "$log")"
done
[ "$(grep -c "has been submitted with SLURM jobid" "$TMP/snakemake.log")" -ge 4 ] \
    || fail "the two training jobs were not submitted again"

# the uninterrupted reference, without SLURM, and the comparison
smk "$TMP/ref" --cores 2 >"$TMP/reference.log" 2>&1 || fail "the reference run failed"
same=0
"$PY" scripts/compare_experiments.py "$WORK/results/slurm_fault" "$TMP/ref/results/slurm_fault" \
    >"$TMP/compare.log" 2>&1 || same=$?
cat "$TMP/compare.log"
[ "$same" = 0 ] || fail "the resumed runs differ from the uninterrupted reference (above)"
[ "$(grep -c "^same" "$TMP/compare.log")" = 2 ] || fail "not both runs compared"
echo "live-SLURM fault test passed: both jobs retried, resumed, and equal the uninterrupted runs"
stop
trap - EXIT
rm -rf "$TMP"
