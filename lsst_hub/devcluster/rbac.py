"""Optional RBAC authorization against the Roles and bindings stored in the cluster.

Authentication is by bearer token. The cluster's admin token (written into the
kubeconfig) is user ``admin`` in group ``system:masters`` and may do anything.
ServiceAccount tokens come from the real TokenRequest API
(``POST /api/v1/namespaces/NS/serviceaccounts/NAME/token``, what
``kubectl create token NAME`` calls) or from :meth:`Authorizer.issue`; their
user is ``system:serviceaccount:NS:NAME`` with the groups
``system:serviceaccounts``, ``system:serviceaccounts:NS`` and
``system:authenticated``. A request without a token is ``system:anonymous``;
an unknown token gets 401 Unauthorized.

Rules are matched as the RBAC authorizer matches them: ClusterRoleBindings
grant everywhere, RoleBindings in their namespace (to a Role or a ClusterRole);
a rule allows a request when its apiGroups, resources (``pods``,
``pods/status``, ``*``), verbs and (if given) resourceNames all match.
Discovery paths are open to every authenticated user, as ``system:discovery``
grants.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from . import resources as res
from .registry import Registry, require
from .store import Obj

__all__ = ["ADMIN_GROUP", "Authorizer", "User"]

ADMIN_GROUP = "system:masters"
ROLES = require(res.find("rbac.authorization.k8s.io", "v1", "roles"))
ROLE_BINDINGS = require(res.find("rbac.authorization.k8s.io", "v1", "rolebindings"))
CLUSTER_ROLES = require(res.find("rbac.authorization.k8s.io", "v1", "clusterroles"))
CLUSTER_ROLE_BINDINGS = require(res.find("rbac.authorization.k8s.io", "v1", "clusterrolebindings"))


@dataclass(frozen=True)
class User:
    """An authenticated (or anonymous) user."""

    name: str
    groups: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        """Whether the user is in ``system:masters``."""
        return ADMIN_GROUP in self.groups


ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))


def service_account_user(namespace: str, name: str) -> User:
    """The user a ServiceAccount token authenticates as."""
    return User(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
    )


def _rule_allows(rule: Obj, verb: str, group: str, resource: str, name: str | None) -> bool:
    groups = rule.get("apiGroups") or []
    if "*" not in groups and group not in groups:
        return False
    verbs = rule.get("verbs") or []
    if "*" not in verbs and verb not in verbs:
        return False
    resources = rule.get("resources") or []
    sub = resource.split("/", 1)[1] if "/" in resource else None
    if not (
        "*" in resources or resource in resources or (sub is not None and f"*/{sub}" in resources)
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or (name is not None and name in names)


class Authorizer:
    """Token authentication and RBAC checks; see the module docstring.

    Parameters
    ----------
    registry
        Where the Roles and bindings live.
    admin_token
        The all-powerful token.
    """

    def __init__(self, registry: Registry, admin_token: str) -> None:
        self.registry = registry
        self.tokens: dict[str, User] = {
            admin_token: User("admin", (ADMIN_GROUP, "system:authenticated"))
        }

    def issue(self, namespace: str, service_account: str) -> str:
        """Mint a token for ``system:serviceaccount:NAMESPACE:NAME``."""
        token = secrets.token_urlsafe(24)
        self.tokens[token] = service_account_user(namespace, service_account)
        return token

    def add_token(self, token: str, user: str, groups: tuple[str, ...] = ()) -> None:
        """Map a fixed token to a user (``system:serviceaccount:NS:NAME`` gets SA groups)."""
        parts = user.split(":")
        if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
            self.tokens[token] = service_account_user(parts[2], parts[3])
        else:
            self.tokens[token] = User(user, (*groups, "system:authenticated"))

    def authenticate(self, authorization: str | None) -> User | None:
        """The user of an ``Authorization`` header; None for an unknown token."""
        if not authorization:
            return ANONYMOUS
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.tokens.get(token.strip())

    def _subject_matches(self, subject: Obj, user: User, binding_ns: str) -> bool:
        kind = subject.get("kind")
        if kind == "ServiceAccount":
            ns = subject.get("namespace") or binding_ns
            return user.name == f"system:serviceaccount:{ns}:{subject.get('name')}"
        if kind == "User":
            return user.name == subject.get("name")
        if kind == "Group":
            return subject.get("name") in user.groups
        return False

    def _rules(self, ref: Obj, namespace: str) -> list[Obj]:
        store = self.registry.store
        if ref.get("kind") == "ClusterRole":
            role = store.get(CLUSTER_ROLES, "", ref.get("name", ""))
        else:
            role = store.get(ROLES, namespace, ref.get("name", ""))
        return list((role or {}).get("rules") or [])

    def allowed(
        self,
        user: User,
        verb: str,
        group: str,
        resource: str,
        namespace: str | None,
        name: str | None,
    ) -> bool:
        """Whether ``user`` may ``verb`` the ``resource`` (``plural[/subresource]``)."""
        if user.is_admin:
            return True
        store = self.registry.store
        for binding in store.objects(CLUSTER_ROLE_BINDINGS):
            if any(
                self._subject_matches(s, user, "") for s in binding.get("subjects") or []
            ) and any(
                _rule_allows(r, verb, group, resource, name)
                for r in self._rules(binding.get("roleRef") or {}, "")
            ):
                return True
        if namespace:
            for binding in store.objects(ROLE_BINDINGS, namespace):
                if any(
                    self._subject_matches(s, user, namespace) for s in binding.get("subjects") or []
                ) and any(
                    _rule_allows(r, verb, group, resource, name)
                    for r in self._rules(binding.get("roleRef") or {}, namespace)
                ):
                    return True
        return False
