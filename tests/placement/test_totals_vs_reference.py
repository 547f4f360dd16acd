"""The event-fed totals and choose_node agree with the oracle on random clusters.

Each case builds a random cluster (taints, labels, cordons, NotReady nodes,
pods of several namespaces, terminated and unscheduled pods, init containers,
overhead, pod limits), then applies a random sequence of watch events (pods and
nodes added, modified, deleted; usage samples; reservations made, released,
expired, taken over by their pod; relists) and after each event asks the
event-fed totals, choose_node over the lists and the oracle (tests/placement/
oracle.py) random questions. They must give the same Placement: node, sentence
and fractions. Seeds are fixed so a failure reproduces.
"""

from __future__ import annotations

import random

import pytest

from lsst_hub.placement.model import pod_bound_node, pod_request

from .randomcluster import NODE_NAMES, World

pytestmark = pytest.mark.line_independent


@pytest.mark.parametrize("seed", range(60))
def test_same_choice_after_every_event(seed: int) -> None:
    rng = random.Random(seed)
    world = World(rng)
    for _ in range(rng.randrange(0, 10)):
        world.add_node()
    for _ in range(rng.randrange(0, 40)):
        world.add_pod()
    compared = 0
    for _ in range(120):
        world.random_event()
        for _ in range(3):
            request = world.random_request()
            expected = world.reference(**request)
            assert world.totals.choose(**request) == expected, request
            assert world.listed(**request) == expected, request
            compared += 1
    assert compared == 360


@pytest.mark.parametrize("seed", range(20))
def test_totals_equal_a_recount(seed: int) -> None:
    rng = random.Random(1000 + seed)
    world = World(rng)
    for _ in range(200):
        world.random_event()
    for name in [*NODE_NAMES, "ghost-node"]:
        cpu = memory = count = 0
        for p in world.pods.values():
            if pod_bound_node(p) == name:
                c, m = pod_request(p)
                cpu, memory, count = cpu + c, memory + m, count + 1
        totals = world.totals.totals(name)
        assert (totals.cpu_requested, totals.memory_requested, totals.pods) == (cpu, memory, count)
        reserved = [fake for fake, exp in world.reserved.values() if pod_bound_node(fake) == name]
        assert totals.pods_reserved == len(reserved)
        assert totals.cpu_reserved == sum(pod_request(f)[0] for f in reserved)


def test_choices_vary_across_seeds() -> None:
    # Guards the property test against comparing two constant answers.
    outcomes = set()
    for seed in range(30):
        world = World(random.Random(seed))
        for _ in range(8):
            world.add_node()
        for _ in range(30):
            world.add_pod()
        outcomes.add(world.totals.choose(1, 1 << 30).node)
    assert len(outcomes) > 3
    assert None in outcomes or len(outcomes) > 5
