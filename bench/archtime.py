#!/usr/bin/env python3
"""bench/archtime.py: times commands the way PostgreSQL's archiver runs archive_command.

    archtime.py JOBS OUT

JOBS holds one job per line: LABEL <tab> FILE <tab> COMMAND. For each, in order: FILE is read
(as the archiver finds a segment PostgreSQL has just written: in the page cache), then COMMAND
runs as system() runs it, /bin/sh -c COMMAND, and its wall time from the fork to the exit is
taken. OUT gets "LABEL MILLISECONDS" per job. A command that fails stops the run (exit 1).

Run it as the server's user (the bench starts it once, with runuser): timing each push through
its own runuser would add a PAM session, about 6 ms here, to both tools' times alike, which no
archiver pays and which pulls every ratio towards 1.
"""
import subprocess
import sys
import time


def main():
    jobs, out = sys.argv[1], sys.argv[2]
    with open(jobs) as f, open(out, "w") as o:
        for line in f:
            label, path, cmd = line.rstrip("\n").split("\t", 2)
            with open(path, "rb") as seg:
                while seg.read(1 << 20):
                    pass
            t0 = time.monotonic()
            rc = subprocess.run(["/bin/sh", "-c", cmd]).returncode
            ms = (time.monotonic() - t0) * 1000
            if rc != 0:
                print("archtime: %s exited %d: %s" % (label, rc, cmd), file=sys.stderr)
                sys.exit(1)
            o.write("%s %.1f\n" % (label, ms))
            o.flush()


main()
