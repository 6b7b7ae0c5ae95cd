"""What the platform says about itself: Prometheus metrics and structured logs."""
