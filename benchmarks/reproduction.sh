#!/usr/bin/env bash
# The reproduction study of docs/results.md, in batches that each fit a 2-core machine's afternoon.
#
#   benchmarks/reproduction.sh BATCH [SEED ...]    # train the runs of BATCH (LANES=2 at a time), then keep them
#   benchmarks/reproduction.sh BATCH [SEED ...] + BATCH [SEED ...]   # a queue: one pool of lanes for every batch,
#                                                  # so a lane that frees takes the next run (in the order given)
#   benchmarks/reproduction.sh check BATCH [SEED ...] [+ ...]  # only validate the run lines (what a batch does first)
#   benchmarks/reproduction.sh keep                # copy config.json, progress.csv, qswitch_selection.jsonl of
#                                                  # every finished run, and of every run kept before, into
#                                                  # docs/results/ (no checkpoints; KEEP_PARTIAL=1: unfinished too)
#   benchmarks/reproduction.sh report              # redraw docs/img/repro_*.png and the tables of docs/results.md
#                                                  # from docs/results/ alone
# Batches (env steps per run; the first epoch is the warm-up):
#   jaco_separated   dnc_sac vs qmp_dnc on JacoReachMT5-v1, EPOCHS (default 951 = 1M env steps: 50k warm-up + 950 x 1k)
#   jaco_parameters  mtsac vs qmp_sac with the README's Parameters flags and one tanh (--multihead_double_tanh false,
#                    our fix), EPOCHS (default 491 = 500k: 10k warm-up + 490 x 1k)
#   jaco_parameters_double_tanh   the same with the original's double squashing (the multihead default)
#   jaco_parameters_collect_single_tanh   mtsac alone, double-squashed, collecting with one tanh as QMP's Q-switch
#                    draws its candidates (--collect_single_tanh true): the ablation beside jaco_parameters_double_tanh
#   maze_parameters  mtsac vs qmp_sac on MazeLarge-10-v0 with the Parameters flags and one tanh, EPOCHS (default
#                    100 = 600k)
#   maze_parameters_double_tanh   the same with the original's double squashing (the multihead default)
#   maze_parameters_collect_single_tanh   the ablation of jaco_parameters_collect_single_tanh on Maze
# Each batch names its squashing, so that its runs keep resuming whatever the default is.
# Runs go to data/repro/{env}/{method}/{name}/seed{k}; running a batch again resumes unfinished runs.
# UNTIL=TIME (anything date -d reads: 17:05, 'now + 80 minutes'; a bare clock time already past today means
# tomorrow) stops every run at TIME with SIGTERM (a run then writes its checkpoint and exits; the next call resumes
# it) and starts no run later than MIN_LEFT_S (300) seconds before it, so that a batch fits a machine you only have
# until then. LOG_DIR and RESULTS_DIR move the runs and the kept files.
# Redraw the figure and table from docs/results/ with the commands in docs/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
LANES=${LANES:-2}
LOG_DIR=${LOG_DIR:-data/repro}
RESULTS_DIR=${RESULTS_DIR:-docs/results}
PY=${PYTHON:-.venv/bin/python}
MIN_LEFT_S=${MIN_LEFT_S:-300}
DEADLINE=""
if [ -n "${UNTIL:-}" ]; then
  DEADLINE=$(date -d "$UNTIL" +%s 2>/dev/null) || {
    echo "UNTIL='$UNTIL' is not a time date -d understands; valid: e.g. UNTIL=17:05 or UNTIL='now + 80 minutes'" >&2
    exit 2
  }
  # a bare clock time that has passed today means tomorrow (UNTIL=01:30 started at 23:20 runs past midnight)
  if [[ $UNTIL =~ ^[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?$ ]] && [ "$DEADLINE" -le "$(date +%s)" ]; then
    DEADLINE=$(date -d "tomorrow $UNTIL" +%s)
  fi
  if [ "$DEADLINE" -le "$(( $(date +%s) + MIN_LEFT_S ))" ]; then
    echo "UNTIL='$UNTIL' is $(date -d "@$DEADLINE" '+%F %T'), less than MIN_LEFT_S=$MIN_LEFT_S s away; valid: a later time" >&2
    exit 2
  fi
  echo "UNTIL='$UNTIL': runs stop at $(date -d "@$DEADLINE" '+%F %T')" >&2
fi
PARAMS="--policy_architecture multihead --Q_architecture multihead --lr 0.001 --hidden_sizes 512 512"

keep() {  # the runs that finished their planned epochs, and those kept before (refreshed, so an extension shows
  # as it grows, but never by a shorter log); a new run still running or stopped at UNTIL waits until it is done,
  # because one short seed cuts its group's curves and IQM columns at its length (KEEP_PARTIAL=1 keeps it anyway)
  find "$LOG_DIR" -name config.json | sort | while read -r config; do
    run=$(dirname "$config")
    dest=$RESULTS_DIR/${run#"$LOG_DIR"/}
    if [ ! -d "$dest" ] && [ -z "${KEEP_PARTIAL:-}" ] && ! grep -qs '"state": "done"' "$run/status.json"; then
      echo "not kept yet, not done (KEEP_PARTIAL=1 keeps it): $run" >&2
      continue
    fi
    # a run restarted from scratch (a new machine has none of the old checkpoints) must not shorten its kept copy
    rows=0; [ ! -f "$run/progress.csv" ] || rows=$(wc -l < "$run/progress.csv")
    if [ -f "$dest/progress.csv" ] && [ "$rows" -lt "$(wc -l < "$dest/progress.csv")" ]; then
      echo "kept copy is longer, left until the run passes it: $run" >&2
      continue
    fi
    mkdir -p "$dest"
    for f in config.json progress.csv qswitch_selection.jsonl; do
      if [ -f "$run/$f" ]; then cp "$run/$f" "$dest/$f"; fi  # (a bare `[ ] && cp` would end keep under set -e)
    done
  done
  # config.json holds the machine-specific run directory: keep the layout, drop the prefix
  [ -d "$RESULTS_DIR" ] || return 0
  find "$RESULTS_DIR" -name config.json -exec sed -i "s#\"run_dir\": \"[^\"]*/$LOG_DIR/#\"run_dir\": \"$LOG_DIR/#" {} +
}

report() {  # every figure and table of docs/results.md, from the files kept in docs/results/ (which runs go where:
  # benchmarks/reproduction_report.py)
  "$PY" benchmarks/reproduction_report.py --results docs/results --doc docs/results.md --img docs/img
}

check() {  # parse every run line as run.py would, so that a typo fails at once, not an hour in
  echo "$1" | "$PY" -c '
import shlex, sys
from qmp.cli import parse_args
from qmp.environments import ENVS
from qmp.methods import METHODS
for line in sys.stdin:
    parse_args(shlex.split(line), list(METHODS), list(ENVS))'
}

params_pair() {  # params_pair ENV SEED EPOCHS DOUBLE_TANH NAME: mtsac and qmp_sac with the Parameters flags
  for m in mtsac qmp_sac; do
    echo "$m --env=$1 --seed $2 --n_epochs $3 $PARAMS --multihead_double_tanh $4 --name $5"
  done
}

collect_single() {  # collect_single ENV SEED EPOCHS: the ablation, mtsac double-squashed collecting with one tanh
  echo "mtsac --env=$1 --seed $2 --n_epochs $3 $PARAMS --multihead_double_tanh true --collect_single_tanh true --name params_double_tanh_collect_single"
}

queue() {  # queue BATCH [SEED ...] [+ BATCH [SEED ...] ...]: every batch's run lines in order (seeds default: 0 1)
  local segment=() arg
  for arg in "$@" +; do
    if [ "$arg" != + ]; then segment+=("$arg"); continue; fi
    if [ ${#segment[@]} -eq 0 ]; then
      echo "a '+' with no batch beside it; usage: $0 BATCH [SEED ...] [+ BATCH [SEED ...] ...]" >&2
      return 2
    fi
    if [ ${#segment[@]} -eq 1 ]; then segment+=(0 1); fi
    runs "${segment[@]}" || return 2
    segment=()
  done
}

batch_names() {  # batch_names ARGS: the batches a queue names, joined by ' + '
  local arg names="" next=1
  for arg in "$@"; do
    if [ "$arg" = + ]; then next=1; elif [ $next -eq 1 ]; then names+="${names:+ + }$arg"; next=0; fi
  done
  echo "$names"
}

runs() {  # one run.py argument line per run; methods of one seed side by side, so lanes pair them
  local batch=$1; shift
  local seeds=("$@")
  for s in "${seeds[@]}"; do
    case $batch in
      jaco_separated) for m in dnc_sac qmp_dnc; do echo "$m --env=JacoReachMT5-v1 --seed $s --n_epochs ${EPOCHS:-951} --name paper"; done ;;
      jaco_parameters) params_pair JacoReachMT5-v1 "$s" "${EPOCHS:-491}" false params ;;
      jaco_parameters_double_tanh) params_pair JacoReachMT5-v1 "$s" "${EPOCHS:-491}" true params_double_tanh ;;
      jaco_parameters_collect_single_tanh) collect_single JacoReachMT5-v1 "$s" "${EPOCHS:-491}" ;;
      maze_parameters) params_pair MazeLarge-10-v0 "$s" "${EPOCHS:-100}" false params ;;
      maze_parameters_double_tanh) params_pair MazeLarge-10-v0 "$s" "${EPOCHS:-100}" true params_double_tanh ;;
      maze_parameters_collect_single_tanh) collect_single MazeLarge-10-v0 "$s" "${EPOCHS:-100}" ;;
      *) echo "unknown batch '$batch'; valid: jaco_separated, jaco_parameters, jaco_parameters_double_tanh, jaco_parameters_collect_single_tanh, maze_parameters, maze_parameters_double_tanh, maze_parameters_collect_single_tanh (or keep, report, check)" >&2
         return 2 ;;
    esac
  done
}

