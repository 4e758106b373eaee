"""Configuration schemas: the default values of every key, and the checks of each family's own keys.

The family records (:mod:`lib.families`) say which schema each script uses. The defaults follow the "default" column
of the official configuration (spec §2.1). An experiment YAML may only override keys that exist here (see
:mod:`lib.config.loader`). ``fartrack`` and ``fartrack_distill`` share :func:`fartrack_schema`; ``fartrack_sparse``
adds the sequence-level keys listed in :func:`fartrack_sparse_schema`. ``fastseqtrack`` (a second tracker, not
FARTrack) has its own schema, :func:`fastseqtrack_schema`.

Every official key is present, including those the official code never reads, so that the official YAML files load
unchanged. Keys marked ``ignored`` below are read by no official code path (spec §2.2); keys marked ``unused`` are not
named by spec §2.2 at all and are presumably leftovers of the ARTrack / OSTrack code base. Keys marked ``project`` are
ours, not official.
"""
from __future__ import annotations

from typing import Any

# The ViT-Tiny blocks ``blocks.0..11`` hard-wired in the official backbone (extension blocks come on top).
NUM_BASE_BLOCKS = 12
# The only backbone the official model supports: its slot embedding ``identity`` is hard-wired to width 192.
FARTRACK_BACKBONE = "vit_tiny_patch16_224"


class ConfigError(ValueError):
    """An invalid configuration: unknown key, wrong type, inconsistent values, or a write to a frozen config."""


def choice_errors(checks: list[tuple[str, Any, tuple[str, ...]]]) -> list[str]:
    """One message per ``(key, value, choices)`` whose value is not among the choices."""
    return [f"{key} must be one of {', '.join(choices)}, got {value!r}" for key, value, choices in checks
            if value not in choices]


