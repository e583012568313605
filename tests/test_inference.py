"""Networks prepared for scoring (batch norms folded, channels-last) compute the same function."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from iqa4k.models import get_entry
from iqa4k.models.inference import fold_batch_norms, prepare_for_scoring, with_precision
from iqa4k.testing import deterministic_init

# batch norms that follow a convolution: ResNet-50's stem, 16 blocks x 3 and 4 shortcuts;
# MaxViT-B's stem and 24 MBConv blocks x 2 (their pre-norms come before a convolution)
FOLDED = {"hyperiqa": 53, "tres": 53, "ahiq": 53, "maxiqa": 49}
# Largest relative change of a bfloat16 score with the test weights at 224, from float32 and
# across batch split and thread count, measured here: HyperIQA 0.5% / 1e-7, TReS 0.5% / 1e-7,
# MaxIQA 0.8% / 0.1%, UIQA 1.4% / 0.9%, MANIQA 7.8% / 13.5%, AHIQ 0.3% / 1e-7. A score flips
# some bfloat16 roundings when the kernels' summation order changes, so it varies across
# batches and threads by up to about its distance from float32. Bounds: twice the larger.
BF16_CHANGE = {"hyperiqa": 0.01, "tres": 0.01, "maxiqa": 0.016, "uiqa": 0.028, "maniqa": 0.3}
BF16_CHANGE["ahiq"] = 0.006


@pytest.mark.parametrize("model", sorted(FOLDED))
def test_batch_norms_fold_and_outputs_stay(model):
    entry = get_entry(model)
    keep = ("num_batches_tracked", "filter")  # TReS's L2 pooling filter is not a weight
    net = deterministic_init(entry.build(), seed=3, keep=keep).eval()
    for bn in net.modules():  # statistics unlike the identity, so a wrong fold shows
        if isinstance(bn, nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    inputs = [
        torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(k)) for k in (1, 2)
    ]
    inputs = inputs[: entry.n_images]
    with torch.no_grad():
        expected = net(*inputs)
        assert fold_batch_norms(net) == FOLDED[model]
        prepared = prepare_for_scoring(net, entry)
        torch.testing.assert_close(prepared(*inputs), expected, rtol=1e-5, atol=1e-5)


def test_only_batch_norms_that_directly_follow_a_convolution_fold():
    class Act(nn.BatchNorm2d):  # a subclass does more than normalise (timm's BatchNormAct2d)
        pass

    net = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.BatchNorm2d(4),
        nn.Conv2d(4, 4, 1),
        Act(4),
    ).eval()
    assert fold_batch_norms(net) == 1
    assert [type(m).__name__ for m in net] == [
        "Conv2d",
        "Identity",
        "ReLU",
        "BatchNorm2d",
        "Conv2d",
        "Act",
    ]
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))


@pytest.mark.parametrize("model", ["hyperiqa", "tres", "maxiqa"])
def test_prepared_outputs_do_not_follow_layout_threads_or_batch(model):
    # channels-last networks: the input's layout changes no bit; thread count and batch
    # move the float32 sums by at most a few ulps (measured: 3.6e-7), as they did unprepared
    entry = get_entry(model)
    keep = ("num_batches_tracked", "filter")
    net = prepare_for_scoring(deterministic_init(entry.build(), seed=3, keep=keep).eval(), entry)
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    threads = torch.get_num_threads()
    with torch.no_grad():
        whole = net(x)
        assert torch.equal(net(x.contiguous(memory_format=torch.channels_last)), whole)
        singles = torch.cat([net(x[:1]), net(x[1:])])
        try:
            torch.set_num_threads(1)
            one_thread = net(x)
        finally:
            torch.set_num_threads(threads)
    torch.testing.assert_close(singles, whole, rtol=0, atol=1e-6)
    torch.testing.assert_close(one_thread, whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize("model", sorted(BF16_CHANGE))
def test_bf16_runs_the_network_in_bfloat16_and_the_head_in_float32(model):
    entry = get_entry(model)
    keep = ("num_batches_tracked", "filter")
    net = prepare_for_scoring(deterministic_init(entry.build(), seed=3, keep=keep).eval(), entry)
    inputs = [
        torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(k))
        for k in range(entry.n_images)
    ]
    with torch.no_grad():
        expected = net(*inputs)
    dtypes = {"head": set(), "rest": set()}
    heads = [net.get_submodule(name) for name in entry.head]

    def record(module, args, output):
        part = "head" if any(module is h or module in h.modules() for h in heads) else "rest"
        dtypes[part].add(output.dtype)

    for module in net.modules():  # HyperIQA's head (its target network) has no layer
        if isinstance(module, (nn.Linear, nn.Conv2d)) or any(module is h for h in heads):
            module.register_forward_hook(record)
    half = with_precision(net, entry, "bfloat16")
    threads = torch.get_num_threads()
    with torch.no_grad():
        scores = half(*inputs)
        singles = torch.cat([half(*[x[k : k + 1] for x in inputs]) for k in (0, 1)])
        try:
            torch.set_num_threads(1)
            one_thread = half(*inputs)
        finally:
            torch.set_num_threads(threads)
    assert dtypes == {"head": {torch.float32}, "rest": {torch.bfloat16}}
    assert scores.dtype == torch.float32
    assert not torch.equal(scores.bfloat16().float(), scores)  # not rounded to 8 bits
    for other in (expected, singles, one_thread):
        change = ((scores - other).abs() / other.abs()).max().item()
        assert change < BF16_CHANGE[model]
    assert not torch.equal(scores, expected)
