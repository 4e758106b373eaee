"""The networks: the FARTrack families (:mod:`lib.models.fartrack`) and FastSeqTrack (:mod:`lib.models.fastseqtrack`);
the family records that build them are in :mod:`lib.families`."""
