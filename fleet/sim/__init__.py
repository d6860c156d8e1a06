"""fleet.sim: an embedded simulated fleet of Kubernetes API servers.

N independent clusters in one process, each with its own object store, resourceVersion counter,
credentials, request log, faults and controllers, served over real HTTP(S) on 127.0.0.1 so that the
unmodified official ``kubernetes`` client and ``kubectl`` talk to it as to a real cluster. Controllers
react to the store's change feed (the same feed that serves watches), never by polling.

This package never imports fleet's client layers: it is the cluster, not a user of it.
"""

from fleet.sim.faults import Faults
from fleet.sim.fleet import SimCluster, SimFleet
from fleet.sim.requestlog import RequestRecord

__all__ = ["Faults", "RequestRecord", "SimCluster", "SimFleet"]
