"""Telephony adapters: implementations of the ``Switch`` port (``services/switch.py``).

``simulated`` is the embedded default: an in-process phone system with simulated callers and
customers, so the whole product runs and is tested without a phone line.
"""
