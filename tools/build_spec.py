"""Add to ``openapi/m3ter.yaml`` every operation of m3ter's published API that it lacks.

    python tools/build_spec.py REFERENCE.json [--spec openapi/m3ter.yaml] [--out PATH]

REFERENCE.json is m3ter's published OpenAPI document, read from wherever it is (it is never
copied into the project). The tool only ADDS: a path, operation, component schema or tag
that the spec already has is left exactly as it is, byte for byte, comments included,
because the new parts are inserted as text into the existing file. Running it again on its
own output changes nothing.

What it takes from the reference: paths, methods, operationIds, tags, path and query
parameters, request bodies and the success response, and of the schemas only structural
keywords (types, formats, enums, required, lengths, ranges, patterns, composition). Every
summary and description is written by the templates below; the reference's prose and
examples are never used. Error responses are the spec's shared ones.

Each added operation carries ``x-mock`` (see /work/notes/design10.md section 2): the
resource key and the action the mock's generic engine performs, or ``unimplemented`` with
the reason shown in its 501 answer.

Two curated parts are changed on purpose, once: the shared ``OrgId`` parameter loses the
pattern m3ter does not publish, and ``components.responses`` gains ``NotImplemented``.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = ROOT / "openapi" / "m3ter.yaml"

METHODS = ("get", "put", "post", "delete", "patch")
ORG = "/organizations/{orgId}/"
SCHEMA_REF = "#/components/schemas/"

# Singletons: one entity per organization, read with GET and replaced with PUT.
SINGLETONS = {
    "billconfig": "bill configuration",
    "organizationconfig": "organization configuration",
    "customfields": "custom field configuration",
    "support": "support access setting",
}

# Structural schema keywords, in the order they are written out. Everything else (description,
# example, title, deprecated, vendor extensions) is left behind.
SCHEMA_KEYS = (
    "$ref", "type", "format", "nullable", "readOnly", "writeOnly", "enum", "default",
    "minLength", "maxLength", "pattern", "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum",
    "multipleOf", "minItems", "maxItems", "uniqueItems", "required", "discriminator",
    "allOf", "oneOf", "anyOf", "not", "properties", "additionalProperties", "items",
)
NUMBER_KEYS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
STRING_KEYS = {"minLength", "maxLength", "pattern"}
ARRAY_KEYS = {"minItems", "maxItems", "uniqueItems", "items"}
OBJECT_KEYS = {"properties", "additionalProperties", "required"}
KEYS_FOR_TYPE = {
    "string": STRING_KEYS,
    "integer": NUMBER_KEYS,
    "number": NUMBER_KEYS,
    "array": ARRAY_KEYS,
    "object": OBJECT_KEYS,
    "boolean": set(),
}
TYPE_SPECIFIC = NUMBER_KEYS | STRING_KEYS | ARRAY_KEYS | OBJECT_KEYS

# m3ter publishes two Java patterns that neither Python nor ECMAScript compiles (\p{L},
# \p{Cntrl}); the curated spec already writes each rule portably in a named schema, whose
# pattern is used instead (read from the spec, so the rule lives in one place).
PORTABLE_PATTERNS = {
    r"^([^[\p{Cntrl}\s]])|([^[\p{Cntrl}\s]][[^[\p{Cntrl}\s]] ]*[^[\p{Cntrl}\s]])$": "Code",
    r"^[\p{L}_$][\p{L}_$0-9]*$": "AggregationCode",
}

# Why an operation that is not plain CRUD answers 501 until a handler is written for it.
# First match on the path below /organizations/{orgId}/ wins.
REASONS = (
    (r"^measurements(/|$)", "usage ingestion needs the usage engine, which comes next"),
    (r"^fileuploads/", "measurement file uploads need the usage engine, which comes next"),
    (r"^usage/query$", "usage queries need the usage engine, which comes next"),
    (r"^dataexplorer/", "the data explorer needs the usage and billing engines, which come next"),
    (r"/search$", "search expressions are not supported yet"),
    (r"^bills/", "bill actions need the billing engine, which comes next"),
    (r"^billjobs/", "bill jobs need the billing engine, which comes next"),
    (r"^statementjobs/", "statement jobs need the billing engine, which comes next"),
    (r"^lineitems$", "line items across bills need the billing engine, which comes next"),
    (r"/(balancechargeschedules|balancetransactionschedules)/preview$",
     "schedule previews need the billing engine, which comes next"),
    (r"^balances/\{balanceId\}/transactions/summary$", "balance summaries need the billing engine, which comes next"),
    (r"/enddatebillingentities$", "end-dating billing entities is not implemented yet"),
    (r"^accountplans/\{id\}/replace$", "replacing an account plan is not implemented yet"),
    (r"^accounts/\{id\}/children$", "listing child accounts is not implemented yet"),
    (r"^permissionpolicies/", "assigning permission policies is not implemented yet"),
    (r"^resourcegroups/", "resource group membership is not implemented yet"),
    (r"^users/me$", "the caller is an API client, not an m3ter user"),
    (r"^users/", "user permissions, groups and passwords are not implemented yet"),
    (r"^integrationconfigs/", "integration system catalogues are not implemented yet"),
    (r"^integrationruns/", "integration runs are recorded only for webhook deliveries so far"),
    (r"^integrationdestinations/marketplace/", "marketplace usage reports are not implemented yet"),
    (r"^externalmappingconfiguration", "external system catalogues are not implemented yet"),
    (r"^externalmappings/", "external mapping look-ups are not implemented yet"),
    (r"^lookuptables/.*/data", "lookup table data is not implemented yet"),
    (r"^lookuptables/.*/status$", "lookup table revision status changes are not implemented yet"),
)


# Labels where the response schema's name reads badly.
LABELS = {
    "OrgUser": ("user", "users"),
    "OrgUserInvitation": ("invitation", "invitations"),
    "Currency": ("currency", "currencies"),
    "UsageSavedQuery": ("saved usage query", "saved usage queries"),
    "UploadJob": ("measurement file upload job", "measurement file upload jobs"),
    "BillLineItem": ("bill line item", "bill line items"),
    "LookupTableRevisionDataJob": ("lookup table data job", "lookup table data jobs"),
    "ScheduledEventConfiguration": ("scheduled event configuration", "scheduled event configurations"),
    "Charge": ("charge", "charges"),
    "PermissionPolicy": ("permission policy", "permission policies"),
}

# Summaries of actions whose operationId does not read well as a sentence.
SUMMARIES = {
    "GetMe": "Retrieve the calling user",
    "AdminResendTempPass": "Resend a user's temporary password",
    "GetOrgUserPermissions": "List a user's permissions",
    "GetOrgUserGroups": "List a user's groups",
    "PostQueryBillData": "Query bill data (data explorer)",
    "PostUsageDataQuery": "Query usage data",
    "GetIntegrationRun": "Retrieve an integration run",
    "GetIntegrationRunLatest": "Retrieve the latest integration run of an entity",
    "GetIntegrationRunLatestForIds": "Retrieve the latest integration runs of several entities",
    "ListResourceGroupsForId": "List the contents of a resource group",
    "GetResourceGroupPermissions": "List the permissions on a resource group",
    "GetAvailableConfig": "List the available integration configurations",
    "GetUsageReport": "Retrieve a marketplace usage report",
    "EndDateBillingEntitiesForAccount": "End-date the billing entities of an account",
    "EndDateBillingEntitiesForContract": "End-date the billing entities of a contract",
    "ListAccountChildren": "List the child accounts of an account",
    "GetLookupTableRevisionData": "Retrieve the data of a lookup table revision",
    "PutLookupTableRevisionData": "Replace the data of a lookup table revision",
    "DeleteLookupTableRevisionData": "Delete the data of a lookup table revision",
    "GetLookupTableRevisionDataEntry": "Retrieve one entry of a lookup table revision",
    "PutLookupTableRevisionDataEntry": "Replace one entry of a lookup table revision",
    "DeleteLookupTableRevisionDataEntry": "Delete one entry of a lookup table revision",
    "ListExternalMappingsForM3terEntity": "List the external mappings of an m3ter entity",
    "GetExternalMappingOptionsForDestinationForCredentialsId":
        "Get external mapping options for a destination and credentials",
    "ReplaceAccountPlan": "Replace an account plan by a new one",
    "DownloadBillsCsvUrl": "Get a download URL for bills as CSV",
}

ACRONYMS = {"json": "JSON", "csv": "CSV", "url": "URL", "id": "id", "ids": "ids"}


# ------------------------------------------------------------------------------------ YAML


class _Dumper(yaml.SafeDumper):
    """Block style with indented sequences (as the curated file is written), flow style for
    collections of scalars, ``|`` for multi-line text, no anchors."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)

    def ignore_aliases(self, data):
        return True


