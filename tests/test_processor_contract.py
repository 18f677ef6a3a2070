"""opus.testing.ProcessorContract catches broken processors (run by pytester on real files)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

BROKEN = '''
from pathlib import Path

import pytest

from opus import Result, TaskProcessor
from opus.testing import ProcessorContract


class Good(TaskProcessor):
    """Keeps spec.content in the file spec.path."""

    api_version = "good/v1"

    def create(self, task, ctx):
        Path(ctx.spec["path"]).write_text(ctx.spec["content"])
        return Result(resource_checksum=ctx.spec["content"])

    update = create

    def describe(self, task, ctx):
        return {"exists": Path(ctx.spec["path"]).exists()}

    def detect_drift(self, task, ctx):
        path = Path(ctx.spec["path"])
        return not path.exists() or path.read_text() != ctx.spec["content"]

    def delete(self, task, ctx):
        Path(ctx.spec["path"]).unlink(missing_ok=True)

    def rollback(self, task, ctx):
        if ctx.failed_action == "create":
            Path(ctx.spec["path"]).unlink(missing_ok=True)


class CreateLeavesNothing(Good):
    api_version = "no-create/v1"

    def create(self, task, ctx):
        return Result(resource_checksum="x")


class NeverDrifts(Good):
    api_version = "never-drifts/v1"

    def detect_drift(self, task, ctx):
        return False


class DeleteLeavesIt(Good):
    api_version = "delete-leaves/v1"

    def delete(self, task, ctx):
        pass


class DeleteTwiceFails(Good):
    api_version = "delete-twice/v1"

    def delete(self, task, ctx):
        Path(ctx.spec["path"]).unlink()


class FileContract(ProcessorContract):
    @pytest.fixture(autouse=True)
    def specs(self, opus_workdir):
        self.spec = {"path": str(opus_workdir / "r.txt"), "content": "one"}
        self.changed_spec = {"path": str(opus_workdir / "r.txt"), "content": "two"}

    def tamper(self, ctx):
        Path(ctx.spec["path"]).write_text("tampered")

    def exists(self, ctx):
        return Path(ctx.spec["path"]).exists()


class TestGood(FileContract):
    processor = Good


class TestCreateLeavesNothing(FileContract):
    processor = CreateLeavesNothing


class TestNeverDrifts(FileContract):
    processor = NeverDrifts


class TestDeleteLeavesIt(FileContract):
    processor = DeleteLeavesIt


class TestDeleteTwiceFails(FileContract):
    processor = DeleteTwiceFails
'''


@pytest.fixture
def report(pytester: pytest.Pytester) -> pytest.RunResult:
    pytester.makepyfile(test_broken=BROKEN)
    return pytester.runpytest_subprocess("-q", "-rfs", "-p", "no:cacheprovider")


def failed(report: pytest.RunResult) -> set[str]:
    return {
        line.split(" ")[1].split("::", 1)[1]
        for line in report.outlines
        if line.startswith("FAILED ")
    }


def test_contract_passes_a_good_processor_and_catches_each_defect(
    report: pytest.RunResult,
) -> None:
    assert failed(report) == {
        "TestCreateLeavesNothing::test_create_makes_the_resource",
        # ... and what follows from it: nothing to describe, and drift sees it missing
        "TestCreateLeavesNothing::test_describe_after_create",
        "TestCreateLeavesNothing::test_no_drift_right_after_create",
        "TestNeverDrifts::test_tampering_is_reported_as_drift",
        "TestDeleteLeavesIt::test_delete_removes_the_resource",
        "TestDeleteLeavesIt::test_delete_again_is_harmless",
        "TestDeleteTwiceFails::test_delete_again_is_harmless",
    }, report.stdout.str()
    text = report.stdout.str()
    assert "after create, the resource must exist" in text
    assert "did not report drift" in text
    assert "after delete, the resource must be gone" in text
    assert "deleting a resource that is already gone must be harmless" in text
    assert "FileNotFoundError" in text
    # every check of the good processor ran and passed (only failing_spec is optional)
    outcomes = report.parseoutcomes()
    assert outcomes == {"failed": 7, "passed": 33, "skipped": 5}


def test_fixtures_come_from_the_pytest11_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fixtures="""
from opus import Engine

def test_engine(opus_engine, opus_workdir, opus_state_url):
    assert isinstance(opus_engine, Engine)
    assert opus_state_url.startswith("sqlite:///")
    import os
    assert os.getcwd() == str(opus_workdir)
    assert "hello-world/v1" in opus_engine.plugins.processors()
"""
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    blocked = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-p", "no:opus")
    blocked.assert_outcomes(errors=1)
