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
grants, and every authenticated user may create SelfSubjectAccessReviews, as
``system:basic-user`` grants (:data:`BASIC_USER_RULES`). :meth:`Authorizer.decide`
also gives the reason an allowed request is allowed, worded as the RBAC
authorizer words it (``RBAC: allowed by RoleBinding "b/ns" of Role "r" to
ServiceAccount "sa/ns"``); access reviews report it.

Impersonation (``Impersonate-User``, ``Impersonate-Group``, ``Impersonate-Uid``
and ``Impersonate-Extra-KEY`` headers, what ``kubectl --as``/``--as-group``
send) is parsed by :func:`impersonation`: the requester needs the verb
``impersonate`` on each thing asked for (``users``, ``serviceaccounts`` for a
``system:serviceaccount:NS:NAME`` name, ``groups``, and ``uids`` and
``userextras`` in ``authentication.k8s.io``), and the request then acts as the
impersonated user in every respect. Only the name and groups are carried: uids
and extras are checked, then dropped, as RBAC never reads them.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from . import resources as res
from .errors import ApiError
from .registry import Registry, require
from .store import Obj

__all__ = [
    "ADMIN_GROUP",
    "AUTHENTICATED",
    "BASIC_USER_RULES",
    "Authorizer",
    "Decision",
    "Impersonation",
    "Target",
    "User",
    "impersonated_user",
    "impersonation",
    "service_account_user",
]

ADMIN_GROUP = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
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


@dataclass(frozen=True)
class Decision:
    """An authorization answer and, when allowed by a binding, which one."""

    allowed: bool
    reason: str = ""


ANONYMOUS = User("system:anonymous", (UNAUTHENTICATED,))

# The bootstrap ClusterRole system:basic-user, bound to system:authenticated in
# every real cluster: without it ``kubectl auth can-i`` could not ask anything.
BASIC_USER_RULES: tuple[Obj, ...] = (
    {
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
        "verbs": ["create"],
    },
    {
        "apiGroups": ["authentication.k8s.io"],
        "resources": ["selfsubjectreviews"],
        "verbs": ["create"],
    },
)
_BASIC_USER_REASON = (
    'RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole '
    f'"system:basic-user" to Group "{AUTHENTICATED}"'
)


def service_account_user(namespace: str, name: str) -> User:
    """The user a ServiceAccount token authenticates as."""
    return User(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
    )


def _service_account(user: str) -> tuple[str, str] | None:
    """``(namespace, name)`` of a ``system:serviceaccount:NS:NAME`` user name, else None."""
    parts = user.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"] and parts[2] and parts[3]:
        return parts[2], parts[3]
    return None


@dataclass(frozen=True)
class Target:
    """One thing a request asks to impersonate: the object of an ``impersonate`` check."""

    group: str
    resource: str
    name: str
    namespace: str | None = None
    subresource: str = ""


@dataclass(frozen=True)
class Impersonation:
    """What ``Impersonate-*`` headers ask for.

    Parameters
    ----------
    user
        Who the request acts as once every check passes.
    targets
        What the requester needs the verb ``impersonate`` on, in the order the
        API server checks them (the user first).
    """

    user: User
    targets: tuple[Target, ...]


def impersonated_user(name: str, groups: Sequence[str] = ()) -> User:
    """The identity an impersonated request gets, as the API server builds it.

    A ServiceAccount name without groups gets the ServiceAccount groups; any
    other user gets ``system:authenticated`` added (``system:unauthenticated``
    for ``system:anonymous``) unless the groups already say which it is.
    """
    account = _service_account(name)
    if account is not None and not groups:
        return service_account_user(*account)
    if name == ANONYMOUS.name:
        implicit, present = UNAUTHENTICATED, UNAUTHENTICATED in groups
    else:
        implicit = AUTHENTICATED
        present = AUTHENTICATED in groups or UNAUTHENTICATED in groups
    return User(name, tuple(groups) if present else (*groups, implicit))


def _user_target(name: str) -> Target:
    account = _service_account(name)
    if account is not None:
        return Target("", "serviceaccounts", account[1], account[0])
    return Target("", "users", name)


