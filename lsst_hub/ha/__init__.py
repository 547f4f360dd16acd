"""Standby hub: leader election on a Kubernetes Lease.

``lsst-hub-ha`` (:mod:`lsst_hub.ha.cli`) wraps the hub: of several wrapped hubs
sharing one Lease, only the leader's runs; the others wait as standbys and take
over when the leader stops renewing or releases the Lease.
"""
