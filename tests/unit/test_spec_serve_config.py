"""Parsing serveConfigV2 with Ray's schema, and locating every problem inside it."""

from __future__ import annotations

import json
import textwrap

import pydantic
import pytest

from rayservice.spec.errors import InvalidSpec, SpecProblem
from rayservice.spec.paths import field_path
from rayservice.spec.serve_config import parse_serve_config, validation_problems

VALID_CONFIG = """
http_options:
  port: 8000
applications:
  - name: fruit
    route_prefix: /fruit
    import_path: fruit.deployment_graph
    runtime_env:
      env_vars:
        RELEASED: 2024-05-01
    deployments:
      - name: MangoStand
        num_replicas: 2
        user_config:
          price: 3
  - name: calc
    route_prefix: /calc
    import_path: conditional_dag.serve_dag
    deployments:
      - name: Router
        num_replicas: auto
        autoscaling_config:
          min_replicas: 1
          max_replicas: 2
"""


def problems_of(config: str) -> list[SpecProblem]:
    with pytest.raises(InvalidSpec) as caught:
        parse_serve_config(textwrap.dedent(config), "svc.yaml")
    return caught.value.problems


def fields_of(config: str) -> list[str]:
    return [problem.field for problem in problems_of(config)]


def test_a_valid_config_is_returned_as_parsed() -> None:
    config = parse_serve_config(VALID_CONFIG, "svc.yaml")

    assert config["applications"][0]["deployments"][0]["user_config"] == {"price": 3}
    assert [app["name"] for app in config["applications"]] == ["fruit", "calc"]


def test_defaults_are_not_added_to_the_returned_config() -> None:
    config = parse_serve_config(VALID_CONFIG, "svc.yaml")

    assert "proxy_location" not in config


def test_date_like_values_stay_strings_so_the_config_is_json() -> None:
    config = parse_serve_config(VALID_CONFIG, "svc.yaml")

    assert config["applications"][0]["runtime_env"]["env_vars"]["RELEASED"] == "2024-05-01"
    assert json.loads(json.dumps(config)) == config


def test_yaml_errors_give_line_and_column_within_the_config() -> None:
    [problem] = problems_of("applications:\n  - name: [unclosed\n")

    assert problem.field == "spec.serveConfigV2"
    assert "line 3, column 1 of the Serve config" in problem.message


@pytest.mark.parametrize("config", ["", "- a\n- b\n", "just text", "a: 1\n---\nb: 2\n"])
def test_anything_but_one_mapping_is_rejected(config: str) -> None:
    [problem] = problems_of(config)

    assert problem.field == "spec.serveConfigV2"
    assert "one YAML mapping" in problem.message


def test_missing_applications_is_reported_by_rays_schema() -> None:
    [problem] = problems_of("http_options: {port: 8000}\n")

    assert (problem.field, problem.message) == ("spec.serveConfigV2.applications", "is required")


def test_duplicate_application_names_point_at_the_second_one() -> None:
    [problem] = problems_of(
        """
        applications:
          - {name: app, route_prefix: /a, import_path: m:a}
          - {name: app, route_prefix: /b, import_path: m:b}
        """
    )

    assert problem.field == "spec.serveConfigV2.applications[1].name"
    assert "applications[0]" in problem.message


def test_applications_without_a_name_share_rays_default_name() -> None:
    fields = fields_of(
        """
        applications:
          - {route_prefix: /a, import_path: m:a}
          - {route_prefix: /b, import_path: m:b}
        """
    )

    assert fields == ["spec.serveConfigV2.applications[1].name"]


def test_duplicate_route_prefixes_point_at_the_second_one() -> None:
    [problem] = problems_of(
        """
        applications:
          - {name: a, route_prefix: /same, import_path: m:a}
          - {name: b, route_prefix: /same, import_path: m:b}
        """
    )

    assert problem.field == "spec.serveConfigV2.applications[1].route_prefix"
    assert problem.valid


def test_applications_without_a_route_prefix_share_rays_default_route() -> None:
    fields = fields_of(
        """
        applications:
          - {name: a, import_path: m:a}
          - {name: b, import_path: m:b}
        """
    )

    assert fields == ["spec.serveConfigV2.applications[1].route_prefix"]


def test_a_null_route_prefix_never_clashes() -> None:
    config = parse_serve_config(
        """
        applications:
          - {name: a, route_prefix: null, import_path: m:a}
          - {name: b, route_prefix: null, import_path: m:b}
        """,
        "svc.yaml",
    )

    assert len(config["applications"]) == 2


