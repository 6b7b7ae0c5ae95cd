"""Implementations of the ports: storage, password hashing, later event buses and switches."""
