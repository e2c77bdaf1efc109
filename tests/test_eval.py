"""``dim-studio eval`` and ``dim_studio.evaluation`` on tiny synthetic scenes with exact ground truth."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from dim_studio import metrics
from dim_studio.engines import create_engine
from dim_studio.engines.base import Engine
from dim_studio.evaluation import METRICS, evaluate_folder
from dim_studio.images import read_alpha, read_image, read_trimap

ENGINES = ("closed-form", "knn")


@pytest.fixture
def bench(synth):
    """Two photos; one ground truth stored as grey RGB (as alphamatting's is)."""
    images, trimaps, alphas = synth.dir("images"), synth.dir("trimaps"), synth.dir("gt")
    synth.photo(images, "one", trimap_dir=trimaps, alpha_dir=alphas, seed=1)
    synth.photo(images, "two", trimap_dir=trimaps, trimap_name="two.png", alpha_dir=alphas,
                alpha_name="two_alpha.png", alpha_as_rgb=True, seed=2, center=(17, 13))
    synth.text_file(images / "README.txt")
    return images, trimaps, alphas


def _expected(bench, engine_name: str) -> dict[str, dict[str, float]]:
    """metrics.evaluate on the engine's output for each photo, computed here."""
    images, trimaps, alphas = bench
    engine = create_engine(engine_name)
    out = {}
    files = {"one.png": ("one_trimap.png", "one.png"), "two.png": ("two.png", "two_alpha.png")}
    for name, (trimap_name, gt_name) in files.items():
        image = read_image(images / name)
        trimap = read_trimap(trimaps / trimap_name, image.shape[:2])
        gt = read_alpha(alphas / gt_name)
        out[name] = metrics.evaluate(engine.estimate(image, trimap), gt, trimap)
    return out


def test_eval_prints_table_and_writes_csv_and_json(bench, synth, run_cli):
    images, trimaps, alphas = bench
    csv_path, json_path = synth.root / "res" / "eval.csv", synth.root / "res" / "eval.json"
    result = run_cli("eval", "--images", images, "--trimaps", trimaps, "--alphas", alphas,
                     "--engine", ENGINES[0], "--engine", ENGINES[1],
                     "--csv", csv_path, "--json", json_path)
    assert result.code == 0, result.err
    assert "Traceback" not in result.err

    lines = [l.split() for l in result.out.splitlines() if l.strip()]
    header = lines[0]
    assert header[:6] == ["engine", "image", "SAD", "MSE", "Gradient", "Connectivity"]
    rows = [l for l in lines if l[0] in ENGINES]
    assert [(r[0], r[1]) for r in rows] == [
        (e, i) for e in ENGINES for i in ("one.png", "two.png", "mean")
    ]
    assert all(len(r) == 7 for r in rows)

    with open(csv_path, newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert [(r["engine"], r["image"]) for r in table] == [(r[0], r[1]) for r in rows]
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["engines"] == list(ENGINES)
    assert data["images"] == ["one.png", "two.png"]

    for engine_name in ENGINES:
        expected = _expected(bench, engine_name)
        per_image = {r["image"]: r for r in table if r["engine"] == engine_name}
        per_image_json = {r["image"]: r for r in data["results"] if r["engine"] == engine_name}
        for image_name, values in expected.items():
            for m in METRICS:
                assert float(per_image[image_name][m]) == pytest.approx(values[m], rel=1e-5, abs=1e-9)
                assert per_image_json[image_name][m] == pytest.approx(values[m], rel=1e-5, abs=1e-9)
            assert float(per_image[image_name]["seconds"]) >= 0
        for m in METRICS:
            mean = np.mean([v[m] for v in expected.values()])
            assert float(per_image["mean"][m]) == pytest.approx(mean, rel=1e-5, abs=1e-9)
            assert data["means"][engine_name][m] == pytest.approx(mean, rel=1e-5, abs=1e-9)
        # The printed table shows the same numbers, rounded.
        printed = next(r for r in rows if r[0] == engine_name and r[1] == "one.png")
        assert float(printed[2]) == pytest.approx(expected["one.png"]["SAD"], abs=6e-4)
        # A real solver on a soft edge: small but non-zero error.
        assert 0 < expected["one.png"]["SAD"] < 0.05


def test_eval_limit_and_default_engine(bench, run_cli):
    images, trimaps, alphas = bench
    result = run_cli("eval", "--images", images, "--trimaps", trimaps, "--alphas", alphas,
                     "--limit", "1")
    assert result.code == 0, result.err
    rows = [l.split() for l in result.out.splitlines() if l.startswith("ifm")]  # the default without weights
    assert [r[1] for r in rows] == ["one.png", "mean"]


class GroundTruthEngine(Engine):
    """A perfect engine: returns the ground truth of the photo it is given."""

    name = "perfect"

    def __init__(self, truths: dict[bytes, np.ndarray]) -> None:
        self.truths = truths

    def estimate(self, image, trimap, *, progress=None, cancel=None):
        return self.truths[np.asarray(image, np.float32).tobytes()]

    def _estimate_crop(self, image, trimap, progress, cancel):  # pragma: no cover - unused
        raise AssertionError


def test_a_perfect_prediction_scores_zero(bench):
    images, trimaps, alphas = bench
    truths = {
        read_image(images / "one.png").tobytes(): read_alpha(alphas / "one.png"),
        read_image(images / "two.png").tobytes(): read_alpha(alphas / "two_alpha.png"),
    }
    seen = []
    results = evaluate_folder(images, trimaps, alphas,
                              {"perfect": GroundTruthEngine(truths),
                               "closed-form": create_engine("closed-form")},
                              on_result=seen.append)
    assert [(r.engine, r.image) for r in seen] == [
        ("perfect", "one.png"), ("closed-form", "one.png"),
        ("perfect", "two.png"), ("closed-form", "two.png"),
    ]
    for row in results.rows_for("perfect"):
        assert (row.SAD, row.MSE, row.Gradient, row.Connectivity) == (0.0, 0.0, 0.0, 0.0)
    assert results.mean("perfect").SAD == 0.0
    assert results.mean("closed-form").SAD > 0.0


def test_eval_errors_are_one_line(bench, synth, run_cli):
    images, trimaps, _ = bench
    empty = synth.dir("empty")
    result = run_cli("eval", "--images", images, "--trimaps", trimaps, "--alphas", empty)
    assert result.code == 1
    assert result.err.startswith("dim-studio: error: no photo in ")
    assert result.err.count("\n") == 1
    missing = run_cli("eval", "--images", images, "--trimaps", trimaps,
                      "--alphas", synth.root / "nope")
    assert missing.code == 1 and "alphas folder not found" in missing.err
    assert "Traceback" not in result.err + missing.err


def test_eval_skips_photos_without_ground_truth(bench, synth, run_cli):
    images, trimaps, alphas = bench
    synth.photo(images, "three", trimap_dir=trimaps, seed=3)  # no ground truth
    result = run_cli("eval", "--images", images, "--trimaps", trimaps, "--alphas", alphas)
    assert result.code == 0
    assert "skipped three.png: no ground-truth alpha" in result.err
    assert "three.png" not in result.out


def test_pairing_is_a_core_module_without_engines_or_batch(bench):
    """Evaluation pairs files through ``dim_studio.pairing``, which needs no engine or batch code."""
    import subprocess
    import sys

    images, trimaps, alphas = bench
    code = (
        "import sys\n"
        "from dim_studio.pairing import ALPHA_SUFFIXES, find_pairs\n"
        f"pairs, ignored = find_pairs({str(images)!r}, {str(alphas)!r}, ALPHA_SUFFIXES, what='alphas')\n"
        "print(sorted((p.rel, p.partner.name) for p in pairs), [p.name for p in ignored])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('dim_studio.engines', 'dim_studio.batch'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "[('one.png', 'one.png'), ('two.png', 'two_alpha.png')] ['README.txt']",
        "[]",
    ]
