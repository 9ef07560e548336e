"""Names of the LeaderWorkerSet API, one place for all of them, as sigs.k8s.io/lws names them in
api/leaderworkerset/v1/leaderworkerset_types.go (labels, annotations, environment variables, policies).

The planner writes them and the policy pack reads them; neither spells one out itself.
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "leaderworkerset.x-k8s.io"
API_VERSION: Final = f"{GROUP}/v1"
KIND: Final = "LeaderWorkerSet"
CRD_NAME: Final = f"leaderworkersets.{GROUP}"
DISAGGREGATED_GROUP: Final = "disaggregatedset.x-k8s.io"

# Labels and annotations the controller sets or reads (prefix leaderworkerset.sigs.k8s.io).
_PREFIX = "leaderworkerset.sigs.k8s.io"
SET_NAME_LABEL: Final = f"{_PREFIX}/name"
GROUP_INDEX_LABEL: Final = f"{_PREFIX}/group-index"
WORKER_INDEX_LABEL: Final = f"{_PREFIX}/worker-index"
EXCLUSIVE_TOPOLOGY_ANNOTATION: Final = f"{_PREFIX}/exclusive-topology"
RECREATE_AFTER_START_ANNOTATION: Final = f"{_PREFIX}/experimental-recreate-group-after-start"

# Environment variables the controller injects into every container of a group.
LEADER_ADDRESS_ENV: Final = "LWS_LEADER_ADDRESS"
GROUP_SIZE_ENV: Final = "LWS_GROUP_SIZE"
WORKER_INDEX_ENV: Final = "LWS_WORKER_INDEX"

# spec.leaderWorkerTemplate.restartPolicy and spec.startupPolicy.
RECREATE_GROUP_ON_POD_RESTART: Final = "RecreateGroupOnPodRestart"
RECREATE_GROUP_AFTER_START: Final = "RecreateGroupAfterStart"
NO_RESTART_POLICY: Final = "None"
LEADER_CREATED: Final = "LeaderCreated"
LEADER_READY: Final = "LeaderReady"

# pulumi-kubernetes (>= 4.12): how the provider deletes an object, foreground by default.
DELETION_PROPAGATION_ANNOTATION: Final = "pulumi.com/deletionPropagationPolicy"
