"""``m3ter-mock validate [SPEC]``: openapi-spec-validator, then the project's own lint.

* every ``$ref`` resolves;
* every operationId is unique and bound to a handler of the mock;
* every example (of a schema, a media type or a parameter) is valid against its schema,
  and so is every example a schema inherits through ``allOf`` (Schemathesis sends those);
* every operation documents its error responses (see ``_required_errors``);
* every ``pattern`` compiles in Python and as an ECMAScript regular expression (with and
  without the ``u`` flag, using Node.js when it is installed), and uses no construct the
  two read differently;
* every link names an operation that exists, parameters that operation has, body fields
  its request body declares, and response fields the source response declares.

Each problem is printed with its JSON path (``#/paths/~1oauth~1token/post``); the exit
status is 1 when there is any.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
LOCATIONS = ("path", "query", "header", "cookie")


@dataclass(frozen=True, order=True)
class Problem:
    path: str  # JSON pointer into the spec, as "#/a/b"
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: [{self.rule}] {self.message}"


def pointer(*parts: Any) -> str:
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class Spec:
    """The document, with ``$ref`` resolution that reports instead of raising."""

    def __init__(self, document: dict):
        self.document = document

    def lookup(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise KeyError(f"only local references are supported: {ref!r}")
        node: Any = self.document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, list):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise KeyError(f"{ref!r} does not resolve")
        return node

    def deref(self, node: Any) -> Any:
        seen = set()
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                raise KeyError(f"{ref!r} refers to itself")
            seen.add(ref)
            node = self.lookup(ref)
        return node

    def resolved(self, node: Any, depth: int = 0) -> Any:
        """A copy with every reference replaced by its target (cycles cut at depth 40)."""
        if depth > 40:
            return {}
        if isinstance(node, dict):
            if "$ref" in node:
                return self.resolved(self.lookup(node["$ref"]), depth + 1)
            # A discriminator's mapping names schemas by reference; oneOf already decides.
            return {k: self.resolved(v, depth + 1) for k, v in node.items() if k != "discriminator"}
        if isinstance(node, list):
            return [self.resolved(v, depth + 1) for v in node]
        return node

    def operations(self) -> Iterable[tuple[str, str, dict, dict]]:
        for path, item in (self.document.get("paths") or {}).items():
            item = self.deref(item) if isinstance(item, dict) else {}
            for method in METHODS:
                if isinstance(item.get(method), dict):
                    yield path, method, item[method], item

    def parameters(self, item: dict, operation: dict) -> dict[tuple[str, str], dict]:
        found = {}
        for source in (item.get("parameters") or [], operation.get("parameters") or []):
            for parameter in source:
                parameter = self.deref(parameter)
                found[(parameter.get("in"), parameter.get("name"))] = parameter
        return found


def _walk(node: Any, where: tuple) -> Iterable[tuple[tuple, Any]]:
    yield where, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, where + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, where + (index,))


def declared_properties(spec: Spec, schema: Any, depth: int = 0) -> set[str] | None:
    """Property names a schema declares (through allOf/anyOf/oneOf); None when it allows
    any (no ``properties`` anywhere, or ``additionalProperties`` is open)."""
    if depth > 20:
        return None
    schema = spec.deref(schema)
    if not isinstance(schema, dict):
        return None
    names: set[str] = set(schema.get("properties") or {})
    open_ended = not names
    for keyword in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(keyword) or []:
            inner = declared_properties(spec, branch, depth + 1)
            if inner is None:
                continue
            names |= inner
            open_ended = False
    if schema.get("additionalProperties") not in (None, False) and names:
        return None
    return None if open_ended else names


# -- the rules ------------------------------------------------------------------------------
def check_refs(spec: Spec) -> list[Problem]:
    problems = []
    for where, node in _walk(spec.document, ()):
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            try:
                spec.lookup(node["$ref"])
            except (KeyError, IndexError, ValueError) as error:
                problems.append(Problem(pointer(*where), "ref", str(error.args[0] if error.args else error)))
    return problems


def check_openapi(document: dict) -> list[Problem]:
    from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator

    version = str(document.get("openapi", ""))
    validator_class = OpenAPIV31SpecValidator if version.startswith("3.1") else OpenAPIV30SpecValidator
    problems = []
    try:
        for error in validator_class(document).iter_errors():
            where = list(getattr(error, "absolute_path", []) or [])
            message = str(getattr(error, "message", error)).splitlines()[0]
            problems.append(Problem(pointer(*where), "openapi", message))
    except Exception as error:  # the validator raises on some documents instead of reporting
        problems.append(Problem("#", "openapi", f"openapi-spec-validator stopped: {type(error).__name__}: "
                                               f"{str(error).splitlines()[0][:300]}"))
    return problems


def check_operation_ids(spec: Spec, handlers: Mapping[str, Any] | None) -> list[Problem]:
    problems = []
    seen: dict[str, str] = {}
    for path, method, operation, _ in spec.operations():
        where = pointer("paths", path, method)
        operation_id = operation.get("operationId")
        if not operation_id:
            problems.append(Problem(where, "operation-id", "no operationId"))
            continue
        if operation_id in seen:
            problems.append(Problem(where, "operation-id", f"operationId {operation_id!r} is also used at {seen[operation_id]}"))
            continue
        seen[operation_id] = where
        if handlers is not None and not callable(handlers.get(operation_id)):
            problems.append(Problem(where, "handler", f"operationId {operation_id!r} is bound to no handler"))
    if handlers is not None:
        for name in sorted(set(handlers) - set(seen)):
            problems.append(Problem("#/paths", "handler", f"handler {name!r} serves no operation of this spec"))
    return problems


def _example_errors(spec: Spec, schema: Any, example: Any) -> list[str]:
    from openapi_schema_validator import OAS30Validator

    try:
        resolved = spec.resolved(schema)
    except (KeyError, IndexError):
        return []  # reported by check_refs
    try:
        return sorted(f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                      for e in OAS30Validator(resolved).iter_errors(example))
    except re.error:
        return []  # a pattern that does not compile: reported by check_patterns


def check_examples(spec: Spec) -> tuple[list[Problem], int]:
    problems: list[Problem] = []
    count = 0

    def check(where: tuple, schema: Any, example: Any, what: str = "example") -> None:
        nonlocal count
        count += 1
        for error in _example_errors(spec, schema, example)[:3]:
            problems.append(Problem(pointer(*where), "example", f"{what} is not valid against its schema: {error}"))

    for where, node in _walk(spec.document, ()):
        if not isinstance(node, dict) or (where and where[-1] in ("properties", "examples")):
            continue
        in_schema_position = "schema" in where or (where[:2] == ("components", "schemas"))
        if "schema" in node and isinstance(node["schema"], dict):
            # a media type or a parameter: its example(s) against its schema
            if "example" in node:
                check(where + ("example",), node["schema"], node["example"])
            for name, example in (node.get("examples") or {}).items():
                try:
                    example = spec.deref(example)
                except KeyError:
                    continue
                if isinstance(example, dict) and "value" in example:
                    check(where + ("examples", name), node["schema"], example["value"])
        elif in_schema_position and "example" in node and "type" in node or (
                in_schema_position and "example" in node and any(k in node for k in ("allOf", "anyOf", "oneOf", "properties"))):
            schema = {k: v for k, v in node.items() if k != "example"}
            check(where + ("example",), schema, node["example"])
        # an example a schema inherits from an allOf member, which Schemathesis also sends
        if in_schema_position and "example" not in node and isinstance(node.get("allOf"), list):
            for index, member in enumerate(node["allOf"]):
                try:
                    target = spec.deref(member)
                except KeyError:
                    continue
                if isinstance(target, dict) and "example" in target:
                    ref = member.get("$ref", f"allOf/{index}") if isinstance(member, dict) else index
                    check(where, node, target["example"], f"the example inherited from {ref}")
    return problems, count


def _required_errors(path: str, method: str, operation: dict, item: dict, spec: Spec,
                     global_security: list) -> dict[str, str]:
    """Error statuses an operation must document, with the reason."""
    required: dict[str, str] = {}
    parameters = spec.parameters(item, operation)
    security = operation.get("security", global_security)
    secured = any(requirement for requirement in (security or []))
    if parameters or "requestBody" in operation:
        required["400"] = "it takes input, which can be malformed"
    if secured:
        required["401"] = "it requires authentication"
        if path.startswith("/organizations/{"):
            required["403"] = "a token may not be valid for every organization"
    entity_params = [name for (location, name) in parameters if location == "path" and name != "orgId"]
    if entity_params:
        required["404" if secured else "404|403"] = f"path parameter {entity_params[0]!r} may name nothing"
    if "requestBody" in operation:
        required["415"] = "it takes a body, which can be of the wrong media type"
        if method == "put":
            required["409"] = "an update can conflict (stale version, duplicate code)"
    return required


def check_error_responses(spec: Spec) -> list[Problem]:
    problems = []
    global_security = spec.document.get("security") or []
    for path, method, operation, item in spec.operations():
        documented = {str(code) for code in (operation.get("responses") or {})}
        for statuses, reason in _required_errors(path, method, operation, item, spec, global_security).items():
            if not documented & set(statuses.split("|")):
                problems.append(Problem(pointer("paths", path, method, "responses"), "errors",
                                        f"documents no {statuses.replace('|', ' or ')} response, but {reason}"))
    return problems


# Constructs Python and ECMAScript read differently (or one of them rejects), looked for
# outside character classes and escapes (see ``_structure``).
_NOT_PORTABLE = [
    (re.compile(r"\(\?P[<=]"), "named groups written (?P<...>) are Python-only"),
    (re.compile(r"\(\?[aiLmsux]+[:)]"), "inline flags are Python-only"),
    (re.compile(r"\\[AZ]"), "\\A and \\Z are Python-only anchors"),
    (re.compile(r"\(\?>|[*+?}]\+"), "atomic groups and possessive quantifiers are not ECMAScript"),
    (re.compile(r"\\[pP]\{"), "\\p{...} means a Unicode class only with ECMAScript's u flag (Python rejects it)"),
    (re.compile(r"\(\?#"), "comments are Python-only"),
]


def _structure(pattern: str) -> str:
    """The pattern with each character class replaced by ``C`` and each escaped character
    other than a letter by ``E``, so the constructs above are not found inside them."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            out.append(char + nxt if nxt.isalpha() else "E")
            i += 2
        elif char == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            out.append("C")
            i = j + 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