def fartrack_schema() -> dict[str, Any]:
    """Fresh defaults shared by all scripts (the ``fartrack`` / ``fartrack_distill`` schema)."""
    return {
        "MODEL": {
            "PRETRAIN_FILE": "mae_pretrain_vit_base.pth",  # MAE weights, resolved under <repo>/pretrained_models/
            "PRETRAIN_PTH": "",  # checkpoint of the previous stage ("" = none)
            "EXTRA_MERGER": False,  # ignored
            "RETURN_INTER": False,
            "RETURN_STAGES": [2, 5, 8, 11],  # ignored
            "BINS": 400,  # quantisation bins per unit of normalised coordinate
            "RANGE": 2,  # coordinate range in units (vocabulary = BINS * RANGE + 5)
            "EXTENSION": 3,  # extension blocks after blocks.0..11
            "ENCODER_LAYER": 3,  # ignored
            "DECODER_LAYER": 6,  # ignored
            "NUM_HEADS": 12,  # ignored (ViT-Tiny's 3 heads are hard-wired)
            "MLP_RATIO": 4.0,  # ignored
            "QKV_BIAS": True,  # ignored
            "DROP_RATE": 0.1,  # ignored (dropout is 0 everywhere)
            "ATTN_DROP": 0.0,  # ignored
            "DROP_PATH": 0.0,  # ignored (TRAIN.DROP_PATH_RATE is used instead)
            # project: number of transformer layers run, the first DEPTH of blocks.0..11 then extension.0..;
            # Tiny / Nano / Pico = 15 / 10 / 6. Must satisfy 1 <= DEPTH <= 12 + EXTENSION.
            "DEPTH": 15,
            # project: initialisation of the coordinate rows of the tied vocabulary at the start of stage 1:
            # "kaiming" (official) or "sincos" (a 1-D sin-cos encoding of the bin, see the backbone).
            "COORD_EMBED_INIT": "kaiming",
            "SPARSE": {
                # project: fraction of the 49 tokens of template slots 0..3 pruned once per sequence in stage-3
                # training (official: int(49 * 0.25) = 12 tokens).
                "TRAIN_PRUNE_RATIO": 0.25,
                # project: fraction of the newest template's tokens pruned at inference (official: 12 of 49, i.e.
                # 37/49 ~ 75 % retention); 0.0 keeps every token. Harmless for the dense scripts.
                "TEST_PRUNE_RATIO": 0.25,
            },
            "BACKBONE": {
                "TYPE": "vit_base_patch16_224",  # must be vit_tiny_patch16_224 in a loaded config (width 192)
                "STRIDE": 16,  # patch size of the patch embedding
                "CAT_MODE": "direct",
                "SEP_SEG": False,
                "ADD_CLS_TOKEN": False,  # unused
                "MID_PE": False,  # unused
                "CE_LOC": [],  # ignored
                "CE_KEEP_RATIO": [],  # ignored
                "CE_TEMPLATE_RANGE": "ALL",  # ignored
                "CLS_TOKEN_USE_MODE": "ignore",  # unused
                "MERGE_LAYER": 0,  # unused
            },
            "HEAD": {
                "TYPE": "PIX",  # ignored (the output head is the tied word embedding)
                "NUM_CHANNELS": 1024,  # ignored
            },
        },
        "TRAIN": {
            "LR": 1e-4,
            "WEIGHT_DECAY": 1e-4,
            "EPOCH": 500,
            "LR_DROP_EPOCH": 400,
            "BATCH_SIZE": 16,  # per GPU
            "NUM_WORKER": 10,
            "OPTIMIZER": "ADAMW",
            "BACKBONE_MULTIPLIER": 0.1,
            "GIOU_WEIGHT": 2.0,
            "L1_WEIGHT": 5.0,
            "SCORE_WEIGHT": 0.0,  # ignored
            "FREEZE_LAYERS": [0],  # ignored
            "PRINT_INTERVAL": 50,
            "VAL_EPOCH_INTERVAL": 20,
            "GRAD_CLIP_NORM": 0.1,  # frame-level trainers only
            "AMP": False,
            "DROP_PATH_RATE": 0.1,
            "CE_START_EPOCH": 20,  # ignored
            "CE_WARM_EPOCH": 80,  # ignored
            "SCHEDULER": {
                "TYPE": "step",
                "DECAY_RATE": 0.1,  # ignored (the official StepLR always uses gamma 0.1)
            },
        },
        "DATA": {
            "SAMPLER_MODE": "causal",  # only 'causal' is meaningful
            "MEAN": [0.485, 0.456, 0.406],
            "STD": [0.229, 0.224, 0.225],
            "MAX_SAMPLE_INTERVAL": 200,
            "TRAIN": {
                "DATASETS_NAME": ["LASOT", "GOT10K_vottrain"],
                "DATASETS_RATIO": [1, 1],
                "SAMPLE_PER_EPOCH": 60000,
            },
            "VAL": {  # ignored by the sequence-level (sparse) trainer
                "DATASETS_NAME": ["GOT10K_votval"],
                "DATASETS_RATIO": [1],
                "SAMPLE_PER_EPOCH": 10000,
            },
            "SEARCH": {
                "SIZE": 256,
                "FACTOR": 5.0,
                "CENTER_JITTER": 4.5,
                "SCALE_JITTER": 0.5,
                "NUMBER": 1,  # search frames per sample (sequence length in stage 3)
            },
            "TEMPLATE": {
                "NUMBER": 1,
                "SIZE": 128,
                "FACTOR": 2.0,
                "CENTER_JITTER": 0.0,  # official default is the int 0; float so fractional jitters are accepted
                "SCALE_JITTER": 0.0,  # idem
                # project: template slot order of the frame-level sampler. "official": slot 0 is the base (newest)
                # frame, then the earlier frames in draw order; "chronological": oldest first, as at inference.
                "ORDER": "official",
            },
        },
        "TEST": {
            "TEMPLATE_FACTOR": 2.0,
            "TEMPLATE_SIZE": 128,
            "SEARCH_FACTOR": 5.0,
            "SEARCH_SIZE": 256,
            "EPOCH": 500,  # checkpoint epoch the tracker loads
        },
    }


def fartrack_sparse_schema() -> dict[str, Any]:
    """Fresh ``fartrack_sparse`` defaults: the shared base plus the sequence-level keys."""
    cfg = fartrack_schema()
    model, data = cfg["MODEL"], cfg["DATA"]
    model["PRENUM"] = 7  # previous boxes per sequence step (rows of an embedding the forward never uses)
    model["BACKBONE"]["PATCHSIZE"] = 16
    model["DECODER"] = {  # ignored (ARTrackV2 leftover)
        "TYPE": "mask",
        "MASK_RATIO": 0.75,
        "EMBEDDIM": 512,
        "DEPTH": 8,
        "NUMHEADS": 16,
        "MLPRATIO": 4.0,
    }
    data["MAX_GAP"] = 300
    data["MAX_INTERVAL"] = 5  # only read by a never-taken random-interval branch
    data["INTERVAL_PROB"] = 0.0
    data["TEMP"] = 2  # ignored
    cfg["TRAIN"]["SCORE_WEIGHT"] = 1.0  # ignored
    # project: weight of the CE term of the sequence loss; the official actor forces it to 0 every step.
    cfg["TRAIN"]["SEQ_CE_WEIGHT"] = 0.0
    return cfg


