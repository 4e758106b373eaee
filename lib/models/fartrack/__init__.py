"""The FARTrack network, its layers, weight conversion, token sparsification and complexity counts."""
