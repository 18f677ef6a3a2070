"""Hello World, as a library: a processor defined here, two tasks, one apply.

Run it:  python examples/hello_world.py [OUTPUT_DIR]
It writes OUTPUT_DIR/hello.txt ("Hello World!") and OUTPUT_DIR/shout.txt, whose content
comes from the first task's output through ``${VAR:hello:content}``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from opus import Engine, Result, Task, TaskContext, TaskProcessor


class HelloWorld(TaskProcessor):
    """Writes ``spec.text`` to ``spec.file``."""

    api_version = "examples/hello/v1"

    def create(self, task: Task, ctx: TaskContext) -> Result:
        path = Path(ctx.spec["file"])
        path.write_text(ctx.spec["text"])
        ctx.logger.info("wrote %s", path)
        return Result(outputs={"path": str(path), "content": ctx.spec["text"]})

    update = create

    def delete(self, task: Task, ctx: TaskContext) -> None:
        Path(ctx.spec["file"]).unlink(missing_ok=True)

    def detect_drift(self, task: Task, ctx: TaskContext) -> bool:
        path = Path(ctx.spec["file"])
        return not path.exists() or path.read_text() != ctx.spec["text"]


def main(out_dir: str = ".") -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [
        Task(
            "examples/hello/v1",
            "HelloWorld",
            {"name": "hello"},
            {"file": str(out / "hello.txt"), "text": "Hello World!"},
        ),
        Task(
            "examples/hello/v1",
            "HelloWorld",
            {"name": "shout"},
            {"file": str(out / "shout.txt"), "text": "${VAR:hello:content} ${VAR:greeting}"},
        ),
    ]
    with Engine(state="memory://", entry_points=False) as engine:
        engine.register_processor(HelloWorld)
        result = engine.run("apply", tasks, context="dev", variables={"greeting": "(from opus)"})
    for name, outcome in result.tasks.items():
        print(f"{name}: {outcome.status} ({outcome.action}) -> {outcome.outputs}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