def fastseqtrack_schema() -> dict[str, Any]:
    """Fresh ``fastseqtrack`` defaults: FastSeqTrack-B256 as the paper describes it (project script, not FARTrack).

    The DATA / TRAIN / TEST sections keep the names of the shared schema, so the samplers, processing, optimiser,
    trainer and test runner read them unchanged; MODEL is FastSeqTrack's own. Where the paper is silent the value
    is a documented choice (see the FastSeqTrack section of the README).
    """
    return {
        "MODEL": {
            # timm / MAE ViT weights for the encoder, under <repo>/pretrained_models/ or absolute; "" or a missing
            # file starts from scratch with a warning.
            "PRETRAIN_FILE": "mae_pretrain_vit_base.pth",
            "BACKBONE": {  # the ViT encoder over [search; templates; 4 tracking tokens]
                "STRIDE": 16,  # patch size
                "EMBED_DIM": 768,  # ViT-B
                "DEPTH": 12,
                "NUM_HEADS": 12,
                "MLP_RATIO": 4.0,
            },
            "DECODER": {
                "LAYERS": 2,  # paper: 2 decoder layers, hence 3 exits (before layer 1, after each layer)
                "EMBED_DIM": 256,  # choice: with 256 / MLP 1024 the decoder + head count 3.464 M, the paper's Table 1
                "NUM_HEADS": 8,
                "MLP_RATIO": 4.0,
                # Early-exit threshold (paper: 1.6): a sample stops at the first exit whose score is above TAU.
                "TAU": 1.6,
                # The exit score: "sum" over x, y, w, h of the largest window-penalised probability, in [0, 4], so
                # TAU 1.6 = an average of 0.4 (our reading of the paper); "mean" is the literal "average", in
                # [0, 1], under which the paper's 1.6 never fires.
                "EXIT_SCORE": "sum",
            },
            "HEAD": {  # the embedding-to-word network shared by every exit: LayerNorm + MLP + softmax
                "N_BINS": 4000,  # paper: vocabulary of 4000 values per coordinate
                "NUM_LAYERS": 3,  # Linear layers of the MLP
            },
        },
        "TRAIN": {
            "LR": 1e-4,
            "WEIGHT_DECAY": 1e-4,
            "EPOCH": 500,  # paper
            "LR_DROP_EPOCH": 400,  # paper: LR x 0.1 after 400 epochs
            "BATCH_SIZE": 16,  # per GPU (paper: 16 x 8 GPUs)
            "NUM_WORKER": 10,
            "OPTIMIZER": "ADAMW",
            "BACKBONE_MULTIPLIER": 0.1,  # LR factor of the pretrained encoder weights
            "CE_WEIGHT": 1.0,  # paper: lambda_ce
            "GIOU_WEIGHT": 5.0,  # paper: lambda_iou
            "PRINT_INTERVAL": 50,
            "VAL_EPOCH_INTERVAL": 20,
            "GRAD_CLIP_NORM": 0.1,
            "AMP": False,
            "DROP_PATH_RATE": 0.1,  # encoder stochastic depth (linear over the blocks)
            "SCHEDULER": {"TYPE": "step"},
        },
        "DATA": {
            "SAMPLER_MODE": "causal",
            "MEAN": [0.485, 0.456, 0.406],
            "STD": [0.229, 0.224, 0.225],
            "MAX_SAMPLE_INTERVAL": 200,
            "TRAIN": {
                "DATASETS_NAME": ["LASOT", "GOT10K_vottrain", "COCO17", "TRACKINGNET"],
                "DATASETS_RATIO": [1, 1, 1, 1],
                "SAMPLE_PER_EPOCH": 60000,  # paper: 60k image pairs per epoch
            },
            "VAL": {
                "DATASETS_NAME": ["GOT10K_votval"],
                "DATASETS_RATIO": [1],
                "SAMPLE_PER_EPOCH": 10000,
            },
            "SEARCH": {
                "SIZE": 256,
                "FACTOR": 4.0,
                "CENTER_JITTER": 3.5,
                "SCALE_JITTER": 0.5,
                "NUMBER": 1,  # must be 1 (frame-level training)
            },
            "TEMPLATE": {
                "NUMBER": 2,  # 1 (initial only) or 2 (initial + dynamic, as the paper tracks); trained as tracked
                "SIZE": 256,  # paper: template and search crops have the same size
                "FACTOR": 4.0,  # choice: same context as the search, so the target has the same scale in both
                "CENTER_JITTER": 0.0,
                "SCALE_JITTER": 0.0,
                "ORDER": "official",  # irrelevant here: the template slots share one position embedding
            },
        },
        "TEST": {
            "TEMPLATE_FACTOR": 4.0,
            "TEMPLATE_SIZE": 256,
            "SEARCH_FACTOR": 4.0,
            "SEARCH_SIZE": 256,
            "EPOCH": 500,  # checkpoint epoch the tracker loads
            "UPDATE_INTERVAL": 1,  # paper: the dynamic template is replaced every frame
            # Hanning window penalty: p_k * ((1 - W) + W * hann_k); 1.0 = the paper's direct multiplication, 0 = off.
            "WINDOW_WEIGHT": 1.0,
            # The window is a motion prior on the centre (cx, cy); True also applies it to w and h.
            "WINDOW_ON_SIZE": False,
        },
    }


