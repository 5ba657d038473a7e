#!/usr/bin/env python3
"""Builds one Polder container image from a Bazel-built binary and Debian's packages (ADR 0022).

    tools/images/build_image.py --binary bazel-bin/services/node/polder-node --name polder-node \
        --debs /var/cache/polder/debs-<hash> --out /tmp/image [--tag dev] [--epoch N]

The image holds the binary as /usr/bin/<name>, the Debian packages its shared libraries come
from (the loader's resolution on this machine, each file mapped to its package), ca-certificates
(the bundle only), tzdata and base-files' os-release, unpacked from the .deb files in --debs (no
shell, no package manager, no dpkg database; /var/lib/dpkg/status.d/ holds each package's control
fields for scanners), /etc/passwd and /etc/group with root and nonroot (65532), and nothing else.

Reproducible: the root file system is written here as one tar (paths sorted, every mtime
--epoch, owners numeric, no access or change times); umoci packs it into an OCI image layout in
--out with --epoch as every timestamp. Two builds of the same inputs have the same manifest
digest. Beside the layout: packages.lock (name, version, SHA-256 and file of each .deb used) and
sbom.spdx.json (SPDX 2.3, made from that lock and the binary's SHA-256). Prints the manifest
digest as its last line.
"""

import argparse
import datetime
import glob
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile

NONROOT = 65532
# Always in an image, whatever the binary links: the loader's package, the CA bundle, the time
# zones (the views' Europe/Amsterdam days) and os-release (what scanners read).
ALWAYS = ["libc6", "ca-certificates", "tzdata", "base-files"]
# From base-files only what identifies the distribution.
BASE_FILES_KEEP = {"etc/debian_version", "etc/os-release", "usr/lib/os-release"}
# Links Debian's maintainer scripts make (update-alternatives) that a library's users need.
ALTERNATIVES = {
    "usr/lib/x86_64-linux-gnu/libblas.so.3": "blas/libblas.so.3",
    "usr/lib/x86_64-linux-gnu/liblapack.so.3": "lapack/liblapack.so.3",
}
# Dropped from every package: documentation (but each package's copyright), manuals, lintian
# overrides, bug-reporting hooks; and the CA package's scripts (no shell runs them).
DROP_PREFIXES = ("usr/share/man/", "usr/share/info/", "usr/share/lintian/", "usr/share/bug/",
                 "usr/share/locale/", "usr/sbin/update-ca-certificates",
                 "etc/ca-certificates/update.d")
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"


def fail(message):
    print(f"build_image: {message}", file=sys.stderr)
    sys.exit(1)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def needed_packages(binary):
    """The Debian packages of the shared libraries the loader resolves for `binary`."""
    out = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    libraries = []
    for line in out.splitlines():
        parts = line.split()
        if "not found" in line:
            fail(f"{binary}: {line.strip()}")
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if path.startswith("/"):  # not linux-vdso
            libraries.append(path)
    # dpkg knows a file by the path its package ships, which merged /usr may hide: ask for each
    # spelling at once (one dpkg call: it reads its database once).
    spellings = {lib: [lib, os.path.realpath(lib), lib.replace("/usr/lib/", "/lib/", 1)]
                 for lib in libraries}
    queries = sorted({s for v in spellings.values() for s in v})
    r = subprocess.run(["dpkg", "-S"] + queries, capture_output=True, text=True)
    owner_of = {}
    for line in r.stdout.splitlines():
        owners, _, path = line.partition(": ")
        owner_of[path] = owners.split(", ")[0].split(":")[0]
    packages = set()
    for lib, candidates in spellings.items():
        owner = next((owner_of[c] for c in candidates if c in owner_of), None)
        if owner is None:
            fail(f"{binary}: no Debian package owns {lib}")
        packages.add(owner)
    return packages


def find_deb(debs, package):
    matches = sorted(glob.glob(os.path.join(debs, f"{package}_*_amd64.deb")) +
                     glob.glob(os.path.join(debs, f"{package}_*_all.deb")))
    if len(matches) != 1:
        fail(f"package {package}: expected one .deb in {debs}, found {len(matches)} "
             "(tools/setup/setup.sh downloads them; tools/images/packages.txt names them)")
    return matches[0]


def deb_field(deb, field):
    return subprocess.run(["dpkg-deb", "-f", deb, field], check=True, capture_output=True,
                          text=True).stdout.strip()


