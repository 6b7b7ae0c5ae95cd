"""The ``voicemgmt`` command line."""
