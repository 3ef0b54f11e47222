#!/usr/bin/env bash
# Deploy checks: every kustomize overlay renders, and checkov passes on the rendered manifests and
# on the Dockerfile. It installs what it needs only when missing, so a second run is quick:
#   - a kustomize renderer: kubectl or kustomize from PATH, else Debian's kubernetes-client (apt);
#     its kubectl 1.20 embeds kustomize v2.0.3, which deploy/ is written to stay within.
#   - checkov, pinned, in a venv of its own ($BREAKGLASS_CHECKOV_VENV, default
#     ~/.cache/breakglass-checkov): its many exact pins would fight the project's .venv.
# Checks that are skipped are skipped in the manifests themselves, next to the reason
# (checkov.io/skipN annotations, `# checkov:skip=` in the Dockerfile); none are skipped here.
#
#   bash .ci/deploy-checks.sh            install if needed, render, run checkov
#   bash .ci/deploy-checks.sh --install  install if needed, nothing else (before pytest tests/deploy)
set -euo pipefail

CHECKOV_VERSION="3.3.30"
CHECKOV_VENV="${BREAKGLASS_CHECKOV_VENV:-${HOME:-/root}/.cache/breakglass-checkov}"
PYTHON="${PYTHON:-python3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf 'deploy-checks: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "needs root to run: $*"
        return 1
    fi
}

RENDER=()
ensure_renderer() {
    if command -v kubectl >/dev/null 2>&1; then
        RENDER=(kubectl kustomize)
    elif command -v kustomize >/dev/null 2>&1; then
        RENDER=(kustomize build)
    else
        log "no kubectl or kustomize on PATH: installing Debian's kubernetes-client"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            kubernetes-client >/dev/null
        if ! command -v kubectl >/dev/null 2>&1; then
            log "kubernetes-client installed no kubectl; install kubectl or kustomize by hand"
            exit 1
        fi
        RENDER=(kubectl kustomize)
    fi
    log "renderer: ${RENDER[*]} ($(command -v "${RENDER[0]}"))"
}

installed_checkov_version() {
    "$CHECKOV_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null || true
}

ensure_checkov() {
    if [ -x "$CHECKOV_VENV/bin/checkov" ] && [ "$(installed_checkov_version)" = "$CHECKOV_VERSION" ]; then
        return
    fi
    log "installing checkov $CHECKOV_VERSION into $CHECKOV_VENV (first run takes a minute or two)"
    rm -rf "$CHECKOV_VENV"
    mkdir -p "$(dirname "$CHECKOV_VENV")"
    "$PYTHON" -m venv "$CHECKOV_VENV"
    "$CHECKOV_VENV/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir \
        "checkov==$CHECKOV_VERSION"
    [ "$(installed_checkov_version)" = "$CHECKOV_VERSION" ] || { log "checkov install failed"; exit 1; }
}

render_overlays() {
    local out="$1" overlay name
    for overlay in "$ROOT"/deploy/overlays/*/; do
        name="$(basename "$overlay")"
        mkdir -p "$out/$name"
        if ! "${RENDER[@]}" "$overlay" >"$out/$name/rendered.yaml" 2>"$out/$name.stderr"; then
            cat "$out/$name.stderr" >&2
            log "overlay $name does not render"
            exit 1
        fi
        # Newer kustomize warns about the v2.0.3-compatible fields deploy/ uses on purpose.
        grep -v -e "Warning: 'bases' is deprecated" -e "Warning: 'patchesStrategicMerge' is deprecated" \
            "$out/$name.stderr" >&2 || true
        log "rendered $name: $(grep -c '^kind:' "$out/$name/rendered.yaml") objects"
    done
}

main() {
    ensure_renderer
    ensure_checkov
    if [ "${1:-}" = "--install" ]; then
        return
    fi

    local work
    work="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand now: $work is local
    trap "rm -rf '$work'" EXIT
    render_overlays "$work/rendered"

    # --skip-download: no network beyond package registries here, and nothing to fetch anyway.
    export CKV_SKIP_PACKAGE_UPDATE_CHECK=true
    local checkov=("$CHECKOV_VENV/bin/checkov" --skip-download --compact --quiet)
    log "checkov: rendered overlays"
    "${checkov[@]}" --framework kubernetes --directory "$work/rendered"
    log "checkov: Dockerfile"
    "${checkov[@]}" --framework dockerfile --file "$ROOT/Dockerfile"
    log "ok"
}

main "$@"
