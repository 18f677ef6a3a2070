from __future__ import annotations

import pytest
from support_processors import make_task

from opus import CycleError, GraphError, ManifestError, ValidationErrors
from opus.graph import TaskGraph, build_graph, in_scope


def test_explicit_label_and_implicit_dependencies_order_tasks() -> None:
    tasks = [
        make_task("app", dependencies=[{"labels": {"tier": "db"}}]),
        make_task("web", spec={"upstream": "${VAR:app:url}"}),
        make_task("db1", labels={"tier": "db"}),
        make_task("db2", labels={"tier": "db"}),
        make_task("net"),
        make_task("dns", dependencies=[{"tasks": ["web", "net"]}]),
    ]
    graph = build_graph(tasks, "apply", "dev")
    assert graph.dependencies["app"] == {"db1", "db2"}
    assert graph.dependencies["web"] == {"app"}
    assert graph.dependencies["dns"] == {"web", "net"}
    order = graph.order
    for name, deps in graph.dependencies.items():
        assert all(order.index(d) < order.index(name) for d in deps)
    # ties keep the input order
    assert order == ["db1", "db2", "app", "web", "net", "dns"]


def test_conditional_dependencies_apply_only_to_listed_commands_and_contexts() -> None:
    tasks = [
        make_task("a"),
        make_task(
            "b",
            dependencies=[
                {"tasks": ["a"], "commands": ["delete"]},
                {"tasks": ["a"], "contexts": ["prod"]},
            ],
        ),
    ]
    assert build_graph(tasks, "apply", "dev").dependencies["b"] == set()
    assert build_graph(tasks, "delete", "dev").dependencies["b"] == {"a"}
    assert build_graph(tasks, "apply", "prod").dependencies["b"] == {"a"}


def test_processing_scopes_filter_tasks() -> None:
    only_prod = make_task("p", processingScopes=[{"contexts": ["prod"]}])
    deploy_dev = make_task(
        "d",
        processingScopes=[{"commands": ["apply"], "contexts": ["dev"]}, {"commands": ["delete"]}],
    )
    assert not in_scope(only_prod, "apply", "dev") and in_scope(only_prod, "apply", "prod")
    assert in_scope(deploy_dev, "apply", "dev") and in_scope(deploy_dev, "delete", "test")
    assert not in_scope(deploy_dev, "apply", "test")
    graph = build_graph([only_prod, deploy_dev, make_task("x")], "apply", "dev")
    assert graph.order == ["d", "x"] and graph.out_of_scope == ["p"]


def test_dependency_on_out_of_scope_task_names_both() -> None:
    tasks = [
        make_task("p", processingScopes=[{"contexts": ["prod"]}]),
        make_task("w", dependencies=[{"tasks": ["p"]}]),
    ]
    with pytest.raises(GraphError) as err:
        build_graph(tasks, "apply", "dev")
    assert "'w'" in str(err.value) and "'p'" in str(err.value) and "out of scope" in str(err.value)


def test_unknown_dependencies_are_all_reported() -> None:
    tasks = [
        make_task("a", dependencies=[{"tasks": ["ghost"]}]),
        make_task("b", spec={"x": "${VAR:phantom:key}"}),
    ]
    with pytest.raises(ValidationErrors) as err:
        build_graph(tasks, "apply", "dev")
    text = str(err.value)
    assert "unknown task 'ghost'" in text and "unknown task 'phantom'" in text
    assert "spec.x" in text


def test_cycle_names_every_task_on_it() -> None:
    tasks = [
        make_task("a", dependencies=[{"tasks": ["b"]}]),
        make_task("b", spec={"v": "${VAR:c:out}"}),
        make_task("c", dependencies=[{"tasks": ["a"]}]),
        make_task("free"),
    ]
    with pytest.raises(CycleError) as err:
        build_graph(tasks, "apply", "dev")
    cycle = err.value.cycle
    assert set(cycle) == {"a", "b", "c"} and cycle[0] == cycle[-1]


def test_self_dependency_is_a_cycle() -> None:
    with pytest.raises(CycleError):
        build_graph([make_task("a", spec={"v": "${VAR:a:x}"})], "apply", "dev")


def test_malformed_dependency_fields_name_task_and_field() -> None:
    with pytest.raises(ManifestError) as err:
        build_graph([make_task("a", dependencies=[{"tasks": "b"}])], "apply", "dev")
    assert err.value.task == "a" and err.value.field == "metadata.dependencies[0].tasks"
    with pytest.raises(ManifestError, match="processingScopes"):
        build_graph([make_task("a", processingScopes="prod")], "apply", "dev")


def chain_and_loner(command: str) -> TaskGraph:
    """a <- b <- c (c depends on b, b on a), and d on its own."""
    tasks = [
        make_task("a"),
        make_task("b", dependencies=[{"tasks": ["a"]}]),
        make_task("c", dependencies=[{"tasks": ["b"]}]),
        make_task("d"),
    ]
    return build_graph(tasks, command, "dev")


def test_select_targets_and_excludes() -> None:
    graph = chain_and_loner("apply")
    assert graph.select(targets=["b"]).order == ["a", "b"]
    assert graph.select(excludes=["b"]).order == ["a", "d"]
    with pytest.raises(GraphError, match="no task named 'zz'"):
        graph.select(targets=["zz"])


def test_a_teardown_selects_the_other_way() -> None:
    graph = chain_and_loner("delete")
    assert sorted(graph.select(targets=["b"], teardown=True).tasks) == ["b", "c"]
    assert sorted(graph.select(excludes=["b"], teardown=True).tasks) == ["c", "d"]
    assert sorted(graph.select(targets=["a"], excludes=["c"], teardown=True).tasks) == []
    assert sorted(graph.select(targets=["a", "d"], excludes=["c"], teardown=True).tasks) == ["d"]


def test_ten_thousand_tasks_build_fast_enough_to_be_linear() -> None:
    # not a timing assertion: a quadratic graph builder would take minutes here
    tasks = [
        make_task(
            f"t{i}",
            labels={"g": str(i % 7)},
            spec={"v": f"${{VAR:t{(i - 1) // 2}:out}}"} if i else {},
        )
        for i in range(10_000)
    ]
    graph = build_graph(tasks, "apply", "dev")
    assert len(graph.order) == 10_000 and graph.order[0] == "t0"
