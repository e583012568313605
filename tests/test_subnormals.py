"""Flushing subnormals (iqa4k.process) changes no score: MaxIQA's network, whose random
weights make subnormal activations, gives the same bits in a process that flushes them."""

from __future__ import annotations

from .conftest import python_words

_CHILD = r"""
import sys, torch
if sys.argv[1] == "flush":
    from iqa4k.process import flush_subnormals
    assert flush_subnormals()
from iqa4k.models import get_entry
entry = get_entry("maxiqa")
torch.manual_seed(0)
net = entry.build(**entry.releases["pipal"].options).eval()
x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
found = []
tiny = torch.finfo(torch.float32).tiny
def count(module, inputs, output):
    if isinstance(output, torch.Tensor):
        found.append(int(((output != 0) & (output.abs() < tiny)).sum()))
for module in net.modules():
    module.register_forward_hook(count)
with torch.inference_mode():
    scores = net(x)
print(sum(found), *(s.hex() for s in scores.double().tolist()))
"""


def test_flushing_subnormals_changes_no_score():
    plain, flushed = python_words(_CHILD, "plain"), python_words(_CHILD, "flush")
    assert int(plain[0]) > 0  # the network does make subnormals: the case is exercised
    assert int(flushed[0]) == 0
    assert plain[1:] == flushed[1:]
