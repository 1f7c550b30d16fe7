"""vxresults.py: result lines for scripts/check from Python test suites.

A suite creates one Results with its prefix; each check appends
"PASS prefix:name" or "FAIL prefix:name" to $VX_RESULTS (the file
scripts/check counts) and prints failures with their detail.
"""
import os


class Results:
    def __init__(self, prefix):
        self.prefix = prefix
        self.path = os.environ.get("VX_RESULTS")
        self.passed = 0
        self.failed = 0

    def record(self, name, ok, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("   FAIL %s %s" % (name, detail))
        if self.path:
            with open(self.path, "a") as f:
                f.write("%s %s:%s\n" % ("PASS" if ok else "FAIL", self.prefix, name))

    def check(self, name, cond, detail=""):
        self.record(name, bool(cond), detail)
        return bool(cond)