class Root:
    """The image's files: path (no leading '/') → (TarInfo, bytes or None)."""

    def __init__(self):
        self.entries = {}

    def add(self, info, data, source):
        path = info.name
        if path in self.entries:
            old_info, old_data = self.entries[path]
            if info.isdir() and old_info.isdir():
                return
            if (old_info.type, old_info.linkname, old_data) == (info.type, info.linkname, data):
                return
            fail(f"{path}: shipped differently by two packages (the second: {source})")
        self.entries[path] = (info, data)

    def add_dir(self, path, mode=0o755, uid=0):
        info = tarfile.TarInfo(path)
        info.type = tarfile.DIRTYPE
        info.mode = mode
        info.uid = info.gid = uid
        self.add(info, None, "builder")

    def add_file(self, path, data, mode=0o644):
        info = tarfile.TarInfo(path)
        info.size = len(data)
        info.mode = mode
        self.add(info, data, "builder")

    def add_link(self, path, target):
        info = tarfile.TarInfo(path)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        info.mode = 0o777
        self.add(info, None, "builder")

    def add_parents(self):
        for path in list(self.entries):
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                parent = "/".join(parts[:i])
                if parent not in self.entries:
                    self.add_dir(parent)

    def write_tar(self, path, epoch):
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(self.entries):
                info, data = self.entries[name]
                info.mtime = epoch
                info.uname = info.gname = ""
                info.pax_headers = {}
                tar.addfile(info, io.BytesIO(data) if data is not None else None)


def unpack_deb(root, deb, package):
    """Adds a package's data archive (less what DROP_PREFIXES names) to `root`."""
    tar_bytes = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], check=True,
                               capture_output=True).stdout
    hardlinks = []
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for member in tar.getmembers():
            name = os.path.normpath(member.name).lstrip("./")
            if name in ("", "."):
                continue
            if package == "base-files" and name not in BASE_FILES_KEEP:
                continue
            if name.startswith(DROP_PREFIXES):
                continue
            if name.startswith("usr/share/doc/") and not (
                    member.isdir() or name.endswith("/copyright")):
                continue
            info = tarfile.TarInfo(name)
            info.mode = member.mode
            info.uid = info.gid = 0
            data = None
            if member.isdir():
                info.type = tarfile.DIRTYPE
            elif member.issym():
                info.type = tarfile.SYMTYPE
                info.linkname = member.linkname
            elif member.islnk():
                hardlinks.append((name, os.path.normpath(member.linkname).lstrip("./"), member))
                continue
            elif member.isfile():
                data = tar.extractfile(member).read()
                info.size = len(data)
            else:
                fail(f"{deb}: {member.name}: unexpected entry type")
            root.add(info, data, deb)
    for name, target, member in hardlinks:  # a copy: layers need no hard links
        target_info, data = root.entries[target]
        info = tarfile.TarInfo(name)
        info.mode = member.mode
        info.size = len(data)
        root.add(info, data, deb)
    return tar_bytes


