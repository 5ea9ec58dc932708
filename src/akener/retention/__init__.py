"""Retention: how long audit events, usage rows and ended sessions are kept, and the pruning job."""
