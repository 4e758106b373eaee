"""Experiment configuration: the per-family schemas (:mod:`lib.config.defaults`), and loading a YAML over them with
command-line opts (:mod:`lib.config.loader`; no global state). Import from those modules: this package imports
nothing, so the family records can use the schemas while the loader uses the records."""
