"""KubernetesDiscovery: a publisher and subscriber over the Kubernetes API, together."""

from __future__ import annotations

import argparse
import os
from typing import Any

from wool_discovery_kubernetes._publisher import KubernetesPublisher
from wool_discovery_kubernetes._records import validate_pool
from wool_discovery_kubernetes._subscriber import KubernetesSubscriber

DEFAULT_NAMESPACE = "default"


class KubernetesDiscovery:
    """Discovery of workers through the Kubernetes API, with no operator or CRD.

    Worker pods publish their workers in an annotation on themselves; callers list and
    watch the pods labelled ``wool.dev/pool: <namespace>`` in one Kubernetes namespace.
    ``namespace`` is the pool's namespace (the label value, ``"default"`` by default);
    ``kube_namespace`` is the Kubernetes namespace (``None``: ``WOOL_POD_NAMESPACE``,
    else the service account's, else the kubeconfig context's, else ``default``).

    The API is reached with the pod's service account in a cluster, else through the
    kubeconfig (``kubeconfig`` names a file, ``context`` a context in it; ``None``: the
    ``KUBECONFIG`` variable, else ``~/.kube/config``). A publisher needs its pod's name:
    ``pod_name``, else ``WOOL_POD_NAME`` (Downward API). One namespaced Role with
    ``get``, ``list``, ``watch`` and ``patch`` on pods is all either side needs.
    """

    def __init__(
        self,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        kube_namespace: str | None = None,
        pod_name: str | None = None,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
    ) -> None:
        self._namespace = validate_pool(namespace)
        for label, value in (
            ("kube_namespace", kube_namespace),
            ("pod_name", pod_name),
            ("context", context),
        ):
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{label} must be a non-empty string or None, got {value!r}")
        self._kube_namespace = kube_namespace
        self._pod_name = pod_name
        self._kubeconfig = None if kubeconfig is None else os.fspath(kubeconfig)
        self._context = context
        self._publisher: KubernetesPublisher | None = None

    @classmethod
    def add_cli_options(cls, group: argparse._ArgumentGroup) -> None:
        """The flags of ``wool worker --discovery kubernetes``."""
        group.add_argument(
            "--kube-namespace",
            default=None,
            metavar="NS",
            help="Kubernetes namespace of the pods (default: $WOOL_POD_NAMESPACE, the "
            "service account's, or the kubeconfig context's)",
        )
        group.add_argument(
            "--pod-name",
            default=None,
            metavar="NAME",
            help="this pod's name (default: $WOOL_POD_NAME)",
        )
        group.add_argument(
            "--kubeconfig",
            default=None,
            metavar="FILE",
            help="kubeconfig file (default: in-cluster service account, else $KUBECONFIG "
            "or ~/.kube/config)",
        )
        group.add_argument(
            "--kube-context", default=None, metavar="NAME", help="context of the kubeconfig"
        )

    @classmethod
    def from_cli(cls, namespace: str, options: argparse.Namespace) -> KubernetesDiscovery:
        """The discovery ``wool worker --discovery kubernetes`` asks for."""
        return cls(
            namespace,
            kube_namespace=getattr(options, "kube_namespace", None),
            pod_name=getattr(options, "pod_name", None),
            kubeconfig=getattr(options, "kubeconfig", None),
            context=getattr(options, "kube_context", None),
        )

    @property
    def namespace(self) -> str:
        """The pool's namespace: the value of the ``wool.dev/pool`` label."""
        return self._namespace

    @property
    def kube_namespace(self) -> str | None:
        """The Kubernetes namespace as configured (``None``: resolved where used)."""
        return self._kube_namespace

    @property
    def publisher(self) -> KubernetesPublisher:
        """This discovery's publisher (the same object every time)."""
        if self._publisher is None:
            self._publisher = KubernetesPublisher(
                self._namespace,
                self._pod_name,
                self._kube_namespace,
                self._kubeconfig,
                self._context,
            )
        return self._publisher

    @property
    def subscriber(self) -> KubernetesSubscriber:
        """A subscriber to this pool's pods; picklable."""
        return KubernetesSubscriber(
            self._namespace, self._kube_namespace, self._kubeconfig, self._context
        )

    def __getstate__(self) -> dict[str, Any]:
        return {
            "namespace": self._namespace,
            "kube_namespace": self._kube_namespace,
            "pod_name": self._pod_name,
            "kubeconfig": self._kubeconfig,
            "context": self._context,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["namespace"],
            kube_namespace=state["kube_namespace"],
            pod_name=state["pod_name"],
            kubeconfig=state["kubeconfig"],
            context=state["context"],
        )

    def __repr__(self) -> str:
        return (
            f"KubernetesDiscovery({self._namespace!r}, kube_namespace={self._kube_namespace!r}, "
            f"kubeconfig={self._kubeconfig!r}, context={self._context!r})"
        )
