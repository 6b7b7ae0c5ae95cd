"""``voicemgmt sim``: simulated traffic against a running server (``VM_SWITCH=simulated``).

Everything goes through the server's public API, as an integration would: the account's API
credentials (Basic) place calls and read the figures, operators act with their session tokens
(Bearer), and one supervisor's event stream (``/vm/events``) tells who is offered which call.

- ``sim call`` places one call and prints its id.
- ``sim load`` drives realistic traffic for a while (Poisson arrivals, IVR input, callers who
  give up, operators who answer after a delay and hang up after a talk time), then prints
  what became of the calls, cross-checked against the server's figures.

The package: ``commands`` (the typer commands and their options), ``api`` (requests and the
server's refusals), ``load`` (one run: set-up, callers, operators, wind-down), ``stream`` (the
supervisor's event stream and what it tells about each call), ``report`` (tables, summary).
"""

from voicemgmt.cli.sim.commands import sim_app

__all__ = ["sim_app"]
