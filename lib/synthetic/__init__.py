"""Synthetic tracking data: procedural videos with exact ground truth (:mod:`.scenes`), written in the official
layouts of GOT-10k, LaSOT, TrackingNet and COCO 2017 (:mod:`.writers`). The built-in data of the quickstart:
``python tracking/generate_synthetic.py``."""
from lib.synthetic.scenes import (CLASS_NAMES, LEVELS, Difficulty, ImageObject, RenderedImage, RenderedSequence,
                                  render_image, render_sequence)
from lib.synthetic.writers import (DATASETS, NO_DATA_HINT, SyntheticConfig, SyntheticDataError, builtin_data_notice,
                                   hidden_ground_truth, lasot_names, read_manifest, write_synthetic_data)

__all__ = ["CLASS_NAMES", "DATASETS", "NO_DATA_HINT", "builtin_data_notice", "LEVELS", "Difficulty", "ImageObject", "RenderedImage", "RenderedSequence",
           "SyntheticConfig", "SyntheticDataError", "hidden_ground_truth", "lasot_names", "read_manifest",
           "render_image", "render_sequence", "write_synthetic_data"]
