"""FastSeqTrack (one-pass sequence decoding with parameter-sharing early exits), the framework's second tracker."""
from lib.models.fastseqtrack.network import (
    ACTOR_CLASS_NAME,
    COORDINATES,
    NET_CLASS_NAME,
    SCRIPT,
    ExitDecision,
    FastSeqTrackNetwork,
    FastSeqTrackSpec,
    build_network,
    hanning_window,
    spec_from_config,
)

__all__ = ["ACTOR_CLASS_NAME", "COORDINATES", "NET_CLASS_NAME", "SCRIPT", "ExitDecision", "FastSeqTrackNetwork",
           "FastSeqTrackSpec", "build_network", "hanning_window", "spec_from_config"]
