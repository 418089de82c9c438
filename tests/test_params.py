import re

import pytest
import yaml

from conftest import ROOT
from edgecompress.core import params
from edgecompress.core.errors import UserError
from edgecompress.methods import clustering, pruning
from edgecompress.report import selection


def test_shipped_params_are_valid():
    from edgecompress import methods

    values = params.load(*params.SECTIONS, *methods.RULES, "report", path=ROOT / "params.yaml",
                         schemas={**methods.RULES, "report": selection.Report})
    assert values["data"]["source"] == "digits"
    for name, entry in values["models"].items():
        params.settings(values[entry["method"]], methods.RULES[entry["method"]], name, entry)


@pytest.mark.parametrize("rule, good, bad", [
    (params.integer(1), [1, 30], [0, 1.5, True, "3"]),
    (params.number(0, 1, low_open=True, high_open=True), [0.5, 0.01], [0, 1, "0.5", None]),
    (params.one_of("adam", "sgd"), ["adam"], ["Adam", None]),
    (params.list_of("fp32", "int8"), [["fp32"], ["int8", "fp32"]], [[], ["fp32", "fp32"], "fp32", ["int4"]]),
    (params.BOOLEAN, [True, False], [1, "yes"]),
    (pruning.SPARSITY, [0, 0.5, 0.99], [1, 1.0, -0.1]),
    (clustering.CLUSTERING["clusters"], [2, 256], [1, 0, 2.5]),
    (params.rule_of(pruning.Prune.rules, "end_step"), ["auto", 1, 500], [0, "end", 1.5]),
])
def test_rules_accept_and_refuse(rule, good, bad):
    for value in good:
        params.check({"k": rule}, {"k": value})
    for value in bad:
        with pytest.raises(UserError, match=r"^params: k = .* is not allowed; expected [a-z]"):
            params.check({"k": rule}, {"k": value})


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


def graph(**entries):
    """The shipped `models` with `entries` added or replaced."""
    return {**yaml.safe_load((ROOT / "params.yaml").read_text())["models"], **entries}


@pytest.mark.parametrize("entries, message", [
    ({"mine": {"method": "prune", "from": "nowhere"}}, r"models.mine.from = 'nowhere' is not allowed; expected a model"),
    ({"mine": {"method": "prune"}}, r"models.mine = .* is not allowed; expected \{method: NAME, from: NAME\}"),
    ({"mine": {"method": "prune", "from": ["baseline"]}}, r"models.mine = .* not allowed; expected \{method: NAME"),
    ({"mine": {"method": "prune", "from": "baseline", "after": "x"}}, r"models.mine = .* is not allowed"),
    ({"a": {"method": "prune", "from": "b"}, "b": {"method": "qat", "from": "a"}},
     r"models.a.from = 'b' is not allowed: the chain comes back to a \(a <- b <- a\)"),
    ({"mine": {"method": "qat", "from": "pruned", "teacher": "qat"}},
     r"models.mine.teacher = 'qat' is not allowed; expected a model it comes from: pruned, baseline"),
    ({"mine-2": {"method": "prune", "from": "baseline"}}, r"models.mine-2 is not allowed; names use letters"),
    ({"baseline": {"method": "prune", "from": "baseline"}}, r"models.baseline is not allowed"),
    ({"mine": {"method": "prune", "from": "baseline", "with": 0.5}}, r"models.mine.with = 0.5 is not allowed"),
])
def test_the_model_graph_is_checked(entries, message):
    with pytest.raises(UserError, match=message):
        params.check({"models": params.SECTIONS["models"]}, {"models": graph(**entries)})


def test_a_chain_may_start_from_a_student_and_learn_from_any_model_it_comes_from():
    chain = graph(small={"method": "prune", "from": "student_distilled"},
                  smaller={"method": "filter_prune_kd", "from": "small", "teacher": "baseline"})
    params.check({"models": params.SECTIONS["models"]}, {"models": chain})
    assert params.lineage({**params.UPSTREAM, "small": ("student_distilled",), "smaller": ("small",)}, "smaller") == [
        "small", "student_distilled", "baseline"]


def test_an_entry_is_its_methods_section_under_its_overrides():
    rules = params.fine_tuning(clusters=params.integer(2))
    section = {"epochs": 2, "learning_rate": 0.1, "clusters": 32}
    entry = {"method": "cluster", "from": "baseline", "with": {"clusters": 8}}
    assert params.settings(section, rules, "mine", entry) == {"epochs": 2, "learning_rate": 0.1, "clusters": 8,
                                                              "augment": params.UPSTREAM_AUGMENT}
    with pytest.raises(UserError, match=r"models.mine.with.clusters = 1 is not allowed; expected an integer >= 2"):
        params.settings(section, rules, "mine", dict(entry, **{"with": {"clusters": 1}}))
    with pytest.raises(UserError, match=r"models.mine.with.init is not a setting of cluster; known: augment, clust"):
        params.settings(section, rules, "mine", dict(entry, **{"with": {"init": "linear"}}))


def test_the_highlighted_budget_must_be_a_budget(tmp_path):
    values = yaml.safe_load((ROOT / "params.yaml").read_text())
    values["report"]["highlight"] = "cheap"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(values))
    with pytest.raises(UserError, match=r"report.highlight = 'cheap' is not allowed; expected one of the budgets"):
        selection.check_highlight(params.load("report", path=tmp_path / "params.yaml",
                                              schemas={"report": selection.Report})["report"])
