"""Experiment configuration: per-script schema defaults, YAML overrides and command-line opts (no global state)."""
from .loader import (EXPERIMENTS_DIR, OFFICIAL_CONFIGS, SCRIPTS, Config, ConfigError, default_config, load_config,
                     resolve_config_path)

__all__ = ["SCRIPTS", "OFFICIAL_CONFIGS", "EXPERIMENTS_DIR", "Config", "ConfigError", "default_config", "resolve_config_path",
           "load_config"]
