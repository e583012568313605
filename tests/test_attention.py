"""Window attention without subnormals (iqa4k.models.attention): torchvision's outputs exactly."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import swin_t

from iqa4k.models.attention import (
    flush_swin_attention,
    flushed_softmax,
    from_windows,
    partition_windows,
    to_windows,
)


@pytest.fixture(scope="module")
def pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    reference = swin_t(weights=None)
    flushed = swin_t(weights=None)
    flushed.load_state_dict(reference.state_dict())
    return reference.eval(), flush_swin_attention(flushed).eval()


@pytest.mark.parametrize("size", [(224, 224), (97, 130), (300, 417)])
def test_swin_t_outputs_are_torchvision_bit_for_bit(pair, size):
    # sizes that pad, and one whose last stage is smaller than a window (no shift there)
    reference, flushed = pair
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert torch.equal(flushed(x), reference(x))


def test_gradients_match_torchvision(pair):
    reference, flushed = pair
    x = torch.randn(1, 3, 97, 130, generator=torch.Generator().manual_seed(2))
    grads = []
    for net in (reference, flushed):
        net.zero_grad()
        net(x).square().sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-6, atol=1e-9)


def test_state_dict_and_names_are_unchanged(pair):
    reference, flushed = pair
    assert list(flushed.state_dict()) == list(reference.state_dict())
    blocks = [m for m in flushed.modules() if type(m).__name__ == "FlushedWindowAttention"]
    assert len(blocks) == 12  # every Swin-T block


def test_flushed_softmax_has_no_subnormals_and_keeps_the_rest():
    logits = torch.randn(4, 49, 49, generator=torch.Generator().manual_seed(3))
    logits[:, :, 30:] -= 100.0  # a shifted window's mask
    plain, flushed = logits.softmax(dim=-1), flushed_softmax(logits)
    tiny = torch.finfo(torch.float32).tiny
    cpu_flushes = (torch.tensor(tiny) / 2).item() == 0  # the iqa4k command has run here
    assert cpu_flushes or ((plain > 0) & (plain < tiny)).any()  # the case exists
    assert not ((flushed > 0) & (flushed < tiny)).any()
    keep = plain >= tiny
    assert torch.equal(flushed[keep], plain[keep]) and (flushed[~keep] == 0).all()


def test_flushed_softmax_keeps_nan_and_gradients():
    logits = torch.randn(2, 8, 8, generator=torch.Generator().manual_seed(4))
    logits[0, 0, 3] = float("nan")
    assert flushed_softmax(logits)[0, 0].isnan().all()  # a NaN input is not hidden as 0
    x = torch.randn(2, 8, 8, requires_grad=True)
    masked = x - 100.0 * (torch.arange(8) > 4)
    flushed_softmax(masked).square().sum().backward()  # not in place while training
    y = x.detach().clone().requires_grad_()
    (y - 100.0 * (torch.arange(8) > 4)).softmax(-1).square().sum().backward()
    torch.testing.assert_close(x.grad, y.grad, rtol=1e-6, atol=1e-12)


def test_window_gathers_are_roll_and_partition_and_back():
    x = torch.randn(2, 14, 21, 5)
    for shift in [(0, 0), (3, 3), (2, 0)]:
        rolled = torch.roll(x, (-shift[0], -shift[1]), dims=(1, 2))
        with torch.inference_mode():  # the cached indices made here serve autograd below
            assert torch.equal(to_windows(x, (7, 7), shift), partition_windows(rolled, (7, 7)))
        y = x.clone().requires_grad_()
        windows = to_windows(y, (7, 7), shift)
        back = from_windows(windows * 2, (14, 21), (7, 7), shift, crop=(11, 20))
        assert torch.equal(back, 2 * x[:, :11, :20])
        back.sum().backward()
        assert y.grad[:, :11, :20].eq(2).all() and y.grad[:, 11:].eq(0).all()
