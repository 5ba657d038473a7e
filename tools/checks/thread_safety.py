#!/usr/bin/env python3
"""Enforces the lock annotations (ABSL_GUARDED_BY, ABSL_EXCLUSIVE_LOCKS_REQUIRED, ...).

gcc, which builds Polder, ignores them; clang checks them. For every C++ source that a library
or binary compiles (tests excluded), runs

    clang++-14 -fsyntax-only -Wthread-safety -Werror=thread-safety <the build's flags>

with the include paths and defines Bazel's own compile action uses (from `bazel aquery`), in
Bazel's execution root, so generated headers (.pb.h) resolve. Needs a prior `bazel build` of
the sources' targets (test.sh builds everything first).

A source whose text, flags and included headers (from clang's dependency file of its last
clean check) are unchanged since its last clean check is not checked again: a warm run checks
only what changed. Prints each finding and the number of files checked; exits 1 on a finding.

    tools/checks/thread_safety.py [--jobs N] [--cache DIR] [--all]
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

SCOPE = "//common/... + //services/... + //tools/... + //bench/..."
CLANG = "clang++-14"
KEPT_WITH_VALUE = ("-iquote", "-isystem", "-I", "-include")


def bazel(*args):
    bazel_bin = os.environ.get("POLDER_BAZEL", "bazel")
    return subprocess.run([bazel_bin, *args], check=True, capture_output=True, text=True).stdout


def compile_commands():
    """(source, flags) for every C++ compile of a non-test library or binary."""
    query = f'mnemonic("CppCompile", kind("cc_library|cc_binary", {SCOPE}))'
    actions = json.loads(bazel("aquery", query, "--output=jsonproto")).get("actions", [])
    commands = {}
    for action in actions:
        args = action["arguments"]
        source, flags, i = None, [], 1
        while i < len(args):
            arg = args[i]
            if arg == "-c" and i + 1 < len(args):
                source = args[i + 1]
                i += 2
                continue
            if arg in KEPT_WITH_VALUE and i + 1 < len(args):
                flags += [arg, args[i + 1]]
                i += 2
                continue
            if arg.startswith(("-D", "-U", "-I", "-std=")) and not arg.startswith("-D__"):
                flags.append(arg)
            i += 1
        if source is None or source.endswith("_test.cc") or not source.endswith(".cc"):
            continue
        if source.startswith(("external/", "bazel-out/")):
            continue
        commands[(source, tuple(flags))] = list(flags)
    return sorted(commands.items())


class HashCache:
    def __init__(self):
        self.hashes = {}

    def of(self, path):
        if path not in self.hashes:
            try:
                with open(path, "rb") as f:
                    self.hashes[path] = hashlib.sha256(f.read()).hexdigest()
            except OSError:
                self.hashes[path] = "missing"
        return self.hashes[path]


def stamp(source, flags, deps, hashes):
    h = hashlib.sha256()
    h.update(CLANG.encode() + b"\0" + source.encode() + b"\0" + "\0".join(flags).encode())
    for dep in sorted(set([source] + deps)):
        h.update(dep.encode() + b"\0" + hashes.of(dep).encode() + b"\0")
    return h.hexdigest()


def parse_depfile(text):
    body = text.replace("\\\n", " ").split(":", 1)[-1]
    return [d for d in body.split() if d]


def check(source, flags):
    """(ok, output, deps) of one clang run."""
    with tempfile.NamedTemporaryFile(suffix=".d", delete=False) as dep:
        depfile = dep.name
    try:
        cmd = [CLANG, "-fsyntax-only", "-Wno-everything", "-Wthread-safety",
               "-Werror=thread-safety", "-MD", "-MF", depfile, *flags, source]
        run = subprocess.run(cmd, capture_output=True, text=True)
        deps = []
        if os.path.exists(depfile):
            with open(depfile) as f:
                deps = parse_depfile(f.read())
        return run.returncode == 0, run.stdout + run.stderr, deps, cmd
    finally:
        if os.path.exists(depfile):
            os.unlink(depfile)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--cache", default=os.path.join(
        os.environ.get("POLDER_CACHE_HOME", os.path.expanduser("~/.cache/polder")),
        "thread-safety"))
    parser.add_argument("--all", action="store_true", help="ignore the cache: check every file")
    options = parser.parse_args()

    start = time.monotonic()
    execroot = bazel("info", "execution_root").strip()
    commands = compile_commands()
    if not commands:
        print("thread-safety: no compile actions found (build the tree first)", file=sys.stderr)
        return 1
    os.makedirs(options.cache, exist_ok=True)
    os.chdir(execroot)
    hashes = HashCache()

    def record_path(source, flags):
        key = hashlib.sha256((source + "\0" + "\0".join(flags)).encode()).hexdigest()
        return os.path.join(options.cache, key + ".json")

    pending, cached = [], 0
    for (source, _), flags in commands:
        path = record_path(source, flags)
        if not options.all and os.path.exists(path):
            with open(path) as f:
                record = json.load(f)
            if record.get("stamp") == stamp(source, flags, record.get("deps", []), hashes):
                cached += 1
                continue
        pending.append((source, flags, path))

    findings = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        futures = {pool.submit(check, s, f): (s, f, p) for s, f, p in pending}
        for future in concurrent.futures.as_completed(futures):
            source, flags, path = futures[future]
            ok, output, deps, cmd = future.result()
            if ok:
                # The stamp is taken from the files as they are now: a header edited while this
                # ran is checked again next time.
                fresh = HashCache()
                with open(path + ".tmp", "w") as f:
                    json.dump({"stamp": stamp(source, flags, deps, fresh), "deps": deps}, f)
                os.replace(path + ".tmp", path)
            else:
                findings.append((source, output.strip() or " ".join(map(shlex.quote, cmd))))

    elapsed = time.monotonic() - start
    for source, output in sorted(findings):
        print(f"--- {source}\n{output}\n")
    status = "ok" if not findings else f"{len(findings)} file(s) with findings"
    print(f"thread-safety: {status} ({len(commands)} files: {len(pending)} checked, "
          f"{cached} unchanged since their last clean check; {elapsed:.0f} s)")
    return 0 if not findings else 1


if __name__ == "__main__":
    sys.exit(main())