def ecmascript_errors(patterns: list[str]) -> dict[str, str] | None:
    """pattern -> error, compiling each as ``new RegExp(p)`` and ``new RegExp(p, "u")`` in
    Node.js; None when Node.js is not installed."""
    node = shutil.which("node")
    if node is None or not patterns:
        return None if node is None else {}
    script = ("const ps = JSON.parse(require('fs').readFileSync(0, 'utf8')); const out = {};"
              "for (const p of ps) { for (const f of ['', 'u']) { try { new RegExp(p, f); }"
              " catch (e) { out[p] = (f ? 'with the u flag: ' : '') + e.message; break; } } }"
              "process.stdout.write(JSON.stringify(out));")
    result = subprocess.run([node, "-e", script], input=json.dumps(patterns), capture_output=True,
                            text=True, timeout=60)
    if result.returncode != 0:
        return {p: f"node failed: {result.stderr.strip()[:200]}" for p in patterns}
    return json.loads(result.stdout or "{}")


def check_patterns(spec: Spec, ecmascript: Callable[[list[str]], dict[str, str] | None] = ecmascript_errors
                   ) -> tuple[list[Problem], int, bool]:
    problems = []
    found: list[tuple[tuple, str]] = []
    for where, node in _walk(spec.document, ()):
        if isinstance(node, dict) and isinstance(node.get("pattern"), str) and where[-1:] != ("properties",):
            found.append((where + ("pattern",), node["pattern"]))
    for where, pattern in found:
        try:
            re.compile(pattern)
        except re.error as error:
            problems.append(Problem(pointer(*where), "pattern", f"does not compile in Python: {error}"))
        structure = _structure(pattern)
        for construct, reason in _NOT_PORTABLE:
            if construct.search(structure):
                problems.append(Problem(pointer(*where), "pattern", f"not portable: {reason}"))
    errors = ecmascript(sorted({p for _, p in found}))
    for where, pattern in found:
        if errors and pattern in errors:
            problems.append(Problem(pointer(*where), "pattern", f"does not compile in ECMAScript: {errors[pattern]}"))
    return problems, len(found), errors is not None


