"""The pod step: building and merging the pod spec, file transfer (tar over exec), log following,
the outputs protocol, reattach and cleanup. Knows nothing of the engine."""
