"""A local Kubernetes API stand-in with a scheduler and a simulated kubelet.

**Not a production component.** It exists so the spawner's conversation with
Kubernetes (placement, volumes, deletion) can be tested, benchmarked and
demonstrated on one machine without Kubernetes. Real clients (``kubectl``,
``kubernetes_asyncio``, KubeSpawner) talk to it over HTTP as to an API server;
every object written is validated against the official Kubernetes OpenAPI
schema for the configured version.

Modules, one idea each:

* :mod:`.store` objects, resourceVersion, watch fan-out;
* :mod:`.registry` REST semantics (create/update/patch/delete, finalizers, grace);
* :mod:`.api` HTTP routes (:mod:`.selectors`, :mod:`.paging`, :mod:`.patch`,
  :mod:`.errors`, :mod:`.validation`, :mod:`.discovery`, :mod:`.tables`,
  :mod:`.protobuf` for the protobuf bodies kubectl's typed clients send);
* :mod:`.controller` the wake-and-reconcile loop the controllers share;
* :mod:`.scheduler` kube-scheduler-like filtering and scoring (:mod:`.affinity`
  node affinity, :mod:`.quantity` resource quantities: the stand-in's own readings
  of the Kubernetes rules, independent of the product's);
* :mod:`.rules` the API server's own field validation after the schema
  (:mod:`.podrules`, :mod:`.names`, :mod:`.fielderrors`; :mod:`.gotime` decodes
  MicroTimes as Go does);
* :mod:`.volumes` static PV/PVC binding; :mod:`.kubelet` noop and process runtimes;
  :mod:`.gc` garbage collection by ownerReferences; :mod:`.namespaces` namespace
  deletion (``Terminating``);
* :mod:`.metrics` the metrics.k8s.io API; :mod:`.rbac` optional authorization
  and impersonation; :mod:`.reviews` access reviews (``kubectl auth can-i``);
  :mod:`.faults` fault injection for tests;
* :mod:`.cluster` :class:`DevCluster` / :class:`ThreadedDevCluster`;
  ``devcluster serve`` (:mod:`.__main__`) the command line;
* :mod:`.testing` pytest fixtures (a plugin: ``pytest_plugins = ["devcluster.testing"]``).
"""

from __future__ import annotations

from .cluster import DevCluster, ThreadedDevCluster, node_object

__all__ = ["DevCluster", "ThreadedDevCluster", "node_object"]
