import re

import pytest
import yaml

from conftest import ROOT
from edgecompress.core import params
from edgecompress.core.errors import UserError


def test_shipped_params_are_valid():
    values = params.load(*params.SCHEMA, path=ROOT / "params.yaml")
    assert values["data"]["source"] == "digits"


@pytest.mark.parametrize("rule, good, bad", [
    (params.integer(1), [1, 30], [0, 1.5, True, "3"]),
    (params.number(0, 1, low_open=True, high_open=True), [0.5, 0.01], [0, 1, "0.5", None]),
    (params.one_of("adam", "sgd"), ["adam"], ["Adam", None]),
    (params.list_of("fp32", "int8"), [["fp32"], ["int8", "fp32"]], [[], ["fp32", "fp32"], "fp32", ["int4"]]),
    (params.BOOLEAN, [True, False], [1, "yes"]),
    (params.SPARSITY, [0, 0.5, 0.99], [1, 1.0, -0.1]),
    (params.CLUSTERS, [2, 256], [1, 0, 2.5]),
    (params.END_STEP, ["auto", 1, 500], [0, "end", 1.5]),
])
def test_rules_accept_and_refuse(rule, good, bad):
    for value in good:
        rule("k", value)
    for value in bad:
        with pytest.raises(UserError, match=rf"params: k = .* is not allowed; expected {re.escape(rule.describe[:10])}"):
            rule("k", value)


def test_missing_and_unknown_keys_and_sections(tmp_path):
    values = yaml.safe_load((ROOT / "params.yaml").read_text())
    del values["train"]["epochs"]
    values["train"]["epocs"] = 3
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(UserError, match="train.epocs is not a known key"):
        params.load("train", path=path)
    del values["train"]["epocs"]
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(UserError, match="train.epochs is missing"):
        params.load("train", path=path)
    del values["train"]
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(UserError, match="section 'train' is missing"):
        params.load("train", path=path)
    with pytest.raises(UserError, match="not found"):
        params.load("data", path=tmp_path / "nope.yaml")


def cluster_section(variants):
    values = yaml.safe_load((ROOT / "params.yaml").read_text())["cluster"]
    return {"cluster": dict(values, variants=variants)}


@pytest.mark.parametrize("variants, message", [
    ({}, "cluster.variants must be a non-empty mapping"),
    ("kpp32", "cluster.variants must be a non-empty mapping"),
    ({"kpp-32": {"clusters": 32, "init": "linear"}}, "cluster.variants.kpp-32 is not allowed; names use"),
    ({"kpp32": {"clusters": 32}}, "cluster.variants.kpp32.init is missing"),
    ({"kpp32": {"clusters": 32, "init": "linear", "seed": 1}}, "cluster.variants.kpp32.seed is not a known key"),
    ({"ok": {"clusters": 8, "init": "random"}, "bad": {"clusters": 1, "init": "random"}},
     r"cluster.variants.bad.clusters = 1 is not allowed; expected an integer >= 2"),
])
def test_cluster_variants_are_checked_one_by_one(variants, message):
    with pytest.raises(UserError, match=message):
        params.validate(cluster_section(variants), {"cluster": params.SCHEMA["cluster"]})


def test_any_number_of_named_variants_is_accepted():
    variants = {"kpp16": {"clusters": 16, "init": "kmeans_plus_plus"}, "db8": {"clusters": 8, "init": "density_based"}}
    params.validate(cluster_section(variants), {"cluster": params.SCHEMA["cluster"]})


def test_a_variant_is_its_settings_over_the_shared_ones():
    section = {"epochs": 4, "learning_rate": 0.1, "skip_layers": [], "variants": {"kpp8": {"clusters": 8, "init": "linear"}}}
    assert params.variant(section, "cluster", "kpp8") == {"epochs": 4, "learning_rate": 0.1, "skip_layers": [],
                                                          "clusters": 8, "init": "linear"}
    with pytest.raises(UserError, match=r"params: cluster.variants has no 'kpp9'; variants: kpp8"):
        params.variant(section, "cluster", "kpp9")


def test_the_highlighted_budget_must_be_a_budget(tmp_path):
    values = yaml.safe_load((ROOT / "params.yaml").read_text())
    values["report"]["highlight"] = "cheap"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(values))
    with pytest.raises(UserError, match=r"report.highlight = 'cheap' is not allowed; expected one of the budgets"):
        params.load("report", path=tmp_path / "params.yaml")
