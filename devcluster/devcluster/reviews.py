"""Access reviews: ``authorization.k8s.io/v1`` SelfSubjectAccessReview and SubjectAccessReview.

What ``kubectl auth can-i`` asks. As on a real API server, a review is only
created, never stored: the answer (HTTP 201) is the request body with
``status: {allowed, reason}`` filled in. The body is first checked like any
other write (kind, OpenAPI schema: :meth:`.Registry.admit`), then as the API
server's validation checks a review (exactly one of ``resourceAttributes`` and
``nonResourceAttributes``; a SubjectAccessReview names a user or a group).

``spec.resourceAttributes`` (``namespace``, ``verb``, ``group``, ``resource``,
``subresource``, ``name``) are checked with :meth:`.Authorizer.decide`, the
same RBAC check as every request; an empty namespace means the cluster scope
(all namespaces), where only ClusterRoleBindings grant. ``version`` and the
field and label selectors are ignored, as RBAC ignores them.
``spec.nonResourceAttributes`` (a path such as ``/healthz``) are allowed for
``system:masters`` only: the dev cluster keeps no non-resource RBAC rules.

A SelfSubjectAccessReview asks about the requesting user (the impersonated one
under ``--as``); a SubjectAccessReview about ``spec.user`` and ``spec.groups``,
exactly as given (no ``system:authenticated`` is added). With RBAC enforcement
off every request is allowed, and the reason says so.
"""

from __future__ import annotations

from typing import Any

from . import resources as res
from .errors import invalid
from .rbac import Authorizer, Decision, User
from .registry import require
from .store import Obj

__all__ = [
    "RBAC_OFF_REASON",
    "SELF_SUBJECT_ACCESS_REVIEWS",
    "SUBJECT_ACCESS_REVIEWS",
    "answer",
]

SELF_SUBJECT_ACCESS_REVIEWS = require(
    res.find("authorization.k8s.io", "v1", "selfsubjectaccessreviews")
)
SUBJECT_ACCESS_REVIEWS = require(res.find("authorization.k8s.io", "v1", "subjectaccessreviews"))
RBAC_OFF_REASON = "devcluster: RBAC enforcement is off, every request is allowed"


def _spec_causes(resource: res.ResourceType, spec: Obj) -> list[tuple[str, str]]:
    """The API server's own checks of a review's spec, as ``(field, message)``."""
    causes = []
    has_resource = spec.get("resourceAttributes") is not None
    has_non_resource = spec.get("nonResourceAttributes") is not None
    if has_resource and has_non_resource:
        causes.append(
            (
                "spec.nonResourceAttributes",
                "Invalid value: cannot be specified in combination with resourceAttributes",
            )
        )
    if not has_resource and not has_non_resource:
        causes.append(
            (
                "spec.resourceAttributes",
                'Invalid value: "null": exactly one of nonResourceAttributes or '
                "resourceAttributes must be specified",
            )
        )
    if resource is SUBJECT_ACCESS_REVIEWS and not spec.get("user") and not spec.get("groups"):
        causes.append(
            ("spec.user", 'Invalid value: "": at least one of user or group must be specified')
        )
    return causes


def _subject(resource: res.ResourceType, spec: Obj, requester: User) -> User:
    """Who the review asks about."""
    if resource is SELF_SUBJECT_ACCESS_REVIEWS:
        return requester
    return User(str(spec.get("user") or ""), tuple(spec.get("groups") or ()))


def _decide(user: User, spec: Obj, authorizer: Authorizer) -> Decision:
    attributes = spec.get("resourceAttributes")
    if attributes is None:
        # No non-resource rules are kept: only the system:masters short cut applies.
        return Decision(user.is_admin)
    resource = str(attributes.get("resource") or "")
    if attributes.get("subresource"):
        resource += f"/{attributes['subresource']}"
    return authorizer.decide(
        user,
        str(attributes.get("verb") or ""),
        str(attributes.get("group") or ""),
        resource,
        attributes.get("namespace") or None,
        attributes.get("name") or None,
    )


def answer(
    resource: res.ResourceType,
    review: Obj,
    requester: User,
    authorizer: Authorizer,
    enforced: bool,
) -> Obj:
    """The created review: ``review`` with its ``status`` filled in.

    Parameters
    ----------
    resource
        :data:`SELF_SUBJECT_ACCESS_REVIEWS` or :data:`SUBJECT_ACCESS_REVIEWS`.
    review
        The request body, already checked against the schema.
    requester
        The user making the request (after impersonation).
    authorizer
        The RBAC rules to evaluate.
    enforced
        Whether the cluster enforces RBAC; if not, everything is allowed.

    Raises
    ------
    ApiError
        422 Invalid for a spec the API server would refuse.
    """
    spec: Any = review.get("spec") or {}
    causes = _spec_causes(resource, spec)
    if causes:
        raise invalid(resource.kind, "", causes, resource.group)
    if enforced:
        decision = _decide(_subject(resource, spec, requester), spec, authorizer)
    else:
        decision = Decision(True, RBAC_OFF_REASON)
    status: Obj = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    review["status"] = status
    return review
