"""Bottom layer: the frozen config, user errors, and the caches every layer above relies on."""
