"""Window attention without subnormals (iqa4k.models.attention): torchvision's outputs exactly."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import swin_t

from iqa4k.models.attention import flush_swin_attention, flushed_softmax


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
    assert ((plain > 0) & (plain < tiny)).any()  # the case exists
    assert not ((flushed > 0) & (flushed < tiny)).any()
    keep = plain >= tiny
    assert torch.equal(flushed[keep], plain[keep]) and (flushed[~keep] == 0).all()
