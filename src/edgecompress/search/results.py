"""What a search found, read from search/<budget>.json: the pick among the trials that meet the budget, and the
report's "Search" section (every trial's values and figures, the pick with its `dvc exp apply` line, which params
mattered most). Imports no Optuna, so the report stage reads it as data."""
from edgecompress.report import Section, section_markdown
from edgecompress.measure.compare import described
from edgecompress.report.selection import describe_limits, preference

# a trial's figures, in the order of search.study.OBJECTIVES; and the one each `prefer` of a budget minimizes
FIGURES = ("accuracy_lost_points", "gzip_kb", "latency_p50_ms")
PREFERRED = dict(zip(("accuracy", "gzip", "latency"), FIGURES))


def best(records: list, prefer: str) -> dict:
    """The trial that meets the budget with the best `prefer`, ranked as the report ranks models
    (selection.preference: accuracy, gzip or latency first, the others breaking ties)."""
    rank = preference(prefer)
    fitting = [r for r in records if r.get("fits")]
    return min(fitting, key=lambda r: rank(dict(r, gzip_bytes=r["gzip_kb"]))) if fitting else None


def _value(value, varied=()) -> str:
    """A trial's value as its table shows it: a whole model entry by the settings in which the trials' entries
    differ (`varied`)."""
    if isinstance(value, dict):
        return ", ".join(f"{key}: {value.get(key)}" for key in varied)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _varied(values: list) -> list:
    """The keys in which the whole model entries among `values` differ; all their keys where none do."""
    entries = [v for v in values if isinstance(v, dict)]
    keys = sorted({key for entry in entries for key in entry})
    return [k for k in keys if len({str(e.get(k)) for e in entries}) > 1] or keys


def section(result: dict, menu_pick: dict = None) -> Section:
    """The report's "Search" section for one budget, beside `menu_pick` (the budget's pick among params.yaml's
    models: report.selection.recommend)."""
    params = list(dict.fromkeys(p for r in result["trials"] for p in r["values"]))
    paragraphs = [
        f"{len(result['trials'])} trials of `python -m edgecompress.search {result['budget']}`, each a DVC experiment "
        f"named {result['budget']}-<trial>, over {', '.join(f'`{p}`' for p in params)}; each measures "
        f"{', '.join(result['models'])}, and its figures are those of the file the budget picks among them "
        f"({describe_limits(result['limits'])}, best {result['prefer']}; the closest miss where none fits). Trial 0 "
        "is the committed configuration where the space holds it. Seconds: a trial's experiment from start to end "
        f"(those run side by side with --jobs overlap); {sum(r.get('seconds', 0) for r in result['trials']):,.0f} s "
        "in all."]
    pick = result["pick"]
    if pick:
        paragraphs.append(
            f"Pick: trial {pick['number']}, {pick['model']} {pick['quantization']}: accuracy {pick['accuracy']:.4f} "
            f"(against the reference: {described(pick, pick['images'])}), gzip {pick['gzip_kb']:,.1f} KB, "
            f"p50 {pick['latency_p50_ms']:.4f} ms. `{result['apply']}` brings it into the workspace.")
    else:
        paragraphs.append("No trial meets the budget.")
    if menu_pick:
        paragraphs.append(f"The fixed menu's pick for this budget: {menu_pick['text']}")
    if result["importance"]:
        paragraphs.append(f"Importance for the budget's preference ({result['prefer']}; fANOVA over the complete "
                          "trials): " + ", ".join(f"`{p}` {v:.2f}" for p, v in result["importance"].items()) + ".")
    varied = {p: _varied([r["values"].get(p) for r in result["trials"]]) for p in params}
    table = [[str(r["number"]), *(_value(r["values"].get(p, ""), varied[p]) for p in params), str(r.get("seconds", "")),
              *((f"{r['model']} {r['quantization']}", f"{r['accuracy']:.4f}", f"{-r['accuracy_lost_points']:+.2f}",
                 f"{r['gzip_kb']:,.1f}", f"{r['latency_p50_ms']:.4f}", "yes" if r["fits"] else "no")
                if r["state"] == "COMPLETE" else (r["state"].lower(), "", "", "", "", ""))] for r in result["trials"]]
    return Section(f"Search: {result['budget']}", paragraphs,
                   ["trial", *params, "seconds", "model", "accuracy", "Δ points", "gzip KB", "p50 ms", "fits"], table,
                   figures=(f"search_{result['budget']}",))


def markdown(result: dict, menu_pick: dict = None) -> str:
    return section_markdown(section(result, menu_pick))
