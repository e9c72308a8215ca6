"""``npcnn evaluate`` and ``npcnn predict`` take any model file; wrong files get errors
that say what the file is and what to do; ``tfcnn`` offers only what it does."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from npcnn import Conv2D, Dense, Flatten, MaxPool2D, Sequential
from npcnn.cli import EXIT_ERROR, build_parser, main

from .helpers import seed_cnn_checkpoint
from .test_cli import one_error_line


def own_model(input_shape=(28, 28, 1), classes=3):
    """Not the tutorial's network: unnamed layers, 3 classes, logits out."""
    return Sequential(
        [Conv2D(2, 5, strides=2, activation="relu"), MaxPool2D(), Flatten(), Dense(classes)],
        input_shape=input_shape,
        seed=0,
    )


def test_evaluate_takes_a_model_file_of_any_architecture(fake_data, tmp_path, capsys):
    own_model().save(tmp_path / "own.npz")
    assert main(["evaluate", "--model", str(tmp_path / "own.npz")]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out
    assert "true\\pred     0     1     2     3" in out  # as many classes as the labels reach


def test_evaluate_still_reads_the_tutorial_networks_weights_only_files(fake_data, tmp_path):
    seed_cnn_checkpoint(tmp_path / "ck.npz")  # no architecture in it: the tutorial's network
    assert main(["evaluate", "--weights", str(tmp_path / "ck.npz")]) == 0


def test_evaluate_says_when_the_model_takes_other_images(fake_data, tmp_path, capsys):
    own_model(input_shape=(32, 32, 3)).save(tmp_path / "rgb.npz")
    assert main(["evaluate", "--model", str(tmp_path / "rgb.npz")]) == EXIT_ERROR
    line = one_error_line(capsys.readouterr().err)
    assert "takes inputs of shape (32, 32, 3)" in line and "npcnn predict" in line


def test_predict_prints_classes_and_writes_outputs(tmp_path, capsys):
    model = own_model(input_shape=(16, 16, 3), classes=4)
    model.save(tmp_path / "m.npz")
    images = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    out = tmp_path / "out.npy"
    assert main(["predict", "--model", str(tmp_path / "m.npz"), str(tmp_path / "images.npy"),
                 "--output", str(out)]) == 0  # fmt: skip
    expected = model.predict(images.astype(np.float32) / 255)
    np.testing.assert_array_equal(np.load(out), expected)
    lines = capsys.readouterr().out.splitlines()
    assert lines[:5] == [f"{i} {c}" for i, c in enumerate(expected.argmax(axis=1))]


def test_predict_adds_a_missing_channel_axis_only(tmp_path):
    own_model().save(tmp_path / "m.npz")
    np.save(tmp_path / "gray.npy", np.zeros((2, 28, 28), np.uint8))
    assert main(["predict", "--model", str(tmp_path / "m.npz"), str(tmp_path / "gray.npy")]) == 0


def _keras_file(path):
    with zipfile.ZipFile(path, "w") as archive:  # what a .keras file holds
        archive.writestr("metadata.json", "{}")
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n")


WRONG_FILES = {
    "x.npy": (lambda p: np.save(p, np.zeros(3)), "a single NumPy array (.npy)"),
    "notes.txt": (lambda p: p.write_text("hello"), "not an .npz archive"),
    "model.keras": (_keras_file, "a Keras model file (.keras); convert it"),
    "model.h5": (lambda p: p.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100)), "HDF5"),
    "arrays.npz": (lambda p: np.savez(p, a=np.zeros(2)), "it holds a"),
}


@pytest.mark.parametrize("name", sorted(WRONG_FILES))
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_wrong_file_is_named_for_what_it_is(fake_data, tmp_path, capsys, name, command):
    write, says = WRONG_FILES[name]
    write(tmp_path / name)
    np.save(tmp_path / "images.npy", np.zeros((1, 28, 28), np.uint8))
    argv = ["evaluate", "--weights", str(tmp_path / name)]
    if command == "predict":
        argv = ["predict", "--model", str(tmp_path / name), str(tmp_path / "images.npy")]
    assert main(argv) == EXIT_ERROR
    line = one_error_line(capsys.readouterr().err)
    assert says in line
    assert "allow_pickle" not in line and "context manager" not in line
    assert fake_data == []  # refused before loading data


def test_predict_refuses_images_it_cannot_read(tmp_path, capsys):
    own_model().save(tmp_path / "m.npz")
    (tmp_path / "images.npy").write_text("not an array")
    assert main(["predict", "--model", str(tmp_path / "m.npz"), str(tmp_path / "images.npy")]) == 2
    assert "IMAGES" in one_error_line(capsys.readouterr().err)


def test_tfcnn_offers_only_what_it_does(capsys):
    parser = build_parser(prog="tfcnn", framework="TensorFlow (tfcnn.SeedCNN)")
    assert set(parser._subparsers._group_actions[0].choices) == {"train"}
    assert "npcnn evaluate" in parser.format_help()  # where to go instead
    train_help = parser._subparsers._group_actions[0].choices["train"].format_help()
    assert "--device" not in train_help
    with pytest.raises(SystemExit):
        parser.parse_args(["evaluate", "--weights", "x.npz"])
    npcnn_parser = build_parser()
    assert {"train", "evaluate", "predict"} <= set(
        npcnn_parser._subparsers._group_actions[0].choices
    )