def impersonation(
    user: str | None,
    groups: Sequence[str] = (),
    uid: str | None = None,
    extras: Sequence[tuple[str, str]] = (),
) -> Impersonation | None:
    """Parse the ``Impersonate-*`` headers; None when the request impersonates nobody.

    Parameters
    ----------
    user, groups, uid
        ``Impersonate-User``, every ``Impersonate-Group``, ``Impersonate-Uid``.
    extras
        ``(key, value)`` for each ``Impersonate-Extra-KEY`` value.

    Raises
    ------
    ApiError
        500 for groups, uid or extras without a user: the API server answers
        that with an internal error too.
    """
    if not user:
        if groups or uid or extras:
            raise ApiError(
                500,
                "InternalError",
                "Internal error: requested impersonation of groups, uid or extras "
                "without impersonating a user",
            )
        return None
    targets = [_user_target(user), *(Target("", "groups", g) for g in groups)]
    targets += [Target("authentication.k8s.io", "userextras", v, None, k) for k, v in extras]
    if uid:
        targets.append(Target("authentication.k8s.io", "uids", uid))
    return Impersonation(impersonated_user(user, groups), tuple(targets))


def _describe_subject(subject: Obj, binding_ns: str) -> str:
    """A binding subject as the RBAC authorizer's reasons name it."""
    name = subject.get("name", "")
    if subject.get("kind") == "ServiceAccount":
        name = f"{name}/{subject.get('namespace') or binding_ns}"
    return f'{subject.get("kind")} "{name}"'


def _describe_binding(binding: Obj, subject: Obj, namespace: str) -> str:
    ref = binding.get("roleRef") or {}
    name = binding.get("metadata", {}).get("name", "")
    kind, shown = (
        ("RoleBinding", f"{name}/{namespace}") if namespace else ("ClusterRoleBinding", name)
    )
    return (
        f'{kind} "{shown}" of {ref.get("kind")} "{ref.get("name")}" to '
        f"{_describe_subject(subject, namespace)}"
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
        self.tokens: dict[str, User] = {admin_token: User("admin", (ADMIN_GROUP, AUTHENTICATED))}

    def issue(self, namespace: str, service_account: str) -> str:
        """Mint a token for ``system:serviceaccount:NAMESPACE:NAME``."""
        token = secrets.token_urlsafe(24)
        self.tokens[token] = service_account_user(namespace, service_account)
        return token

    def add_token(self, token: str, user: str, groups: tuple[str, ...] = ()) -> None:
        """Map a fixed token to a user (``system:serviceaccount:NS:NAME`` gets SA groups)."""
        account = _service_account(user)
        if account is not None:
            self.tokens[token] = service_account_user(*account)
        else:
            self.tokens[token] = User(user, (*groups, AUTHENTICATED))

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

    def _grant(
        self,
        binding: Obj,
        user: User,
        namespace: str,
        request: tuple[str, str, str, str | None],
    ) -> str | None:
        """The reason ``binding`` allows ``(verb, group, resource, name)`` to ``user``, or None."""
        subject = next(
            (s for s in binding.get("subjects") or [] if self._subject_matches(s, user, namespace)),
            None,
        )
        if subject is None:
            return None
        if not any(
            _rule_allows(r, *request) for r in self._rules(binding.get("roleRef") or {}, namespace)
        ):
            return None
        return f"RBAC: allowed by {_describe_binding(binding, subject, namespace)}"

    def decide(
        self,
        user: User,
        verb: str,
        group: str,
        resource: str,
        namespace: str | None,
        name: str | None,
    ) -> Decision:
        """Whether ``user`` may ``verb`` the ``resource`` (``plural[/subresource]``), and why.

        A cluster-scope request (no ``namespace``) is granted by ClusterRoleBindings
        only, as in the RBAC authorizer. A denial carries no reason, as RBAC's does not.
        """
        if user.is_admin:
            return Decision(True)  # the system:masters short cut gives no reason either
        request = (verb, group, resource, name)
        if AUTHENTICATED in user.groups and any(
            _rule_allows(r, *request) for r in BASIC_USER_RULES
        ):
            return Decision(True, _BASIC_USER_REASON)
        store = self.registry.store
        for binding in store.objects(CLUSTER_ROLE_BINDINGS):
            reason = self._grant(binding, user, "", request)
            if reason is not None:
                return Decision(True, reason)
        for binding in store.objects(ROLE_BINDINGS, namespace) if namespace else ():
            reason = self._grant(binding, user, namespace or "", request)
            if reason is not None:
                return Decision(True, reason)
        return Decision(False)

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
        return self.decide(user, verb, group, resource, namespace, name).allowed
