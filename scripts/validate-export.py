#!/usr/bin/env python3
"""Checks a `perfkit history export` file with its consumers' own rules:
OpenMetrics text with prometheus_client's OpenMetrics parser (the one
Prometheus' Python tooling uses), BMF and github-action-benchmark JSON with
the JSON schemas in fixtures/schemas/ (written from those tools'
documentation), plus BMF's lower_value <= value <= upper_value.

    python3 scripts/validate-export.py openmetrics|bmf|gab FILE
"""
import json
import pathlib
import sys


def main() -> int:
    fmt, path = sys.argv[1], pathlib.Path(sys.argv[2])
    text = path.read_text()
    if fmt == "openmetrics":
        from prometheus_client.openmetrics.parser import text_string_to_metric_families

        families = list(text_string_to_metric_families(text))
        samples = sum(len(f.samples) for f in families)
        if samples == 0:
            raise SystemExit(f"{path}: no samples")
        print(f"{path}: OpenMetrics ok: {len(families)} families, {samples} samples")
        return 0
    import jsonschema

    schema_dir = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "schemas"
    schema = json.loads((schema_dir / f"{fmt}.schema.json").read_text())
    doc = json.loads(text)
    jsonschema.validate(doc, schema)
    if fmt == "bmf":
        for bench, measures in doc.items():
            for m, v in measures.items():
                lo, hi = v.get("lower_value", v["value"]), v.get("upper_value", v["value"])
                if not lo <= v["value"] <= hi:
                    raise SystemExit(f"{path}: {bench} {m}: value outside its bounds")
    print(f"{path}: {fmt} ok: {len(doc)} entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
