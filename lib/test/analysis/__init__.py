"""Offline analysis of tracking results: pytracking-convention and GOT-10k-protocol metrics, reports, plots."""
