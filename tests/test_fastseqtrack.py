"""FastSeqTrack: parameter-sharing exits, the tau rule, one-pass decoding, every config training through
tracking/train.py and tracking real frames on CPU, exit files from tracking/test.py and their distribution in
tracking/analysis_results.py."""
from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from benchmark_fixtures import write_got10k
from lib.config.loader import ConfigError, load_config
from lib.families import build_network, get_family
from lib.models.fastseqtrack import ExitDecision, hanning_window
from lib.models.fastseqtrack.layers import EmbeddingToWord
from lib.models.fastseqtrack.weights import load_network_weights, load_pretrained_encoder
from lib.test.analysis.exits import exit_counts, read_exit_file
from lib.test.evaluation import environment as test_env
from lib.test.evaluation.data import Sequence
from lib.test.evaluation.running import TrackerSpec, build_tracker, read_rgb, track_sequence
from lib.test.tracker.fastseqtrack import FastSeqTrackParams, FastSeqTrackTracker
from lib.train.data.processing import box_in_crop
from lib.train.admin.environment import LOCAL_FILE_ENV as TRAIN_LOCAL_FILE_ENV
from lib.train.fastseqtrack import fastseqtrack_loss
from lib.utils.checkpoint import CheckpointError, load_checkpoint_file
from lib.utils.crop import sample_target
from lib.utils.tokens import decode_argmax_plain, quantize
from train_fixtures import write_got10k_train

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real-sequences"
SCRIPT = "fastseqtrack"
NET_CLASS_NAME = get_family(SCRIPT).net_class_name
CONFIGS = ("fastseqtrack_b256", "fastseqtrack_tiny_224", "fastseqtrack_quickstart")
FRAMES = 24  # the causal sampler needs at least 20 frames

#: A few quick iterations: 2 batches of 2, validation every epoch, no workers.
FAST_TRAIN_OPTS = ["TRAIN.EPOCH", "1", "TRAIN.BATCH_SIZE", "2", "DATA.TRAIN.SAMPLE_PER_EPOCH", "4",
                   "TRAIN.NUM_WORKER", "0", "DATA.TRAIN.DATASETS_NAME", "[GOT10K_all]", "DATA.TRAIN.DATASETS_RATIO",
                   "[1]", "DATA.VAL.DATASETS_NAME", "[GOT10K_official_val]", "DATA.VAL.SAMPLE_PER_EPOCH", "2",
                   "TRAIN.VAL_EPOCH_INTERVAL", "1"]
#: Per config, what keeps the CPU run short (one encoder layer instead of 12; everything else as configured, except
#: ViT-B's crops): ViT-B keeps its widths (768 / 256, 4000 words) on 64 px crops; Tiny keeps FARTrack's crops.
SIZE_OPTS = {
    "fastseqtrack_b256": ["MODEL.BACKBONE.DEPTH", "1", "DATA.SEARCH.SIZE", "64", "DATA.TEMPLATE.SIZE", "64",
                          "TEST.SEARCH_SIZE", "64", "TEST.TEMPLATE_SIZE", "64"],
    "fastseqtrack_tiny_224": ["MODEL.BACKBONE.DEPTH", "1"],
    "fastseqtrack_quickstart": ["MODEL.BACKBONE.DEPTH", "1"],
}


