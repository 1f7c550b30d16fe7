#!/usr/bin/env python3
"""demo_import.py URL COLLECTION TOTAL: stream vdata csv lines from stdin
into a collection through the coordinator's NDJSON import endpoint, in
batches, with a progress bar on stderr.

Each input line is "id<TAB>label<TAB>[x,...]"; the vector literal is already
JSON, so it is passed through unparsed.  The label and its Fashion-MNIST name
go into the payload.
"""
import json
import sys
import time
import urllib.error
import urllib.request

NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
BATCH = 1000


def post(url, body):
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", "application/x-ndjson")
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        sys.exit("import failed: HTTP %d %s" % (e.code, e.read().decode(errors="replace")))


def bar(done, total, t0):
    width = 40
    frac = done / total if total else 1
    rate = done / max(time.time() - t0, 1e-6)
    return "\r   [%-*s] %6d/%d  %5.0f points/s" % (width, "#" * int(frac * width), done, total, rate)


def main():
    base, coll, total = sys.argv[1].rstrip("/"), sys.argv[2], int(sys.argv[3])
    url = "%s/v1/collections/%s/points/import" % (base, coll)
    tty = sys.stderr.isatty()
    t0 = time.time()
    done, batch, last_print = 0, [], 0
    for line in sys.stdin:
        pid, label, vec = line.rstrip("\n").split("\t")
        lab = int(label)
        batch.append('{"id":%s,"vector":%s,"payload":{"label":%d,"name":%s}}'
                     % (pid, vec, lab, json.dumps(NAMES[lab])))
        if len(batch) == BATCH:
            done += post(url, ("\n".join(batch) + "\n").encode())["imported"]
            batch = []
            if tty or done - last_print >= total // 10:
                sys.stderr.write(bar(done, total, t0) + ("" if tty else "\n"))
                last_print = done
    if batch:
        done += post(url, ("\n".join(batch) + "\n").encode())["imported"]
    if tty or done != last_print:
        sys.stderr.write(bar(done, total, t0) + "\n")
    if done != total:
        sys.exit("imported %d of %d points" % (done, total))


if __name__ == "__main__":
    main()
