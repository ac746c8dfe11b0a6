#!/bin/bash
# Side by side: before (c8665c2, /tmp/old) and after (HEAD, /work/main), alternated, same machine, same run.
set -u
for round in 1 2; do
  for tree in old new; do
    dir=/work/main; [ $tree = old ] && dir=/tmp/old
    (cd $dir && /work/main/.venv/bin/python bench/run.py --quick --out /tmp/benchside/quick-$tree-$round.json > /tmp/benchside/quick-$tree-$round.log 2>&1)
    (cd $dir && /work/main/.venv/bin/python bench/run.py --steps 3000:20 --chat "" --accepts 0 --out /tmp/benchside/step3000-$tree-$round.json > /tmp/benchside/step3000-$tree-$round.log 2>&1)
  done
done
echo done > /tmp/benchside/finished
