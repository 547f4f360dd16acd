"""The names lsst-hub writes into Kubernetes and reads back, in one place.

Labels and annotations on pods and volumes, the prefixes of the objects made per
person, and the default name of a hub. Several are read by other programs (the
orphan-pod service, the admin's ``kubectl``, Zero to JupyterHub's chart), so each
is a contract: changing one leaves the objects already made with the old value
(the orphan service would no longer know a running server's pod, a person's
home volume would be made again under a new name).

Also :data:`Obj`, the one shape in which the spawner and the placement code
handle Kubernetes objects.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "COMPONENT",
    "COMPONENT_LABEL",
    "DEFAULT_HUB_INSTANCE",
    "HOME_PVC_PREFIX",
    "HOME_PV_PREFIX",
    "HOSTNAME_LABEL",
    "INSTANCE_LABEL",
    "MANAGED_BY",
    "PASSWD_CONFIGMAP_PREFIX",
    "SERVERNAME_KEY",
    "USERNAME_KEY",
    "USER_ID_ANNOTATION",
    "Z2JH_METADATA_BLOCKER",
    "Obj",
]

#: A Kubernetes object as the API's JSON: a dict with camelCase keys.
Obj = dict[str, Any]

# -- labels and annotations -------------------------------------------------------
#: The label naming the hub (``LSSTSpawner.hub_instance``) that started a pod.
INSTANCE_LABEL = "lsst-hub/instance"
#: The annotation holding the JupyterHub user id of a pod's owner: unlike the
#: username, it stays when the user is renamed.
USER_ID_ANNOTATION = "lsst-hub/user-id"
#: KubeSpawner's label (escaped name) and annotation (raw name) of the pod's user.
USERNAME_KEY = "hub.jupyter.org/username"
#: KubeSpawner's annotation with the server's name ("" for the default server).
SERVERNAME_KEY = "hub.jupyter.org/servername"
#: KubeSpawner's label marking notebook pods, and its value.
COMPONENT_LABEL = "component"
COMPONENT = "singleuser-server"
#: The labels on the home volumes, claims and passwd ConfigMaps the spawner makes.
MANAGED_BY = {"app.kubernetes.io/managed-by": "lsst-hub"}
#: The node label a pod is pinned to its chosen node with.
HOSTNAME_LABEL = "kubernetes.io/hostname"

# -- object names -----------------------------------------------------------------
#: PersistentVolume ``gpfs-home-<user>`` (``per-user-pv`` mode).
HOME_PV_PREFIX = "gpfs-home-"
#: PersistentVolumeClaim ``home-<user>`` bound to it.
HOME_PVC_PREFIX = "home-"
#: ConfigMap ``passwd-<user>`` (``synthesize_passwd``).
PASSWD_CONFIGMAP_PREFIX = "passwd-"  # noqa: S105 (a name, not a password)

# -- defaults ---------------------------------------------------------------------
#: A hub's name (``hub_instance``) when its API URL is unknown; otherwise this,
#: a dash and a hash of the URL (:func:`lsst_hub.spawner.reconcile.default_instance`).
DEFAULT_HUB_INSTANCE = "jupyterhub"
#: Zero to JupyterHub's name for the init container of
#: ``singleuser.cloudMetadata.blockWithIptables``.
Z2JH_METADATA_BLOCKER = "block-cloud-metadata"
