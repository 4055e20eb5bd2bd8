"""Errors raised by the rules core. The HTTP shell translates them; the core knows no HTTP."""


class RulesError(Exception):
    """Base class for every error the rules core raises."""


class RuleDefinitionError(RulesError):
    """A rule file is invalid. Raised at start-up, naming the file and the key at fault."""

    def __init__(self, where: str, problem: str):
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


class UnknownRulesVersion(RulesError):
    """A request pinned a rules version that is not loaded."""

    def __init__(self, version: str, available: list[str]):
        self.version = version
        self.available = available
        super().__init__(
            f"rules version {version!r} is not available; available: {', '.join(available)}"
        )


class UnknownCode(RulesError):
    """A request named an exercise or condition code the rule set does not know."""

    def __init__(self, kind: str, code: str):
        self.kind = kind
        self.code = code
        super().__init__(f"unknown {kind} {code!r}")
