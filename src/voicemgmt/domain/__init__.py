"""Pure logic of the product: no I/O, no clock, no framework."""
