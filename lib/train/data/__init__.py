"""Training data: samplers, processing and loaders."""
