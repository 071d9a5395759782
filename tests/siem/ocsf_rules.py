"""OCSF checks of one exported line: the JSON Schema that PyPI `ocsf-json-schema` generates from
its packaged copy of the OCSF schema (class by `class_uid`, profiles from `metadata.profiles`),
validated with PyPI `jsonschema`; then the rules of OCSF's own validator that a JSON Schema cannot
say: `type_uid` = class_uid * 100 + activity_id, enum siblings carry their caption (and an
Other (99) its own value, not "Other"), `metadata.version` is the targeted version, no
deprecated attribute, host names carry no port, timestamps are epoch milliseconds.
"""

import re

import jsonschema
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

HOST_WITH_PORT = re.compile(r"^[^:\[\]]+:\d+$")
# 2000-01-01 to 2100-01-01 in epoch milliseconds: seconds or microseconds would fall outside.
MILLIS_RANGE = (946_684_800_000, 4_102_444_800_000)


class OcsfRules:
    def __init__(self, version):
        self.version = version
        self.definitions = get_ocsf_schema(version=version)
        self.generator = OcsfJsonSchemaEmbedded(self.definitions)
        self.validators = {}

    def _validator(self, class_uid, profiles):
        key = (class_uid, tuple(sorted(profiles)))
        if key not in self.validators:
            class_name = self.generator.lookup_class_name_from_uid(class_uid)
            schema = self.generator.get_class_schema(class_name=class_name, profiles=list(profiles))
            self.validators[key] = (class_name, jsonschema.Draft202012Validator(schema))
        return self.validators[key]

    def check(self, record):
        """The problems of one record, each "where: what", empty when it is valid."""
        class_uid = record.get("class_uid")
        if not isinstance(class_uid, int):
            return ["class_uid: missing or not an integer"]
        profiles = record.get("metadata", {}).get("profiles", [])
        try:
            class_name, validator = self._validator(class_uid, profiles)
        except ValueError as error:
            return [f"class_uid: {error}"]
        problems = [
            f"{'/'.join(map(str, error.absolute_path)) or '(record)'}: {error.message} [schema {'/'.join(map(str, error.absolute_schema_path))}]"
            for error in sorted(validator.iter_errors(record), key=lambda error: list(map(str, error.absolute_path)))
        ]
        version = record.get("metadata", {}).get("version")
        if version != self.version:
            problems.append(f"metadata/version: {version!r}, but the export targets OCSF {self.version}")
        if record.get("type_uid") != class_uid * 100 + record.get("activity_id", -1):
            problems.append(f"type_uid: {record.get('type_uid')!r} is not class_uid * 100 + activity_id")
        attributes = self.definitions["classes"][class_name]["attributes"]
        problems.extend(self._walk(record, attributes, ""))
        return problems

    def _walk(self, value, attributes, where):
        problems = []
        for name, item in value.items():
            definition = attributes.get(name)
            if definition is None:
                continue  # the JSON Schema reported it
            path = f"{where}{name}"
            problems.extend(self._sibling(value, name, definition, path))
            if "@deprecated" in definition:
                problems.append(f"{path}: deprecated since OCSF {definition['@deprecated'].get('since')}: "
                                f"{definition['@deprecated'].get('message')}")
            kind = definition.get("type")
            if kind == "hostname_t" and isinstance(item, str) and HOST_WITH_PORT.match(item):
                problems.append(f"{path}: host name {item!r} carries a port (OCSF has a port attribute)")
            if kind == "timestamp_t" and isinstance(item, int) and not MILLIS_RANGE[0] <= item < MILLIS_RANGE[1]:
                problems.append(f"{path}: {item} is not epoch milliseconds of this century")
            object_type = definition.get("object_type")
            if object_type and object_type in self.definitions["objects"]:
                nested = self.definitions["objects"][object_type]["attributes"]
                for index, element in enumerate(item if isinstance(item, list) else [item]):
                    if isinstance(element, dict) and object_type != "object":
                        suffix = f"/{index}/" if isinstance(item, list) else "/"
                        problems.extend(self._walk(element, nested, path + suffix))
        return problems

    def _sibling(self, value, name, definition, path):
        dictionary = self.definitions["dictionary_attributes"].get(name, {})
        sibling = definition.get("sibling") or dictionary.get("sibling")
        enum = definition.get("enum")
        if not sibling or not enum or not isinstance(value.get(name), int):
            return []
        caption = enum.get(str(value[name]), {}).get("caption")
        label = value.get(sibling)
        if value[name] == 99:
            if label in (None, "Other"):
                return [f"{path}: Other (99) needs {sibling} with the source's own value, not {label!r}"]
            return []
        suppressed = "sibling_convention" in dictionary.get("suppress_checks", [])
        if label is not None and caption is not None and label != caption and not suppressed:
            return [f"{path}: {sibling} is {label!r}, the caption of {value[name]} is {caption!r}"]
        return []
