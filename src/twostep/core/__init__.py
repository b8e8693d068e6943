"""Pure two-factor arithmetic: no Django, no I/O; time and randomness are parameters."""
