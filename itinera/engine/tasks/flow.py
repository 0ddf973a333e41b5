"""Tasks that arrange other tasks: do, switch, for, fork."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from itinera.engine.execution import Blocked, EndWorkflow, Execution
from itinera.engine.node import Evaluable, TaskNode, fault, truthy
from itinera.errors import ErrorType

if TYPE_CHECKING:
    from itinera.engine.plan import Compiler


class TaskList:
    """An ordered task list with flow directives (the body of ``do``, ``for``, ``try``, ...)."""

    __slots__ = ("tasks", "index")

    def __init__(self, items: Sequence[Mapping[str, Any]], ref: str, compiler: Compiler) -> None:
        self.tasks: list[TaskNode] = []
        for i, item in enumerate(items):
            (name, spec), = item.items()
            self.tasks.append(compiler.task(name, spec, f"{ref}/{i}/{name}"))
        self.index = {t.name: i for i, t in enumerate(self.tasks)}

    def run(self, ex: Execution, f: dict[str, Any], data: Any) -> Any:
        """Run the list in frame ``f`` (keys ``i``: position, ``c``: the current task's frame).

        A list frame is only ever persisted while a task of it waits, and that task's frame
        holds its input; so ``data`` matters only for the first task.
        """
        i: int = f.get("i", 0)
        tasks = self.tasks
        n = len(tasks)
        while i < n:
            task = tasks[i]
            cf = f.get("c")
            if cf is None:
                cf = f["c"] = {"in": data}
            try:
                data = task.run(ex, cf)
            except Blocked:
                f["i"] = i
                raise
            directive = "continue" if "sk" in cf else cf.get("go", task.then)
            del f["c"]
            if directive == "continue":
                i += 1
            elif directive == "exit":
                break
            elif directive == "end":
                raise EndWorkflow(data)
            else:
                i = self.index[directive]
        return data


class DoNode(TaskNode):
    kind = "do"

    def __init__(self, name: str, ref: str, spec: Mapping[str, Any], compiler: Compiler) -> None:
        super().__init__(name, ref, spec, compiler)
        self.seq = TaskList(spec["do"], f"{ref}/do", compiler)

    def body(self, ex: Execution, f: dict[str, Any]) -> Any:
        sf = f.get("s")
        if sf is None:
            sf = f["s"] = {}
        return self.seq.run(ex, sf, f["ti"])


class SwitchNode(TaskNode):
    kind = "switch"

    def __init__(self, name: str, ref: str, spec: Mapping[str, Any], compiler: Compiler) -> None:
        super().__init__(name, ref, spec, compiler)
        self.cases: list[tuple[Evaluable | None, str]] = []
        for item in spec["switch"]:
            (_, case), = item.items()
            when = case.get("when")
            self.cases.append((Evaluable(when, always_expression=True) if when is not None else None, case.get("then", "continue")))

    def body(self, ex: Execution, f: dict[str, Any]) -> Any:
        data = f["ti"]
        default: str | None = None
        for when, then in self.cases:
            if when is None:
                default = then
            elif truthy(self.evaluate(when, data, ex, f)):
                f["go"] = then
                return data
        if default is not None:
            f["go"] = default
        return data


class ForNode(TaskNode):
    kind = "for"

    def __init__(self, name: str, ref: str, spec: Mapping[str, Any], compiler: Compiler) -> None:
        super().__init__(name, ref, spec, compiler)
        loop = spec["for"]
        self.each: str = loop.get("each", "item")
        self.at: str = loop.get("at", "index")
        self.in_ = Evaluable(loop["in"], always_expression=True)
        self.while_ = Evaluable(spec["while"], always_expression=True) if "while" in spec else None
        self.seq = TaskList(spec.get("do", []), f"{ref}/do", compiler)

    def body(self, ex: Execution, f: dict[str, Any]) -> Any:
        if "it" not in f:
            items = self.evaluate(self.in_, f["ti"], ex, f)
            if items is None:
                items = []
            elif isinstance(items, dict):
                items = list(items.values())
            elif not isinstance(items, list):
                raise fault(ErrorType.VALIDATION, 400, "Invalid for.in", f"for.in must yield an array, got {type(items).__name__}", self.ref, retryable=False)
            f["it"] = items
            f["k"] = 0
            f["d"] = f["ti"]
        items = f["it"]
        k: int = f["k"]
        data = f["d"]
        with ex.scoped(self.each, self.at) as scope:
            while k < len(items):
                scope[self.each] = items[k]
                scope[self.at] = k
                if "c" not in f:
                    if self.while_ is not None and not truthy(self.evaluate(self.while_, data, ex, f)):
                        break
                    f["c"] = {}
                data = self.seq.run(ex, f["c"], data)
                del f["c"]
                k += 1
                f["k"] = k
                f["d"] = data
        return data


class ForkNode(TaskNode):
    kind = "fork"

    def __init__(self, name: str, ref: str, spec: Mapping[str, Any], compiler: Compiler) -> None:
        super().__init__(name, ref, spec, compiler)
        fork = spec["fork"]
        self.compete = bool(fork.get("compete", False))
        self.branches: list[TaskNode] = []
        for i, item in enumerate(fork.get("branches", [])):
            (bname, bspec), = item.items()
            self.branches.append(compiler.task(bname, bspec, f"{ref}/fork/branches/{i}/{bname}"))

    def body(self, ex: Execution, f: dict[str, Any]) -> Any:
        states: list[dict[str, Any]] = f.get("b") or [{"f": {"in": f["ti"]}} for _ in self.branches]
        f["b"] = states
        blocked = False
        mark = ex.mark()
        for branch, st in zip(self.branches, states):
            if "o" in st:
                continue
            try:
                out = branch.run(ex, st["f"])
            except Blocked:
                blocked = True
                continue
            st["o"] = out
            del st["f"]
            if self.compete:
                ex.rollback(mark)  # the losers are abandoned with whatever they waited for
                return out
        if blocked:
            raise Blocked
        return [st["o"] for st in states]
