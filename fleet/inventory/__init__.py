"""The inventory: cluster models, loading and merging files, selectors, discovery sources, and the
resolution of a cluster entry into a connection (secrets resolved, auth provider attached)."""
