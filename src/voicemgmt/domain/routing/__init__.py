"""The routing engine (ACD): who gets which call, when, and what happens on timeout."""
