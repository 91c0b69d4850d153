"""Reaching the Kubernetes API: in-cluster or kubeconfig, and which namespace to use."""

from __future__ import annotations

import os
from pathlib import Path

from kubernetes_asyncio import client, config
from kubernetes_asyncio.config.config_exception import ConfigException

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
"""Where Kubernetes mounts a pod's service account token, CA certificate and namespace."""
POD_NAME_VARIABLE = "WOOL_POD_NAME"
"""Environment variable holding the pod's name (Downward API ``metadata.name``)."""
POD_NAMESPACE_VARIABLE = "WOOL_POD_NAMESPACE"
"""Environment variable holding the pod's namespace (Downward API ``metadata.namespace``)."""
POD_IP_VARIABLE = "WOOL_POD_IP"
"""Environment variable holding the pod's IP (Downward API ``status.podIP``); the example
manifests pass it to ``wool worker --advertise``."""


class KubernetesConfigError(RuntimeError):
    """No usable Kubernetes configuration (neither in a cluster nor a kubeconfig)."""


def kubeconfig_path(kubeconfig: str | None) -> str:
    """The kubeconfig file(s) to read: ``kubeconfig``, else ``KUBECONFIG`` as it is now
    (the client library reads it only once, when imported), else ``~/.kube/config``."""
    return kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")


def in_cluster() -> bool:
    """Whether this process runs in a pod with a mounted service account."""
    return (
        bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        and (SERVICE_ACCOUNT_DIR / "token").is_file()
    )


async def api_client(kubeconfig: str | None, context: str | None) -> client.ApiClient:
    """An API client: the kubeconfig when one is named (``kubeconfig`` or ``context``),
    else the pod's service account when in a cluster, else the default kubeconfig
    (``KUBECONFIG``, or ``~/.kube/config``). The caller closes it."""
    configuration = client.Configuration()
    try:
        if kubeconfig is None and context is None and in_cluster():
            config.load_incluster_config(
                client_configuration=configuration,
                token_filename=str(SERVICE_ACCOUNT_DIR / "token"),
                cert_filename=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
            )
        else:
            await config.load_kube_config(
                config_file=kubeconfig_path(kubeconfig),
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
    except (ConfigException, OSError) as exc:
        where = kubeconfig_path(kubeconfig)
        raise KubernetesConfigError(
            f"no usable Kubernetes configuration: not in a cluster (no service account "
            f"token in {SERVICE_ACCOUNT_DIR}) and the kubeconfig {where!r} does not work "
            f"({exc})"
        ) from None
    return client.ApiClient(configuration)


def resolve_namespace(
    kube_namespace: str | None, kubeconfig: str | None, context: str | None
) -> str:
    """The Kubernetes namespace to use: ``kube_namespace`` if given, else
    ``WOOL_POD_NAMESPACE``, else the service account's namespace in a cluster, else the
    namespace of the kubeconfig's context, else ``default``."""
    if kube_namespace:
        return kube_namespace
    from_environment = os.environ.get(POD_NAMESPACE_VARIABLE)
    if from_environment:
        return from_environment
    if kubeconfig is None and context is None and in_cluster():
        try:
            return (SERVICE_ACCOUNT_DIR / "namespace").read_text().strip() or "default"
        except OSError:
            return "default"
    try:
        contexts, current = config.list_kube_config_contexts(kubeconfig_path(kubeconfig))
    except (ConfigException, OSError):
        return "default"
    chosen = current
    if context is not None:
        chosen = next((c for c in contexts if c.get("name") == context), None)
    if chosen is None:
        return "default"
    return (chosen.get("context") or {}).get("namespace") or "default"


def pod_name(configured: str | None) -> str:
    """The name of the pod this process runs in; ``KubernetesConfigError`` when unknown."""
    name = configured or os.environ.get(POD_NAME_VARIABLE)
    if not name:
        raise KubernetesConfigError(
            f"the publisher needs the name of its pod: set {POD_NAME_VARIABLE} from the "
            "Downward API (env valueFrom fieldRef fieldPath metadata.name), or pass pod_name"
        )
    return name