def control_fields(deb):
    return subprocess.run(["dpkg-deb", "-f", deb], check=True, capture_output=True,
                          text=True).stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--name", required=True, help="image and binary name, e.g. polder-node")
    parser.add_argument("--debs", required=True, help="folder of the downloaded .deb files")
    parser.add_argument("--out", required=True, help="the OCI layout to make (absent or empty)")
    parser.add_argument("--tag", default="dev")
    parser.add_argument("--epoch", type=int, default=int(os.environ.get("SOURCE_DATE_EPOCH", 0)),
                        help="every timestamp in the image (default SOURCE_DATE_EPOCH or 0)")
    parser.add_argument("--umoci", default="umoci")
    args = parser.parse_args()

    if os.path.exists(args.out) and os.listdir(args.out):
        fail(f"--out {args.out} is not empty")
    if not os.access(args.binary, os.X_OK):
        fail(f"--binary {args.binary} is not an executable file")

    packages = sorted(needed_packages(args.binary) | set(ALWAYS))
    root = Root()
    lock = []
    for package in packages:
        deb = find_deb(args.debs, package)
        unpack_deb(root, deb, package)
        fields = control_fields(deb)
        root.add_file(f"var/lib/dpkg/status.d/{package}", fields.encode())
        lock.append({"name": package, "version": deb_field(deb, "Version"),
                     "architecture": deb_field(deb, "Architecture"),
                     "sha256": sha256_file(deb), "file": os.path.basename(deb)})

    # The CA bundle, as update-ca-certificates would make it from every packaged certificate.
    certs = sorted(p for p in root.entries
                   if p.startswith("usr/share/ca-certificates/") and p.endswith(".crt"))
    if not certs:
        fail("ca-certificates has no certificates")
    bundle = b"".join(root.entries[p][1].rstrip(b"\n") + b"\n" for p in certs)
    root.add_file(CA_BUNDLE, bundle)
    for link, target in ALTERNATIVES.items():
        if os.path.join(os.path.dirname(link), target) in root.entries:
            root.add_link(link, target)

    binary = open(args.binary, "rb").read()
    binary_sha = hashlib.sha256(binary).hexdigest()
    root.add_file(f"usr/bin/{args.name}", binary, mode=0o755)
    root.add_file("etc/passwd", b"root:x:0:0:root:/root:/sbin/nologin\n"
                  b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
    root.add_file("etc/group", b"root:x:0:\nnonroot:x:65532:\n")
    root.add_file("etc/nsswitch.conf", b"passwd: files\ngroup: files\nhosts: files dns\n")
    root.add_dir("root", mode=0o700)
    root.add_dir("home/nonroot", mode=0o700, uid=NONROOT)
    root.add_dir("tmp", mode=0o1777)
    root.add_dir("var/lib/polder", mode=0o700, uid=NONROOT)  # state_dir: a volume in Kubernetes

    created = datetime.datetime.fromtimestamp(args.epoch, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    sbom = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{args.name}:{args.tag}",
        "documentNamespace": f"https://polder.invalid/spdx/{args.name}/{binary_sha}",
        "creationInfo": {"created": created, "creators": ["Tool: polder tools/images/build_image.py"]},
        "packages": [{
            "SPDXID": "SPDXRef-Package-binary",
            "name": args.name,
            "versionInfo": args.tag,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "checksums": [{"algorithm": "SHA256", "checksumValue": binary_sha}],
            "supplier": "Organization: Polder",
        }] + [{
            "SPDXID": f"SPDXRef-Package-deb-{entry['name'].replace('+', '-').replace('.', '-')}",
            "name": entry["name"],
            "versionInfo": entry["version"],
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "checksums": [{"algorithm": "SHA256", "checksumValue": entry["sha256"]}],
            "supplier": "Organization: Debian",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": f"pkg:deb/debian/{entry['name']}@{entry['version']}"
                                    f"?arch={entry['architecture']}&distro=debian-12",
            }],
        } for entry in lock],
        "relationships": [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                           "relatedSpdxElement": "SPDXRef-Package-binary"}] + [{
            "spdxElementId": "SPDXRef-Package-binary", "relationshipType": "DEPENDS_ON",
            "relatedSpdxElement":
                f"SPDXRef-Package-deb-{entry['name'].replace('+', '-').replace('.', '-')}",
        } for entry in lock],
    }
    sbom_bytes = (json.dumps(sbom, indent=2, sort_keys=True) + "\n").encode()
    root.add_file("usr/share/polder/sbom.spdx.json", sbom_bytes)
    root.add_parents()

    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        layer = os.path.join(work, "rootfs.tar")
        root.write_tar(layer, args.epoch)
        layout = os.path.join(work, "layout")
        image = f"{layout}:{args.tag}"
        umoci = [args.umoci]
        subprocess.run(umoci + ["init", "--layout", layout], check=True)
        subprocess.run(umoci + ["new", "--image", image], check=True)
        subprocess.run(umoci + ["raw", "add-layer", "--image", image, "--history.created", created,
                                "--history.created_by", "tools/images/build_image.py",
                                "--history.comment", f"{args.name} and {len(lock)} Debian packages",
                                layer], check=True)
        config = umoci + ["config", "--image", image, "--no-history", "--created", created,
                          "--author", "Polder", "--os", "linux", "--architecture", "amd64",
                          "--config.user", f"{NONROOT}:{NONROOT}",
                          "--config.entrypoint", f"/usr/bin/{args.name}",
                          "--config.workingdir", "/",
                          "--config.env", "PATH=/usr/bin:/bin",
                          "--config.env", f"SSL_CERT_FILE=/{CA_BUNDLE}",
                          "--config.env", "TMPDIR=/tmp",
                          "--config.label", f"org.opencontainers.image.title={args.name}",
                          "--config.label", f"org.opencontainers.image.version={args.tag}",
                          "--config.label", f"org.opencontainers.image.created={created}"]
        subprocess.run(config, check=True)
        subprocess.run(umoci + ["gc", "--layout", layout], check=True)
        for entry in os.listdir(layout):
            shutil.move(os.path.join(layout, entry), os.path.join(args.out, entry))

    with open(os.path.join(args.out, "packages.lock"), "w") as f:
        f.write("# name\tversion\tsha256\tfile\n")
        for entry in lock:
            f.write(f"{entry['name']}\t{entry['version']}\t{entry['sha256']}\t{entry['file']}\n")
    with open(os.path.join(args.out, "sbom.spdx.json"), "wb") as f:
        f.write(sbom_bytes)
    index = json.load(open(os.path.join(args.out, "index.json")))
    digests = [m["digest"] for m in index["manifests"]
               if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == args.tag]
    if len(digests) != 1:
        fail(f"{args.out}/index.json: expected one manifest tagged {args.tag}")
    print(digests[0])


if __name__ == "__main__":
    main()
