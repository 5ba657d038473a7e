#!/usr/bin/env python3
"""Checks one image's OCI layout as tools/images/build_image.py makes it (ADR 0022 §1).

    check_layout.py LAYOUT NAME EPOCH

Config: user 65532:65532, entrypoint /usr/bin/NAME, every timestamp EPOCH. Layer: the binary,
the CA bundle, Europe/Amsterdam, passwd with nonroot, the SBOM naming every package of the lock
beside the layout; no shell, no package manager, no dpkg database; owned by root except the
nonroot home and the state folder; no set-id bits; every mtime EPOCH. Prints the image's size
(compressed layer) and package count; exits 1 naming each problem.
"""

import datetime
import gzip
import io
import json
import os
import sys
import tarfile

FORBIDDEN = ["bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/bash", "bin/dash", "usr/bin/dpkg",
             "usr/bin/apt", "usr/bin/apt-get", "var/lib/dpkg/status", "sbin/ldconfig"]
NONROOT_OWNED = {"home/nonroot", "var/lib/polder"}


def main():
    layout, name, epoch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    problems = []

    def blob(digest):
        algorithm, hexdigest = digest.split(":")
        return os.path.join(layout, "blobs", algorithm, hexdigest)

    index = json.load(open(os.path.join(layout, "index.json")))
    manifest = json.load(open(blob(index["manifests"][0]["digest"])))
    config = json.load(open(blob(manifest["config"]["digest"])))
    created = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    if config.get("created") != created:
        problems.append(f"config created {config.get('created')}, not {created}")
    for h in config.get("history", []):
        if h.get("created") != created:
            problems.append(f"history created {h.get('created')}, not {created}")
    c = config.get("config", {})
    if c.get("User") != "65532:65532":
        problems.append(f"user {c.get('User')!r}, not 65532:65532")
    if c.get("Entrypoint") != [f"/usr/bin/{name}"]:
        problems.append(f"entrypoint {c.get('Entrypoint')!r}")
    if len(manifest["layers"]) != 1:
        problems.append(f"{len(manifest['layers'])} layers, not 1")

    layer = manifest["layers"][0]
    with open(blob(layer["digest"]), "rb") as f:
        raw = gzip.decompress(f.read())
    entries = {}
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for m in tar.getmembers():
            entries[m.name] = m
            if m.mtime != epoch:
                problems.append(f"{m.name}: mtime {m.mtime}")
            expected_owner = 65532 if m.name in NONROOT_OWNED else 0
            if (m.uid, m.gid) != (expected_owner, expected_owner):
                problems.append(f"{m.name}: owner {m.uid}:{m.gid}")
            if m.mode & 0o6000:
                problems.append(f"{m.name}: set-id bits {oct(m.mode)}")
        def text(path):
            return tar.extractfile(entries[path]).read() if path in entries else b""
        for required in [f"usr/bin/{name}", "etc/ssl/certs/ca-certificates.crt",
                         "usr/share/zoneinfo/Europe/Amsterdam", "etc/passwd", "etc/os-release",
                         "usr/share/polder/sbom.spdx.json", "lib64/ld-linux-x86-64.so.2", "tmp"]:
            if required not in entries:
                problems.append(f"{required} is missing")
        if text("etc/ssl/certs/ca-certificates.crt").count(b"BEGIN CERTIFICATE") < 50:
            problems.append("the CA bundle holds fewer than 50 certificates")
        if b"nonroot:x:65532:65532:" not in text("etc/passwd"):
            problems.append("etc/passwd has no nonroot 65532")
        sbom = json.loads(text("usr/share/polder/sbom.spdx.json") or b"{}")
    for path in FORBIDDEN:
        if path in entries:
            problems.append(f"{path} is in the image")
    if sbom.get("spdxVersion") != "SPDX-2.3":
        problems.append("the SBOM is not SPDX 2.3")
    in_sbom = {p["name"]: p.get("versionInfo") for p in sbom.get("packages", [])}
    lock = [line.split("\t") for line in open(os.path.join(layout, "packages.lock"))
            if not line.startswith("#")]
    for fields in lock:
        if in_sbom.get(fields[0]) != fields[1]:
            problems.append(f"the SBOM does not name {fields[0]} {fields[1]}")
    if json.load(open(os.path.join(layout, "sbom.spdx.json"))) != sbom:
        problems.append("the SBOM beside the image differs from the one in it")

    for p in problems:
        print(f"check_layout {name}: {p}")
    print(f"{name}: {layer['size'] / 1e6:.1f} MB compressed ({len(raw) / 1e6:.1f} MB unpacked), "
          f"{len(entries)} entries, {len(lock)} Debian packages")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
