"""Training losses (spec section 5): SIoU, weighted CE, adjacent-layer KL and the three stage combinations."""
import math

import pytest
import torch
import torch.nn.functional as F

from lib.train.losses import (
    class_weights,
    layer_kl,
    siou_loss,
    stage1_loss,
    stage2_loss,
    stage3_loss,
    weighted_cross_entropy,
)
from lib.utils.tokens import decode_argmax_plain, decode_expectation, quantize, quantize_continuous

EPS = 1e-7


def siou(pred, target):
    loss, iou = siou_loss(torch.tensor([pred], dtype=torch.float64), torch.tensor([target], dtype=torch.float64))
    return loss.item(), iou.item()


# ----------------------------------------------------------------------------------------------- SIoU, by hand

def test_siou_identical_boxes():
    loss, iou = siou([0.1, 0.2, 0.5, 0.6], [0.1, 0.2, 0.5, 0.6])
    assert iou == pytest.approx(1.0)
    assert loss == pytest.approx(0.0, abs=1e-12)


def test_siou_pure_horizontal_shift():
    # target [0,1]^2, prediction shifted right by 0.5: overlap 0.5, union 1.5
    # dcy = 0 -> angle = 1 - 2 sin^2(-pi/4) = 0 -> gamma = 2; enclosing width 1.5; shapes equal -> Omega = 0
    rho_x = (0.5 / (1.5 + EPS)) ** 2
    expected = 1 - 1 / 3 + (1 - math.exp(-2 * rho_x)) / 2
    loss, iou = siou([0.5, 0.0, 1.5, 1.0], [0.0, 0.0, 1.0, 1.0])
    assert iou == pytest.approx(1 / 3)
    assert loss == pytest.approx(expected, abs=1e-9)


def test_siou_disjoint_boxes_clamp_each_overlap_side():
    # both overlap sides are negative (-1 and -2): each is clamped to 0, so IoU = 0 (not (-1)*(-2)/...)
    pred, target = [2.0, 3.0, 4.0, 4.0], [0.0, 0.0, 1.0, 1.0]
    dcx, dcy = 0.5 - 3.0, 0.5 - 3.5
    sigma = math.hypot(dcx, dcy)
    # independent form of the angle cost: 1 - 2 sin^2(a - pi/4) = sin(2a) = 2 s sqrt(1 - s^2)
    s = abs(dcy) / sigma
    angle = 2 * s * math.sqrt(1 - s * s)
    gamma = 2 - angle
    distance = (1 - math.exp(-gamma * (dcx / 4) ** 2)) + (1 - math.exp(-gamma * (dcy / 4) ** 2))
    shape = (1 - math.exp(-abs(2 - 1) / (2 + EPS))) ** 4 + (1 - math.exp(0)) ** 4
    loss, iou = siou(pred, target)
    assert iou == 0.0
    assert loss == pytest.approx(1 + (shape + distance) / 2, abs=1e-6)


def test_siou_concentric_boxes_only_pay_shape_and_iou():
    # same centre (1, 1); prediction 1x1 inside target 2x2: IoU 1/4, omega_w = omega_h = 1/(2 + eps), Delta = 0
    expected = 1 - 0.25 + 2 * (1 - math.exp(-1 / (2 + EPS))) ** 4 / 2
    loss, iou = siou([0.5, 0.5, 1.5, 1.5], [0.0, 0.0, 2.0, 2.0])
    assert iou == pytest.approx(0.25)
    assert loss == pytest.approx(expected, abs=1e-9)


def test_siou_averages_over_the_batch_and_returns_per_box_iou():
    pred = torch.tensor([[0.5, 0.0, 1.5, 1.0], [0.5, 0.5, 1.5, 1.5], [0.1, 0.2, 0.5, 0.6]])
    target = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0], [0.1, 0.2, 0.5, 0.6]])
    loss, iou = siou_loss(pred, target)
    singles = [siou_loss(p[None], t[None])[0] for p, t in zip(pred, target)]
    assert iou.shape == (3,)
    assert torch.allclose(iou, torch.tensor([1 / 3, 0.25, 1.0]))
    assert loss.item() == pytest.approx(torch.stack(singles).mean().item(), abs=1e-6)


def test_siou_gradient_is_finite():
    pred = torch.tensor([[0.2, 0.3, 0.7, 0.9]], requires_grad=True)
    loss, _ = siou_loss(pred, torch.tensor([[0.25, 0.2, 0.6, 0.8]]))
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


