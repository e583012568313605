"""Dataset adapters on their real file layouts, the error report, content-disjoint splits,
splits.json round trips and MOS scaling fitted on the training part."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from iqa4k.data import DatasetError, open_dataset
from iqa4k.data.scaling import MosScale
from iqa4k.data.splits import kfold, load_splits, official, save_splits
from iqa4k.errors import OptionError

from .conftest import FIXTURES


def _touch(*paths):
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def _assert_disjoint(dataset, split):
    groups = {
        part: {dataset.samples[i].group for i in getattr(split, part)}
        for part in ("train", "val", "test")
    }
    assert not groups["train"] & groups["test"] and not groups["val"] & groups["test"]
    assert not groups["train"] & groups["val"]


@pytest.mark.skipif(not (FIXTURES / "clive_subset").is_dir(), reason="needs ../shared/fixtures")
def test_csv_folder_with_images_subfolder_and_five_folds():
    data = open_dataset(f"csv:{FIXTURES / 'clive_subset'}")
    assert len(data) == 400 and data.higher_is_better and not data.full_reference
    assert all(s.image.is_file() for s in data.samples)
    folds = kfold(data.groups(), k=5, seed=0)
    tests = sorted(i for f in folds for i in f.test)
    assert tests == list(range(400))  # every image tested exactly once
    for f in folds:
        assert len(f.test) == 80 and len(f.train) + len(f.val) == 320
        _assert_disjoint(data, f)


@pytest.mark.skipif(not (FIXTURES / "kadid_mini").is_dir(), reason="needs ../shared/fixtures")
def test_csv_file_with_references_and_dmos_column():
    data = open_dataset(f"csv:{FIXTURES / 'kadid_mini' / 'dmos.csv'}")
    assert len(data) == 4 and data.full_reference
    assert not data.higher_is_better  # a column called dmos is read as lower-is-better
    assert {s.group for s in data.samples} == {"I01.png"}


def test_pipal_per_reference_label_files(tmp_path):
    for ref in ("A0001", "A0002"):
        lines = [f"{ref}_00_0{i}.bmp,{1400 + 10 * i}.5" for i in range(3)]
        (tmp_path / "Train_Label").mkdir(exist_ok=True)
        (tmp_path / "Train_Label" / f"{ref}.txt").write_text("\n".join(lines) + "\n")
        _touch(tmp_path / "Train_Ref" / f"{ref}.bmp")
        _touch(*(tmp_path / "Train_Dis" / f"{ref}_00_0{i}.bmp" for i in range(3)))
    data = open_dataset(f"pipal:{tmp_path}")
    assert len(data) == 6 and data.full_reference and data.higher_is_better
    assert {s.group for s in data.samples} == {"A0001", "A0002"}
    assert data.samples[0].ref == tmp_path / "Train_Ref" / "A0001.bmp"
    assert data.samples[0].mos == 1400.5 and data.samples[0].split == "train"


def test_pipal_consolidated_lists_and_distortion_folders(tmp_path):
    (tmp_path / "pipal22_train.txt").write_text(
        "A0001_00_00.bmp, 1520.0648\nA0002_01_00.bmp, 1300\n"
    )
    (tmp_path / "pipal21_val.txt").write_text("A0201_00_00.bmp, 1111.5\n")
    _touch(
        tmp_path / "Distortion1" / "A0001_00_00.bmp", tmp_path / "Distortion2" / "A0002_01_00.bmp"
    )
    _touch(tmp_path / "Distortion4" / "A0201_00_00.bmp")
    _touch(*(tmp_path / "Reference" / f"A{n}.bmp" for n in ("0001", "0002", "0201")))
    data = open_dataset(f"pipal:{tmp_path}")
    assert [s.split for s in data.samples] == ["train", "train", "val"]
    assert official(data).val == [2]


def test_sr4kiqa_scene_folders(tmp_path):
    rows = ["name,score,x"]
    for scene in ("Animal1", "Face3"):
        for method in ("Bicubic_x2", "EDSR_x4"):
            name = f"{scene}_{method}.png"
            _touch(tmp_path / scene / name)
            rows.append(f"{name},{0.25 if 'Bic' in method else 0.75},0")
    (tmp_path / "MOS.csv").write_text("\n".join(rows) + "\n")
    data = open_dataset(f"sr4kiqa:{tmp_path}")
    assert len(data) == 4 and data.score_range == (0.0, 1.0)
    assert {s.group for s in data.samples} == {"Animal1", "Face3"}


def test_qads_list_either_way_round(tmp_path):
    (tmp_path / "qads.txt").write_text("img01_bicubic_x2.bmp, 0.42\n0.81 img02_srcnn_x4.bmp\n")
    _touch(tmp_path / "super-resolved_images" / "img01_bicubic_x2.bmp")
    _touch(tmp_path / "super-resolved_images" / "img02_srcnn_x4.bmp")
    data = open_dataset(f"qads:{tmp_path}")
    assert [(s.group, s.mos) for s in data.samples] == [("img01", 0.42), ("img02", 0.81)]
    assert data.score_range == (0.0, 1.0) and data.notes


def test_uhdiqa_and_koniq_official_splits(tmp_path):
    uhd = tmp_path / "uhd"
    header = '"image_name","quality_mos","set"\n'
    for set_name, names in (("training", ("1.jpg", "2.jpg")), ("validation", ("3.jpg",))):
        body = "".join(f'"{n}",0.7,"{set_name}"\n' for n in names)
        (uhd / f"uhd-iqa-{set_name}-metadata.csv").parent.mkdir(exist_ok=True)
        (uhd / f"uhd-iqa-{set_name}-metadata.csv").write_text(header + body)
        _touch(*(uhd / set_name / n for n in names))
    data = open_dataset(f"uhdiqa:{uhd}")
    assert {k: len(v) for k, v in data.official_splits().items()} == {"train": 2, "val": 1}

    koniq = tmp_path / "koniq"
    lines = ["image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,set"]
    for i, split in enumerate(("training", "training", "validation", "test")):
        lines.append(f"{i}.jpg,0,0,0,0,0,5,{50 + i},1,{split}")
        _touch(koniq / "1024x768" / f"{i}.jpg")
    (koniq / "koniq10k_distributions_sets.csv").write_text("\n".join(lines) + "\n")
    data = open_dataset(f"koniq:{koniq}")
    split = official(data)
    assert (split.train, split.val, split.test) == ([0, 1], [2], [3])


def test_clive_release_mat_files_without_training_images(tmp_path):
    names = ["t1.bmp", "t2.bmp", "100.bmp", "101.JPG"]
    cells = np.empty((len(names), 1), dtype=object)
    for i, n in enumerate(names):
        cells[i, 0] = np.array([n])
    (tmp_path / "Data").mkdir()
    scipy.io.savemat(tmp_path / "Data" / "AllImages_release.mat", {"AllImages_release": cells})
    scipy.io.savemat(
        tmp_path / "Data" / "AllMOS_release.mat",
        {"AllMOS_release": np.array([[50.0, 60.0, 42.5, 71.25]])},
    )
    _touch(tmp_path / "Images" / "100.bmp", tmp_path / "Images" / "101.JPG")
    data = open_dataset(f"clive:{tmp_path}")
    assert [s.image.name for s in data.samples] == ["100.bmp", "101.JPG"]
    assert [s.mos for s in data.samples] == [42.5, 71.25]


def test_kadid_and_tid2013_references_and_mixed_case(tmp_path):
    kadid = tmp_path / "kadid"
    (kadid / "dmos.csv").parent.mkdir()
    (kadid / "dmos.csv").write_text("dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.57,0.1\n")
    _touch(kadid / "images" / "I01_01_01.png", kadid / "images" / "I01.png")
    data = open_dataset(f"kadid:{kadid}")
    assert data.higher_is_better and data.samples[0].ref.name == "I01.png"

    tid = tmp_path / "tid"
    (tid / "mos_with_names.txt").parent.mkdir()
    (tid / "mos_with_names.txt").write_text("5.51429 I01_01_1.bmp\n3.1 i02_05_3.bmp\n")
    _touch(tid / "distorted_images" / "I01_01_1.bmp", tid / "distorted_images" / "i02_05_3.bmp")
    _touch(tid / "reference_images" / "I01.BMP", tid / "reference_images" / "i02.bmp")
    data = open_dataset(f"tid2013:{tid}")
    assert [s.group for s in data.samples] == ["I01", "I02"]
    assert data.samples[1].ref == tid / "reference_images" / "i02.bmp"


def test_every_problem_reported_at_once_with_files_and_lines(tmp_path):
    (tmp_path / "images").mkdir()
    _touch(tmp_path / "images" / "a.png", tmp_path / "images" / "b.png")
    (tmp_path / "mos.csv").write_text(
        "image,mos\na.png,3.5\nb.png,good\nmissing.png,2\na.png,3.5\n"
    )
    with pytest.raises(DatasetError) as err:
        open_dataset(f"csv:{tmp_path}")
    text = str(err.value)
    assert "3 problem(s)" in text
    assert f"{tmp_path / 'mos.csv'}:3: score 'good' is not a number" in text
    assert "missing.png: listed but missing" in text and "a.png: listed 2 times" in text


def test_label_files_that_are_not_text_or_not_matlab_are_problems_not_tracebacks(tmp_path):
    tid = tmp_path / "tid"
    tid.mkdir()
    (tid / "mos_with_names.txt").write_bytes("5.5 caf\xe9.bmp\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="mos_with_names.txt: not a UTF-8 text file"):
        open_dataset(f"tid2013:{tid}")
    clive = tmp_path / "clive" / "Data"
    clive.mkdir(parents=True)
    (clive / "AllImages_release.mat").write_bytes(b"MATLAB 5.0 MAT-file, cut short")
    scipy.io.savemat(clive / "AllMOS_release.mat", {"wrong_name": np.array([[1.0]])})
    with pytest.raises(DatasetError) as err:
        open_dataset(f"clive:{clive.parent}")
    assert "AllImages_release.mat: not a readable MATLAB file" in str(err.value)
    assert "AllMOS_release.mat: has no variable AllMOS_release" in str(err.value)


def test_scores_outside_a_release_range_are_noted(tmp_path):
    kadid = tmp_path / "kadid"
    kadid.mkdir()
    rows = ["dist_img,ref_img,dmos,var", "I01_01_01.png,I01.png,-3,0", "I01_01_02.png,I01.png,4,0"]
    (kadid / "dmos.csv").write_text("\n".join(rows) + "\n")
    _touch(*(kadid / "images" / n for n in ("I01_01_01.png", "I01_01_02.png", "I01.png")))
    notes = open_dataset(f"kadid:{kadid}").notes
    assert "1 score(s) outside the release's 1 to 5 (observed -3 to 4)" in notes[-1]
    # a labels file with other columns: one problem naming what is missing and what is there
    (kadid / "dmos.csv").write_text("image,mos\nI01_01_01.png,3\n")
    with pytest.raises(DatasetError, match=r"no reference \(ref or .*, no score \(dmos\) col"):
        open_dataset(f"kadid:{kadid}")
    koniq = tmp_path / "koniq"
    (koniq / "images").mkdir(parents=True)
    _touch(koniq / "images" / "a.jpg")
    (koniq / "koniq10k_distributions_sets.csv").write_text("image_name,mos,set\na.jpg,50,tst\n")
    with pytest.raises(DatasetError, match="set 'tst' is not one of training, validation, test"):
        open_dataset(f"koniq:{koniq}")


def test_bad_specs_and_too_many_folds(tmp_path):
    with pytest.raises(OptionError, match="NAME:ROOT"):
        open_dataset("clive")
    with pytest.raises(OptionError, match="unknown dataset adapter 'livec'.*koniq"):
        open_dataset(f"livec:{tmp_path}")
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(f"csv:{tmp_path / 'nope'}")
    with pytest.raises(
        OptionError, match="5 folds need at least 5 content groups; the dataset has 3"
    ):
        kfold(["a", "a", "b", "c"], k=5)


def test_folds_are_content_disjoint_balanced_and_repeatable(tmp_path):
    groups = [f"ref{i // 4}" for i in range(40)] + [f"big{i // 10}" for i in range(20)]
    folds = kfold(groups, k=5, seed=3, val_fraction=0.2)
    assert folds == kfold(groups, k=5, seed=3, val_fraction=0.2)
    assert folds != kfold(groups, k=5, seed=4, val_fraction=0.2)
    for f in folds:
        test_groups = {groups[i] for i in f.test}
        assert not test_groups & {groups[i] for i in f.train + f.val}
        assert {groups[i] for i in f.val} and not {groups[i] for i in f.val} & {
            groups[i] for i in f.train
        }
    assert sorted(i for f in folds for i in f.test) == list(range(60))
    assert max(len(f.test) for f in folds) - min(len(f.test) for f in folds) <= 10


def test_splits_json_round_trip(tmp_path):
    (tmp_path / "mos.csv").write_text(
        "image,mos,group\n" + "".join(f"{i}.png,{i},g{i % 6}\n" for i in range(12))
    )
    _touch(*(tmp_path / f"{i}.png" for i in range(12)))
    data = open_dataset(f"csv:{tmp_path / 'mos.csv'}")
    folds = kfold(data.groups(), k=3, seed=1)
    path = save_splits(tmp_path / "out" / "splits.json", data, folds, k=3, seed=1)
    assert load_splits(path, data) == folds
    (tmp_path / "0.png").unlink()
    (tmp_path / "mos.csv").write_text(
        "image,mos,group\n" + "".join(f"{i}.png,{i},g{i % 6}\n" for i in range(1, 12))
    )
    smaller = open_dataset(f"csv:{tmp_path / 'mos.csv'}")
    with pytest.raises(OptionError, match="not in"):
        load_splits(path, smaller)


def test_mos_scale_is_fitted_on_training_scores_and_inverts():
    scale = MosScale.fit([1.0, 3.0, 5.0])
    assert scale.forward(3.0) == 0.5 and scale.inverse(0.25) == 2.0
    dmos = MosScale.fit([10.0, 20.0], higher_is_better=False)
    assert dmos.forward(10.0) == 1.0 and dmos.inverse(1.0) == 10.0
    assert MosScale(**scale.to_dict()) == scale


def test_datasets_command_lists_adapters_and_reports_problems(tmp_path, capsys):
    from iqa4k.cli import main

    assert main(["datasets"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in ("pipal", "sr4kiqa", "qads", "uhdiqa", "koniq", "clive"))
    (tmp_path / "mos.csv").write_text("image,mos\n1.png,2\n2.png,3\n")
    _touch(tmp_path / "1.png", tmp_path / "images" / "2.png")
    assert main(["datasets", f"csv:{tmp_path}"]) == 0
    assert "2 images in 2 content group(s)" in capsys.readouterr().out
    (tmp_path / "1.png").unlink()
    assert main(["datasets", f"csv:{tmp_path}"]) == 1
    assert "1.png: listed but missing" in capsys.readouterr().err