def _str(dumper, value):
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def _is_leaf(node) -> bool:
    if isinstance(node, dict):
        return all(not isinstance(v, (dict, list)) for v in node.values())
    if isinstance(node, list):
        return all(not isinstance(v, (dict, list)) for v in node)
    return True


class _Flow(dict):
    pass


class _FlowList(list):
    pass


_Dumper.add_representer(_Flow, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v.items(), flow_style=True))
_Dumper.add_representer(_FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
_Dumper.add_representer(dict, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v.items(), flow_style=False))
_Dumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=False))

FLOW_WIDTH = 100


def _styled(node, indent: int):
    """Small leaf collections in flow style (``{type: string}``), the rest in block style."""
    if isinstance(node, dict):
        if node and _is_leaf(node) and len(_flow_text(node)) + indent < FLOW_WIDTH:
            return _Flow(node)
        return {k: _styled(v, indent + 2) for k, v in node.items()}
    if isinstance(node, list):
        if node and _is_leaf(node) and len(_flow_text(node)) + indent < FLOW_WIDTH:
            return _FlowList(node)
        # A one-key mapping in a list reads best as ``- $ref: ...``.
        return [dict(v) if isinstance(v, dict) and len(v) == 1 and _is_leaf(v) else _styled(v, indent + 4)
                for v in node]
    return node


