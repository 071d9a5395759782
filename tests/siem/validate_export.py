#!/usr/bin/env python3
"""Validates what `audit-collector tail --format ocsf|ecs` wrote, one JSON record per line,
against the published schemas: OCSF through PyPI `ocsf-json-schema` + `jsonschema` and
OCSF's validator rules (ocsf_rules.py), ECS against Elastic's field list (ecs_rules.py).
With `--native`, the same records as `--format native` wrote them, it also checks that no
value of the native event was lost (coverage.py).

    validate_export.py --format ocsf export.ndjson [--native native.ndjson]
    validate_export.py --format ecs --ecs-fields ecs_flat.yml export.ndjson

Prints each invalid record (line, uuid, the rule it breaks) and the counts; exits 1 when any
record is invalid, 2 when a schema cannot be loaded.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from carried_values import missing_values  # noqa: E402

OCSF_VERSION = "1.6.0"
ECS_VERSION = "9.4.0"
ECS_NAMESPACE = "audit_sidecar"
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_ECS_FIELDS = os.path.join(REPOSITORY, "..", "shared", "reference", "siem-schemas", f"ecs-{ECS_VERSION}-fields.json")


def load_ecs_fields(path):
    """`path` is the extracted JSON (`{"fields": ...}`) or Elastic's own `ecs_flat.yml`."""
    if path.endswith((".yml", ".yaml")):
        import yaml

        with open(path, encoding="utf-8") as file:
            return {"fields": yaml.safe_load(file)}
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def rules_for(format_name, ecs_fields):
    if format_name == "ocsf":
        from ocsf_rules import OcsfRules

        return OcsfRules(OCSF_VERSION)
    from ecs_rules import EcsRules

    if not os.path.exists(ecs_fields):
        raise FileNotFoundError(
            f"the ECS {ECS_VERSION} field list is not at {ecs_fields}: ECS lines cannot be validated. It is "
            "the copy extracted beside the repository (../shared/reference/siem-schemas/, present in CI), or "
            f"pass --ecs-fields with Elastic's generated/ecs/ecs_flat.yml of ECS v{ECS_VERSION}")
    return EcsRules(load_ecs_fields(ecs_fields)["fields"], ECS_VERSION, ECS_NAMESPACE)


def record_uuid(record):
    return (record.get("metadata") or {}).get("uid") or (record.get("event") or {}).get("id")


def validate_lines(format_name, lines, rules, natives=None):
    """(checked, valid, reports) for the records in `lines`."""
    checked = valid = 0
    reports = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        checked += 1
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            reports.append(f"line {number}: not JSON ({error})")
            continue
        problems = rules.check(record) if isinstance(record, dict) else ["(record): not a JSON object"]
        native = (natives or {}).get(record_uuid(record)) if isinstance(record, dict) else None
        if native is not None:
            problems += [f"{value}: a value of the native event that the {format_name} record does not carry"
                         for value in missing_values(native, record)]
        if problems:
            uuid = record_uuid(record) if isinstance(record, dict) else None
            kind = (native or {}).get("type") or (record.get("api") or {}).get("operation") \
                or (record.get("event") or {}).get("action")
            reports.append(f"line {number} (uuid {uuid}, type {kind}):\n    " + "\n    ".join(problems)
                           + f"\n    record: {line.strip()[:2000]}")
        else:
            valid += 1
    return checked, valid, reports


def read_natives(path):
    natives = {}
    with open(path, encoding="utf-8") as file:
        for line in file:
            if line.strip():
                event = json.loads(line)
                if event.get("uuid"):
                    natives[event["uuid"]] = event
    return natives


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", choices=["ocsf", "ecs"], required=True)
    parser.add_argument("--native", help="the same trail as `tail --format native` wrote it")
    parser.add_argument("--ecs-fields", default=os.environ.get("ECS_FIELDS", DEFAULT_ECS_FIELDS),
                        help="ECS field list: the extracted JSON or Elastic's ecs_flat.yml")
    parser.add_argument("export", help="the lines `tail` wrote ('-' for stdin)")
    args = parser.parse_args()
    try:
        rules = rules_for(args.format, args.ecs_fields)
    except (FileNotFoundError, ValueError) as error:
        print(f"{args.format}: NOT VALIDATED: {error}", file=sys.stderr)
        return 2
    natives = read_natives(args.native) if args.native else None
    source = sys.stdin if args.export == "-" else open(args.export, encoding="utf-8")
    with source:
        checked, valid, reports = validate_lines(args.format, source, rules, natives)
    for report in reports:
        print(report)
    print(f"{args.format}: {checked} records checked, {valid} valid")
    return 0 if checked and checked == valid else 1


if __name__ == "__main__":
    sys.exit(main())
