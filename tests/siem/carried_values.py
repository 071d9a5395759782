"""Nothing of the native event may be lost on the way to the SIEM: every value of the native
event (each leaf: text, number, boolean) must appear somewhere in its exported line, in a
standard field or in the extension fields (OCSF `unmapped`, our ECS namespace).

Values the mappings transform on purpose are looked for in their mapped form:
- `payload.host` is split into the host name and the port (both schemas keep them apart);
- `response.durationMs` may appear as nanoseconds (ECS `event.duration`);
- `response.status` 0 (no response) is left out: the outcome `no_response` says it.
"""


def leaves(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, path + (key,))
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item, path)
    elif value is not None and value != "":
        yield path, value


def _as_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _forms(path, value):
    """The texts any one of which shows that `value` was carried."""
    if path == ("payload", "host"):
        host = str(value)
        if host.startswith("[") and "]" in host:
            name, _, rest = host[1:].partition("]")
            return [[name] + ([rest[1:]] if rest.startswith(":") else [])]
        if host.count(":") == 1 and host.rsplit(":", 1)[1].isdigit():
            return [host.rsplit(":", 1)]
        return [[host]]
    if path == ("response", "durationMs"):
        return [[_as_text(value)], [_as_text(round(value * 1_000_000))]]
    return [[_as_text(value)]]


def missing_values(native, exported):
    """The native leaves ("path = value") that the exported record does not carry."""
    carried = {_as_text(value) for _, value in leaves(exported)}
    missing = []
    for path, value in leaves(native):
        if path == ("response", "status") and value == 0:
            continue
        if not any(all(text in carried for text in form) for form in _forms(path, value)):
            missing.append(f"{'.'.join(path)} = {value!r}")
    return missing