def _flow_text(node) -> str:
    # JSON quotes every string, so this is never shorter than the YAML flow text; it is only
    # a measure of width, and much cheaper than dumping each node twice.
    return json.dumps(node, separators=(", ", ": "), ensure_ascii=False, default=str)


def dump(node, indent: int) -> str:
    """``node`` (a mapping) as YAML text indented by ``indent`` spaces."""
    text = yaml.dump(_styled(node, indent), Dumper=_Dumper, sort_keys=False, width=10_000,
                     allow_unicode=True)
    pad = " " * indent
    return "".join(pad + line if line.strip() else line for line in text.splitlines(keepends=True))


# ----------------------------------------------------------------------------- schemas


class Cleaner:
    """Structural keywords of a reference schema, in a fixed order."""

    def __init__(self, patterns: dict[str, str]):
        self.patterns = patterns
        self.replaced_patterns: Counter = Counter()

    def schema(self, node, *, parameter: bool = False):
        if not isinstance(node, dict):
            return node
        kind = node.get("type")
        allowed = KEYS_FOR_TYPE.get(kind) if isinstance(kind, str) else None
        out = {}
        for key in SCHEMA_KEYS:
            if key not in node:
                continue
            if allowed is not None and key in TYPE_SPECIFIC and key not in allowed:
                continue  # e.g. m3ter's `maximum: 36` on a string id means nothing to a validator
            if parameter and key == "nullable":
                continue  # a query or path value is never null
            value = node[key]
            if key == "properties":
                value = {name: self.schema(sub) for name, sub in value.items()}
            elif key in ("items", "not"):
                value = self.schema(value)
            elif key == "additionalProperties" and isinstance(value, dict):
                value = self.schema(value)
            elif key in ("allOf", "oneOf", "anyOf"):
                value = [self.schema(sub) for sub in value]
                if key == "allOf":
                    # An allOf member that only carried prose is now {}, which constrains nothing.
                    value = [sub for sub in value if sub != {}] or [{}]
            elif key == "discriminator":
                value = {k: v for k, v in value.items() if k in ("propertyName", "mapping")}
            elif key == "pattern" and value in self.patterns:
                self.replaced_patterns[value] += 1
                value = self.patterns[value]
            out[key] = copy.deepcopy(value)
        if list(out) == ["allOf"] and len(out["allOf"]) == 1 and list(out["allOf"][0]) == ["$ref"]:
            out = out["allOf"][0]  # m3ter wraps a $ref in allOf to describe it; the prose is gone
        if "$ref" in out and len(out) > 1:
            # Siblings of $ref are ignored in OpenAPI 3.0; keep only what wrapping in allOf keeps.
            ref = out.pop("$ref")
            out = {"allOf": [{"$ref": ref}], **out}
        return out


