"""Training data: image decoding, file stores, samplers, processing and loaders."""
