#!/usr/bin/env python3
"""Writes k8s/images/packages.lock: the Debian packages Polder's images hold, at the versions
Debian serves today (ADR 0022 §1).

    tools/images/relock.py [--debs DIR] [--check | --compare LOCK...]

The package names are those the four binaries' shared libraries come from (bazel-bin must hold
them: `bazel build //services/... //tools/polderctl`) plus what every image holds
(build_image.ALWAYS). Each package's current .deb is downloaded into --debs (default
$POLDER_DEBS_HOME, as tools/setup/setup.sh sets it) if it is not there, and the lock records
name, version, SHA-256 and file. --check writes nothing: it prints how the served versions differ
from the committed lock and exits 0 (a newer Debian package is news, not a failure) unless a
package the binaries need is missing from the lock (exit 1). --compare does the same for the
locks build_image.py wrote beside images (tests/images does).
"""

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_image  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCK = os.path.join(REPO, "k8s", "images", "packages.lock")
BINARIES = [
    "services/node/polder-node",
    "services/registry/polder-registry",
    "services/aggregator/polder-aggregator",
    "tools/polderctl/polderctl",
]


def read_lock(path):
    """name → (version, sha256, file) of a lock file."""
    entries = {}
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            name, version, sha, file = line.rstrip("\n").split("\t")
            entries[name] = (version, sha, file)
    return entries


def served(debs, names):
    """name → (version, sha256, file) of the .deb Debian serves today, downloaded if missing."""
    subprocess.run(["bash", os.path.join(REPO, "tools", "images", "fetch_debs.sh"), debs] +
                   sorted(names), check=True)
    out = {}
    for name in sorted(names):
        deb = build_image.find_deb(debs, name)
        out[name] = (build_image.deb_field(deb, "Version"), build_image.sha256_file(deb),
                     os.path.basename(deb))
    return out


def compare(entries, committed):
    """Prints how `entries` (name → (version, ...)) differ from the committed lock; returns the
    names missing from it."""
    missing = sorted(set(entries) - set(committed))
    for name in missing:
        print(f"relock: {name} is needed but not in {LOCK} (tools/images/relock.py)")
    for name in sorted(set(entries) & set(committed)):
        if entries[name][0] != committed[name][0]:
            print(f"relock: {name} {committed[name][0]} in the lock, Debian serves "
                  f"{entries[name][0]} today (not a failure; tools/images/relock.py updates "
                  "the lock)")
    return missing


def write_lock(path, entries):
    with open(path, "w") as f:
        f.write("# The Debian packages of Polder's images (ADR 0022 §1), as last released:\n"
                "# name, version, SHA-256 and file of each .deb. Written by "
                "tools/images/relock.py.\n")
        for name in sorted(entries):
            version, sha, file = entries[name]
            f.write(f"{name}\t{version}\t{sha}\t{file}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--debs", default=os.environ.get("POLDER_DEBS_HOME", ""))
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--compare", nargs="+", metavar="LOCK",
                        help="compare these locks (as build_image.py writes beside an image) "
                             "with the committed one instead; nothing is downloaded")
    args = parser.parse_args()
    if args.compare:
        entries = {}
        for path in args.compare:
            entries.update(read_lock(path))
        sys.exit(1 if compare(entries, read_lock(LOCK)) else 0)
    if not args.debs:
        build_image.fail("--debs or POLDER_DEBS_HOME: where the .deb files are kept")
    names = set(build_image.ALWAYS)
    for binary in BINARIES:
        path = os.path.join(REPO, "bazel-bin", binary)
        if not os.access(path, os.X_OK):
            build_image.fail(f"{path} is missing: bazel build //{os.path.dirname(binary)}:"
                             f"{os.path.basename(binary)} first")
        names |= build_image.needed_packages(path)
    if args.check:
        sys.exit(1 if compare(served(args.debs, names), read_lock(LOCK)) else 0)
    write_lock(LOCK, served(args.debs, names))
    print(f"relock: {LOCK}: {len(names)} packages")


if __name__ == "__main__":
    main()
