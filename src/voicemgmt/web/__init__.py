"""HTTP entry points: the guide's token API, the admin REST API, and (later) the pages."""
