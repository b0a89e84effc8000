"""The app's code: readings go into a MergeTree table, an audit line into a Log table."""


def record(client, sensor: str, values: list[float]) -> None:
    rows = [{"id": i, "sensor": sensor, "value": v} for i, v in enumerate(values, start=1)]
    client.insert("readings", rows)
    client.insert("audit_log", [{"message": f"{len(values)} readings from {sensor}"}])
