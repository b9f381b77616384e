"""The plant configuration: the demo file loads; every bad entry is named with its path."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest.errors import ConfigError
from ingest.plant import load_plant_config, parse_plant_config

SPCMON = Path(sys.executable).parent / "spcmon"
CHAR = "lines[0] 'l1' > processes[0] 'p1' > characteristics[0] 'c1'"

Doc = dict[str, Any]


def _document() -> Doc:
    return {
        "plant": {"id": "plant", "name": "Test plant"},
        "lines": [
            {
                "id": "l1",
                "processes": [
                    {
                        "id": "p1",
                        "characteristics": [
                            {
                                "id": "c1",
                                "lsl": 1.0,
                                "usl": 2.0,
                                "target": 1.5,
                                "source": {"mqtt": {"topic": "l1/p1/result", "field": "f.c1"}},
                            }
                        ],
                    }
                ],
            }
        ],
    }


def _char(doc: Doc) -> dict[str, Any]:
    char: dict[str, Any] = doc["lines"][0]["processes"][0]["characteristics"][0]
    return char


def _with(change: Callable[[Doc], object]) -> Doc:
    doc = copy.deepcopy(_document())
    change(doc)
    return doc


def _second_process_reusing_c1(doc: Doc) -> None:
    doc["lines"][0]["processes"].append({"id": "p2", "characteristics": [dict(_char(doc))]})


BAD_DOCUMENTS = [
    pytest.param(
        _with(lambda d: _char(d).update(lsl=2.0)),
        f"{CHAR}: lsl (2.0) must be below usl (2.0)",
        id="lsl equal to usl",
    ),
    pytest.param(
        _with(lambda d: _char(d).update(lsl=3.0, target=None)),
        f"{CHAR}: lsl (3.0) must be below usl (2.0)",
        id="lsl above usl",
    ),
    pytest.param(
        _with(lambda d: _char(d).update(target=2.5)),
        f"{CHAR}: target (2.5) is above usl (2.0)",
        id="target above usl",
    ),
    pytest.param(
        _with(lambda d: _char(d).update(target=0.5)),
        f"{CHAR}: target (0.5) is below lsl (1.0)",
        id="target below lsl",
    ),
    pytest.param(
        _with(lambda d: _char(d).update(uls=2.0)),
        f"{CHAR} > uls: Extra inputs are not permitted",
        id="misspelt key uls",
    ),
    pytest.param(
        _with(lambda d: _char(d)["source"].update(opcua={"node_id": "ns=2;s=Demo/x"})),
        f"{CHAR} > source: give exactly one of 'opcua' or 'mqtt'",
        id="both opcua and mqtt sources",
    ),
    pytest.param(
        _with(lambda d: _char(d).update(source={})),
        f"{CHAR} > source: give exactly one of 'opcua' or 'mqtt'",
        id="neither source",
    ),
    pytest.param(
        _with(lambda d: _char(d)["source"]["mqtt"].update(topic="l1/st+/result")),
        f"{CHAR} > source > mqtt > topic: '+' must be a whole level",
        id="topic wildcard + inside a level",
    ),
    pytest.param(
        _with(lambda d: _char(d)["source"]["mqtt"].update(topic="l1/#/result")),
        f"{CHAR} > source > mqtt > topic: '#' must be a whole level and the last",
        id="topic wildcard # not last",
    ),
    pytest.param(
        _with(lambda d: _char(d)["source"]["mqtt"].update(topic="$share/spc/l1/+/result")),
        f"{CHAR} > source > mqtt > topic: shared subscriptions are not supported",
        id="shared subscription",
    ),
    pytest.param(
        _with(lambda d: _char(d).update(source={"opcua": {"node_id": "Demo/x"}})),
        f"{CHAR} > source > opcua > node_id: String should match pattern",
        id="malformed node id",
    ),
    pytest.param(
        _with(_second_process_reusing_c1),
        "(top level): characteristic id 'c1' is used more than once",
        id="duplicate characteristic ids",
    ),
    pytest.param(
        _with(lambda d: _char(d).update(chart="xbar-r")),
        f"{CHAR} > chart: Input should be 'imr', 'xbar_r' or 'xbar_s'",
        id="unsupported chart",
    ),
    pytest.param(
        _with(lambda d: _char(d).update(rules=["1", "9"])),
        f"{CHAR}: rules: unknown rule ids ['9']",
        id="unknown rule id",
    ),
    pytest.param(
        _with(lambda d: _char(d).update(rules="westen_electric")),
        f"{CHAR}: rules: unknown preset 'westen_electric'",
        id="unknown rule preset",
    ),
    pytest.param(
        _with(lambda d: _char(d).update(ewma={"lam": 1.5})),
        f"{CHAR} > ewma > lam: Input should be less than or equal to 1",
        id="EWMA weight above 1",
    ),
    pytest.param(
        _with(lambda d: _char(d).update(subgroup_size=5)),
        f"{CHAR}: chart imr plots individuals: subgroup_size must be 1",
        id="subgroup size on an individuals chart",
    ),
    pytest.param(
        _with(lambda d: _char(d).update(chart="xbar_r")),
        f"{CHAR}: chart xbar_r needs subgroup_size 2..25",
        id="subgrouped chart without a subgroup size",
    ),
    pytest.param(
        _with(lambda d: _char(d).update(chart="xbar_r", subgroup_size=26)),
        f"{CHAR} > subgroup_size: Input should be less than or equal to 25",
        id="subgroup too large",
    ),
    pytest.param(
        _with(lambda d: _char(d).update(id="c 1")),
        "lines[0] 'l1' > processes[0] 'p1' > characteristics[0] 'c 1' > id: "
        "String should match pattern",
        id="bad characteristic id",
    ),
    pytest.param(
        _with(lambda d: d["lines"][0].update(id="-l1")),
        "lines[0] '-l1' > id: String should match pattern",
        id="bad line id",
    ),
    pytest.param(
        _with(lambda d: d.update(lines=[])),
        "(top level): define at least one line",
        id="no lines",
    ),
    pytest.param(
        _with(lambda d: d.pop("lines")),
        "lines: Field required",
        id="lines missing",
    ),
    pytest.param(
        _with(lambda d: d["plant"].pop("id")),
        "plant > id: Field required",
        id="plant without id",
    ),
    pytest.param(
        ["plant", "lines"],
        "(top level): expected a mapping with 'plant' and 'lines'",
        id="not a mapping",
    ),
    pytest.param(None, "(top level): expected a mapping", id="empty document"),
]


def test_the_demo_config_loads_with_its_five_characteristics(demo_config_path: Path) -> None:
    plant = load_plant_config(demo_config_path)

    chars = {c.id: (line.id, process.id, c) for line, process, c in plant.iter_characteristics()}
    assert plant.plant.id == "demo"
    assert len(plant.lines) == 2
    assert sorted(chars) == [
        "line1.grinding.roughness",
        "line1.turning.diameter",
        "line1.turning.length",
        "line2.vision.gap",
        "line2.vision.offset",
    ]
    line, process, gap = chars["line2.vision.gap"]
    assert (line, process, gap.lsl, gap.usl, gap.target) == ("line2", "vision", 1.4, 1.6, 1.5)
    assert gap.source is not None
    assert gap.source.mqtt is not None
    assert gap.source.mqtt.field == "features.gap_mm"
    roughness = chars["line1.grinding.roughness"][2]
    assert (roughness.lsl, roughness.usl) == (None, 0.8)


def test_a_good_document_parses() -> None:
    plant = parse_plant_config(_document())

    assert [c.id for _, _, c in plant.iter_characteristics()] == ["c1"]


@pytest.mark.parametrize("topic", ["l1/+/result", "l1/#", "+/p1/+", "#", "l1/p1/result"])
def test_mqtt_topic_filters_with_wildcards_are_accepted(topic: str) -> None:
    plant = parse_plant_config(_with(lambda d: _char(d)["source"]["mqtt"].update(topic=topic)))

    [(_, _, char)] = plant.iter_characteristics()
    assert char.source is not None
    assert char.source.mqtt is not None
    assert char.source.mqtt.topic == topic


@pytest.mark.parametrize(("document", "expected"), BAD_DOCUMENTS)
def test_a_bad_document_is_refused_naming_the_entry_and_the_problem(
    document: object, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_plant_config(document, "plant.yaml")

    assert caught.value.source == "plant.yaml"
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems
    assert expected in str(caught.value)


def test_every_bad_entry_is_reported_at_once() -> None:
    doc = _with(lambda d: _char(d).update(uls=2.0, chart="p"))

    with pytest.raises(ConfigError) as caught:
        parse_plant_config(doc)

    assert len(caught.value.problems) == 2


def test_a_yaml_syntax_error_is_reported_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "plant.yaml"
    path.write_text("plant:\n  id: p\nlines:\n  - id: l1\n    processes: [\n")

    with pytest.raises(ConfigError) as caught:
        load_plant_config(path)

    assert caught.value.source == str(path)
    assert "YAML syntax error at line 6" in str(caught.value)


def test_a_missing_file_is_reported_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"

    with pytest.raises(ConfigError) as caught:
        load_plant_config(path)

    assert str(path) in str(caught.value)
    assert "cannot read the file: No such file or directory" in str(caught.value)


def _spcmon_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SPCMON), "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_config_check_accepts_the_demo_file(demo_config_path: Path) -> None:
    result = _spcmon_check(demo_config_path)

    assert result.returncode == 0, result.stderr
    assert "OK (2 lines, 5 characteristics)" in result.stdout


def test_config_check_exits_2_naming_the_bad_entry_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(_with(lambda d: _char(d).update(uls=2.0))))

    result = _spcmon_check(path)

    assert result.returncode == 2
    assert f"invalid plant configuration {path}" in result.stderr
    assert f"{CHAR} > uls: Extra inputs are not permitted" in result.stderr
    assert result.stdout == ""
