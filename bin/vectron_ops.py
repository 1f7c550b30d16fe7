"""vectron_ops: the operations commands of the `vectron` CLI (issue 6).

  vectron admin stats | collections | nodes | slow | moves   readable tables
  vectron shard move SHARD_ID --from NODE --to NODE [--no-wait]
  vectron rebalance [--dry-run] [--wait] | rebalance status
  vectron backup (--collection C | --all) --out DIR
  vectron restore --in DIR [--collection C] [--as NEW] [--shards N] [--rf N]

Backup reads each shard from one active placement, in one REPEATABLE READ
READ ONLY transaction per shard (a consistent snapshot of that shard), as
binary COPY (id text, v vector, payload jsonb) ordered by id.  The manifest
(DIR/<collection>/manifest.json) holds the collection definition, and per
shard the file, row count, SHA-256 of the file and a content checksum: the
sum of hashtextextended(id|v|payload) over the rows, computed by the worker
in the same snapshot.  Sums add up across shards, so a restore into another
shard count checks the whole collection against the sum of the backup's.

Restore verifies each file's SHA-256, creates the collection (same
definition, or another name / shard count / replication factor) and sends
the rows through the coordinator's upsert API, so routing and replication
follow the new layout; then it recomputes the content checksum and count on
the new shards and compares.

Backup and restore connect to the workers with psql (host, port and dbname
from GET /v1/admin/nodes; user $PGUSER or postgres; password from
$PGPASSWORD or ~/.pgpass as usual).
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

BATCH = 1000
CHECKSUM_EXPR = ("coalesce(sum(hashtextextended(id || chr(31) || v::text || chr(31) || "
                 "coalesce(payload::text, ''), 0)::numeric), 0)")


def register(sub):
    ad = sub.add_parser("admin", help="cluster statistics").add_subparsers(dest="sub", required=True)
    ad.add_parser("stats")
    ad.add_parser("collections")
    ad.add_parser("nodes")
    ad.add_parser("slow")
    ad.add_parser("moves")
    for p in ad.choices.values():
        p.add_argument("--json", action="store_true", help="print the raw JSON")

    sh = sub.add_parser("shard", help="shard placements").add_subparsers(dest="sub", required=True)
    mv = sh.add_parser("move", help="move a shard placement to another node")
    mv.add_argument("shard_id", type=int)
    mv.add_argument("--from", dest="from_node", required=True)
    mv.add_argument("--to", dest="to_node", required=True)
    mv.add_argument("--no-wait", action="store_true", help="return once the move has started")

    rb = sub.add_parser("rebalance", help="even out placements across nodes, empty draining nodes")
    rb.add_argument("action", nargs="?", choices=["run", "status"], default="run")
    rb.add_argument("--dry-run", action="store_true", help="print the plan only")
    rb.add_argument("--wait", action="store_true", help="wait for the job and show progress")

    bk = sub.add_parser("backup", help="back up collections to a directory")
    g = bk.add_mutually_exclusive_group(required=True)
    g.add_argument("--collection")
    g.add_argument("--all", action="store_true")
    bk.add_argument("--out", required=True)

    rs = sub.add_parser("restore", help="restore collections from a backup directory")
    rs.add_argument("--in", dest="indir", required=True)
    rs.add_argument("--collection", help="which collection of the backup (default: all)")
    rs.add_argument("--as", dest="as_name", help="restore under another name (one collection)")
    rs.add_argument("--shards", type=int, help="another shard count")
    rs.add_argument("--rf", type=int, help="another replication factor")


def run(a, cli):
    """Handle the command if it is ours; True when handled."""
    if a.cmd == "admin":
        admin(a, cli)
    elif a.cmd == "shard":
        shard_move(a, cli)
    elif a.cmd == "rebalance":
        rebalance(a, cli)
    elif a.cmd == "backup":
        backup(a, cli)
    elif a.cmd == "restore":
        restore(a, cli)
    else:
        return False
    return True


# ---------------------------------------------------------------- tables

def table(rows, headers):
    cols = [[str(h)] + [("" if r[i] is None else str(r[i])) for r in rows] for i, h in enumerate(headers)]
    widths = [max(len(x) for x in c) for c in cols]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)),
           "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(("" if v is None else str(v)).ljust(w) for v, w in zip(r, widths)))
    return "\n".join(out)


def human(n):
    if n is None:
        return None
    n = float(n)
    for u in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or u == "TB":
            return ("%d %s" % (n, u)) if u == "B" else ("%.1f %s" % (n, u))
        n /= 1024


def get_ok(cli, path):
    s, b = cli.call("GET", path)
    if s >= 400:
        cli.die("GET %s: %s" % (path, json.dumps(b)))
    return b


def admin(a, cli):
    path = {"stats": "/v1/admin/stats", "collections": "/v1/admin/collections",
            "nodes": "/v1/admin/nodes", "slow": "/v1/admin/slow", "moves": "/v1/admin/moves"}[a.sub]
    b = get_ok(cli, path)
    if a.json:
        print(json.dumps(b, indent=2))
        return
    if a.sub == "stats":
        t = b["totals"]
        print(table([[t["collections"], t["points"], human(t["index_bytes"]),
                      "%d/%d" % (t["nodes_up"], t["nodes"]), t["coordinators"], "%.2f" % t["qps"],
                      t["p50_ms"], t["p95_ms"], t["p99_ms"], "%.2f%%" % (100 * t["error_rate"])]],
                    ["collections", "points", "index", "nodes up", "coordinators", "qps",
                     "p50 ms", "p95 ms", "p99 ms", "errors"]))
        print()
        print(table([[c["coordinator"], c["version"], "%.2f" % c["qps"], c["p50_ms"], c["p95_ms"],
                      c["p99_ms"], c["requests_total"], c["points_upserted_total"],
                      c["searches_total"], c["reported_at"]] for c in b["coordinators"]],
                    ["coordinator", "version", "qps", "p50 ms", "p95 ms", "p99 ms", "requests",
                     "upserted", "searches", "reported at"]))
    elif a.sub == "collections":
        rows = []
        for c in b["collections"]:
            rows.append([c["name"], c["dimension"], c["metric"], c["shards"],
                         c["replication_factor"], c["points"], human(c["table_bytes"]),
                         human(c["index_bytes"]), c["state"]])
        print(table(rows, ["name", "dim", "metric", "shards", "rf", "points", "table",
                           "index", "state"]))
        for c in b["collections"]:
            print("\n%s:" % c["name"])
            rows = []
            for s in c["shard_detail"]:
                for p in s["placements"]:
                    rows.append([s["index"], s["table"], p["node"], p["state"], p.get("count"),
                                 human(p.get("table_bytes")), human(p.get("index_bytes"))])
            print(table(rows, ["shard", "table", "node", "state", "count", "table", "index"]))
    elif a.sub == "nodes":
        rows = [[n["name"], "%s:%d" % (n["host"], n["port"]), n["state"], n.get("health"),
                 n.get("version", "").split(" ")[0], n.get("extension_version"), n["placements"],
                 human(n.get("disk_bytes")), n.get("connections"), n.get("error", "")]
                for n in b["nodes"]]
        print(table(rows, ["name", "address", "state", "health", "postgres", "vectron",
                           "shards", "disk", "conns", "error"]))
    elif a.sub == "moves":
        print(table([[m["id"], m["shard_id"], m["table"], m["from"], m["to"], m["state"], m["step"],
                      m["rows_copied"], m["started_at"], m["error"] or ""] for m in b["moves"]],
                    ["move", "shard", "table", "from", "to", "state", "step", "rows", "started",
                     "error"]))
    else:
        print("threshold: %s ms" % b["threshold_ms"])
        rows = []
        for r in b["requests"]:
            worst = max(r["shards"], key=lambda s: s["ms"]) if r["shards"] else None
            rows.append([r["time"], r["request_id"], r["method"], r["path"], r["status"],
                         r["latency_ms"], ("%s@%s %.1f ms" % (worst["shard"], worst["node"], worst["ms"]))
                         if worst else ""])
        print(table(rows, ["time", "request id", "method", "path", "status", "ms", "slowest shard"]))


def shard_move(a, cli):
    s, b = cli.call("POST", "/v1/admin/shards/%d/move" % a.shard_id,
                    {"from": a.from_node, "to": a.to_node})
    if s != 202:
        cli.die("move: %s" % json.dumps(b))
    mid = b["move_id"]
    print("move %d: shard %d %s -> %s started" % (mid, a.shard_id, a.from_node, a.to_node))
    if a.no_wait:
        return
    last = None
    while True:
        m = get_ok(cli, "/v1/admin/moves/%d" % mid)
        if m["step"] != last:
            print("  %s%s" % (m["step"], (" (%s rows copied)" % m["rows_copied"])
                              if m["rows_copied"] is not None and m["step"] == "index" else ""),
                  file=sys.stderr)
            last = m["step"]
        if m["state"] != "running":
            break
        time.sleep(0.2)
    if m["state"] != "done":
        cli.die("move %d %s: %s" % (mid, m["state"], m["error"]))
    print("move %d done" % mid)


def rebalance_table(b):
    return table([[i + 1, m["shard_id"], m["table"], m["from"], m["to"], human(m["bytes"]), m["state"],
                   m.get("error", "")] for i, m in enumerate(b["moves"])],
                 ["#", "shard", "table", "from", "to", "size", "state", "error"])


def rebalance(a, cli):
    if a.action == "status":
        b = get_ok(cli, "/v1/admin/rebalance")
        print("rebalance %s: %d/%d moved, %d failed" % (b["state"], b["done"], b["total"], b["failed"]))
        if b["moves"]:
            print(rebalance_table(b))
        return
    s, b = cli.call("POST", "/v1/admin/rebalance", {"dry_run": bool(a.dry_run)})
    if s not in (200, 202):
        cli.die("rebalance: %s" % json.dumps(b))
    if a.dry_run:
        print("plan: %d move(s)" % b["total"])
        if b["moves"]:
            print(rebalance_table(b))
        return
    print("rebalance started: %d move(s)" % b["total"])
    if not a.wait:
        return
    shown = -1
    while True:
        b = get_ok(cli, "/v1/admin/rebalance")
        if b["done"] + b["failed"] != shown:
            shown = b["done"] + b["failed"]
            print("  %d/%d" % (shown, b["total"]), file=sys.stderr)
        if b["state"] not in ("running", "planning"):
            break
        time.sleep(0.3)
    print(rebalance_table(b) if b["moves"] else "nothing to move")
    print("rebalance %s: %d moved, %d failed" % (b["state"], b["done"], b["failed"]))
    if b["state"] != "done":
        sys.exit(1)


# ---------------------------------------------------------------- psql

def psql_base(cli, node):
    return [os.path.join(cli.pgbin(), "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "-h", node["host"], "-p", str(node["port"]), "-U", os.environ.get("PGUSER", "postgres"),
            "-d", node["dbname"]]


def psql(cli, node, script, capture=True):
    r = subprocess.run(psql_base(cli, node) + ["-A", "-t"], input=script, text=True,
                       capture_output=capture)
    if r.returncode != 0:
        cli.die("psql on %s: %s" % (node["name"], (r.stderr or "").strip()))
    return r.stdout


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def nodes_by_name(cli):
    return {n["name"]: n for n in get_ok(cli, "/v1/admin/nodes")["nodes"]}


def shard_table(name):
    # the map's own names; refuse anything else before it reaches SQL
    if not (name.startswith("c") and name[1:].replace("_s", "", 1).isdigit()):
        raise ValueError("unexpected shard table name %r" % name)
    return name


# ---------------------------------------------------------------- backup

def backup(a, cli):
    admin_colls = {c["name"]: c for c in get_ok(cli, "/v1/admin/collections")["collections"]}
    names = sorted(admin_colls) if a.all else [a.collection]
    for n in names:
        if n not in admin_colls:
            cli.die("no collection %r" % n)
    nodes = nodes_by_name(cli)
    os.makedirs(a.out, exist_ok=True)
    for name in names:
        backup_one(cli, name, admin_colls[name], nodes, os.path.join(a.out, name))
    print("backup of %d collection(s) in %s" % (len(names), a.out))


def backup_one(cli, name, ac, nodes, d):
    t0 = time.time()
    definition = get_ok(cli, "/v1/collections/%s" % name)
    os.makedirs(d, exist_ok=True)
    shards = []
    total = 0
    for s in ac["shard_detail"]:
        tab = shard_table(s["table"])
        cands = [p for p in s["placements"] if p["state"] == "active"
                 and nodes.get(p["node"], {}).get("up")]
        if not cands:
            cli.die("collection %s shard %d has no active placement on a node that is up"
                    % (name, s["index"]))
        node = nodes[cands[0]["node"]]
        fname = "shard-%04d.copy" % s["index"]
        path = os.path.abspath(os.path.join(d, fname))
        # one snapshot per shard: the count, the checksum and the COPY see the same rows
        out = psql(cli, node,
                   "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n"
                   "SELECT count(*) || ' ' || %s FROM vectron_shards.%s WHERE NOT deleted;\n"
                   "\\copy (SELECT id, v, payload FROM vectron_shards.%s WHERE NOT deleted ORDER BY id) "
                   "TO '%s' WITH (FORMAT binary)\n"
                   "COMMIT;\n" % (CHECKSUM_EXPR, tab, tab, path.replace("'", "''")))
        count, checksum = out.split()[0], out.split()[1]
        count = int(count)
        total += count
        shards.append({"index": s["index"], "file": fname, "rows": count,
                       "bytes": os.path.getsize(path), "sha256": sha256(path),
                       "checksum": checksum, "from_node": node["name"]})
        print("  %s: shard %d/%d from %s: %d rows, %s" % (name, s["index"] + 1, len(ac["shard_detail"]),
                                                         node["name"], count,
                                                         human(os.path.getsize(path))),
              file=sys.stderr)
    manifest = {
        "format": "vectron-backup-1",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": cli.url(),
        "collection": {k: definition.get(k) for k in
                       ("name", "dimension", "metric", "shards", "replication_factor", "index",
                        "metadata")},
        "columns": ["id text", "v vector", "payload jsonb"],
        "rows": total,
        "checksum": str(sum(int(s["checksum"]) for s in shards)),
        "shards": shards,
        "consistency": "one REPEATABLE READ snapshot per shard",
    }
    with open(os.path.join(d, "manifest.json.tmp"), "w") as f:
        json.dump(manifest, f, indent=2)
    os.rename(os.path.join(d, "manifest.json.tmp"), os.path.join(d, "manifest.json"))
    print("  %s: %d rows in %d shard(s), %.1fs" % (name, total, len(shards), time.time() - t0),
          file=sys.stderr)


# ---------------------------------------------------------------- restore

def read_copy_binary(path):
    """Rows (id, vector list, payload json text or None) of a binary COPY file."""
    with open(path, "rb") as f:
        data = f.read()
    sig = b"PGCOPY\n\xff\r\n\x00"
    if not data.startswith(sig):
        raise ValueError("%s: not a binary COPY file" % path)
    pos = len(sig) + 4
    ext = struct.unpack_from("!I", data, pos)[0]
    pos += 4 + ext
    while True:
        nf = struct.unpack_from("!h", data, pos)[0]
        pos += 2
        if nf == -1:
            return
        if nf != 3:
            raise ValueError("%s: expected 3 columns, found %d" % (path, nf))
        vals = []
        for _ in range(3):
            ln = struct.unpack_from("!i", data, pos)[0]
            pos += 4
            if ln < 0:
                vals.append(None)
            else:
                vals.append(data[pos:pos + ln])
                pos += ln
        pid = vals[0].decode("utf-8")
        dim = struct.unpack_from("!h", vals[1], 0)[0]
        vec = list(struct.unpack_from("!%df" % dim, vals[1], 4))
        payload = None
        if vals[2] is not None:
            if vals[2][0] != 1:
                raise ValueError("%s: unknown jsonb binary version %d" % (path, vals[2][0]))
            payload = vals[2][1:].decode("utf-8")
        yield pid, vec, payload


def restore(a, cli):
    if os.path.exists(os.path.join(a.indir, "manifest.json")):
        dirs = [a.indir]
    else:
        dirs = sorted(os.path.join(a.indir, n) for n in os.listdir(a.indir)
                      if os.path.exists(os.path.join(a.indir, n, "manifest.json")))
    if a.collection:
        dirs = [d for d in dirs if os.path.basename(d.rstrip("/")) == a.collection]
    if not dirs:
        cli.die("no backup (manifest.json) in %s" % a.indir)
    if a.as_name and len(dirs) != 1:
        cli.die("--as needs exactly one collection (use --collection)")
    for d in dirs:
        restore_one(cli, a, d)


def restore_one(cli, a, d):
    t0 = time.time()
    with open(os.path.join(d, "manifest.json")) as f:
        m = json.load(f)
    if m.get("format") != "vectron-backup-1":
        cli.die("%s: unknown backup format %r" % (d, m.get("format")))
    # integrity first: nothing is created from a damaged backup
    for s in m["shards"]:
        got = sha256(os.path.join(d, s["file"]))
        if got != s["sha256"]:
            cli.die("%s: %s: SHA-256 %s does not match the manifest (%s)"
                    % (d, s["file"], got, s["sha256"]))
    c = m["collection"]
    name = a.as_name or c["name"]
    body = {"name": name, "dimension": c["dimension"], "metric": c["metric"],
            "shards": a.shards or c["shards"],
            "replication_factor": a.rf or c["replication_factor"]}
    if c.get("index"):
        body["index"] = c["index"]
    if c.get("metadata") is not None:
        body["metadata"] = c["metadata"]
    s, b = cli.call("POST", "/v1/collections", body)
    if s != 201:
        cli.die("create %s: %s" % (name, json.dumps(b)))
    sent = 0
    batch = []

    def flush():
        nonlocal sent, batch
        if not batch:
            return
        raw = ('{"points":[' + ",".join(batch) + "]}").encode()
        st, rb = cli.call("PUT", "/v1/collections/%s/points" % name, raw=raw)
        if st != 200:
            cli.die("upsert into %s: %s" % (name, json.dumps(rb)))
        sent += len(batch)
        batch = []

    for sh in m["shards"]:
        for pid, vec, payload in read_copy_binary(os.path.join(d, sh["file"])):
            batch.append('{"id":%s,"vector":%s%s}' % (
                json.dumps(pid), json.dumps(vec),
                (',"payload":' + payload) if payload is not None else ""))
            if len(batch) >= BATCH:
                flush()
        flush()
        print("  %s: restored %d/%d rows" % (name, sent, m["rows"]), file=sys.stderr)
    # verify against the new shards
    ac = {x["name"]: x for x in get_ok(cli, "/v1/admin/collections")["collections"]}[name]
    nodes = nodes_by_name(cli)
    rows, checksum = 0, 0
    for s in ac["shard_detail"]:
        p = [p for p in s["placements"] if p["state"] == "active" and nodes[p["node"]]["up"]][0]
        out = psql(cli, nodes[p["node"]], "SELECT count(*) || ' ' || %s FROM vectron_shards.%s "
                   "WHERE NOT deleted;\n" % (CHECKSUM_EXPR, shard_table(s["table"])))
        rows += int(out.split()[0])
        checksum += int(out.split()[1])
    if rows != m["rows"] or str(checksum) != m["checksum"]:
        cli.die("%s: verification failed: %d rows (backup %d), checksum %s (backup %s)"
                % (name, rows, m["rows"], checksum, m["checksum"]))
    print("restored %s as %s: %d rows in %d shard(s), checksums verified, %.1fs"
          % (c["name"], name, rows, len(ac["shard_detail"]), time.time() - t0))