# ----------------------------------------------------------------------------------------------- weighted CE

def test_class_weights():
    w = class_weights()
    assert w.shape == (605,)
    assert torch.all(w[:600] == 1) and torch.allclose(w[600:], torch.full((5,), 0.1))


def test_weighted_ce_matches_torch_and_the_weighted_mean():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 605)
    targets = torch.tensor([[1, 600, 599, 604], [0, 5, 602, 10], [300, 301, 302, 603]])
    weights = torch.ones(605)
    weights[600:] = 0.1
    flat_logits, flat_targets = logits.reshape(-1, 605), targets.reshape(-1)
    reference = F.cross_entropy(flat_logits, flat_targets, weight=weights)
    nll = F.cross_entropy(flat_logits, flat_targets, reduction="none")
    by_hand = (weights[flat_targets] * nll).sum() / weights[flat_targets].sum()
    ours = weighted_cross_entropy(logits, targets)
    assert torch.allclose(ours, reference) and torch.allclose(ours, by_hand)
    assert torch.allclose(weighted_cross_entropy(flat_logits, flat_targets), reference)


def test_weighted_ce_is_the_plain_mean_for_coordinate_targets():
    torch.manual_seed(1)
    logits = torch.randn(2, 4, 605)
    targets = torch.randint(0, 600, (2, 4))
    assert torch.allclose(weighted_cross_entropy(logits, targets), F.cross_entropy(logits.reshape(-1, 605),
                                                                                   targets.reshape(-1)))


# ----------------------------------------------------------------------------------------------- KL

def test_kl_is_zero_for_identical_coordinate_logits():
    torch.manual_seed(2)
    student = torch.randn(2, 4, 605)
    teacher = student.clone()
    teacher[..., 600:] += 5.0  # special ids are not part of the distributions
    assert layer_kl(student, teacher).abs().item() < 1e-6


def test_kl_is_non_negative():
    torch.manual_seed(3)
    for _ in range(5):
        assert layer_kl(torch.randn(3, 4, 605) * 3, torch.randn(3, 4, 605) * 3).item() >= 0


def test_kl_gradient_flows_only_into_the_student():
    torch.manual_seed(4)
    student = torch.randn(2, 4, 605, requires_grad=True)
    teacher = torch.randn(2, 4, 605, requires_grad=True)
    layer_kl(student, teacher).backward()
    assert teacher.grad is None
    assert student.grad[..., :600].abs().sum() > 0
    assert torch.all(student.grad[..., 600:] == 0)


def test_kl_batchmean_divides_by_the_batch_dimension():
    torch.manual_seed(5)
    student, teacher = torch.randn(3, 4, 605), torch.randn(3, 4, 605)
    p = teacher[..., :600].softmax(-1)
    by_hand = (p * (p.log() - student[..., :600].log_softmax(-1))).sum() / 3
    assert layer_kl(student, teacher).item() == pytest.approx(by_hand.item(), rel=1e-5)
    # duplicating the batch leaves the per-sample mean unchanged
    doubled = layer_kl(torch.cat([student, student]), torch.cat([teacher, teacher]))
    assert doubled.item() == pytest.approx(by_hand.item(), rel=1e-5)


# ----------------------------------------------------------------------------------------------- stages

GT = torch.tensor([[0.4, 0.35, 0.6, 0.65], [0.1, -0.7, 0.9, 1.2]])


def frame_level_terms(logits, gt):
    tokens = quantize(gt)
    siou_value, iou = siou_loss(decode_expectation(logits), decode_argmax_plain(tokens))
    return siou_value, weighted_cross_entropy(logits, tokens), iou


def test_stage1_total_uses_the_quantised_target():
    torch.manual_seed(6)
    logits = torch.randn(2, 4, 605, requires_grad=True)
    total, stats = stage1_loss(logits, GT)
    siou_value, ce, iou = frame_level_terms(logits, GT)
    assert total.item() == pytest.approx(2 * siou_value.item() + 2 * ce.item(), rel=1e-6)
    assert stats["Loss/siou"] == pytest.approx(siou_value.item()) and stats["Loss/ce"] == pytest.approx(ce.item())
    assert stats["IoU"] == pytest.approx(iou.mean().item())
    assert all(isinstance(v, float) for v in stats.values())
    # the quantised target differs from the raw GT, and the raw one would give another loss
    assert not torch.allclose(decode_argmax_plain(quantize(GT)), GT.clamp(-0.5, 1.5))
    raw = siou_loss(decode_expectation(logits), GT.clamp(-0.5, 1.5))[0]
    assert raw.item() != pytest.approx(siou_value.item(), abs=1e-7)
    total.backward()
    assert torch.isfinite(logits.grad).all()


