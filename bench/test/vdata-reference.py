#!/usr/bin/env python3
# bench/test/vdata-reference.py: a slow, obviously-correct brute force that
# the vdata unit check compares `vdata groundtruth` against.
#
# Usage: vdata-reference.py BASE.csv QUERIES.csv K METRIC
# Both inputs are vdata csv exports ("id<TAB>label<TAB>[x,...]").  Prints the
# ground truth format: "qid<TAB>id:dist,..." ordered by distance then id,
# with the vectors rounded to float4 first, as PostgreSQL stores them.
import math
import struct
import sys


def f32(x):
    """Round a Python float to the nearest float4."""
    return struct.unpack("f", struct.pack("f", x))[0]


def load(path):
    """Read (id, vector) pairs from a csv export."""
    rows = []
    with open(path) as f:
        for line in f:
            rid, _label, lit = line.rstrip("\n").split("\t")
            rows.append((int(rid), [f32(float(x)) for x in lit.strip("[]").split(",")]))
    return rows


def dist(metric, a, b):
    """Distance as the SQL operators define it (bit metrics binarise > 0)."""
    if metric == "l2":
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
    if metric == "ip":
        return -sum(x * y for x, y in zip(a, b))
    if metric == "cosine":
        dot = sum(x * y for x, y in zip(a, b))
        na = sum(x * x for x in a)
        nb = sum(y * y for y in b)
        if na == 0 or nb == 0:
            return None
        s = max(-1.0, min(1.0, dot / math.sqrt(na * nb)))
        return 1 - s
    if metric == "l1":
        return sum(abs(x - y) for x, y in zip(a, b))
    ba = [x > 0 for x in a]
    bb = [y > 0 for y in b]
    if metric == "hamming":
        return float(sum(x != y for x, y in zip(ba, bb)))
    if metric == "jaccard":
        inter = sum(x and y for x, y in zip(ba, bb))
        union = sum(x or y for x, y in zip(ba, bb))
        return 0.0 if union == 0 else 1 - inter / union
    raise SystemExit("unknown metric " + metric)


def main():
    base = load(sys.argv[1])
    queries = load(sys.argv[2])
    k = int(sys.argv[3])
    metric = sys.argv[4]
    for qid, q in queries:
        cands = []
        for bid, v in base:
            d = dist(metric, q, v)
            if d is not None:
                cands.append((d, bid))
        cands.sort()
        print("%d\t%s" % (qid, ",".join("%d:%.10g" % (bid, d) for d, bid in cands[:k])))


main()
