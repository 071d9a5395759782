"""ECS checks of one exported line against Elastic's field list (`ecs_flat.yml` of a release,
as extracted to JSON): every field is an ECS field of the right type or sits under our custom
namespace; required fields are present; allowed values and each category's expected event
types hold; only array fields hold arrays; `ecs.version` is the targeted version; a `*.domain`
carries no port.
"""

import ipaddress
import re
from datetime import datetime

HOST_WITH_PORT = re.compile(r"^[^:\[\]]+:\d+$")
INTEGER_RANGES = {"long": 2**63, "integer": 2**31, "short": 2**15, "byte": 2**7}
TEXT_TYPES = {"keyword", "constant_keyword", "wildcard", "match_only_text", "text"}
NUMBER_TYPES = {"float", "double", "scaled_float", "half_float"}
OBJECT_TYPES = {"object", "flattened", "nested"}


class EcsRules:
    def __init__(self, fields, version, namespace):
        self.fields = fields
        self.version = version
        self.namespace = namespace
        if any(name == namespace or name.startswith(namespace + ".") for name in self.fields):
            raise ValueError(f"our namespace {namespace!r} collides with ECS fields")

    def check(self, record):
        flat = {}
        self._flatten(record, "", flat)
        problems = []
        for name, definition in self.fields.items():
            if definition.get("required") and name not in flat:
                problems.append(f"{name}: required by ECS and missing")
        if flat.get("ecs.version") != self.version:
            problems.append(f"ecs.version: {flat.get('ecs.version')!r}, but the export targets ECS {self.version}")
        for name, value in flat.items():
            if name == self.namespace or name.startswith(self.namespace + "."):
                continue
            definition = self.fields.get(name)
            if definition is None:
                problems.append(f"{name}: not an ECS field, and not under our namespace {self.namespace!r}")
                continue
            problems.extend(self._check_field(name, value, definition))
        categories = flat.get("event.category") or []
        expected = {item["name"]: set(item.get("expected_event_types", []))
                    for item in self.fields["event.category"].get("allowed_values", [])}
        for event_type in flat.get("event.type") or []:
            for category in categories:
                if category in expected and event_type not in expected[category]:
                    problems.append(f"event.type: {event_type!r} is not an expected type of category {category!r} "
                                    f"(expected: {sorted(expected[category])})")
        return problems

    def _flatten(self, value, prefix, flat):
        for key, item in value.items():
            name = f"{prefix}{key}"
            kind = self.fields.get(name, {}).get("type")
            if isinstance(item, dict) and name != self.namespace and kind not in OBJECT_TYPES:
                self._flatten(item, name + ".", flat)
            else:
                flat[name] = item

    def _check_field(self, name, value, definition):
        is_array = "array" in definition.get("normalize", [])
        if isinstance(value, list) and not is_array:
            return [f"{name}: an array, but ECS does not normalize this field to an array"]
        if is_array and not isinstance(value, list):
            return [f"{name}: ECS expects an array"]
        problems = []
        allowed = {item["name"] for item in definition.get("allowed_values", [])}
        for item in value if isinstance(value, list) else [value]:
            problem = self._type_problem(definition["type"], item)
            if problem:
                problems.append(f"{name}: {item!r} {problem}")
            if allowed and item not in allowed:
                problems.append(f"{name}: {item!r} is not one of {sorted(allowed)}")
            pattern = definition.get("pattern")
            if pattern and isinstance(item, str) and not re.fullmatch(pattern, item):
                problems.append(f"{name}: {item!r} does not match {pattern}")
            if name.endswith(".domain") and isinstance(item, str) and HOST_WITH_PORT.match(item):
                problems.append(f"{name}: {item!r} carries a port (ECS has a .port field)")
        return problems

    @staticmethod
    def _type_problem(kind, value):
        if kind in TEXT_TYPES:
            return None if isinstance(value, str) else f"is not a string ({kind})"
        if kind in INTEGER_RANGES:
            bound = INTEGER_RANGES[kind]
            ok = isinstance(value, int) and not isinstance(value, bool) and -bound <= value < bound
            return None if ok else f"is not a {kind}"
        if kind in NUMBER_TYPES:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            return None if ok else f"is not a number ({kind})"
        if kind == "boolean":
            return None if isinstance(value, bool) else "is not a boolean"
        if kind == "ip":
            try:
                ipaddress.ip_address(value)
                return None
            except (ValueError, TypeError):
                return "is not an IP address"
        if kind == "date":
            if isinstance(value, int) and not isinstance(value, bool):
                return None
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
                return None if parsed.tzinfo is not None else "is a date without an offset"
            except (ValueError, AttributeError):
                return "is not an ISO 8601 date"
        if kind in OBJECT_TYPES:
            return None if isinstance(value, (dict, list)) else f"is not an object ({kind})"
        return None
