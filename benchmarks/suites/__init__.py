"""The packaged benchmark suites (YAML; installed as ``ncvsd_inverse.bench.suites``)."""