def test_fixed_num_replicas_with_autoscaling_points_at_num_replicas() -> None:
    [problem] = problems_of(
        """
        applications:
          - import_path: m:a
            deployments:
              - name: A
              - name: B
                num_replicas: 2
                autoscaling_config: {min_replicas: 1, max_replicas: 3}
        """
    )

    assert problem.field == "spec.serveConfigV2.applications[0].deployments[1].num_replicas"
    assert "autoscaling_config" in problem.message
    assert "auto" in problem.valid


def test_negative_num_replicas_is_one_explicit_problem() -> None:
    [problem] = problems_of(
        """
        applications:
          - import_path: m:a
            deployments:
              - {name: A, num_replicas: -1}
        """
    )

    assert problem.field == "spec.serveConfigV2.applications[0].deployments[0].num_replicas"
    assert "-1" in problem.message
    assert "positive integer" in problem.valid


def test_num_replicas_that_is_neither_a_number_nor_auto_is_located() -> None:
    fields = fields_of(
        """
        applications:
          - import_path: m:a
            deployments:
              - {name: A, num_replicas: many}
        """
    )

    assert fields == ["spec.serveConfigV2.applications[0].deployments[0].num_replicas"]


def test_an_application_without_import_path_is_reported() -> None:
    [problem] = problems_of("applications:\n  - name: a\n")

    assert problem.field == "spec.serveConfigV2.applications[0].import_path"
    assert "import_path" in problem.message
    assert problem.valid


def test_rays_type_errors_point_inside_the_config() -> None:
    [problem] = problems_of(
        """
        http_options: {port: eighty}
        applications: []
        """
    )

    assert problem.field == "spec.serveConfigV2.http_options.port"
    assert problem.valid == "an integer"


def test_rays_enum_errors_list_the_allowed_values() -> None:
    [problem] = problems_of("proxy_location: Nowhere\napplications: []\n")

    assert problem.field == "spec.serveConfigV2.proxy_location"
    assert "EveryNode" in problem.valid


def test_union_member_labels_do_not_appear_in_the_path() -> None:
    [problem] = problems_of(
        """
        applications:
          - import_path: m:a
            deployments:
              - {name: A, autoscaling_config: nonsense}
        """
    )

    assert problem.field == "spec.serveConfigV2.applications[0].deployments[0].autoscaling_config"


def test_all_problems_of_a_config_are_reported_together() -> None:
    fields = fields_of(
        """
        http_options: {port: eighty}
        applications:
          - name: a
          - {name: a, import_path: m:b, route_prefix: /b}
        """
    )

    assert set(fields) == {
        "spec.serveConfigV2.http_options.port",
        "spec.serveConfigV2.applications[0].import_path",
        "spec.serveConfigV2.applications[1].name",
    }


def test_the_field_prefix_can_be_chosen() -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_serve_config("applications:\n  - name: a\n", "body", field="configyaml")

    assert caught.value.problems[0].field == "configyaml.applications[0].import_path"
    assert caught.value.problems[0].source == "body"


@pytest.mark.parametrize(
    ("parts", "path"),
    [
        (("spec", "containers", 0, "image"), "spec.containers[0].image"),
        (("limits", "nvidia.com/gpu"), 'limits["nvidia.com/gpu"]'),
        (("rayStartParams", "num-cpus"), "rayStartParams.num-cpus"),
        ((), ""),
    ],
)
def test_field_path_spells_keys_and_indexes(parts: tuple[str | int, ...], path: str) -> None:
    assert field_path("", *parts) == path


def test_field_path_extends_a_prefix() -> None:
    assert field_path("spec.template", "metadata", "labels") == "spec.template.metadata.labels"


class _UnionHolder(pydantic.BaseModel):
    value: int | list[int]


def test_validation_problems_merge_the_members_of_a_union_into_one_field() -> None:
    data = {"value": "text"}
    with pytest.raises(pydantic.ValidationError) as caught:
        _UnionHolder.model_validate(data)

    [problem] = validation_problems(caught.value.errors(), data, "src", "root")

    assert problem.field == "root.value"
    assert problem.valid == "an integer or a list"


def test_validation_problems_name_a_missing_field_with_its_hint() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        _UnionHolder.model_validate({})

    [problem] = validation_problems(caught.value.errors(), {}, "src", "", {"value": "a number"})

    assert (problem.field, problem.message, problem.valid) == ("value", "is required", "a number")
