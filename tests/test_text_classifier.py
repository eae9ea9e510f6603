import pytest
import torch
import torch.nn.functional as F

from pipeline.method import text_classifier as tc

pytestmark = pytest.mark.unit


def test_class_embedding_is_renormalised_mean_of_normalised():
    e = torch.tensor([[3.0, 0.0], [0.0, 0.5]])
    out = tc.class_embedding(e)
    expected = F.normalize(torch.tensor([0.5, 0.5]), dim=0)
    torch.testing.assert_close(out, expected)


def test_cde_texts_combine_descriptions_and_templates():
    texts = tc.cde_texts(["cat", "dog"], ["a photo of a {}."], {"cat": ["a small feline."]})
    assert texts == {"cat": ["a small feline.", "a photo of a cat."], "dog": ["a photo of a dog."]}


def test_build_classifier_rows_are_unit_and_match_manual_mean(smoke_model):
    model, _, tokenizer = smoke_model
    texts = {"circle": ["a round shape.", "a photo of a circle."], "square": ["a photo of a square."]}
    w = tc.build_classifier(model, tokenizer, ["circle", "square"], texts)
    assert w.shape == (2, model.text_projection.shape[1])
    torch.testing.assert_close(w.norm(dim=-1), torch.ones(2))
    with torch.no_grad():
        raw = model.encode_text(tokenizer(texts["circle"])).float()
    manual = F.normalize(F.normalize(raw, dim=-1).mean(0), dim=0)
    torch.testing.assert_close(w[0], manual, rtol=1e-5, atol=1e-6)


def test_zero_shot_probs_pick_the_closest_class():
    w = torch.eye(3)
    feats = torch.tensor([[0.1, 5.0, 0.2], [2.0, 0.0, 0.0]])
    probs = tc.zero_shot_probs(feats, w, logit_scale=100.0)
    assert probs.argmax(-1).tolist() == [1, 0]
    torch.testing.assert_close(probs.sum(-1), torch.ones(2))
