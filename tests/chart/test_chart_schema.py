"""values.schema.json and the chart's own checks reject bad values with clear messages, through
render_chart and lint_chart alike."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml
from chart_support import CHART_DIR, Render

from orchestrator.external.helm import ChartValuesError, lint_chart

REJECTED: list[tuple[dict[str, Any], list[str]]] = [
    ({"validators": 0}, ["at '/validators'", "minimum: got 0, want 1"]),
    ({"validators": 1001}, ["at '/validators'", "maximum: got 1,001, want 1,000"]),
    ({"validators": "ten"}, ["at '/validators'", "got string, want integer"]),
    (
        {"mode": "turbo"},
        ["at '/mode'", "value must be one of 'fast', 'balanced', 'secure', 'auto'"],
    ),
    (
        {"validators": 4, "authorities": 5},
        [
            "authorities (5) must be <= validators (4)",
            "lower authorities or raise validators",
        ],
    ),
    ({"authorities": 0}, ["at '/authorities'", "minimum: got 0, want 1"]),
    ({"validatorz": 4}, ["additional properties 'validatorz' not allowed"]),
    (
        {
            "chaosMesh": {
                "enabled": True,
                "experiments": [{"name": "bad", "kind": "PodChaos", "action": "partition"}],
            }
        },
        ["/chaosMesh/experiments/0/action", "'pod-kill', 'pod-failure', 'container-kill'"],
    ),
    (
        {
            "validators": 4,
            "chaosMesh": {
                "enabled": True,
                "experiments": [
                    {"name": "x", "kind": "PodChaos", "action": "pod-kill", "validators": [4]}
                ],
            },
        },
        ["chaosMesh.experiments[x] names validator 4 but validators is 4 (indices are 0..3)"],
    ),
]


@pytest.mark.parametrize(("values", "expected"), REJECTED, ids=lambda v: json.dumps(v)[:60])
def test_render_rejects_with_a_clear_message(
    render: Render, values: dict[str, Any], expected: list[str]
) -> None:
    with pytest.raises(ChartValuesError) as caught:
        render(values)
    message = str(caught.value)
    for fragment in expected:
        assert fragment in message
    assert "fix the scenario" in message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    "values",
    [{"validators": 0}, {"validators": 1001}, {"mode": "turbo"}, {"authorities": 7}],
    ids=["validators-0", "validators-1001", "mode-turbo", "authorities-gt-validators"],
)
def test_lint_rejects_too(values: dict[str, Any]) -> None:
    # authorities > validators is a template `fail`, which Helm's lint mode alone lets through.
    with pytest.raises(ChartValuesError):
        lint_chart(CHART_DIR, values)


@pytest.mark.parametrize("validators", [1, 1000])
def test_bounds_are_inclusive(render: Render, validators: int) -> None:
    manifests = render({"validators": validators, "authorities": validators})
    sts = next(m.body for m in manifests if m.kind == "StatefulSet")
    assert sts["spec"]["replicas"] == validators


def test_schema_is_valid_draft7_and_accepts_the_default_values() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    jsonschema.Draft7Validator(schema).validate(defaults)
    assert schema["properties"]["validators"]["minimum"] == 1
    assert schema["properties"]["validators"]["maximum"] == 1000
    assert schema["properties"]["authorities"]["maximum"] == 1000
