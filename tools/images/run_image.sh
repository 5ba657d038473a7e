#!/usr/bin/env bash
# Runs a service's image (an OCI layout from build_image.py) here, the way a cluster would: as
# UID 65532, read-only root, no capabilities, no new privileges (ADR 0022 §3).
#
#   run_image.sh --layout DIR --name polder-node [--bind DIR...] [--entrypoint PATH]
#                [--runtime auto|podman|chroot] -- ARGS...
#   run_image.sh --cleanup --name polder-node
#
# Runtime: podman + runc (cgroupfs, vfs storage, empty default ulimits, host network) with its
# storage under /tmp/polder-podman-<name>; if podman cannot run here, the layer unpacked and the
# entrypoint run under unshare + chroot --userspec=65532:65532 with the root bind-mounted
# read-only. The first line on stderr names the runtime ("run_image: runtime podman ...").
# Each --bind folder is mounted read-write at the same path. The image's entrypoint (or
# --entrypoint, a path inside the image) gets ARGS. --runtime chroot skips podman (the fallback,
# tested on purpose); podman refuses to fall back.
# Replaces itself with the runtime (exec), so a signal to this process reaches it; a podman
# container outlives a killed client: --cleanup removes it and the storage.
set -euo pipefail

layout="" name="" cleanup=0 binds=() entry="" runtime=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --layout) layout=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --bind) binds+=("$2"); shift 2 ;;
    --entrypoint) entry=$2; shift 2 ;;
    --runtime) runtime=$2; shift 2 ;;
    --cleanup) cleanup=1; shift ;;
    --) shift; break ;;
    *) echo "run_image: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ "$name" =~ ^[a-z0-9][a-z0-9-]*$ ]] || { echo "run_image: --name must be lowercase" >&2; exit 2; }
case "$runtime" in auto | podman | chroot) ;; *) echo "run_image: --runtime auto|podman|chroot" >&2; exit 2 ;; esac

# podman's run root must be a short path (at most 50 characters), and it names an image after
# its layout's path (lower case only).
pm=/tmp/polder-podman-$name
podman=(podman --root "$pm/storage" --runroot "$pm/run" --cgroup-manager=cgroupfs
  --storage-driver=vfs --runtime runc)
export CONTAINERS_CONF="$pm/containers.conf"

if [ "$cleanup" -eq 1 ]; then
  if [ -d "$pm" ]; then
    "${podman[@]}" rm -f -t 0 "$name" >/dev/null 2>&1 || true
    "${podman[@]}" rmi -af >/dev/null 2>&1 || true
    # vfs layers may hold read-only folders: make them removable first.
    chmod -R u+w "$pm" 2>/dev/null || true
    rm -rf "$pm"
  fi
  exit 0
fi
[ -f "$layout/index.json" ] || { echo "run_image: $layout is not an OCI layout" >&2; exit 2; }

mkdir -p "$pm"
printf '[containers]\ndefault_ulimits = []\n' > "$CONTAINERS_CONF"
ln -sfn "$(cd "$layout" && pwd)" "$pm/image"
if [ "$runtime" != chroot ] && image=$("${podman[@]}" pull -q "oci:$pm/image:dev" 2>"$pm/pull.err"); then
  echo "run_image: runtime $(podman --version), $(runc --version | head -1)" >&2
  mounts=()
  for b in "${binds[@]}"; do mounts+=(-v "$b:$b"); done
  [ -z "$entry" ] || mounts+=(--entrypoint "$entry")
  "${podman[@]}" rm -f -t 0 "$name" >/dev/null 2>&1 || true
  exec "${podman[@]}" run --rm --name "$name" --network=host --read-only --cap-drop=ALL \
    --security-opt=no-new-privileges --user 65532:65532 "${mounts[@]}" "$image" "$@"
fi
if [ "$runtime" = podman ]; then
  echo "run_image: podman cannot run here: $(head -c 300 "$pm/pull.err")" >&2
  exit 1
fi
if [ "$runtime" = chroot ]; then
  echo "run_image: runtime unshare + chroot (chosen with --runtime chroot)" >&2
else
  echo "run_image: runtime unshare + chroot (podman cannot run here: $(head -c 300 "$pm/pull.err"))" >&2
fi
root="$pm/rootfs"
if [ ! -e "$root/.unpacked" ]; then
  rm -rf "$root"
  mkdir -p "$root"
  layer=$(python3 -c 'import json,sys
d=sys.argv[1]
m=json.load(open(d+"/blobs/"+json.load(open(d+"/index.json"))["manifests"][0]["digest"].replace(":","/")))
print(d+"/blobs/"+m["layers"][0]["digest"].replace(":","/"))' "$layout")
  tar -xzf "$layer" -C "$root"
  touch "$root/.unpacked"
fi
entrypoint=$(python3 -c 'import json,sys
d=sys.argv[1]
m=json.load(open(d+"/blobs/"+json.load(open(d+"/index.json"))["manifests"][0]["digest"].replace(":","/")))
c=json.load(open(d+"/blobs/"+m["config"]["digest"].replace(":","/")))
print(c["config"]["Entrypoint"][0])' "$layout")
[ -z "$entry" ] || entrypoint=$entry
script="mount --bind '$root' '$root'"
for b in "${binds[@]}"; do
  mkdir -p "$root$b"
  script+=" && mount --bind '$b' '$root$b'"
done
script+=" && mount -o remount,bind,ro '$root' && exec chroot --userspec=65532:65532 '$root' '$entrypoint' \"\$@\""
exec unshare --mount --pid --fork --kill-child bash -c "$script" run_image "$@"
