import numpy as np
import pytest

from pipeline.method.pseudo_labels import PseudoLabelError, coverage, images_per_class, select

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("n_pool", "n_classes", "expected"),
    [(1000, 10, 20), (100, 10, 16), (27000, 10, 540), (81, 1, 16), (85, 1, 17)],
)
def test_k_rule(n_pool, n_classes, expected):
    assert images_per_class(n_pool, n_classes) == expected


def test_k_rule_parameters():
    assert images_per_class(100, 2, fraction=0.5, minimum=1) == 25
    assert images_per_class(10, 2, fraction=0.1, minimum=3) == 3


def test_top_k_by_top1_confidence():
    probs = np.array(
        [
            [0.9, 0.1, 0.0],
            [0.6, 0.3, 0.1],
            [0.8, 0.1, 0.1],
            [0.1, 0.7, 0.2],
            [0.2, 0.2, 0.6],
        ]
    )
    idx, cls, rank, prob = select(probs, k=2)
    assert idx.tolist() == [0, 2, 3, 4]
    assert cls.tolist() == [0, 0, 1, 2]
    assert rank.tolist() == [1, 1, 1, 1]
    np.testing.assert_allclose(prob, [0.9, 0.8, 0.7, 0.6])


def test_fallback_to_second_then_third_prediction():
    # nobody predicts class 2 first; class 3 is nobody's first or second
    probs = np.array(
        [
            [0.70, 0.05, 0.20, 0.05],
            [0.10, 0.60, 0.25, 0.05],
            [0.50, 0.30, 0.05, 0.15],
        ]
    )
    idx, cls, rank, _ = select(probs, k=5)
    # class 2 falls back to 2nd predictions (images 0, 1) and class 3 to 3rd (image 2), but those
    # images were taken by their top-1 class already, so duplicate removal drops them
    assert list(zip(idx.tolist(), cls.tolist(), rank.tolist())) == [(0, 0, 1), (2, 0, 1), (1, 1, 1)]


def test_third_prediction_fallback():
    probs = np.array([[0.6, 0.3, 0.1], [0.5, 0.3, 0.2]])
    idx, cls, rank, _ = select(probs, k=1)
    # class 0 takes image 0; class 1 (2nd place only) takes image 0 again, dropped as a duplicate;
    # class 2 is nobody's 1st or 2nd, so its 3rd-place images compete: image 1 (0.2) wins
    assert list(zip(idx.tolist(), cls.tolist(), rank.tolist())) == [(0, 0, 1), (1, 2, 3)]
    idx, cls, rank, _ = select(probs, k=1, max_rank=1)
    assert cls.tolist() == [0], "with max_rank=1 there is no fallback"


def test_fallback_selects_when_images_are_free():
    probs = np.array(
        [
            [0.6, 0.3, 0.1],
            [0.7, 0.2, 0.1],
            [0.5, 0.1, 0.4],
        ]
    )
    idx, cls, rank, _ = select(probs, k=1)
    # class 0: image 1 (0.7); class 1: by 2nd prediction, image 0 (0.3 > 0.1 of image... only 0,1 have 1 second)
    # class 2: by 2nd prediction, image 2
    assert list(zip(idx.tolist(), cls.tolist(), rank.tolist())) == [(1, 0, 1), (0, 1, 2), (2, 2, 2)]


def test_duplicates_keep_first_class():
    probs = np.array([[0.5, 0.4, 0.1], [0.45, 0.35, 0.2]])
    idx, cls, _, _ = select(probs, k=2)
    # class 1 falls back to 2nd predictions: images 0 and 1, both already taken by class 0
    assert idx.tolist() == [0, 1] and cls.tolist() == [0, 0]


def test_ties_break_by_index():
    probs = np.full((4, 2), 0.5)
    probs[:, 1] = 0.5 - 1e-9
    idx, _, _, _ = select(probs, k=2)
    assert idx.tolist()[:2] == [0, 1]


def test_coverage_reports_missing_and_fallback_classes():
    # c is nobody's top-1 but image 3's 2nd choice; d is only the 2nd choice of image 1, taken by b
    probs = np.array([[0.7, 0.04, 0.2, 0.06], [0.05, 0.5, 0.15, 0.3], [0.6, 0.25, 0.1, 0.05], [0.55, 0.1, 0.3, 0.05]])
    _, label, rank, _ = select(probs, k=1, max_rank=3)
    report = coverage(label, rank, ["a", "b", "c", "d"])
    assert report == {"per_class": [1, 1, 1, 0], "missing": ["d"], "fallback": ["c"]}


def test_a_single_covered_class_stops_with_a_clear_error():
    probs = np.array([[0.9, 0.1], [0.8, 0.2]])
    _, label, rank, _ = select(probs, k=2, max_rank=1)
    with pytest.raises(PseudoLabelError, match=r"only 1 of 2 classes got pseudo-labels; .*max_rank"):
        coverage(label, rank, ["cat", "dog"])
    assert coverage(*select(probs[:, :1], k=2, max_rank=1)[1:3], ["cat"])["missing"] == []
