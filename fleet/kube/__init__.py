"""One cluster: client factory, discovery cache, apply (SSA), get, patch, restart, delete, wait,
readiness (kstatus), watch helpers and the retry policy. Knows nothing of playbooks or the engine."""