@pytest.fixture(autouse=True)
def one_thread():
    """These networks are small: one intra-op thread is as fast, and does not spin against the other tests' workers
    on a shared CPU (two threads made the small-tensor tests several times slower there)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_script(name: str):
    """A ``tracking/<name>.py`` script as a module, to call its ``main(argv)`` in this process."""
    spec = importlib.util.spec_from_file_location(f"tracking_{name}", REPO / "tracking" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_net(layers: int = 3, n_bins: int = 64, seed: int = 0, exit_score: str = "sum"):
    """A small random network (quickstart sizes, one encoder layer) with weights spread so that the exits
    disagree and their scores vary between samples."""
    cfg = load_config(SCRIPT, "fastseqtrack_quickstart", ["MODEL.BACKBONE.DEPTH", 1, "MODEL.DECODER.LAYERS", layers,
                                                           "MODEL.HEAD.N_BINS", n_bins,
                                                           "MODEL.DECODER.EXIT_SCORE", exit_score])
    torch.manual_seed(seed)
    net = build_network(cfg).eval()
    with torch.no_grad():
        for name, param in net.named_parameters():
            if name.startswith(("decoder", "bottleneck")) and name.endswith("weight") and param.dim() == 2:
                param.normal_(0, 0.3)
        net.head.mlp[-1].weight.normal_(0, 1.5)
    return net


def inputs(net, batch: int, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    spec = net.spec
    templates = torch.randn(batch, spec.num_templates, 3, spec.template_size, spec.template_size, generator=gen)
    return templates, torch.randn(batch, 3, spec.search_size, spec.search_size, generator=gen)


def real_sequence(name: str, num_frames: int) -> Sequence:
    frames = sorted(str(p) for p in (REAL / name).glob("*.jpg"))[:num_frames]
    gt = np.loadtxt(REAL / name / "groundtruth.txt", delimiter=",")[: len(frames)]
    return Sequence(name=name, frames=frames, ground_truth_rect=gt, dataset="otb")


# ------------------------------------------------------------------ model
def test_exits_share_one_embedding_to_word_network():
    net = small_net(layers=2)
    heads = [m for m in net.modules() if isinstance(m, EmbeddingToWord)]
    assert heads == [net.head]
    # One more decoder layer adds one more exit but exactly one decoder layer's parameters: no per-exit head.
    count = lambda n: sum(p.numel() for p in n.parameters())  # noqa: E731
    assert count(small_net(layers=3)) - count(net) == count(net.decoder[0])
    templates, search = inputs(net, 2)
    with torch.no_grad():
        before = net(templates, search)["exit_logits"]
        net.head.mlp[-1].bias[5] += 3.0  # one shared weight moves the logits of every exit alike
        after = net(templates, search)["exit_logits"]
    assert len(before) == net.spec.num_exits == 3
    for old, new in zip(before, after):
        assert torch.allclose(new[..., 5] - old[..., 5], torch.full_like(old[..., 5], 3.0), atol=1e-4)
        assert torch.allclose(new[..., :5], old[..., :5])


def expected_exits(exit_logits, window, tau):
    """The exit rule applied to the full forward: first exit with score > tau, else the last."""
    scores = torch.stack([decode[1] for decode in exit_logits], dim=1)  # (B, E)
    fired = scores > tau
    last = scores.shape[1] - 1
    return torch.where(fired.any(dim=1), fired.float().argmax(dim=1), torch.full_like(fired[:, 0], last,
                                                                                      dtype=torch.long))


def test_one_pass_decoding_equals_the_exit_rule_and_higher_tau_never_exits_earlier():
    net = small_net(layers=3)
    templates, search = inputs(net, 8)
    window = hanning_window(net.spec.n_bins, 0.5)
    with torch.no_grad():
        logits = net(templates, search)["exit_logits"]
    decodes = [net.decode_logits(l, window) for l in logits]
    scores = torch.stack([d[1] for d in decodes]).flatten().sort().values
    # Thresholds between every two distinct scores, so each sample's exit changes as tau sweeps past its scores.
    gaps = scores[1:] - scores[:-1]
    taus = [0.0, *((scores[1:] + scores[:-1]) / 2)[gaps > 1e-5].tolist(), 0.999, 1.0, 1.6]
    previous = None
    seen = set()
    with torch.no_grad():
        memory, tokens = net.encode(templates, search)
    for tau in taus:
        decision = net.decode_with_exits(memory, tokens, tau=tau, window=window)
        assert torch.equal(decision.exit, expected_exits(decodes, window, tau))
        for b, e in enumerate(decision.exit.tolist()):
            assert torch.equal(decision.box[b], decodes[e][0][b])
            assert torch.isclose(decision.score[b], decodes[e][1][b], atol=1e-6)
        if previous is not None:
            assert (decision.exit >= previous).all(), f"tau {tau} exits earlier"
        previous = decision.exit
        seen.update(decision.exit.tolist())
    assert seen == {0, 1, 2, 3}  # the sweep exercised every exit


def make_certain(net) -> None:
    """A head that puts probability exactly 1 on one word for every coordinate (no window): the top score."""
    with torch.no_grad():
        net.head.mlp[-1].weight.zero_()
        net.head.mlp[-1].bias.zero_()
        net.head.mlp[-1].bias[7] = 1e4


def decoder_calls(net):
    """(list filled with the batch size of every decoder layer call, hooks to remove)."""
    calls = []
    return calls, [layer.register_forward_hook(lambda m, args, out: calls.append(out.shape[0]))
                   for layer in net.decoder]


def test_literal_mean_reading_never_exits_at_the_papers_tau():
    """EXIT_SCORE mean (the paper's words read literally): the score is at most 1, so tau >= 1 -- the paper's 1.6
    included -- always runs the whole decoder, and any tau below 1 exits before it when the head is certain."""
    net = small_net(layers=2, exit_score="mean")
    templates, search = inputs(net, 4)
    calls, hooks = decoder_calls(net)
    try:
        for tau in (1.0 + 1e-6, 1.6, 10.0):
            calls.clear()
            decision = net.track(templates, search, tau=tau, window=hanning_window(net.spec.n_bins))
            assert decision.exit.tolist() == [2] * 4 and calls == [4, 4]
        make_certain(net)
        for tau, exit_index, layers_run in ((1.0, 2, [4, 4]), (1.6, 2, [4, 4]), (0.999, 0, [])):
            calls.clear()
            decision = net.track(templates, search, tau=tau)
            assert decision.score.tolist() == [1.0] * 4
            assert decision.exit.tolist() == [exit_index] * 4 and calls == layers_run
    finally:
        for hook in hooks:
            hook.remove()


def test_sum_reading_is_the_default_and_the_papers_tau_asks_for_an_average_of_0_4():
    """EXIT_SCORE sum (the configs' default): the score is the sum of the 4 top probabilities, in [0, 4]; tau 1.6
    fires exactly when their average is above 0.4, and only tau >= 4 disables the exits."""
    for config in CONFIGS:
        cfg = load_config(SCRIPT, config)
        assert (cfg.MODEL.DECODER.EXIT_SCORE, cfg.MODEL.DECODER.TAU) == ("sum", 1.6)
    net = small_net(layers=2)
    assert net.spec.exit_score == "sum"
    logits = torch.full((3, 4, net.spec.n_bins), -1e4)
    for sample, top in enumerate((0.39, 0.41, 0.9)):  # each coordinate: `top` on word 5, the rest on words 9..11
        logits[sample, :, 5] = math.log(top)
        logits[sample, :, 9:12] = math.log((1.0 - top) / 3)
    _, score = net.decode_logits(logits)
    assert torch.allclose(score, torch.tensor([1.56, 1.64, 3.6]), atol=1e-5)
    assert (score > 1.6).tolist() == [False, True, True]
    mean_net = small_net(layers=2, exit_score="mean")
    assert torch.allclose(mean_net.decode_logits(logits)[1], score / 4)
    templates, search = inputs(net, 4)
    make_certain(net)
    calls, hooks = decoder_calls(net)
    try:
        for tau, exit_index, layers_run in ((1.6, 0, []), (3.999, 0, []), (4.0, 2, [4, 4]), (10.0, 2, [4, 4])):
            calls.clear()
            decision = net.track(templates, search, tau=tau)
            assert decision.score.tolist() == [4.0] * 4
            assert decision.exit.tolist() == [exit_index] * 4 and calls == layers_run
    finally:
        for hook in hooks:
            hook.remove()


def test_one_pass_boxes_equal_the_full_decoder_when_no_exit_fires():
    net = small_net(layers=2, n_bins=4000)
    templates, search = inputs(net, 3, seed=5)
    window = hanning_window(net.spec.n_bins)
    with torch.no_grad():
        full = net(templates, search)["logits"]
    box, score = net.decode_logits(full, window)
    decision = net.track(templates, search, tau=1.6, window=window)
    assert torch.equal(decision.box, box) and torch.allclose(decision.score, score)
    assert torch.allclose(decision.logits, full, atol=1e-5)
    assert decision.exit.tolist() == [2, 2, 2]
    # cached template tokens (the tracker's path) give the same decision
    tokens = net.embed_templates(templates)
    cached = net.track(None, search, tau=1.6, window=window, template_tokens=tokens)
    assert torch.equal(cached.box, decision.box)


def test_hanning_window_penalises_the_centre_coordinates():
    window = hanning_window(9)
    hann = torch.from_numpy(np.hanning(9)).float()
    assert torch.equal(window[0], hann) and torch.equal(window[1], hann)
    assert torch.equal(window[2:], torch.ones(2, 9))
    assert torch.allclose(hanning_window(9, 0.25)[0], 0.75 + 0.25 * hann)
    assert torch.equal(hanning_window(9, 0.0), torch.ones(4, 9))
    assert torch.equal(hanning_window(9, on_size=True)[3], hann)


def test_loss_supervises_every_exit():
    gt = torch.tensor([[0.5, 0.4, 0.25, 0.3], [0.52, 0.6, 0.1, 0.2]])
    words = (gt * 3999).floor().long()
    perfect = torch.full((2, 4, 4000), -30.0).scatter(2, words.unsqueeze(-1), 30.0)
    random = torch.randn(2, 4, 4000, requires_grad=True)
    loss, stats = fastseqtrack_loss([random, perfect.clone().requires_grad_()], gt, ce_weight=1.0, giou_weight=5.0)
    assert stats["Loss/ce_1"] < 1e-6 and stats["Loss/giou_1"] < 0.01 and stats["IoU_1"] > 0.99
    assert stats["Loss/ce_0"] > 1.0 and stats["IoU"] == stats["IoU_1"]
    assert np.isclose(stats["Loss/total"], stats["Loss/ce"] + 5.0 * stats["Loss/giou"], rtol=1e-5)
    loss.backward()
    assert random.grad.abs().sum() > 0


def test_config_validation():
    with pytest.raises(ConfigError, match="DATA.TEMPLATE.NUMBER"):
        load_config(SCRIPT, "fastseqtrack_tiny_224", ["DATA.TEMPLATE.NUMBER", 5])
    with pytest.raises(ConfigError, match="MODEL.DECODER.EMBED_DIM"):
        load_config(SCRIPT, "fastseqtrack_tiny_224", ["MODEL.DECODER.EMBED_DIM", 190])
    with pytest.raises(ConfigError, match="MODEL.DECODER.EXIT_SCORE"):
        load_config(SCRIPT, "fastseqtrack_tiny_224", ["MODEL.DECODER.EXIT_SCORE", "max"])
    with pytest.raises(ConfigError, match="unknown key 'MODEL.BINS'"):
        load_config(SCRIPT, "fastseqtrack_tiny_224", ["MODEL.BINS", 300])
    cfg = load_config(SCRIPT, "fastseqtrack_b256")
    assert (cfg.MODEL.HEAD.N_BINS, cfg.MODEL.DECODER.LAYERS, cfg.MODEL.DECODER.TAU) == (4000, 2, 1.6)
    assert (cfg.TRAIN.CE_WEIGHT, cfg.TRAIN.GIOU_WEIGHT) == (1.0, 5.0)


def test_b256_builds_at_full_size_and_runs_one_forward():
    net = build_network(load_config(SCRIPT, "fastseqtrack_b256")).eval()
    decoder = sum(p.numel() for name, p in net.named_parameters() if not name.startswith("backbone"))
    assert decoder == 3_463_840  # decoder + bottleneck + head: the paper's 3.464 M (Table 1)
    assert net.spec.embed_dim == 768 and len(net.backbone.blocks) == 12 and net.spec.search_size == 256
    templates, search = inputs(net, 1)
    decision = net.track(templates, search)
    assert decision.box.shape == (1, 4) and decision.exit.tolist() == [2]  # tau 1.6: far above an untrained head


def test_encoder_loads_timm_vit_weights(tmp_path):
    cfg = load_config(SCRIPT, "fastseqtrack_quickstart", ["MODEL.BACKBONE.DEPTH", 2])
    torch.manual_seed(0)
    vit = VisionTransformer(img_size=224, patch_size=16, embed_dim=192, depth=2, num_heads=3)
    torch.save({"model": vit.state_dict()}, tmp_path / "vit.pth")
    net = build_network(cfg)
    load_pretrained_encoder(net, tmp_path / "vit.pth")
    assert torch.equal(net.backbone.blocks[1].mlp.fc2.weight, vit.blocks[1].mlp.fc2.weight)
    assert torch.equal(net.backbone.patch_embed.proj.weight, vit.patch_embed.proj.weight)
    grid = vit.pos_embed[:, 1:].reshape(1, 14, 14, 192).permute(0, 3, 1, 2)
    expected = torch.nn.functional.interpolate(grid, size=(4, 4), mode="bicubic", align_corners=False)
    assert torch.allclose(net.backbone.pos_embed_x, expected.flatten(2).transpose(1, 2))
    wide = VisionTransformer(img_size=224, patch_size=16, embed_dim=384, depth=1, num_heads=6)
    torch.save(wide.state_dict(), tmp_path / "wide.pth")
    with pytest.raises(CheckpointError, match="do not fit the encoder"):
        load_pretrained_encoder(build_network(cfg), tmp_path / "wide.pth")


def test_tracker_maps_a_training_target_back_to_the_image_box(monkeypatch):
    """The words the loss teaches for a GT box (training crop geometry) decode, through the tracker, to that box."""
    cfg = load_config(SCRIPT, "fastseqtrack_quickstart", ["MODEL.BACKBONE.DEPTH", 1])
    net = build_network(cfg)
    tracker = FastSeqTrackTracker(net, FastSeqTrackParams.from_config(cfg))
    seq = real_sequence("otb_Crossing", 2)
    first, second = (read_rgb(frame) for frame in seq.frames)
    init, target = np.asarray(seq.init_bbox(), dtype=float), seq.ground_truth_rect[1]
    tracker.initialize(first, {"init_bbox": list(init)})
    _, resize_factor = sample_target(second, init, cfg.TEST.SEARCH_FACTOR, cfg.TEST.SEARCH_SIZE)
    x, y, w, h = box_in_crop(target, init, resize_factor, cfg.DATA.SEARCH.SIZE)
    n_bins = net.spec.n_bins
    words = quantize(torch.tensor([[x + w / 2, y + h / 2, w, h]]), n_bins, 1)
    decision = ExitDecision(box=decode_argmax_plain(words, n_bins, 1).float(), exit=torch.tensor([1]),
                            score=torch.tensor([2.8]), logits=torch.zeros(1, 4, n_bins))
    monkeypatch.setattr(net, "track", lambda *args, **kwargs: decision)
    out = tracker.track(second)
    # Training puts the crop centre at (size - 1) / 2, the tracker (as FARTrack's) at size / 2: half a crop pixel.
    assert np.allclose(out["target_bbox"], target, atol=1.0 / resize_factor)
    # best_score is the average top probability (a [0, 1] confidence): the "sum" exit score / 4
    assert out["exit"] == 1 and out["best_score"] == pytest.approx(0.7)


# ------------------------------------------------------------------ training, tracking, exit statistics
@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Synthetic training trees, a GOT-10k benchmark tree and isolated path settings for this module."""
    base = tmp_path_factory.mktemp("fastseqtrack")
    write_got10k_train(base / "data" / "got10k" / "train", num_sequences=3, num_frames=FRAMES)
    write_got10k_train(base / "data" / "got10k" / "val", num_sequences=2, num_frames=FRAMES, prefix="GOT-10k_Val")
    write_got10k(base / "bench" / "got10k", num_sequences=2, num_frames=5)
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("FARTRACK_"):
                patch.delenv(name)
        patch.setenv(TRAIN_LOCAL_FILE_ENV, str(base / "absent_train_local.py"))
        patch.setenv(test_env.LOCAL_FILE_ENV, str(base / "absent_test_local.py"))
        patch.setenv("FARTRACK_DATA_DIR", str(base / "data"))
        patch.setenv("FARTRACK_SAVE_DIR", str(base / "save"))
        yield base


@pytest.fixture(scope="module")
def trained(workspace):
    """Every config trained for a few iterations through tracking/train.py: config -> last checkpoint."""
    train = load_script("train")
    out = {}
    for config in CONFIGS:
        argv = ["--script", SCRIPT, "--config", config, "--save_dir", str(workspace / "out"), "--device", "cpu",
                "--opts", *FAST_TRAIN_OPTS, *SIZE_OPTS[config]]
        assert train.main(argv) == 0
        out[config] = (workspace / "out" / "checkpoints" / "train" / SCRIPT / config
                       / f"{NET_CLASS_NAME}_ep0001.pth.tar")
    return out


@pytest.mark.parametrize("config", CONFIGS)
def test_each_config_trains_and_tracks_real_frames(trained, config):
    checkpoint = load_checkpoint_file(trained[config])
    assert checkpoint["net_type"] == "FastSeqTrack" and checkpoint["actor_type"] == "FastSeqTrackActor"
    stats = checkpoint["stats"]["1"]
    assert np.isfinite(stats["train"]["Loss/total"]) and "val" in stats
    assert {"Loss/ce_0", "Loss/ce_2", "Loss/giou_2", "IoU_0"} <= set(stats["train"])
    tracker = build_tracker(TrackerSpec(SCRIPT, config, str(trained[config]), opts=tuple(SIZE_OPTS[config])), "cpu")
    seq = real_sequence("otb_Crossing", 4)
    exits: list[int] = []
    boxes, _, scores = track_sequence(tracker, seq, exits)
    height, width = read_rgb(seq.frames[0]).shape[:2]
    assert len(boxes) == 4 and boxes[0] == seq.init_bbox()
    for x, y, w, h in boxes[1:]:
        assert 0 <= x <= width - 10 and 0 <= y <= height - 10 and w >= 10 and h >= 10
    assert all(0.0 <= s <= 1.0 for s in scores[1:])
    assert exits == [-1, 2, 2, 2]  # the configs' tau 1.6 always runs both decoder layers


def test_test_script_writes_exits_under_a_tau_label_and_analysis_prints_them(trained, workspace, monkeypatch,
                                                                              capsys):
    monkeypatch.setenv("FARTRACK_DATA_DIR", str(workspace / "bench"))
    test, analysis = load_script("test"), load_script("analysis_results")
    checkpoint = str(trained["fastseqtrack_quickstart"])
    common = ["fastseqtrack", "fastseqtrack_quickstart", "--dataset", "got10k_val", "--device", "cpu",
              "--checkpoint", checkpoint, "--no_progress"]
    size = SIZE_OPTS["fastseqtrack_quickstart"]
    assert test.main([*common, "--opts", *size]) == 0
    assert test.main([*common, "--opts", *size, "MODEL.DECODER.TAU", "0.0"]) == 0
    assert test.main([*common, "--depth", "1"]) == 2
    results = workspace / "save" / "test" / "tracking_results" / SCRIPT
    default_exits = sorted((results / "fastseqtrack_quickstart" / "got10k").glob("*_exits.txt"))
    early_exits = sorted((results / "fastseqtrack_quickstart_tau0" / "got10k").glob("*_exits.txt"))
    assert len(default_exits) == len(early_exits) == 2
    assert read_exit_file(default_exits[0]).tolist() == [-1, 2, 2, 2, 2]
    assert exit_counts(early_exits) == {0: 8}  # tau 0: any positive score exits before the decoder
    capsys.readouterr()
    assert analysis.main(["--tracker", f"{SCRIPT}:fastseqtrack_quickstart", "--tracker",
                          f"{SCRIPT}:fastseqtrack_quickstart_tau0", "--dataset", "got10k_val"]) == 0
    printed = capsys.readouterr().out
    assert "fastseqtrack:fastseqtrack_quickstart: early exits over 8 tracked frames" in printed
    assert "| 2 | 2 | 8 | 100.00 |" in printed and "| 0 | 0 | 8 | 100.00 |" in printed


def test_checkpoint_loads_strictly(trained):
    cfg = load_config(SCRIPT, "fastseqtrack_tiny_224", SIZE_OPTS["fastseqtrack_tiny_224"])
    report = load_network_weights(build_network(cfg), trained["fastseqtrack_tiny_224"])
    assert report.ok