def test_stage1_weights_are_keywords():
    torch.manual_seed(7)
    logits = torch.randn(2, 4, 605)
    _, stats = stage1_loss(logits, GT)
    total, _ = stage1_loss(logits, GT, giou_weight=1.0, ce_weight=0.0)
    assert total.item() == pytest.approx(stats["Loss/siou"], rel=1e-6)


def test_stage2_has_eleven_siou_ce_terms_and_ten_kl_terms():
    torch.manual_seed(8)
    layers = [torch.randn(2, 4, 605) for _ in range(11)]
    total, stats = stage2_loss(layers, GT)
    terms = [frame_level_terms(logits, GT) for logits in layers]
    kls = [layer_kl(layers[j], layers[j + 1]) for j in range(10)]
    sious = torch.stack([t[0] for t in terms])
    ces = torch.stack([t[1] for t in terms])
    expected = 2 * sious.mean() + 2 * ces.mean() + 0.01 * torch.stack(kls).mean()
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert sorted(k for k in stats if k.startswith("Loss/siou_")) == sorted(f"Loss/siou_{i}" for i in range(11))
    assert sorted(k for k in stats if k.startswith("Loss/ce_")) == sorted(f"Loss/ce_{i}" for i in range(11))
    assert sorted(k for k in stats if k.startswith("Loss/kl_")) == sorted(f"Loss/kl_{j}" for j in range(10))
    assert stats["Loss/kl_3"] == pytest.approx(kls[3].item(), rel=1e-6)
    assert stats["IoU"] == pytest.approx(terms[-1][2].mean().item())


def test_stage2_with_identical_layers_reduces_to_stage1():
    torch.manual_seed(9)
    logits = torch.randn(2, 4, 605)
    total, stats = stage2_loss([logits] * 11, GT)
    assert stats["Loss/kl"] == pytest.approx(0.0, abs=1e-6)
    assert total.item() == pytest.approx(stage1_loss(logits, GT)[0].item(), rel=1e-6)


def test_stage2_kl_teaches_with_the_deeper_layer_only():
    torch.manual_seed(10)
    layers = [torch.randn(2, 4, 605, requires_grad=True) for _ in range(3)]
    total, _ = stage2_loss(layers, GT, giou_weight=0.0, ce_weight=0.0, kl_weight=1.0)
    total.backward()
    assert layers[0].grad.abs().sum() > 0 and layers[1].grad.abs().sum() > 0
    # the deepest prediction is only ever a (detached) teacher: its SIoU/CE terms are weighted 0 here
    assert torch.all(layers[-1].grad == 0)


def test_stage2_needs_two_predictions():
    with pytest.raises(ValueError):
        stage2_loss([torch.randn(2, 4, 605)], GT)


def test_stage3_ignores_ce_by_default_and_uses_continuous_targets():
    torch.manual_seed(11)
    logits = torch.randn(3, 4, 605, requires_grad=True)
    gt = torch.tensor([[0.4, 0.35, 0.6, 0.65], [0.0, 0.0, 0.0, 0.0], [0.2, 0.3, 1.6, 1.2]])
    total, stats = stage3_loss(logits, gt)
    continuous = quantize_continuous(gt)
    target_box = decode_argmax_plain(continuous)
    pred = decode_expectation(logits)
    siou_value, iou = siou_loss(pred, target_box)
    ce = weighted_cross_entropy(logits, continuous.long())
    assert continuous.long()[2, 2] == 599 and torch.all(continuous.long()[1] == 149)
    assert total.item() == pytest.approx(2 * siou_value.item(), rel=1e-6)
    assert stats["Loss/ce"] == pytest.approx(ce.item(), rel=1e-6)
    assert stats["Loss/l1"] == pytest.approx((pred - target_box).abs().mean().item(), rel=1e-6)
    assert stats["IoU"] == pytest.approx(iou.mean().item(), rel=1e-6)
    with_ce, _ = stage3_loss(logits, gt, ce_weight=2.0, l1_weight=1.0)
    assert with_ce.item() == pytest.approx(total.item() + 2 * stats["Loss/ce"] + stats["Loss/l1"], rel=1e-6)
    total.backward()
    assert torch.isfinite(logits.grad).all()