def refs_in(node, found: set[str]) -> set[str]:
    """Names of the component schemas ``node`` refers to ($ref or discriminator mapping)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
            found.add(ref[len(SCHEMA_REF):])
        mapping = node.get("discriminator", {}).get("mapping") if isinstance(node.get("discriminator"), dict) else None
        for target in (mapping or {}).values():
            if isinstance(target, str) and target.startswith(SCHEMA_REF):
                found.add(target[len(SCHEMA_REF):])
        for value in node.values():
            refs_in(value, found)
    elif isinstance(node, list):
        for value in node:
            refs_in(value, found)
    return found


# --------------------------------------------------------------------------- words


def words(name: str) -> list[str]:
    """CamelCase (or dotted, or spaced) name -> lower-case words."""
    parts = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z][a-z0-9]*|[A-Z]+|[0-9]+", name)
    return [p.lower() for p in parts]


def plural(label: str) -> str:
    if label.endswith("y") and not label.endswith(("ay", "ey", "oy", "uy")):
        return label[:-1] + "ies"
    if label.endswith(("s", "x", "ch", "sh")):
        return label + "es"
    return label + "s"


def label_of(schema_name: str) -> tuple[str, str]:
    base = re.sub(r"^v2\.", "", schema_name)
    base = re.sub(r"Response$", "", base)
    if base in LABELS:
        return LABELS[base]
    label = " ".join(words(base))
    return label, plural(label)


def article(label: str) -> str:
    return "an" if label[:1] in "aeio" else "a"  # "a user", "a usage query"


def sentence(operation_id: str) -> str:
    """``ApproveAllBillsInBillingPeriod`` -> ``Approve all bills in billing period``."""
    parts = [ACRONYMS.get(w, w) for w in words(operation_id)]
    text = " ".join(parts)
    return text[:1].upper() + text[1:]


def schema_name(node) -> str | None:
    if isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith(SCHEMA_REF):
        return node["$ref"][len(SCHEMA_REF):]
    return None


# -------------------------------------------------------------------------- operations


def success_schema(op: dict):
    content = op.get("responses", {}).get("200", {}).get("content", {})
    return content.get("application/json", {}).get("schema")


class Classifier:
    """Which resource and action each reference operation is (design section 2)."""

    def __init__(self, reference: dict):
        self.paths = reference["paths"]
        self.schemas = reference["components"]["schemas"]

    def _methods(self, rel: str) -> dict:
        item = self.paths.get(ORG + rel, {})
        return {m: op for m, op in item.items() if m in METHODS}

    def is_collection(self, rel: str) -> bool:
        if not rel or rel in SINGLETONS or rel.split("/")[-1] == "{id}":
            return False
        methods = self._methods(rel)
        listing = methods.get("get")
        if listing is not None and not (schema_name(success_schema(listing)) or "").startswith("Paginated"):
            return False  # a GET that is not a page (e.g. .../latest) is not a listing
        has_item = any(m in self._methods(rel + "/{id}") for m in ("get", "put", "delete"))
        return ("post" in methods and "get" in methods) or (has_item and bool(methods.keys() & {"get", "post"}))

    def item_schema(self, rel: str) -> str | None:
        methods = self._methods(rel)
        if "get" in methods:
            page = self.schemas.get(schema_name(success_schema(methods["get"])) or "", {})
            data = page.get("properties", {}).get("data", {})
            name = schema_name(data.get("items", {}))
            if name:
                return name
        for method in ("post",):
            if method in methods and schema_name(success_schema(methods[method])):
                return schema_name(success_schema(methods[method]))
        for method in ("get", "put", "delete"):
            op = self._methods(rel + "/{id}").get(method)
            if op is not None and schema_name(success_schema(op)):
                return schema_name(success_schema(op))
        return None

    def classify(self, path: str, method: str) -> dict:
        if not path.startswith(ORG):
            return {"action": "unimplemented", "reason": "outside the organization API"}
        rel = path[len(ORG):]
        if rel in SINGLETONS and method in ("get", "put"):
            return {"resource": rel, "action": "read" if method == "get" else "replace"}
        if rel.endswith("/{id}") and self.is_collection(rel[:-len("/{id}")]):
            action = {"get": "retrieve", "put": "update", "delete": "delete"}.get(method)
            if action:
                return {"resource": rel[:-len("/{id}")], "action": action}
        if self.is_collection(rel):
            action = {"get": "list", "post": "create"}.get(method)
            if action:
                return {"resource": rel, "action": action}
        return {"action": "unimplemented", "reason": self.reason(rel)}

    @staticmethod
    def reason(rel: str) -> str:
        for pattern, reason in REASONS:
            if re.search(pattern, rel):
                return reason
        return "this action is not implemented yet"

    def labels(self, x_mock: dict) -> tuple[str, str] | None:
        resource = x_mock.get("resource")
        if resource is None:
            return None
        if resource in SINGLETONS:
            label = SINGLETONS[resource]
            return label, plural(label)
        name = self.item_schema(resource)
        return label_of(name) if name else None


class Builder:
    """Builds the added operations and collects what they need from the reference."""

    def __init__(self, reference: dict, spec: dict):
        self.reference = reference
        self.spec = spec
        self.classifier = Classifier(reference)
        patterns = {java: spec["components"]["schemas"][name]["pattern"]
                    for java, name in PORTABLE_PATTERNS.items() if name in spec["components"]["schemas"]}
        self.cleaner = Cleaner(patterns)
        self.shared_parameters = spec["components"].get("parameters", {})
        self.tag_map = tag_map(reference, spec)

    # ---- parameters
    def path_parameter(self, param: dict, labels_by_name: dict) -> dict:
        name = param["name"]
        if name == "orgId":
            return {"$ref": "#/components/parameters/OrgId"}
        if name == "id" and "Id" in self.shared_parameters:
            return {"$ref": "#/components/parameters/Id"}
        out = {"name": name, "in": "path", "required": True}
        if name.endswith("Id") and name != "externalId":
            thing = labels_by_name.get(name) or " ".join(words(name[:-2]))
            out["description"] = f"The id of the {thing}."
            out["schema"] = {"$ref": SCHEMA_REF + "PathId"}
        else:
            out["description"] = f"The `{name}` segment of the path."
            out["schema"] = self.cleaner.schema(param.get("schema", {"type": "string"}), parameter=True)
        return out

    def query_parameter(self, param: dict, plural_label: str | None, listing: bool) -> dict:
        name = param["name"]
        schema = self.cleaner.schema(param.get("schema", {"type": "string"}), parameter=True)
        is_array = schema.get("type") == "array"
        if name == "pageSize" and schema.get("minimum") == 1 and schema.get("maximum") in (100, 200) \
                and f"PageSize{schema['maximum']}" in self.shared_parameters:
            return {"$ref": f"#/components/parameters/PageSize{schema['maximum']}"}
        if name == "nextToken" and "NextToken" in self.shared_parameters:
            return {"$ref": "#/components/parameters/NextToken"}
        if name in ("ids", "codes") and is_array and name.capitalize() in self.shared_parameters \
                and listing and not param.get("required"):
            return {"$ref": f"#/components/parameters/{name.capitalize()}"}
        out = {"name": name, "in": "query"}
        if param.get("required"):
            out["required"] = True
        things = plural_label or "items"
        if name == "pageSize":
            out["description"] = "The number of items on a page (default 10)."
        elif listing and is_array:
            out["description"] = f"The `{name}` filter of this list of {things} (comma-joined or repeated)."
        elif listing:
            out["description"] = f"The `{name}` filter of this list of {things}."
        elif is_array:
            out["description"] = f"The `{name}` option of this call (comma-joined or repeated)."
        else:
            out["description"] = f"The `{name}` option of this call."
        if is_array:
            out["style"] = "form"
            out["explode"] = True
        out["schema"] = schema
        return out

    # ---- one operation
    def properties_of(self, schema) -> set:
        """The property names a (possibly $ref'd, allOf-composed) reference schema declares."""
        if not isinstance(schema, dict):
            return set()
        if "$ref" in schema:
            name = schema["$ref"].removeprefix(SCHEMA_REF)
            return self.properties_of(self.reference.get("components", {}).get("schemas", {}).get(name))
        found = set(schema.get("properties") or {})
        for branch in schema.get("allOf") or []:
            found |= self.properties_of(branch)
        return found

    def operation(self, path: str, method: str, ref_op: dict) -> dict:
        x_mock = self.classifier.classify(path, method)
        action = x_mock["action"]
        labels = self.classifier.labels(x_mock)
        label, plural_label = labels if labels else (None, None)
        response_schema = success_schema(ref_op)
        response_label = f"`{schema_name(response_schema)}`" if schema_name(response_schema) else None

        op: dict = {}
        if ref_op.get("tags"):
            op["tags"] = [self.tag_for(t) for t in ref_op["tags"]]
        op["operationId"] = ref_op["operationId"]
        singleton = x_mock.get("resource") in SINGLETONS
        the = "the" if singleton else article(label or "")
        summaries = {
            "list": f"List {plural_label}",
            "create": f"Create {the} {label}",
            "retrieve": f"Retrieve {the} {label}",
            "update": f"Replace {the} {label}",
            "delete": f"Delete {the} {label}",
            "read": f"Retrieve the {label}",
            "replace": f"Replace the {label}",
        }
        op["summary"] = summaries.get(action) or SUMMARIES.get(ref_op["operationId"]) \
            or sentence(ref_op["operationId"])
        op["description"] = self.description(x_mock, label, plural_label)
        if ref_op.get("deprecated"):
            op["deprecated"] = True

        path_names = re.findall(r"\{([^}]+)\}", path)
        labels_by_name = self.parent_labels(path)
        params = []
        for param in ref_op.get("parameters", []):
            if param.get("in") == "query":
                params.append(self.query_parameter(param, plural_label, action == "list"))
        op_params = {"path": [self.path_parameter(p, labels_by_name)
                              for p in ref_op.get("parameters", []) if p.get("in") == "path"],
                     "query": params}
        if op_params["query"]:
            op["parameters"] = op_params["query"]

        body = ref_op.get("requestBody")
        if body:
            content = {}
            for media, media_obj in body.get("content", {}).items():
                schema = self.cleaner.schema(media_obj.get("schema", {}))
                if action == "update" and "version" in self.properties_of(schema):
                    # m3ter's spec leaves version optional; its docs (and the mock) require the
                    # stored version on every update, so the spec says so, as for the curated ones.
                    schema = {"allOf": [schema, {"required": ["version"]}]}
                content[media] = {"schema": schema}
            op["requestBody"] = {"required": True, "content": content} if body.get("required") else {"content": content}

        responses: dict = {}
        ok: dict = {"description": self.response_description(action, label, plural_label, response_label)}
        if response_schema is not None:
            ok["content"] = {"application/json": {"schema": self.cleaner.schema(response_schema)}}
        responses["200"] = ok
        codes = ["400", "401", "403"]
        if any(n != "orgId" for n in path_names):
            codes.append("404")
        if action in ("create", "update", "delete", "replace") or (method == "put" and body):
            codes.append("409")
        if body:
            codes += ["413", "415"]
        if action == "unimplemented":
            codes.append("501")
        names = {"400": "BadRequest", "401": "Unauthorized", "403": "Forbidden", "404": "NotFound",
                 "409": "Conflict", "413": "PayloadTooLarge", "415": "UnsupportedMediaType",
                 "501": "NotImplemented"}
        for code in codes:
            responses[code] = {"$ref": f"#/components/responses/{names[code]}"}
        op["responses"] = responses
        op["x-mock"] = x_mock
        return op, op_params["path"]

    def tag_for(self, tag: str) -> str:
        return self.tag_map.get(tag, tag)

    def parent_labels(self, path: str) -> dict:
        """``balanceId`` -> ``balance``: the label of the collection the segment before it names."""
        out = {}
        segments = path[len(ORG):].split("/") if path.startswith(ORG) else []
        for i, segment in enumerate(segments):
            match = re.fullmatch(r"\{(\w+Id)\}", segment)
            if match and i > 0:
                rel = "/".join(segments[:i])
                if self.classifier.is_collection(rel):
                    name = self.classifier.item_schema(rel)
                    if name:
                        out[match.group(1)] = label_of(name)[0]
        return out

    @staticmethod
    def description(x_mock: dict, label, plural_label) -> str:
        action = x_mock["action"]
        if action == "unimplemented":
            return f"Not served by the mock yet; it answers 501 because {x_mock['reason']}."
        texts = {
            "list": f"A page of {plural_label} in creation order, filtered by the query parameters given.",
            "create": f"Stores a new {label} at `version` 1.",
            "retrieve": f"The stored {label}.",
            "update": (f"Replaces every writable field of the {label}; send the stored `version` "
                       "(400 without it, 409 when stale)."),
            "delete": f"Removes the {label}; an entity that others still reference cannot be deleted (409).",
            "read": f"The organization's {label} (defaults until it is first replaced).",
            "replace": f"Replaces the organization's {label}.",
        }
        return texts[action]

    @staticmethod
    def response_description(action, label, plural_label, response_label) -> str:
        texts = {
            "list": f"A page of {plural_label}.",
            "create": f"The created {label}.",
            "retrieve": f"The {label}.",
            "update": f"The updated {label} (version incremented).",
            "delete": f"The deleted {label}.",
            "read": f"The {label}.",
            "replace": f"The replaced {label}.",
        }
        if action in texts:
            return texts[action]
        if response_label:
            return f"What m3ter answers ({response_label}); the mock answers 501 until it serves this."
        return "What m3ter answers; the mock answers 501 until it serves this."


# --------------------------------------------------------------------------- the file


class SpecText:
    """The spec file as lines, with the insertions this tool makes."""

    def __init__(self, text: str):
        self.lines = text.splitlines(keepends=True)

    def text(self) -> str:
        return "".join(self.lines)

    @staticmethod
    def _indent(line: str) -> int:
        return len(line) - len(line.lstrip(" "))

    def _is_content(self, line: str) -> bool:
        stripped = line.strip()
        return bool(stripped) and not stripped.startswith("#")

    def find(self, key: str, indent: int, start: int = 0, end: int | None = None) -> int:
        """The line of ``key:`` at this indentation, between ``start`` and ``end``."""
        end = len(self.lines) if end is None else end
        for i in range(start, end):
            line = self.lines[i]
            if self._indent(line) != indent or not self._is_content(line):
                continue
            rest = line.strip()
            if rest.startswith(f"{key}:") and rest[len(key) + 1:len(key) + 2] in ("", " "):
                return i
        raise KeyError(key)

    def block_end(self, start: int) -> int:
        """The index after the last content line of the block that starts at ``start``."""
        indent = self._indent(self.lines[start])
        last = start
        for i in range(start + 1, len(self.lines)):
            line = self.lines[i]
            if not self._is_content(line):
                continue
            if self._indent(line) <= indent:
                break
            last = i
        return last + 1

    def insert(self, at: int, text: str):
        self.lines[at:at] = text.splitlines(keepends=True)


def load(text: str) -> dict:
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _yaml_key(key: str) -> str:
    """How YAML writes ``key`` as a mapping key (quoted when it has to be)."""
    return yaml.dump({key: None}, Dumper=_Dumper, default_flow_style=False, width=10_000).rsplit(":", 1)[0]


def build(reference: dict, spec_text: str) -> tuple[str, dict]:
    """The new spec text and a summary of what was added."""
    spec = load(spec_text)
    builder = Builder(reference, spec)
    summary = {"operations": Counter(), "schemas": [], "tags": [], "orgId_pattern_removed": False,
               "not_implemented_response": False, "added": []}

    existing_ids = {op.get("operationId") for item in spec["paths"].values()
                    for m, op in item.items() if m in METHODS}
    new_paths: dict[str, dict] = {}
    new_methods: dict[str, dict] = {}
    for path, item in reference["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            if method in spec["paths"].get(path, {}):
                continue
            ref_op = item[method]
            if ref_op["operationId"] in existing_ids:
                raise SystemExit(f"operationId {ref_op['operationId']} already used by another operation")
            op, path_params = builder.operation(path, method, ref_op)
            summary["operations"][op["x-mock"]["action"]] += 1
            summary["added"].append((method.upper(), path, op["operationId"], op["x-mock"]))
            if path in spec["paths"]:
                # A new method on a curated path: its parameters go on the operation, ahead
                # of the query ones, unless the path item declares them already.
                declared = {json.dumps(p, sort_keys=True) for p in spec["paths"][path].get("parameters", [])}
                own = [p for p in path_params if json.dumps(p, sort_keys=True) not in declared]
                if own:
                    op = _with_parameters(op, own + op.get("parameters", []))
                new_methods.setdefault(path, {})[method] = op
            else:
                entry = new_paths.setdefault(path, {"parameters": path_params})
                entry[method] = op

    out = SpecText(spec_text)

    # Schemas the output refers to and lacks, with everything they refer to.
    everything = {"paths": {**spec["paths"], **new_paths}, "components": spec["components"]}
    for path, methods in new_methods.items():
        everything["paths"][path] = {**spec["paths"][path], **methods}
    have = set(spec["components"].get("schemas", {}))
    added_schemas: dict[str, dict] = {}
    wanted = refs_in(everything, set()) - have
    ref_schemas = reference["components"]["schemas"]
    while wanted:
        name = sorted(wanted)[0]
        wanted.discard(name)
        if name not in ref_schemas:
            raise SystemExit(f"schema {name} is referred to but neither the spec nor the reference has it")
        added_schemas[name] = builder.cleaner.schema(ref_schemas[name])
        wanted |= refs_in(added_schemas[name], set()) - have - set(added_schemas)
    summary["schemas"] = sorted(added_schemas)
    summary["patterns_replaced"] = dict(builder.cleaner.replaced_patterns)

    # Insert from the bottom of the file up, so earlier line numbers stay right.
    components = out.find("components", 0)
    if added_schemas:
        start = out.find("schemas", 2, components)
        end = out.block_end(start)
        text = "\n    # ---- added from m3ter's published API by tools/build_spec.py\n"
        text += dump({name: added_schemas[name] for name in sorted(added_schemas, key=str.lower)}, 4)
        out.insert(end, text)

    responses_at = out.find("responses", 2, components)
    if "NotImplemented" not in spec["components"].get("responses", {}):
        end = out.block_end(responses_at)
        out.insert(end, dump({"NotImplemented": NOT_IMPLEMENTED}, 4))
        summary["not_implemented_response"] = True

    org_param = spec["components"].get("parameters", {}).get("OrgId")
    if org_param and "pattern" in org_param.get("schema", {}):
        parameters_at = out.find("parameters", 2, components)
        start = out.find("OrgId", 4, parameters_at, out.block_end(parameters_at))
        end = out.block_end(start)
        out.lines[start:end] = dump({"OrgId": org_id_parameter(org_param)}, 4).splitlines(keepends=True)
        summary["orgId_pattern_removed"] = True

    paths_at = out.find("paths", 0)
    for path in sorted(new_methods):
        start = out.find(_yaml_key(path), 2, paths_at, out.block_end(paths_at))
        text = "".join(dump({m: new_methods[path][m]}, 4) for m in METHODS if m in new_methods[path])
        out.insert(out.block_end(start), text)
    if new_paths:
        text = ""
        family = None
        for path in sorted(new_paths, key=_path_order):
            head = _family(path)
            if head != family:
                family = head
                text += f"\n  # ---------------------------------------------------------------- {head}\n"
            item = new_paths[path]
            ordered = {"parameters": item["parameters"]}
            ordered.update({m: item[m] for m in METHODS if m in item})
            text += dump({path: ordered}, 2)
        out.insert(out.block_end(paths_at), text)

    tags_needed = []
    for item in list(new_paths.values()) + list(new_methods.values()):
        for method in METHODS:
            for tag in item.get(method, {}).get("tags", []) if method in item else []:
                if tag not in tags_needed:
                    tags_needed.append(tag)
    known = [t["name"] for t in spec.get("tags", [])]
    new_tags = sorted(t for t in tags_needed if t not in known)
    if new_tags:
        tags_at = out.find("tags", 0)
        end = out.block_end(tags_at)
        out.insert(end, "".join(f"  - name: {_yaml_key(t)}\n" for t in new_tags))
    summary["tags"] = new_tags
    return out.text(), summary


NOT_IMPLEMENTED = {
    "description": "The mock does not serve this operation yet; the message says why.",
    "content": {"application/json": {
        "schema": {"$ref": SCHEMA_REF + "Error"},
        "example": {"message": "POST /organizations/{orgId}/bills/approve is not implemented by "
                               "m3ter-mock yet: bill actions need the billing engine, which comes next"},
    }},
}


def org_id_parameter(current: dict) -> dict:
    schema = {k: v for k, v in current.get("schema", {}).items() if k != "pattern"}
    out = {k: v for k, v in current.items() if k not in ("schema", "description", "example")}
    out["description"] = ("The organization's id (a UUID at m3ter). Like m3ter's published API, the mock\n"
                          "sets no pattern: any id that fits in a path segment is accepted (control\n"
                          "characters are refused), and an organization it has not seen is a new, empty one.\n")
    out["schema"] = schema
    if "example" in current:
        out["example"] = current["example"]
    return out


def _with_parameters(op: dict, params: list) -> dict:
    out = {}
    for key, value in op.items():
        if key in ("requestBody", "responses") and "parameters" not in out:
            out["parameters"] = params
        if key != "parameters":
            out[key] = value
    return out


def _family(path: str) -> str:
    rel = path[len(ORG):] if path.startswith(ORG) else path.strip("/")
    return rel.split("/")[0]


def _path_order(path: str):
    # Family by family, each collection before its items, literal segments before parameters.
    return [(1, s) if s.startswith("{") else (0, s) for s in path.split("/")]


def tag_map(reference: dict, spec: dict) -> dict:
    """Reference tag -> the curated tag its curated operations carry, when that is one tag."""
    seen: dict[str, set] = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            ref_op = reference["paths"].get(path, {}).get(method)
            if method in METHODS and ref_op:
                for tag in ref_op.get("tags", []):
                    seen.setdefault(tag, set()).update(op.get("tags", []))
    return {tag: next(iter(cur)) for tag, cur in seen.items() if len(cur) == 1}


def print_summary(summary: dict, total: int, out=sys.stdout):
    ops = summary["operations"]
    print(f"operations added: {sum(ops.values())} (the spec now has {total})", file=out)
    for action in ("list", "create", "retrieve", "update", "delete", "read", "replace", "unimplemented"):
        print(f"  {action:<14}{ops.get(action, 0)}", file=out)
    print(f"schemas added: {len(summary['schemas'])}", file=out)
    print(f"tags added: {len(summary['tags'])}", file=out)
    if summary["patterns_replaced"]:
        for pattern, count in summary["patterns_replaced"].items():
            print(f"  pattern replaced by its portable form ({count}x): {pattern}", file=out)
    if summary["orgId_pattern_removed"]:
        print("OrgId: pattern removed", file=out)
    if summary["not_implemented_response"]:
        print("responses: NotImplemented added", file=out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", type=Path, help="m3ter's published OpenAPI document (JSON)")
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="the spec to extend")
    parser.add_argument("--out", type=Path, help="where to write the result (default: --spec, in place)")
    args = parser.parse_args(argv)
    reference = json.loads(args.reference.read_text(encoding="utf-8"))
    text, summary = build(reference, args.spec.read_text(encoding="utf-8"))
    result = load(text)
    total = sum(1 for item in result["paths"].values() for m in item if m in METHODS)
    out = args.out or args.spec
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.write_text(text, encoding="utf-8")
    print_summary(summary, total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
