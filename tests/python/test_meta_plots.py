"""recarena.meta_plots draws meta-training curves from recarena-meta --metrics files (handmade ones,
and one from a real two-iteration run, continued, when the binary is built), counts a continued
run's env steps on from the run before it, and refuses what is not such a file with exit 2 naming
it."""
from __future__ import annotations

import json
import subprocess

import pytest

pytest.importorskip("matplotlib")

from recarena import meta_plots  # noqa: E402
from recarena.tune.runner import MetaNotFoundError, find_meta_binary  # noqa: E402
from test_plots import _check  # noqa: E402


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _run(first_iter, steps):
    """The lines one recarena-meta run appends: val at its start, then a train and a val line per
    iteration of 100 env steps, then done."""
    rows = [{"kind": "val", "iter": first_iter, "env_steps": 0, "R@0": 1.0, "R@1": 1.0,
             "R@5w": 2.0, "score": 2.0}]
    for i, s in enumerate(steps, first_iter + 1):
        rows += [{"kind": "train", "iter": i, "env_steps": s, "meta_return": s / 100},
                 {"kind": "val", "iter": i, "env_steps": s, "R@0": s / 50, "R@1": 1.0,
                  "R@5w": s / 25, "score": s / 25}]
    return rows + [{"kind": "done", "iter": first_iter + len(steps), "env_steps": steps[-1],
                    "best_score": 8.0, "best_iter": 2, "stopped": "budget"}]


def test_a_continued_run_is_counted_on_from_the_run_before(tmp_path):
    path = _write(tmp_path / "reptile.jsonl", _run(0, [100, 200]) + _run(2, [100, 200]))
    curves = meta_plots.read_metrics(path)
    assert [s for s, _ in curves["score"]] == [0, 100, 200, 200, 300, 400]
    assert [v for _, v in curves["score"]] == [2, 4, 8, 2, 4, 8]
    assert curves["meta_return"] == [(100, 1), (200, 2), (300, 1), (400, 2)]
    assert [v for _, v in curves["R@0"]] == [1, 2, 4, 1, 2, 4]


def test_the_running_mean_averages_the_window_before_each_point():
    nan = float("nan")
    assert meta_plots.running_mean([1, 3, 5, nan, 9], 2) == [1, 2, 4, 5, 9]
    assert meta_plots.running_mean([2, 4], 1) == [2, 4]


def test_curves_of_several_runs_in_one_png_labelled_by_file(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    paths = [_write(tmp_path / "a" / "reptile.jsonl", _run(0, [100, 200])),
             _write(tmp_path / "b" / "reptile.jsonl", _run(0, [100])),
             _write(tmp_path / "multitask.jsonl", _run(0, [150, 300])[1:])]  # no val at start
    out = tmp_path / "meta_training.png"
    assert meta_plots.main(paths + ["--out", str(out), "--title", "ECommerce-v1"]) == 0
    _check([str(out)], ["meta_training.png"])
    assert meta_plots._labels(paths) == ["a/reptile", "b/reptile", "multitask"]


@pytest.mark.parametrize("text, named", [
    ('{"kind": "val", "env_steps": 0, "score": 1}\nnot json\n', "line 2: not JSON"),
    ("[1, 2]\n", "line 1: not a JSON object"),
    ('{"kind": "done", "env_steps": 5}\n', "no train or val lines"),
    ("", "no train or val lines"),
])
def test_what_is_not_a_metrics_file_is_exit_2_naming_it(tmp_path, capsys, text, named):
    path = tmp_path / "m.jsonl"
    path.write_text(text)
    out = tmp_path / "o.png"
    assert meta_plots.main([str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and named in err
    assert not out.exists()


def test_a_missing_file_or_an_unwritable_out_is_exit_2(tmp_path, capsys):
    assert meta_plots.main([str(tmp_path / "none.jsonl")]) == 2
    assert "none.jsonl" in capsys.readouterr().err
    good = _write(tmp_path / "r.jsonl", _run(0, [100]))
    assert meta_plots.main([good, "--out", str(tmp_path / "no" / "dir" / "x.png")]) == 2
    assert "x.png" in capsys.readouterr().err


def test_curves_of_a_real_recarena_meta_run_continued(tmp_path):
    try:
        meta = find_meta_binary()
    except MetaNotFoundError as e:
        pytest.skip(f"recarena-meta is not built: {e}")
    metrics, last = tmp_path / "reptile.jsonl", tmp_path / "last.safetensors"
    tiny = ["--quiet", "--train-tasks", "train:0-3", "--val-tasks", "val:0-1", "--meta-batch", "2",
            "--envs-per-task", "4", "--inner-steps", "2", "--rollout-len", "8", "--val-every", "1",
            "--iters", "2", "--metrics", str(metrics), "--checkpoint-last", str(last)]
    subprocess.run([meta, *tiny], check=True, timeout=300)
    subprocess.run([meta, *tiny, "--checkpoint-in", str(last)], check=True, timeout=300)
    curves = meta_plots.read_metrics(str(metrics))
    steps = [s for s, _ in curves["score"]]
    assert len(steps) == 6 and steps == sorted(steps) and steps[-1] > steps[2] > 0
    out = tmp_path / "m.png"
    assert meta_plots.main([str(metrics), "--out", str(out)]) == 0
    _check([str(out)], ["m.png"])
