"""TReS against numbers from the official code (isalirezag/TReS models.py ``Net``).

The golden values come from the official ``Net`` with run.sh's ResNet-50 configuration
(nheadt 16, num_encoder_layerst 2, dim_feedforwardt 64), run on the CPU in float32 at commit
1fb1e40dcbff7cef1efb62f9e0bb84ee51b0d859 (ImageNet download patched out, misc.py's torchvision
version check and the data_loader/openpyxl import stubbed), with weights from
``deterministic_init(seed=0)`` and the input below. The fixed L2-pooling filters are kept as
built (``keep`` below): random values there would make the square root's argument negative.
"""

from __future__ import annotations

import pytest
import torch

from iqa4k.models import tres
from iqa4k.testing import deterministic_init

from .conftest import official_keys

KEEP = ("attn_mask", "relative_position_index", "num_batches_tracked", "filter")

# official eval-mode outputs: Net(x) -> (prediction [B,1], consistency loss)
GOLDEN_B2 = (-1.9515473, -1.8728149)
GOLDEN_B1 = (-1.951547,)  # the first crop alone
GOLDEN_CONSISTENCY_B1 = 0.31270832
# official Net(x.flip(3))[0] in eval mode: the prediction of the flipped pass inside Net(x)
GOLDEN_FLIPPED_B1 = (-1.8899455,)
# official train mode with every dropout set to 0 (BatchNorm on batch statistics), first crop
GOLDEN_TRAIN_B1 = (-0.98302579,)
GOLDEN_TRAIN_CONSISTENCY_B1 = 1.3216424
GOLDEN_TRAIN_SUM_RUNNING_MEAN = 4.8397641  # model.layer4.2.bn3.running_mean after that call
GOLDEN_TRAIN_SUM_RUNNING_VAR = 71.31163  # model.bn1.running_var after that call
# official Net with network resnet18, nheadt 16, num_encoder_layerst 3, dim_feedforwardt 32
GOLDEN_R18_B2 = (-1.3891251, -1.4272269)  # (and consistency loss 0.4960345)


def _close(actual: torch.Tensor, expected, atol: float = 1e-5) -> None:
    torch.testing.assert_close(
        actual, torch.tensor(expected, dtype=actual.dtype), rtol=0, atol=atol
    )


@pytest.fixture(scope="module")
def model() -> tres.TReS:
    return deterministic_init(tres.build(), seed=0, keep=KEEP).eval()


@pytest.fixture(scope="module")
def crops() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return tres.NET_INPUT.normalize(torch.rand(2, 3, 224, 224, generator=g))


@pytest.fixture(scope="module")
def scores(model, crops) -> torch.Tensor:
    with torch.no_grad():
        return model(crops)


def test_state_dict_equals_the_official_one(model):
    official = official_keys("tres")
    assert len(official) == 354
    ours = [(name, tuple(t.shape)) for name, t in model.state_dict().items()]
    assert ours == official
    assert ("model.fc.weight", (1000, 2048)) in official  # the unused ImageNet classifier
    assert "pos_embed" not in model.state_dict()  # rebuilt, not stored
    with torch.device("meta"):  # strict loading only; no need for real weights
        fresh = tres.build()
    state = {name: torch.zeros(shape) for name, shape in official}
    fresh.load_state_dict(state, strict=True, assign=True)
    assert sum(p.numel() for p in fresh.parameters()) == 152_452_265
    # the official filter: [.5, 1, .5] outer itself, normalised to sum 1 (kept by KEEP)
    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
    for index, width in enumerate((256, 512, 1024, 2048), start=1):
        filt = getattr(model, f"L2pooling_l{index}").filter
        assert torch.equal(filt, kernel.expand(width, 1, 3, 3))


def test_scores_equal_the_official_code_and_batch_invariance(model, crops, scores):
    with torch.no_grad():
        alone = [model(crops[i : i + 1]) for i in range(len(crops))]
    assert scores.shape == (2,) and alone[0].shape == (1,)  # no 0-d result at B=1
    _close(scores, GOLDEN_B2)
    _close(alone[0], GOLDEN_B1)
    torch.testing.assert_close(scores, torch.cat(alone), rtol=0, atol=1e-5)


def test_forward_train_equals_the_official_forward(model, crops, scores):
    """Both passes: the prediction, the flipped one and the consistency loss (eval mode)."""
    with torch.no_grad():
        pred, pred_flipped, consistency = model.forward_train(crops[:1])
    torch.testing.assert_close(pred, scores[:1], rtol=0, atol=1e-5)  # forward: the first pass
    _close(pred_flipped, GOLDEN_FLIPPED_B1)
    assert consistency.dim() == 0
    _close(consistency, GOLDEN_CONSISTENCY_B1)


def test_training_mode_batch_norm_as_official(model, crops):
    """Train mode, dropouts at 0: batch statistics, updated once per pass (twice per call)."""
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    try:
        model.train()
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
            if isinstance(m, tres._SelfAttention):
                m.dropout = 0.0
        with torch.no_grad():
            pred, _, consistency = model.forward_train(crops[:1])
        _close(pred, GOLDEN_TRAIN_B1)
        _close(consistency, GOLDEN_TRAIN_CONSISTENCY_B1)
        # sums of 2048 and 64 float32 values: a few ulps of slack
        stats = model.model.layer4[2].bn3.running_mean.sum(), model.model.bn1.running_var.sum()
        _close(stats[0], GOLDEN_TRAIN_SUM_RUNNING_MEAN, atol=1e-4)
        _close(stats[1], GOLDEN_TRAIN_SUM_RUNNING_VAR, atol=1e-4)
        assert model.model.bn1.num_batches_tracked.item() == 2
    finally:  # the fixture is shared: back to the eval-mode network
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.5 if m is not model.drop2d else 0.1
            if isinstance(m, tres._SelfAttention):
                m.dropout = 0.5
        model.eval()


def test_resnet18_variant_equals_the_official_code(crops):
    net = tres.build(backbone="resnet18", nhead=16, num_layers=3, dim_feedforward=32)
    net = deterministic_init(net, seed=0, keep=KEEP).eval()
    assert net.transformer.encoder.layers[0].self_attn.in_proj_weight.shape == (2880, 960)
    with torch.no_grad():
        pred = net(crops[:1])
    _close(pred, GOLDEN_R18_B2[:1])


def test_position_encoding_layout():
    pos = tres.sine_position_encoding(8, side=7)
    assert pos.shape == (49, 8)
    # token (row i, column j) = 7 i + j: first half depends on the row, second on the column
    grid = pos.view(7, 7, 8)
    assert torch.equal(grid[:, 0, :4], grid[:, 5, :4])
    assert torch.equal(grid[0, :, 4:], grid[3, :, 4:])
    angle = torch.tensor(2 * torch.pi * 3 / (7 + 1e-6))  # row 3 (1-based), frequency 1
    torch.testing.assert_close(grid[2, 0, :2], torch.stack((angle.sin(), angle.cos())))