case ${1:-} in
  keep) keep ;;
  report) report ;;
  check)
    shift
    [ $# -gt 0 ] || { echo "usage: $0 check BATCH [SEED ...] [+ BATCH [SEED ...] ...]" >&2; exit 2; }
    lines=$(queue "$@")
    check "$lines" && echo "$(echo "$lines" | wc -l) run lines of $(batch_names "$@") are valid"
    ;;
  "") echo "usage: $0 BATCH [SEED ...] [+ BATCH [SEED ...] ...] | check BATCH [SEED ...] [+ ...] | keep | report" >&2
      exit 2 ;;
  *)
    lines=$(queue "$@")
    mkdir -p "$LOG_DIR/_logs"
    check "$lines"  # every command is validated before any run starts (a typo fails here, not an hour in)
    # each line: run.py (under `timeout` when UNTIL is set: SIGTERM at the deadline, SIGKILL 5 minutes later if a
    # long warm-up collection has not yet reached a point where the run can stop), then one line on how it ended;
    # a line whose turn comes less than MIN_LEFT_S before the deadline is not started
    echo "$lines" | xargs -P "$LANES" -I{} sh -c '
      line="$1"; log="$2/_logs/$(echo "$line" | tr " =/" "__-").log"; limit=""
      if [ -n "$4" ]; then
        left=$(( $4 - $(date +%s) ))
        if [ "$left" -lt "$5" ]; then echo "not started (UNTIL is less than $5 s away): $line"; exit 0; fi
        limit="timeout -s TERM -k 300 $left"
      fi
      $limit $3 run.py $line --log_dir "$2" > "$log" 2>&1
      code=$?
      if [ "$code" -eq 124 ]; then echo "stopped at UNTIL (run the batch again to resume): $line"
      else echo "exit $code $line"; fi' _ {} "$LOG_DIR" "$PY" "$DEADLINE" "$MIN_LEFT_S"
    keep
    ;;
esac
