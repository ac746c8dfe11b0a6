#!/bin/bash
# Scaling, same run, same machine: N = 1, 2, 4 processes for the design before per-room
# delivery (66f5e2e, checked out at /tmp/old with `git worktree add /tmp/old 66f5e2e`) and
# for HEAD, alternated. Every customer is on a different process than its partner.
#   bash bench/results/scaling/run.sh            # writes bench/results/scaling/{old,new}-N.json
# Also here (docs/performance.md, "Scale-out"): fleet-8*.json (--fleet 8, both designs),
# colocated-*.json (--processes 2 --colocate, with and without --no-broker), broker_micro.txt.
set -u
out=/work/main/bench/results/scaling
steps="${STEPS:-1000:20,2000:20}"
for n in 1 2 4; do
  for tree in old new; do
    dir=/work/main; [ $tree = old ] && dir=/tmp/old
    [ $tree = old ] && [ $n = 1 ] && continue  # one process publishes nothing: the same code path
    (cd $dir && /work/main/.venv/bin/python bench/run.py --processes $n --steps "$steps" --chat "" --accepts 0 \
       --out $out/$tree-$n.json > $out/$tree-$n.log 2>&1)
  done
done
