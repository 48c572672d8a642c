#!/usr/bin/env bash
# Learning check on JacoReachMT5-v1: dnc_sac and qmp_dnc, 2 seeds each, 350 epochs of the preset
# (1,000 env steps per epoch after a 50,000-step warm-up: 400k env steps per run). Evaluation every
# 10 epochs (50 episodes = 10 per task). Results: data/bench/jaco/<method>/seed<k>/progress.csv;
# plot with `python -m qmp.plot data/bench/jaco --out docs/img/jaco_learning.png`.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${EPOCHS:-350}
for seed in 0 1; do
  for method in dnc_sac qmp_dnc; do
    .venv/bin/python run.py "$method" --env=JacoReachMT5-v1 --seed "$seed" --n_epochs "$EPOCHS" \
      --evaluation_frequency 10 --run_dir "data/bench/jaco/$method/seed$seed" \
      > "data/bench/jaco_${method}_seed${seed}.log" 2>&1 &
  done
done
wait
