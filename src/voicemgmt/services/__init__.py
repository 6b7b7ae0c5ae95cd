"""Use cases: each ties the domain to the ports (storage, hashing, clock) for one job."""
