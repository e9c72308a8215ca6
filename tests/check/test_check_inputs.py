"""npcnn check on what learners really write: each bad input gets its message and exit status.

Exit status: 0 all pass, 1 an op fails (its code raised, a wrong signature,
shape, dtype, NaN, too slow, changed its input), 2 nothing could be checked
(no file, a file that does not import, no op in it, a bad option).
"""

from __future__ import annotations

import hashlib
import textwrap

import pytest

import npcnn
from npcnn.cli import main

RELU_BACKWARD = "def relu_backward(dy, cache):\n    return dy * (cache > 0)\n"


def learner(tmp_path, source, name="mine.py"):
    path = tmp_path / name
    path.write_text("import numpy as np\n\n" + textwrap.dedent(source), encoding="utf-8")
    return path


def run(capsys, *argv):
    status = main(["check", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def test_a_correct_file_exits_0(tmp_path, capsys):
    path = learner(
        tmp_path, "def relu_forward(x):\n    return np.maximum(x, 0), x\n" + RELU_BACKWARD
    )
    status, out, err = run(capsys, path, "--seed", "4")
    assert status == 0, out + err
    assert "relu  ok" in out and "1 of 1 ops pass." in out and "seed 4" in out


def test_missing_file_and_directory_exit_2(tmp_path, capsys):
    status, out, err = run(capsys, tmp_path / "nope.py")
    assert status == 2 and "nope.py: no such file" in err and out == ""
    status, _, err = run(capsys, tmp_path)
    assert status == 2 and "is a directory" in err


def test_syntax_error_says_where(tmp_path, capsys):
    path = learner(tmp_path, "def relu_forward(x)\n    return x, x\n")
    status, _, err = run(capsys, path)
    assert status == 2
    assert "mine.py, line 3" in err and "SyntaxError" in err and "def relu_forward(x)" in err


def test_a_file_that_raises_on_import_shows_its_traceback(tmp_path, capsys):
    path = learner(tmp_path, "W = np.zeros(3) + np.ones(4)\n")
    status, _, err = run(capsys, path)
    assert status == 2 and "does not import: it raised ValueError" in err
    assert 'mine.py", line 3' in err and "W = np.zeros(3) + np.ones(4)" in err


def test_no_op_found_suggests_the_name(tmp_path, capsys):
    path = learner(tmp_path, "def conv_forward(x, w, b):\n    pass\n")
    status, _, err = run(capsys, path)
    assert status == 2 and "defines none of the ops" in err
    assert "did you mean conv2d_forward" in err


def test_wrong_signature_names_the_function_and_the_expected_one(tmp_path, capsys):
    path = learner(tmp_path, "def conv2d_forward(x, w):\n    return x, None\n")
    status, out, _ = run(capsys, path)
    assert status == 1
    assert "conv2d_forward(x, w) does not take the arguments of " in out
    assert "conv2d_forward(x, w, b, strides=1, padding='same')" in out


def test_their_exception_is_their_op_failing_on_the_smallest_input(tmp_path, capsys):
    path = learner(
        tmp_path,
        """\
        def relu_forward(x):
            n, d = x.shape  # only 2-D inputs
            return np.maximum(x, 0), x
        """,
    )
    status, out, err = run(capsys, path, "--seed", "0")
    assert status == 1 and err == ""
    assert "relu  FAIL  forward: relu_forward raised ValueError" in out
    assert "x = np.array([0.], dtype=np.float64)" in out  # shrunk to the smallest input
    assert 'mine.py", line 4, in relu_forward' in out and "n, d = x.shape" in out
    assert "ValueError: not enough values to unpack" in out
    assert "Traceback" not in err


def test_wrong_shape(tmp_path, capsys):
    path = learner(tmp_path, "def relu_forward(x):\n    return np.maximum(x, 0).ravel(), x\n")
    status, out, _ = run(capsys, path, "--seed", "0")
    assert status == 1 and "relu  FAIL  forward: y has shape (1,), expected (1, 1)" in out


def test_wrong_dtype_float64_out_of_float32_in(tmp_path, capsys):
    path = learner(
        tmp_path,
        """\
        def dense_forward(x, w, b):
            y = np.zeros((x.shape[0], w.shape[1]))
            y += x @ w + b
            return y, (x, w)
        """,
    )
    status, out, _ = run(capsys, path, "--seed", "0")
    assert status == 1
    assert "y is float64 but the inputs are float32" in out
    assert "hint: NumPy makes float64 unless told otherwise" in out


def test_nan(tmp_path, capsys):
    path = learner(
        tmp_path,
        """\
        def relu_forward(x):
            return np.maximum(x, 0), x

        def relu_backward(dy, cache):
            return dy * (cache > 0) / (cache > 0)
        """,
    )
    status, out, _ = run(capsys, path, "--seed", "0")
    assert status == 1 and "backward: dx holds nan at index (0,), where the reference has 0" in out


def test_too_slow_is_stopped_and_shows_where(tmp_path, capsys):
    path = learner(tmp_path, "def relu_forward(x):\n    while True:\n        pass\n")
    status, out, _ = run(capsys, path, "--time-limit", "0.2")
    assert status == 1 and "relu_forward ran longer than 0.2 s" in out
    assert "the first case that ran too long" in out and "while True:" in out


def test_changing_the_input_in_place_fails(tmp_path, capsys):
    path = learner(tmp_path, "def relu_forward(x):\n    x[x < 0] = 0\n    return x, x\n")
    status, out, _ = run(capsys, path, "--seed", "0")
    assert status == 1 and "relu_forward changed its input x in place" in out


def test_the_contract_of_the_return_values(tmp_path, capsys):
    path = learner(tmp_path, "def relu_forward(x):\n    return np.maximum(x, 0)\n")
    status, out, _ = run(capsys, path)
    assert status == 1 and "relu_forward must return (out, cache), got ndarray" in out
    path = learner(
        tmp_path,
        """\
        def dense_forward(x, w, b):
            return x @ w + b, (x, w)

        def dense_backward(dy, cache):
            x, w = cache
            return dy @ w.T, x.T @ dy
        """,
        "two.py",
    )
    status, out, _ = run(capsys, path)
    assert status == 1 and "dense_backward must return (dx, dw, db), got 2 values" in out


def test_the_file_is_never_changed(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = learner(tmp_path, "def relu_forward(x):\n    return x, x\n")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    run(capsys, path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    # nothing written beside it: no __pycache__, no .hypothesis database
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.py"]


def test_a_stub_is_not_written_yet(tmp_path, capsys):
    path = tmp_path / "my_relu.py"
    assert main(["exercise", "relu", "--out", str(path)]) == 0
    status, out, _ = run(capsys, path)
    assert status == 1
    assert "relu  todo  not written yet (relu_forward raises NotImplementedError)" in out


def test_usage_errors_exit_2(tmp_path, capsys):
    path = learner(tmp_path, "def relu_forward(x):\n    return x, x\n")
    status, _, err = run(capsys, path, "--only", "conv2d")
    assert status == 2 and "does not define conv2d" in err
    status, _, err = run(capsys, path, "--only", "convolution")
    assert status == 2 and "unknown op 'convolution'" in err
    status, _, err = run(capsys, path, "--replay", "relu")
    assert status == 2 and "--replay takes OP:SEED" in err
    with pytest.raises(SystemExit) as exc:
        main(["check", str(path), "--time-limit", "-1"])
    assert exc.value.code == 2


def test_replay_reproduces_the_failure(tmp_path, capsys):
    path = learner(
        tmp_path,
        "def relu_forward(x):\n    return np.maximum(x, 0), x\n"
        "def relu_backward(dy, cache):\n    return dy * (cache >= 0)\n",
    )
    status, first, _ = run(capsys, path)
    assert status == 1
    token = first.split("--replay ")[1].split()[0]
    status, again, _ = run(capsys, path, "--replay", token)
    assert status == 1
    failure = first[first.index("relu: the smallest") :]
    assert failure == again[again.index("relu: the smallest") :]


def test_against_tf_without_tensorflow_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "tensorflow", None)  # import fails
    path = learner(tmp_path, "def relu_forward(x):\n    return x, x\n")
    status, _, err = run(capsys, path, "--against", "tf")
    assert status == 2 and "--against tf needs TensorFlow, which is not installed" in err


def test_check_takes_a_namespace_and_returns_a_report():
    def relu_forward(x):
        return x.clip(min=0), x

    report = npcnn.check({"relu_forward": relu_forward}, seed=0)
    assert report.passed and report.result("relu").note == "forward only: no relu_backward"
    with pytest.raises(npcnn.check.UsageError, match="file path, a module or a dict"):
        npcnn.check(42)


def test_a_file_runs_as_a_module_of_its_own(tmp_path, capsys):
    """A dataclass cache works, a helper module beside the file imports, and the
    ``if __name__ == "__main__":`` block does not run."""
    (tmp_path / "helpers.py").write_text("def positive(x):\n    return x > 0\n")
    path = tmp_path / "mine.py"
    path.write_text(
        textwrap.dedent("""\
        from __future__ import annotations

        from dataclasses import dataclass

        import numpy as np
        from helpers import positive


        @dataclass
        class Cache:
            x: np.ndarray


        def relu_forward(x):
            return np.maximum(x, 0), Cache(x)


        def relu_backward(dy, cache):
            return dy * positive(cache.x)


        if __name__ == "__main__":
            raise SystemExit("not when checked")
        """)
    )
    status, out, err = run(capsys, path)
    assert status == 0, out + err


def test_sys_exit_and_a_tuple_for_one_gradient_are_that_ops_failures(tmp_path, capsys):
    path = learner(tmp_path, "import sys\n\ndef relu_forward(x):\n    sys.exit(3)\n")
    status, out, _ = run(capsys, path)
    assert status == 1 and "relu_forward raised SystemExit" in out
    path = learner(
        tmp_path,
        """\
        def relu_forward(x):
            return np.maximum(x, 0), x

        def relu_backward(dy, cache):
            return (dy * (cache > 0),)
        """,
        "tuple.py",
    )
    status, out, _ = run(capsys, path)
    assert status == 1 and "relu_backward must return dx itself, an array, not a tuple" in out


def test_one_line_per_op_and_a_backward_without_its_forward(tmp_path, capsys):
    path = learner(
        tmp_path,
        """\
        def relu_forward(x):
            return np.maximum(x, 0), x

        def relu_backward(dy, cache):
            return dy * (cache > 0)

        def softmax_backward(dp, cache):
            return dp
        """,
    )
    status, out, _ = run(capsys, path)
    assert status == 1
    assert "  relu     ok    30 cases\n" in out
    assert "  softmax  FAIL  softmax_backward is there but not softmax_forward" in out
    assert "1 of 2 ops pass." in out
