"""The ``kubernetes`` platform (``platform.py``): the bundled Helm chart on a cluster, with its
options, run state, chart values, node faults (pod proxy, port-forward, Chaos Mesh) and load
generator, one module each."""

from orchestrator.platforms.kubernetes.options import KubernetesOptions
from orchestrator.platforms.kubernetes.platform import KubernetesPlatform

__all__ = ["KubernetesOptions", "KubernetesPlatform"]
