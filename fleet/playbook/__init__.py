"""Playbook models (one class per step type), sandboxed templating, validation with line numbers and
the published JSON schema."""
