"""FastSeqTrack (one-pass sequence decoding with parameter-sharing early exits), the framework's second tracker."""
from lib.models.fastseqtrack.network import (
    COORDINATES,
    ExitDecision,
    FastSeqTrackNetwork,
    FastSeqTrackSpec,
    hanning_window,
    spec_from_config,
)

__all__ = ["COORDINATES", "ExitDecision", "FastSeqTrackNetwork", "FastSeqTrackSpec", "hanning_window",
           "spec_from_config"]
