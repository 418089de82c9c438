"""dvc.yaml is the one description of the graph: each stage depends on exactly the library code its script imports."""
import ast
import copy
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

PACKAGE = ROOT / "src" / "edgecompress"


def module_file(dotted: str) -> Path:
    """The file of an edgecompress module or package (its __init__.py)."""
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imported_modules(path: Path) -> set:
    """The edgecompress modules a file imports anywhere in it (lazy imports inside functions too), with the
    packages that importing them runs; a package that scans itself (`iter_modules(__path__)`) imports them all."""
    found = set()
    if path.name == "__init__.py" and "iter_modules(__path__)" in path.read_text():
        package = ".".join(path.parent.relative_to(PACKAGE.parent).parts)
        found |= {f"{package}.{module.stem}" for module in path.parent.glob("*.py") if module.stem != "__init__"}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edgecompress"):
            names = [f"{node.module}.{alias.name}" if module_file(f"{node.module}.{alias.name}").exists()
                     else node.module for alias in node.names]
        else:
            continue
        for name in (n for n in names if n.startswith("edgecompress.")):
            parts = name.split(".")
            found |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
    return found


def library_code(script: Path) -> set:
    """The dvc.yaml deps that cover what `script` imports, transitively: module files, sub-packages as folders."""
    seen, frontier = set(), imported_modules(script)
    while frontier:
        seen |= frontier
        frontier = set().union(*(imported_modules(module_file(m)) for m in frontier)) - seen
    deps = set()
    for module in seen:
        relative = module_file(module).relative_to(ROOT)
        deps.add(str(relative.parents[-4] if len(relative.parts) > 3 else relative))  # src/edgecompress/<sub>
    return deps


def stages(dvc_yaml: dict) -> dict:
    """Each stage (a foreach's `do` once) as written: {name: definition}."""
    return {name: stage.get("do", stage) for name, stage in dvc_yaml["stages"].items()}


def code_dep_faults(stage: dict) -> dict:
    """What a stage's deps lack of its script's imports, and what they list that it does not import."""
    script = ROOT / stage["cmd"].split()[1]
    declared = {d for d in stage["deps"] if d.startswith("src/")}
    expected = library_code(script)
    faults = {"missing": expected - declared, "not imported": declared - expected}
    if str(script.relative_to(ROOT)) not in stage["deps"]:
        faults["missing"].add(str(script.relative_to(ROOT)))
    return {kind: sorted(paths) for kind, paths in faults.items() if paths}


DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())


@pytest.mark.parametrize("name", stages(DVC_YAML))
def test_each_stage_depends_on_exactly_the_code_its_script_imports(name):
    assert code_dep_faults(stages(DVC_YAML)[name]) == {}


def test_a_package_dropped_from_a_stages_deps_is_caught():
    broken = copy.deepcopy(stages(DVC_YAML)["train"])
    broken["deps"].remove("src/edgecompress/data")  # imported by train.runs, which train's script imports
    assert code_dep_faults(broken) == {"missing": ["src/edgecompress/data"]}
    broken["deps"].append("src/edgecompress/report")
    assert code_dep_faults(broken)["not imported"] == ["src/edgecompress/report"]


def test_imports_are_followed_into_sub_packages_and_lazy_imports():
    compress = library_code(ROOT / "stages/compress.py")
    assert "src/edgecompress/methods" in compress
    assert "src/edgecompress/data" in compress  # through train.runs, imported only inside main() after the params check
    assert "src/edgecompress/measure" not in compress


def test_no_stage_runs_the_tooling_and_only_report_runs_the_report():
    """lanes decides how stages run, never what they compute: no stage depends on it."""
    for name, stage in stages(DVC_YAML).items():
        assert "src/edgecompress/tools" not in stage["deps"], name
        assert ("src/edgecompress/report" in stage["deps"]) == (name == "report"), name


def test_every_stage_depends_on_the_pinned_libraries():
    assert all("requirements.lock" in stage["deps"] for stage in stages(DVC_YAML).values())


def test_the_root_package_runs_no_code():
    """Every import runs src/edgecompress/__init__.py, which stages therefore need not list: it is a docstring."""
    body = ast.parse((PACKAGE / "__init__.py").read_text()).body
    assert len(body) == 1 and isinstance(body[0].value, ast.Constant)


def test_the_dag_file_stays_short():
    assert len((ROOT / "dvc.yaml").read_text().splitlines()) <= 120


def test_the_models_the_training_stages_make_are_the_ones_params_knows():
    """dvc.yaml's `trained` (converted and evaluated beside the entries) and params' upstream models agree."""
    from edgecompress.core import params

    assert list(DVC_YAML["vars"][0]["trained"]) == list(params.UPSTREAM)
