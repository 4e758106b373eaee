"""The family records (lib/families.py): what each registers, that behaviour follows network options rather than
family names, and that the package has no import cycle."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

from lib.config.loader import load_config
from lib.families import (FAMILIES, FAMILY_NAMES, OFFICIAL_CONFIGS, UnknownFamilyError, family_of_net_type,
                          get_family)
from lib.models.fartrack.backbone import BackboneSpec
from lib.models.fartrack.network import FARTrackNetwork
from lib.models.fastseqtrack import FastSeqTrackNetwork
from lib.train.actors import FrameActor, SequenceActor
from lib.train.fastseqtrack import FastSeqTrackActor

REPO = Path(__file__).resolve().parents[1]
SMALL = ["MODEL.DEPTH", 6]


def test_official_names_and_stage_chain():
    names = {name: (f.net_class_name, f.actor_class_name, f.previous_stage) for name, f in FAMILIES.items()}
    assert names == {
        "fartrack": ("FARTrack", "FARTrackActor", None),
        "fartrack_distill": ("FARTrackDistill", "FARTrackDistillActor", "fartrack"),
        "fartrack_sparse": ("FARTrackSparse", "FARTrackSparseActor", "fartrack_distill"),
        "fastseqtrack": ("FastSeqTrack", "FastSeqTrackActor", None),
    }
    for family in FAMILIES.values():
        # a stage either starts from another one or initialises its own weights
        assert (family.previous_stage is None) != (family.initialise is None)
        assert family_of_net_type(family.net_class_name) is family
    assert OFFICIAL_CONFIGS == {"fartrack": "fartrack_tiny_224_full", "fartrack_distill": "fartrack_distill_224_full",
                                "fartrack_sparse": "fartrack_sparse_224_full"}
    with pytest.raises(UnknownFamilyError, match="unknown script 'siamfc'"):
        get_family("siamfc")
    with pytest.raises(UnknownFamilyError, match="net_type is 'SiamFC', not one of"):
        family_of_net_type("SiamFC")


@pytest.mark.parametrize("name", [n for n in FAMILY_NAMES if n != "fastseqtrack"])
def test_fartrack_records_set_network_options(name):
    family = get_family(name)
    net = family.build_network(load_config(name, OFFICIAL_CONFIGS[name], SMALL))
    sparse, distill = name == "fartrack_sparse", name == "fartrack_distill"
    assert isinstance(net, FARTrackNetwork) and (net.family, net.net_type) == (name, family.net_class_name)
    assert (net.spec.masked_norm, net.spec.command_renorm, net.template_scores) == (sparse, sparse, sparse)
    assert net.layer_heads_from == (5 if distill else None)
    actor = family.build_actor(net, load_config(name, OFFICIAL_CONFIGS[name], SMALL), torch.device("cpu"))
    assert isinstance(actor, SequenceActor if sparse else FrameActor) and actor.actor_type == family.actor_class_name
    assert family.variant_value(load_config(name, OFFICIAL_CONFIGS[name], SMALL)) == 6  # MODEL.DEPTH
    params = family.tracker_params(load_config(name, OFFICIAL_CONFIGS[name]))
    assert (params.decode, params.template_schedule) == {
        "fartrack": ("plain", "mode1"), "fartrack_distill": ("plain", "distill"),
        "fartrack_sparse": ("sparse", "mode1")}[name]


def test_fastseqtrack_record():
    family = get_family("fastseqtrack")
    cfg = load_config("fastseqtrack", "fastseqtrack_quickstart")
    net = family.build_network(cfg)
    assert isinstance(net, FastSeqTrackNetwork) and net.net_type == "FastSeqTrack"
    assert isinstance(family.build_actor(net, cfg, torch.device("cpu")), FastSeqTrackActor)
    assert not family.inference_paths and family.results_variant == ("MODEL.DECODER.TAU", "tau")
    with pytest.raises(ValueError, match="has no depth option"):
        family.build_network(cfg, depth=3)


def test_behaviour_follows_options_not_the_family_label():
    """A network labelled with a name no record knows behaves by its options alone."""
    spec = BackboneSpec(num_blocks=2, num_extension=0, masked_norm=True, command_renorm=True)
    torch.manual_seed(0)
    net = FARTrackNetwork(spec, family="my_family", net_type="Mine", template_scores=True, layer_heads_from=1).eval()
    templates, search = torch.randn(1, 5, 3, 112, 112), torch.randn(1, 3, 224, 224)
    out = net(templates, search)
    assert out["template_scores"].shape == (1, 5, 49) and out["template_keep"].shape == (1, 49)
    assert len(out["layer_logits"]) == 2 and torch.equal(out["layer_logits"][-1], out["logits"])
    plain = FARTrackNetwork(BackboneSpec(num_blocks=2, num_extension=0), family="fartrack_sparse", net_type="X")
    assert set(plain(templates, search)) == {"logits"}  # the label alone switches nothing on
    with pytest.raises(ValueError, match="template_keep needs a network with template_scores"):
        plain(templates, search, template_keep=torch.ones(1, 5, 49, dtype=torch.bool))


# ------------------------------------------------------------------ structure of the package
FAMILY_NAME_COMPARISON = re.compile(
    r"""(==|!=)\s*["'](fartrack|fartrack_distill|fartrack_sparse|fastseqtrack)["']"""
    r"""|["'](fartrack|fartrack_distill|fartrack_sparse|fastseqtrack)["']\s*(==|!=)"""
    r"""|\bin\s*[(\[{]\s*["'](fartrack|fartrack_distill|fartrack_sparse|fastseqtrack)["']""")


def test_no_family_name_comparisons_outside_the_records():
    offenders = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
                 for folder in ("lib", "tracking") for path in sorted((REPO / folder).rglob("*.py"))
                 if path.name != "families.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if FAMILY_NAME_COMPARISON.search(line)]
    assert not offenders, "\n".join(offenders)


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level_imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The lib modules ``path`` imports when it is imported (module level only, parents' __init__ included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:  # top-level statements: what runs at import time
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            if target in known:
                found.add(target)
    # Importing a module first runs its parent packages' __init__, unless the importer sits inside that package
    # (then the package is already being imported: the usual, harmless package-internal pattern).
    with_parents = set(found)
    for target in found:
        parts = target.split(".")
        with_parents |= {parent for parent in (".".join(parts[:i]) for i in range(1, len(parts)))
                         if parent in known and not name.startswith(parent + ".")}
    with_parents.discard(name)
    return with_parents


def test_no_import_cycles_in_lib():
    paths = sorted((REPO / "lib").rglob("*.py"))
    known = {_module_name(p) for p in paths}
    graph = {_module_name(p): _module_level_imports(p, _module_name(p), known) for p in paths}
    visiting, done, cycles = [], set(), []

    def visit(module: str) -> None:
        if module in done:
            return
        if module in visiting:
            cycles.append(visiting[visiting.index(module):] + [module])
            return
        visiting.append(module)
        for target in sorted(graph.get(module, ())):
            visit(target)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)
    assert "lib.families" in graph["lib.config.loader"] and "lib.config" in graph["lib.families"]  # edges are seen


def test_lib_imports_lib_modules_at_module_level_only():
    """Imports inside functions hide dependencies from the cycle check above (the usual way to dodge a cycle)."""
    deferred = []
    for path in sorted((REPO / "lib").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                deferred += [f"{path.relative_to(REPO)}:{inner.lineno}" for inner in ast.walk(node)
                             if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("lib")]
    assert not deferred, deferred
