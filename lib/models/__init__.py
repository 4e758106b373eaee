"""The networks: the FARTrack families (:mod:`lib.models.fartrack`) and FastSeqTrack (:mod:`lib.models.fastseqtrack`)."""
from lib.models.fartrack.network import NET_CLASS_NAMES
from lib.models.fastseqtrack.network import NET_CLASS_NAME as FASTSEQTRACK_NET_CLASS_NAME
from lib.models.fastseqtrack.network import SCRIPT as FASTSEQTRACK_SCRIPT


def net_class_name(script: str) -> str:
    """The network class name of a script: checkpoint ``net_type`` and file prefix ``<NetClass>_ep%04d.pth.tar``."""
    return FASTSEQTRACK_NET_CLASS_NAME if script == FASTSEQTRACK_SCRIPT else NET_CLASS_NAMES[script]
