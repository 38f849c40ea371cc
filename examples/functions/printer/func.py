"""Prints while it works: what it prints lands in the record's "stdout"."""
import sys


def main(steps=3):
    total = 0
    for step in range(1, steps + 1):
        total += step
        print(f"step {step}: total {total}")
    print("done", file=sys.stderr)
    return total
