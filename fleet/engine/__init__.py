"""A run: the trio fan-out over clusters (waves, limit, failure budget), per-tenant rollback, typed
events, the journal and resume. Never touches the kubernetes client directly."""
