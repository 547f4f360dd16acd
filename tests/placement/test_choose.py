"""The placement rules, case by case: the product's choose_node and the oracle.

Every case runs twice: on :func:`lsst_hub.placement.choose_node` (which builds
:class:`~lsst_hub.placement.totals.ClusterTotals` from the lists) and on the
loop-by-loop oracle in tests/placement/oracle.py.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any, Protocol

import pytest

from lsst_hub.placement import NodeUsage, Placement, choose_node
from lsst_hub.placement.model import pod_request

from .objects import container, node, pod
from .oracle import oracle_choose

pytestmark = pytest.mark.line_independent

GiB = 1 << 30
NOSCHED = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


class Choose(Protocol):
    def __call__(
        self, nodes: list[dict[str, Any]], pods: list[dict[str, Any]] = ..., **kw: Any
    ) -> Placement: ...


@pytest.fixture(params=[choose_node, oracle_choose], ids=["choose_node", "oracle"])
def choose_fn(request: pytest.FixtureRequest) -> Callable[..., Placement]:
    """The implementation under test, called as ``choose_node`` is."""
    fn: Callable[..., Placement] = request.param
    return fn


@pytest.fixture
def choose(choose_fn: Callable[..., Placement]) -> Choose:
    """``choose_fn`` with a 1 CPU / 1 GiB request unless the case says otherwise."""

    def call(nodes: list[dict[str, Any]], pods: list[dict[str, Any]] = [], **kw: Any) -> Placement:  # noqa: B006
        cpu = kw.pop("cpu", 1)
        memory = kw.pop("memory", GiB)
        return choose_fn(nodes, list(pods), cpu, memory, **kw)

    return call


def test_one_implementation_in_the_product() -> None:
    # choose_node is ClusterTotals asked once; the loop-by-loop rules live in tests/ only.
    assert importlib.util.find_spec("lsst_hub.placement.choose") is None
    assert choose_node.__module__ == "lsst_hub.placement.totals"


def _e(key: str, operator: str, *values: str) -> dict[str, Any]:
    expression: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        expression["values"] = list(values)
    return expression


def _expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    """A nodeSelectorTerm with one label expression."""
    return {"matchExpressions": [_e(key, operator, *values)]}


# (case id, nodes, pods, keyword arguments, expected node)
CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]], dict[str, Any], str | None]] = [
    ("empty node wins", [node("a"), node("b")], [pod("p", "a")], {}, "b"),
    ("not ready is skipped", [node("a", ready=False), node("b")], [pod("p", "b")], {}, "b"),
    (
        "no Ready condition is not ready",
        [node("a", ready=None), node("b")],
        [pod("p", "b")],
        {},
        "b",
    ),
    ("cordoned is skipped", [node("a", unschedulable=True), node("b")], [pod("p", "b")], {}, "b"),
    ("untolerated taint", [node("a", taints=[NOSCHED]), node("b")], [pod("p", "b")], {}, "b"),
    (
        "NoExecute taint blocks too",
        [node("a", taints=[{"key": "k", "effect": "NoExecute"}]), node("b")],
        [pod("p", "b")],
        {},
        "b",
    ),
    (
        "PreferNoSchedule taint is ignored",
        [node("a", taints=[{"key": "k", "effect": "PreferNoSchedule"}]), node("b")],
        [pod("p", "b")],
        {},
        "a",
    ),
    (
        "tolerated with Equal",
        [node("a", taints=[NOSCHED]), node("b")],
        [pod("p", "b")],
        {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu"}]},
        "a",
    ),
    (
        "Equal with another value does not tolerate",
        [node("a", taints=[NOSCHED]), node("b")],
        [pod("p", "b")],
        {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "cpu"}]},
        "b",
    ),
    (
        "tolerated with Exists on the key",
        [node("a", taints=[NOSCHED]), node("b")],
        [pod("p", "b")],
        {"tolerations": [{"key": "dedicated", "operator": "Exists"}]},
        "a",
    ),
    (
        "empty key with Exists tolerates everything",
        [node("a", taints=[NOSCHED, {"key": "x", "effect": "NoExecute"}]), node("b")],
        [pod("p", "b")],
        {"tolerations": [{"operator": "Exists"}]},
        "a",
    ),
    (
        "toleration for another effect does not tolerate",
        [node("a", taints=[NOSCHED]), node("b")],
        [pod("p", "b")],
        {"tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}]},
        "b",
    ),
    (
        "node selector must match",
        [node("a"), node("b", labels={"gpu": "yes"})],
        [pod("p", "b")],
        {"node_selector": {"gpu": "yes"}},
        "b",
    ),
    (
        "required affinity In must match",
        [node("a", labels={"pool": "x"}), node("b", labels={"pool": "user"})],
        [pod("p", "b")],
        {"node_affinity": [_expr("pool", "In", "user", "gpu")]},
        "b",
    ),
    (
        "required affinity NotIn keeps a node off",
        [node("a", labels={"pool": "core"}), node("b", labels={"pool": "user"})],
        [pod("p", "b")],
        {"node_affinity": [_expr("pool", "NotIn", "core")]},
        "b",
    ),
    (
        "NotIn admits a node without the label",
        [node("a", labels={}), node("b", labels={"pool": "core"})],
        [pod("p", "a")],
        {"node_affinity": [_expr("pool", "NotIn", "core")]},
        "a",
    ),
    (
        "Exists and DoesNotExist",
        [node("a", labels={"gpu": "1"}), node("b", labels={"spot": "1"}), node("c")],
        [],
        {"node_affinity": [{"matchExpressions": [_e("gpu", "Exists")]}]},
        "a",
    ),
    (
        "DoesNotExist skips labeled nodes",
        [node("a", labels={"spot": "1"}), node("b", labels={"spot": "1"}), node("c")],
        [pod("p", "c")],
        {"node_affinity": [{"matchExpressions": [_e("spot", "DoesNotExist")]}]},
        "c",
    ),
    (
        "Gt compares integers",
        [node("a", labels={"cores": "8"}), node("b", labels={"cores": "64"})],
        [pod("p", "b", cpu="4")],
        {"node_affinity": [_expr("cores", "Gt", "16")]},
        "b",
    ),
    (
        "terms are ORed",
        [node("a", labels={"pool": "x"}), node("b", labels={"pool": "y"}), node("c")],
        [pod("p", "a"), pod("q", "b", cpu="2")],
        {"node_affinity": [_expr("pool", "In", "x"), _expr("pool", "In", "y")]},
        "a",
    ),
    (
        "expressions of one term are ANDed",
        [
            node("a", labels={"pool": "user", "zone": "1"}),
            node("b", labels={"pool": "user", "zone": "2"}),
        ],
        [pod("p", "b")],
        {
            "node_affinity": [
                {"matchExpressions": [_e("pool", "In", "user"), _e("zone", "In", "2")]}
            ]
        },
        "b",
    ),
    (
        "matchFields on metadata.name",
        [node("a"), node("b")],
        [pod("p", "b")],
        {
            "node_affinity": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}
            ]
        },
        "b",
    ),
    (
        "snake_case keys as KubeSpawner accepts them",
        [node("a"), node("b", labels={"pool": "user"})],
        [pod("p", "b")],
        {"node_affinity": [{"match_expressions": [_e("pool", "In", "user")]}]},
        "b",
    ),
    (
        "an empty term matches nothing",
        [node("a")],
        [],
        {"node_affinity": [{}]},
        None,
    ),
    (
        "selector and affinity both apply",
        [node("a", labels={"gpu": "yes"}), node("b", labels={"gpu": "yes", "pool": "u"})],
        [pod("p", "b")],
        {"node_selector": {"gpu": "yes"}, "node_affinity": [_expr("pool", "In", "u")]},
        "b",
    ),
    (
        "full CPU",
        [node("a", cpu="2"), node("b", cpu="2")],
        [pod("p", "a", cpu="1500m"), pod("q", "b", cpu="1")],
        {"cpu": 1},
        "b",
    ),
    (
        "full memory",
        [node("a", memory="4Gi"), node("b", memory="4Gi")],
        [pod("p", "a", memory="3Gi"), pod("q", "b", memory="3500Mi")],
        {"memory": GiB},
        "a",
    ),
    (
        "exact fit fits",
        [node("a", cpu="2", memory="2Gi")],
        [pod("p", "a", cpu="1", memory="1Gi")],
        {"cpu": 1, "memory": GiB},
        "a",
    ),
    (
        "other namespaces count",
        [node("a"), node("b")],
        [pod("p", "a", cpu="1"), pod("q", "b", cpu="4", namespace="other-service")],
        {},
        "a",
    ),
    (
        "terminated pods do not count",
        [node("a"), node("b")],
        [
            pod("p", "a", cpu="2"),
            pod("q", "b", cpu="4", phase="Succeeded"),
            pod("r", "b", cpu="4", phase="Failed"),
        ],
        {},
        "b",
    ),
    (
        "pending pods count, unscheduled pods do not",
        [node("a"), node("b")],
        [pod("p", "a", cpu="1"), pod("q", "b", cpu="2", phase="Pending"), pod("r", None, cpu="8")],
        {},
        "a",
    ),
    (
        "pods on unknown nodes are ignored",
        [node("a")],
        [pod("p", "gone", cpu="8")],
        {"cpu": 8},
        "a",
    ),
    (
        "init container larger than containers",
        [node("a"), node("b")],
        [
            pod("p", "a", cpu="1", init_containers=[container("3")]),
            pod("q", "b", cpu="2"),
        ],
        {},
        "b",
    ),
    (
        "overhead counts",
        [node("a"), node("b")],
        [pod("p", "a", cpu="1", overhead={"cpu": "2"}), pod("q", "b", cpu="2")],
        {},
        "b",
    ),
    (
        "pod count limit",
        [node("a", pods="2"), node("b", cpu="4")],
        [pod("p", "a", cpu="0"), pod("q", "a", cpu="0"), pod("r", "b", cpu="3")],
        {},
        "b",
    ),
    (
        "excluded node is not chosen",
        [node("a"), node("b")],
        [pod("p", "b")],
        {"exclude": ["a"]},
        "b",
    ),
    (
        "least loaded by the larger fraction",
        # a: CPU 4/8 after placing 1 → 62.5% ; b: memory 20/32 GiB → 65.6%
        [node("a"), node("b")],
        [pod("p", "a", cpu="4", memory="0"), pod("q", "b", cpu="0", memory="20Gi")],
        {},
        "a",
    ),
    (
        "bigger node wins after placing when equally busy",
        [node("small", cpu="2", memory="8Gi"), node("big", cpu="16", memory="64Gi")],
        [],
        {"cpu": 2, "memory": 2 * GiB},
        "big",
    ),
    (
        "tie broken by the other fraction",
        [node("a"), node("b")],
        [pod("p", "a", cpu="2", memory="4Gi"), pod("q", "b", cpu="2", memory="2Gi")],
        {"cpu": 1, "memory": GiB},
        "b",
    ),
    ("full tie broken by name", [node("b"), node("a"), node("c")], [], {}, "a"),
    (
        "zero request fits an overcommitted node",
        [node("a", cpu="1")],
        [pod("p", "a", cpu="2")],
        {"cpu": 0},
        "a",
    ),
]


@pytest.mark.parametrize(
    ("nodes", "pods", "kw", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_choose_node(
    choose: Choose,
    nodes: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    kw: dict[str, Any],
    expected: str | None,
) -> None:
    assert choose(nodes, pods, **kw).node == expected


@pytest.mark.parametrize(
    ("nodes", "pods", "kw", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_choice_does_not_depend_on_order(
    choose: Choose,
    nodes: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    kw: dict[str, Any],
    expected: str | None,
) -> None:
    assert choose(nodes[::-1], pods[::-1], **kw) == choose(nodes, pods, **kw)


def test_reason_and_fractions_of_a_choice(choose_fn: Callable[..., Placement]) -> None:
    placement = choose_fn(
        [node("node-7", cpu="20", memory="100Gi")],
        [pod("p", "node-7", cpu="5", memory="10Gi")],
        cpu=2,
        memory=10 * GiB,
    )
    assert placement.node == "node-7"
    assert placement.cpu_fraction == pytest.approx(0.35)
    assert placement.memory_fraction == pytest.approx(0.20)
    assert placement.reason == "Starting on node-7 (CPU 35%, memory 20% requested)"
    assert placement.usage_cpu_fraction is None


def test_nothing_fits_names_the_request_and_counts(choose_fn: Callable[..., Placement]) -> None:
    placement = choose_fn(
        [
            node("a", cpu="8", memory="16Gi"),
            node("b", cpu="8", memory="16Gi"),
            node("c", unschedulable=True),
        ],
        [pod("p", "a", cpu="1", memory="4Gi"), pod("q", "b", cpu="1", memory="8Gi")],
        cpu=4,
        memory=16 * GiB,
    )
    assert placement.node is None
    assert placement.cpu_fraction is None
    assert placement.reason == (
        "No node can start a server with 4 CPU and 16 GiB memory: "
        "of 3 nodes, 2 have too little free memory, 1 is cordoned."
    )


@pytest.mark.parametrize(
    ("nodes", "kw", "tail"),
    [
        ([], {}, "the cluster has no nodes."),
        ([node("a", ready=False)], {}, "of 1 node, 1 is not ready."),
        (
            [node("a", taints=[NOSCHED]), node("b", taints=[NOSCHED])],
            {},
            "of 2 nodes, 2 have taints the server does not tolerate.",
        ),
        (
            [node("a")],
            {"node_selector": {"x": "y"}},
            "of 1 node, 1 does not match the node selector or affinity.",
        ),
        ([node("a")], {"exclude": ["a"]}, "of 1 node, 1 was excluded after a failed attempt."),
        ([node("a", pods="0")], {}, "of 1 node, 1 is at its pod limit."),
        ([node("a", pods=None)], {}, "of 1 node, 1 is at its pod limit."),
        ([node("a", cpu="500m")], {}, "of 1 node, 1 has too little free CPU."),
        (
            [node("a", cpu="500m", memory="1Mi"), node("b", cpu="100m")],
            {},
            "of 2 nodes, 1 has too little free CPU and memory, 1 has too little free CPU.",
        ),
    ],
)
def test_nothing_fits_reasons(
    choose: Choose, nodes: list[dict[str, Any]], kw: dict[str, Any], tail: str
) -> None:
    placement = choose(nodes, [], **kw)
    assert placement.node is None
    assert placement.reason == "No node can start a server with 1 CPU and 1 GiB memory: " + tail


def test_request_is_formatted_in_human_units(choose_fn: Callable[..., Placement]) -> None:
    placement = choose_fn([], [], cpu=0.25, memory=1536 << 20)
    assert placement.reason.startswith(
        "No node can start a server with 0.25 CPU and 1.5 GiB memory"
    )


@pytest.mark.parametrize(
    ("pod_obj", "expected"),
    [
        (pod("p", "a", cpu="1", memory="1Gi"), (1000, GiB)),
        (
            pod("p", "a", containers=[container("1", "1Gi"), container("500m", "512Mi")]),
            (1500, GiB + (512 << 20)),
        ),
        # Limits stand in for missing requests, as the API server defaults them.
        (
            pod(
                "p",
                "a",
                containers=[{"name": "c", "resources": {"limits": {"cpu": "2", "memory": "2Gi"}}}],
            ),
            (2000, 2 * GiB),
        ),
        (pod("p", "a", containers=[{"name": "c"}]), (0, 0)),
        # The largest init container wins over the sum of containers when larger ...
        (
            pod(
                "p",
                "a",
                cpu="1",
                memory="1Gi",
                init_containers=[container("3", "512Mi"), container("2", "4Gi")],
            ),
            (3000, 4 * GiB),
        ),
        # ... a sidecar (restartPolicy Always) adds to the sum and to later init containers.
        (
            pod(
                "p",
                "a",
                cpu="1",
                memory="1Gi",
                init_containers=[
                    container("1", "1Gi", restartPolicy="Always"),
                    container("2", "1Gi"),
                ],
            ),
            (3000, 2 * GiB),
        ),
        (
            pod("p", "a", cpu="1", memory="1Gi", overhead={"cpu": "250m", "memory": "120Mi"}),
            (1250, GiB + (120 << 20)),
        ),
    ],
)
def test_pod_request(pod_obj: dict[str, Any], expected: tuple[int, int]) -> None:
    assert pod_request(pod_obj) == expected


def test_pod_level_resources_replace_the_container_sum() -> None:
    p = pod("p", "a", cpu="1", memory="1Gi")
    p["spec"]["resources"] = {"requests": {"cpu": "3"}}
    assert pod_request(p) == (3000, GiB)


class TestUsage:
    nodes = [node("a"), node("b")]
    # By requests a is busier; by measured usage b is.
    pods = [pod("p", "a", cpu="4", memory="4Gi"), pod("q", "b", cpu="1", memory="1Gi")]
    usage = {"a": (0.5, 2 * GiB), "b": (6.0, 8 * GiB)}

    def test_requests_metric_ignores_usage(self, choose: Choose) -> None:
        assert choose(self.nodes, self.pods, usage=self.usage).node == "b"

    def test_usage_metric_scores_by_usage(self, choose: Choose) -> None:
        placement = choose(self.nodes, self.pods, load_metric="usage", usage=self.usage)
        assert placement.node == "a"
        # CPU (0.5 + 1) / 8, memory (2 + 1) / 32 GiB in use after placing.
        assert placement.usage_cpu_fraction == pytest.approx(1.5 / 8)
        assert placement.usage_memory_fraction == pytest.approx(3 / 32)
        assert placement.cpu_fraction == pytest.approx(5 / 8)
        assert placement.reason == (
            "Starting on a (CPU 62%, memory 16% requested; CPU 19%, memory 9% in use)"
        )

    def test_feasibility_still_uses_requests(self, choose: Choose) -> None:
        full = [pod("p", "a", cpu="7500m"), pod("q", "b", cpu="1")]
        placement = choose(self.nodes, full, load_metric="usage", usage=self.usage)
        assert placement.node == "b"

    def test_no_metrics_falls_back_to_requests(self, choose: Choose) -> None:
        placement = choose(self.nodes, self.pods, load_metric="usage", usage=None)
        assert placement.node == "b"
        assert placement.usage_cpu_fraction is None
        assert placement.reason.endswith("; usage not measured)")

    def test_node_without_sample_is_scored_by_requests(self, choose: Choose) -> None:
        # b has no sample: its requests (1 + 1 CPU of 8 = 25%) beat a's usage (6 + 1 of 8).
        placement = choose(self.nodes, self.pods, load_metric="usage", usage={"a": (6.0, 0)})
        assert placement.node == "b"

    def test_pods_started_after_the_sample_count_by_request(self, choose: Choose) -> None:
        window_start = 1_000_000.0
        late = pod("late", "a", cpu="6", memory="1Gi", created="2026-01-01T00:00:00Z")
        early = pod("early", "a", cpu="6", memory="1Gi", created="1970-01-01T00:00:00Z")
        usage = {"a": NodeUsage(0.5, 0, window_start), "b": NodeUsage(3.0, 0, window_start)}
        nodes = [node("a", cpu="16"), node("b", cpu="16")]
        # "early" is in a's sample already; "late" is not, so a counts 0.5 + 6 CPU.
        assert choose(nodes, [early], load_metric="usage", usage=usage).node == "a"
        assert choose(nodes, [late], load_metric="usage", usage=usage).node == "b"


@pytest.mark.parametrize(
    ("kw", "message"), [({"cpu": -1}, "negative"), ({"load_metric": "magic"}, "load_metric")]
)
def test_bad_arguments_raise(choose: Choose, kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        choose([node("a")], [], **kw)


def test_bad_request_is_refused_before_objects_are_read(choose: Choose) -> None:
    with pytest.raises(ValueError, match="negative"):
        choose([node("a", cpu="lots")], [], cpu=-1)


def test_listed_pods_count_as_listed(choose: Choose) -> None:
    # A pod that appears twice in the list counts twice; pods on unlisted nodes are not read.
    nodes = [node("a", cpu="4"), node("b", cpu="4")]
    twice = [pod("p", "a", cpu="1500m"), pod("p", "a", cpu="1500m"), pod("q", "b", cpu="2")]
    assert choose(nodes, twice).node == "b"
    assert choose(nodes, [*twice, pod("bad", "elsewhere", cpu="lots")]).node == "b"
