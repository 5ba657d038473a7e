#!/usr/bin/env bash
# The container images (ADR 0022 §1–§3). For each of polder-node, polder-registry,
# polder-aggregator and polderctl:
#   - built twice by tools/images/build_image.py into two empty folders: the manifest digests
#     must be equal;
#   - its layout checked (tests/images/check_layout.py): user, entrypoint, timestamps, owners,
#     no shell or package manager, CA bundle, time zones, SBOM;
#   - run under podman + runc (or, if podman cannot run here, unshare + chroot as 65532): the
#     image's own loader resolves every library of the binary, with the root read-only and as
#     the image's user (65532); a shell cannot be started (there is none).
# The Debian versions served today are compared with the committed lock
# (k8s/images/packages.lock): a package missing from it fails; a newer version is reported.
set -euo pipefail

runfiles=${TEST_SRCDIR:?}/${TEST_WORKSPACE:?}
# The .deb files tools/setup/setup.sh keeps (tools/setup/versions.sh's POLDER_DEBS_HOME).
debs=${POLDER_DEBS_HOME:-/var/cache/polder/debs}
[ -d "$debs" ] || { echo "FAIL: no .deb files in $debs: run tools/setup/setup.sh" >&2; exit 1; }
work=$(mktemp -d "${TEST_TMPDIR:?}/images.XXXXXX")
epoch=1700000000
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

declare -A binaries=(
  [polder-node]=services/node/polder-node
  [polder-registry]=services/registry/polder-registry
  [polder-aggregator]=services/aggregator/polder-aggregator
  [polderctl]=tools/polderctl/polderctl
)
names=(polder-node polder-registry polder-aggregator polderctl)

# 1. Each image twice, into two empty folders; equal digests.
for name in "${names[@]}"; do
  digests=()
  for copy in a b; do
    mkdir -p "$work/$copy"
    digests+=("$(python3 "$runfiles/tools/images/build_image.py" \
      --binary "$runfiles/${binaries[$name]}" --name "$name" --debs "$debs" \
      --out "$work/$copy/$name" --epoch "$epoch" | tail -1)")
  done
  if [ "${digests[0]}" != "${digests[1]}" ]; then
    fail "$name: two builds, two digests: ${digests[0]} ${digests[1]}"
  fi
  echo "$name: ${digests[0]} (built twice, equal)"
  python3 "$runfiles/tests/images/check_layout.py" "$work/a/$name" "$name" "$epoch" ||
    fail "$name: its layout (above)"
done

# 2. The served Debian versions against the committed lock: a package missing from it fails, a
# newer version is printed.
python3 "$runfiles/tools/images/relock.py" --compare "$work"/a/*/packages.lock ||
  fail "an image holds a package that k8s/images/packages.lock does not name"

# 3. Run them.
printf '[containers]\ndefault_ulimits = []\n' > "$work/containers.conf"
export CONTAINERS_CONF="$work/containers.conf"
# podman's run root must be a short path (at most 50 characters), and it names an image after
# its layout's path (lower case only): a folder of its own under /tmp.
pm=/tmp/polder-podman-$$
rm -rf "$pm"
mkdir -p "$pm"
trap 'rm -rf "$pm"' EXIT
for name in "${names[@]}"; do ln -s "$work/a/$name" "$pm/$name"; done
podman=(podman --root "$pm/storage" --runroot "$pm/run" --cgroup-manager=cgroupfs
  --storage-driver=vfs --runtime runc)
run_flags=(--rm --network=host --read-only --cap-drop=ALL --security-opt=no-new-privileges)
runtime=podman
if ! "${podman[@]}" pull -q "oci:$pm/polderctl:dev" >/dev/null 2>"$work/podman.err"; then
  echo "podman cannot run here ($(head -c 300 "$work/podman.err")); unshare + chroot instead"
  runtime=chroot
fi
for name in "${names[@]}"; do
  if [ "$runtime" = podman ]; then
    image=$("${podman[@]}" pull -q "oci:$pm/$name:dev")
    user=$("${podman[@]}" image inspect --format '{{.Config.User}}' "$image")
    [ "$user" = "65532:65532" ] || fail "$name: runs as '$user'"
    # The image's own loader lists what the binary loads; no --user: the image's user runs it.
    if ! "${podman[@]}" run "${run_flags[@]}" --entrypoint /lib64/ld-linux-x86-64.so.2 \
      "$image" --list "/usr/bin/$name" > "$work/$name.ldd" 2>&1; then
      fail "$name: its loader did not run: $(head -c 500 "$work/$name.ldd")"
    fi
    if "${podman[@]}" run "${run_flags[@]}" --entrypoint /bin/sh "$image" -c true \
      >/dev/null 2>&1; then
      fail "$name: a shell ran in the image"
    fi
  else
    root="$work/rootfs-$name"
    mkdir -p "$root"
    layer=$(python3 -c 'import json,sys
d=sys.argv[1]
m=json.load(open(d+"/blobs/"+json.load(open(d+"/index.json"))["manifests"][0]["digest"].replace(":","/")))
print(d+"/blobs/"+m["layers"][0]["digest"].replace(":","/"))' "$work/a/$name")
    tar -xzf "$layer" -C "$root"
    unshare --mount --pid --fork bash -c "mount --bind '$root' '$root' &&
      mount -o remount,bind,ro '$root' &&
      chroot --userspec=65532:65532 '$root' /lib64/ld-linux-x86-64.so.2 --list /usr/bin/$name" \
      > "$work/$name.ldd" 2>&1 || fail "$name: its loader did not run in the chroot"
    [ ! -e "$root/bin/sh" ] || fail "$name: a shell is in the image"
  fi
  if grep -q "not found" "$work/$name.ldd"; then
    fail "$name: libraries missing: $(grep "not found" "$work/$name.ldd" | tr '\n' ' ')"
  fi
  echo "$name: $(grep -c "=>" "$work/$name.ldd") libraries resolved inside the image ($runtime)"
done
if [ "$runtime" = podman ]; then
  echo "runtime: $(podman --version), $(runc --version | head -1)"
  "${podman[@]}" rmi -af >/dev/null 2>&1 || true
fi
rm -rf "$work"

if [ "$failures" -gt 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "images: 4 built twice with equal digests, checked and run"
