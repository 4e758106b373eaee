"""Test-time utilities: submission packaging for the GOT-10k and TrackingNet servers."""
