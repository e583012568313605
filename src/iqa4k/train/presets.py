"""Training presets: every recipe as one :class:`TrainConfig`, with where it comes from.

``cpu-small`` is iqa4k's own, meant to learn on a laptop CPU in minutes. The others are the
official recipes of the papers' models, with the values of their training scripts (see
docs/training.md and docs/models.md for the sources, and the fixes marked F).
"""

from __future__ import annotations

from ..errors import OptionError
from .config import TrainConfig

PRESETS: dict[str, TrainConfig] = {
    "cpu-small": TrainConfig(
        model="smalliqa",
        release="trained",
        loss="mse",
        optimizer="adamw",
        lr=2e-3,
        weight_decay=1e-4,
        schedule="cosine",
        schedule_unit="iteration",
        epochs=30,
        batch_size=16,
        flip="horizontal",
        description=(
            "SmallIQA from scratch: AdamW 2e-3, cosine over the run, 30 epochs of one random "
            "192 crop per image, left-right flips; minutes on a laptop CPU."
        ),
    ),
    # The papers' recipes, as their training scripts set them (docs/training.md lists the
    # sources). Fixes (F): flips are real left-right flips (the scripts flip a CHW array's
    # channel or row axis), HyperIQA's second parameter group is really optimised, epochs are
    # chosen on validation, never on the test part.
    "maxiqa-pipal": TrainConfig(
        model="maxiqa",
        release="pipal",
        loss="mse",
        optimizer="adamw",
        lr=1e-5,
        weight_decay=1e-5,
        schedule="cosine",
        schedule_unit="iteration",
        cosine_period=60,  # (R) T_max=60 stepped per iteration: the rate cycles every 120 steps
        epochs=60,
        batch_size=16,
        seed=20,
        pretrained=True,
        description="mb21100/myModel train_maniqa.py on PIPAL: MSE, AdamW 1e-5, batch 16, 60 "
        "epochs, RandCrop 224 + flip, ImageNet-12k MaxViT-B",
    ),
    "maxiqa-sr4kiqa": TrainConfig(
        model="maxiqa",
        release="pipal",
        loss="mse",
        optimizer="adam",
        lr=1e-5,
        weight_decay=2e-4,
        schedule="cosine",
        schedule_unit="iteration",
        cosine_period=10,  # (R) T_max=10 stepped per iteration
        epochs=7,
        batch_size=4,
        crops_per_image=25,  # the script's 25 crops per batch, one optimiser step each
        seed=20,
        pretrained=True,
        description="mb21100/myModel inference.py 5-fold on SR4KIQA: MSE, Adam 1e-5, wd 2e-4, "
        "batch 4, 7 epochs, 25 random 224 crops per image, from the ImageNet MaxViT-B",
    ),
    "ahiq-pipal": TrainConfig(
        model="ahiq",
        release="pipal",
        loss="mse",
        optimizer="adam",
        lr=1e-4,
        weight_decay=1e-5,
        schedule="cosine",
        schedule_unit="iteration",
        cosine_period=50,  # (R) T_max=50 stepped per iteration
        epochs=200,
        batch_size=4,
        seed=1919,
        pretrained=True,
        freeze_pretrained=True,
        description="IIGROUP/AHIQ train.py on PIPAL: MSE, Adam 1e-4 on the two heads, frozen "
        "timm ResNet-50 and ViT-B/8, batch 4, 200 epochs, shared RandCrop 224 + flip",
    ),
    **{
        f"maniqa-{data}": TrainConfig(
            model="maniqa",
            release=data,
            loss="mse",
            optimizer="adam",
            lr=1e-5,
            weight_decay=1e-5,
            schedule="cosine",
            schedule_unit="iteration",
            cosine_period=50,  # (R) T_max=50 stepped per iteration
            epochs=300,
            batch_size=8,
            flip_probability=flip,
            resize_to=resize,
            seed=20,
            pretrained=True,
            description=f"IIGROUP/MANIQA train_maniqa.py, {data} config: MSE, Adam 1e-5, batch "
            f"8, 300 epochs, RandCrop 224 + flip (p {flip})"
            + (", images resized to 224x224 first" if resize else ""),
        )
        for data, flip, resize in (("koniq", 0.7, 224), ("kadid", 0.5, 0), ("pipal", 0.5, 0))
    },
    "hyperiqa-koniq": TrainConfig(
        model="hyperiqa",
        release="koniq",
        loss="l1",
        optimizer="adam",
        lr=2e-5,
        head_lr_ratio=10.0,  # the hyper network at 2e-4 (F: optimised in every epoch)
        weight_decay=5e-4,
        schedule="step",
        schedule_unit="epoch",
        step_size=6,
        gamma=0.1,  # lr / 10^(epoch // 6)
        epochs=16,
        batch_size=96,
        crops_per_image=25,
        seed=0,
        pretrained=True,
        description="SSL92/hyperIQA HyperIQASolver on KonIQ: L1, Adam 2e-5 (hyper network 10x), "
        "batch 96, 16 epochs, 25 crops of 224 per image after Resize((512, 384)), flips",
    ),
    "uiqa-uhdiqa": TrainConfig(
        model="uiqa",
        release="uhd-iqa",
        loss="fidelity",
        pair_weight=1.0,
        regression_weight=0.1,  # the README's w_L2 (the code's default is 1)
        optimizer="adam",
        lr=1e-5,
        weight_decay=1e-7,
        schedule="step",
        schedule_unit="epoch",
        step_size=10,
        gamma=0.9,
        epochs=100,
        batch_size=24,  # 12 pairs
        flip="none",
        seed=1000,
        pretrained=True,
        description="sunwei925/UIQA train.py on UHD-IQA: fidelity pair loss + 0.1 MSE, Adam "
        "1e-5, 12 pairs per batch, 100 epochs, StepLR(10, 0.9), three Swin-T views",
    ),
    "tres-koniq": TrainConfig(
        model="tres",
        release="koniq",
        loss="tres",
        optimizer="adam",
        lr=2e-5,  # hard-coded in the script (--lr is ignored)
        weight_decay=5e-4,
        schedule="step",
        schedule_unit="epoch",
        step_size=1,  # run.sh droplr 1: lr / 10 after every epoch
        gamma=0.1,
        epochs=3,
        batch_size=53,
        crops_per_image=50,
        seed=2021,
        pretrained=True,
        description="isalirezag/TReS run.sh on KonIQ: L1 + consistency + relative ranking, Adam "
        "2e-5, batch 53, 3 epochs, 50 crops of 224 per image after Resize((512, 384))",
    ),
}


def get_preset(name: str) -> TrainConfig:
    """The preset ``name``, or an error listing them."""
    if name not in PRESETS:
        raise OptionError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]