_EXPRESSION = re.compile(r"\$(?:response|request)\.body#(?P<pointer>/[^}\s]*)|\$request\.(?P<location>path|query|header)\.(?P<name>[A-Za-z0-9_.-]+)")


def _link_expressions(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _link_expressions(item)
    elif isinstance(value, list):
        for item in value:
            yield from _link_expressions(item)


def check_links(spec: Spec) -> tuple[list[Problem], int]:
    problems: list[Problem] = []
    operations = {op.get("operationId"): (path, method, op, item) for path, method, op, item in spec.operations()}
    count = 0

    def target_of(link: dict, where: str):
        if "operationId" in link and "operationRef" in link:
            problems.append(Problem(where, "link", "has both operationId and operationRef"))
        if "operationId" in link:
            found = operations.get(link["operationId"])
            if found is None:
                problems.append(Problem(where, "link", f"operationId {link['operationId']!r} is no operation of this spec"))
            return found
        if "operationRef" in link:
            ref = link["operationRef"]
            try:
                operation = spec.lookup(ref)
                parts = ref[2:].split("/")
                path = parts[1].replace("~1", "/").replace("~0", "~")
                return path, parts[2], operation, spec.deref(spec.document["paths"][path])
            except (KeyError, IndexError):
                problems.append(Problem(where, "link", f"operationRef {ref!r} does not resolve"))
                return None
        problems.append(Problem(where, "link", "names no operation (operationId or operationRef)"))
        return None

    def check_link(link: dict, where: str, source: tuple | None) -> None:
        nonlocal count
        count += 1
        target = target_of(link, where)
        if target is not None:
            t_path, t_method, t_operation, t_item = target
            t_parameters = spec.parameters(t_item, t_operation)
            for key in link.get("parameters") or {}:
                location, _, name = key.partition(".") if key.split(".", 1)[0] in LOCATIONS else ("", "", key)
                if not any(n == name and (not location or loc == location) for loc, n in t_parameters):
                    problems.append(Problem(where, "link", f"parameter {key!r} is not a parameter of "
                                                           f"{t_method.upper()} {t_path}"))
            if "requestBody" in link:
                body = ((t_operation.get("requestBody") and spec.deref(t_operation["requestBody"]).get("content")) or {})
                schema = (body.get("application/json") or {}).get("schema")
                if schema is None:
                    problems.append(Problem(where, "link", f"gives a requestBody, but {t_method.upper()} {t_path} "
                                                           f"takes no JSON body"))
                elif isinstance(link["requestBody"], dict):
                    declared = declared_properties(spec, schema)
                    for field in link["requestBody"]:
                        if declared is not None and field not in declared:
                            problems.append(Problem(where, "link", f"requestBody field {field!r} is not a property of "
                                                                   f"the body of {t_method.upper()} {t_path}"))
        if source is None:
            return
        s_path, s_method, s_operation, s_item, response = source
        for expression in _link_expressions({"p": link.get("parameters"), "b": link.get("requestBody")}):
            for match in _EXPRESSION.finditer(expression):
                if match.group("pointer") is not None and expression[match.start():].startswith("$response"):
                    first = match.group("pointer").split("/")[1].replace("~1", "/").replace("~0", "~")
                    schema = ((response.get("content") or {}).get("application/json") or {}).get("schema")
                    declared = declared_properties(spec, schema) if schema is not None else set()
                    if declared is not None and first not in declared:
                        problems.append(Problem(where, "link", f"{match.group(0)}: the response of "
                                                               f"{s_method.upper()} {s_path} has no field {first!r}"))
                elif match.group("name"):
                    if (match.group("location"), match.group("name")) not in spec.parameters(s_item, s_operation):
                        problems.append(Problem(where, "link", f"{match.group(0)}: {s_method.upper()} {s_path} "
                                                               f"has no such parameter"))

    for name, link in ((spec.document.get("components") or {}).get("links") or {}).items():
        if isinstance(link, dict) and "$ref" not in link:
            check_link(link, pointer("components", "links", name), None)
    for path, method, operation, item in spec.operations():
        for status, response in (operation.get("responses") or {}).items():
            try:
                response = spec.deref(response)
            except KeyError:
                continue
            for name, link in (response.get("links") or {}).items():
                where = pointer("paths", path, method, "responses", status, "links", name)
                try:
                    resolved = spec.deref(link)
                except KeyError:
                    continue  # reported by check_refs
                check_link(resolved, where, (path, method, operation, item, response))
    return problems, count


@dataclass
class Report:
    problems: list[Problem]
    operations: int
    examples: int
    patterns: int
    links: int
    ecmascript_checked: bool

    @property
    def ok(self) -> bool:
        return not self.problems


def lint(document: dict, *, handlers: Mapping[str, Any] | None = None,
         ecmascript: Callable[[list[str]], dict[str, str] | None] = ecmascript_errors) -> Report:
    spec = Spec(document)
    problems = check_refs(spec)
    problems += check_openapi(document)
    problems += check_operation_ids(spec, handlers)
    example_problems, examples = check_examples(spec)
    problems += example_problems
    problems += check_error_responses(spec)
    pattern_problems, patterns, ecmascript_checked = check_patterns(spec, ecmascript)
    problems += pattern_problems
    link_problems, links = check_links(spec)
    problems += link_problems
    return Report(sorted(set(problems)), sum(1 for _ in spec.operations()), examples, patterns, links,
                  ecmascript_checked)


def handler_table(choice: str, document: dict) -> Mapping[str, Any] | None:
    """The handlers the operationIds must be bound to. For the m3ter API that is the table the
    app resolves through: the written handlers plus one built from each ``x-mock``."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the web stack's deprecation notices
        from mockserver.api.registry import ADMIN_HANDLERS, HANDLERS, handlers_for

    if choice == "none":
        return None
    if choice == "admin":
        return ADMIN_HANDLERS
    if choice == "auto":
        ids = {op.get("operationId") for _, _, op, _ in Spec(document).operations()}
        if len(ids & set(ADMIN_HANDLERS)) > len(ids & set(HANDLERS)):
            return ADMIN_HANDLERS
    try:
        return handlers_for(document)
    except (ValueError, KeyError, TypeError) as error:  # a malformed x-mock: no table to check against
        print(f"m3ter-mock validate: the spec's x-mock extensions cannot be read: {error}", file=sys.stderr)
        return HANDLERS


def load(path: Path) -> dict:
    import yaml

    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", nargs="?", help="the OpenAPI document (default: the m3ter.yaml the mock serves)")
    parser.add_argument("--handlers", choices=("auto", "m3ter", "admin", "none"), default="auto",
                        help="which handler table operationIds must be bound to (auto: the one the spec's "
                             "operationIds belong to; none: skip the check)")


def run(args: argparse.Namespace) -> int:
    from mockserver.resources import spec_path

    path = Path(args.spec) if args.spec else spec_path("m3ter.yaml")
    try:
        document = load(path)
    except (OSError, ValueError) as error:
        print(f"m3ter-mock validate: cannot read {path}: {error}", file=sys.stderr)
        return 2
    if not isinstance(document, dict):
        print(f"m3ter-mock validate: {path} is not an OpenAPI document", file=sys.stderr)
        return 2
    report = lint(document, handlers=handler_table(args.handlers, document))
    for problem in report.problems:
        print(problem)
    ecma = "ECMAScript via Node.js" if report.ecmascript_checked else "ECMAScript portability rules (no Node.js)"
    summary = (f"{path}: {report.operations} operations, {report.examples} examples, {report.patterns} patterns "
               f"({ecma}), {report.links} links checked")
    if report.ok:
        print(f"{summary}: no problems")
        return 0
    print(f"{summary}: {len(report.problems)} problem(s)", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="m3ter-mock validate", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
