"""Summarise a py-spy raw (collapsed) profile: where the samples' own time and total time go.

python bench/top_frames.py bench/results/profile-0.txt [N]
"""

import collections
import sys


def main() -> None:
    path, top = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    with open(path) as f:
        lines = f.readlines()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        n = int(count)
        frames = stack.split(";")
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    print(f"{samples} samples\n-- own time")
    for frame, n in own.most_common(top):
        print(f"{100 * n / samples:5.1f}%  {frame}")
    print("-- total time (inclusive)")
    for frame, n in total.most_common(top):
        print(f"{100 * n / samples:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