def fartrack_errors(cfg: Any) -> list[str]:
    """Constraints of the keys of :func:`fartrack_schema` (and the sparse schema) beyond the shared ones."""
    model = cfg.MODEL
    errors = choice_errors([("MODEL.COORD_EMBED_INIT", model.COORD_EMBED_INIT, ("kaiming", "sincos"))])
    for key in ("TRAIN_PRUNE_RATIO", "TEST_PRUNE_RATIO"):
        if not 0.0 <= model.SPARSE[key] < 1.0:
            errors.append(f"MODEL.SPARSE.{key} must be in [0, 1), got {model.SPARSE[key]}")
    if model.BACKBONE.TYPE != FARTRACK_BACKBONE:
        errors.append(f"MODEL.BACKBONE.TYPE must be '{FARTRACK_BACKBONE}' (the official model hard-wires width 192), "
                      f"got '{model.BACKBONE.TYPE}'")
    if model.EXTENSION < 0:
        errors.append(f"MODEL.EXTENSION must be >= 0, got {model.EXTENSION}")
    max_depth = NUM_BASE_BLOCKS + model.EXTENSION
    if not 1 <= model.DEPTH <= max_depth:
        errors.append(f"MODEL.DEPTH must be in [1, {max_depth}] (12 + MODEL.EXTENSION), got {model.DEPTH}")
    return errors


def fastseqtrack_errors(cfg: Any) -> list[str]:
    """Constraints of the keys of :func:`fastseqtrack_schema` beyond the shared ones."""
    model, data, test = cfg.MODEL, cfg.DATA, cfg.TEST
    errors = []
    for section, key in (("BACKBONE", "EMBED_DIM"), ("BACKBONE", "DEPTH"), ("BACKBONE", "NUM_HEADS"),
                         ("DECODER", "LAYERS"), ("DECODER", "EMBED_DIM"), ("DECODER", "NUM_HEADS"),
                         ("HEAD", "NUM_LAYERS")):
        if model[section][key] < 1:
            errors.append(f"MODEL.{section}.{key} must be >= 1, got {model[section][key]}")
    for section in ("BACKBONE", "DECODER"):
        dim, heads = model[section].EMBED_DIM, model[section].NUM_HEADS
        if heads >= 1 and dim % heads:
            errors.append(f"MODEL.{section}.EMBED_DIM ({dim}) must be a multiple of MODEL.{section}.NUM_HEADS "
                          f"({heads})")
        # The fixed 2-D sin-cos tables (scratch position embeddings, decoder key positions) need 4 | dim.
        if dim % 4:
            errors.append(f"MODEL.{section}.EMBED_DIM ({dim}) must be a multiple of 4")
    errors += choice_errors([("MODEL.DECODER.EXIT_SCORE", model.DECODER.EXIT_SCORE, ("sum", "mean"))])
    if model.HEAD.N_BINS < 2:
        errors.append(f"MODEL.HEAD.N_BINS must be >= 2, got {model.HEAD.N_BINS}")
    if data.TEMPLATE.NUMBER not in (1, 2):
        errors.append(f"DATA.TEMPLATE.NUMBER must be 1 (initial template) or 2 (initial + dynamic), "
                      f"got {data.TEMPLATE.NUMBER}")
    if data.SEARCH.NUMBER != 1:
        errors.append(f"DATA.SEARCH.NUMBER must be 1 (frame-level training), got {data.SEARCH.NUMBER}")
    if test.UPDATE_INTERVAL < 1:
        errors.append(f"TEST.UPDATE_INTERVAL must be >= 1, got {test.UPDATE_INTERVAL}")
    if not 0.0 <= test.WINDOW_WEIGHT <= 1.0:
        errors.append(f"TEST.WINDOW_WEIGHT must be in [0, 1], got {test.WINDOW_WEIGHT}")
    if model.DECODER.TAU != model.DECODER.TAU:  # NaN would silently disable every exit
        errors.append("MODEL.DECODER.TAU must be a number, got nan")
    return errors
