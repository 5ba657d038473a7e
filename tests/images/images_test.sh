#!/usr/bin/env bash
# The container images (ADR 0022 §1–§3). For each of polder-node, polder-registry,
# polder-aggregator and polderctl:
#   - built twice by tools/images/build_image.py into two empty folders: the manifest digests
#     must be equal;
#   - its layout checked (tests/images/check_layout.py): user, entrypoint, timestamps, owners,
#     no shell or package manager, CA bundle, time zones, SBOM;
#   - run by tools/images/run_image.sh under podman + runc (or, if podman cannot run here,
#     unshare + chroot as 65532; the node image under the fallback on purpose too): the image's
#     own loader resolves every library of the binary, with the root read-only and as UID 65532;
#     a shell cannot be started (there is none).
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

# 3. Run them with tools/images/run_image.sh, as the cluster would: podman + runc, or (where
# podman cannot run) unshare + chroot, as 65532 with the root read-only. The node image also
# under the fallback on purpose, so the fallback is known to work before a machine needs it.
run_image="$runfiles/tools/images/run_image.sh"
tag=images-test-$$
trap 'bash "$run_image" --cleanup --name "$tag" >/dev/null 2>&1 || true' EXIT
runtime=""
for name in "${names[@]}" polder-node; do
  how=auto
  if [ "$name" = polder-node ] && [ -n "$runtime" ] && [ -e "$work/$name.ldd" ]; then how=chroot; fi
  # The image's own loader lists what the binary loads.
  if ! bash "$run_image" --layout "$work/a/$name" --name "$tag" --runtime "$how" \
      --entrypoint /lib64/ld-linux-x86-64.so.2 -- --list "/usr/bin/$name" \
      > "$work/$name.ldd" 2> "$work/$name.err"; then
    fail "$name: its loader did not run ($how): $(head -c 500 "$work/$name.err")"
    continue
  fi
  used=$(sed -n 's/^run_image: runtime //p' "$work/$name.err" | head -1)
  [ "$how" = auto ] && runtime=${runtime:-$used}
  if bash "$run_image" --layout "$work/a/$name" --name "$tag" --runtime "$how" \
      --entrypoint /bin/sh -- -c true >/dev/null 2>&1; then
    fail "$name: a shell ran in the image"
  fi
  if grep -q "not found" "$work/$name.ldd"; then
    fail "$name: libraries missing: $(grep "not found" "$work/$name.ldd" | tr '\n' ' ')"
  fi
  echo "$name: $(grep -c "=>" "$work/$name.ldd") libraries resolved inside the image ($used)"
  bash "$run_image" --cleanup --name "$tag" >/dev/null 2>&1 || true
done
echo "runtime: $runtime"
rm -rf "$work"

if [ "$failures" -gt 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "images: 4 built twice with equal digests, checked and run"
