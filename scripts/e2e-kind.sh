#!/usr/bin/env bash
# The Kubernetes backend on a throw-away kind cluster: KubeRay's operator from its Helm chart, then
# `pytest -m k8s_e2e` (apply of the sample, its ./apps shipped to the cluster, in-place update,
# NewCluster upgrade, rollback, delete) while a load Job inside the cluster keeps asking the serve
# Service; prints "N passed, N failed" for the tests and for the Job's requests (counted from its
# first answer until the tests end, the service's deletion included). Needs docker, kind,
# kubectl and helm, the network to pull images, and a node with about 4 CPUs and 8 GiB free (two
# clusters of the sample during the upgrade); it never runs in CI (no cluster there).
#
#   scripts/e2e-kind.sh               # creates, tests and deletes the kind cluster "rayservice-e2e"
#   KEEP_CLUSTER=1 scripts/e2e-kind.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=${CLUSTER:-rayservice-e2e}
KUBERAY_VERSION=${KUBERAY_VERSION:-1.5.1}
for tool in docker kind kubectl helm; do
    command -v "$tool" >/dev/null || { echo "error: $tool is needed (see README: Kubernetes)"; exit 2; }
done
scripts/setup
workdir=$(mktemp -d)
export KUBECONFIG="$workdir/kubeconfig"
cleanup() {
    kubectl delete job rayservice-load --ignore-not-found >/dev/null 2>&1 || true
    if [ -z "${KEEP_CLUSTER:-}" ]; then kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; fi
    rm -rf "$workdir"
}
trap cleanup EXIT

echo "--- kind cluster $CLUSTER and KubeRay $KUBERAY_VERSION"
kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s
kind get kubeconfig --name "$CLUSTER" > "$KUBECONFIG"
helm repo add kuberay https://ray-project.github.io/kuberay-helm/ >/dev/null
helm repo update kuberay >/dev/null
helm upgrade --install kuberay-operator kuberay/kuberay-operator --version "$KUBERAY_VERSION" --wait
kubectl apply -f deploy/rbac.yaml

echo "--- a load Job asking the serve Service for as long as the tests run"
kubectl apply -f - <<'YAML'
apiVersion: batch/v1
kind: Job
metadata: {name: rayservice-load}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: load
          image: curlimages/curl:8.10.1
          command:
            - sh
            - -c
            - |
              ok=0; failed=0; end=$(( $(date +%s) + 3600 ))
              until [ -f /tmp/stop ] || [ "$(date +%s)" -ge "$end" ]; do
                if curl -sf -m 10 -X POST -H 'Content-Type: application/json' \
                    -d '["MANGO", 2]' http://rayservice-sample-serve-svc:8000/fruit >/dev/null; then
                  ok=$((ok + 1)); else
                  if [ "$ok" -gt 0 ]; then failed=$((failed + 1)); fi; fi
                echo "$ok passed, $failed failed" > /tmp/count; sleep 0.2
              done
YAML

echo "--- pytest -m k8s_e2e"
set +e
.venv/bin/pytest -p no:cacheprovider -m k8s_e2e tests/k8s_e2e -q 2>&1 | tee "$workdir/pytest.log"
status=${PIPESTATUS[0]}
set -e
load=$(kubectl exec job/rayservice-load -- cat /tmp/count 2>/dev/null || echo "0 passed, 0 failed")
summary=$(grep -Eo '[0-9]+ (passed|failed|errors?|skipped)' "$workdir/pytest.log" | tr '\n' ' ' || true)
echo "tests: ${summary:-0 passed, 0 failed}"
echo "requests during the tests (from the first answer on): $load"
exit "$status"
