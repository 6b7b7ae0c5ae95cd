"""Routing: each account's routing core, run in this process.

``service.RoutingService`` is the facade the web layer and the switches talk to; ``desk`` is
one account's core with its outbox, built from the directory; ``numbers`` is the cache of the
platform's numbers through which inbound calls find their account.
"""

from voicemgmt.services.routing.service import RoutingService

__all__ = ["RoutingService"]
